package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deployer-dev/deployer/api"
	"github.com/deployer-dev/deployer/internal/testenv"
)

// chromium runs Debian's headless Chromium on a URL with extra flags, as the machine
// allows it: no sandbox (root), no network but the page's own.
func chromium(t *testing.T, url string, extra ...string) []byte {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		testenv.Missing(t, "chromium: %v", err)
	}
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(), "--window-size=1440,2200", "--virtual-time-budget=8000"}, extra...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, append(args, url)...).Output()
	if err != nil {
		t.Fatalf("chromium %v: %v", extra, err)
	}
	return out
}

// The dashboard, in a real browser, shows the deployments that just ran; its
// screenshot is kept as a test artifact.
func TestDashboardInBrowser(t *testing.T) {
	s := ownStack(t, stackOpts{})
	ok := s.deploy(t, api.DeployRequest{PathURL: "examples/counter"})
	requireCompleted(t, ok)
	warm := s.deploy(t, api.DeployRequest{PathURL: "examples/counter"})
	requireCompleted(t, warm)
	failed := s.deploy(t, api.DeployRequest{PathURL: "e2e/testdata/broken", Contract: "src/Bad.sol:Bad"})

	dom := string(chromium(t, s.url+"/", "--dump-dom"))
	for _, j := range []api.Job{ok, warm, failed} {
		row := `data-job-id="` + j.JobID + `" data-status="` + string(j.Status) + `"`
		if !strings.Contains(dom, row) {
			t.Errorf("the dashboard does not show job %s as %s", j.JobID, j.Status)
		}
	}
	for _, hook := range []string{`id="chart"`, `<svg`, `class="bar`, `id="updated"`, `data-ready="true"`} {
		if !strings.Contains(dom, hook) {
			t.Errorf("the dashboard lacks %s", hook)
		}
	}
	// A link to a job opens it, with its output, from the job's event stream.
	logs, err := s.client.Logs(context.Background(), ok.JobID)
	if err != nil {
		t.Fatal(err)
	}
	line := ""
	for _, l := range strings.Split(logs, "\n") {
		if l = strings.TrimSpace(l); len(l) > 12 && !strings.ContainsAny(l, "<>&\"'") {
			line = l
			break
		}
	}
	opened := string(chromium(t, s.url+"/#job="+ok.JobID, "--dump-dom"))
	if !strings.Contains(opened, `data-log-for="`+ok.JobID+`"`) || line == "" || !strings.Contains(opened, line) {
		t.Errorf("the opened job does not show its output (%q) from its events", line)
	}

	dir := filepath.Join(testenv.RepoRoot(), "test-output")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(dir, "dashboard.png")
	os.Remove(shot)
	chromium(t, s.url+"/", "--screenshot="+shot)
	if info, err := os.Stat(shot); err != nil || info.Size() < 10_000 {
		t.Errorf("no screenshot at %s (%v)", shot, err)
	}
	t.Logf("screenshot: %s", shot)
}

// The queue monitor loads in a real browser, with nothing from the internet.
func TestMonitoringInBrowser(t *testing.T) {
	s := getStack(t)
	dom := string(chromium(t, s.url+"/monitoring", "--dump-dom"))
	if !strings.Contains(dom, "Queues") && !strings.Contains(dom, "queue") {
		t.Errorf("the monitoring page did not render:\n%.2000s", dom)
	}
	if strings.Contains(dom, "googleapis") {
		t.Error("the monitoring page asks a font service on the internet")
	}
}
