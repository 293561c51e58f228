package foundry

import (
	"fmt"
	"regexp"
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
