// Package foundry knows Foundry projects: which configuration forge may run with,
// what to deploy (a script or one contract), the commands, and how to read what forge
// printed and wrote. It runs nothing itself.
package foundry

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
)

// ErrRefused marks a project this service will not run, with the reason.
var ErrRefused = errors.New("project refused")

// allowedKeys are the [profile.default] settings taken from a project's foundry.toml:
// those that shape compilation and deployment. Everything else, and above all ffi,
// solc, fs_permissions and the RPC and Etherscan tables, is the service's to set.
var allowedKeys = map[string]bool{
	"src": true, "test": true, "script": true, "libs": true,
	"remappings": true, "auto_detect_remappings": true,
	"optimizer": true, "optimizer_runs": true, "optimizer_details": true,
	"via_ir": true, "evm_version": true, "bytecode_hash": true, "cbor_metadata": true,
	"use_literal_content": true, "revert_strings": true, "sparse_mode": true,
	"ignored_error_codes": true, "ignored_warnings_from": true, "deny_warnings": true,
	"extra_output": true, "model_checker": true, "code_size_limit": true,
	"gas_limit": true, "memory_limit": true, "block_gas_limit": true,
	"always_use_create_2_factory": true, "create2_deployer": true, "isolate": true,
	"names": true, "sizes": true, "unchecked_cheatcode_artifacts": true,
}

// forced are the settings every job runs with, whatever the project says. forge
// detects each file's compiler among the versions the job offers it (see
// CompilerNeeds), or uses the version the project pins.
var forced = map[string]any{
	"auto_detect_solc": true,
	"offline":          true,
	"ffi":              false,
	"fs_permissions":   []any{},
	"out":              "out",
	"cache":            true,
	"cache_path":       "cache",
	"broadcast":        "broadcast",
}

// Config is the configuration forge runs a job with.
type Config struct {
	// TOML replaces the project's foundry.toml in the job's copy.
	TOML []byte
	// Dropped lists the project's settings that were left out, for the job's log.
	Dropped []string
	// Notes say why, where it is worth saying.
	Notes []string
	// Solc is the compiler version the project pins (solc or solc_version), "" when
	// forge detects each file's.
	Solc string
}

var versionRE = regexp.MustCompile(`^v?(\d+\.\d+\.\d+)$`)

// SanitizeConfig reads a project's foundry.toml (nil when it has none) and returns
// the configuration the job runs with: the project's settings that shape compilation,
// and the service's own. What is not safe is dropped and said: ffi, in any profile,
// is forced off (a script that calls vm.ffi then fails with forge's own error). A
// compiler the project pins is honoured as a version; one it names by path is refused,
// since the service compiles with its own builds only.
func SanitizeConfig(projectTOML []byte) (Config, error) {
	var doc map[string]any
	if len(projectTOML) > 0 {
		if _, err := toml.Decode(string(projectTOML), &doc); err != nil {
			return Config{}, fmt.Errorf("%w: foundry.toml does not parse: %v", ErrRefused, err)
		}
	}
	var c Config
	profiles, _ := doc["profile"].(map[string]any)
	names := make([]string, 0, len(profiles))
	for name := range profiles {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		p, _ := profiles[name].(map[string]any)
		if ffi, _ := p["ffi"].(bool); ffi {
			c.Notes = append(c.Notes, fmt.Sprintf("ffi is off (foundry.toml enables it in [profile.%s]): it runs commands on the deploying machine; a script that calls vm.ffi fails", name))
		}
	}
	out := make(map[string]any)
	def, _ := profiles["default"].(map[string]any)
	pinned, err := pinnedSolc(def)
	if err != nil {
		return Config{}, err
	}
	for k, v := range def {
		switch {
		case allowedKeys[k]:
			out[k] = v
		case (k == "solc" || k == "solc_version") && pinned != "":
		case !sameValue(forced[k], v):
			c.Dropped = append(c.Dropped, k)
		}
	}
	for k := range doc {
		if k != "profile" {
			c.Dropped = append(c.Dropped, "["+k+"]")
		}
	}
	for k, v := range forced {
		out[k] = v
	}
	if pinned != "" {
		c.Solc = pinned
		out["solc"] = pinned
		out["auto_detect_solc"] = false
	}
	var buf bytes.Buffer
	buf.WriteString("# Written by deployer: the project's settings that shape compilation, and the service's own.\n")
	if err := toml.NewEncoder(&buf).Encode(map[string]any{"profile": map[string]any{"default": out}}); err != nil {
		return Config{}, fmt.Errorf("encode foundry.toml: %w", err)
	}
	sort.Strings(c.Dropped)
	c.TOML = buf.Bytes()
	return c, nil
}

// pinnedSolc reads the compiler version [profile.default] pins, with solc or its
// alias solc_version.
func pinnedSolc(def map[string]any) (string, error) {
	var pinned string
	for _, k := range []string{"solc", "solc_version"} {
		v, ok := def[k]
		if !ok {
			continue
		}
		s, _ := v.(string)
		m := versionRE.FindStringSubmatch(strings.TrimSpace(s))
		if m == nil {
			return "", fmt.Errorf("%w: foundry.toml sets %s to %q, not a version; this service compiles with its own solc builds: give a version such as \"0.8.19\"", ErrRefused, k, truncate(fmt.Sprint(v), 80))
		}
		if pinned != "" && pinned != m[1] {
			return "", fmt.Errorf("%w: foundry.toml pins two compilers, solc %s and solc_version %s", ErrRefused, pinned, m[1])
		}
		pinned = m[1]
	}
	return pinned, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// sameValue says a project's setting is what the service sets anyway, so that leaving
// it out is not worth mentioning.
func sameValue(forcedValue, v any) bool {
	return forcedValue != nil && fmt.Sprint(forcedValue) == fmt.Sprint(v)
}
