package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/deployer-dev/deployer/api"
	"github.com/deployer-dev/deployer/jobs"
	"github.com/deployer-dev/deployer/producer"
)

// aofRedis is a redis-server of the test's own, with an append-only file, that the
// test kills with SIGKILL and starts again on the same port and data. It fsyncs on
// every write: what it acknowledged survives its kill (with everysec a slow disk can
// cost up to two seconds of acknowledged writes, which no client can make up for).
type aofRedis struct {
	t    *testing.T
	port int
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

func startAOFRedis(t *testing.T) *aofRedis {
	t.Helper()
	r := &aofRedis{t: t, port: freePortT(t), dir: t.TempDir()}
	r.start()
	t.Cleanup(r.kill)
	return r
}

func (r *aofRedis) url() string { return "redis://127.0.0.1:" + strconv.Itoa(r.port) + "/0" }

func (r *aofRedis) start() {
	r.t.Helper()
	r.cmd = exec.Command("redis-server", "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--dir", r.dir,
		"--appendonly", "yes", "--appendfsync", "always", "--save", "")
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	r.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(r.cmd, r.done)
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(r.port), MaxRetries: -1})
	defer rdb.Close()
	deadline := time.Now().Add(time.Minute)
	for rdb.Ping(context.Background()).Err() != nil {
		select {
		case <-r.done:
			r.t.Fatalf("redis-server on port %d exited at start", r.port)
		default:
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("redis-server on port %d did not answer in a minute", r.port)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *aofRedis) kill() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGKILL)
	<-r.done
	r.cmd = nil
}

// probe is one request's answer while Redis is down.
type probe struct {
	code       int
	retryAfter string
	body       api.Error
	took       time.Duration
}

func (s *stack) probe(t *testing.T, method, path, body string) probe {
	t.Helper()
	// Longer than any answer should take: a request that runs into it hung.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, s.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s with Redis down: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	p := probe{code: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), took: time.Since(start)}
	if err := json.Unmarshal(b, &p.body); resp.StatusCode >= 400 && (err != nil || p.body.Error == "") && path != "/readyz" {
		t.Errorf("%s %s: %d, not a JSON error: %q", method, path, resp.StatusCode, b)
	}
	return p
}

// Redis (with its append-only file) killed with SIGKILL while deployments run and
// wait, then started again: meanwhile the API answers 503 with a JSON error and
// Retry-After, and afterwards it, the worker and the scheduler go on by themselves.
// No job is lost; each ends once (completed, or failed), never failed and run again.
func TestRedisFaultKilledAndRestarted(t *testing.T) {
	requireParts(t)
	r := startAOFRedis(t)
	s := ownStack(t, stackOpts{redisURL: r.url(), env: []string{"WORKER_CONCURRENCY=2", "SCHEDULE_POOL_SWEEP=@every 2s"}})
	ctx := context.Background()
	running := []string{s.submit(t, api.DeployRequest{PathURL: "e2e/testdata/medium"}), s.submit(t, api.DeployRequest{PathURL: "e2e/testdata/medium"})}
	for _, id := range running {
		s.waitStep(t, id, "deploying")
	}
	all := append(running, s.submit(t, counterWith(1)), s.submit(t, counterWith(2)), s.submit(t, counterWith(3)))

	r.kill()
	down := time.Now()
	job := "/deploy/" + all[0]
	for _, p := range []struct{ method, path, body string }{
		{http.MethodGet, job, ""},
		{http.MethodGet, job + "/logs", ""},
		{http.MethodPost, "/deploy", `{"path_url": "examples/counter", "framework": "foundry"}`},
		{http.MethodDelete, job, ""},
	} {
		got := s.probe(t, p.method, p.path, p.body)
		if got.code != http.StatusServiceUnavailable || got.retryAfter == "" {
			t.Errorf("%s %s with Redis down: %d, Retry-After %q: %s", p.method, p.path, got.code, got.retryAfter, got.body.Error)
		}
		t.Logf("%s %s with Redis down: %d in %s", p.method, p.path, got.code, got.took.Round(time.Millisecond))
	}
	if got := s.probe(t, http.MethodGet, "/readyz", ""); got.code != http.StatusServiceUnavailable {
		t.Errorf("/readyz with Redis down: %d", got.code)
	}
	// Down long enough for the worker's own loops to meet the outage.
	if err := s.waitLog("heartbeat failed", time.Minute); err != nil {
		t.Fatal(err)
	}
	if !processAlive(s.cmd.Process.Pid) {
		t.Fatalf("the deployer exited while Redis was down")
	}
	r.start()
	t.Logf("Redis was down for %s", time.Since(down).Round(time.Millisecond))
	up := time.Now()

	// The API recovers by itself.
	deadline := up.Add(time.Minute)
	for {
		code := s.probe(t, http.MethodGet, job, "").code
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the API still answers %d a minute after Redis came back", code)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("the API answered again %s after Redis came back", time.Since(up).Round(time.Millisecond))

	wctx, cancel := context.WithTimeout(ctx, 8*time.Minute)
	defer cancel()
	completed := 0
	for _, id := range all {
		j, err := s.client.Wait(wctx, id, nil)
		if err != nil {
			t.Fatalf("job %s after the outage: %v", id, err)
		}
		switch j.Status {
		case jobs.Completed:
			requireCompleted(t, j)
			completed++
		case jobs.Failed:
			t.Logf("job %s failed (attempt %d): %s", id, j.Attempts, deref(j.Error))
		default:
			t.Errorf("job %s ended %s", id, j.Status)
		}
		t.Logf("job %s %s after %d attempts, seen %s after Redis came back", id, j.Status, j.Attempts, time.Since(up).Round(time.Second))
	}
	// The worker still takes work, and the scheduler still schedules.
	requireCompleted(t, s.deploy(t, counterWith(4)))
	completed++
	sweeps := strings.Count(s.logs.String(), `msg="maintenance run enqueued"`)
	if err := waitFor(time.Minute, func() bool {
		return strings.Count(s.logs.String(), `msg="maintenance run enqueued"`) > sweeps
	}); err != nil {
		t.Errorf("the scheduler enqueued nothing after the outage")
	}
	if got := s.probe(t, http.MethodGet, "/readyz", ""); got.code != http.StatusOK {
		t.Errorf("/readyz after the outage: %d %s", got.code, got.body.Error)
	}

	// Each job ended once: one final outcome in the log, after its last start, and
	// one in the service's count.
	for _, id := range all {
		ends, lastStart, lastEnd := 0, -1, -1
		for i, line := range strings.Split(s.logs.String(), "\n") {
			if !strings.Contains(line, "job_id="+id) {
				continue
			}
			switch {
			case strings.Contains(line, `msg="deployment started"`):
				lastStart = i
			case strings.Contains(line, `msg="deployment completed"`), strings.Contains(line, `msg="deployment failed"`),
				strings.Contains(line, `msg="deployment failed; no retries left"`), strings.Contains(line, `msg="deployment canceled"`):
				ends++
				lastEnd = i
			}
		}
		if ends != 1 || lastStart > lastEnd {
			t.Errorf("job %s: %d final outcomes logged, last start at line %d, last end at line %d", id, ends, lastStart, lastEnd)
		}
	}
	var st producer.ContainerStats
	s.call(t, http.MethodGet, "/containers/stats", http.StatusOK, &st)
	if n := st.Deployments["local"][jobs.Completed]; n != int64(completed) {
		t.Errorf("%d jobs completed, the service counted %d", completed, n)
	}
}

// waitFor polls cond until it holds or limit passes.
func waitFor(limit time.Duration, cond func() bool) error {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s", limit)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}
