package foundry

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// decodeDefault parses a sanitized configuration back and returns [profile.default],
// checking that nothing else is in it.
func decodeDefault(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var doc map[string]any
	if _, err := toml.Decode(string(b), &doc); err != nil {
		t.Fatalf("sanitized foundry.toml does not parse: %v\n%s", err, b)
	}
	if len(doc) != 1 {
		t.Errorf("top-level keys %v, want only profile", keys(doc))
	}
	profiles, ok := doc["profile"].(map[string]any)
	if !ok {
		t.Fatalf("no [profile] table:\n%s", b)
	}
	if len(profiles) != 1 {
		t.Errorf("profiles %v, want only default", keys(profiles))
	}
	def, ok := profiles["default"].(map[string]any)
	if !ok {
		t.Fatalf("no [profile.default] table:\n%s", b)
	}
	return def
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// checkForced checks the settings every job runs with.
func checkForced(t *testing.T, def map[string]any) {
	t.Helper()
	want := map[string]any{
		"offline":    true,
		"ffi":        false,
		"out":        "out",
		"cache":      true,
		"cache_path": "cache",
		"broadcast":  "broadcast",
	}
	for k, v := range want {
		if def[k] != v {
			t.Errorf("%s = %#v, want %#v", k, def[k], v)
		}
	}
	if fs, ok := def["fs_permissions"].([]any); !ok || len(fs) != 0 {
		if _, present := def["fs_permissions"]; present {
			t.Errorf("fs_permissions = %#v, want empty", def["fs_permissions"])
		}
	}
	for _, k := range []string{"solc_version", "eth_rpc_url", "sender", "rpc_endpoints", "etherscan", "allow_paths"} {
		if _, ok := def[k]; ok {
			t.Errorf("%s is in the sanitized configuration", k)
		}
	}
}

// ffi left on in foundry.toml is forced off, and said, not refused: real projects
// leave it on unused.
func TestSanitizeConfigFFIOff(t *testing.T) {
	tests := []struct {
		name    string
		toml    string
		profile string
	}{
		{"default", "[profile.default]\nffi = true\n", "[profile.default]"},
		{"ci", "[profile.default]\nsrc = \"src\"\n\n[profile.ci]\nffi = true\n", "[profile.ci]"},
		{"ci only", "[profile.ci]\noptimizer = true\nffi = true\n", "[profile.ci]"},
		{"dotted key", "profile.local.ffi = true\n", "[profile.local]"},
		{"inline table", "profile = { dev = { ffi = true } }\n", "[profile.dev]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := SanitizeConfig([]byte(tt.toml))
			if err != nil {
				t.Fatal(err)
			}
			def := decodeDefault(t, c.TOML)
			checkForced(t, def)
			if def["ffi"] != false {
				t.Errorf("ffi = %v", def["ffi"])
			}
			if len(c.Notes) != 1 || !strings.Contains(c.Notes[0], tt.profile) || !strings.Contains(c.Notes[0], "vm.ffi") {
				t.Errorf("notes %q do not say ffi is off in %s", c.Notes, tt.profile)
			}
		})
	}
}

// A compiler the project pins is honoured as a version; a path is refused.
func TestSanitizeConfigSolc(t *testing.T) {
	for in, want := range map[string]string{
		"[profile.default]\nsolc = \"0.8.19\"\n":                             "0.8.19",
		"[profile.default]\nsolc_version = \"0.8.23\"\n":                     "0.8.23",
		"[profile.default]\nsolc = \"v0.8.19\"\nsolc_version = \"0.8.19\"\n": "0.8.19",
		"[profile.default]\nsrc = \"src\"\n":                                 "",
	} {
		c, err := SanitizeConfig([]byte(in))
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		def := decodeDefault(t, c.TOML)
		if c.Solc != want || (want != "" && (def["solc"] != want || def["auto_detect_solc"] != false)) || (want == "" && def["auto_detect_solc"] != true) {
			t.Errorf("%q: Solc %q, config %v", in, c.Solc, def)
		}
		if len(c.Dropped) != 0 {
			t.Errorf("%q: dropped %q", in, c.Dropped)
		}
	}
	for _, in := range []string{
		"[profile.default]\nsolc = \"/tmp/evil-solc\"\n",
		"[profile.default]\nsolc = \"./bin/solc\"\n",
		"[profile.default]\nsolc = \"0.8.19\"\nsolc_version = \"0.8.20\"\n",
		"[profile.default]\nsolc = 8\n",
	} {
		if _, err := SanitizeConfig([]byte(in)); !errors.Is(err, ErrRefused) {
			t.Errorf("%q: %v, want refused", in, err)
		}
	}
}

func TestSanitizeConfig(t *testing.T) {
	const project = `
[profile.default]
src = "contracts"
out = "build"
libs = ["lib", "node_modules"]
solc = "0.8.20"
solc_version = "0.8.20"
ffi = false
offline = true
fs_permissions = [{ access = "read-write", path = "/" }]
optimizer = true
optimizer_runs = 200
remappings = ["@oz/=lib/openzeppelin-contracts/contracts/", "forge-std/=lib/forge-std/src/"]
via_ir = true
evm_version = "cancun"
eth_rpc_url = "https://mainnet.example/v3/KEY"
sender = "0x0000000000000000000000000000000000000001"

[profile.default.optimizer_details]
yul = true

[profile.ci]
optimizer_runs = 10000
ffi = false

[rpc_endpoints]
mainnet = "https://mainnet.example/v3/KEY"

[etherscan]
mainnet = { key = "ETHERSCAN" }
`
	c, err := SanitizeConfig([]byte(project))
	if err != nil {
		t.Fatalf("SanitizeConfig: %v", err)
	}
	wantDropped := []string{"[etherscan]", "[rpc_endpoints]", "eth_rpc_url", "fs_permissions", "out", "sender"}
	if !reflect.DeepEqual(c.Dropped, wantDropped) {
		t.Errorf("Dropped = %q, want %q", c.Dropped, wantDropped)
	}
	if !strings.HasPrefix(string(c.TOML), "#") {
		t.Errorf("no header comment:\n%s", c.TOML)
	}
	if strings.Contains(string(c.TOML), "KEY") || strings.Contains(string(c.TOML), "ETHERSCAN") {
		t.Errorf("RPC or Etherscan settings kept:\n%s", c.TOML)
	}
	def := decodeDefault(t, c.TOML)
	checkForced(t, def)
	kept := map[string]any{
		"src":            "contracts",
		"libs":           []any{"lib", "node_modules"},
		"optimizer":      true,
		"optimizer_runs": int64(200),
		"remappings":     []any{"@oz/=lib/openzeppelin-contracts/contracts/", "forge-std/=lib/forge-std/src/"},
		"via_ir":         true,
		"evm_version":    "cancun",
		"optimizer_details": map[string]any{
			"yul": true,
		},
	}
	for k, v := range kept {
		if !reflect.DeepEqual(def[k], v) {
			t.Errorf("%s = %#v, want %#v", k, def[k], v)
		}
	}
	// The forced settings, and the compiler the project pins.
	if def["solc"] != "0.8.20" || def["auto_detect_solc"] != false {
		t.Errorf("solc %v, auto_detect_solc %v", def["solc"], def["auto_detect_solc"])
	}
	if n := len(def); n != len(kept)+9 {
		t.Errorf("[profile.default] has %d keys, want %d: %v", n, len(kept)+9, keys(def))
	}
}

func TestSanitizeConfigForcedWins(t *testing.T) {
	// Settings the service forces are never taken from the project, whatever their
	// type.
	const project = `
[profile.default]
ffi = "true"
offline = false
auto_detect_solc = false
cache = false
cache_path = "/tmp/cache"
broadcast = "/tmp/broadcast"
`
	c, err := SanitizeConfig([]byte(project))
	if err != nil {
		t.Fatalf("SanitizeConfig: %v", err)
	}
	checkForced(t, decodeDefault(t, c.TOML))
	want := []string{"auto_detect_solc", "broadcast", "cache", "cache_path", "ffi", "offline"}
	if !reflect.DeepEqual(c.Dropped, want) {
		t.Errorf("Dropped = %q, want %q", c.Dropped, want)
	}
}

func TestSanitizeConfigNoProject(t *testing.T) {
	for _, in := range [][]byte{nil, {}, []byte("# nothing\n")} {
		c, err := SanitizeConfig(in)
		if err != nil {
			t.Fatalf("SanitizeConfig(%q): %v", in, err)
		}
		if len(c.Dropped) != 0 {
			t.Errorf("Dropped = %q", c.Dropped)
		}
		def := decodeDefault(t, c.TOML)
		checkForced(t, def)
		if len(def) != 8 {
			t.Errorf("[profile.default] = %v, want only the forced settings", def)
		}
	}
}

func TestSanitizeConfigSameValueNotDropped(t *testing.T) {
	c, err := SanitizeConfig([]byte("[profile.default]\nffi = false\noffline = true\nout = \"out\"\nfs_permissions = []\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Dropped) != 0 {
		t.Errorf("Dropped = %q, want nothing (all as forced)", c.Dropped)
	}
}

func TestSanitizeConfigMalformed(t *testing.T) {
	for _, in := range []string{
		"[profile.default\nsrc = \"src\"",
		"src = ",
		"[profile.default]\nsrc = \"a\"\nsrc = \"b\"\n",
		"\x00",
	} {
		c, err := SanitizeConfig([]byte(in))
		if !errors.Is(err, ErrRefused) {
			t.Errorf("SanitizeConfig(%q) = %q, %v; want ErrRefused", in, c.TOML, err)
		}
	}
}
