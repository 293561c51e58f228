package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
)

// The relay carries a job's JSON-RPC between its container and the gateway. A job's
// container has no network: the worker starts the relay in it (runner/relay.js, with
// docker exec), which listens on the container's own loopback, where forge finds it
// as http://127.0.0.1:8545, and passes each request's body to the worker over the
// exec's standard output, one JSON line each ({"id", "body"}); the worker answers on
// the exec's standard input ({"id", "body"}). No other job can reach it: every
// container has a loopback of its own.

// RelayPort is where the relay listens inside a job's container.
const RelayPort = 8545

// RelayURL is the chain's URL as a job sees it.
var RelayURL = fmt.Sprintf("http://127.0.0.1:%d", RelayPort)

// Handler answers one HTTP body of JSON-RPC.
type Handler interface {
	Handle(ctx context.Context, body []byte) []byte
}

// Switch is a Handler for a relay that serves a container's jobs in turn. Serve asks
// it, as it reads each request, which Handler answers that request, and tells it each
// fence the relay passed back (see WriteFence): the requests read after fence n were
// sent after the relay got it.
type Switch interface {
	Handler
	Current() Handler
	Fenced(n uint64)
}

type frame struct {
	ID    uint64 `json:"id,omitempty"`
	Body  string `json:"body,omitempty"`
	Ready bool   `json:"ready,omitempty"`
	Fence uint64 `json:"fence,omitempty"`
}

// WriteFence sends the relay fence n, on its input: the relay refuses the requests
// still pending and passes the fence back in line with the requests it sends.
func WriteFence(w io.Writer, n uint64) error {
	b, _ := json.Marshal(frame{Fence: n})
	_, err := w.Write(append(b, '\n'))
	return err
}

// maxConcurrent bounds the requests a relay has in flight at the gateway.
const maxConcurrent = 32

// Serve answers the requests read from the relay's output on its input, until the
// output ends or ctx does. ready is closed once the relay listens.
func Serve(ctx context.Context, h Handler, requests io.Reader, answers io.Writer, ready chan<- struct{}) error {
	r := bufio.NewReaderSize(requests, 64<<10)
	var (
		wmu    sync.Mutex
		wg     sync.WaitGroup
		sem    = make(chan struct{}, maxConcurrent)
		once   sync.Once
		werr   error
		ready2 = func() { once.Do(func() { close(ready) }) }
	)
	defer wg.Wait()
	for {
		line, err := readLine(r, 2*maxBody+1024)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		var f frame
		if json.Unmarshal(line, &f) != nil {
			return fmt.Errorf("relay: a line that is not a frame")
		}
		if f.Ready {
			ready2()
			continue
		}
		sw, switches := h.(Switch)
		if f.Fence != 0 {
			if switches {
				sw.Fenced(f.Fence)
			}
			continue
		}
		// Who answers is decided as the request is read, in line with the fences.
		target := h
		if switches {
			target = sw.Current()
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		wg.Add(1)
		go func(f frame) {
			defer wg.Done()
			defer func() { <-sem }()
			out := target.Handle(ctx, []byte(f.Body))
			b, _ := json.Marshal(frame{ID: f.ID, Body: string(out)})
			wmu.Lock()
			defer wmu.Unlock()
			if werr == nil {
				_, werr = answers.Write(append(b, '\n'))
			}
		}(f)
	}
}

// AwaitReady reads the relay's first frame, which says it listens. A relay started
// before its job (in an idle container) is awaited so; Serve then takes the rest of
// the same reader, and its ready channel is not waited for.
func AwaitReady(r *bufio.Reader) error {
	line, err := readLine(r, 1024)
	if err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	var f frame
	if json.Unmarshal(line, &f) != nil || !f.Ready {
		return fmt.Errorf("relay: its first frame is not ready")
	}
	return nil
}

// readLine reads one line of at most limit bytes.
func readLine(r *bufio.Reader, limit int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > limit {
			return nil, fmt.Errorf("relay: a line over %d bytes", limit)
		}
		if err == nil {
			return line, nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			if len(line) > 0 && errors.Is(err, io.EOF) {
				return line, nil
			}
			return nil, err
		}
	}
}
