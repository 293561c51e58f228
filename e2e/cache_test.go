package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/deployer-dev/deployer/api"
	"github.com/deployer-dev/deployer/engine"
	"github.com/deployer-dev/deployer/internal/testenv"
	"github.com/deployer-dev/deployer/jobs"
	"github.com/deployer-dev/deployer/producer"
	"github.com/deployer-dev/deployer/runner"
	"github.com/deployer-dev/deployer/tasks"
)

// post sends a request to the API and decodes the JSON answer.
func (s *stack) call(t *testing.T, method, path string, want int, out any) {
	t.Helper()
	req, err := http.NewRequest(method, s.url+path, bytes.NewReader(nil))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d, want %d: %s", method, path, resp.StatusCode, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
}

// Ten deployments at once against an empty cache, served by two worker processes on
// one engine, build the runner image once.
func TestBurstOnEmptyCacheBuildsOnce(t *testing.T) {
	first := ownStack(t, stackOpts{})
	second := ownStack(t, stackOpts{instance: first.instance, redisURL: first.redisURL, role: "worker"})
	_ = second
	var wg sync.WaitGroup
	results := make([]api.Job, 10)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = first.deploy(t, api.DeployRequest{PathURL: "examples/counter", Contract: "src/Counter.sol:Counter", ConstructorArgs: []string{"1"}})
		}()
	}
	wg.Wait()
	workers := map[string]bool{}
	hits := 0
	for _, j := range results {
		requireCompleted(t, j)
		workers[j.Worker] = true
		if j.Cache.ImageHit {
			hits++
		}
	}
	t.Logf("10 jobs on %d workers, %d image hits", len(workers), hits)
	var st producer.ImageCacheStatus
	first.call(t, http.MethodGet, "/admin/server/cache/status", http.StatusOK, &st)
	if len(st.Engines) != 1 || st.Engines[0].Builds != 1 {
		t.Fatalf("builds after a burst of 10: %+v", st.Engines)
	}
	eng := testenv.RequireEngine(t, first.instance)
	imgs, err := eng.ListImages(context.Background(), engine.RoleRunnerImage)
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 1 {
		t.Errorf("%d runner images on the engine after a burst, want 1", len(imgs))
	}
	// The two workers shared one chain.
	chains, err := eng.ListContainers(context.Background(), map[string]string{engine.LabelRole: engine.RoleChain})
	if err != nil {
		t.Fatal(err)
	}
	if len(chains) != 1 {
		t.Errorf("%d chains for one network on one engine, want 1", len(chains))
	}
	addrs := map[string]bool{}
	for _, j := range results {
		addrs[j.Result.Contracts[0].Address] = true
	}
	if len(addrs) != 10 {
		t.Errorf("10 deployments gave %d distinct addresses: nonces collided", len(addrs))
	}
}

// The cache's status, cleanup and clear, through the API.
func TestImageCacheAdmin(t *testing.T) {
	s := getStack(t)
	requireCompleted(t, s.deploy(t, api.DeployRequest{PathURL: "examples/counter"}))
	var st producer.ImageCacheStatus
	s.call(t, http.MethodGet, "/admin/server/cache/status", http.StatusOK, &st)
	repo := (&runner.Image{Framework: runner.Foundry}).Repository(s.instance)
	if !st.CacheEnabled || st.CachedImages != 1 || len(st.CachedImageTags) != 1 || st.CachedImageTags[0] != repo+":latest" {
		t.Errorf("status %+v", st)
	}
	if len(st.Engines) != 1 || !st.Engines[0].Live || len(st.Engines[0].Images) != 1 || st.Engines[0].Images[0].Size <= 0 ||
		st.Engines[0].Hits < 1 || st.MaxAgeSeconds != 86400 {
		t.Errorf("engine status %+v", st.Engines)
	}

	var cl producer.CleanupResponse
	s.call(t, http.MethodPost, "/admin/server/cache/cleanup", http.StatusAccepted, &cl)
	if cl.TaskID == "" || cl.Queue == "" || len(cl.Tasks) != 1 {
		t.Errorf("cleanup answered %+v", cl)
	}
	s.call(t, http.MethodPost, "/admin/server/cache/cleanup?wait=true", http.StatusOK, &cl)
	if len(cl.Engines) != 1 || cl.Engines[0].Error != "" {
		t.Fatalf("cleanup results %+v", cl.Engines)
	}
	var rep tasks.ImageReport
	if err := json.Unmarshal(cl.Engines[0].Result, &rep); err != nil || len(rep.Removed) != 0 || rep.Kept != 1 {
		t.Errorf("cleanup of a fresh image: %s (%v)", cl.Engines[0].Result, err)
	}

	var clear producer.ClearResponse
	s.call(t, http.MethodPost, "/admin/server/cache/clear", http.StatusOK, &clear)
	if !clear.Success || clear.Message != "Cleared all image cache" || len(clear.Engines) != 1 || clear.Engines[0].Error != "" {
		t.Fatalf("clear answered %+v", clear)
	}
	s.call(t, http.MethodGet, "/admin/server/cache/status", http.StatusOK, &st)
	if st.CachedImages != 0 {
		t.Errorf("after a clear the status lists %d images", st.CachedImages)
	}
	j := s.deploy(t, api.DeployRequest{PathURL: "examples/counter"})
	requireCompleted(t, j)
	if j.Cache == nil || j.Cache.ImageHit {
		t.Errorf("the deployment after a clear did not build: %+v", j.Cache)
	}
	if j.Status != jobs.Completed {
		t.Fatal(j.Status)
	}
}
