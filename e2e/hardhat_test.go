package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deployer-dev/deployer/api"
	"github.com/deployer-dev/deployer/internal/testenv"
	"github.com/deployer-dev/deployer/jobs"
	"github.com/deployer-dev/deployer/producer"
)

// A Hardhat 3 project deploys with Ignition through the same pipeline: its
// dependencies installed from its lockfile, its compiler from the store, its
// transactions signed by the gateway; a second deployment installs and compiles
// nothing; parameters reach the module.
func TestHardhatIgnitionDeployment(t *testing.T) {
	s := getStack(t)
	up, err := s.client.UploadDir(context.Background(), filepath.Join(testenv.RepoRoot(), "examples", "hardhat-counter"))
	if err != nil {
		t.Fatal(err)
	}
	first := s.deploy(t, api.DeployRequest{PathURL: up.PathURL, Framework: "hardhat"})
	requireCompleted(t, first)
	c := first.Result.Contracts[0]
	if len(first.Result.Contracts) != 1 || c.Name != "CounterModule#Counter" || !strings.HasPrefix(c.TxHash, "0x") {
		t.Fatalf("contracts %+v", first.Result.Contracts)
	}
	// Ignition ran the module's call too: x() is its start (1) plus one.
	if x := callUint(t, first.Result.RPCURL, c.Address, "0x0c55699c"); x != 2 {
		t.Errorf("x() = %d, want 2", x)
	}
	second := s.deploy(t, api.DeployRequest{PathURL: up.PathURL, Framework: "hardhat",
		Parameters: json.RawMessage(`{"CounterModule": {"start": 41}}`)})
	requireCompleted(t, second)
	if !second.Cache.DepsHit || !second.Cache.CompileHit || !second.Cache.ImageHit {
		t.Errorf("a second deployment of the same project missed a cache: %+v", second.Cache)
	}
	if x := callUint(t, second.Result.RPCURL, second.Result.Contracts[0].Address, "0x0c55699c"); x != 42 {
		t.Errorf("x() = %d with start 41, want 42", x)
	}
	logs, _ := s.client.Logs(context.Background(), second.JobID)
	if strings.Contains(logs, "Compiled 1 Solidity file") {
		t.Errorf("the second deployment compiled:\n%s", logs)
	}
	// The compile cache keeps its Foundry-era route and counts each framework.
	var st producer.CompileCacheStatus
	s.call(t, http.MethodGet, "/admin/server/foundry-cache/status", http.StatusOK, &st)
	if st.ByFramework["hardhat"] < 1 {
		t.Errorf("compile cache status counts no Hardhat entry: %+v", st.ByFramework)
	}
}

// hardhatCopy copies the example for a test to break it.
func hardhatCopy(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "hardhat-counter")
	copyTree(t, filepath.Join(testenv.RepoRoot(), "examples", "hardhat-counter"), dir)
	return dir
}

func TestHardhatFailures(t *testing.T) {
	s := getStack(t)
	ctx := context.Background()

	// A compile error names the file and line.
	broken := hardhatCopy(t)
	if err := os.WriteFile(filepath.Join(broken, "contracts", "Counter.sol"), []byte("// SPDX-License-Identifier: MIT\npragma solidity ^0.8.28;\ncontract Counter {\n  uint public x\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	up, err := s.client.UploadDir(ctx, broken)
	if err != nil {
		t.Fatal(err)
	}
	j := s.deploy(t, api.DeployRequest{PathURL: up.PathURL, Framework: "hardhat"})
	if j.Status != jobs.Failed || !strings.Contains(deref(j.Error), "compile error at contracts/Counter.sol:5") {
		t.Errorf("compile error: %s %q", j.Status, deref(j.Error))
	}

	// A module that is not there, and a project without a lockfile, are 400s.
	up, err = s.client.UploadDir(ctx, hardhatCopy(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.client.Deploy(ctx, api.DeployRequest{PathURL: up.PathURL, Framework: "hardhat", Module: "ignition/modules/Nope.ts"}); err == nil || !strings.Contains(err.Error(), "has no ignition/modules/Nope.ts") {
		t.Errorf("a missing module: %v", err)
	}
	nolock := hardhatCopy(t)
	if err := os.Remove(filepath.Join(nolock, "package-lock.json")); err != nil {
		t.Fatal(err)
	}
	up, err = s.client.UploadDir(ctx, nolock)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.client.Deploy(ctx, api.DeployRequest{PathURL: up.PathURL, Framework: "hardhat"}); err == nil || !strings.Contains(err.Error(), "no package-lock.json") {
		t.Errorf("no lockfile: %v", err)
	}

	// A constructor that reverts: the job names the future that failed.
	reverts := hardhatCopy(t)
	if err := os.WriteFile(filepath.Join(reverts, "contracts", "Counter.sol"), []byte("// SPDX-License-Identifier: MIT\npragma solidity ^0.8.28;\ncontract Counter {\n  uint public x;\n  constructor(uint start) { require(start > 100, \"start too small\"); x = start; }\n  function inc() public { x++; }\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	up, err = s.client.UploadDir(ctx, reverts)
	if err != nil {
		t.Fatal(err)
	}
	j = s.deploy(t, api.DeployRequest{PathURL: up.PathURL, Framework: "hardhat"})
	if j.Status != jobs.Failed || !strings.Contains(deref(j.Error), "CounterModule#Counter") || !strings.Contains(deref(j.Error), "start too small") {
		t.Errorf("a reverting constructor: %s %q", j.Status, deref(j.Error))
	}
}
