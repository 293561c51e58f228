package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/deployer-dev/deployer/api"
	"github.com/deployer-dev/deployer/client"
	"github.com/deployer-dev/deployer/internal/config"
	"github.com/deployer-dev/deployer/jobs"
)

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// frameworkOf tells a Hardhat project (a hardhat.config.* and no foundry.toml) from a
// Foundry one.
func frameworkOf(dir string) string {
	if _, err := os.Stat(filepath.Join(dir, "foundry.toml")); err == nil {
		return "foundry"
	}
	matches, _ := filepath.Glob(filepath.Join(dir, "hardhat.config.*"))
	if len(matches) > 0 {
		return "hardhat"
	}
	return "foundry"
}

// submit uploads a project directory, deploys it, shows progress and prints the
// result. It exits 1 when the job fails.
func submit(ctx context.Context, cfg config.Config, args []string) error {
	fs := flag.NewFlagSet("submit", flag.ContinueOnError)
	apiURL := fs.String("api", cfg.APIURL, "the API's base URL (DEPLOYER_API)")
	network := fs.String("network", "local", "network to deploy to")
	script := fs.String("script", "", "script to run, e.g. script/Deploy.s.sol:Deploy")
	contract := fs.String("contract", "", "contract to deploy with forge create, e.g. src/Counter.sol:Counter")
	sig := fs.String("sig", "", "the script's function to call, e.g. 'run(address)' (with -arg for its arguments)")
	module := fs.String("module", "", "a Hardhat project's Ignition module (default: the only one under ignition/modules)")
	params := fs.String("parameters", "", "a JSON file of Ignition parameters, for a Hardhat project")
	timeout := fs.Duration("timeout", 15*time.Minute, "how long to wait for the job")
	asJSON := fs.Bool("json", false, "print the job as JSON")
	showLogs := fs.Bool("logs", false, "print the job's output on stderr as it comes")
	var argv stringList
	fs.Var(&argv, "arg", "an argument, repeated for several: the script's (with -sig), or the constructor's (with -contract)")
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: deployer submit [flags] DIR")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitError(2)
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return exitError(2)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	c := client.New(*apiURL, cfg.APIToken)
	up, err := c.UploadDir(ctx, fs.Arg(0))
	if err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	fmt.Fprintf(os.Stderr, "uploaded %s\n", up.PathURL)
	req := api.DeployRequest{PathURL: up.PathURL, Framework: frameworkOf(fs.Arg(0)), Network: *network,
		Script: *script, Contract: *contract, Sig: *sig, Module: *module}
	if *contract != "" {
		req.ConstructorArgs = argv
	} else {
		req.Args = argv
	}
	if *params != "" {
		b, err := os.ReadFile(*params)
		if err != nil {
			return fmt.Errorf("parameters: %w", err)
		}
		req.Parameters = b
	}
	job, err := c.Deploy(ctx, req)
	if err != nil {
		return fmt.Errorf("deploy: %w", err)
	}
	start := time.Now()
	h := client.Handlers{Progress: func(j api.Job) {
		step := ""
		if j.Step != "" {
			step = ": " + j.Step
		}
		fmt.Fprintf(os.Stderr, "[%5.1fs] job %s %s%s\n", time.Since(start).Seconds(), j.JobID, j.Status, step)
	}}
	if *showLogs {
		h.Output = func(text string) { fmt.Fprint(os.Stderr, text) }
	}
	// The job's events, as they come: no polling.
	final, err := c.Follow(ctx, job.JobID, h)
	if err != nil {
		return fmt.Errorf("job %s: %w", job.JobID, err)
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(final)
	} else {
		printJob(final)
	}
	if final.Status != jobs.Completed {
		return exitError(1)
	}
	return nil
}

func printJob(j api.Job) {
	fmt.Printf("job %s: %s\n", j.JobID, j.Status)
	if j.Error != nil {
		fmt.Printf("error: %s\n", *j.Error)
	}
	if r := j.Result; r != nil {
		fmt.Printf("chain %d at %s\n", r.ChainID, r.RPCURL)
		for _, c := range r.Contracts {
			fmt.Printf("  %-24s %s  tx %s\n", c.Name, c.Address, c.TxHash)
		}
	}
	if t := j.Timings; t != nil {
		var parts []string
		for _, ph := range t.Phases() {
			if ph.MS > 0 {
				parts = append(parts, fmt.Sprintf("%s %d", ph.Name, ph.MS))
			}
		}
		fmt.Printf("timings (ms): %s; total %d (forge %d, gateway %d)\n", strings.Join(parts, ", "), t.Total, t.Within.Forge, t.Within.Gateway)
	}
	if c := j.Cache; c != nil {
		fmt.Printf("cache: image hit %t, container reused %t, compile hit %t\n", c.ImageHit, c.ContainerReused, c.CompileHit)
	}
}
