package producer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/deployer-dev/deployer/api"
	"github.com/deployer-dev/deployer/jobs"
)

// chunked hides a body's length, as a client streaming it does: the limit must hold
// while it is read, not only when it is announced.
type chunked struct{ io.Reader }

// Every route bounds its body: an upload at MAX_PROJECT_BYTES, a JSON body much
// lower, the rest lower still. Past it the answer is a 413 naming the limit,
// whether the length was announced or not, and nothing is stored or enqueued.
func TestBodyLimits(t *testing.T) {
	f := newFixture(t)
	big := bytes.Repeat([]byte("x"), maxRequestBytes+10)
	for _, tt := range []struct {
		method, path, ct string
		body             []byte
		says             string
	}{
		{"POST", "/deploy", "application/json", big, fmt.Sprintf("the request body is larger than %d bytes", maxRequestBytes)},
		{"POST", "/projects", "application/gzip", bytes.Repeat([]byte("x"), 64<<10+1), fmt.Sprintf("the project archive is larger than %d bytes", 64<<10)},
		{"GET", "/healthz", "", bytes.Repeat([]byte("x"), otherBodyBytes+1), fmt.Sprintf("the request body is larger than %d bytes", otherBodyBytes)},
		{"POST", "/containers/cleanup", "application/json", bytes.Repeat([]byte("x"), otherBodyBytes+1), "larger than"},
		{"POST", "/monitoring/api/queues/x:pause", "application/json", big, "larger than"},
	} {
		for _, announced := range []bool{true, false} {
			var body io.Reader = bytes.NewReader(tt.body)
			if !announced {
				body = chunked{body}
			}
			req, _ := http.NewRequest(tt.method, f.srv.URL+tt.path, body)
			if tt.ct != "" {
				req.Header.Set("Content-Type", tt.ct)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				// The server may close the connection as soon as it answered, while
				// the client still sends: the answer is then lost to the client.
				t.Logf("%s %s (announced %t): %v", tt.method, tt.path, announced, err)
				continue
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			// Routes that never read their body do not see it pass the limit unless
			// it was announced.
			if !announced && (tt.path == "/healthz" || tt.path == "/containers/cleanup" || strings.HasPrefix(tt.path, "/monitoring")) {
				continue
			}
			if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(errorOf(t, b), tt.says) {
				t.Errorf("%s %s (announced %t): %d %s", tt.method, tt.path, announced, resp.StatusCode, b)
			}
		}
	}
	if n := f.queued(); n != 0 {
		t.Errorf("%d tasks enqueued", n)
	}
	for _, k := range f.mr.Keys() {
		if strings.Contains(k, ":project:") {
			t.Errorf("an oversized upload was stored: %s", k)
		}
	}
}

// serve runs the API with its real server and the timeouts on a loopback port, and
// returns its address.
func serve(t *testing.T, f *fixture) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.api.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return ln.Addr().String()
}

// closedWithin says whether the server ends the connection (an answer, then the
// end, or the end at once) within d; what it sent is returned.
func closedWithin(t *testing.T, conn net.Conn, d time.Duration) (string, bool) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(d))
	b, err := io.ReadAll(conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return string(b), false
	}
	return string(b), true
}

// A client that sends its headers or body slowly, or keeps a connection idle, has
// the connection cut, with a 408 naming what did not arrive when there is one to
// give. The bound of the test is far above the server's timeouts: it never depends
// on the machine's speed, only on the cut happening at all.
func TestSlowClientsAreCut(t *testing.T) {
	f := newFixtureConfig(t, func(c *Config) {
		c.Timeouts = Timeouts{ReadHeader: 200 * time.Millisecond, Read: 200 * time.Millisecond, UploadRead: 400 * time.Millisecond, Idle: 200 * time.Millisecond}
	})
	addr := serve(t, f)
	const bound = 20 * time.Second
	dial := func() net.Conn {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}

	t.Run("headers", func(t *testing.T) {
		conn := dial()
		fmt.Fprint(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n")
		if _, closed := closedWithin(t, conn, bound); !closed {
			t.Error("a request whose headers never end holds its connection")
		}
	})
	t.Run("body", func(t *testing.T) {
		conn := dial()
		fmt.Fprint(conn, "POST /deploy HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"path_url\"")
		got, closed := closedWithin(t, conn, bound)
		if !closed {
			t.Fatal("a body that never ends holds its connection")
		}
		if !strings.HasPrefix(got, "HTTP/1.1 408") || !strings.Contains(got, "the request body did not arrive within 200ms") {
			t.Errorf("answer to a stalled body: %q", got)
		}
	})
	t.Run("upload", func(t *testing.T) {
		conn := dial()
		fmt.Fprint(conn, "POST /projects HTTP/1.1\r\nHost: x\r\nContent-Type: application/gzip\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n")
		got, closed := closedWithin(t, conn, bound)
		if !closed || !strings.HasPrefix(got, "HTTP/1.1 408") || !strings.Contains(got, "the project archive did not arrive within 400ms") {
			t.Errorf("answer to a stalled upload (closed %t): %q", closed, got)
		}
	})
	t.Run("idle", func(t *testing.T) {
		conn := dial()
		fmt.Fprint(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		r := bufio.NewReader(conn)
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Close {
			t.Fatalf("healthz: %d, close %t", resp.StatusCode, resp.Close)
		}
		_ = conn.SetReadDeadline(time.Now().Add(bound))
		if _, err := r.ReadByte(); err == nil || isTimeout(err) {
			t.Errorf("an idle kept-alive connection stays open: %v", err)
		}
	})
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// A long poll outlives the write timeout of every other route: its wait extends its
// own deadline, so the job's end still reaches the client.
func TestLongPollOutlivesTheWriteTimeout(t *testing.T) {
	f := newFixtureConfig(t, func(c *Config) {
		c.Timeouts = Timeouts{Read: 100 * time.Millisecond, Write: 100 * time.Millisecond}
	})
	base := "http://" + serve(t, f)
	resp, err := http.Post(base+"/deploy", "application/json", strings.NewReader(`{"path_url": "counter", "framework": "foundry"}`))
	if err != nil {
		t.Fatal(err)
	}
	var queued api.DeployResponse
	_ = json.NewDecoder(resp.Body).Decode(&queued)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("deploy: %d", resp.StatusCode)
	}
	// The job ends well after the write timeout (and the server's own, read plus
	// write), and well within the wait.
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		time.Sleep(time.Second)
		_ = f.api.jobs.Finish(context.Background(), queued.JobID, jobs.Outcome{Status: jobs.Failed, Error: "played"}, time.Now())
	}()
	t.Cleanup(func() { <-ended })
	// A connection of its own: a client retries a GET that was cut on a reused
	// connection, and the retry would find the job ended.
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err = fresh.Get(base + "/deploy/" + queued.JobID + "?wait=60s")
	if err != nil {
		t.Fatalf("the long poll was cut: %v", err)
	}
	defer resp.Body.Close()
	var j api.Job
	if err := json.NewDecoder(resp.Body).Decode(&j); err != nil || resp.StatusCode != http.StatusOK || j.Status != jobs.Failed {
		t.Errorf("GET ?wait: %d %+v %v", resp.StatusCode, j, err)
	}

	// POST /deploy?wait= waits for the job it makes, as long.
	ctx, stop := context.WithCancel(context.Background())
	t.Cleanup(stop)
	go func() {
		for ctx.Err() == nil {
			if ids, _ := f.api.jobs.Recent(ctx, 1); len(ids) == 1 && ids[0] != queued.JobID {
				time.Sleep(time.Second)
				_ = f.api.jobs.Finish(ctx, ids[0], jobs.Outcome{Status: jobs.Failed, Error: "played"}, time.Now())
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	resp, err = fresh.Post(base+"/deploy?wait=60s", "application/json", strings.NewReader(`{"path_url": "counter", "framework": "foundry"}`))
	if err != nil {
		t.Fatalf("the long poll was cut: %v", err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&j); err != nil || resp.StatusCode != http.StatusOK || j.Status != jobs.Failed {
		t.Errorf("POST ?wait: %d %+v %v", resp.StatusCode, j, err)
	}
}
