package foundry

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

const sender = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"

func TestEnv(t *testing.T) {
	env := Env("/work/project", "/work/.deployer")
	for _, want := range []string{
		"FOUNDRY_CONFIG=/work/project/foundry.toml",
		"XDG_DATA_HOME=/work/.deployer",
		"FOUNDRY_PROFILE=default",
		"FOUNDRY_OFFLINE=true",
	} {
		if !slices.Contains(env, want) {
			t.Errorf("Env lacks %s: %q", want, env)
		}
	}
	for _, e := range env {
		if strings.HasPrefix(e, "FOUNDRY_FFI") || strings.Contains(e, "PRIVATE_KEY") || strings.HasPrefix(e, "ETH_RPC_URL") {
			t.Errorf("Env sets %s", e)
		}
	}
}

func TestBuildCommand(t *testing.T) {
	cmd := BuildCommand()
	if len(cmd) < 2 || cmd[0] != "forge" || cmd[1] != "build" {
		t.Fatalf("BuildCommand = %q", cmd)
	}
}

// after returns the argument following flag in cmd, or "" with false.
func after(cmd []string, flag string) (string, bool) {
	i := slices.Index(cmd, flag)
	if i < 0 || i+1 >= len(cmd) {
		return "", false
	}
	return cmd[i+1], true
}

func TestDeployCommand(t *testing.T) {
	const rpc = "/ipc/anvil.ipc"
	tests := []struct {
		name   string
		target Target
		check  func(t *testing.T, cmd []string)
	}{
		{
			name:   "script",
			target: Target{ScriptPath: "script/Deploy.s.sol", ScriptContract: "Deploy"},
			check: func(t *testing.T, cmd []string) {
				if !reflect.DeepEqual(cmd[:3], []string{"forge", "script", "script/Deploy.s.sol:Deploy"}) {
					t.Errorf("starts %q", cmd[:3])
				}
				if !slices.Contains(cmd, "--unlocked") {
					t.Errorf("no --unlocked")
				}
				if v, _ := after(cmd, "--sender"); v != sender {
					t.Errorf("--sender %q, want %s", v, sender)
				}
				if !slices.Contains(cmd, "--broadcast") {
					t.Errorf("no --broadcast")
				}
				if slices.Contains(cmd, "--constructor-args") {
					t.Errorf("a script takes no --constructor-args")
				}
			},
		},
		{
			name:   "script without contract name",
			target: Target{ScriptPath: "script/Deploy.s.sol"},
			check: func(t *testing.T, cmd []string) {
				if cmd[2] != "script/Deploy.s.sol" {
					t.Errorf("target %q", cmd[2])
				}
			},
		},
		{
			name:   "create without args",
			target: Target{ContractPath: "src/Counter.sol", ContractName: "Counter"},
			check: func(t *testing.T, cmd []string) {
				if !reflect.DeepEqual(cmd[:3], []string{"forge", "create", "src/Counter.sol:Counter"}) {
					t.Errorf("starts %q", cmd[:3])
				}
				if slices.Contains(cmd, "--constructor-args") {
					t.Errorf("--constructor-args without args")
				}
				if v, _ := after(cmd, "--from"); v != sender {
					t.Errorf("--from %q", v)
				}
				if !slices.Contains(cmd, "--unlocked") || !slices.Contains(cmd, "--json") || !slices.Contains(cmd, "--broadcast") {
					t.Errorf("missing --unlocked, --json or --broadcast")
				}
			},
		},
		{
			name: "create with args",
			target: Target{ContractPath: "src/Token.sol", ContractName: "Token",
				ConstructorArgs: []string{"My Token", "--rpc-url", "-5", "0x" + strings.Repeat("ab", 32)}},
			check: func(t *testing.T, cmd []string) {
				args := []string{"My Token", "--rpc-url", "-5", "0x" + strings.Repeat("ab", 32)}
				tail := cmd[len(cmd)-len(args)-1:]
				if !reflect.DeepEqual(tail, append([]string{"--constructor-args"}, args...)) {
					t.Errorf("ends %q, want --constructor-args then the args", tail)
				}
				if n := strings.Count(strings.Join(cmd, "\x00"), "--constructor-args"); n != 1 {
					t.Errorf("--constructor-args %d times", n)
				}
				// The service's own --rpc-url comes before the arguments.
				if i := slices.Index(cmd, "--rpc-url"); i > slices.Index(cmd, "--constructor-args") || cmd[i+1] != rpc {
					t.Errorf("first --rpc-url at %d: %q", i, cmd)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := DeployCommand(tt.target, rpc, sender, false)
			if v, ok := after(cmd, "--rpc-url"); !ok || v != rpc {
				t.Errorf("--rpc-url %q, want %s", v, rpc)
			}
			// No key ever enters the command.
			end := len(cmd)
			if i := slices.Index(cmd, "--constructor-args"); i >= 0 {
				end = i
			}
			for _, a := range cmd[:end] {
				for _, bad := range []string{"--private-key", "--private-keys", "--mnemonic", "--mnemonics", "--keystore", "--account", "--ledger", "--trezor", "--interactive", "-i"} {
					if a == bad || strings.HasPrefix(a, bad+"=") {
						t.Errorf("command has %s: %q", bad, cmd)
					}
				}
			}
			tt.check(t, cmd)
		})
	}
}

const forgeCompileFailure = `Compiling 1 files with Solc 0.8.30
Solc 0.8.30 finished in 1.98s
Error: Compiler run failed:
Error (2314): Expected ';' but got '}'
 --> src/Bad.sol:4:1:
  |
4 | }
  | ^
`

func TestCompileError(t *testing.T) {
	tests := []struct {
		name, out, want string
	}{
		{"forge 1.7.1", forgeCompileFailure, "compile error at src/Bad.sol:4:1: Expected ';' but got '}'"},
		{"with colors", "\x1b[31mError\x1b[0m: Compiler run failed:\n\x1b[31mError (2314)\x1b[0m: Expected ';' but got '}'\n \x1b[34m-->\x1b[0m src/Bad.sol:4:1:\n", "compile error at src/Bad.sol:4:1: Expected ';' but got '}'"},
		{"CRLF", strings.ReplaceAll(forgeCompileFailure, "\n", "\r\n"), "compile error at src/Bad.sol:4:1: Expected ';' but got '}'"},
		{"typed error", "Error: Compiler run failed:\nTypeError: Undeclared identifier.\n  --> src/A.sol:10:9:\n", "compile error at src/A.sol:10:9: Undeclared identifier."},
		{"typed error with code", "DeclarationError (7576): Undeclared identifier.\n --> script/Deploy.s.sol:12:5:\n", "compile error at script/Deploy.s.sol:12:5: Undeclared identifier."},
		{"warning first", "Warning (2072): Unused local variable.\n --> src/A.sol:5:9:\n\nError (2314): Expected ';' but got '}'\n --> src/B.sol:7:1:\n", "compile error at src/B.sol:7:1: Expected ';' but got '}'"},
		{"first of two errors", "Error (1): First\n --> src/A.sol:1:1:\nError (2): Second\n --> src/B.sol:2:2:\n", "compile error at src/A.sol:1:1: First"},
		{"success", "Compiling 1 files with Solc 0.8.30\nSolc 0.8.30 finished in 1.02s\nCompiler run successful!\n", ""},
		{"warnings only", "Compiler run successful with warnings:\nWarning (2072): Unused local variable.\n --> src/A.sol:5:9:\n", ""},
		{"error without location", "Error: script failed: revert: nope\n", ""},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CompileError(tt.out); got != tt.want {
				t.Errorf("CompileError = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFailureSummary(t *testing.T) {
	tests := []struct {
		name, out, want string
	}{
		{"last error", "Error: first\nsomething\nError: script failed: revert: nope\n", "script failed: revert: nope"},
		{"reason on next line", "Traces:\nError:\nscript failed: custom error 0x1234\n", "script failed: custom error 0x1234"},
		{"colors", "\x1b[31mError:\x1b[0m boom\n", "boom"},
		{"none", "all good\n", ""},
		{"long", "Error: " + strings.Repeat("x", 600), strings.Repeat("x", 500) + "..."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FailureSummary(tt.out); got != tt.want {
				t.Errorf("FailureSummary = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestBroadcastDir(t *testing.T) {
	tests := []struct {
		script string
		chain  uint64
		want   string
	}{
		{"script/Deploy.s.sol", 31337, "broadcast/Deploy.s.sol/31337"},
		{"script/nested/Other.s.sol", 11155111, "broadcast/Other.s.sol/11155111"},
		{"Deploy.s.sol", 1, "broadcast/Deploy.s.sol/1"},
	}
	for _, tt := range tests {
		if got := BroadcastDir(Target{ScriptPath: tt.script, ScriptContract: "Deploy"}, tt.chain); got != tt.want {
			t.Errorf("BroadcastDir(%s, %d) = %s, want %s", tt.script, tt.chain, got, tt.want)
		}
	}
}

func TestParseBroadcast(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "run-latest.json"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseBroadcast(b)
	if err != nil {
		t.Fatalf("ParseBroadcast: %v", err)
	}
	type nameAddr struct{ Name, Address string }
	var contracts []nameAddr
	for _, c := range got.Contracts {
		contracts = append(contracts, nameAddr{c.Name, c.Address})
		if c.TxHash != strings.ToLower(c.TxHash) {
			t.Errorf("%s: TxHash %s not lowercased", c.Address, c.TxHash)
		}
	}
	want := []nameAddr{
		{"Counter", "0x9fe46736679d2d9a65f0992f2272de9f3c7fa6e0"},
		{"CounterFactory", "0xcf7ed3acca5a467e9e704c703e8d87f634fb0fc9"},
		{"Counter", "0xd8058efe0198ae9dd7d563e1b4938dcbc86a1f81"},
		{"Counter", "0x3b02ff1e626ed7a8fd6ec5299e2c54e1421b626b"},
		{"Counter", "0x2a8b2c5d2d0db2a0f5bafb2e13de4e4f6a0b1c2d"},
	}
	if !reflect.DeepEqual(contracts, want) {
		t.Errorf("Contracts:\n got %v\nwant %v", contracts, want)
	}

	wantTx := []string{
		"0x3e8c0d6a2f0b1c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d",
		"0x7a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9",
		"0xb1c2d3e4f5a60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90",
		"0xc4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3",
	}
	gotTx := slices.Clone(got.TxHashes)
	slices.Sort(gotTx)
	if !reflect.DeepEqual(gotTx, wantTx) {
		t.Errorf("TxHashes:\n got %q\nwant %q", got.TxHashes, wantTx)
	}
	if len(slices.Compact(gotTx)) != len(got.TxHashes) {
		t.Errorf("TxHashes has duplicates: %q", got.TxHashes)
	}
}

func TestParseBroadcastEdgeCases(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		contracts int
		txs       int
		wantErr   bool
	}{
		{"empty object", `{}`, 0, 0, false},
		{"no transactions", `{"transactions":[],"receipts":[]}`, 0, 0, false},
		{"call only", `{"transactions":[{"hash":"0x01","transactionType":"CALL","contractAddress":"0xAA"}],"receipts":[{"transactionHash":"0x01"}]}`, 0, 1, false},
		{"create without address", `{"transactions":[{"hash":"0x01","transactionType":"CREATE","contractName":"A","contractAddress":null}]}`, 0, 1, false},
		{"not json", `not json`, 0, 0, true},
		{"wrong shape", `{"transactions":{}}`, 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseBroadcast([]byte(tt.in))
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseBroadcast = %+v, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Contracts) != tt.contracts || len(got.TxHashes) != tt.txs {
				t.Errorf("ParseBroadcast = %+v, want %d contracts and %d transactions", got, tt.contracts, tt.txs)
			}
		})
	}
}

func TestParseCreate(t *testing.T) {
	target := Target{ContractPath: "src/Counter.sol", ContractName: "Counter"}
	out := strings.Join([]string{
		"Compiling 1 files with Solc 0.8.30",
		"Solc 0.8.30 finished in 1.02s",
		"Compiler run successful!",
		`{"not":"it"}`,
		`{"deployer":"0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266","deployedTo":"0xAbC0000000000000000000000000000000000dEf","transactionHash":"0xDEADbeef00000000000000000000000000000000000000000000000000000001"}`,
		"",
	}, "\n")
	got, err := ParseCreate(out, target)
	if err != nil {
		t.Fatalf("ParseCreate: %v", err)
	}
	const hash = "0xdeadbeef00000000000000000000000000000000000000000000000000000001"
	want := Broadcast{
		Contracts: []Created{{Name: "Counter", Address: "0xabc0000000000000000000000000000000000def", TxHash: hash}},
		TxHashes:  []string{hash},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseCreate = %+v, want %+v", got, want)
	}

	// forge 1.7 prints the object over several lines.
	pretty := "Compiler run successful!\n{\n  \"deployer\": \"0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266\",\n  \"deployedTo\": \"0xAbC0000000000000000000000000000000000dEf\",\n  \"transactionHash\": \"0xDEADbeef00000000000000000000000000000000000000000000000000000001\"\n}\n"
	if got, err := ParseCreate(pretty, target); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("ParseCreate(pretty-printed) = %+v, %v; want %+v", got, err, want)
	}

	for _, bad := range []string{"", "Compiler run successful!\n", `{"deployer":"0x1"}`, "{not json\n"} {
		if got, err := ParseCreate(bad, target); err == nil {
			t.Errorf("ParseCreate(%q) = %+v, want an error", bad, got)
		}
	}
}
