package chains

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// RPC is a JSON-RPC client of one chain, for the worker's own checks.
type RPC struct {
	url    string
	header http.Header
	http   *http.Client
	id     atomic.Int64
}

// NewRPC returns a client of the chain at url; header goes with every request (a
// managed chain's Admin header, for tracing and funding).
func NewRPC(url string, header http.Header) *RPC {
	return &RPC{url: url, header: header, http: &http.Client{Timeout: 30 * time.Second}}
}

// RPCError is an error the chain answered.
type RPCError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (e *RPCError) Error() string { return fmt.Sprintf("rpc error %d: %s", e.Code, e.Message) }

// Call calls a method and decodes its result into out.
func (r *RPC) Call(ctx context.Context, method string, out any, params ...any) error {
	if params == nil {
		params = []any{}
	}
	body, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": r.id.Add(1), "method": method, "params": params})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range r.header {
		req.Header[k] = v
	}
	resp, err := r.http.Do(req)
	if err != nil {
		// The URL is left out: it may hold a key.
		return fmt.Errorf("%s: chain unreachable: %w", method, unwrapURLError(err))
	}
	defer resp.Body.Close()
	var msg struct {
		Result json.RawMessage `json:"result"`
		Error  *RPCError       `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&msg); err != nil {
		return fmt.Errorf("%s: bad answer (HTTP %d): %w", method, resp.StatusCode, err)
	}
	if msg.Error != nil {
		return fmt.Errorf("%s: %w", method, msg.Error)
	}
	if out != nil {
		if err := json.Unmarshal(msg.Result, out); err != nil {
			return fmt.Errorf("%s: decode result: %w", method, err)
		}
	}
	return nil
}

// ChainID asks eth_chainId.
func (r *RPC) ChainID(ctx context.Context) (uint64, error) {
	var hex string
	if err := r.Call(ctx, "eth_chainId", &hex); err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimPrefix(hex, "0x"), 16, 64)
}

// Code returns the code at an address ("0x" for none).
func (r *RPC) Code(ctx context.Context, addr string) (string, error) {
	var code string
	err := r.Call(ctx, "eth_getCode", &code, addr, "latest")
	return code, err
}

// Receipt is the part of a transaction receipt the worker checks.
type Receipt struct {
	TransactionHash string  `json:"transactionHash"`
	Status          string  `json:"status"`
	ContractAddress *string `json:"contractAddress"`
	BlockNumber     string  `json:"blockNumber"`
}

// Receipt returns a transaction's receipt, or nil when the chain has none.
func (r *RPC) Receipt(ctx context.Context, hash string) (*Receipt, error) {
	var rc *Receipt
	err := r.Call(ctx, "eth_getTransactionReceipt", &rc, hash)
	return rc, err
}

// Created lists the addresses a transaction created, at any depth, by tracing it;
// frames that reverted are left out.
func (r *RPC) Created(ctx context.Context, hash string) ([]string, error) {
	type frame struct {
		Type  string  `json:"type"`
		To    string  `json:"to"`
		Error string  `json:"error"`
		Calls []frame `json:"calls"`
	}
	var top frame
	if err := r.Call(ctx, "debug_traceTransaction", &top, hash, map[string]any{"tracer": "callTracer"}); err != nil {
		return nil, err
	}
	var out []string
	var walk func(f frame)
	walk = func(f frame) {
		if f.Error != "" {
			return
		}
		if (f.Type == "CREATE" || f.Type == "CREATE2") && f.To != "" {
			out = append(out, strings.ToLower(f.To))
		}
		for _, c := range f.Calls {
			walk(c)
		}
	}
	walk(top)
	return out, nil
}

// unwrapURLError drops the URL net/http puts in its errors.
func unwrapURLError(err error) error {
	type unwrapper interface{ Unwrap() error }
	if u, ok := err.(unwrapper); ok && strings.Contains(err.Error(), "://") {
		if inner := u.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}
