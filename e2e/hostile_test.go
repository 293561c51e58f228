package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/deployer-dev/deployer/api"
	"github.com/deployer-dev/deployer/chains"
	dclient "github.com/deployer-dev/deployer/client"
	"github.com/deployer-dev/deployer/engine"
	"github.com/deployer-dev/deployer/internal/testenv"
	"github.com/deployer-dev/deployer/jobs"
)

// Hostile projects: each is contained (its time limit, the output caps, the
// upload's limits) and leaves the worker healthy: the next project deploys, and the
// worker's memory stays small.

// requireHealthy deploys examples/counter and checks its code is on chain.
func requireHealthy(t *testing.T, s *stack) {
	t.Helper()
	j := s.deploy(t, api.DeployRequest{PathURL: "examples/counter"})
	requireCompleted(t, j)
	requireCode(t, j)
}

// requireCode checks that every contract a job returned has code on chain.
func requireCode(t *testing.T, j api.Job) {
	t.Helper()
	for _, c := range j.Result.Contracts {
		code, err := chains.NewRPC(j.Result.RPCURL, nil).Code(context.Background(), c.Address)
		if err != nil || len(code) <= 2 {
			t.Errorf("no code at %s (%s): %v", c.Address, c.Name, err)
		}
	}
}

// requireFinal waits for the job to be over, whatever its end.
func requireFinal(t *testing.T, j api.Job) {
	t.Helper()
	if j.Status != jobs.Completed && j.Status != jobs.Failed {
		t.Fatalf("job %s is %s", j.JobID, j.Status)
	}
	if msg := deref(j.Error); len(msg) > 5000 {
		t.Errorf("job %s ended %s with an error of %d bytes", j.JobID, j.Status, len(msg))
	} else {
		t.Logf("job %s ended %s %s", j.JobID, j.Status, msg)
	}
}

// workerRSS is the deployer process's resident memory, in bytes.
func workerRSS(t *testing.T, s *stack) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// maxWorkerRSS bounds the deployer's memory after hostile projects: the caps keep
// what it holds of a job's output to a few MiB.
const maxWorkerRSS = 512 << 20

func TestHostileFoundryProjects(t *testing.T) {
	s := ownStack(t, stackOpts{env: []string{"JOB_TIMEOUT=45s"}})
	ctx := context.Background()
	hostile := func(contract string) api.DeployRequest {
		return api.DeployRequest{PathURL: "e2e/testdata/hostile", Script: "script/Hostile.s.sol:" + contract}
	}

	t.Run("sleeps forever", func(t *testing.T) {
		j := s.deploy(t, hostile("Sleep"))
		if j.Status != jobs.Failed || !strings.Contains(deref(j.Error), "limit 45s") {
			t.Errorf("a script sleeping forever: %s %q", j.Status, deref(j.Error))
		}
	})

	t.Run("prints 200 000 lines", func(t *testing.T) {
		j := s.deploy(t, hostile("Noisy"))
		requireFinal(t, j)
		logs, err := s.client.Logs(ctx, j.JobID)
		if err != nil {
			t.Fatal(err)
		}
		if len(logs) > jobs.LogCap+100 || !strings.Contains(logs, "[output truncated at 1 MiB]") {
			t.Errorf("log of %d bytes, ending %q", len(logs), logs[max(0, len(logs)-80):])
		}
	})

	t.Run("prints one line of 8 MiB", func(t *testing.T) {
		j := s.deploy(t, hostile("LongLine"))
		requireLineCut(t, s, j)
	})

	t.Run("100 000 files", func(t *testing.T) {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		tw := tar.NewWriter(zw)
		for i := range 100000 {
			if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("src/f%d.sol", i), Mode: 0o644, Size: 1, Typeflag: tar.TypeReg}); err != nil {
				t.Fatal(err)
			}
			_, _ = tw.Write([]byte("x"))
		}
		tw.Close()
		zw.Close()
		_, err := s.client.Upload(ctx, buf.Bytes())
		var se *dclient.StatusError
		if !errors.As(err, &se) || se.Code/100 != 4 || !strings.Contains(se.Message, "entries") {
			t.Errorf("an upload of 100 000 files: %v, want a 4xx naming the limit", err)
		}
	})

	t.Run("symlinks out of the project", func(t *testing.T) {
		// A path project, under PROJECTS_ROOT (the repository).
		dir := filepath.Join(testenv.RepoRoot(), "test-output", "hostile-"+s.instance)
		t.Cleanup(func() { os.RemoveAll(dir) })
		copyTree(t, filepath.Join(testenv.RepoRoot(), "examples", "counter"), dir)
		for link, target := range map[string]string{"passwd": "/etc/passwd", "lib/root": "/"} {
			os.MkdirAll(filepath.Dir(filepath.Join(dir, link)), 0o755)
			if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
				t.Fatal(err)
			}
		}
		rel, _ := filepath.Rel(testenv.RepoRoot(), dir)
		_, err := s.client.Deploy(ctx, api.DeployRequest{PathURL: rel, Framework: "foundry"})
		var se *dclient.StatusError
		if !errors.As(err, &se) || se.Code != http.StatusBadRequest || !strings.Contains(se.Message, "outside the project") {
			t.Errorf("a path project linking out: %v, want a 400", err)
		}
	})

	requireHealthy(t, s)
	if rss := workerRSS(t, s); rss > maxWorkerRSS {
		t.Errorf("the deployer holds %d MiB after hostile projects", rss>>20)
	}
}

// hostileHardhat is examples/hardhat-counter with code put before its config.
func hostileHardhat(t *testing.T, s *stack, prelude string) api.DeployRequest {
	t.Helper()
	dir := hardhatCopy(t)
	cfg := filepath.Join(dir, "hardhat.config.ts")
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, append([]byte(prelude+"\n"), b...), 0o644); err != nil {
		t.Fatal(err)
	}
	up, err := s.client.UploadDir(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	return api.DeployRequest{PathURL: up.PathURL, Framework: "hardhat"}
}

// A Hardhat config is JavaScript: it can fork-bomb and print gigabytes. Each is
// contained, and the worker deploys the next project afterwards.
func TestHostileHardhatConfigs(t *testing.T) {
	s := ownStack(t, stackOpts{env: []string{"JOB_TIMEOUT=90s"}})
	ctx := context.Background()

	t.Run("fork bomb", func(t *testing.T) {
		// Left running in the background while the job goes on.
		j := s.deploy(t, hostileHardhat(t, s, `import { spawn as deployerTestSpawn } from "node:child_process";
try { deployerTestSpawn("sh", ["-c", "b() { b | b & }; b"], { detached: true, stdio: "ignore" }).unref(); } catch {}`))
		requireFinal(t, j)
		// The container goes back to the pool only once nothing of the job runs in
		// it, or is removed.
		requireQuietContainers(t, s)
	})

	t.Run("1 GiB of output", func(t *testing.T) {
		// Printed once (the config is read by every Hardhat command the job runs).
		j := s.deploy(t, hostileHardhat(t, s, `import { existsSync as deployerTestExists, writeFileSync as deployerTestWrite } from "node:fs";
if (!deployerTestExists(".printed")) {
  deployerTestWrite(".printed", "");
  const chunk = "z".repeat((1 << 20) - 1) + "\n";
  for (let i = 0; i < 1024; i++) process.stdout.write(chunk);
}`))
		requireFinal(t, j)
		logs, err := s.client.Logs(ctx, j.JobID)
		if err != nil {
			t.Fatal(err)
		}
		if len(logs) > jobs.LogCap+100 {
			t.Errorf("log of %d bytes", len(logs))
		}
	})

	t.Run("a line of 200 MiB", func(t *testing.T) {
		j := s.deploy(t, hostileHardhat(t, s, `import { existsSync as deployerTestExists, writeFileSync as deployerTestWrite } from "node:fs";
if (!deployerTestExists(".printed")) {
  deployerTestWrite(".printed", "");
  process.stdout.write("w".repeat(200 << 20));
  process.stdout.write("\n");
}`))
		requireLineCut(t, s, j)
	})

	up, err := s.client.UploadDir(ctx, filepath.Join(testenv.RepoRoot(), "examples", "hardhat-counter"))
	if err != nil {
		t.Fatal(err)
	}
	j := s.deploy(t, api.DeployRequest{PathURL: up.PathURL, Framework: "hardhat"})
	requireCompleted(t, j)
	requireCode(t, j)
	if rss := workerRSS(t, s); rss > maxWorkerRSS {
		t.Errorf("the deployer holds %d MiB after hostile configs", rss>>20)
	}
}

// requireLineCut checks that a job that printed one huge line ended, and kept a
// log of a few KiB that says the line was cut.
func requireLineCut(t *testing.T, s *stack, j api.Job) {
	t.Helper()
	requireFinal(t, j)
	logs, err := s.client.Logs(context.Background(), j.JobID)
	if err != nil {
		t.Fatal(err)
	}
	if len(logs) > 256<<10 || !strings.Contains(logs, "[line cut at 64 KiB]") {
		t.Errorf("log of %d bytes without the cut line's note", len(logs))
	}
}

// requireQuietContainers waits until every job container of the installation runs
// no more than its idle process (and the reset's own, briefly).
func requireQuietContainers(t *testing.T, s *stack) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		left, err := testenv.Leftovers(context.Background(), s.instance, map[string]string{engine.LabelRole: engine.RoleJob})
		if err != nil {
			t.Fatal(err)
		}
		busy := map[string]int{}
		for _, name := range left {
			id := strings.TrimPrefix(name, "/")
			out, err := exec.Command("docker", "top", id, "-eo", "pid,args").Output()
			if err != nil {
				continue // removed meanwhile
			}
			// The container's init and its idle process, and the relay and the agent
			// the pool keeps for the next job: nothing of the job's.
			n := 0
			for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n")[1:] {
				if !strings.Contains(line, "/usr/local/lib/deployer/relay.js") && !strings.Contains(line, "deployer-agent") {
					n++
				}
			}
			if n > 2 {
				busy[id] = n
			}
		}
		if len(busy) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("job containers still running processes after the job: %v", busy)
		}
		time.Sleep(time.Second)
	}
}
