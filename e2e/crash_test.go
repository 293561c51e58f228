package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/deployer-dev/deployer/api"
)

// `deployer all` on its embedded Redis, killed with SIGKILL while one job runs and
// others wait, one of them submitted just before: its redis-server dies with it, and
// a restart on the same DATA_DIR finds every job, runs the waiting ones and retries
// the one that ran, each to completion with its contract on chain.
func TestCrashEmbeddedRedisKeepsJobs(t *testing.T) {
	dataDir := t.TempDir()
	// One slot: the first job runs, the rest wait behind it. A fixed worker id lets
	// the restarted worker remove what the killed one's job left.
	env := []string{"WORKER_CONCURRENCY=1", "WORKER_ID=crash"}
	first := ownStack(t, stackOpts{dataDir: dataDir, env: env})
	if !strings.Contains(first.logs.String(), "started embedded redis-server") {
		t.Fatalf("the embedded Redis is not a redis-server:\n%s", first.logs.String())
	}
	ctx := context.Background()
	running := first.submit(t, api.DeployRequest{PathURL: "e2e/testdata/medium"})
	first.waitStep(t, running, "deploying")
	queued := []string{first.submit(t, counterWith(1)), first.submit(t, counterWith(2))}
	redisPID := readPID(t, filepath.Join(dataDir, "redis.pid"))
	// The last is answered 202 and the process is killed at once.
	queued = append(queued, first.submit(t, counterWith(3)))
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.terminate()
	killed := time.Now()
	deadline := killed.Add(30 * time.Second)
	for processAlive(redisPID) {
		if time.Now().After(deadline) {
			t.Fatalf("the embedded redis-server (pid %d) outlived its deployer by 30 s", redisPID)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("the embedded redis-server died %s after its deployer", time.Since(killed).Round(time.Millisecond))

	start := time.Now()
	second := ownStack(t, stackOpts{instance: first.instance, dataDir: dataDir, env: env})
	t.Logf("restarted and ready in %s", time.Since(start).Round(time.Millisecond))
	if pid := readPID(t, filepath.Join(dataDir, "redis.pid")); pid == redisPID {
		t.Errorf("the restarted deployer runs the old redis-server (pid %d)", pid)
	}
	all := append([]string{running}, queued...)
	for _, id := range all {
		j, err := second.client.Job(ctx, id)
		if err != nil {
			t.Fatalf("job %s after the crash: %v", id, err)
		}
		if j.Status.Final() {
			t.Errorf("job %s ended before the crash (%s): the test did not crash it", id, j.Status)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, 6*time.Minute)
	defer cancel()
	for _, id := range all {
		j, err := second.client.Wait(wctx, id, nil)
		if err != nil {
			t.Fatalf("wait for job %s: %v", id, err)
		}
		requireCompleted(t, j)
		want := 1
		if id == running {
			// asynq hands the killed attempt's task out again once its lease lapses.
			want = 2
		}
		if j.Attempts != want {
			t.Errorf("job %s: %d attempts, want %d", id, j.Attempts, want)
		}
		t.Logf("job %s completed (attempt %d), seen %s after the restart", id, j.Attempts, time.Since(start).Round(time.Second))
	}
	t.Logf("every job completed %s after the restart", time.Since(start).Round(time.Second))
}

// A second `deployer all` on a DATA_DIR in use is refused, saying why, and the first
// goes on.
func TestCrashSecondDeployerOnDataDirRefused(t *testing.T) {
	dataDir := t.TempDir()
	first := ownStack(t, stackOpts{dataDir: dataDir})
	port := strconv.Itoa(freePortT(t))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, "all")
	cmd.Env = append(os.Environ(), "REDIS_URL=", "DATA_DIR="+dataDir, "HTTP_ADDR=127.0.0.1:"+port,
		"DEPLOYER_INSTANCE="+first.instance, "TOOLCHAIN_DIR="+filepath.Join(os.TempDir(), "none"))
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || !strings.Contains(string(out), "DATA_DIR is in use by another deployer") ||
		!strings.Contains(string(out), "process "+strconv.Itoa(first.cmd.Process.Pid)) {
		t.Fatalf("a second deployer on the DATA_DIR: %v\n%s", err, out)
	}
	j := first.deploy(t, api.DeployRequest{PathURL: "examples/counter", Contract: "src/Counter.sol:Counter", ConstructorArgs: []string{"7"}})
	requireCompleted(t, j)
}

func freePortT(t *testing.T) int {
	t.Helper()
	p, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func readPID(t *testing.T, file string) int {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return pid
}

// processAlive says pid runs: a zombie nobody reaped yet is dead.
func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return syscall.Kill(pid, 0) == nil
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || len(s) <= i+2 || s[i+2] != 'Z'
}
