// Package foundry knows Foundry projects: which configuration forge may run with,
// what to deploy (a script or one contract), the commands, and how to read what forge
// printed and wrote. It runs nothing itself.
package foundry

import (
	"bytes"
	"errors"
	"fmt"
	"sort"

	"github.com/BurntSushi/toml"
)

// ErrRefused marks a project this service will not run, with the reason.
var ErrRefused = errors.New("project refused")

// SolcPath is the compiler in the runner image; a project never brings its own.
const SolcPath = "/usr/local/bin/solc"

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

// forced are the settings every job runs with, whatever the project says.
var forced = map[string]any{
	"solc":             SolcPath,
	"auto_detect_solc": false,
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
}

// SanitizeConfig reads a project's foundry.toml (nil when it has none) and returns
// the configuration the job runs with. A project that enables ffi in any profile is
// refused: it asks to run commands on the machine, and it would not work without.
func SanitizeConfig(projectTOML []byte) (Config, error) {
	var doc map[string]any
	if len(projectTOML) > 0 {
		if _, err := toml.Decode(string(projectTOML), &doc); err != nil {
			return Config{}, fmt.Errorf("%w: foundry.toml does not parse: %v", ErrRefused, err)
		}
	}
	profiles, _ := doc["profile"].(map[string]any)
	names := make([]string, 0, len(profiles))
	for name := range profiles {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		p, _ := profiles[name].(map[string]any)
		if ffi, _ := p["ffi"].(bool); ffi {
			return Config{}, fmt.Errorf("%w: foundry.toml enables ffi in [profile.%s]; ffi runs commands on the deploying machine and is not allowed", ErrRefused, name)
		}
	}
	out := make(map[string]any)
	var dropped []string
	if def, ok := profiles["default"].(map[string]any); ok {
		for k, v := range def {
			if allowedKeys[k] {
				out[k] = v
			} else if !sameValue(forced[k], v) {
				dropped = append(dropped, k)
			}
		}
	}
	for k := range doc {
		if k != "profile" {
			dropped = append(dropped, "["+k+"]")
		}
	}
	for k, v := range forced {
		out[k] = v
	}
	var buf bytes.Buffer
	buf.WriteString("# Written by deployer: the project's settings that shape compilation, and the service's own.\n")
	if err := toml.NewEncoder(&buf).Encode(map[string]any{"profile": map[string]any{"default": out}}); err != nil {
		return Config{}, fmt.Errorf("encode foundry.toml: %w", err)
	}
	sort.Strings(dropped)
	return Config{TOML: buf.Bytes(), Dropped: dropped}, nil
}

// sameValue says a project's setting is what the service sets anyway, so that leaving
// it out is not worth mentioning.
func sameValue(forcedValue, v any) bool {
	return forcedValue != nil && fmt.Sprint(forcedValue) == fmt.Sprint(v)
}
