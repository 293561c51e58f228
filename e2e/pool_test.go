package e2e

import (
	"context"
	"net/http"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/client"

	"github.com/deployer-dev/deployer/api"
	"github.com/deployer-dev/deployer/engine"
	"github.com/deployer-dev/deployer/internal/testenv"
	"github.com/deployer-dev/deployer/jobs"
	"github.com/deployer-dev/deployer/producer"
)

// A second deployment of a project runs in the container the first one used. On a
// deployer of its own: on the shared one, another test's job may take the container
// in between.
func TestSecondDeploymentReusesTheContainer(t *testing.T) {
	s := ownStack(t, stackOpts{})
	req := api.DeployRequest{PathURL: "examples/counter", Contract: "src/Counter.sol:Counter", ConstructorArgs: []string{"3"}}
	first := s.deploy(t, req)
	requireCompleted(t, first)
	second := s.deploy(t, req)
	requireCompleted(t, second)
	if second.ContainerID == "" || second.ContainerID != first.ContainerID {
		t.Errorf("second deployment ran in %q, first in %q", second.ContainerID, first.ContainerID)
	}
	if second.Cache == nil || !second.Cache.ContainerReused {
		t.Errorf("second deployment reports %+v", second.Cache)
	}
	var st producer.ContainerStats
	s.call(t, http.MethodGet, "/containers/stats", http.StatusOK, &st)
	if len(st.Engines) != 1 || st.Engines[0].ReuseHits < 1 || len(st.Engines[0].Pools) != 1 || len(st.Unanswered) != 0 {
		t.Fatalf("stats %+v", st)
	}
	e := st.Engines[0]
	if e.Containers[engine.RoleChain]["local"] != 1 || e.Containers[engine.RoleJob]["local"] < 1 || e.CachedImages < 1 {
		t.Errorf("containers by role and network: %+v", e.Containers)
	}
	if len(e.Chains) == 0 || !e.Chains[0].Healthy || e.Chains[0].StartedAt.IsZero() {
		t.Errorf("chains %+v", e.Chains)
	}
	if st.Deployments["local"][jobs.Completed] < 2 {
		t.Errorf("deployments by network type %+v", st.Deployments)
	}
}

// With CONTAINER_REUSE_ENABLED=false every job gets a fresh container, and none
// remains after it.
func TestReuseDisabled(t *testing.T) {
	s := ownStack(t, stackOpts{env: []string{"CONTAINER_REUSE_ENABLED=false"}})
	req := api.DeployRequest{PathURL: "examples/counter", Contract: "src/Counter.sol:Counter", ConstructorArgs: []string{"3"}}
	first := s.deploy(t, req)
	requireCompleted(t, first)
	second := s.deploy(t, req)
	requireCompleted(t, second)
	if first.ContainerID == second.ContainerID || second.Cache.ContainerReused {
		t.Errorf("reuse disabled, yet both jobs ran in %s (reused %t)", first.ContainerID, second.Cache.ContainerReused)
	}
	waitNoJobContainers(t, s.instance)
}

func waitNoJobContainers(t *testing.T, instance string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		left, err := testenv.Leftovers(context.Background(), instance, map[string]string{engine.LabelRole: engine.RoleJob})
		if err != nil {
			t.Fatal(err)
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("job containers remain: %v", left)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A chain killed behind the service's back is replaced, and the next deployment goes
// to the new one.
func TestKilledChainIsReplaced(t *testing.T) {
	s := getStack(t)
	req := api.DeployRequest{PathURL: "examples/counter", Contract: "src/Counter.sol:Counter", ConstructorArgs: []string{"5"}}
	requireCompleted(t, s.deploy(t, req))
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	name := "deployer-" + s.instance + "-chain-local"
	before, err := cli.ContainerInspect(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	if err := cli.ContainerKill(context.Background(), name, "KILL"); err != nil {
		t.Fatal(err)
	}
	j := s.deploy(t, req)
	requireCompleted(t, j)
	after, err := cli.ContainerInspect(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	startedBefore, _ := time.Parse(time.RFC3339Nano, before.State.StartedAt)
	startedAfter, _ := time.Parse(time.RFC3339Nano, after.State.StartedAt)
	if !after.State.Running || !startedAfter.After(startedBefore) {
		t.Errorf("chain not restarted: running %t, started %s (before %s)", after.State.Running, startedAfter, startedBefore)
	}
}

// A worker killed with SIGKILL in the middle of a job, then started again: no
// container leaks, and the job ends retried, reported completed once.
func TestWorkerKilledMidJob(t *testing.T) {
	env := []string{"WORKER_ID=crashy"}
	first := ownStack(t, stackOpts{env: env})
	ctx := context.Background()
	resp, err := first.client.Deploy(ctx, api.DeployRequest{PathURL: "e2e/testdata/medium", Framework: "foundry"})
	if err != nil {
		t.Fatal(err)
	}
	first.waitStep(t, resp.JobID, "deploying")
	j, _ := first.client.Job(ctx, resp.JobID)
	killed := j.ContainerID
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.terminate()

	second := ownStack(t, stackOpts{instance: first.instance, redisURL: first.redisURL, env: env})
	// The killed worker's heartbeat outlives it for a while: wait for the new one's,
	// which it sends once it reconciled.
	if err := second.waitWorker(); err != nil {
		t.Fatal(err)
	}
	// The restarted worker removed the container its killed job ran in, first thing.
	if err := exec.Command("docker", "inspect", killed).Run(); err == nil {
		t.Errorf("the killed job's container %s is still there", killed)
	}
	// asynq hands the task out again once its lease expires.
	wctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	final, err := second.client.Wait(wctx, resp.JobID, nil)
	if err != nil {
		t.Fatal(err)
	}
	requireCompleted(t, final)
	if final.Attempts != 2 || len(final.Result.Contracts) != 1 {
		t.Errorf("after the crash: attempts %d, contracts %+v", final.Attempts, final.Result.Contracts)
	}
	var st producer.ContainerStats
	second.call(t, http.MethodGet, "/containers/stats", http.StatusOK, &st)
	if n := st.Deployments["local"][jobs.Completed]; n != 1 {
		t.Errorf("the job was reported completed %d times", n)
	}
	// What remains is the live worker's idle container, nothing else.
	left, err := testenv.Leftovers(ctx, first.instance, map[string]string{engine.LabelRole: engine.RoleJob})
	if err != nil {
		t.Fatal(err)
	}
	idle := 0
	for _, e := range st.Engines {
		for _, p := range e.Pools {
			for _, k := range p.Keys {
				idle += k.Idle + k.Busy
			}
		}
	}
	if len(left) != idle {
		t.Errorf("%d job containers on the engine, the pool holds %d: %v", len(left), idle, left)
	}
}

// POST /containers/cleanup removes idle containers and leaves chains running.
func TestContainerCleanup(t *testing.T) {
	s := ownStack(t, stackOpts{})
	requireCompleted(t, s.deploy(t, api.DeployRequest{PathURL: "examples/counter", Contract: "src/Counter.sol:Counter", ConstructorArgs: []string{"1"}}))
	var out producer.ContainerCleanup
	s.call(t, http.MethodPost, "/containers/cleanup", http.StatusOK, &out)
	if len(out.Workers) != 1 || len(out.Unanswered) != 0 {
		t.Fatalf("cleanup answered %+v", out)
	}
	removed := len(out.Workers[0].Idle)
	if removed != 1 {
		t.Errorf("cleanup removed %d idle containers, want 1: %+v", removed, out.Workers[0])
	}
	waitNoJobContainers(t, s.instance)
	chains, _ := testenv.Leftovers(context.Background(), s.instance, map[string]string{engine.LabelRole: engine.RoleChain})
	if len(chains) != 1 {
		t.Errorf("chains after cleanup: %v", chains)
	}
}
