package networks

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
)

// env is a getenv over a map.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

const (
	forkURL   = "https://eth-mainnet.example/v2/forkSecretKey123"
	rpcURL    = "https://sepolia.example/v3/rpcSecretKey456"
	deployKey = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
)

func readRepoFile(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "network.json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseRepoFile(t *testing.T) {
	s, err := Parse(readRepoFile(t), env(map[string]string{
		"FORK_RPC_URL":         forkURL,
		"SEPOLIA_RPC_URL":      rpcURL,
		"SEPOLIA_DEPLOYER_KEY": deployKey,
	}))
	if err != nil {
		t.Fatalf("Parse(network.json): %v", err)
	}
	if got, want := s.Names(), []string{"fork", "local", "sepolia"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Names = %q, want %q", got, want)
	}
	var allNames []string
	for _, n := range s.All() {
		allNames = append(allNames, n.Name)
	}
	if !reflect.DeepEqual(allNames, s.Names()) {
		t.Errorf("All = %q, not sorted by name", allNames)
	}

	local, err := s.Get("local")
	if err != nil {
		t.Fatal(err)
	}
	if local.Type != Local || local.ChainID != 31337 || local.Port != 8545 || !local.Managed() {
		t.Errorf("local = %+v", local)
	}
	if err := local.Available(); err != nil {
		t.Errorf("local.Available() = %v", err)
	}
	if len(local.Secrets()) != 0 {
		t.Errorf("local.Secrets() = %q", local.Secrets())
	}

	fork, _ := s.Get("fork")
	if fork.Type != Fork || fork.ChainID != 1 || fork.Port != 8546 || !fork.Managed() || fork.ForkURLEnv != "FORK_RPC_URL" {
		t.Errorf("fork = %+v", fork)
	}
	if fork.ForkURL() != forkURL {
		t.Errorf("fork.ForkURL() = %q", fork.ForkURL())
	}
	if err := fork.Available(); err != nil {
		t.Errorf("fork.Available() = %v", err)
	}
	// The whole URL, and the part of it that may be the key on its own.
	if got := fork.Secrets(); !reflect.DeepEqual(got, []string{forkURL, "forkSecretKey123"}) {
		t.Errorf("fork.Secrets() = %q", got)
	}

	sep, _ := s.Get("sepolia")
	if sep.Type != Remote || sep.ChainID != 11155111 || sep.Managed() || sep.RPCURL() != rpcURL {
		t.Errorf("sepolia = %+v", sep)
	}
	if err := sep.Available(); err != nil {
		t.Errorf("sepolia.Available() = %v", err)
	}
	if got := sep.Secrets(); !reflect.DeepEqual(got, []string{rpcURL, deployKey, strings.TrimPrefix(deployKey, "0x"), "rpcSecretKey456"}) {
		t.Errorf("sepolia.Secrets() = %q", got)
	}

	all := s.Secrets()
	sort.Strings(all)
	want := []string{deployKey, strings.TrimPrefix(deployKey, "0x"), rpcURL, "rpcSecretKey456", forkURL, "forkSecretKey123"}
	sort.Strings(want)
	if !reflect.DeepEqual(all, want) {
		t.Errorf("Set.Secrets() = %q, want %q", all, want)
	}

	if _, err := s.Get("mainnet"); !errors.Is(err, ErrUnknown) || !strings.Contains(err.Error(), "mainnet") {
		t.Errorf("Get(mainnet) err = %v, want ErrUnknown naming it", err)
	}
}

func TestParseRepoFileUnset(t *testing.T) {
	s, err := Parse(readRepoFile(t), env(nil))
	if err != nil {
		t.Fatalf("Parse with nothing set: %v", err)
	}
	if got := s.Secrets(); len(got) != 0 {
		t.Errorf("Secrets() = %q with nothing set", got)
	}
	tests := []struct {
		name, variable string
	}{
		{"fork", "FORK_RPC_URL"},
		{"sepolia", "SEPOLIA_RPC_URL"},
	}
	for _, tt := range tests {
		n, err := s.Get(tt.name)
		if err != nil {
			t.Fatal(err)
		}
		err = n.Available()
		if err == nil {
			t.Errorf("%s.Available() = nil with %s unset", tt.name, tt.variable)
			continue
		}
		if !strings.Contains(err.Error(), tt.variable) || !strings.Contains(err.Error(), `"`+tt.name+`"`) {
			t.Errorf("%s.Available() = %q: does not name the network and %s", tt.name, err, tt.variable)
		}
	}
}

// TestAvailableRemoteNeedsKey: a remote network cannot deploy without its key; the
// explanation names the variable and never shows a secret.
func TestAvailableRemoteNeedsKey(t *testing.T) {
	s, err := Parse(readRepoFile(t), env(map[string]string{"SEPOLIA_RPC_URL": rpcURL}))
	if err != nil {
		t.Fatal(err)
	}
	n, _ := s.Get("sepolia")
	err = n.Available()
	if err == nil {
		t.Fatalf("Available() = nil with SEPOLIA_DEPLOYER_KEY unset")
	}
	if !strings.Contains(err.Error(), "SEPOLIA_DEPLOYER_KEY") {
		t.Errorf("Available() = %q: does not name SEPOLIA_DEPLOYER_KEY", err)
	}
	if strings.Contains(err.Error(), rpcURL) || strings.Contains(err.Error(), "rpcSecretKey456") {
		t.Errorf("Available() = %q shows the RPC URL", err)
	}
}

func TestAvailableNeverShowsSecrets(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
	}{
		{"fork unset, others set", map[string]string{"SEPOLIA_RPC_URL": rpcURL, "SEPOLIA_DEPLOYER_KEY": deployKey}},
		{"rpc unset, key set", map[string]string{"FORK_RPC_URL": forkURL, "SEPOLIA_DEPLOYER_KEY": deployKey}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse(readRepoFile(t), env(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range s.All() {
				err := n.Available()
				if err == nil {
					continue
				}
				for _, secret := range []string{forkURL, rpcURL, deployKey, deployKey[2:]} {
					if strings.Contains(err.Error(), secret) {
						t.Errorf("%s.Available() = %q shows a secret", n.Name, err)
					}
				}
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		json string
		env  map[string]string
		msg  []string // every part must be in the error
	}{
		{
			name: "bad type",
			json: `{"networks":[{"name":"x","type":"mainnet","chain_id":1}]}`,
			msg:  []string{`network "x"`, `type "mainnet"`},
		},
		{
			name: "missing type",
			json: `{"networks":[{"name":"x","chain_id":1}]}`,
			msg:  []string{`network "x"`, "type"},
		},
		{
			name: "missing chain_id",
			json: `{"networks":[{"name":"x","type":"local"}]}`,
			msg:  []string{`network "x"`, "chain_id"},
		},
		{
			name: "zero chain_id",
			json: `{"networks":[{"name":"ok","type":"local","chain_id":1},{"name":"x","type":"local","chain_id":0}]}`,
			msg:  []string{`network "x"`, "chain_id"},
		},
		{
			name: "duplicate names",
			json: `{"networks":[{"name":"x","type":"local","chain_id":1,"port":8545},{"name":"x","type":"local","chain_id":2,"port":8546}]}`,
			msg:  []string{`network "x"`, "twice"},
		},
		{
			name: "duplicate ports",
			json: `{"networks":[{"name":"a","type":"local","chain_id":1,"port":8545},{"name":"x","type":"fork","chain_id":2,"port":8545,"fork_url_env":"F"}]}`,
			msg:  []string{`network "x"`, "port 8545", `"a"`},
		},
		{
			name: "fork without fork_url_env",
			json: `{"networks":[{"name":"x","type":"fork","chain_id":1}]}`,
			msg:  []string{`network "x"`, "fork_url_env"},
		},
		{
			name: "remote without deployer_key_env",
			json: `{"networks":[{"name":"x","type":"remote","chain_id":1,"rpc_url_env":"RPC"}]}`,
			msg:  []string{`network "x"`, "deployer_key_env"},
		},
		{
			name: "remote without rpc_url_env",
			json: `{"networks":[{"name":"x","type":"remote","chain_id":1,"deployer_key_env":"KEY"}]}`,
			msg:  []string{`network "x"`, "rpc_url_env"},
		},
		{
			name: "local with rpc_url_env",
			json: `{"networks":[{"name":"x","type":"local","chain_id":1,"rpc_url_env":"RPC"}]}`,
			msg:  []string{`network "x"`, "local"},
		},
		{
			name: "unknown field in an entry",
			json: `{"networks":[{"name":"ok","type":"local","chain_id":1},{"name":"x","type":"local","chain_id":1,"rpc_url":"http://x"}]}`,
			msg:  []string{`network "x"`, "rpc_url"},
		},
		{
			name: "bad name",
			json: `{"networks":[{"name":"Bad_Name","type":"local","chain_id":1}]}`,
			msg:  []string{`network "Bad_Name"`, "name"},
		},
		{
			name: "no name",
			json: `{"networks":[{"name":"ok","type":"local","chain_id":1},{"type":"local","chain_id":1}]}`,
			msg:  []string{"entry 1", "name"},
		},
		{
			name: "port out of range",
			json: `{"networks":[{"name":"x","type":"local","chain_id":1,"port":70000}]}`,
			msg:  []string{`network "x"`, "70000"},
		},
		{
			name: "bad variable name",
			json: `{"networks":[{"name":"x","type":"fork","chain_id":1,"fork_url_env":"fork-url"}]}`,
			msg:  []string{`network "x"`, `"fork-url"`},
		},
		{
			name: "fork URL not a URL",
			json: `{"networks":[{"name":"x","type":"fork","chain_id":1,"fork_url_env":"F"}]}`,
			env:  map[string]string{"F": "not a url secretvalue"},
			msg:  []string{`network "x"`, "F:"},
		},
		{
			name: "RPC URL with another scheme",
			json: `{"networks":[{"name":"x","type":"remote","chain_id":1,"rpc_url_env":"R","deployer_key_env":"K"}]}`,
			env:  map[string]string{"R": "file:///etc/secretvalue"},
			msg:  []string{`network "x"`, "R:"},
		},
		{
			name: "no networks",
			json: `{"networks":[]}`,
			msg:  []string{"no networks"},
		},
		{
			name: "unknown top-level field",
			json: `{"networks":[{"name":"x","type":"local","chain_id":1}],"extra":1}`,
			msg:  []string{"extra"},
		},
		{
			name: "not JSON",
			json: `networks: []`,
			msg:  []string{"not a network file"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse([]byte(tt.json), env(tt.env))
			if err == nil {
				t.Fatalf("Parse = %v, want an error", s.Names())
			}
			for _, m := range tt.msg {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("err %q does not say %s", err, m)
				}
			}
			if strings.Contains(err.Error(), "secretvalue") {
				t.Errorf("err %q shows the variable's value", err)
			}
		})
	}
}

func TestParsePorts(t *testing.T) {
	// Port 0 is picked by the engine, and a remote network publishes nothing: neither
	// conflicts.
	const file = `{"networks":[
	 {"name":"a","type":"local","chain_id":1,"port":0},
	 {"name":"b","type":"local","chain_id":2,"port":0},
	 {"name":"c","type":"local","chain_id":3,"port":9000},
	 {"name":"d","type":"remote","chain_id":4,"port":9000,"rpc_url_env":"R","deployer_key_env":"K"}
	]}`
	s, err := Parse([]byte(file), env(nil))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got := s.Names(); !slices.Equal(got, []string{"a", "b", "c", "d"}) {
		t.Errorf("Names = %q", got)
	}
}

func TestLoad(t *testing.T) {
	t.Setenv("FORK_RPC_URL", forkURL)
	s, err := Load(filepath.Join("..", "network.json"))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	fork, _ := s.Get("fork")
	if fork.ForkURL() != forkURL {
		t.Errorf("ForkURL = %q", fork.ForkURL())
	}
	p := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(p, []byte(`{"networks":[{"name":"x","type":"nope","chain_id":1}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), `network "x"`) {
		t.Errorf("Load(bad) err = %v, want it to name the file and the entry", err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Errorf("Load(missing) = nil error")
	}
}

func TestMaskURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://eth-sepolia.g.alchemy.com/v2/KEY123456789": "https://eth-sepolia.g.alchemy.com/***",
		"https://rpc.example/?apikey=KEY123456789&chain=1":  "https://rpc.example?apikey=***&chain=***",
		"http://user:pass@127.0.0.1:8545/":                  "http://***@127.0.0.1:8545",
		"http://127.0.0.1:8545":                             "http://127.0.0.1:8545",
		"not a url":                                         "***",
	} {
		if got := MaskURL(in); got != want {
			t.Errorf("MaskURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRemoteSettings(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte("0x"+strings.Repeat("ab", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Parse([]byte(`{"networks": [{"name": "main", "type": "remote", "chain_id": 1, "rpc_url_env": "URL",
		"deployer_key_file": "`+keyFile+`", "clients": ["alice"], "max_value_wei": "1000", "max_spend_wei": "5000"}]}`),
		func(string) string { return "https://rpc.example/v2/abcdefghij" })
	if err != nil {
		t.Fatal(err)
	}
	n, _ := s.Get("main")
	if n.DeployerKey() != "0x"+strings.Repeat("ab", 32) || n.Confirmations != 1 || n.MaxValue().Int64() != 1000 || n.MaxSpend().Int64() != 5000 {
		t.Errorf("main = %+v", n)
	}
	if !n.Allows("alice") || n.Allows("bob") || !n.Allows("admin") || !n.Allows("") {
		t.Error("clients of a remote network")
	}
	for _, bad := range []string{
		`{"name": "x", "type": "remote", "chain_id": 1, "rpc_url_env": "URL"}`,
		`{"name": "x", "type": "remote", "chain_id": 1, "rpc_url_env": "URL", "deployer_key_env": "K", "max_spend_wei": "lots"}`,
		`{"name": "x", "type": "local", "chain_id": 1, "clients": ["alice"]}`,
	} {
		if _, err := Parse([]byte(`{"networks": [`+bad+`]}`), func(string) string { return "" }); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
	// A malformed key is refused without being repeated.
	_, err = Parse([]byte(`{"networks": [{"name": "x", "type": "remote", "chain_id": 1, "rpc_url_env": "URL", "deployer_key_env": "K"}]}`),
		func(v string) string {
			if v == "K" {
				return "0xSECRETbutTYPO"
			}
			return "https://rpc.example"
		})
	if err == nil || strings.Contains(err.Error(), "SECRET") {
		t.Errorf("bad key: %v", err)
	}
}
