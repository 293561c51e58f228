package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"
)

// Upstream is a chain's JSON-RPC endpoint as the worker reaches it. Its URL may
// hold an API key, so no error it returns names it.
type Upstream struct {
	url    string
	header http.Header
	http   *http.Client
	id     atomic.Int64
	// spent is the time spent waiting for the chain, in nanoseconds.
	spent atomic.Int64
}

// NewUpstream returns the endpoint at url; header goes with every request (the
// chain's admin token on a managed chain).
func NewUpstream(url string, header http.Header) *Upstream {
	return &Upstream{url: url, header: header, http: &http.Client{Timeout: 2 * time.Minute}}
}

// Forward sends one request and returns its result; an error the chain answered
// comes back as it was.
func (u *Upstream) Forward(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	if len(params) == 0 {
		params = json.RawMessage("[]")
	}
	body, err := json.Marshal(request{JSONRPC: "2.0", ID: json.RawMessage(fmt.Sprint(u.id.Add(1))), Method: method, Params: params})
	if err != nil {
		return nil, &rpcError{Code: codeParams, Message: "params are not JSON"}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.url, bytes.NewReader(body))
	if err != nil {
		return nil, errors.New("chain unreachable")
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range u.header {
		req.Header[k] = v
	}
	start := time.Now()
	defer func() { u.spent.Add(int64(time.Since(start))) }()
	resp, err := u.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		// net/http's errors quote the URL.
		return nil, &rpcError{Code: codeServer, Message: method + ": chain unreachable"}
	}
	defer resp.Body.Close()
	var msg response
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxBody)).Decode(&msg); err != nil {
		return nil, &rpcError{Code: codeServer, Message: fmt.Sprintf("%s: the chain answered HTTP %d, not JSON-RPC", method, resp.StatusCode)}
	}
	if msg.Error != nil {
		return nil, msg.Error
	}
	if msg.Result == nil {
		msg.Result = json.RawMessage("null")
	}
	return msg.Result, nil
}

// Call calls a method and decodes its result into out.
func (u *Upstream) Call(ctx context.Context, out any, method string, params ...any) error {
	if params == nil {
		params = []any{}
	}
	p, err := json.Marshal(params)
	if err != nil {
		return err
	}
	result, err := u.Forward(ctx, method, p)
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(result, out); err != nil {
		return fmt.Errorf("%s: decode result: %w", method, err)
	}
	return nil
}
