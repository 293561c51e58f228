package hardhat

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// The job never edits the project's config: it runs Hardhat with a wrapper beside it,
// which imports the project's and changes two things. Every compiler the project
// names gets a path into the compiler store (solc-js's soljson.js, which Hardhat runs
// itself: no download is attempted when a path is set), and a network "deployer"
// points at the job's gateway, whose eth_accounts is the job's sender. A probe, run
// first, says which compiler versions the config names: evaluating the config is the
// only way to know, and it is the project's code, so it runs in the job's container.

// Names of the files the job adds beside the project's config.
const (
	WrapperConfig = "deployer.hardhat.config.ts"
	ProbeConfig   = "deployer.probe.config.ts"
	ParamsFile    = "deployer.parameters.json"
	// ProbeResult is where the probe writes the versions it found.
	ProbeResult = "deployer.probe.json"
	// NetworkName is the wrapper's network, the gateway.
	NetworkName = "deployer"
	// RPCVariable holds the gateway's URL for configVariable.
	RPCVariable = "DEPLOYER_RPC_URL"
)

// compilersJS walks a Hardhat 3 solidity config (a version, {version, settings},
// {compilers, overrides} or {profiles}) and gives each compiler its path; it records
// the versions it saw.
const compilersJS = `
const storeDir = %q;
const fallback = %q;
const seen = new Set();
function compiler(c) {
  const v = typeof c === "string" ? c : c && c.version;
  if (typeof v !== "string") return c;
  seen.add(v);
  const base = typeof c === "string" ? { version: c } : c;
  return { ...base, path: storeDir + "/" + v + "/soljson.js" };
}
function profile(p) {
  if (typeof p === "string") return compiler(p);
  if (!p || typeof p !== "object") return p;
  let out = { ...p };
  if (typeof p.version === "string") out = compiler(p);
  if (Array.isArray(p.compilers)) out.compilers = p.compilers.map(compiler);
  if (p.overrides && typeof p.overrides === "object") {
    out.overrides = Object.fromEntries(Object.entries(p.overrides).map(([k, v]) => [k, compiler(v)]));
  }
  return out;
}
function solidity(s) {
  if (s === undefined || s === null) return compiler(fallback);
  if (typeof s === "string" || s.version || s.compilers) return profile(s);
  if (s.profiles && typeof s.profiles === "object") {
    return { ...s, profiles: Object.fromEntries(Object.entries(s.profiles).map(([k, v]) => [k, profile(v)])) };
  }
  return s;
}
`

// Probe is the probe's config: it prints the versions the project's config names,
// and exits before Hardhat does anything.
func Probe(userConfig, storeDir, fallback string) []byte {
	return []byte(fmt.Sprintf("// Written by deployer: prints the compiler versions the project's config names.\n"+
		"import user from %q;\n"+compilersJS+
		"solidity(user.solidity);\n"+
		"// To a file: the config may have broken stdout (Node drops what a full pipe\n"+
		"// cannot take, or the config closes it), and Hardhat must not go on.\n"+
		"(await import(\"node:fs\")).writeFileSync(%q, JSON.stringify([...seen]));\n"+
		"process.exit(0);\n", "./"+userConfig, storeDir, fallback, ProbeResult))
}

// Wrapper is the config the job's commands run with.
func Wrapper(userConfig, storeDir, fallback string) []byte {
	return []byte(fmt.Sprintf("// Written by deployer: the project's config, with compilers from the service's store\n"+
		"// and the job's gateway as the network %q.\n"+
		"import user from %q;\n"+
		"import { configVariable } from \"hardhat/config\";\n"+compilersJS+
		"export default {\n"+
		"  ...user,\n"+
		"  solidity: solidity(user.solidity),\n"+
		"  networks: {\n"+
		"    ...(user.networks ?? {}),\n"+
		"    %s: { type: \"http\", url: configVariable(%q), accounts: \"remote\" },\n"+
		"  },\n"+
		"};\n", NetworkName, "./"+userConfig, storeDir, fallback, NetworkName, RPCVariable))
}

var probeRE = regexp.MustCompile(`(?m)^DEPLOYER_SOLC (\[.*\])\s*$`)
var exactRE = regexp.MustCompile(`^\d+\.\d+\.\d+$`)

// ParseProbe reads the versions the probe printed. Hardhat names compilers by exact
// version only.
func ParseProbe(output string) ([]string, error) {
	m := probeRE.FindStringSubmatch(output)
	if m == nil {
		return nil, fmt.Errorf("the project's Hardhat config did not load: %s", lastLines(output, 3))
	}
	var vs []string
	if err := json.Unmarshal([]byte(m[1]), &vs); err != nil {
		return nil, fmt.Errorf("the project's compiler versions: %v", err)
	}
	for _, v := range vs {
		if !exactRE.MatchString(v) {
			return nil, fmt.Errorf("the project's Hardhat config names solc %q: Hardhat takes exact versions such as \"0.8.28\"", truncate(v, 40))
		}
	}
	sort.Strings(vs)
	return vs, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(ansiRE.ReplaceAllString(s, "")), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	out := strings.Join(lines, " | ")
	if len(out) > maxQuoted {
		// A config prints what it likes, on one line if it likes.
		out = strings.ToValidUTF8(out[len(out)-maxQuoted:], "")
		out = "…" + out
	}
	return out
}

// maxQuoted bounds what an error quotes of a command's output.
const maxQuoted = 300

var ansiRE = regexp.MustCompile("\x1b\\[[0-9;]*m")
