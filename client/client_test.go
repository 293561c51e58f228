package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/deployer-dev/deployer/api"
	"github.com/deployer-dev/deployer/jobs"
)

// Wait follows the job's events until it ends, telling of each change once, and
// resumes a dropped stream after the last event it saw; an error answer comes back
// as a StatusError with the API's message; the token goes as a bearer.
func TestWaitAndErrors(t *testing.T) {
	var streams atomic.Int32
	var resumedAfter atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		switch r.URL.Path {
		case "/deploy/j1":
			_ = json.NewEncoder(w).Encode(api.Job{JobID: "j1", Status: jobs.Queued})
		case "/deploy/j1/events":
			w.Header().Set("Content-Type", "text/event-stream")
			if streams.Add(1) == 1 {
				// Two steps, then the connection drops.
				fmt.Fprint(w, "retry: 1000\n\nid: 1-0\nevent: step\ndata: {\"step\":\"starting\"}\n\n")
				fmt.Fprint(w, "id: 2-0\nevent: step\ndata: {\"step\":\"compiling\"}\n\n")
				return
			}
			resumedAfter.Store(r.Header.Get("Last-Event-ID"))
			fmt.Fprint(w, "id: 3-0\nevent: log\ndata: {\"text\":\"ok\\n\"}\n\n")
			fmt.Fprint(w, "id: 4-0\nevent: end\ndata: {\"job_id\":\"j1\",\"status\":\"completed\"}\n\n")
		default:
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(api.Error{Error: "unknown network \"moon\""})
		}
	}))
	defer srv.Close()
	c := New(srv.URL+"/", "tok")
	var seen []string
	var output string
	j, err := c.Follow(context.Background(), "j1", Handlers{
		Progress: func(j api.Job) { seen = append(seen, string(j.Status)+" "+j.Step) },
		Output:   func(text string) { output += text },
	})
	if err != nil || j.Status != jobs.Completed {
		t.Fatalf("wait: %+v, %v", j, err)
	}
	if strings.Join(seen, "|") != "queued |running starting|running compiling|completed " {
		t.Errorf("progress %q", seen)
	}
	if output != "ok\n" || resumedAfter.Load() != "2-0" {
		t.Errorf("output %q, resumed after %q (want 2-0)", output, resumedAfter.Load())
	}
	_, err = c.Deploy(context.Background(), api.DeployRequest{Network: "moon"})
	var se *StatusError
	if !errors.As(err, &se) || se.Code != http.StatusBadRequest || se.Message != `unknown network "moon"` {
		t.Errorf("deploy error: %v", err)
	}
	if _, err := New(srv.URL, "").Job(context.Background(), "j1"); !errors.As(err, &se) || se.Code != http.StatusUnauthorized {
		t.Errorf("without the token: %v", err)
	}
}
