package foundry

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// What forge compiles counts, followed through imports: relative, remapped, from a
// library folder; tests, unused dependencies and commented-out pragmas do not.
func TestCompilerNeeds(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"src/A.sol":                              "// pragma solidity 0.4.0;\npragma solidity 0.8.19;\nimport {B} from \"./B.sol\";\nimport \"@oz/token/T.sol\";\n",
		"src/B.sol":                              "/* pragma solidity 0.5.0; */ pragma solidity ^0.8.0;\n",
		"script/D.sol":                           "pragma solidity >=0.8.0 <0.9.0;\nimport \"forge-std/Script.sol\";\nimport \"../test/mocks/M.sol\";\n",
		"test/mocks/M.sol":                       "pragma solidity ^0.8.20;\n",
		"test/A.t.sol":                           "pragma solidity =0.6.0;\n",
		"node_modules/@openzeppelin/token/T.sol": "pragma solidity ^0.8.20;\n",
		"node_modules/@openzeppelin/unused/U.sol": "pragma solidity =0.5.1;\n",
		"lib/forge-std/src/Script.sol":            "pragma solidity >=0.6.2 <0.9.0;\n",
	})
	conf := []byte("[profile.default]\nremappings = [\"@oz/=node_modules/@openzeppelin/\"]\n")
	needs, err := CompilerNeeds(dir, conf)
	if err != nil {
		t.Fatal(err)
	}
	want := []Need{
		{"lib/forge-std/src/Script.sol", ">=0.6.2 <0.9.0"},
		{"node_modules/@openzeppelin/token/T.sol", "^0.8.20"},
		{"script/D.sol", ">=0.8.0 <0.9.0"},
		{"src/A.sol", "0.8.19"},
		{"src/B.sol", "^0.8.0"},
		{"test/mocks/M.sol", "^0.8.20"},
	}
	if !reflect.DeepEqual(needs, want) {
		t.Errorf("needs\n%v\nwant\n%v", needs, want)
	}
}

var npmVersions = []string{"0.4.26", "0.5.17", "0.6.12", "0.7.6", "0.8.19", "0.8.20", "0.8.24", "0.8.30", "0.8.33", "0.9.0-nightly"}

func TestResolveCompilers(t *testing.T) {
	defaults := []string{"0.8.30", "0.7.6", "0.6.12", "0.5.17"}
	for _, tt := range []struct {
		name   string
		needs  []Need
		pinned string
		want   []string
		err    string
	}{
		{"exact and range", []Need{{"a", "0.8.19"}, {"b", "^0.8.20"}}, "", []string{"0.8.19", "0.8.30"}, ""},
		{"two exact pins", []Need{{"a", "=0.8.19"}, {"b", "0.8.24"}}, "", []string{"0.8.19", "0.8.24"}, ""},
		{"older lines", []Need{{"a", "^0.7.0"}, {"b", ">=0.6.0 <0.7.0"}}, "", []string{"0.6.12", "0.7.6"}, ""},
		{"newer than the defaults", []Need{{"a", ">=0.8.31"}}, "", []string{"0.8.33"}, ""},
		{"glued operators", []Need{{"a", ">=0.8.0<0.8.25"}}, "", []string{"0.8.24"}, ""},
		{"no pragma", nil, "", []string{"0.8.30"}, ""},
		{"pinned in foundry.toml", []Need{{"a", "^0.8.0"}}, "0.8.20", []string{"0.8.20"}, ""},
		{"missing version", []Need{{"src/A.sol", "0.8.99"}}, "", nil, "src/A.sol asks for solc 0.8.99, which does not exist; the newest of each line: 0.8.33, 0.7.6, 0.6.12, 0.5.17"},
		{"too old", []Need{{"src/Old.sol", "^0.4.24"}}, "", nil, "the oldest this service compiles with is 0.5.0"},
		{"nonsense", []Need{{"src/X.sol", "banana"}}, "", nil, "not a version constraint"},
	} {
		got, err := ResolveCompilers(tt.needs, tt.pinned, defaults, npmVersions)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: %v, want an error saying %q", tt.name, err, tt.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: %v, %v; want %v", tt.name, got, err, tt.want)
		}
	}
}

func TestEmptyDependencies(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		".gitmodules":               "[submodule \"lib/forge-std\"]\n\tpath = lib/forge-std\n\turl = https://example.com/forge-std\n[submodule \"x\"]\n\tpath = lib/solmate\n",
		"lib/solmate/src/ERC20.sol": "",
		"src/A.sol":                 "",
	})
	if err := os.MkdirAll(filepath.Join(dir, "lib", "openzeppelin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got := EmptyDependencies(dir); !reflect.DeepEqual(got, []string{"lib/forge-std", "lib/openzeppelin"}) {
		t.Errorf("EmptyDependencies = %q", got)
	}
}
