package networks

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse feeds network.json loader arbitrary files, with every variable they name
// holding a secret: whatever the file, Parse returns (no panic, no hang on a key file
// naming a device), its errors never repeat a secret, and what it accepts is valid.
func FuzzParse(f *testing.F) {
	repo, err := os.ReadFile(filepath.Join("..", "network.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(repo)
	f.Add([]byte(`{"networks":[{"name":"r","type":"remote","chain_id":5,"rpc_url_env":"RPC","deployer_key_file":"/dev/zero"}]}`))
	f.Add([]byte(`{"networks":[{"name":"r","type":"remote","chain_id":5,"rpc_url_env":"RPC","deployer_key_env":"BADKEY","max_spend_wei":"-1"}]}`))
	f.Add([]byte(`{"networks":[{"name":"f","type":"fork","chain_id":1,"fork_url_env":"BADURL","port":8545},{"name":"f","type":"local","chain_id":1}]}`))
	secrets := map[string]string{
		"RPC":    "https://user:passwordSecret1@rpc.example/v3/pathSecretKey789?key=querySecret42",
		"BADURL": "ftp://x:urlSecretPassword@host/zzzSecretPath",
		"BADKEY": "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b7869XX",
	}
	getenv := func(name string) string {
		if v, ok := secrets[name]; ok {
			return v
		}
		return secrets["RPC"]
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		set, err := Parse(b, getenv)
		if err != nil {
			for _, v := range []string{"passwordSecret1", "pathSecretKey789", "querySecret42", "urlSecretPassword", "zzzSecretPath", "6b7869XX"} {
				if strings.Contains(err.Error(), v) {
					t.Fatalf("the error repeats a secret: %v", err)
				}
			}
			return
		}
		for _, n := range set.All() {
			if err := validate(n); err != nil {
				t.Fatalf("accepted an invalid network %q: %v", n.Name, err)
			}
			if got, err := set.Get(n.Name); err != nil || got.Name != n.Name {
				t.Fatalf("Get(%q) = %v, %v", n.Name, got.Name, err)
			}
			if m := MaskURL(n.RPCURL()); strings.Contains(m, "Secret") {
				t.Fatalf("MaskURL shows a secret: %s", m)
			}
		}
	})
}
