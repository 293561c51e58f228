//go:build faults

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/deployer-dev/deployer/api"
	"github.com/deployer-dev/deployer/engine"
	"github.com/deployer-dev/deployer/internal/testenv"
	"github.com/deployer-dev/deployer/jobs"
	"github.com/deployer-dev/deployer/producer"
)

// This file is `make faults`: it restarts the machine's Docker engine, so it runs
// alone, never beside other packages' tests (build tag faults).

// restartDockerd stops the engine and starts it again, the way it was started:
// systemd's unit, or the command line set-up used.
func restartDockerd(t *testing.T) {
	t.Helper()
	if exec.Command("systemctl", "is-active", "--quiet", "docker").Run() == nil {
		if out, err := exec.Command("systemctl", "restart", "docker").CombinedOutput(); err != nil {
			t.Fatalf("systemctl restart docker: %v\n%s", err, out)
		}
		waitEngine(t)
		return
	}
	out, err := exec.Command("pidof", "dockerd").Output()
	if err != nil {
		testenv.Missing(t, "no dockerd process to restart: %v", err)
	}
	pid, err := strconv.Atoi(strings.Fields(string(out))[0])
	if err != nil {
		t.Fatal(err)
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		t.Fatal(err)
	}
	args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatalf("stop dockerd: %v", err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatal("dockerd did not stop in 2 minutes")
		}
		time.Sleep(200 * time.Millisecond)
	}
	logf, err := os.OpenFile("/var/log/dockerd.log", os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own session: the engine outlives the test.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dockerd: %v", err)
	}
	_ = cmd.Process.Release()
	waitEngine(t)
}

func waitEngine(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for exec.Command("docker", "info").Run() != nil {
		if time.Now().After(deadline) {
			t.Fatal("the engine does not answer 2 minutes after its restart")
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// dockerd restarted in the middle of a deployment: the running job ends (failed,
// saying why, or retried and completed), the pool and the chain are rebuilt, the
// next deployment completes, and no container is left behind.
func TestDockerdRestartMidRun(t *testing.T) {
	s := ownStack(t, stackOpts{})
	ctx := context.Background()
	warm := s.deploy(t, api.DeployRequest{PathURL: "examples/counter"})
	requireCompleted(t, warm)

	resp, err := s.client.Deploy(ctx, api.DeployRequest{PathURL: "e2e/testdata/medium", Framework: "foundry"})
	if err != nil {
		t.Fatal(err)
	}
	s.waitStep(t, resp.JobID, "deploying")
	restartDockerd(t)

	wctx, cancel := context.WithTimeout(ctx, 6*time.Minute)
	defer cancel()
	running, err := s.client.Wait(wctx, resp.JobID, nil)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case running.Status == jobs.Completed:
		requireCode(t, running)
	case running.Status == jobs.Failed && deref(running.Error) != "":
		t.Logf("the job running across the restart failed: %s", deref(running.Error))
	default:
		t.Fatalf("the job running across the restart: %s %q", running.Status, deref(running.Error))
	}

	next := s.deploy(t, api.DeployRequest{PathURL: "examples/counter"})
	requireCompleted(t, next)
	requireCode(t, next)
	if next.Result.RPCURL == "" {
		t.Fatal("no chain")
	}

	// Nothing left behind: every job container on the engine is one the pool holds,
	// and every container of the installation runs.
	deadline := time.Now().Add(3 * time.Minute)
	for {
		var st producer.ContainerStats
		s.call(t, http.MethodGet, "/containers/stats", http.StatusOK, &st)
		held := 0
		for _, e := range st.Engines {
			for _, p := range e.Pools {
				for _, k := range p.Keys {
					held += k.Idle + k.Busy
				}
			}
		}
		jobsLeft, err := testenv.Leftovers(ctx, s.instance, map[string]string{engine.LabelRole: engine.RoleJob})
		if err != nil {
			t.Fatal(err)
		}
		exited, err := exec.Command("docker", "ps", "-aq", "--filter", "label="+engine.LabelInstance+"="+s.instance, "--filter", "status=exited").Output()
		if err != nil {
			t.Fatal(err)
		}
		if len(jobsLeft) == held && strings.TrimSpace(string(exited)) == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the restart: %d job containers on the engine, the pool holds %d; exited: %q", len(jobsLeft), held, exited)
		}
		time.Sleep(2 * time.Second)
	}
}
