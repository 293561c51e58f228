package producer

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deployer-dev/deployer/api"
	"github.com/deployer-dev/deployer/networks"
	"github.com/deployer-dev/deployer/projects"
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

// send makes a request with headers (a "basic:" or bearer token in auth) and reads
// the whole answer; an error answer must be JSON.
func (f *fixture) send(method, path, auth string, body []byte, header map[string]string) (*http.Response, []byte) {
	f.t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, bytes.NewReader(body))
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
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode >= 400 && !strings.HasPrefix(ct, "application/json") {
		f.t.Errorf("%s %s: error %d answered as %q, not JSON: %s", method, path, resp.StatusCode, ct, b)
	}
	return resp, b
}

// A browser resends basic-auth credentials to the API from any page: a
// state-changing request another site's page makes is refused, whoever's
// credentials it carries, while the dashboard's own requests and programs (which
// send neither Sec-Fetch-Site nor Origin) pass.
func TestCrossSiteRequestsAreRefused(t *testing.T) {
	for _, tt := range []struct {
		name string
		acc  Access
		auth string
	}{
		{"basic auth", Access{APIToken: apiToken, AdminToken: adminToken}, "basic:" + adminToken},
		{"no tokens configured", Access{}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixtureWith(t, tt.acc)
			deploy := []byte(`{"path_url": "counter", "framework": "foundry"}`)
			with := func(h map[string]string) map[string]string {
				out := map[string]string{"Content-Type": "application/json"}
				for k, v := range h {
					out[k] = v
				}
				return out
			}
			crossSite := []map[string]string{
				{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
				{"Sec-Fetch-Site": "same-site", "Origin": "http://other.localhost"},
				{"Origin": "https://evil.example"}, // an older browser: no Sec-Fetch-Site
				{"Origin": "null"},
			}
			for _, h := range crossSite {
				for _, r := range [][2]string{{"POST", "/deploy"}, {"POST", "/projects"}, {"DELETE", "/deploy/" + strings.Repeat("0", 24)},
					{"POST", "/containers/cleanup"}, {"POST", "/admin/server/cache/clear"}} {
					resp, body := f.send(r[0], r[1], tt.auth, deploy, with(h))
					if resp.StatusCode != http.StatusForbidden || !strings.Contains(errorOf(t, body), "cross-site request refused") {
						t.Errorf("%s %s with %v: %d %s", r[0], r[1], h, resp.StatusCode, body)
					}
				}
			}
			if n := f.queued(); n != 0 {
				t.Errorf("cross-site requests enqueued %d tasks", n)
			}
			// Reading is no change: the dashboard's data is read from any page only
			// with credentials, which another site's script cannot read the answer of.
			if resp, body := f.send("GET", "/dashboard/api/overview", tt.auth, nil, map[string]string{"Sec-Fetch-Site": "cross-site"}); resp.StatusCode != http.StatusOK {
				t.Errorf("cross-site GET: %d %s", resp.StatusCode, body)
			}
			// The dashboard's own page, and programs.
			for _, h := range []map[string]string{
				{"Sec-Fetch-Site": "same-origin", "Origin": f.srv.URL},
				{"Origin": f.srv.URL},
				{"Sec-Fetch-Site": "none"},
				nil,
			} {
				resp, body := f.send("POST", "/deploy", tt.auth, deploy, with(h))
				if resp.StatusCode != http.StatusAccepted {
					t.Errorf("POST /deploy with %v: %d %s", h, resp.StatusCode, body)
				}
			}
		})
	}
}

// Credentials are checked before anything else: a cross-site or mislabelled
// request without a token learns nothing but 401.
func TestAuthenticationIsCheckedFirst(t *testing.T) {
	f := newFixtureWith(t, Access{APIToken: apiToken, AdminToken: adminToken})
	for _, h := range []map[string]string{
		{"Content-Type": "text/plain"},
		{"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"},
	} {
		if resp, body := f.send("POST", "/deploy", "", []byte(`{}`), h); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("no token, %v: %d %s", h, resp.StatusCode, body)
		}
	}
}

// A route that takes JSON takes nothing else (415, naming what it takes), so that
// an HTML form, which can send only form and text types, never reaches it; an
// upload takes a gzip'd tar as the client labels it. A POST without a body has
// nothing to label.
func TestContentTypes(t *testing.T) {
	f := newFixtureWith(t, Access{APIToken: apiToken, AdminToken: adminToken})
	deploy := []byte(`{"path_url": "counter", "framework": "foundry"}`)
	for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "", "application/jsonx", "not a type"} {
		resp, body := f.send("POST", "/deploy", apiToken, deploy, map[string]string{"Content-Type": ct})
		if resp.StatusCode != http.StatusUnsupportedMediaType || !strings.Contains(errorOf(t, body), "takes Content-Type application/json") {
			t.Errorf("POST /deploy as %q: %d %s", ct, resp.StatusCode, body)
		}
	}
	for _, ct := range []string{"application/json", "application/json; charset=utf-8", "Application/JSON"} {
		if resp, body := f.send("POST", "/deploy", apiToken, deploy, map[string]string{"Content-Type": ct}); resp.StatusCode != http.StatusAccepted {
			t.Errorf("POST /deploy as %q: %d %s", ct, resp.StatusCode, body)
		}
	}
	// Bodiless: the handler's own answer, not a 415.
	if resp, body := f.send("POST", "/deploy", apiToken, nil, nil); resp.StatusCode != http.StatusBadRequest || !strings.Contains(errorOf(t, body), "not a JSON deploy request") {
		t.Errorf("bodiless POST /deploy: %d %s", resp.StatusCode, body)
	}
	for _, r := range []string{"/containers/cleanup", "/admin/server/cache/clear"} {
		if resp, body := f.send("POST", r, adminToken, nil, nil); resp.StatusCode == http.StatusUnsupportedMediaType {
			t.Errorf("bodiless POST %s: %d %s", r, resp.StatusCode, body)
		}
	}

	var buf bytes.Buffer
	if err := projects.Pack(&buf, filepath.Join(f.root, "counter"), projects.DefaultLimits, projects.PackOptions{Gzip: true}); err != nil {
		t.Fatal(err)
	}
	for _, ct := range []string{"application/gzip", "application/x-gzip", "application/octet-stream"} {
		if resp, body := f.send("POST", "/projects", apiToken, buf.Bytes(), map[string]string{"Content-Type": ct}); resp.StatusCode != http.StatusCreated {
			t.Errorf("POST /projects as %q: %d %s", ct, resp.StatusCode, body)
		}
	}
	for _, ct := range []string{"application/x-www-form-urlencoded", "text/plain", "application/json", ""} {
		resp, body := f.send("POST", "/projects", apiToken, buf.Bytes(), map[string]string{"Content-Type": ct})
		if resp.StatusCode != http.StatusUnsupportedMediaType || !strings.Contains(errorOf(t, body), "application/gzip") {
			t.Errorf("POST /projects as %q: %d %s", ct, resp.StatusCode, body)
		}
	}
}

func TestRateLimitOnUpload(t *testing.T) {
	f := newFixtureWith(t, Access{RateLimit: 6, RateLimitBurst: 3})
	var buf bytes.Buffer
	if err := projects.Pack(&buf, filepath.Join(f.root, "counter"), projects.DefaultLimits, projects.PackOptions{Gzip: true}); err != nil {
		t.Fatal(err)
	}
	gz := map[string]string{"Content-Type": "application/gzip"}
	for i := range 3 {
		if resp, body := f.send("POST", "/projects", "", buf.Bytes(), gz); resp.StatusCode != http.StatusCreated {
			t.Fatalf("upload %d of a burst of 3: %d %s", i+1, resp.StatusCode, body)
		}
	}
	resp, body := f.send("POST", "/projects", "", buf.Bytes(), gz)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "10" || !strings.Contains(errorOf(t, body), "too many uploads") {
		t.Errorf("4th upload: %d, Retry-After %q: %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	// Uploads and deployments have allowances of their own.
	if resp, body := f.send("POST", "/deploy", "", []byte(`{"path_url": "counter", "framework": "foundry"}`),
		map[string]string{"Content-Type": "application/json"}); resp.StatusCode != http.StatusAccepted {
		t.Errorf("a deployment after the uploads' limit: %d %s", resp.StatusCode, body)
	}
}

// Deployment tokens without an admin token would guard deployments and leave the
// rest open: the API refuses such a set-up, saying why, without the token.
func TestAPITokensNeedAnAdminToken(t *testing.T) {
	for _, acc := range []Access{{APIToken: "secret-api-token"}, {APITokens: map[string]string{"alice": "secret-alice-token"}}} {
		_, err := New(Config{Access: acc}, nil, nil, tasks.Namespace{Instance: "unit"}, networks.Set{}, slog.New(slog.DiscardHandler))
		if err == nil || !strings.Contains(err.Error(), "ADMIN_TOKEN") || strings.Contains(err.Error(), "secret") {
			t.Errorf("New with %d API tokens and no admin token: %v", len(acc.APITokens)+1, err)
		}
	}
}

// The log says when every route is open: on loopback as a warning, beyond it as an
// error naming what is exposed. With an admin token it says nothing of the kind.
func TestExposureIsLogged(t *testing.T) {
	loop := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5001}
	loop6 := &net.TCPAddr{IP: net.IPv6loopback, Port: 5001}
	all := &net.TCPAddr{IP: net.IPv6unspecified, Port: 5001}
	lan := &net.TCPAddr{IP: net.IPv4(192, 168, 1, 10), Port: 5001}
	for _, tt := range []struct {
		addr  net.Addr
		acc   Access
		level slog.Level
		says  string
	}{
		{loop, Access{}, slog.LevelWarn, "loopback address"},
		{loop6, Access{}, slog.LevelWarn, "loopback address"},
		{all, Access{}, slog.LevelError, "UNPROTECTED API"},
		{lan, Access{}, slog.LevelError, "UNPROTECTED API"},
		{all, Access{AdminToken: adminToken}, slog.LevelInfo, ""},
		{loop, Access{AdminToken: adminToken}, slog.LevelInfo, ""},
	} {
		level, msg := exposure(tt.addr, tt.acc)
		if level != tt.level || (tt.says == "") != (msg == "") || !strings.Contains(msg, tt.says) {
			t.Errorf("%s, admin token %t: %v %q", tt.addr, tt.acc.AdminToken != "", level, msg)
		}
	}
}
