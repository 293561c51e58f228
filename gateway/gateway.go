// Package gateway is the only way a job reaches a chain. For each job the worker
// serves one JSON-RPC endpoint that only the job's container can reach (relay.go),
// and the gateway alone talks to the chain. It answers what a deployment needs
// (reads, estimates, receipts), signs the job's transactions with a key the job
// never sees, refuses everything else (the chain's admin methods above all), and
// records every transaction it sends, so that the job's result is checked against
// what really went through it.
package gateway

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// Config is one job's gateway.
type Config struct {
	// Upstream is the chain as the worker reaches it. Its URL may hold an API key: it
	// never appears in an answer, an error or a log.
	Upstream *Upstream
	ChainID  uint64
	// Key signs the job's eth_sendTransaction; its address is the job's sender.
	Key *ecdsa.PrivateKey
	// Remote marks a real network: only the sender may send, the spend caps apply,
	// and the sender must be able to pay for each transaction before it is signed.
	Remote bool
	// MaxValue caps one transaction's value, MaxSpend what the job spends in all
	// (values and gas at the most the transactions allow); nil: no cap.
	MaxValue, MaxSpend *big.Int
	// Journal records each transaction the gateway signs before it is sent.
	Journal Journal
	// ClaimRaw is called the first time the job sends a transaction it signed itself
	// from an address (a script with anvil's well-known keys): it takes that address's
	// lock on the chain, so that two jobs do not race for its nonces.
	ClaimRaw func(ctx context.Context, from common.Address) error
	Log      *slog.Logger
}

// Journal keeps the transactions a job's gateway signed, before they are sent.
type Journal interface {
	Record(ctx context.Context, tx Sent) error
}

// Sent is a transaction the gateway sent for a job.
type Sent struct {
	Hash  string `json:"hash"`
	From  string `json:"from"`
	Nonce uint64 `json:"nonce"`
	// Raw is the signed transaction, to send again after a crash (journal only).
	Raw string `json:"raw,omitempty"`
}

// Session is one job's gateway.
type Session struct {
	cfg    Config
	sender common.Address

	sendMu sync.Mutex
	// handled is the time spent in Handle, requests how many bodies it answered.
	handled, requests atomic.Int64

	mu       sync.Mutex
	sent     []Sent
	spent    *big.Int
	claimed  map[common.Address]bool
	simulate bool
}

// Simulate makes the gateway refuse to send (a dry run), or send again.
func (s *Session) Simulate(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.simulate = on
}

func (s *Session) simulating() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.simulate
}

// New returns a job's gateway.
func New(cfg Config) *Session {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Session{cfg: cfg, sender: crypto.PubkeyToAddress(cfg.Key.PublicKey), spent: new(big.Int),
		claimed: map[common.Address]bool{}}
}

// Sender is the address that signs the job's transactions.
func (s *Session) Sender() common.Address { return s.sender }

// Sent lists the transactions that went through the gateway, in order.
func (s *Session) Sent() []Sent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Sent(nil), s.sent...)
}

// Limits of what the gateway reads.
const (
	maxBody  = 16 << 20
	maxBatch = 256
)

// request and response are JSON-RPC 2.0 messages.
type request struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id,omitempty"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params,omitempty"`
}

type response struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   *rpcError       `json:"error,omitempty"`
}

type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	// Data is passed on as the chain gave it: a revert's reason is in it.
	Data json.RawMessage `json:"data,omitempty"`
}

func (e *rpcError) Error() string { return e.Message }

// JSON-RPC error codes.
const (
	codeParse          = -32700
	codeInvalid        = -32600
	codeMethodNotFound = -32601
	codeParams         = -32602
	codeServer         = -32000
)

// Cost is what the gateway added to a job: the time it spent on requests beyond the
// chain's own answers (checks, signing, journaling), over how many requests.
func (s *Session) Cost() (time.Duration, int64) {
	return time.Duration(s.handled.Load() - s.cfg.Upstream.spent.Load()), s.requests.Load()
}

// Handle answers one HTTP body: a request or a batch, each element checked on its own.
func (s *Session) Handle(ctx context.Context, body []byte) []byte {
	start := time.Now()
	defer func() {
		s.handled.Add(int64(time.Since(start)))
		s.requests.Add(1)
	}()
	if len(body) > maxBody {
		return mustJSON(response{JSONRPC: "2.0", ID: json.RawMessage("null"), Error: &rpcError{Code: codeInvalid, Message: "request too large"}})
	}
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) > 0 && trimmed[0] == '[' {
		var batch []json.RawMessage
		if err := json.Unmarshal(trimmed, &batch); err != nil {
			return mustJSON(response{JSONRPC: "2.0", ID: json.RawMessage("null"), Error: &rpcError{Code: codeParse, Message: "not JSON"}})
		}
		if len(batch) == 0 || len(batch) > maxBatch {
			return mustJSON(response{JSONRPC: "2.0", ID: json.RawMessage("null"), Error: &rpcError{Code: codeInvalid, Message: fmt.Sprintf("a batch holds 1 to %d requests", maxBatch)}})
		}
		out := make([]response, len(batch))
		for i, raw := range batch {
			out[i] = s.one(ctx, raw)
		}
		return mustJSON(out)
	}
	return mustJSON(s.one(ctx, trimmed))
}

func (s *Session) one(ctx context.Context, raw json.RawMessage) response {
	var req request
	if err := json.Unmarshal(raw, &req); err != nil {
		return response{JSONRPC: "2.0", ID: json.RawMessage("null"), Error: &rpcError{Code: codeParse, Message: "not a JSON-RPC request"}}
	}
	if len(req.ID) == 0 {
		req.ID = json.RawMessage("null")
	}
	resp := response{JSONRPC: "2.0", ID: req.ID}
	result, err := s.dispatch(ctx, req)
	if err != nil {
		var re *rpcError
		if !errors.As(err, &re) {
			re = &rpcError{Code: codeServer, Message: err.Error()}
		}
		resp.Error = re
		return resp
	}
	resp.Result = result
	return resp
}

func (s *Session) dispatch(ctx context.Context, req request) (json.RawMessage, error) {
	switch {
	case req.Method == "eth_accounts" || req.Method == "eth_requestAccounts":
		return mustJSON([]string{strings.ToLower(s.sender.Hex())}), nil
	case req.Method == "eth_sendTransaction":
		return s.sendTransaction(ctx, req.Params)
	case req.Method == "eth_sendRawTransaction":
		return s.sendRawTransaction(ctx, req.Params)
	case Forwarded(req.Method):
		return s.cfg.Upstream.Forward(ctx, req.Method, req.Params)
	}
	return nil, &rpcError{Code: codeMethodNotFound, Message: fmt.Sprintf("method %s is not available through the deployer's gateway", truncate(req.Method, 64))}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
