package producer

import (
	"archive/tar"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/deployer-dev/deployer/api"
	"github.com/deployer-dev/deployer/jobs"
	"github.com/deployer-dev/deployer/projects"
	"github.com/deployer-dev/deployer/tasks"
)

// project is a small Foundry project archive no other test makes.
func project(t *testing.T) []byte {
	t.Helper()
	noise := make([]byte, 1500)
	_, _ = rand.Read(noise)
	return tarGz(t, []*tar.Header{{Name: "foundry.toml", Typeflag: tar.TypeReg}, {Name: "src/A.sol", Typeflag: tar.TypeReg}},
		map[string]string{"foundry.toml": "[profile.default]\n", "src/A.sol": "// " + hex.EncodeToString(noise) + "\n"})
}

func (f *fixture) upload(auth string, archive []byte, header map[string]string) (*http.Response, []byte) {
	f.t.Helper()
	h := map[string]string{"Content-Type": "application/gzip"}
	for k, v := range header {
		h[k] = v
	}
	return f.send("POST", "/projects", auth, archive, h)
}

// A client stores at most its upload budget a day: past it an upload is a 429
// naming the budget and when it frees, and nothing is stored. An archive stored
// already costs nothing, whoever stored it; another client has a budget of its own.
func TestUploadBudget(t *testing.T) {
	a1, a2, a3 := project(t), project(t), project(t)
	budget := int64(len(a1) + len(a2) + len(a3)/2)
	f := newFixtureConfig(t, func(c *Config) {
		c.Access = Access{AdminToken: adminToken, APITokens: map[string]string{"alice": "alice-token-1", "bob": "bob-token-22"}}
		c.UploadBudget = budget
	})
	window, ends := tasks.BudgetWindow(time.Now())
	counter := f.ns.BudgetKey(tasks.UploadBudget, window, "alice")
	used := func() int64 {
		n, _ := strconv.ParseInt(stored(f.mr.Get(counter)), 10, 64)
		return n
	}
	for i, a := range [][]byte{a1, a1, a2} {
		if resp, body := f.upload("alice-token-1", a, nil); resp.StatusCode != http.StatusCreated {
			t.Fatalf("alice's upload %d within her budget: %d %s", i+1, resp.StatusCode, body)
		}
	}
	if got, want := used(), int64(len(a1)+len(a2)); got != want {
		t.Errorf("alice's counter holds %d bytes after storing %d (a project uploaded twice is charged once)", got, want)
	}

	resp, body := f.upload("alice-token-1", a3, nil)
	msg := errorOf(t, body)
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("an upload past the budget: %d %s", resp.StatusCode, body)
	}
	for _, want := range []string{`upload budget of client "alice" is spent`, "UPLOAD_BUDGET_BYTES", "frees at " + ends.Format(time.RFC3339)} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q does not say %q", msg, want)
		}
	}
	if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 24*3600 {
		t.Errorf("Retry-After %q: not the seconds until the budget frees", resp.Header.Get("Retry-After"))
	}
	if f.mr.Exists(f.ns.ProjectKey(projects.Sum(a3))) || used() != int64(len(a1)+len(a2)) {
		t.Error("the refused upload was stored or charged")
	}
	if ttl := f.mr.TTL(counter); ttl <= 0 || ttl > time.Until(ends)+time.Minute {
		t.Errorf("the counter lives %v, past the window's end in %v", ttl, time.Until(ends))
	}

	// Stored already: free, even over the budget.
	if resp, body := f.upload("alice-token-1", a1, nil); resp.StatusCode != http.StatusCreated {
		t.Errorf("re-uploading a stored project over the budget: %d %s", resp.StatusCode, body)
	}
	if resp, body := f.upload("bob-token-22", a3, nil); resp.StatusCode != http.StatusCreated {
		t.Errorf("bob's upload, while alice's budget is spent: %d %s", resp.StatusCode, body)
	}
	if resp, body := f.upload("alice-token-1", a3, nil); resp.StatusCode != http.StatusCreated {
		t.Errorf("alice uploading what bob stored: %d %s", resp.StatusCode, body)
	}
}

// Without tokens a client is an address, as the rate limits take it: each has a
// budget of its own.
func TestUploadBudgetPerAddressWithoutTokens(t *testing.T) {
	a1, a2 := project(t), project(t)
	f := newFixtureConfig(t, func(c *Config) {
		c.Access = Access{TrustedProxies: []string{"127.0.0.0/8"}}
		c.UploadBudget = int64(len(a1) + len(a2)/2)
	})
	from := func(ip string) map[string]string { return map[string]string{"X-Forwarded-For": ip} }
	if resp, body := f.upload("", a1, from("10.0.0.1")); resp.StatusCode != http.StatusCreated {
		t.Fatalf("first upload: %d %s", resp.StatusCode, body)
	}
	resp, body := f.upload("", a2, from("10.0.0.1"))
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(errorOf(t, body), `client "ip:10.0.0.1"`) {
		t.Errorf("second upload from the address: %d %s", resp.StatusCode, body)
	}
	if resp, body := f.upload("", a2, from("10.0.0.2")); resp.StatusCode != http.StatusCreated {
		t.Errorf("an upload from another address: %d %s", resp.StatusCode, body)
	}
}

// A job's output counts against its client's log budget: the API records whose it
// is, and the job's log, as the worker appends to it, stops at the budget with a
// note, while the job itself goes on.
func TestJobsOutputIsChargedToTheirClient(t *testing.T) {
	for _, tt := range []struct {
		name, token, client string
		acc                 Access
	}{
		{"token", "alice-token-1", "alice", Access{AdminToken: adminToken, APITokens: map[string]string{"alice": "alice-token-1"}}},
		{"no tokens", "", "ip:127.0.0.1", Access{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixtureConfig(t, func(c *Config) {
				c.Access = tt.acc
				c.LogBudget = 100
			})
			resp, body := f.send("POST", "/deploy", tt.token, []byte(`{"path_url": "counter", "framework": "foundry"}`),
				map[string]string{"Content-Type": "application/json"})
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("deploy: %d %s", resp.StatusCode, body)
			}
			var queued api.DeployResponse
			_ = json.Unmarshal(body, &queued)
			var b jobs.LogBudget
			if err := json.Unmarshal([]byte(stored(f.mr.Get(f.ns.JobLogBudgetKey(queued.JobID)))), &b); err != nil || b != (jobs.LogBudget{Client: tt.client, Limit: 100}) {
				t.Fatalf("the job's log budget: %+v %v", b, err)
			}
			// The worker's side: its store appends the job's output.
			for range 3 {
				if err := f.api.jobs.AppendLogs(context.Background(), queued.JobID, []byte(strings.Repeat("o", 60))); err != nil {
					t.Fatal(err)
				}
			}
			resp, logs := f.send("GET", "/deploy/"+queued.JobID+"/logs", tt.token, nil, nil)
			kept, note, _ := strings.Cut(string(logs), "\n[")
			if resp.StatusCode != http.StatusOK || len(kept) != 100 || !strings.Contains(note, "log budget of client \""+tt.client+"\" is spent") {
				t.Errorf("logs: %d %q", resp.StatusCode, logs)
			}
		})
	}
}

// stored is a miniredis value, or "" when there is none.
func stored(s string, err error) string {
	if err != nil {
		return ""
	}
	return s
}
