package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/deployer-dev/deployer/api"
	"github.com/deployer-dev/deployer/chains"
	"github.com/deployer-dev/deployer/client"
	"github.com/deployer-dev/deployer/internal/testenv"
	"github.com/deployer-dev/deployer/jobs"
)

// A job reaches its chain only through its gateway: a script that calls the chain's
// admin methods changes nothing and learns nothing, and its job fails saying which
// method was refused.
func TestScriptCannotControlTheChain(t *testing.T) {
	s := getStack(t)
	// Something on chain to attack: a contract, and the balance of an account.
	target := s.deploy(t, api.DeployRequest{PathURL: "examples/counter", Contract: "src/Counter.sol:Counter", ConstructorArgs: []string{"1"}})
	requireCompleted(t, target)
	addr := target.Result.Contracts[0].Address
	admin := s.chainAdmin(t, "local")
	codeBefore, err := admin.Code(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	victim := "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
	balanceBefore := balanceOf(t, admin, victim)

	for _, c := range []struct{ method, params string }{
		{"anvil_setBalance", `["` + victim + `", "0x0"]`},
		{"anvil_setCode", `["` + addr + `", "0x00"]`},
		{"evm_setAutomine", `[false]`},
		{"anvil_reset", `[]`},
		{"anvil_nodeInfo", `[]`},
	} {
		j := s.deploy(t, api.DeployRequest{PathURL: "e2e/testdata/rpc-call", Sig: "run(string,string)", Args: []string{c.method, c.params}})
		if j.Status != jobs.Failed || j.Error == nil || !strings.Contains(*j.Error, c.method) {
			t.Errorf("a script calling %s: %s %q", c.method, j.Status, deref(j.Error))
		}
	}
	if code, _ := admin.Code(context.Background(), addr); code != codeBefore {
		t.Error("a script rewrote a contract's code")
	}
	if got := balanceOf(t, admin, victim); got.Cmp(balanceBefore) != 0 {
		t.Errorf("a script changed a balance: %s -> %s", balanceBefore, got)
	}
	// The chain still mines (no evm_setAutomine false, no reset): a deployment lands.
	requireCompleted(t, s.deploy(t, api.DeployRequest{PathURL: "examples/counter", Contract: "src/Counter.sol:Counter", ConstructorArgs: []string{"2"}}))

	// The published RPC users get serves reads, not the admin methods.
	var out json.RawMessage
	err = chains.NewRPC(target.Result.RPCURL, nil).Call(context.Background(), "anvil_setBalance", &out, victim, "0x0")
	if err == nil || !strings.Contains(err.Error(), "not available") {
		t.Errorf("anvil_setBalance on the published RPC: %v", err)
	}
	if _, err := chains.NewRPC(target.Result.RPCURL, nil).Code(context.Background(), addr); err != nil {
		t.Errorf("reads on the published RPC: %v", err)
	}
}

func balanceOf(t *testing.T, rpc *chains.RPC, addr string) *big.Int {
	t.Helper()
	var b hexutil.Big
	if err := rpc.Call(context.Background(), "eth_getBalance", &b, addr, "latest"); err != nil {
		t.Fatal(err)
	}
	return b.ToInt()
}

// Each client signs with a key of its own: one client's script cannot manage what
// another deployed; the owner's later deployment can.
func TestClientsCannotManageEachOthersContracts(t *testing.T) {
	s := ownStack(t, stackOpts{env: []string{"ADMIN_TOKEN=e2e-admin-token", "API_TOKENS=alice=e2e-alice-token,bob=e2e-bob-token"}})
	alice, bob := client.New(s.url, "e2e-alice-token"), client.New(s.url, "e2e-bob-token")
	owned := deployWith(t, alice, api.DeployRequest{PathURL: "e2e/testdata/owned"})
	requireCompleted(t, owned)
	addr := owned.Result.Contracts[0].Address
	if owned.Result.Client != "alice" || owned.Result.Sender == "" {
		t.Errorf("result client %q sender %q", owned.Result.Client, owned.Result.Sender)
	}

	attack := deployWith(t, bob, api.DeployRequest{PathURL: "e2e/testdata/owned", Script: "script/Set.s.sol:Set", Sig: "run(address,uint256)", Args: []string{addr, "7"}})
	if attack.Status != jobs.Failed || !strings.Contains(deref(attack.Error), "not the owner") {
		t.Errorf("bob setting alice's contract: %s %q", attack.Status, deref(attack.Error))
	}
	manage := deployWith(t, alice, api.DeployRequest{PathURL: "e2e/testdata/owned", Script: "script/Set.s.sol:Set", Sig: "run(address,uint256)", Args: []string{addr, "42"}})
	requireStatus(t, manage, jobs.Completed)
	if manage.Result.Sender != owned.Result.Sender || attack.Result != nil {
		t.Errorf("alice's senders %q, %q", owned.Result.Sender, manage.Result.Sender)
	}
	if v := callUint(t, owned.Result.RPCURL, addr, "0x3fa4f245"); v != 42 {
		t.Errorf("value() = %d, want 42", v)
	}
}

// requireStatus fails unless the job ended so.
func requireStatus(t *testing.T, j api.Job, want jobs.Status) {
	t.Helper()
	if j.Status != want {
		t.Fatalf("job %s ended %s (%q), want %s", j.JobID, j.Status, deref(j.Error), want)
	}
}

// Deployments of different clients to one chain run at the same time: no chain-wide
// lock. Without tokens every job is its own client.
func TestThreeDeploymentsToOneChainAtOnce(t *testing.T) {
	s := getStack(t)
	var wg sync.WaitGroup
	results := make([]api.Job, 3)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = s.deploy(t, api.DeployRequest{PathURL: "examples/counter", Contract: "src/Counter.sol:Counter", ConstructorArgs: []string{fmt.Sprint(10 + i)}})
		}()
	}
	wg.Wait()
	senders := map[string]bool{}
	for _, j := range results {
		requireCompleted(t, j)
		senders[j.Result.Sender] = true
	}
	if len(senders) != 3 {
		t.Errorf("three jobs without tokens signed with %d senders", len(senders))
	}
}

// testnet is an anvil playing a real network, reached at a URL with an API key in it.
type testnet struct {
	rpcURL  string // as the service is told it, with the fake key
	direct  *chains.RPC
	keyHex  string
	address string
}

const fakeAPIKey = "FAKEAPIKEY0123456789abcdef"

func newTestnet(t *testing.T) testnet {
	t.Helper()
	url := testenv.Anvil(t, "--chain-id", "11155111")
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	n := testnet{
		// anvil serves "/" only, with any query: the key goes in the query, as
		// Infura's and others' do (a key in the path is masked too: networks tests it).
		rpcURL:  url + "/?apikey=" + fakeAPIKey,
		direct:  chains.NewRPC(url, nil),
		keyHex:  hexutil.Encode(crypto.FromECDSA(key)),
		address: strings.ToLower(crypto.PubkeyToAddress(key.PublicKey).Hex()),
	}
	if err := n.direct.Call(context.Background(), "anvil_setBalance", nil, n.address, "0x56BC75E2D63100000"); err != nil {
		t.Fatal(err)
	}
	return n
}

func (n testnet) nonce(t *testing.T) uint64 {
	t.Helper()
	var c hexutil.Uint64
	if err := n.direct.Call(context.Background(), "eth_getTransactionCount", &c, n.address, "latest"); err != nil {
		t.Fatal(err)
	}
	return uint64(c)
}

// remoteNetworks adds the testnet to the test networks, and a network that claims
// another chain id at the same URL.
const remoteNetworks = `{"networks": [
 {"name": "local", "type": "local", "chain_id": 31337, "port": 0},
 {"name": "testnet", "type": "remote", "chain_id": 11155111, "rpc_url_env": "E2E_TESTNET_RPC", "deployer_key_env": "E2E_TESTNET_KEY"},
 {"name": "wrongnet", "type": "remote", "chain_id": 5, "rpc_url_env": "E2E_TESTNET_RPC", "deployer_key_env": "E2E_TESTNET_KEY"}
]}`

func (n testnet) env() []string {
	return []string{"E2E_TESTNET_RPC=" + n.rpcURL, "E2E_TESTNET_KEY=" + n.keyHex}
}

// A real network: the configured key signs, the container never sees it or the URL's
// key, and neither shows anywhere; a network that answers another chain id gets
// nothing.
func TestRemoteNetwork(t *testing.T) {
	net := newTestnet(t)
	s := ownStack(t, stackOpts{networks: remoteNetworks, env: net.env()})
	j := s.deploy(t, api.DeployRequest{PathURL: "examples/counter", Network: "testnet"})
	if j.Status != jobs.Completed {
		t.Fatalf("deployment to testnet: %s %q", j.Status, deref(j.Error))
	}
	if j.Result.Sender != net.address || j.Result.ChainID != 11155111 || len(j.Result.Contracts) != 1 {
		t.Errorf("result %+v", j.Result)
	}
	c := j.Result.Contracts[0]
	if code, err := net.direct.Code(context.Background(), c.Address); err != nil || len(code) < 4 {
		t.Errorf("no code at %s on the testnet: %v", c.Address, err)
	}
	var tx struct {
		From string `json:"from"`
	}
	if err := net.direct.Call(context.Background(), "eth_getTransactionByHash", &tx, c.TxHash); err != nil || tx.From != net.address {
		t.Errorf("the creating transaction is from %q (%v), want the configured key's %s", tx.From, err, net.address)
	}
	if net.nonce(t) != 2 {
		t.Errorf("the sender sent %d transactions, want 2 (create, increment)", net.nonce(t))
	}

	// The chain id is checked before anything is sent.
	before := net.nonce(t)
	wrong := s.deploy(t, api.DeployRequest{PathURL: "examples/counter", Network: "wrongnet"})
	if wrong.Status != jobs.Failed || !strings.Contains(deref(wrong.Error), "answers as chain 11155111, not 5") {
		t.Errorf("wrong chain id: %s %q", wrong.Status, deref(wrong.Error))
	}
	if net.nonce(t) != before {
		t.Error("a transaction was sent to a network with the wrong chain id")
	}

	// The secrets: the key and the URL's API key, in no result, log, payload or page.
	logs, _ := s.client.Logs(context.Background(), j.JobID)
	views, _ := json.Marshal([]api.Job{j, wrong})
	var overview json.RawMessage
	s.call(t, http.MethodGet, "/dashboard/api/overview", http.StatusOK, &overview)
	places := map[string]string{"the deployer's log": s.logs.String(), "the job's log": logs, "the jobs": string(views),
		"the dashboard": string(overview), "Redis": s.redisDump(t)}
	for where, text := range places {
		for _, secret := range []string{fakeAPIKey, strings.TrimPrefix(net.keyHex, "0x")} {
			if strings.Contains(text, secret) {
				t.Errorf("%s shows a secret", where)
			}
		}
	}
	if !strings.Contains(j.Result.RPCURL, "apikey=***") {
		t.Errorf("rpc_url %q is not masked", j.Result.RPCURL)
	}
}

// redisDump is every value of the installation's Redis, as text.
func (s *stack) redisDump(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	var b strings.Builder
	keys, err := s.rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		switch s.rdb.Type(ctx, k).Val() {
		case "string":
			b.WriteString(s.rdb.Get(ctx, k).Val())
		case "hash":
			for f, v := range s.rdb.HGetAll(ctx, k).Val() {
				b.WriteString(f + v)
			}
		case "list":
			b.WriteString(strings.Join(s.rdb.LRange(ctx, k, 0, -1).Val(), ""))
		case "zset":
			b.WriteString(strings.Join(s.rdb.ZRange(ctx, k, 0, -1).Val(), ""))
		case "set":
			b.WriteString(strings.Join(s.rdb.SMembers(ctx, k).Val(), ""))
		}
	}
	return b.String()
}

var (
	faultBinOnce sync.Once
	faultBin     string
	faultBinErr  error
)

// faultBinary is the deployer built with its fault hooks (-tags faulthooks).
func faultBinary(t *testing.T) string {
	t.Helper()
	faultBinOnce.Do(func() {
		faultBin = filepath.Join(filepath.Dir(binPath), "deployer-faulthooks")
		cmd := exec.Command("go", "build", "-tags", "faulthooks", "-o", faultBin, "./cmd/deployer")
		cmd.Dir = testenv.RepoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			faultBinErr = fmt.Errorf("%v: %s", err, out)
		}
	})
	if faultBinErr != nil {
		t.Fatal(faultBinErr)
	}
	return faultBin
}

// A worker killed after the first of a deployment's two transactions: the retried
// job sends nothing again and runs no script again; it fails, listing what was sent.
func TestRemoteCrashNeverSendsTwice(t *testing.T) {
	net := newTestnet(t)
	first := ownStack(t, stackOpts{networks: remoteNetworks, bin: faultBinary(t),
		env: append(net.env(), "DEPLOYER_FAULT_KILL_AFTER_SENDS=1")})
	resp, err := first.client.Deploy(context.Background(), api.DeployRequest{PathURL: "examples/counter", Network: "testnet", Framework: "foundry"})
	if err != nil {
		t.Fatal(err)
	}
	if err := first.cmd.Wait(); err == nil {
		t.Fatal("the worker was not killed by its fault hook")
	}
	if net.nonce(t) != 1 {
		t.Fatalf("%d transactions sent before the crash, want 1", net.nonce(t))
	}
	second := ownStack(t, stackOpts{instance: first.instance, redisURL: first.redisURL, networks: remoteNetworks, env: net.env()})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	j, err := second.client.Wait(ctx, resp.JobID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if j.Status != jobs.Failed || !strings.Contains(deref(j.Error), "stopped after sending 1 transaction") || j.Attempts != 2 {
		t.Errorf("after the crash: %s, attempt %d, %q", j.Status, j.Attempts, deref(j.Error))
	}
	if n := net.nonce(t); n != 1 {
		t.Errorf("the sender sent %d transactions in all, want 1: the deployment was sent again", n)
	}
}
