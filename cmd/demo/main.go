// Command demo shows deployer's main job on this machine: it starts `deployer all`
// (embedded Redis, the real Docker engine), deploys examples/counter (Foundry) twice
// and then examples/hardhat-counter (Hardhat Ignition) twice through the API, prints
// each pair side by side (cold, then warm), checks the contracts' code on chain, and
// stops everything it started. The runner images stay, so the next demo reuses them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/deployer-dev/deployer/api"
	"github.com/deployer-dev/deployer/chains"
	"github.com/deployer-dev/deployer/client"
	"github.com/deployer-dev/deployer/engine"
	"github.com/deployer-dev/deployer/engine/docker"
	"github.com/deployer-dev/deployer/jobs"
)

func main() {
	bin := flag.String("bin", "bin/deployer", "the deployer binary")
	addr := flag.String("addr", "127.0.0.1:5001", "where the demo's API listens")
	project := flag.String("project", "examples/counter,examples/hardhat-counter", "the projects to deploy, comma-separated")
	logFile := flag.String("log", "test-output/demo-deployer.log", "where the deployer's log goes")
	keep := flag.Bool("keep", os.Getenv("DEMO_KEEP") != "", "keep the service running for the dashboard until interrupted")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *bin, *addr, *project, *logFile, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, bin, addr, project, logFile string, keep bool) error {
	if ln, err := net.Listen("tcp", addr); err != nil {
		return fmt.Errorf("%s is taken (is a deployer already running?): %w", addr, err)
	} else {
		ln.Close()
	}
	eng, err := docker.New(ctx, "default")
	if err != nil {
		return fmt.Errorf("docker engine: %w (make setup starts one)", err)
	}
	defer eng.Close()
	chainsBefore, err := eng.ListContainers(ctx, map[string]string{engine.LabelRole: engine.RoleChain})
	if err != nil {
		return err
	}

	if err := os.MkdirAll(filepath.Dir(logFile), 0o755); err != nil {
		return err
	}
	logOut, err := os.Create(logFile)
	if err != nil {
		return err
	}
	defer logOut.Close()
	cmd := exec.Command(bin, "all")
	cmd.Env = append(os.Environ(), "HTTP_ADDR="+addr)
	cmd.Stdout, cmd.Stderr = logOut, logOut
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", bin, err)
	}
	fmt.Printf("started `deployer all` (pid %d, API on http://%s, log in %s)\n", cmd.Process.Pid, addr, logFile)
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		fmt.Println("stopped deployer")
		if len(chainsBefore) == 0 {
			removeChains(eng)
		}
	}()

	base := "http://" + addr
	if err := waitReady(ctx, base, 90*time.Second); err != nil {
		return err
	}
	c := client.New(base, os.Getenv("API_TOKEN"))
	for _, p := range strings.Split(project, ",") {
		var results []api.Job
		for i := 1; i <= 2; i++ {
			fmt.Printf("\ndeployment %d of %s\n", i, p)
			j, err := deploy(ctx, c, p)
			if err != nil {
				return err
			}
			results = append(results, j)
		}
		printSideBySide(results)
		for _, j := range results {
			if j.Status != jobs.Completed {
				return fmt.Errorf("job %s ended %s", j.JobID, j.Status)
			}
			for _, ct := range j.Result.Contracts {
				code, err := chains.NewRPC(j.Result.RPCURL, nil).Code(ctx, ct.Address)
				if err != nil || len(code) <= 2 {
					return fmt.Errorf("no code at %s: %v", ct.Address, err)
				}
			}
		}
		fmt.Printf("\nverified with eth_getCode over %s: code is at every returned address\n", results[0].Result.RPCURL)
	}
	auth := ""
	if os.Getenv("ADMIN_TOKEN") != "" {
		auth = " (user name: anything, password: your ADMIN_TOKEN)"
	}
	if keep {
		fmt.Printf("\ndashboard: %s/%s\nqueues:    %s/monitoring\nthe service keeps running; press Ctrl-C to stop it\n", base, auth, base)
		<-ctx.Done()
		return nil
	}
	fmt.Printf("\nto look at the dashboard, run `make demo DEMO_KEEP=1` (or `bin/deployer all`) and open %s/%s; the queues are at %s/monitoring\n", base, auth, base)
	return nil
}

func waitReady(ctx context.Context, base string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return errors.New("deployer was not ready in time; see its log")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func deploy(ctx context.Context, c *client.Client, project string) (api.Job, error) {
	start := time.Now()
	up, err := c.UploadDir(ctx, project)
	if err != nil {
		return api.Job{}, err
	}
	framework := "foundry"
	if _, err := os.Stat(filepath.Join(project, "foundry.toml")); err != nil {
		framework = "hardhat"
	}
	resp, err := c.Deploy(ctx, api.DeployRequest{PathURL: up.PathURL, Framework: framework, Network: "local"})
	if err != nil {
		return api.Job{}, err
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	return c.Wait(wctx, resp.JobID, func(j api.Job) {
		step := ""
		if j.Step != "" {
			step = ": " + j.Step
		}
		fmt.Printf("  [%5.1fs] %s%s\n", time.Since(start).Seconds(), j.Status, step)
	})
}

func printSideBySide(js []api.Job) {
	fmt.Println()
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 3, ' ', 0)
	row := func(label string, f func(api.Job) string) {
		cells := []string{label}
		for _, j := range js {
			cells = append(cells, f(j))
		}
		fmt.Fprintln(w, strings.Join(cells, "\t"))
	}
	ms := func(f func(*jobs.Timings) int64) func(api.Job) string {
		return func(j api.Job) string {
			if j.Timings == nil {
				return "-"
			}
			return fmt.Sprintf("%d ms", f(j.Timings))
		}
	}
	row("", func(j api.Job) string { return "job " + j.JobID[:8] })
	row("status", func(j api.Job) string { return string(j.Status) })
	row("image cache hit", func(j api.Job) string { return fmt.Sprint(j.Cache != nil && j.Cache.ImageHit) })
	row("container reused", func(j api.Job) string { return fmt.Sprint(j.Cache != nil && j.Cache.ContainerReused) })
	row("compile cache hit", func(j api.Job) string { return fmt.Sprint(j.Cache != nil && j.Cache.CompileHit) })
	if js[0].Framework == "hardhat" {
		row("dependencies installed", func(j api.Job) string { return fmt.Sprint(j.Cache != nil && !j.Cache.DepsHit) })
	}
	for i, ph := range (jobs.Timings{}).Phases() {
		row(ph.Name, ms(func(t *jobs.Timings) int64 { return t.Phases()[i].MS }))
	}
	row("total", ms(func(t *jobs.Timings) int64 { return t.Total }))
	row("  within: forge/hardhat", ms(func(t *jobs.Timings) int64 { return t.Within.Forge }))
	row("  within: the gateway", ms(func(t *jobs.Timings) int64 { return t.Within.Gateway }))
	row("network", func(j api.Job) string {
		if j.Result == nil {
			return "-"
		}
		return fmt.Sprintf("%d at %s", j.Result.ChainID, j.Result.RPCURL)
	})
	n := 0
	for _, j := range js {
		if j.Result != nil {
			n = max(n, len(j.Result.Contracts))
		}
	}
	for i := range n {
		row("contract", func(j api.Job) string {
			if j.Result == nil || i >= len(j.Result.Contracts) {
				return ""
			}
			c := j.Result.Contracts[i]
			return c.Name + " " + c.Address
		})
	}
	for _, j := range js {
		if j.Error != nil {
			fmt.Fprintf(w, "error of %s:\t%s\n", j.JobID[:8], *j.Error)
		}
	}
	w.Flush()
}

// removeChains removes the chains the demo started (there were none before it), so
// it leaves no container running. Only our labelled containers are touched.
func removeChains(eng *docker.Engine) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cs, err := eng.ListContainers(ctx, map[string]string{engine.LabelRole: engine.RoleChain})
	if err != nil {
		return
	}
	for _, c := range cs {
		if err := chains.Remove(ctx, eng, c.Labels[engine.LabelNetwork]); err == nil {
			fmt.Printf("removed the chain the demo started (%s)\n", strings.TrimPrefix(c.Name, "/"))
		}
	}
}
