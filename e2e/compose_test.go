package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deployer-dev/deployer/internal/testenv"
)

// docker-compose.yml validates with Debian's docker-compose, and says what the
// service needs: Redis with persistence, a scalable worker with the Docker socket on
// the chains' network, the API and the scheduler, from the repository's image.
func TestComposeFileValidates(t *testing.T) {
	bin, err := exec.LookPath("docker-compose")
	if err != nil {
		testenv.Missing(t, "docker-compose: %v", err)
	}
	cmd := exec.Command(bin, "-f", "docker-compose.yml", "config")
	cmd.Dir = testenv.RepoRoot()
	cmd.Env = append(os.Environ(), "ADMIN_TOKEN=compose-test-admin", "API_TOKEN=compose-test-api")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("docker-compose config: %v\n%s", err, out)
	}
	cfg := string(out)
	for _, want := range []string{
		"redis:", "appendonly", "redis-data:/data",
		"api:", "worker:", "scheduler:", "image: deployer:latest",
		"/var/run/docker.sock:/var/run/docker.sock", "CHAIN_RPC_VIA: network",
		"name: deployer-network", "ADMIN_TOKEN: compose-test-admin", "METRICS_ADDR: :9101",
	} {
		if !strings.Contains(cfg, want) {
			t.Errorf("docker-compose config lacks %q:\n%s", want, cfg)
		}
	}
	// A worker that can be scaled has no fixed name and publishes no port.
	worker := cfg[strings.Index(cfg, "  worker:"):]
	if next := strings.Index(worker[3:], "\n  scheduler:"); next > 0 {
		worker = worker[:next]
	}
	if strings.Contains(worker, "container_name") || strings.Contains(worker, "ports:") {
		t.Errorf("the worker service cannot be scaled:\n%s", worker)
	}
	// Without an admin token it refuses to start.
	cmd = exec.Command(bin, "-f", "docker-compose.yml", "config", "-q")
	cmd.Dir = testenv.RepoRoot()
	cmd.Env = append(os.Environ(), "ADMIN_TOKEN=")
	if err := cmd.Run(); err == nil {
		t.Error("docker-compose accepts a set-up without ADMIN_TOKEN")
	}
}

// The repository's Dockerfile builds the services' image with no registry, and the
// binary in it runs.
func TestServiceImageBuilds(t *testing.T) {
	requireParts(t)
	t.Parallel()
	root := testenv.RepoRoot()
	build := exec.Command("go", "build", "-o", filepath.Join(root, "bin", "deployer"), "./cmd/deployer")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	instance := testenv.Instance("image")
	tag := "deployer-service-" + instance + ":test"
	t.Cleanup(func() { _ = testenv.Cleanup(instance) })
	cmd := exec.Command("docker", "build", "--network", "none", "--label", "io.deployer.instance="+instance, "-t", tag, ".")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker build: %v\n%s", err, out)
	}
	out, _ := exec.Command("docker", "run", "--rm", "--network", "none", "--label", "io.deployer.instance="+instance,
		"--label", "io.deployer.managed-by=deployer", tag, "help").CombinedOutput()
	if !strings.Contains(string(out), "usage: deployer") {
		t.Errorf("the image's deployer does not run:\n%s", out)
	}
	labels, err := exec.Command("docker", "image", "inspect", "-f", "{{json .Config.Labels}}", tag).Output()
	if err != nil || !strings.Contains(string(labels), `"io.deployer.role":"service"`) || !strings.Contains(string(labels), `"io.deployer.managed-by":"deployer"`) {
		t.Errorf("image labels %s (%v)", labels, err)
	}
}
