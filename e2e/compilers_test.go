package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/deployer-dev/deployer/api"
	"github.com/deployer-dev/deployer/jobs"
)

// A project that pins its compilers compiles with them, fetched from the npm registry
// on first need, with no network in the job: one file at 0.8.19, another at 0.8.24.
func TestPinnedCompilerVersions(t *testing.T) {
	s := getStack(t)
	j := s.deploy(t, api.DeployRequest{PathURL: "e2e/testdata/pinned"})
	requireCompleted(t, j)
	logs, err := s.client.Logs(context.Background(), j.JobID)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"compiling with solc 0.8.19, 0.8.24", "Solc 0.8.19", "Solc 0.8.24"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the job's log does not say %q:\n%s", want, logs)
		}
	}
	// A second deployment compiles nothing: the versions are part of the cache key,
	// and they are the same.
	again := s.deploy(t, api.DeployRequest{PathURL: "e2e/testdata/pinned"})
	requireCompleted(t, again)
	if !again.Cache.CompileHit {
		t.Error("the second deployment of a pinned project compiled again")
	}
}

// A version that exists nowhere fails at once, naming it and what there is.
func TestMissingCompilerVersion(t *testing.T) {
	s := getStack(t)
	j := s.deploy(t, api.DeployRequest{PathURL: "e2e/testdata/missing-solc", Contract: "src/Future.sol:Future"})
	if j.Status != jobs.Failed || !strings.Contains(deref(j.Error), "solc 0.8.99, which does not exist") ||
		!strings.Contains(deref(j.Error), "0.7.6") || j.Attempts != 1 {
		t.Errorf("%s after %d attempt(s): %q", j.Status, j.Attempts, deref(j.Error))
	}
}
