package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deployer-dev/deployer/api"
	"github.com/deployer-dev/deployer/internal/testenv"
	"github.com/deployer-dev/deployer/jobs"
)

// Projects as real ones come: dependencies under node_modules (installed here from the
// npm registry, as a user's machine has them) or lib/, settings left over, scripts that
// read their settings from the environment.

// npmProject copies a test project and installs its npm dependencies in the copy.
func npmProject(t *testing.T, name string) string {
	t.Helper()
	if _, err := exec.LookPath("npm"); err != nil {
		testenv.Missing(t, "npm: %v", err)
	}
	dir := filepath.Join(t.TempDir(), name)
	copyTree(t, filepath.Join(testenv.RepoRoot(), "e2e", "testdata", name), dir)
	cmd := exec.Command("npm", "install", "--no-audit", "--no-fund", "--ignore-scripts", "--silent")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm install in %s: %v\n%s", name, err, out)
	}
	return dir
}

// An OpenZeppelin ERC20 in a node_modules layout, uploaded as it is (ffi left on,
// duplicate and dangling remappings), its supply read with vm.envOr: the default, and
// the value the request's env gives.
func TestOpenZeppelinTokenFromNodeModules(t *testing.T) {
	s := getStack(t)
	dir := npmProject(t, "oz-token")
	up, err := s.client.UploadDir(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	def := s.deploy(t, api.DeployRequest{PathURL: up.PathURL})
	requireCompleted(t, def)
	if supply := callUint(t, def.Result.RPCURL, def.Result.Contracts[0].Address, "0x18160ddd"); supply != 1000 {
		t.Errorf("totalSupply() = %d with no env, want the script's default 1000", supply)
	}
	logs, _ := s.client.Logs(context.Background(), def.JobID)
	if !strings.Contains(logs, "ffi is off") {
		t.Errorf("the log does not say ffi is off:\n%s", logs)
	}
	set := s.deploy(t, api.DeployRequest{PathURL: up.PathURL, Env: map[string]string{"INITIAL_SUPPLY": "5000"}})
	requireCompleted(t, set)
	if supply := callUint(t, set.Result.RPCURL, set.Result.Contracts[0].Address, "0x18160ddd"); supply != 5000 {
		t.Errorf("totalSupply() = %d with INITIAL_SUPPLY=5000", supply)
	}
	if !set.Cache.CompileHit {
		t.Error("the second deployment of the same project compiled again")
	}
	// The cache's lookup is the project phase's: the cached deployment compiles
	// nothing (its phase is at most the millisecond the rounding gives it).
	if def.Timings.Compile <= 0 || set.Timings.Compile > 1 {
		t.Errorf("compile times: first %d ms, cached %d ms (want 0)", def.Timings.Compile, set.Timings.Compile)
	}
}

// A lib/ layout with a library forge deploys and links, a script named with hyphens
// importing a test mock, via_ir, paris, a huge optimizer run count.
func TestLibrariesAndLibLayout(t *testing.T) {
	s := getStack(t)
	j := s.deploy(t, api.DeployRequest{PathURL: "e2e/testdata/libs", Script: "script/deploy-all.s.sol:DeployAll"})
	requireCompleted(t, j)
	names := map[string]string{}
	for _, c := range j.Result.Contracts {
		names[c.Name] = c.Address
	}
	calc, ok := names["Calc"]
	if !ok || names["MockOracle"] == "" || names["MathLib"] == "" {
		t.Fatalf("contracts %v, want Calc, MockOracle and the linked MathLib", names)
	}
	// The library is linked: Calc's calls reach it.
	if got := callUint(t, j.Result.RPCURL, calc, "0xcad0899b"+word(2)+word(3)); got != 5 {
		t.Errorf("Calc.sum(2, 3) = %d", got)
	}
}

func word(n uint64) string { return fmt.Sprintf("%064x", n) }

// A script that signs with a key from its environment learns the service signs.
func TestScriptLookingForAKeyGetsAHint(t *testing.T) {
	s := getStack(t)
	j := s.deploy(t, api.DeployRequest{PathURL: "e2e/testdata/libs", Script: "script/WithKey.s.sol:WithKey"})
	if j.Status != jobs.Failed || !strings.Contains(deref(j.Error), "the service signs") {
		t.Errorf("%s %q", j.Status, deref(j.Error))
	}
}

// A project whose git submodules were not checked out fails saying so.
func TestEmptySubmodulesAreNamed(t *testing.T) {
	s := getStack(t)
	dir := filepath.Join(t.TempDir(), "libs")
	copyTree(t, filepath.Join(testenv.RepoRoot(), "e2e", "testdata", "libs"), dir)
	if err := os.RemoveAll(filepath.Join(dir, "lib", "mathlib")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "lib", "mathlib"), 0o755); err != nil {
		t.Fatal(err)
	}
	gitmodules := "[submodule \"lib/mathlib\"]\n\tpath = lib/mathlib\n\turl = https://example.com/mathlib\n"
	if err := os.WriteFile(filepath.Join(dir, ".gitmodules"), []byte(gitmodules), 0o644); err != nil {
		t.Fatal(err)
	}
	up, err := s.client.UploadDir(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	j := s.deploy(t, api.DeployRequest{PathURL: up.PathURL, Script: "script/deploy-all.s.sol:DeployAll"})
	if j.Status != jobs.Failed || !strings.Contains(deref(j.Error), "lib/mathlib is empty") || !strings.Contains(deref(j.Error), "submodule") {
		t.Errorf("%s %q", j.Status, deref(j.Error))
	}
}
