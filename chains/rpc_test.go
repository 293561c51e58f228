package chains

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// fakeChain answers eth_getCode with the address it was asked for, and refuses any
// other method; with batches false it answers a batch as a chain that takes none does.
func fakeChain(t *testing.T, batches bool, posts *atomic.Int32) *RPC {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		posts.Add(1)
		var raw json.RawMessage
		if err := json.NewDecoder(r.Body).Decode(&raw); err != nil {
			t.Error(err)
			return
		}
		type req struct {
			ID     int64  `json:"id"`
			Method string `json:"method"`
			Params []any  `json:"params"`
		}
		answer := func(q req) map[string]any {
			if q.Method != "eth_getCode" {
				return map[string]any{"jsonrpc": "2.0", "id": q.ID, "error": map[string]any{"code": -32601, "message": "no " + q.Method}}
			}
			return map[string]any{"jsonrpc": "2.0", "id": q.ID, "result": q.Params[0]}
		}
		if raw[0] == '[' {
			if !batches {
				_ = json.NewEncoder(w).Encode(map[string]any{"jsonrpc": "2.0", "id": nil, "error": map[string]any{"code": -32600, "message": "batches are not supported"}})
				return
			}
			var qs []req
			_ = json.Unmarshal(raw, &qs)
			var out []map[string]any
			// In reverse: a batch's answers come in any order.
			for i := len(qs) - 1; i >= 0; i-- {
				out = append(out, answer(qs[i]))
			}
			_ = json.NewEncoder(w).Encode(out)
			return
		}
		var q req
		_ = json.Unmarshal(raw, &q)
		_ = json.NewEncoder(w).Encode(answer(q))
	}))
	t.Cleanup(srv.Close)
	return NewRPC(srv.URL, nil)
}

func TestBatchAnswersEachCall(t *testing.T) {
	for _, batches := range []bool{true, false} {
		var posts atomic.Int32
		rpc := fakeChain(t, batches, &posts)
		codes := make([]string, maxBatch+2)
		var calls []*BatchCall
		for i := range codes {
			calls = append(calls, CodeCall("0x"+string(rune('a'+i%26)), &codes[i]))
		}
		var rc *Receipt
		refused := ReceiptCall("0x01", &rc)
		calls = append(calls, refused)
		if err := rpc.Batch(context.Background(), calls); err != nil {
			t.Fatal(err)
		}
		for i, c := range codes {
			if want := "0x" + string(rune('a'+i%26)); c != want || calls[i].Err != nil {
				t.Fatalf("batches %t: call %d got %q (%v), want %q", batches, i, c, calls[i].Err, want)
			}
		}
		if refused.Err == nil {
			t.Errorf("batches %t: a refused call has no error", batches)
		}
		want := int32(2)
		if !batches {
			want = 2 + int32(len(calls))
		}
		if posts.Load() != want {
			t.Errorf("batches %t: %d requests, want %d", batches, posts.Load(), want)
		}
	}
}
