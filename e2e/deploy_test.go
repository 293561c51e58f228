package e2e

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deployer-dev/deployer/api"
	"github.com/deployer-dev/deployer/chains"
	"github.com/deployer-dev/deployer/client"
	"github.com/deployer-dev/deployer/internal/testenv"
	"github.com/deployer-dev/deployer/jobs"
)

// anvilKey is anvil's first default private key: public knowledge, yet it must never
// show up in anything the service writes.
const anvilKey = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"

func TestDeployCounterByPath(t *testing.T) {
	s := getStack(t)
	counter := filepath.Join(testenv.RepoRoot(), "examples", "counter")
	j := s.deploy(t, api.DeployRequest{PathURL: "examples/counter", Network: "local"})
	requireCompleted(t, j)
	if j.Result.ChainID != 31337 || !strings.HasPrefix(j.Result.RPCURL, "http://127.0.0.1:") {
		t.Errorf("result %+v", j.Result)
	}
	if len(j.Result.Contracts) != 1 || j.Result.Contracts[0].Name != "Counter" {
		t.Errorf("contracts %+v", j.Result.Contracts)
	}
	if j.Timings == nil || j.Timings.Total <= 0 || j.Timings.Deploy <= 0 || j.Timings.Within.Forge <= 0 || (j.Timings.Compile <= 0 && !j.Cache.CompileHit) {
		t.Errorf("timings %+v", j.Timings)
	}
	if j.Timings != nil {
		var sum int64
		for _, ph := range j.Timings.Phases() {
			sum += ph.MS
		}
		if sum != j.Timings.Total {
			t.Errorf("the phases add up to %d ms, the total is %d: %+v", sum, j.Timings.Total, j.Timings)
		}
	}
	// The script increments the counter it deployed once: number() is 43.
	if n := callUint(t, j.Result.RPCURL, j.Result.Contracts[0].Address, "0x8381f58a"); n != 43 {
		t.Errorf("number() = %d, want 43", n)
	}
	// The user's directory is never written to.
	for _, d := range []string{"out", "cache", "broadcast"} {
		if _, err := os.Stat(filepath.Join(counter, d)); err == nil {
			t.Errorf("deployment wrote %s into the project directory", d)
		}
	}
	logs, err := s.client.Logs(context.Background(), j.JobID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs, "ONCHAIN EXECUTION COMPLETE") {
		t.Errorf("logs lack forge's output:\n%s", logs)
	}
	if strings.Contains(logs, anvilKey) || strings.Contains(s.logs.String(), anvilKey) {
		t.Error("a private key appears in the logs")
	}
}

func TestDeployCounterByUpload(t *testing.T) {
	s := getStack(t)
	up, err := s.client.UploadDir(context.Background(), filepath.Join(testenv.RepoRoot(), "examples", "counter"))
	if err != nil {
		t.Fatal(err)
	}
	j := s.deploy(t, api.DeployRequest{PathURL: up.PathURL})
	requireCompleted(t, j)
	if j.Network != "local" {
		t.Errorf("network %q, want the default local", j.Network)
	}
}

func TestMultiContractScriptReportsEveryContract(t *testing.T) {
	s := getStack(t)
	j := s.deploy(t, api.DeployRequest{PathURL: "e2e/testdata/multi"})
	requireCompleted(t, j)
	// Counter, Factory, the Counter its constructor makes, the one make() makes, and
	// the CREATE2 Counter.
	if len(j.Result.Contracts) != 5 {
		t.Fatalf("%d contracts reported, want 5: %+v", len(j.Result.Contracts), j.Result.Contracts)
	}
	names := map[string]int{}
	seen := map[string]bool{}
	rpc := s.chainAdmin(t, "local")
	for _, c := range j.Result.Contracts {
		names[c.Name]++
		if seen[strings.ToLower(c.Address)] {
			t.Errorf("address %s reported twice", c.Address)
		}
		seen[strings.ToLower(c.Address)] = true
		// The transaction reported for a contract is the one that created it.
		created, err := rpc.Created(context.Background(), c.TxHash)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, a := range created {
			found = found || strings.EqualFold(a, c.Address)
		}
		if !found {
			t.Errorf("tx %s reported for %s %s did not create it (it created %v)", c.TxHash, c.Name, c.Address, created)
		}
	}
	if names["Counter"] != 4 || names["Factory"] != 1 {
		t.Errorf("names %v", names)
	}
}

func TestForgeCreateWithConstructorArgs(t *testing.T) {
	s := getStack(t)
	j := s.deploy(t, api.DeployRequest{PathURL: "examples/counter", Contract: "src/Counter.sol:Counter", ConstructorArgs: []string{"7"}})
	requireCompleted(t, j)
	if n := callUint(t, j.Result.RPCURL, j.Result.Contracts[0].Address, "0x8381f58a"); n != 7 {
		t.Errorf("number() = %d, want 7", n)
	}
}

// A script's entry point takes arguments: a negative number reaches the script as a
// number, not as a flag, and a script file name may hold hyphens.
func TestScriptWithArguments(t *testing.T) {
	s := getStack(t)
	j := s.deploy(t, api.DeployRequest{PathURL: "e2e/testdata/args", Script: "script/Deploy-With-Args.s.sol:DeployWithArgs",
		Sig: "deploy(int256,uint256)", Args: []string{"-5", "7"}})
	requireCompleted(t, j)
	holder := j.Result.Contracts[0].Address
	var x string
	if err := chains.NewRPC(j.Result.RPCURL, nil).Call(context.Background(), "eth_call", &x,
		map[string]string{"to": holder, "data": "0x0c55699c"}, "latest"); err != nil {
		t.Fatal(err)
	}
	if want := "0x" + strings.Repeat("f", 63) + "b"; x != want {
		t.Errorf("x() = %s, want -5 (%s)", x, want)
	}
	if y := callUint(t, j.Result.RPCURL, holder, "0xa56dfe4a"); y != 7 {
		t.Errorf("y() = %d, want 7", y)
	}
}

func TestCompileErrorFailsWithCompilerMessage(t *testing.T) {
	s := getStack(t)
	j := s.deploy(t, api.DeployRequest{PathURL: "e2e/testdata/broken", Contract: "src/Bad.sol:Bad"})
	if j.Status != jobs.Failed || j.Error == nil {
		t.Fatalf("job ended %s", j.Status)
	}
	want := "compile error at src/Bad.sol:5:1: Expected ';' but got '}'"
	if *j.Error != want {
		t.Errorf("error %q, want %q", *j.Error, want)
	}
	if j.Attempts != 1 {
		t.Errorf("a user's error was tried %d times", j.Attempts)
	}
	if j.Result != nil {
		t.Errorf("failed job has a result")
	}
}

func TestRejectedRequestsEnqueueNothing(t *testing.T) {
	s := getStack(t)
	before := s.queueSize(t)
	ctx := context.Background()
	for _, req := range []api.DeployRequest{
		{PathURL: "examples/counter", Framework: "hardhat"},
		{PathURL: "examples/counter", Framework: "foundry", Network: "sepolia"},
		{PathURL: "examples/nope", Framework: "foundry"},
		{PathURL: "../etc", Framework: "foundry"},
		{PathURL: "e2e/testdata/broken", Framework: "foundry"},
	} {
		_, err := s.client.Deploy(ctx, req)
		var se *client.StatusError
		if !errors.As(err, &se) || se.Code != http.StatusBadRequest || se.Message == "" {
			t.Errorf("request %+v: %v, want a 400 naming the problem", req, err)
		}
	}
	if after := s.queueSize(t); after != before {
		t.Errorf("rejected requests changed the queue from %d to %d tasks", before, after)
	}
}

func (s *stack) queueSize(t *testing.T) int {
	t.Helper()
	info, err := s.insp.GetQueueInfo(s.ns.DeployQueue())
	if err != nil {
		t.Fatal(err)
	}
	return info.Size + info.Completed + info.Archived
}
