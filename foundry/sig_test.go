package foundry

import (
	"slices"
	"strings"
	"testing"
)

func TestCheckSig(t *testing.T) {
	for _, tt := range []struct {
		sig  string
		args []string
		err  string
	}{
		{"", nil, ""},
		{"run()", nil, ""},
		{"run(address)", []string{"0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"}, ""},
		{"run(int256,string)", []string{"-5", "salt"}, ""},
		{"deploy(uint256[],(address,bytes32)[2],bool)", []string{"[1,2]", "x", "true"}, ""},
		{"0xc0406226", nil, ""},
		{"", []string{"1"}, "args need sig"},
		{"run(address)", nil, "takes 1 argument(s); args has 0"},
		{"run()", []string{"1"}, "takes 0 argument(s); args has 1"},
		{"run(uint257)", []string{"1"}, `"uint257" is not a type`},
		{"run(address", []string{"1"}, "not a function signature"},
		{"run(uint256, address)", []string{"1", "2"}, "no spaces"},
		{"--rpc-url x", nil, "not a function signature"},
		{"0xc04062", []string{"1"}, "calldata"},
		{"0x123", nil, "calldata"},
		{"run(string)", []string{"a\nb"}, "newline"},
	} {
		err := CheckSig(tt.sig, tt.args)
		if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("CheckSig(%q, %q) = %v, want %q", tt.sig, tt.args, err, tt.err)
		}
	}
}

// No argument reaches forge as a flag: they follow "--".
func TestScriptArgumentsAreNeverFlags(t *testing.T) {
	target := Target{ScriptPath: "script/Deploy.s.sol", Sig: "run(int256,string)", Args: []string{"-5", "--broadcast"}}
	cmd := DeployCommand(target, "http://127.0.0.1:8545", "0x1", true)
	i := slices.Index(cmd, "--")
	if i < 0 || !slices.Equal(cmd[i+1:], []string{"-5", "--broadcast"}) {
		t.Fatalf("command %q", cmd)
	}
	if j := slices.Index(cmd, "--sig"); j < 0 || j > i || cmd[j+1] != "run(int256,string)" {
		t.Errorf("sig not passed before the arguments: %q", cmd)
	}
	if j := slices.Index(cmd, "--slow"); j < 0 || j > i {
		t.Errorf("--slow not among forge's own flags: %q", cmd)
	}
}

// A dry run's estimate, in wei, rounded up.
func TestEstimatedCost(t *testing.T) {
	out := "Chain 11155111\n\nEstimated gas price: 1.000000001 gwei\n\nEstimated total gas used for script: 207143\n\nEstimated amount required: 0.000207143000207143 ETH\n"
	if wei, ok := EstimatedCost(out); !ok || wei.String() != "207143000207143" {
		t.Errorf("EstimatedCost = %v, %t", wei, ok)
	}
	if _, ok := EstimatedCost("SIMULATION COMPLETE\n"); ok {
		t.Error("an estimate from output without one")
	}
}

func TestCheckEnv(t *testing.T) {
	if err := CheckEnv(map[string]string{"OWNER": "0x1", "INITIAL_SUPPLY": "1000000", "SALT_2": ""}); err != nil {
		t.Errorf("good settings refused: %v", err)
	}
	for env, want := range map[string]string{
		"FOUNDRY_FFI":   "configure forge",
		"ETH_RPC_URL":   "configure forge",
		"DAPP_TEST":     "configure forge",
		"HOME":          "set by the service",
		"XDG_DATA_HOME": "set by the service",
		"LD_PRELOAD":    "set by the service",
		"lower":         "not a name",
		"1ST":           "not a name",
	} {
		if err := CheckEnv(map[string]string{env: "x"}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", env, err, want)
		}
	}
	if err := CheckEnv(map[string]string{"BIG": strings.Repeat("x", 5000)}); err == nil {
		t.Error("a 5000-byte value passed")
	}
	if got := EnvList(map[string]string{"B": "2", "A": "1"}); !slices.Equal(got, []string{"A=1", "B=2"}) {
		t.Errorf("EnvList = %q", got)
	}
}

func TestKeyHint(t *testing.T) {
	out := "Error: script failed: vm.envUint: environment variable \"PRIVATE_KEY\" not found\n"
	if h := KeyHint(out); !strings.Contains(h, "PRIVATE_KEY") || !strings.Contains(h, "vm.startBroadcast() without a key") {
		t.Errorf("hint %q", h)
	}
	if h := KeyHint("Error: environment variable \"OWNER\" not found"); h != "" {
		t.Errorf("a hint for a setting that is not a key: %q", h)
	}
}
