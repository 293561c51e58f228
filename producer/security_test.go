package producer

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/deployer-dev/deployer/api"
	"github.com/deployer-dev/deployer/tasks"
)

const (
	apiToken   = "api-token-for-tests"
	adminToken = "admin-token-for-tests"
)

func (f *fixture) request(method, path, auth string, header map[string]string) (*http.Response, string) {
	f.t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, strings.NewReader(`{}`))
	if err != nil {
		f.t.Fatal(err)
	}
	switch {
	case strings.HasPrefix(auth, "basic:"):
		req.SetBasicAuth("anyone", strings.TrimPrefix(auth, "basic:"))
	case auth != "":
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	n, _ := resp.Body.Read(buf)
	b.Write(buf[:n])
	return resp, b.String()
}

// Every route group takes the tokens it should and no other.
func TestAccessControl(t *testing.T) {
	f := newFixtureWith(t, Access{APIToken: apiToken, AdminToken: adminToken})
	id := "/deploy/" + strings.Repeat("0", 24)
	groups := []struct {
		name   string
		routes [][2]string
		open   bool
		api    bool
	}{
		{"probes", [][2]string{{"GET", "/healthz"}, {"GET", "/readyz"}}, true, true},
		{"deployments", [][2]string{{"POST", "/projects"}, {"POST", "/deploy"}, {"GET", id}, {"GET", id + "/logs"}, {"DELETE", id}}, false, true},
		{"admin", [][2]string{{"GET", "/"}, {"GET", "/dashboard/api/overview"}, {"GET", "/dashboard/static/fonts/fonts.css"},
			{"GET", "/containers/stats"}, {"POST", "/containers/cleanup"}, {"GET", "/admin/server/cache/status"},
			{"POST", "/admin/server/cache/clear"}, {"GET", "/admin/server/foundry-cache/status"},
			{"GET", "/monitoring"}, {"GET", "/monitoring/api/queues"}}, false, false},
	}
	for _, g := range groups {
		for _, r := range g.routes {
			for _, c := range []struct {
				auth  string
				allow bool
			}{
				{"", g.open},
				{"wrong", g.open},
				{"basic:wrong", g.open},
				{apiToken, g.api},
				{"basic:" + apiToken, g.api},
				{adminToken, true},
				{"basic:" + adminToken, true},
			} {
				resp, body := f.request(r[0], r[1], c.auth, nil)
				if got := resp.StatusCode != http.StatusUnauthorized; got != c.allow {
					t.Errorf("%s %s with %q: %d, want allowed=%t", r[0], r[1], c.auth, resp.StatusCode, c.allow)
				}
				if resp.StatusCode == http.StatusUnauthorized {
					if strings.TrimSpace(body) != `{"error":"unauthorized"}` {
						t.Errorf("%s %s: 401 says %q", r[0], r[1], body)
					}
					if !g.api && resp.Header.Get("WWW-Authenticate") == "" {
						t.Errorf("%s %s: a browser is not asked for the token", r[0], r[1])
					}
				}
			}
		}
	}
}

// With only an admin token, it opens the deployment routes too.
func TestAdminTokenAlone(t *testing.T) {
	f := newFixtureWith(t, Access{AdminToken: adminToken})
	if resp, _ := f.request("GET", "/deploy/"+strings.Repeat("0", 24), "", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no token: %d", resp.StatusCode)
	}
	if resp, _ := f.request("GET", "/deploy/"+strings.Repeat("0", 24), adminToken, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("admin token: %d", resp.StatusCode)
	}
}

func TestRateLimitOnDeploy(t *testing.T) {
	f := newFixtureWith(t, Access{RateLimit: 6, RateLimitBurst: 20, TrustedProxies: []string{"127.0.0.0/8"}})
	for i := range 20 {
		if resp, body := f.request("POST", "/deploy", "", nil); resp.StatusCode == http.StatusTooManyRequests {
			t.Fatalf("request %d of a burst of 20 refused: %s", i+1, body)
		}
	}
	resp, body := f.request("POST", "/deploy", "", nil)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "10" || !strings.Contains(body, "too many deployments") {
		t.Errorf("21st request: %d, Retry-After %q: %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	// Another client, named by the trusted proxy, has its own allowance.
	resp, _ = f.request("POST", "/deploy", "", map[string]string{"X-Forwarded-For": "10.1.2.3"})
	if resp.StatusCode == http.StatusTooManyRequests {
		t.Error("a second client was limited by the first one's requests")
	}
	// Polling is not limited.
	if resp, _ := f.request("GET", "/deploy/"+strings.Repeat("0", 24), "", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("poll after the limit: %d", resp.StatusCode)
	}
}

func TestForwardedForIsIgnoredWithoutTrustedProxy(t *testing.T) {
	f := newFixtureWith(t, Access{RateLimit: 6, RateLimitBurst: 1})
	f.request("POST", "/deploy", "", nil)
	resp, _ := f.request("POST", "/deploy", "", map[string]string{"X-Forwarded-For": "10.9.9.9"})
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("a forged X-Forwarded-For escaped the limit: %d", resp.StatusCode)
	}
}

func TestPagesCarrySecurityHeaders(t *testing.T) {
	f := newFixture(t)
	resp, body := f.request("GET", "/", "", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "<html") {
		t.Fatalf("dashboard page: %d", resp.StatusCode)
	}
	for h, want := range map[string]string{
		"X-Content-Type-Options":  "nosniff",
		"X-Frame-Options":         "DENY",
		"Content-Security-Policy": "default-src 'self'",
		"Referrer-Policy":         "no-referrer",
	} {
		if !strings.Contains(resp.Header.Get(h), want) {
			t.Errorf("%s: %q", h, resp.Header.Get(h))
		}
	}
	resp, body = f.request("GET", "/monitoring", "", nil)
	if resp.StatusCode != http.StatusOK || strings.Contains(body, "googleapis") || !strings.Contains(body, "/dashboard/static/fonts/fonts.css") {
		t.Errorf("monitoring page: %d, loads fonts from elsewhere: %t", resp.StatusCode, strings.Contains(body, "googleapis"))
	}
}

// A client is the holder of one token: its jobs carry its name, never the token. A
// real network takes deployments from the clients it lists and the admin only.
func TestClientsAndRealNetworks(t *testing.T) {
	f := newFixtureWith(t, Access{AdminToken: adminToken, APITokens: map[string]string{"alice": "alice-token-1", "bob": "bob-token-22"}})
	f.api.cfg.DurableRedis = true
	deploy := func(token, network string) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/deploy",
			strings.NewReader(`{"path_url": "counter", "framework": "foundry", "network": "`+network+`"}`))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		_, _ = io.Copy(&b, resp.Body)
		return resp, b.String()
	}
	resp, body := deploy("alice-token-1", "mainnet")
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("alice to mainnet: %d %s", resp.StatusCode, body)
	}
	var queued api.DeployResponse
	_ = json.Unmarshal([]byte(body), &queued)
	job, _ := f.api.jobs.Get(context.Background(), queued.JobID)
	info, _ := f.insp.GetTaskInfo(f.ns.DeployQueue(), queued.JobID)
	p, _ := tasks.DecodeDeploy(info.Payload)
	if job.Client != "alice" || p.Client != "alice" || strings.Contains(string(info.Payload), "alice-token-1") || strings.Contains(string(info.Payload), "SECRETAPIKEY") {
		t.Errorf("job client %q, payload %s", job.Client, info.Payload)
	}
	if resp, body := deploy("bob-token-22", "mainnet"); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, `client \"bob\" may not deploy to network \"mainnet\"`) {
		t.Errorf("bob to mainnet: %d %s", resp.StatusCode, body)
	}
	if resp, body := deploy(adminToken, "mainnet"); resp.StatusCode != http.StatusAccepted {
		t.Errorf("the admin to mainnet: %d %s", resp.StatusCode, body)
	}
	if resp, body := deploy("bob-token-22", "local"); resp.StatusCode != http.StatusAccepted {
		t.Errorf("bob to local: %d %s", resp.StatusCode, body)
	}
}
