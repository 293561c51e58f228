package e2e

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deployer-dev/deployer/api"
	"github.com/deployer-dev/deployer/client"
	"github.com/deployer-dev/deployer/jobs"
)

// A client following a job's events hears all of them, its end included, though
// the API it follows is killed in the middle of the job: it reconnects with
// Last-Event-ID to the API that comes back on the same address, and gets neither a
// gap nor a repeat.
func TestEventsSurviveAnAPIRestart(t *testing.T) {
	requireParts(t)
	t.Parallel()
	join := installation(t)
	port := freePortT(t)
	join(stackOpts{role: "worker", env: workerID("events")})
	first := join(stackOpts{role: "api", port: port})
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	resp, err := first.client.Deploy(ctx, api.DeployRequest{PathURL: "e2e/testdata/medium", Framework: "foundry"})
	if err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var steps []string
	var output strings.Builder
	type result struct {
		j   api.Job
		err error
	}
	done := make(chan result, 1)
	go func() {
		j, err := client.New(first.url, "").Follow(ctx, resp.JobID, client.Handlers{
			Progress: func(j api.Job) {
				mu.Lock()
				defer mu.Unlock()
				steps = append(steps, string(j.Status)+" "+j.Step)
			},
			Output: func(text string) {
				mu.Lock()
				defer mu.Unlock()
				output.WriteString(text)
			},
		})
		done <- result{j, err}
	}()
	first.waitStep(t, resp.JobID, "deploying")
	if err := first.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	first.terminate()
	second := join(stackOpts{role: "api", port: port})

	var got result
	select {
	case got = <-done:
	case <-ctx.Done():
		t.Fatal("the follower never heard the job's end")
	}
	if got.err != nil {
		t.Fatalf("follow: %v", got.err)
	}
	requireCompleted(t, got.j)
	logs, err := second.client.Logs(ctx, resp.JobID)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if logs == "" || output.String() != logs {
		t.Errorf("the follower heard %d bytes of output, the job's log has %d: a gap or a repeat across the restart",
			output.Len(), len(logs))
	}
	if len(steps) == 0 || steps[len(steps)-1] != string(jobs.Completed)+" " {
		t.Errorf("progress told: %q", steps)
	}
	t.Logf("progress told across the restart: %q", steps)
}
