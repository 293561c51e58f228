package hardhat

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type files map[string]bool

func (f files) Has(name string) bool { return f[name] }
func (f files) Names() []string {
	var out []string
	for n := range f {
		out = append(out, n)
	}
	return out
}

func exampleManifests(t *testing.T) ([]byte, []byte) {
	t.Helper()
	dir := filepath.Join("..", "examples", "hardhat-counter")
	pkg, err := os.ReadFile(filepath.Join(dir, "package.json"))
	if err != nil {
		t.Fatal(err)
	}
	lock, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	return pkg, lock
}

func TestCheckDependencies(t *testing.T) {
	pkg, lock := exampleManifests(t)
	if err := CheckDependencies(files{}, pkg, lock); err != nil {
		t.Fatalf("the example's lockfile: %v", err)
	}
	withEntry := func(key, entry string) []byte {
		var doc map[string]any
		_ = json.Unmarshal(lock, &doc)
		var e map[string]any
		_ = json.Unmarshal([]byte(entry), &e)
		doc["packages"].(map[string]any)[key] = e
		b, _ := json.Marshal(doc)
		return b
	}
	for name, c := range map[string]struct {
		files     files
		pkg, lock []byte
		want      string
	}{
		"no lockfile":        {files{}, pkg, nil, "no package-lock.json"},
		"a yarn project":     {files{"yarn.lock": true}, pkg, nil, "yarn lockfile"},
		"a git dependency":   {files{}, []byte(`{"dependencies": {"x": "github:evil/x"}}`), lock, `from "github:evil/x"`},
		"a file dependency":  {files{}, []byte(`{"devDependencies": {"x": "file:../x"}}`), lock, `from "file:../x"`},
		"a URL dependency":   {files{}, []byte(`{"dependencies": {"x": "https://evil.example/x.tgz"}}`), lock, "only versions from the npm registry"},
		"resolved elsewhere": {files{}, pkg, withEntry("node_modules/evil", `{"version": "1.0.0", "resolved": "https://evil.example/evil-1.0.0.tgz", "integrity": "sha512-x"}`), "only the npm registry"},
		"no integrity":       {files{}, pkg, withEntry("node_modules/evil", `{"version": "1.0.0", "resolved": "https://registry.npmjs.org/evil/-/evil-1.0.0.tgz"}`), "no integrity hash"},
		"a linked folder":    {files{}, pkg, withEntry("node_modules/evil", `{"resolved": "../evil", "link": true}`), "links node_modules/evil"},
		"an old lockfile":    {files{}, pkg, []byte(`{"lockfileVersion": 1, "dependencies": {}}`), "lockfile version 1"},
		"not json":           {files{}, []byte(`{`), lock, "package.json does not parse"},
	} {
		err := CheckDependencies(c.files, c.pkg, c.lock)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
}

func TestResolveModule(t *testing.T) {
	one := files{"ignition/modules/Counter.ts": true, "ignition/modules/lib/helper.ts": true, "hardhat.config.ts": true}
	if m, err := ResolveModule(one, ""); err != nil || m != "ignition/modules/Counter.ts" {
		t.Errorf("the only module: %q, %v", m, err)
	}
	two := files{"ignition/modules/A.ts": true, "ignition/modules/B.js": true}
	if _, err := ResolveModule(two, ""); err == nil || !strings.Contains(err.Error(), "ignition/modules/A.ts, ignition/modules/B.js") {
		t.Errorf("two modules: %v", err)
	}
	if m, err := ResolveModule(two, "ignition/modules/B.js"); err != nil || m != "ignition/modules/B.js" {
		t.Errorf("named: %q, %v", m, err)
	}
	for module, want := range map[string]string{
		"ignition/modules/C.ts":  "has no ignition/modules/C.ts",
		"../x.ts":                "inside the project",
		"-x.ts":                  "inside the project",
		"ignition/modules/A.sol": "a .ts or .js file",
	} {
		if _, err := ResolveModule(two, module); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", module, err, want)
		}
	}
	if _, err := ResolveModule(files{}, ""); err == nil || !strings.Contains(err.Error(), "no Ignition module") {
		t.Errorf("none: %v", err)
	}
}

func TestProbeAndOutputs(t *testing.T) {
	if vs, err := ParseProbe("noise\nDEPLOYER_SOLC [\"0.8.28\",\"0.8.19\"]\n"); err != nil || strings.Join(vs, ",") != "0.8.19,0.8.28" {
		t.Errorf("ParseProbe = %v, %v", vs, err)
	}
	if _, err := ParseProbe("DEPLOYER_SOLC [\"^0.8.0\"]\n"); err == nil || !strings.Contains(err.Error(), "exact versions") {
		t.Errorf("a range: %v", err)
	}
	if _, err := ParseProbe("SyntaxError: Unexpected token\n"); err == nil || !strings.Contains(err.Error(), "did not load") {
		t.Errorf("a config that does not load: %v", err)
	}
	ignition := "[ CounterModule ] failed ⛔\n\nFutures failed during execution:\n - CounterModule#Counter: Simulating the transaction failed with error: Reverted with reason \"start too small\"\n"
	if s := FailureSummary(ignition); !strings.Contains(s, "CounterModule#Counter") || !strings.Contains(s, "start too small") {
		t.Errorf("FailureSummary = %q", s)
	}
	if s := FailureSummary("Error HHE910: Compilation failed\n"); s != "Compilation failed (HHE910)" {
		t.Errorf("FailureSummary = %q", s)
	}
	got, err := ParseDeployed([]byte(`{"M#B": "0xABCD", "M#A": "0x1234"}`))
	if err != nil || len(got) != 2 || got[0].Name != "M#A" || got[1].Address != "0xabcd" {
		t.Errorf("ParseDeployed = %+v, %v", got, err)
	}
	if cmd := strings.Join(DeployCommand("ignition/modules/M.ts", true), " "); !strings.Contains(cmd, "--network deployer") || !strings.Contains(cmd, "--parameters deployer.parameters.json") {
		t.Errorf("DeployCommand = %s", cmd)
	}
}

// The wrapper imports the project's config, never edits it, and names the gateway.
func TestWrapper(t *testing.T) {
	w := string(Wrapper("hardhat.config.ts", "/opt/compilers", "0.8.30"))
	for _, want := range []string{`import user from "./hardhat.config.ts"`, `configVariable("DEPLOYER_RPC_URL")`, `accounts: "remote"`, `"/opt/compilers"`} {
		if !strings.Contains(w, want) {
			t.Errorf("the wrapper lacks %s:\n%s", want, w)
		}
	}
}
