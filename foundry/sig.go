package foundry

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// maxScriptArgs bounds a script's arguments.
const maxScriptArgs = 32

var (
	sigRE      = regexp.MustCompile(`^([A-Za-z_$][A-Za-z0-9_$]*)\((.*)\)$`)
	calldataRE = regexp.MustCompile(`^0x([0-9a-fA-F]{2})*$`)
	// elementaryRE is an elementary type with its array dimensions.
	elementaryRE = regexp.MustCompile(`^(address|bool|string|bytes|function|u?int(\d*)|bytes(\d+))((\[\d*\])*)$`)
)

// CheckSig checks a script's entry point and its arguments: sig is a function
// signature ("run(address,uint256)") whose parameters args fill in order, or raw
// calldata ("0x…") with no args. Its errors are written for the user.
func CheckSig(sig string, args []string) error {
	if len(args) > maxScriptArgs {
		return fmt.Errorf("args: at most %d", maxScriptArgs)
	}
	for i, a := range args {
		if len(a) > maxArgLen || strings.ContainsAny(a, "\x00\n") {
			return fmt.Errorf("args[%d] is too long or holds a newline", i)
		}
	}
	if sig == "" {
		if len(args) > 0 {
			return fmt.Errorf("args need sig, the function they are passed to, as in \"run(address)\"")
		}
		return nil
	}
	if strings.HasPrefix(sig, "0x") {
		if !calldataRE.MatchString(sig) || len(sig) < 10 || len(sig) > 2*maxArgLen {
			return fmt.Errorf("sig %q: calldata is 0x and an even number of hex digits, a selector at least", sig)
		}
		if len(args) > 0 {
			return fmt.Errorf("sig %q is calldata already: it takes no args", sig)
		}
		return nil
	}
	m := sigRE.FindStringSubmatch(sig)
	if m == nil || len(sig) > 1024 {
		return fmt.Errorf("sig %q is not a function signature, as in \"run(address,uint256)\"", sig)
	}
	params, err := splitTypes(m[2])
	if err != nil {
		return fmt.Errorf("sig %q: %v", sig, err)
	}
	for _, p := range params {
		if err := checkType(p); err != nil {
			return fmt.Errorf("sig %q: %v", sig, err)
		}
	}
	if len(args) != len(params) {
		return fmt.Errorf("sig %q takes %d argument(s); args has %d", sig, len(params), len(args))
	}
	return nil
}

// splitTypes splits a parameter list at its top-level commas.
func splitTypes(list string) ([]string, error) {
	if strings.TrimSpace(list) == "" {
		return nil, nil
	}
	var out []string
	depth, start := 0, 0
	for i, c := range list {
		switch c {
		case '(':
			depth++
		case ')':
			if depth--; depth < 0 {
				return nil, fmt.Errorf("unbalanced parentheses")
			}
		case ',':
			if depth == 0 {
				out = append(out, list[start:i])
				start = i + 1
			}
		}
	}
	if depth != 0 {
		return nil, fmt.Errorf("unbalanced parentheses")
	}
	return append(out, list[start:]), nil
}

// checkType accepts an ABI type as a signature spells it: elementary types, arrays,
// and tuples "(t1,t2)" with their arrays.
func checkType(t string) error {
	if t != strings.TrimSpace(t) || t == "" {
		return fmt.Errorf("%q is not a type (no spaces in a signature)", t)
	}
	if strings.HasPrefix(t, "(") {
		end := strings.LastIndex(t, ")")
		inner, err := splitTypes(t[1:end])
		if err != nil {
			return err
		}
		for _, it := range inner {
			if err := checkType(it); err != nil {
				return err
			}
		}
		// What follows the tuple may only be array brackets: check them on a stand-in.
		t = "bool" + t[end+1:]
	}
	m := elementaryRE.FindStringSubmatch(t)
	if m == nil {
		return fmt.Errorf("%q is not a type", t)
	}
	if bits := m[2]; bits != "" {
		if n, _ := strconv.Atoi(bits); n < 8 || n > 256 || n%8 != 0 {
			return fmt.Errorf("%q is not a type (int sizes are 8 to 256, in steps of 8)", t)
		}
	}
	if size := m[3]; size != "" {
		if n, _ := strconv.Atoi(size); n < 1 || n > 32 {
			return fmt.Errorf("%q is not a type (bytes1 to bytes32)", t)
		}
	}
	return nil
}

// Limits of a script's environment.
const (
	maxEnv      = 64
	maxEnvValue = 4096
)

var envNameRE = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)

// reservedEnv are the names a job's commands run with already, or that change how
// forge or the shell behave; a script's settings may not replace them.
var reservedEnv = map[string]bool{
	"HOME": true, "PATH": true, "USER": true, "SHELL": true, "PWD": true, "TMPDIR": true,
	"NO_COLOR": true, "XDG_DATA_HOME": true, "XDG_CONFIG_HOME": true, "XDG_CACHE_HOME": true,
	"SOLJSON_DIR": true, "NODE_OPTIONS": true, "LD_PRELOAD": true, "LD_LIBRARY_PATH": true,
	"RUST_LOG": true, "RUST_BACKTRACE": true, "SSL_CERT_FILE": true, "HTTP_PROXY": true,
	"HTTPS_PROXY": true, "ALL_PROXY": true, "NO_PROXY": true,
}

// CheckEnv checks a script's settings: names in capitals, digits and underscores,
// none of forge's (FOUNDRY_*, DAPP_*, ETH_*) or the service's own, values of bounded
// size. Its errors are written for the user.
func CheckEnv(env map[string]string) error {
	if len(env) > maxEnv {
		return fmt.Errorf("env: at most %d settings", maxEnv)
	}
	names := make([]string, 0, len(env))
	for k := range env {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		switch {
		case !envNameRE.MatchString(k) || len(k) > 128:
			return fmt.Errorf("env: %q is not a name such as OWNER or INITIAL_SUPPLY", truncate(k, 64))
		case strings.HasPrefix(k, "FOUNDRY_") || strings.HasPrefix(k, "DAPP_") || strings.HasPrefix(k, "ETH_"):
			return fmt.Errorf("env: %s would configure forge itself; FOUNDRY_*, DAPP_* and ETH_* are the service's", k)
		case reservedEnv[k] || strings.HasPrefix(k, "DEPLOYER_"):
			return fmt.Errorf("env: %s is set by the service", k)
		case len(env[k]) > maxEnvValue || strings.ContainsRune(env[k], 0):
			return fmt.Errorf("env: %s is longer than %d bytes or holds a NUL", k, maxEnvValue)
		}
	}
	return nil
}

// EnvList is a script's settings as a command's environment, sorted.
func EnvList(env map[string]string) []string {
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}
