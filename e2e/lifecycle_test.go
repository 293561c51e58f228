package e2e

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/deployer-dev/deployer/api"
	"github.com/deployer-dev/deployer/engine"
	"github.com/deployer-dev/deployer/internal/testenv"
	"github.com/deployer-dev/deployer/jobs"
)

// SIGTERM drains: a job that does not finish within SHUTDOWN_TIMEOUT goes back to the
// queue with its container gone, and the next worker picks it up.
func TestSIGTERMRequeuesRunningJob(t *testing.T) {
	first := ownStack(t, stackOpts{env: []string{"SHUTDOWN_TIMEOUT=2s"}})
	ctx := context.Background()
	resp, err := first.client.Deploy(ctx, api.DeployRequest{PathURL: "e2e/testdata/slow", Framework: "foundry"})
	if err != nil {
		t.Fatal(err)
	}
	first.waitStep(t, resp.JobID, "deploying")
	first.terminate()

	store := jobs.NewStore(first.rdb, first.ns, 24*time.Hour)
	j, err := store.Get(ctx, resp.JobID)
	if err != nil {
		t.Fatal(err)
	}
	if j.Status != jobs.Queued {
		t.Errorf("after shutdown the job's record says %s, want queued", j.Status)
	}
	info, err := first.insp.GetTaskInfo(first.ns.DeployQueue(), resp.JobID)
	if err != nil || info.State != asynq.TaskStatePending {
		t.Fatalf("after shutdown the task is %v (%v), want pending", info, err)
	}
	if left, _ := testenv.Leftovers(ctx, first.instance, map[string]string{engine.LabelRole: engine.RoleJob}); len(left) != 0 {
		t.Errorf("job containers left after shutdown: %v", left)
	}

	// A new worker on the same Redis runs the job again.
	second := ownStack(t, stackOpts{instance: first.instance, redisURL: first.redisURL})
	second.waitStep(t, resp.JobID, "deploying")
	got, err := second.client.Job(ctx, resp.JobID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Attempts != 2 || got.Status != jobs.Running {
		t.Errorf("after restart: %s, attempt %d", got.Status, got.Attempts)
	}
	if _, err := second.client.Cancel(ctx, resp.JobID); err != nil {
		t.Fatal(err)
	}
}

// waitStep polls a job until its step starts with prefix.
func (s *stack) waitStep(t *testing.T, id, prefix string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		j, err := s.client.Job(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(j.Step, prefix) {
			return
		}
		if j.Status.Final() || time.Now().After(deadline) {
			t.Fatalf("job %s never reached %q (now %s, %q)", id, prefix, j.Status, j.Step)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// deployer submit prints the result and says by its exit code whether the job
// completed.
func TestSubmitCommand(t *testing.T) {
	s := getStack(t)
	run := func(args ...string) (string, int) {
		cmd := exec.Command(binPath, append([]string{"submit"}, args...)...)
		cmd.Env = append(cmd.Environ(), "DEPLOYER_API="+s.url)
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), 0
	}
	out, code := run(filepath.Join(testenv.RepoRoot(), "examples", "counter"))
	if code != 0 || !strings.Contains(out, "completed") || !strings.Contains(out, "Counter") || !strings.Contains(out, "running") {
		t.Errorf("submit of a good project: exit %d\n%s", code, out)
	}
	out, code = run("-contract", "src/Bad.sol:Bad", filepath.Join(testenv.RepoRoot(), "e2e", "testdata", "broken"))
	if code != 1 || !strings.Contains(out, "compile error at src/Bad.sol") {
		t.Errorf("submit of a broken project: exit %d\n%s", code, out)
	}
}

// A job that runs past JOB_TIMEOUT fails, saying so, and leaves no container.
func TestJobTimeout(t *testing.T) {
	s := ownStack(t, stackOpts{env: []string{"JOB_TIMEOUT=15s"}})
	j := s.deploy(t, api.DeployRequest{PathURL: "e2e/testdata/slow"})
	// The script is what is slow; on a loaded machine the compile may already use up
	// the budget. Either way the message names one of the user's steps and the limit,
	// and a first run's image build does not count against it.
	if j.Status != jobs.Failed || j.Error == nil ||
		!(strings.Contains(*j.Error, "timed out while deploying to local (limit 15s)") ||
			strings.Contains(*j.Error, "timed out while compiling (limit 15s)")) {
		t.Fatalf("slow job under a 15 s limit: %s %v", j.Status, deref(j.Error))
	}
	if j.Attempts != 1 {
		t.Errorf("a timed-out job was tried %d times", j.Attempts)
	}
	if left, _ := testenv.Leftovers(context.Background(), s.instance, map[string]string{engine.LabelRole: engine.RoleJob}); len(left) != 0 {
		t.Errorf("job containers left after a timeout: %v", left)
	}
}
