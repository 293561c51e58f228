package producer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/deployer-dev/deployer/api"
	"github.com/deployer-dev/deployer/jobs"
)

func TestStoreDown(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	for _, c := range []struct {
		err  error
		down bool
	}{
		{refused, true},
		{fmt.Errorf("job abc: %w", refused), true},
		{io.EOF, true},
		{redis.ErrPoolTimeout, true},
		{redis.ErrClosed, true},
		{errors.New("LOADING Redis is loading the dataset in memory"), true},
		{errors.New("UNKNOWN: dial tcp 127.0.0.1:6379: connect: connection refused"), true},
		{errors.New("job has no record"), false},
		{jobs.ErrNotFound, false},
		{context.Canceled, false},
	} {
		if got := storeDown(c.err); got != c.down {
			t.Errorf("storeDown(%v) = %t, want %t", c.err, got, c.down)
		}
	}
}

// With Redis gone, the routes that need it answer 503 with a JSON error and
// Retry-After, at once: not 500, not a hang.
func TestRedisDownAnswers503(t *testing.T) {
	f := newFixture(t)
	f.mr.Close()
	for _, r := range []struct{ method, path, body string }{
		{http.MethodGet, "/deploy/0123456789abcdef01234567", ""},
		{http.MethodPost, "/deploy", `{"path_url": "counter", "framework": "foundry"}`},
		{http.MethodDelete, "/deploy/0123456789abcdef01234567", ""},
		{http.MethodGet, "/dashboard/api/overview", ""},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		req, err := http.NewRequestWithContext(ctx, r.method, f.srv.URL+r.path, strings.NewReader(r.body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		cancel()
		if err != nil {
			t.Fatalf("%s %s: %v", r.method, r.path, err)
		}
		var body api.Error
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || err != nil || body.Error == "" || resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s %s with Redis down: %d, Retry-After %q, body %+v (%v)", r.method, r.path,
				resp.StatusCode, resp.Header.Get("Retry-After"), body, err)
		}
	}
}
