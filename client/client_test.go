package client

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/deployer-dev/deployer/api"
	"github.com/deployer-dev/deployer/jobs"
)

// Wait polls until the job ends, telling of each change once; an error answer comes
// back as a StatusError with the API's message; the token goes as a bearer.
func TestWaitAndErrors(t *testing.T) {
	var polls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		switch r.URL.Path {
		case "/deploy/j1":
			j := api.Job{JobID: "j1", Status: jobs.Queued}
			switch n := polls.Add(1); {
			case n == 2, n == 3:
				j.Status, j.Step = jobs.Running, "compiling"
			case n >= 4:
				j.Status = jobs.Completed
			}
			_ = json.NewEncoder(w).Encode(j)
		default:
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(api.Error{Error: "unknown network \"moon\""})
		}
	}))
	defer srv.Close()
	c := New(srv.URL+"/", "tok")
	var seen []string
	j, err := c.Wait(context.Background(), "j1", func(j api.Job) { seen = append(seen, string(j.Status)+" "+j.Step) })
	if err != nil || j.Status != jobs.Completed {
		t.Fatalf("wait: %+v, %v", j, err)
	}
	if len(seen) != 3 || seen[0] != "queued " || seen[1] != "running compiling" || seen[2] != "completed " {
		t.Errorf("progress %q", seen)
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
