package e2e

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/deployer-dev/deployer/api"
	"github.com/deployer-dev/deployer/jobs"
)

// TestLoad queues deployments against two workers and an API apart, and reports
// what the API's users felt meanwhile: the latency of POST /deploy and of polls.
// 50 deployments in `make test`; `make load` sends 1000 (LOAD_JOBS).
func TestLoad(t *testing.T) {
	requireParts(t)
	t.Parallel()
	n := 50
	if v := os.Getenv("LOAD_JOBS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			t.Fatalf("LOAD_JOBS=%q", v)
		}
	}
	join := installation(t)
	workers := []*stack{join(stackOpts{role: "worker", env: workerID("load-one")}), join(stackOpts{role: "worker", env: workerID("load-two")})}
	front := join(stackOpts{role: "api"})
	ctx := context.Background()

	// The first deployment builds what the others reuse; it is not part of the load.
	requireCompleted(t, front.deploy(t, api.DeployRequest{PathURL: "examples/counter"}))

	var (
		mu         sync.Mutex
		posts      []time.Duration
		polls      []time.Duration
		ids        []string
		maxRSS     = make([]int64, len(workers))
		submitErrs []error
	)
	sample := func() {
		for i, w := range workers {
			if rss := workerRSS(t, w); rss > maxRSS[i] {
				maxRSS[i] = rss
			}
		}
	}
	start := time.Now()
	// Submitters: 8 clients sending at once.
	var wg sync.WaitGroup
	next := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				t0 := time.Now()
				resp, err := front.client.Deploy(ctx, api.DeployRequest{PathURL: "examples/counter", Framework: "foundry"})
				took := time.Since(t0)
				mu.Lock()
				if err != nil {
					submitErrs = append(submitErrs, err)
				} else {
					posts = append(posts, took)
					ids = append(ids, resp.JobID)
				}
				mu.Unlock()
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if len(submitErrs) > 0 {
		t.Fatalf("%d of %d submissions failed, the first: %v", len(submitErrs), n, submitErrs[0])
	}

	// Pollers: every job polled in turn, as clients waiting for their results do,
	// until all have ended.
	deadline := time.Now().Add(time.Duration(n)*6*time.Second + 5*time.Minute)
	final := map[string]api.Job{}
	for len(final) < len(ids) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d deployments ended in time", len(final), len(ids))
		}
		for _, id := range ids {
			if _, done := final[id]; done {
				continue
			}
			t0 := time.Now()
			j, err := front.client.Job(ctx, id)
			polls = append(polls, time.Since(t0))
			if err != nil {
				t.Fatalf("poll %s: %v", id, err)
			}
			if j.Status == jobs.Completed || j.Status == jobs.Failed || j.Status == jobs.Canceled {
				final[id] = j
			}
		}
		sample()
		time.Sleep(200 * time.Millisecond)
	}
	elapsed := time.Since(start)
	failed := 0
	for _, j := range final {
		if j.Status != jobs.Completed {
			failed++
			t.Errorf("job %s: %s %q", j.JobID, j.Status, deref(j.Error))
			continue
		}
	}
	// Every contract is on chain (a sample of ten, spread over the run).
	for i := 0; i < len(ids); i += max(1, len(ids)/10) {
		requireCode(t, final[ids[i]])
	}

	report := fmt.Sprintf("load: %d deployments of examples/counter, 2 workers, an API apart\n"+
		"  completed %d of %d in %s (%.2f per second)\n"+
		"  POST /deploy        p50 %6.1f ms   p99 %6.1f ms   (goal: p99 at most 50 ms)\n"+
		"  GET /deploy/<id>    p50 %6.1f ms   p99 %6.1f ms   (%d polls)\n"+
		"  worker memory       max RSS %d MiB and %d MiB\n",
		n, len(final)-failed, n, elapsed.Round(time.Second), float64(n)/elapsed.Seconds(),
		ms(percentile(posts, 50)), ms(percentile(posts, 99)),
		ms(percentile(polls, 50)), ms(percentile(polls, 99)), len(polls),
		maxRSS[0]>>20, maxRSS[1]>>20)
	fmt.Print(report)
	t.Log("\n" + report)
	for i, rss := range maxRSS {
		if rss > maxWorkerRSS {
			t.Errorf("worker %d reached %d MiB", i, rss>>20)
		}
	}
}

func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
