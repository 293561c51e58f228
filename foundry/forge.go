package foundry

import (
	"encoding/json"
	"fmt"
	"math/big"
	"path"
	"regexp"
	"strconv"
	"strings"
)

// Env is the environment every forge command of a job runs with. FOUNDRY_CONFIG
// points at the sanitized file so that nothing else is read as configuration;
// dataDir is where forge finds the compilers the job offers (svm/<version>/).
func Env(projectDir, dataDir string) []string {
	return []string{
		"FOUNDRY_CONFIG=" + projectDir + "/foundry.toml",
		"XDG_DATA_HOME=" + dataDir,
		"FOUNDRY_PROFILE=default",
		"FOUNDRY_OFFLINE=true",
		"FOUNDRY_DISABLE_NIGHTLY_WARNING=1",
		"NO_COLOR=1",
	}
}

// BuildCommand compiles the project (its sources and scripts, not its tests, which
// may need libraries a deployment does not).
func BuildCommand() []string {
	return []string{"forge", "build", "--skip", "test"}
}

// DeployCommand deploys the target from sender through the RPC at rpc, the job's
// gateway, which signs for the sender: no key enters the job's container. slow sends
// a script's transactions one at a time, each once the one before is mined (forge's
// --slow): on a real network the chain then sees them in nonce order, and a crash
// leaves no gap behind a transaction that was sent.
func DeployCommand(t Target, rpc, sender string, slow bool) []string {
	cmd := forgeCommand(t, rpc, sender, true)
	if slow && t.IsScript() {
		// Before "--": the script's own arguments follow it.
		i := len(cmd)
		for j, a := range cmd {
			if a == "--" {
				i = j
				break
			}
		}
		cmd = append(cmd[:i:i], append([]string{"--slow"}, cmd[i:]...)...)
	}
	return cmd
}

// SimulateCommand runs a script without sending anything: forge's dry run, which
// estimates what the deployment costs (EstimatedCost).
func SimulateCommand(t Target, rpc, sender string) []string {
	return forgeCommand(t, rpc, sender, false)
}

func forgeCommand(t Target, rpc, sender string, broadcast bool) []string {
	if t.IsScript() {
		cmd := []string{"forge", "script", t.String(), "--skip", "test",
			"--rpc-url", rpc, "--unlocked", "--sender", sender, "--non-interactive"}
		if broadcast {
			cmd = append(cmd, "--broadcast")
		}
		if t.Sig != "" {
			cmd = append(cmd, "--sig", t.Sig)
		}
		if len(t.Args) > 0 {
			// After "--", forge takes every argument as the script's, even "-5".
			cmd = append(append(cmd, "--"), t.Args...)
		}
		return cmd
	}
	cmd := []string{"forge", "create", t.String(), "--broadcast", "--json",
		"--rpc-url", rpc, "--unlocked", "--from", sender}
	if len(t.ConstructorArgs) > 0 {
		// Last: forge reads every following argument as a constructor argument.
		cmd = append(append(cmd, "--constructor-args"), t.ConstructorArgs...)
	}
	return cmd
}

var (
	errorLineRE = regexp.MustCompile(`^(?:Error|[A-Za-z]*Error)(?: \((\d+)\))?: (.+)$`)
	locationRE  = regexp.MustCompile(`^\s*--> ([^:]+:\d+:\d+):?`)
	ansiRE      = regexp.MustCompile("\x1b\\[[0-9;]*m")
)

// CompileError returns the compiler's first error, with its file and line, from
// forge's output, or "" when the output holds none.
func CompileError(output string) string {
	lines := strings.Split(ansiRE.ReplaceAllString(output, ""), "\n")
	for i, line := range lines {
		m := errorLineRE.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil || strings.HasPrefix(m[2], "Compiler run failed") {
			continue
		}
		for _, next := range lines[i+1 : min(i+4, len(lines))] {
			if loc := locationRE.FindStringSubmatch(next); loc != nil {
				return fmt.Sprintf("compile error at %s: %s", loc[1], m[2])
			}
		}
	}
	return ""
}

var estimateRE = regexp.MustCompile(`(?m)^Estimated amount required: ([0-9]+(?:\.[0-9]+)?) ETH`)

// EstimatedCost reads what a dry run says the deployment costs, in wei; false when
// forge printed no estimate (a script that sends nothing).
func EstimatedCost(output string) (*big.Int, bool) {
	m := estimateRE.FindStringSubmatch(ansiRE.ReplaceAllString(output, ""))
	if m == nil {
		return nil, false
	}
	eth, ok := new(big.Rat).SetString(m[1])
	if !ok {
		return nil, false
	}
	wei := new(big.Rat).Mul(eth, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(18), nil)))
	// Rounded up: an estimate is not a promise.
	n := new(big.Int).Quo(wei.Num(), wei.Denom())
	if new(big.Rat).SetInt(n).Cmp(wei) < 0 {
		n.Add(n, big.NewInt(1))
	}
	return n, true
}

var missingKeyRE = regexp.MustCompile(`environment variable "?([A-Z_]*(?:PRIVATE_KEY|MNEMONIC|DEPLOYER_KEY|SECRET)[A-Z_]*)"? not found`)

// KeyHint explains a script that looked for a key in its environment: the service
// signs, so the script must not bring one. "" when forge's output shows no such thing.
func KeyHint(output string) string {
	m := missingKeyRE.FindStringSubmatch(ansiRE.ReplaceAllString(output, ""))
	if m == nil {
		return ""
	}
	return fmt.Sprintf("the script reads %s, and there is none: the service signs for the deployment. Call vm.startBroadcast() without a key (forge sends from the sender the service gives it)", m[1])
}

// FailureSummary returns the last error forge printed, for a failure that is not a
// compile error (a reverted script, a missing contract), or "".
func FailureSummary(output string) string {
	lines := strings.Split(ansiRE.ReplaceAllString(output, ""), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		line := strings.TrimSpace(lines[i])
		if strings.HasPrefix(line, "Error:") {
			msg := strings.TrimSpace(strings.TrimPrefix(line, "Error:"))
			// forge puts the reason on the next lines at times.
			for _, next := range lines[i+1 : min(i+3, len(lines))] {
				if n := strings.TrimSpace(next); n != "" {
					msg += " " + n
				}
			}
			msg = strings.TrimSpace(msg)
			if len(msg) > 500 {
				msg = msg[:500] + "..."
			}
			return msg
		}
	}
	return ""
}

// Created is a contract forge says a deployment made. Forge's word is checked on
// chain before it is reported.
type Created struct {
	Name    string
	Address string
	// TxHash is forge's claim, not trusted: forge 1.7.1 attaches hashes to the wrong
	// entries in its broadcast file.
	TxHash string
}

// Broadcast is what a script's run-latest.json says.
type Broadcast struct {
	Contracts []Created
	// TxHashes are every transaction the run sent.
	TxHashes []string
}

// BroadcastDir is where forge writes a script's broadcast, relative to the project.
// The file in it is named for the function the script ran: run-latest.json, or
// deploy-latest.json for --sig 'deploy(…)'.
func BroadcastDir(t Target, chainID uint64) string {
	return path.Join("broadcast", path.Base(t.ScriptPath), strconv.FormatUint(chainID, 10))
}

// ParseBroadcast reads a broadcast file.
func ParseBroadcast(b []byte) (Broadcast, error) {
	var f struct {
		Transactions []struct {
			Hash            string `json:"hash"`
			TransactionType string `json:"transactionType"`
			ContractName    string `json:"contractName"`
			ContractAddress string `json:"contractAddress"`
			Additional      []struct {
				TransactionType string `json:"transactionType"`
				ContractName    string `json:"contractName"`
				Address         string `json:"address"`
			} `json:"additionalContracts"`
		} `json:"transactions"`
		Receipts []struct {
			TransactionHash string `json:"transactionHash"`
		} `json:"receipts"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return Broadcast{}, fmt.Errorf("read broadcast file: %w", err)
	}
	var out Broadcast
	seenTx := make(map[string]bool)
	addTx := func(h string) {
		h = strings.ToLower(h)
		if h != "" && !seenTx[h] {
			seenTx[h] = true
			out.TxHashes = append(out.TxHashes, h)
		}
	}
	seenAddr := make(map[string]bool)
	addContract := func(name, addr, tx string) {
		addr = strings.ToLower(addr)
		if addr == "" || seenAddr[addr] {
			return
		}
		seenAddr[addr] = true
		out.Contracts = append(out.Contracts, Created{Name: name, Address: addr, TxHash: strings.ToLower(tx)})
	}
	for _, t := range f.Transactions {
		addTx(t.Hash)
		if t.TransactionType == "CREATE" || t.TransactionType == "CREATE2" {
			addContract(t.ContractName, t.ContractAddress, t.Hash)
		}
		for _, a := range t.Additional {
			addContract(a.ContractName, a.Address, t.Hash)
		}
	}
	for _, r := range f.Receipts {
		addTx(r.TransactionHash)
	}
	return out, nil
}

// ParseCreate reads forge create --json output: a JSON object (pretty-printed by
// forge 1.7) after the compiler's lines.
func ParseCreate(stdout string, t Target) (Broadcast, error) {
	for i := 0; i < len(stdout); i++ {
		if stdout[i] != '{' || (i > 0 && stdout[i-1] != '\n') {
			continue
		}
		var r struct {
			DeployedTo      string `json:"deployedTo"`
			TransactionHash string `json:"transactionHash"`
		}
		if json.NewDecoder(strings.NewReader(stdout[i:])).Decode(&r) == nil && r.DeployedTo != "" {
			h := strings.ToLower(r.TransactionHash)
			return Broadcast{
				Contracts: []Created{{Name: t.ContractName, Address: strings.ToLower(r.DeployedTo), TxHash: h}},
				TxHashes:  []string{h},
			}, nil
		}
	}
	return Broadcast{}, fmt.Errorf("forge create printed no deployment")
}
