package foundry

import (
	"fmt"
	"path"
	"regexp"
	"strings"
)

// DefaultScript is deployed when a request names neither a script nor a contract.
const DefaultScript = "script/Deploy.s.sol"

// Target is what a job deploys: a script, or one contract with constructor arguments.
type Target struct {
	// ScriptPath and ScriptContract name a script ("script/Deploy.s.sol", "Deploy").
	ScriptPath     string
	ScriptContract string
	// ContractPath and ContractName name a contract for forge create.
	ContractPath    string
	ContractName    string
	ConstructorArgs []string
	// Sig and Args are a script's entry point and its arguments (forge script --sig);
	// empty Sig runs run().
	Sig  string
	Args []string
	// Env are the script's settings, in its commands' environment.
	Env map[string]string
}

// IsScript says the target is a script.
func (t Target) IsScript() bool { return t.ScriptPath != "" }

// String is the target as forge takes it.
func (t Target) String() string {
	if t.IsScript() {
		if t.ScriptContract != "" {
			return t.ScriptPath + ":" + t.ScriptContract
		}
		return t.ScriptPath
	}
	return t.ContractPath + ":" + t.ContractName
}

// Files is what ResolveTarget needs to know of a project.
type Files interface {
	Has(name string) bool
}

var identRE = regexp.MustCompile(`^[A-Za-z_$][A-Za-z0-9_$]*$`)

// maxArgs bounds constructor arguments, each of which is one forge argument.
const maxArgs, maxArgLen = 64, 4096

// ResolveTarget checks a request's script, contract and constructor arguments against
// the project and says what the job deploys. Its errors are written for the user.
func ResolveTarget(files Files, script, contract string, args []string) (Target, error) {
	switch {
	case script != "" && contract != "":
		return Target{}, fmt.Errorf("give either script or contract, not both")
	case script != "" && len(args) > 0:
		return Target{}, fmt.Errorf("constructor_args go with contract, not with a script")
	case contract != "":
		p, name, err := splitRef(contract, "contract")
		if err != nil {
			return Target{}, err
		}
		if name == "" {
			return Target{}, fmt.Errorf("contract %q: name the contract, as in src/Counter.sol:Counter", contract)
		}
		if !files.Has(p) {
			return Target{}, fmt.Errorf("contract %q: the project has no %s", contract, p)
		}
		if len(args) > maxArgs {
			return Target{}, fmt.Errorf("constructor_args: at most %d", maxArgs)
		}
		for i, a := range args {
			if len(a) > maxArgLen || strings.ContainsAny(a, "\x00\n") {
				return Target{}, fmt.Errorf("constructor_args[%d] is too long or holds a newline", i)
			}
		}
		return Target{ContractPath: p, ContractName: name, ConstructorArgs: args}, nil
	case len(args) > 0:
		return Target{}, fmt.Errorf("constructor_args go with contract")
	case script == "":
		if !files.Has(DefaultScript) {
			return Target{}, fmt.Errorf("neither a script nor a contract: the project has no %s; give script or contract", DefaultScript)
		}
		script = DefaultScript
	}
	p, name, err := splitRef(script, "script")
	if err != nil {
		return Target{}, err
	}
	if !files.Has(p) {
		return Target{}, fmt.Errorf("script %q: the project has no %s", script, p)
	}
	return Target{ScriptPath: p, ScriptContract: name}, nil
}

// splitRef reads "path/File.sol[:Name]".
func splitRef(ref, what string) (string, string, error) {
	p, name, _ := strings.Cut(ref, ":")
	if name != "" && !identRE.MatchString(name) {
		return "", "", fmt.Errorf("%s %q: %q is not a contract name", what, ref, name)
	}
	if !strings.HasSuffix(p, ".sol") {
		return "", "", fmt.Errorf("%s %q: expected a .sol file", what, ref)
	}
	clean := path.Clean(p)
	// A leading dash would reach forge as a flag.
	if path.IsAbs(p) || clean == ".." || strings.HasPrefix(clean, "../") || strings.HasPrefix(clean, "-") {
		return "", "", fmt.Errorf("%s %q: a path inside the project, please", what, ref)
	}
	return clean, name, nil
}
