// Package networks loads network.json: the chains deployments go to. A local network
// is an anvil the workers run; a fork is an anvil forking an upstream chain; a remote
// network is someone else's chain, reached over its RPC.
//
// Secrets (RPC URLs with keys in them, deployer keys) are not written in the file:
// entries name environment variables, read when the file is loaded.
package networks

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"
	"syscall"
)

// Types of network.
const (
	Local  = "local"
	Fork   = "fork"
	Remote = "remote"
)

// Network is one entry of network.json.
type Network struct {
	Name    string `json:"name"`
	Type    string `json:"type"`
	ChainID uint64 `json:"chain_id"`
	// Port is where a local or fork chain's RPC is published on the worker's host
	// (127.0.0.1). 0 lets the engine pick one.
	Port int `json:"port"`
	// ForkURLEnv names the variable holding the upstream RPC of a fork.
	ForkURLEnv string `json:"fork_url_env,omitempty"`
	// ForkBlock pins the fork to a block; 0 forks the latest.
	ForkBlock uint64 `json:"fork_block_number,omitempty"`
	// RPCURLEnv names the variable holding a remote network's RPC.
	RPCURLEnv string `json:"rpc_url_env,omitempty"`
	// DeployerKeyEnv names the variable holding a remote network's deployer key (hex),
	// DeployerKeyFile a file holding it; one of the two.
	DeployerKeyEnv  string `json:"deployer_key_env,omitempty"`
	DeployerKeyFile string `json:"deployer_key_file,omitempty"`
	// Confirmations is how many blocks a remote network's transaction waits for
	// before its contract is reported (default 1); managed chains mine per transaction.
	Confirmations uint64 `json:"confirmations,omitempty"`
	// Clients may deploy to a remote network, by their token's name; the admin token
	// always may. Without tokens configured at all, everyone may.
	Clients []string `json:"clients,omitempty"`
	// MaxValueWei caps one transaction's value, MaxSpendWei what one job spends in
	// all, gas included (decimal wei; empty: no cap).
	MaxValueWei string `json:"max_value_wei,omitempty"`
	MaxSpendWei string `json:"max_spend_wei,omitempty"`

	// Read from the environment at load; never serialized.
	forkURL     string
	rpcURL      string
	deployerKey string
	maxValue    *big.Int
	maxSpend    *big.Int
}

// Managed says the workers run this network's chain.
func (n Network) Managed() bool { return n.Type == Local || n.Type == Fork }

// ForkURL is the upstream RPC of a fork. Secret.
func (n Network) ForkURL() string { return n.forkURL }

// RPCURL is a remote network's RPC. Secret.
func (n Network) RPCURL() string { return n.rpcURL }

// DeployerKey is a remote network's deployer key, hex. Secret.
func (n Network) DeployerKey() string { return n.deployerKey }

// MaxValue and MaxSpend are a remote network's caps, nil when it has none.
func (n Network) MaxValue() *big.Int { return n.maxValue }

// MaxSpend is what one job may spend on a remote network, gas included.
func (n Network) MaxSpend() *big.Int { return n.maxSpend }

// Allows says whether a client may deploy to the network: anyone to a managed chain;
// to a remote one, the admin, the clients it lists, and everyone when no tokens name
// clients at all (client "").
func (n Network) Allows(client string) bool {
	if n.Type != Remote || client == "" || client == AdminClient {
		return true
	}
	for _, c := range n.Clients {
		if c == client {
			return true
		}
	}
	return false
}

// AdminClient is the name of the admin token's holder.
const AdminClient = "admin"

// MaskURL shows an RPC URL without what may hold a key: its user, path and query
// values ("https://eth.example/v2/KEY?apikey=KEY" is "https://eth.example/***?apikey=***").
func MaskURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "***"
	}
	masked := u.Scheme + "://"
	if u.User != nil {
		masked += "***@"
	}
	masked += u.Host
	if u.Path != "" && u.Path != "/" {
		masked += "/***"
	}
	if u.RawQuery != "" {
		q := u.Query()
		keys := make([]string, 0, len(q))
		for k := range q {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = url.QueryEscape(k) + "=***"
		}
		masked += "?" + strings.Join(parts, "&")
	}
	return masked
}

// urlSecrets are the parts of a URL that may be a key on their own: its password,
// long path segments and query values.
func urlSecrets(raw string) []string {
	u, err := url.Parse(raw)
	if err != nil {
		return nil
	}
	var out []string
	if p, ok := u.User.Password(); ok && p != "" {
		out = append(out, p)
	}
	for _, seg := range strings.Split(u.Path, "/") {
		if len(seg) >= 8 {
			out = append(out, seg)
		}
	}
	for _, vs := range u.Query() {
		for _, v := range vs {
			if len(v) >= 8 {
				out = append(out, v)
			}
		}
	}
	return out
}

// Available says whether the network can take deployments with this environment, and
// if not, why (the variable that is not set).
func (n Network) Available() error {
	switch {
	case n.Type == Fork && n.forkURL == "":
		return fmt.Errorf("network %q is not configured: %s is not set", n.Name, n.ForkURLEnv)
	case n.Type == Remote && n.rpcURL == "":
		return fmt.Errorf("network %q is not configured: %s is not set", n.Name, n.RPCURLEnv)
	case n.Type == Remote && n.deployerKey == "" && n.DeployerKeyFile != "":
		return fmt.Errorf("network %q is not configured: its deployer key file cannot be read", n.Name)
	case n.Type == Remote && n.deployerKey == "":
		return fmt.Errorf("network %q is not configured: %s is not set", n.Name, n.DeployerKeyEnv)
	}
	return nil
}

// Secrets are the values of this network that must never be shown.
func (n Network) Secrets() []string {
	var out []string
	for _, s := range []string{n.forkURL, n.rpcURL, n.deployerKey, strings.TrimPrefix(n.deployerKey, "0x")} {
		if s != "" {
			out = append(out, s)
		}
	}
	out = append(out, urlSecrets(n.forkURL)...)
	out = append(out, urlSecrets(n.rpcURL)...)
	return out
}

// Set is the loaded file.
type Set struct {
	byName map[string]Network
}

// ErrUnknown says no network has the name.
var ErrUnknown = errors.New("unknown network")

// Get returns the named network.
func (s Set) Get(name string) (Network, error) {
	n, ok := s.byName[name]
	if !ok {
		return Network{}, fmt.Errorf("%w %q (known: %v)", ErrUnknown, name, s.Names())
	}
	return n, nil
}

// Names lists the networks, sorted.
func (s Set) Names() []string {
	out := make([]string, 0, len(s.byName))
	for name := range s.byName {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// All lists the networks, sorted by name.
func (s Set) All() []Network {
	out := make([]Network, 0, len(s.byName))
	for _, name := range s.Names() {
		out = append(out, s.byName[name])
	}
	return out
}

// Secrets are every secret value of every network, for redaction.
func (s Set) Secrets() []string {
	var out []string
	for _, n := range s.byName {
		out = append(out, n.Secrets()...)
	}
	return out
}

// Load reads and validates a network file, failing on the first bad entry by name.
func Load(path string) (Set, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Set{}, fmt.Errorf("networks: %w", err)
	}
	s, err := Parse(b, os.Getenv)
	if err != nil {
		return Set{}, fmt.Errorf("networks: %s: %w", path, err)
	}
	return s, nil
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)
var envRE = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`)
var keyRE = regexp.MustCompile(`^(0x)?[0-9a-fA-F]{64}$`)

// Parse reads a network file's contents; getenv supplies the referenced variables.
func Parse(b []byte, getenv func(string) string) (Set, error) {
	var file struct {
		Networks []json.RawMessage `json:"networks"`
	}
	if err := strictDecode(b, &file); err != nil {
		return Set{}, fmt.Errorf("not a network file: %w", err)
	}
	if len(file.Networks) == 0 {
		return Set{}, errors.New("no networks")
	}
	set := Set{byName: make(map[string]Network)}
	ports := make(map[int]string)
	for i, raw := range file.Networks {
		label := fmt.Sprintf("entry %d", i)
		var n Network
		if err := strictDecode(raw, &n); err != nil {
			// Name the entry as well as the decoder can tell it.
			var named struct {
				Name string `json:"name"`
			}
			if json.Unmarshal(raw, &named) == nil && named.Name != "" {
				label = fmt.Sprintf("network %q", named.Name)
			}
			return Set{}, fmt.Errorf("%s: %w", label, err)
		}
		if n.Name != "" {
			label = fmt.Sprintf("network %q", n.Name)
		}
		if err := validate(n); err != nil {
			return Set{}, fmt.Errorf("%s: %w", label, err)
		}
		if _, dup := set.byName[n.Name]; dup {
			return Set{}, fmt.Errorf("%s: defined twice", label)
		}
		if n.Managed() && n.Port != 0 {
			if other, dup := ports[n.Port]; dup {
				return Set{}, fmt.Errorf("%s: port %d is also network %q's", label, n.Port, other)
			}
			ports[n.Port] = n.Name
		}
		if n.ForkURLEnv != "" {
			n.forkURL = getenv(n.ForkURLEnv)
			if n.forkURL != "" {
				if err := checkURL(n.forkURL); err != nil {
					return Set{}, fmt.Errorf("%s: %s: %w", label, n.ForkURLEnv, err)
				}
			}
		}
		if n.RPCURLEnv != "" {
			n.rpcURL = getenv(n.RPCURLEnv)
			if n.rpcURL != "" {
				if err := checkURL(n.rpcURL); err != nil {
					return Set{}, fmt.Errorf("%s: %s: %w", label, n.RPCURLEnv, err)
				}
			}
		}
		if n.DeployerKeyEnv != "" {
			n.deployerKey = strings.TrimSpace(getenv(n.DeployerKeyEnv))
		}
		if n.DeployerKeyFile != "" {
			// Unreadable until deployed to: Available says so then.
			if b, err := readKeyFile(n.DeployerKeyFile); err == nil {
				n.deployerKey = strings.TrimSpace(string(b))
			}
		}
		if n.deployerKey != "" && !keyRE.MatchString(n.deployerKey) {
			// The value is not repeated: it may be a key with a typo.
			return Set{}, fmt.Errorf("%s: the deployer key is not 64 hex digits", label)
		}
		for _, c := range []struct {
			name string
			v    string
			dst  **big.Int
		}{{"max_value_wei", n.MaxValueWei, &n.maxValue}, {"max_spend_wei", n.MaxSpendWei, &n.maxSpend}} {
			if c.v == "" {
				continue
			}
			v, ok := new(big.Int).SetString(c.v, 10)
			if !ok || v.Sign() < 0 {
				return Set{}, fmt.Errorf("%s: %s %q is not a number of wei", label, c.name, c.v)
			}
			*c.dst = v
		}
		if n.Type == Remote && n.Confirmations == 0 {
			n.Confirmations = 1
		}
		set.byName[n.Name] = n
	}
	return set, nil
}

// maxKeyFile bounds a key file: a key is 66 characters, with room for
// whitespace. A path naming a device or a pipe by mistake must not hang or
// fill the process.
const maxKeyFile = 4 << 10

// readKeyFile reads a deployer key file: a regular file, at most maxKeyFile bytes.
func readKeyFile(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	return io.ReadAll(io.LimitReader(f, maxKeyFile))
}

func strictDecode(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

func validate(n Network) error {
	if !nameRE.MatchString(n.Name) {
		return errors.New("name: use 1-32 lowercase letters, digits and dashes")
	}
	if n.ChainID == 0 {
		return errors.New("chain_id is missing")
	}
	if n.Port < 0 || n.Port > 65535 {
		return fmt.Errorf("port %d is out of range", n.Port)
	}
	for _, env := range []string{n.ForkURLEnv, n.RPCURLEnv, n.DeployerKeyEnv} {
		if env != "" && !envRE.MatchString(env) {
			return fmt.Errorf("%q is not an environment variable name", env)
		}
	}
	if n.Type != Remote && (n.DeployerKeyEnv != "" || n.DeployerKeyFile != "" || len(n.Clients) > 0 ||
		n.MaxValueWei != "" || n.MaxSpendWei != "" || n.Confirmations != 0) {
		return errors.New("deployer keys, clients, caps and confirmations are a remote network's: managed chains sign with the worker's keys")
	}
	switch n.Type {
	case Local:
		if n.ForkURLEnv != "" || n.RPCURLEnv != "" {
			return errors.New("a local network takes no fork_url_env or rpc_url_env")
		}
	case Fork:
		if n.ForkURLEnv == "" {
			return errors.New("a fork needs fork_url_env")
		}
	case Remote:
		if n.RPCURLEnv == "" {
			return errors.New("a remote network needs rpc_url_env")
		}
		if (n.DeployerKeyEnv == "") == (n.DeployerKeyFile == "") {
			return errors.New("a remote network needs one of deployer_key_env and deployer_key_file")
		}
	default:
		return fmt.Errorf("type %q: use local, fork or remote", n.Type)
	}
	return nil
}

// checkURL validates an RPC URL without repeating it (it may hold a key).
func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "ws" && u.Scheme != "wss") {
		return errors.New("not an http(s) or ws(s) URL")
	}
	return nil
}
