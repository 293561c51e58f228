package foundry

import (
	"reflect"
	"strings"
	"testing"
)

// fakeFiles is a project's list of regular files; all says every file exists, so
// that a refusal can only come from the check under test.
type fakeFiles struct {
	files map[string]bool
	all   bool
}

func (f fakeFiles) Has(name string) bool { return f.all || f.files[name] }

func project(names ...string) fakeFiles {
	m := make(map[string]bool)
	for _, n := range names {
		m[n] = true
	}
	return fakeFiles{files: m}
}

func TestResolveTarget(t *testing.T) {
	std := project("script/Deploy.s.sol", "script/Other.s.sol", "src/Counter.sol", "src/nested/Token.sol")
	tests := []struct {
		name     string
		files    Files
		script   string
		contract string
		args     []string
		want     Target
		str      string
	}{
		{
			name: "default script", files: std,
			want: Target{ScriptPath: "script/Deploy.s.sol"}, str: "script/Deploy.s.sol",
		},
		{
			name: "script", files: std, script: "script/Other.s.sol",
			want: Target{ScriptPath: "script/Other.s.sol"}, str: "script/Other.s.sol",
		},
		{
			name: "script with contract name", files: std, script: "script/Deploy.s.sol:Deploy",
			want: Target{ScriptPath: "script/Deploy.s.sol", ScriptContract: "Deploy"}, str: "script/Deploy.s.sol:Deploy",
		},
		{
			name: "script path cleaned", files: std, script: "./script//Deploy.s.sol",
			want: Target{ScriptPath: "script/Deploy.s.sol"}, str: "script/Deploy.s.sol",
		},
		{
			name: "contract", files: std, contract: "src/Counter.sol:Counter",
			want: Target{ContractPath: "src/Counter.sol", ContractName: "Counter"}, str: "src/Counter.sol:Counter",
		},
		{
			name: "contract with args", files: std, contract: "src/nested/Token.sol:Token", args: []string{"Name", "-1", "0xabc"},
			want: Target{ContractPath: "src/nested/Token.sol", ContractName: "Token", ConstructorArgs: []string{"Name", "-1", "0xabc"}},
			str:  "src/nested/Token.sol:Token",
		},
		{
			name: "contract identifier with $ and _", files: std, contract: "src/Counter.sol:_Counter$2",
			want: Target{ContractPath: "src/Counter.sol", ContractName: "_Counter$2"}, str: "src/Counter.sol:_Counter$2",
		},
		{
			name: "contract path cleaned", files: std, contract: "./src/../src/Counter.sol:Counter",
			want: Target{ContractPath: "src/Counter.sol", ContractName: "Counter"}, str: "src/Counter.sol:Counter",
		},
		{
			name: "64 args", files: std, contract: "src/Counter.sol:Counter", args: make([]string, 64),
			want: Target{ContractPath: "src/Counter.sol", ContractName: "Counter", ConstructorArgs: make([]string, 64)},
			str:  "src/Counter.sol:Counter",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ResolveTarget(tt.files, tt.script, tt.contract, tt.args)
			if err != nil {
				t.Fatalf("ResolveTarget: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ResolveTarget = %+v, want %+v", got, tt.want)
			}
			if got.String() != tt.str {
				t.Errorf("String() = %q, want %q", got.String(), tt.str)
			}
			if got.IsScript() != (tt.want.ScriptPath != "") {
				t.Errorf("IsScript() = %v", got.IsScript())
			}
		})
	}
}

func TestResolveTargetRefused(t *testing.T) {
	std := project("script/Deploy.s.sol", "src/Counter.sol")
	all := fakeFiles{all: true}
	long := strings.Repeat("a", maxArgLen+1)
	tests := []struct {
		name     string
		files    Files
		script   string
		contract string
		args     []string
		msg      string
	}{
		{name: "no default script", files: project("src/Counter.sol"), msg: DefaultScript},
		{name: "script absent", files: std, script: "script/Other.s.sol", msg: "has no script/Other.s.sol"},
		{name: "script and contract", files: std, script: "script/Deploy.s.sol", contract: "src/Counter.sol:Counter", msg: "not both"},
		{name: "constructor args with script", files: std, script: "script/Deploy.s.sol", args: []string{"1"}, msg: "not with a script"},
		{name: "constructor args with default script", files: std, args: []string{"1"}, msg: "constructor_args go with contract"},
		{name: "contract without name", files: std, contract: "src/Counter.sol", msg: "name the contract"},
		{name: "contract with empty name", files: std, contract: "src/Counter.sol:", msg: "name the contract"},
		{name: "contract absent", files: std, contract: "src/Missing.sol:Missing", msg: "has no src/Missing.sol"},
		{name: "contract name starts with digit", files: all, contract: "src/Counter.sol:1Counter", msg: "not a contract name"},
		{name: "contract name with dash", files: all, contract: "src/Counter.sol:Count-er", msg: "not a contract name"},
		{name: "contract name with space", files: all, contract: "src/Counter.sol:Counter --rpc-url x", msg: "not a contract name"},
		{name: "contract name with second colon", files: all, contract: "src/Counter.sol:Counter:X", msg: "not a contract name"},
		{name: "script name bad", files: all, script: "script/Deploy.s.sol:De ploy", msg: "not a contract name"},
		{name: "not a .sol file", files: all, contract: "src/Counter.vy:Counter", msg: "expected a .sol file"},
		{name: "script not .sol", files: all, script: "script/deploy.sh", msg: "expected a .sol file"},
		{name: "contract dotdot", files: all, contract: "../x.sol:X", msg: "inside the project"},
		{name: "contract dotdot after clean", files: all, contract: "src/../../x.sol:X", msg: "inside the project"},
		{name: "contract absolute", files: all, contract: "/etc/x.sol:X", msg: "inside the project"},
		{name: "contract leading dash", files: all, contract: "-x.sol:X", msg: "inside the project"},
		{name: "contract flag", files: all, contract: "--rpc-url=x.sol:X", msg: "inside the project"},
		{name: "contract leading dash after clean", files: all, contract: "./-x.sol:X", msg: "inside the project"},
		{name: "script dotdot", files: all, script: "../Deploy.s.sol", msg: "inside the project"},
		{name: "script dotdot after clean", files: all, script: "script/../../Deploy.s.sol", msg: "inside the project"},
		{name: "script absolute", files: all, script: "/tmp/Deploy.s.sol", msg: "inside the project"},
		{name: "script leading dash", files: all, script: "-Deploy.s.sol", msg: "inside the project"},
		{name: "script leading dash after clean", files: all, script: "./--fork-url=x.sol", msg: "inside the project"},
		{name: "too many args", files: std, contract: "src/Counter.sol:Counter", args: make([]string, 65), msg: "at most 64"},
		{name: "arg too long", files: std, contract: "src/Counter.sol:Counter", args: []string{"1", long}, msg: "constructor_args[1]"},
		{name: "arg with newline", files: std, contract: "src/Counter.sol:Counter", args: []string{"a\nb"}, msg: "constructor_args[0]"},
		{name: "arg with NUL", files: std, contract: "src/Counter.sol:Counter", args: []string{"a\x00b"}, msg: "constructor_args[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ResolveTarget(tt.files, tt.script, tt.contract, tt.args)
			if err == nil {
				t.Fatalf("ResolveTarget = %+v (%q), want an error", got, got.String())
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("err %q does not say %q", err, tt.msg)
			}
			if !reflect.DeepEqual(got, Target{}) {
				t.Errorf("a target came with the error: %+v", got)
			}
		})
	}
}
