package hardhat

import (
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"
)

// cli is Hardhat's command line, from the project's dependencies.
const cli = "node_modules/hardhat/dist/src/cli.js"

// Env is the environment of a job's Hardhat commands: the gateway's URL for the
// wrapper's network; the confirmation Ignition asks for on chains other than 31337,
// given (no one is at a terminal); no colour.
func Env(rpcURL string) []string {
	return []string{
		RPCVariable + "=" + rpcURL,
		"HARDHAT_IGNITION_CONFIRM_DEPLOYMENT=1",
		"NO_COLOR=1",
		"FORCE_COLOR=0",
	}
}

// ProbeCommand runs the probe, then prints its result where ParseProbe finds it:
// printed by the shell after Node exits, so nothing the config does to its own
// output can lose it. The exit status is Node's.
func ProbeCommand() []string {
	return []string{"sh", "-c", fmt.Sprintf(`rm -f %[1]s; node %[2]s --config %[3]s; code=$?; `+
		`[ -f %[1]s ] && printf '\nDEPLOYER_SOLC %%s\n' "$(head -c 65536 %[1]s)"; exit $code`, ProbeResult, cli, ProbeConfig)}
}

// BuildCommand compiles the project.
func BuildCommand() []string { return []string{"node", cli, "--config", WrapperConfig, "build"} }

// DeployCommand deploys an Ignition module through the job's gateway, with
// parameters when there are.
func DeployCommand(module string, withParams bool) []string {
	cmd := []string{"node", cli, "--config", WrapperConfig, "ignition", "deploy", module, "--network", NetworkName}
	if withParams {
		cmd = append(cmd, "--parameters", ParamsFile)
	}
	return cmd
}

// ArtifactPaths are what a compilation leaves, kept by the compile cache.
var ArtifactPaths = []string{"artifacts", "cache"}

// DeploymentsDir is where Ignition records deployments; an uploaded one is dropped,
// or Ignition would resume the user's old deployment.
const DeploymentsDir = "ignition/deployments"

// Deployed is one contract an Ignition deployment made.
type Deployed struct {
	// Name is the future's id: Module#Contract.
	Name    string
	Address string
}

// ParseDeployed reads deployed_addresses.json.
func ParseDeployed(b []byte) ([]Deployed, error) {
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("reading ignition deployed_addresses.json: %w", err)
	}
	out := make([]Deployed, 0, len(m))
	for name, addr := range m {
		out = append(out, Deployed{Name: name, Address: strings.ToLower(addr)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// DeployedAddresses is the file a deployment to chainID writes, relative to the
// project.
func DeployedAddresses(chainID uint64) string {
	return path.Join(DeploymentsDir, fmt.Sprintf("chain-%d", chainID), "deployed_addresses.json")
}

var (
	futuresRE = regexp.MustCompile(`(?m)^Futures failed during execution:\s*\n\s*-\s*(.+)$`)
	hhErrorRE = regexp.MustCompile(`(?m)^Error (HHE\d+): (.+)$`)
)

// FailureSummary explains a failed Hardhat command: the Ignition future that failed
// and why, or Hardhat's error, or "".
func FailureSummary(output string) string {
	clean := ansiRE.ReplaceAllString(output, "")
	if m := futuresRE.FindStringSubmatch(clean); m != nil {
		return "the Ignition future " + strings.TrimSpace(m[1])
	}
	all := hhErrorRE.FindAllStringSubmatch(clean, -1)
	if len(all) > 0 {
		m := all[len(all)-1]
		return strings.TrimSpace(m[2]) + " (" + m[1] + ")"
	}
	return ""
}
