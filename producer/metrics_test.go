package producer

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/deployer-dev/deployer/metrics"
)

// /metrics takes the admin token, like every operator route, and shows the API's
// requests and the queues, under names of ours.
func TestMetricsAreAdminOnly(t *testing.T) {
	const apiToken, adminToken = "api-token-1", "admin-token-1"
	f := newFixtureConfig(t, func(c *Config) {
		c.Access = Access{APIToken: apiToken, AdminToken: adminToken}
		c.Metrics = metrics.NewRegistry()
	})
	// A deployment first, so that its queue exists and its route has a series.
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/deploy", strings.NewReader(`{"path_url": "counter", "framework": "foundry"}`))
	req.Header.Set("Authorization", "Bearer "+apiToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("deploy: %d", resp.StatusCode)
	}
	scrape := func(token string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/metrics", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, token := range []string{"", apiToken} {
		if code, _ := scrape(token); code != http.StatusUnauthorized {
			t.Errorf("/metrics with %q: %d, want 401", token, code)
		}
	}
	code, body := scrape(adminToken)
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	for _, want := range []string{
		`deployer_http_request_duration_seconds_count{code="202",method="POST",route="/deploy"} 1`,
		`deployer_asynq_queue_size{queue="` + f.ns.DeployQueue() + `"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(body, adminToken) || strings.Contains(body, apiToken) {
		t.Error("/metrics shows a token")
	}
}
