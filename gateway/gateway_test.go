package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/deployer-dev/deployer/internal/testenv"
)

// anvil's first well-known key, which scripts use to sign themselves.
const anvilKey0 = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"

type rig struct {
	up   *Upstream
	sess *Session
}

// newRig starts an anvil and a gateway in front of it for a fresh sender, funded.
func newRig(t *testing.T, mod func(*Config)) *rig {
	t.Helper()
	url := testenv.Anvil(t)
	up := NewUpstream(url, nil)
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	addr := crypto.PubkeyToAddress(key.PublicKey)
	if err := up.Call(context.Background(), nil, "anvil_setBalance", addr, "0x3635C9ADC5DEA00000"); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Upstream: up, ChainID: 31337, Key: key}
	if mod != nil {
		mod(&cfg)
	}
	return &rig{up: up, sess: New(cfg)}
}

// call sends one request through the gateway and returns its result or error.
func (r *rig) call(t *testing.T, method string, params ...any) (json.RawMessage, *rpcError) {
	t.Helper()
	if params == nil {
		params = []any{}
	}
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 7, "method": method, "params": params})
	var resp response
	if err := json.Unmarshal(r.sess.Handle(context.Background(), body), &resp); err != nil {
		t.Fatal(err)
	}
	if string(resp.ID) != "7" {
		t.Errorf("answer id %s", resp.ID)
	}
	return resp.Result, resp.Error
}

// waitMined waits for a transaction's receipt: anvil mines it a moment after it
// answered the send.
func (r *rig) waitMined(t *testing.T, hash string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var rc json.RawMessage
		if err := r.up.Call(context.Background(), &rc, "eth_getTransactionReceipt", hash); err != nil {
			t.Fatal(err)
		}
		if string(rc) != "null" && len(rc) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("transaction %s not mined", hash)
		}
	}
}

func (r *rig) balance(t *testing.T, addr string) *big.Int {
	var b hexutil.Big
	if err := r.up.Call(context.Background(), &b, "eth_getBalance", addr, "latest"); err != nil {
		t.Fatal(err)
	}
	return b.ToInt()
}

// The chain's admin methods change nothing and tell nothing; the error names the
// method.
func TestAdminMethodsAreRefused(t *testing.T) {
	r := newRig(t, nil)
	victim := "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
	before := r.balance(t, victim)
	for _, c := range []struct {
		method string
		params []any
	}{
		{"anvil_setBalance", []any{victim, "0x0"}},
		{"anvil_setCode", []any{victim, "0x6080"}},
		{"evm_setAutomine", []any{false}},
		{"anvil_reset", []any{}},
		{"evm_revert", []any{"0x1"}},
		{"anvil_nodeInfo", []any{}},
		{"anvil_setRpcUrl", []any{"http://example.com"}},
		{"eth_newFilter", []any{map[string]any{}}},
		{"eth_subscribe", []any{"newHeads"}},
		{"debug_traceTransaction", []any{"0x00"}},
		{"personal_sign", []any{"0x00", victim}},
		{"hardhat_setBalance", []any{victim, "0x0"}},
	} {
		res, err := r.call(t, c.method, c.params...)
		if err == nil || err.Code != codeMethodNotFound || !strings.Contains(err.Message, c.method) {
			t.Errorf("%s: result %s, error %+v", c.method, res, err)
		}
	}
	if after := r.balance(t, victim); after.Cmp(before) != 0 {
		t.Errorf("a refused call changed the chain: balance %s -> %s", before, after)
	}
}

// A batch is checked element by element.
func TestBatchIsCheckedPerElement(t *testing.T) {
	r := newRig(t, nil)
	body := `[{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]},
	          {"jsonrpc":"2.0","id":2,"method":"anvil_setBalance","params":["0x70997970C51812dc3A010C7d01b50e0d17dc79C8","0x0"]},
	          {"jsonrpc":"2.0","id":3,"method":"eth_accounts","params":[]}]`
	var out []response
	if err := json.Unmarshal(r.sess.Handle(context.Background(), []byte(body)), &out); err != nil || len(out) != 3 {
		t.Fatalf("batch answer %v: %v", out, err)
	}
	if string(out[0].Result) != `"0x7a69"` || out[1].Error == nil || out[1].Error.Code != codeMethodNotFound {
		t.Errorf("batch: %+v / %+v", out[0], out[1])
	}
	want := `["` + strings.ToLower(r.sess.Sender().Hex()) + `"]`
	if string(out[2].Result) != want {
		t.Errorf("eth_accounts = %s, want %s: the job's sender only", out[2].Result, want)
	}
}

// eth_sendTransaction is signed by the gateway, as given, and recorded; it is never
// forwarded (anvil would sign it for its unlocked accounts).
func TestSendTransactionIsSignedAsGiven(t *testing.T) {
	var journal memJournal
	r := newRig(t, func(c *Config) { c.Journal = &journal })
	sender := strings.ToLower(r.sess.Sender().Hex())
	to := "0x0000000000000000000000000000000000000042"
	res, rerr := r.call(t, "eth_sendTransaction", map[string]any{
		"from": sender, "to": to, "value": "0x64", "gas": "0x5208", "nonce": "0x0",
		"maxFeePerGas": "0x77359400", "maxPriorityFeePerGas": "0x1", "chainId": "0x7a69",
	})
	if rerr != nil {
		t.Fatal(rerr)
	}
	var hash string
	_ = json.Unmarshal(res, &hash)
	r.waitMined(t, hash)
	var tx struct {
		From  string `json:"from"`
		Nonce string `json:"nonce"`
		Gas   string `json:"gas"`
	}
	if err := r.up.Call(context.Background(), &tx, "eth_getTransactionByHash", hash); err != nil {
		t.Fatal(err)
	}
	if tx.From != sender || tx.Nonce != "0x0" || tx.Gas != "0x5208" {
		t.Errorf("on chain: %+v", tx)
	}
	if got := r.balance(t, to); got.Cmp(big.NewInt(100)) != 0 {
		t.Errorf("recipient has %s wei", got)
	}
	sent := r.sess.Sent()
	if len(sent) != 1 || sent[0].Hash != hash || len(journal.sent) != 1 || journal.sent[0].Raw == "" {
		t.Errorf("recorded %+v, journal %+v", sent, journal.sent)
	}
	// Another sender is refused, and so is another chain.
	if _, err := r.call(t, "eth_sendTransaction", map[string]any{"from": "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266", "to": to}); err == nil || !strings.Contains(err.Message, "only the job's sender") {
		t.Errorf("another sender: %+v", err)
	}
	if _, err := r.call(t, "eth_sendTransaction", map[string]any{"from": sender, "to": to, "chainId": "0x1"}); err == nil {
		t.Error("a transaction for another chain was signed")
	}
}

// Forge sends several transactions at once, each with the nonce it chose.
func TestConcurrentSendsKeepTheirNonces(t *testing.T) {
	r := newRig(t, nil)
	sender := strings.ToLower(r.sess.Sender().Hex())
	var wg sync.WaitGroup
	for n := range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": n, "method": "eth_sendTransaction", "params": []any{map[string]any{
				"from": sender, "to": "0x0000000000000000000000000000000000000042", "gas": "0x5208",
				"nonce": fmt.Sprintf("0x%x", n), "maxFeePerGas": "0x77359400", "maxPriorityFeePerGas": "0x1"}}})
			var resp response
			_ = json.Unmarshal(r.sess.Handle(context.Background(), body), &resp)
			if resp.Error != nil {
				t.Errorf("nonce %d: %s", n, resp.Error.Message)
			}
		}()
	}
	wg.Wait()
	// Sent out of order, they are all mined once the gaps fill.
	var count hexutil.Uint64
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if err := r.up.Call(context.Background(), &count, "eth_getTransactionCount", sender, "latest"); err != nil {
			t.Fatal(err)
		}
		if count == 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sender's nonce is %d after five sends", count)
		}
	}
}

// A transaction the script signed itself (with anvil's well-known key) passes on a
// managed chain once its address is claimed; on a real network only the configured
// sender may send.
func TestRawTransactions(t *testing.T) {
	var claimed []common.Address
	r := newRig(t, func(c *Config) {
		c.ClaimRaw = func(_ context.Context, a common.Address) error { claimed = append(claimed, a); return nil }
	})
	raw := signedRaw(t, anvilKey0, 0)
	if _, err := r.call(t, "eth_sendRawTransaction", raw); err != nil {
		t.Fatal(err)
	}
	if _, err := r.call(t, "eth_sendRawTransaction", signedRaw(t, anvilKey0, 1)); err != nil {
		t.Fatal(err)
	}
	if len(claimed) != 1 || len(r.sess.Sent()) != 2 {
		t.Errorf("claimed %v (once, for two sends), sent %d", claimed, len(r.sess.Sent()))
	}

	remote := newRig(t, func(c *Config) { c.Remote = true })
	if _, err := remote.call(t, "eth_sendRawTransaction", signedRaw(t, anvilKey0, 0)); err == nil || !strings.Contains(err.Message, "only the configured sender") {
		t.Errorf("a stranger's transaction on a real network: %+v", err)
	}
}

// The caps of a real network: a transaction's value, the job's total, and what the
// sender can pay.
func TestSpendCaps(t *testing.T) {
	r := newRig(t, func(c *Config) {
		c.Remote = true
		c.MaxValue = big.NewInt(1000)
		c.MaxSpend = new(big.Int).Mul(big.NewInt(21000*3), big.NewInt(2_000_000_000))
	})
	sender := strings.ToLower(r.sess.Sender().Hex())
	tx := func(value string) map[string]any {
		return map[string]any{"from": sender, "to": "0x0000000000000000000000000000000000000042", "value": value,
			"gas": "0x5208", "maxFeePerGas": "0x77359400", "maxPriorityFeePerGas": "0x1"}
	}
	if _, err := r.call(t, "eth_sendTransaction", tx("0x3e9")); err == nil || !strings.Contains(err.Message, "cap of 1000 wei per transaction") {
		t.Errorf("over the value cap: %+v", err)
	}
	for range 2 {
		if _, err := r.call(t, "eth_sendTransaction", tx("0x1")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.call(t, "eth_sendTransaction", tx("0x1")); err == nil || !strings.Contains(err.Message, "per job") {
		t.Errorf("over the job's cap: %+v", err)
	}
	poor := newRig(t, func(c *Config) { c.Remote = true })
	if err := poor.up.Call(context.Background(), nil, "anvil_setBalance", poor.sess.Sender(), "0x1"); err != nil {
		t.Fatal(err)
	}
	if _, err := poor.call(t, "eth_sendTransaction", map[string]any{"to": "0x0000000000000000000000000000000000000042", "gas": "0x5208"}); err == nil || !strings.Contains(err.Message, "cannot pay") {
		t.Errorf("a sender who cannot pay: %+v", err)
	}
}

// The upstream's URL, with its key, appears in no answer.
func TestUpstreamURLNeverShown(t *testing.T) {
	up := NewUpstream("http://127.0.0.1:1/v2/SECRETKEY?apikey=SECRETKEY", nil)
	key, _ := crypto.GenerateKey()
	s := New(Config{Upstream: up, ChainID: 1, Key: key})
	out := s.Handle(context.Background(), []byte(`{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}`))
	if strings.Contains(string(out), "SECRETKEY") || !strings.Contains(string(out), "chain unreachable") {
		t.Errorf("answer %s", out)
	}
}

// The relay's protocol: requests and answers by id, however many at once.
func TestServeOverPipes(t *testing.T) {
	r := newRig(t, nil)
	reqR, reqW := io.Pipe()
	ansR, ansW := io.Pipe()
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- Serve(context.Background(), r.sess, reqR, ansW, ready) }()
	fmt.Fprintln(reqW, `{"ready":true}`)
	<-ready
	for id := 1; id <= 3; id++ {
		b, _ := json.Marshal(frame{ID: uint64(id), Body: `{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}`})
		reqW.Write(append(b, '\n'))
	}
	dec := json.NewDecoder(ansR)
	seen := map[uint64]bool{}
	for range 3 {
		var f frame
		if err := dec.Decode(&f); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(f.Body, `"0x7a69"`) {
			t.Errorf("answer %d: %s", f.ID, f.Body)
		}
		seen[f.ID] = true
	}
	reqW.Close()
	if err := <-done; err != nil || len(seen) != 3 {
		t.Errorf("serve: %v, answered %v", err, seen)
	}
}

type memJournal struct {
	mu   sync.Mutex
	sent []Sent
}

func (j *memJournal) Record(_ context.Context, s Sent) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.sent = append(j.sent, s)
	return nil
}

func signedRaw(t *testing.T, hexKey string, nonce uint64) string {
	t.Helper()
	key, err := crypto.HexToECDSA(hexKey)
	if err != nil {
		t.Fatal(err)
	}
	to := common.HexToAddress("0x42")
	tx := types.NewTx(&types.DynamicFeeTx{ChainID: big.NewInt(31337), Nonce: nonce, GasTipCap: big.NewInt(1),
		GasFeeCap: big.NewInt(2_000_000_000), Gas: 21000, To: &to, Value: big.NewInt(1)})
	signed, err := types.SignTx(tx, types.LatestSignerForChainID(big.NewInt(31337)), key)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := signed.MarshalBinary()
	return hexutil.Encode(b)
}
