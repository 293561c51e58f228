package e2e

import (
	"context"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/deployer-dev/deployer/api"
	"github.com/deployer-dev/deployer/engine"
	"github.com/deployer-dev/deployer/internal/testenv"
	"github.com/deployer-dev/deployer/jobs"
	"github.com/deployer-dev/deployer/producer"
)

// Two workers on one Redis and one engine (two hosts, as far as the service can
// tell), an API apart. The worker running a job is killed with SIGKILL: the other
// finishes the job, and takes the dead worker's containers away once their leases
// lapse.
func TestOtherWorkerFinishesAKilledWorkersJob(t *testing.T) {
	requireParts(t)
	t.Parallel()
	join := installation(t)
	workers := map[string]*stack{
		"w-one": join(stackOpts{role: "worker", env: workerID("w-one")}),
		"w-two": join(stackOpts{role: "worker", env: workerID("w-two")}),
	}
	front := join(stackOpts{role: "api"})
	ctx := context.Background()

	resp, err := front.client.Deploy(ctx, api.DeployRequest{PathURL: "e2e/testdata/medium", Framework: "foundry"})
	if err != nil {
		t.Fatal(err)
	}
	front.waitStep(t, resp.JobID, "deploying")
	j, err := front.client.Job(ctx, resp.JobID)
	if err != nil {
		t.Fatal(err)
	}
	dead, ok := workers[j.Worker]
	if !ok {
		t.Fatalf("the job runs on %q, not one of the test's workers", j.Worker)
	}
	if err := dead.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	dead.terminate()

	wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	final, err := front.client.Wait(wctx, resp.JobID, nil)
	if err != nil {
		t.Fatal(err)
	}
	requireCompleted(t, final)
	requireCode(t, final)
	if final.Worker == j.Worker || final.Attempts != 2 {
		t.Errorf("after the crash: worker %s (killed: %s), attempts %d", final.Worker, j.Worker, final.Attempts)
	}
	var st producer.ContainerStats
	front.call(t, http.MethodGet, "/containers/stats", http.StatusOK, &st)
	if n := st.Deployments["local"][jobs.Completed]; n != 1 {
		t.Errorf("the job was reported completed %d times", n)
	}

	// The dead worker's containers (the job's, and any idle one) are the live
	// worker's to remove once their leases lapse.
	deadline := time.Now().Add(4 * time.Minute)
	for {
		left, err := testenv.Leftovers(ctx, front.instance, map[string]string{engine.LabelRole: engine.RoleJob, engine.LabelWorker: j.Worker})
		if err != nil {
			t.Fatal(err)
		}
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the killed worker's containers remain: %v", left)
		}
		time.Sleep(2 * time.Second)
	}
}
