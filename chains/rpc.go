package chains

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
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
	resp, err := r.post(ctx, body)
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
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

// post sends a JSON-RPC body to the chain.
func (r *RPC) post(ctx context.Context, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range r.header {
		req.Header[k] = v
	}
	resp, err := r.http.Do(req)
	if err != nil {
		// The URL is left out: it may hold a key.
		return nil, fmt.Errorf("chain unreachable: %w", unwrapURLError(err))
	}
	return resp, nil
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

// Trace is a transaction's call frames, as debug_traceTransaction's callTracer
// gives them.
type Trace struct {
	Type  string  `json:"type"`
	To    string  `json:"to"`
	Error string  `json:"error"`
	Calls []Trace `json:"calls"`
}

// Created lists the addresses the traced transaction created, at any depth; frames
// that reverted are left out.
func (t Trace) Created() []string {
	var out []string
	var walk func(f Trace)
	walk = func(f Trace) {
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
	walk(t)
	return out
}

// Created lists the addresses a transaction created, at any depth, by tracing it;
// frames that reverted are left out.
func (r *RPC) Created(ctx context.Context, hash string) ([]string, error) {
	var top Trace
	if err := r.Call(ctx, "debug_traceTransaction", &top, hash, traceOptions); err != nil {
		return nil, err
	}
	return top.Created(), nil
}

var traceOptions = map[string]any{"tracer": "callTracer"}

// BatchCall is one call of a Batch: Out receives its result, Err its error.
type BatchCall struct {
	Method string
	Params []any
	Out    any
	Err    error
}

// ReceiptCall, TraceCall and CodeCall are Receipt, Created and Code as calls of a
// Batch.
func ReceiptCall(hash string, out **Receipt) *BatchCall {
	return &BatchCall{Method: "eth_getTransactionReceipt", Params: []any{hash}, Out: out}
}

func TraceCall(hash string, out *Trace) *BatchCall {
	return &BatchCall{Method: "debug_traceTransaction", Params: []any{hash, traceOptions}, Out: out}
}

func CodeCall(addr string, out *string) *BatchCall {
	return &BatchCall{Method: "eth_getCode", Params: []any{addr, "latest"}, Out: out}
}

// maxBatch bounds the calls of one request: providers cap their batches. maxAnswer
// bounds what the worker reads of an answer.
const (
	maxBatch  = 50
	maxAnswer = 64 << 20
)

// Batch makes the calls in JSON-RPC batches, one round trip for up to maxBatch of
// them. A call the chain refused has its Err; an error of a whole batch (the chain
// unreachable, an answer that is not one) is returned.
func (r *RPC) Batch(ctx context.Context, calls []*BatchCall) error {
	for len(calls) > 0 {
		n := min(len(calls), maxBatch)
		if err := r.batch(ctx, calls[:n]); err != nil {
			return err
		}
		calls = calls[n:]
	}
	return nil
}

func (r *RPC) batch(ctx context.Context, calls []*BatchCall) error {
	type request struct {
		JSONRPC string `json:"jsonrpc"`
		ID      int64  `json:"id"`
		Method  string `json:"method"`
		Params  []any  `json:"params"`
	}
	reqs := make([]request, len(calls))
	byID := make(map[int64]*BatchCall, len(calls))
	for i, c := range calls {
		params := c.Params
		if params == nil {
			params = []any{}
		}
		reqs[i] = request{JSONRPC: "2.0", ID: r.id.Add(1), Method: c.Method, Params: params}
		byID[reqs[i].ID] = c
	}
	body, err := json.Marshal(reqs)
	if err != nil {
		return err
	}
	resp, err := r.post(ctx, body)
	if err != nil {
		return fmt.Errorf("batch of %s: %w", calls[0].Method, err)
	}
	defer resp.Body.Close()
	var raw json.RawMessage
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxAnswer)).Decode(&raw); err != nil {
		return fmt.Errorf("batch of %s: bad answer (HTTP %d): %w", calls[0].Method, resp.StatusCode, err)
	}
	if t := bytes.TrimSpace(raw); len(t) > 0 && t[0] == '{' {
		// One answer for the whole batch: a chain that takes no batches. The calls
		// go one by one.
		for _, c := range calls {
			c.Err = r.Call(ctx, c.Method, c.Out, c.Params...)
		}
		return nil
	}
	var answers []struct {
		ID     int64           `json:"id"`
		Result json.RawMessage `json:"result"`
		Error  *RPCError       `json:"error"`
	}
	if err := json.Unmarshal(raw, &answers); err != nil {
		return fmt.Errorf("batch of %s: bad answer (HTTP %d): %w", calls[0].Method, resp.StatusCode, err)
	}
	for _, a := range answers {
		c := byID[a.ID]
		if c == nil {
			continue
		}
		delete(byID, a.ID)
		switch {
		case a.Error != nil:
			c.Err = fmt.Errorf("%s: %w", c.Method, a.Error)
		case c.Out != nil:
			if err := json.Unmarshal(a.Result, c.Out); err != nil {
				c.Err = fmt.Errorf("%s: decode result: %w", c.Method, err)
			}
		}
	}
	for _, c := range byID {
		c.Err = fmt.Errorf("%s: the chain did not answer it in its batch", c.Method)
	}
	return nil
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
