package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/deployer-dev/deployer/api"
	"github.com/deployer-dev/deployer/cache/compilers"
	"github.com/deployer-dev/deployer/engine"
	"github.com/deployer-dev/deployer/engine/docker"
	"github.com/deployer-dev/deployer/foundry"
	"github.com/deployer-dev/deployer/gateway"
	"github.com/deployer-dev/deployer/internal/testenv"
	"github.com/deployer-dev/deployer/jobs"
	"github.com/deployer-dev/deployer/projects"
)

// BenchmarkSideBySide is `make bench`: on this machine, with examples/counter, one
// after the other,
//
//	(a) the original system's behaviour before its caches: the service with every
//	    cache off, so that each request builds the runner image, runs a fresh
//	    container, compiles, deploys and removes the container;
//	(b) by hand: a fresh container of the runner image (docker run), the project
//	    copied in, forge script compiling and deploying against the running chain;
//	(c) the floor: forge script alone in a warm container like a job's, artifacts
//	    built, deploying through a gateway in front of the running chain, as the
//	    service's forge does (--unlocked, the gateway signing), one docker exec each;
//	(d) the service, cold (its first deployment: image, chain, container, compile)
//	    and warm, through its API, with a long-polling client (POST /deploy?wait=),
//	    its warm runs taking turns with (c)'s;
//	(e) the throughput of 20 queued deployments with 1 and with 2 workers.
//
// It prints each figure and the ratios, and writes them to docs/benchmarks.md (or
// BENCH_OUT) with the machine they ran on. BENCH_RUNS sets the runs of each warm
// figure (9), BENCH_QUEUED the deployments of (e) (20). The first warm deployments
// of a key also start its spare container: medians of enough runs are the steady
// state's.
//
// (b) signs with anvil's first key (--private-key) and talks to the chain directly,
// as a user by hand would; (c) and the service's forge reach the chain through a
// gateway that signs for them (--unlocked), so that what the service adds over the
// floor is the service's own work.
func BenchmarkSideBySide(b *testing.B) {
	requireParts(b)
	runs := envInt(b, "BENCH_RUNS", 9)
	queued := envInt(b, "BENCH_QUEUED", 20)
	req := api.DeployRequest{PathURL: "examples/counter", Framework: "foundry"}
	var r sideBySide
	r.runs, r.queued = runs, queued

	// (d) cold, then warm; the warm stack's chain and image serve (b) and (c).
	s, err := startStack(stackOpts{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.stop()
	cold, seen := deployWaiting(b, s, req)
	r.cold, r.coldSeen = float64(cold.Timings.Total), ms(seen)
	// (c) and (d) warm take turns, so that a shared machine's drift weighs on both;
	// each after the same pause, in which the pool's work after a job (the reset,
	// the spare) is done and weighs on neither.
	h := newByHand(b, s)
	fl := newFloor(b, h, s)
	for range runs {
		time.Sleep(benchPause)
		r.floor = append(r.floor, ms(fl.script(b)))
		time.Sleep(benchPause)
		j, seen := deployWaiting(b, s, req)
		if !j.Cache.ImageHit || !j.Cache.ContainerReused || !j.Cache.CompileHit {
			b.Fatalf("a warm deployment missed a cache: %+v", j.Cache)
		}
		r.warm = append(r.warm, float64(j.Timings.Total))
		r.warmForge = append(r.warmForge, float64(j.Timings.Within.Forge))
		r.warmGateway = append(r.warmGateway, float64(j.Timings.Within.Gateway))
		r.warmSeen = append(r.warmSeen, ms(seen))
		r.phases = addPhases(r.phases, *j.Timings)
	}

	fl.close()
	// (b), beside the service's chain.
	for range runs {
		r.byHand = append(r.byHand, ms(h.fresh(b)))
	}
	h.close()

	// (a): the service with every cache off builds per request.
	orig, err := startStack(stackOpts{env: []string{"IMAGE_CACHE_ENABLED=false", "CONTAINER_REUSE_ENABLED=false", "FOUNDRY_CACHE_ENABLED=false"}})
	if err != nil {
		b.Fatal(err)
	}
	defer orig.stop()
	for range min(runs, 3) {
		j, seen := deployWaiting(b, orig, req)
		if j.Cache.ImageHit {
			b.Fatal("the original behaviour reused an image")
		}
		r.original = append(r.original, ms(seen))
	}
	orig.stop()

	// (e)
	r.perMin1 = throughput(b, 1, queued)
	r.perMin2 = throughput(b, 2, queued)

	report := r.String()
	fmt.Print("\n" + report)
	out := os.Getenv("BENCH_OUT")
	if out == "" {
		out = filepath.Join(testenv.RepoRoot(), "docs", "benchmarks.md")
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(out, []byte(r.Markdown()), 0o644); err != nil {
		b.Fatal(err)
	}
	fmt.Printf("written to %s\n", out)
	b.ReportMetric(median(r.warm)/median(r.floor), "warm/floor")
	b.ReportMetric(median(r.warmSeen)/median(r.floor), "seen/floor")
}

// benchPause comes before each run of (c) and (d) warm.
const benchPause = 300 * time.Millisecond

func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q", name, v)
	}
	return n
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// deployWaiting deploys with one long-polling request (POST /deploy?wait=), as a
// client that wants to hear of the end at once does, and returns the job and the
// time the client waited for it.
func deployWaiting(b *testing.B, s *stack, req api.DeployRequest) (api.Job, time.Duration) {
	b.Helper()
	body, _ := json.Marshal(req)
	start := time.Now()
	resp, err := http.Post(s.url+"/deploy?wait=5m", "application/json", bytes.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var j api.Job
	if err := json.NewDecoder(resp.Body).Decode(&j); err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("deploy?wait: %d %v", resp.StatusCode, err)
	}
	seen := time.Since(start)
	requireCompleted(b, j)
	return j, seen
}

// byHand runs forge in containers of the service's runner image, on its chains'
// network, as a user would by hand.
type byHand struct {
	ctx     context.Context
	eng     *docker.Engine
	spec    engine.ContainerSpec
	archive []byte
	env     []string
	n       int
}

func newByHand(b *testing.B, s *stack) *byHand {
	ctx := context.Background()
	eng := testenv.RequireEngine(b, s.instance)
	cs, err := eng.ListContainers(ctx, map[string]string{engine.LabelRole: engine.RoleJob})
	if err != nil || len(cs) == 0 {
		b.Fatalf("no job container to copy the setting of: %v", err)
	}
	job, err := eng.InspectContainer(ctx, cs[0].ID)
	if err != nil {
		b.Fatal(err)
	}
	var mounts []engine.Mount
	for _, vol := range inspectMounts(b, job.ID) {
		mounts = append(mounts, engine.Mount{Volume: vol, Target: compilers.Mount, ReadOnly: true})
	}
	var archive bytes.Buffer
	if err := projects.Pack(&archive, filepath.Join(testenv.RepoRoot(), "examples", "counter"), projects.DefaultLimits,
		projects.PackOptions{Prefix: "project/", UID: 10001, GID: 10001, Beside: compilers.View(".deployer", []string{"0.8.30"})}); err != nil {
		b.Fatal(err)
	}
	return &byHand{ctx: ctx, eng: eng, archive: archive.Bytes(),
		env: foundry.Env("/work/project", "/work/.deployer"),
		spec: engine.ContainerSpec{
			Image: job.Image, Cmd: []string{"sleep", "infinity"}, User: "10001:10001", Labels: eng.Labels(engine.RoleJob, nil),
			Tmpfs:  map[string]string{"/work": "size=512m,uid=10001,gid=10001,mode=0700", "/tmp": "size=64m,uid=10001,gid=10001,mode=0700"},
			Mounts: mounts, Network: "deployer-network-" + s.instance,
		}}
}

// start runs a container with the project copied in, on network.
func (h *byHand) start(b *testing.B, network string) string {
	h.n++
	spec := h.spec
	spec.Network = network
	spec.Name = fmt.Sprintf("deployer-%s-byhand-%d", h.eng.Instance(), h.n)
	id, err := h.eng.CreateContainer(h.ctx, spec)
	if err != nil {
		b.Fatal(err)
	}
	if code, err := h.eng.Exec(h.ctx, id, engine.ExecSpec{Cmd: []string{"tar", "-x", "-C", "/work"}, Stdin: bytes.NewReader(h.archive)}); err != nil || code != 0 {
		b.Fatalf("copy the project: %d %v", code, err)
	}
	return id
}

// script runs the project's script in the container: compiling what is not built,
// then deploying with anvil's first key.
func (h *byHand) script(b *testing.B, id string) time.Duration {
	var out bytes.Buffer
	start := time.Now()
	code, err := h.eng.Exec(h.ctx, id, engine.ExecSpec{
		Cmd: []string{"forge", "script", "script/Deploy.s.sol:Deploy", "--rpc-url", "http://chain-local:8545",
			"--broadcast", "--private-key", "0x" + anvilKey, "--non-interactive"},
		WorkDir: "/work/project", Env: h.env, Stdout: &out, Stderr: &out})
	took := time.Since(start)
	if err != nil || code != 0 {
		b.Fatalf("forge script: %d %v\n%s", code, err, out.String())
	}
	return took
}

// fresh is (b): a new container, the copy, forge compiling and deploying, the
// container removed.
func (h *byHand) fresh(b *testing.B) time.Duration {
	start := time.Now()
	id := h.start(b, h.spec.Network)
	h.script(b, id)
	if err := h.eng.RemoveContainer(h.ctx, id); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

func (h *byHand) close() { h.eng.Close() }

// floor is (c): a container like a job's (no network; the chain is reached through
// the relay on its loopback), the project built in it, the relay running, and a
// gateway in this process in front of the chain, signing with anvil's first key.
type floor struct {
	h      *byHand
	id     string
	sender string
	stop   context.CancelFunc
	served chan struct{}
}

func newFloor(b *testing.B, h *byHand, s *stack) *floor {
	id := h.start(b, "none")
	f := &floor{h: h, id: id, served: make(chan struct{})}
	var out bytes.Buffer
	if code, err := h.eng.Exec(h.ctx, id, engine.ExecSpec{Cmd: foundry.BuildCommand(), WorkDir: "/work/project", Env: h.env, Stdout: &out, Stderr: &out}); err != nil || code != 0 {
		b.Fatalf("forge build: %d %v\n%s", code, err, out.String())
	}
	key, err := crypto.HexToECDSA(anvilKey)
	if err != nil {
		b.Fatal(err)
	}
	f.sender = crypto.PubkeyToAddress(key.PublicKey).Hex()
	url, header := s.chainAccess(b, "local")
	gw := gateway.New(gateway.Config{Upstream: gateway.NewUpstream(url, header), ChainID: 31337, Key: key})

	ctx, stop := context.WithCancel(h.ctx)
	f.stop = stop
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	go func() {
		_, _ = h.eng.Exec(ctx, id, engine.ExecSpec{Cmd: []string{"node", "/usr/local/lib/deployer/relay.js", strconv.Itoa(gateway.RelayPort)},
			User: "10001:10001", Stdin: inR, Stdout: outW})
		outW.Close()
	}()
	ready := make(chan struct{})
	go func() {
		defer close(f.served)
		_ = gateway.Serve(ctx, gw, outR, inW, ready)
	}()
	select {
	case <-ready:
	case <-f.served:
		b.Fatal("the relay ended before it listened")
	case <-time.After(2 * time.Minute):
		b.Fatal("the relay did not listen")
	}
	return f
}

// script is one run of (c): forge script, deploying through the gateway.
func (f *floor) script(b *testing.B) time.Duration {
	cmd := foundry.DeployCommand(foundry.Target{ScriptPath: "script/Deploy.s.sol", ScriptContract: "Deploy"}, gateway.RelayURL, f.sender, false)
	var out bytes.Buffer
	start := time.Now()
	code, err := f.h.eng.Exec(f.h.ctx, f.id, engine.ExecSpec{Cmd: cmd, WorkDir: "/work/project", Env: f.h.env, Stdout: &out, Stderr: &out})
	took := time.Since(start)
	if err != nil || code != 0 {
		b.Fatalf("forge script: %d %v\n%s", code, err, out.String())
	}
	return took
}

func (f *floor) close() {
	f.stop()
	<-f.served
	_ = f.h.eng.RemoveContainer(f.h.ctx, f.id)
}

// throughput queues n deployments at once against workers workers (an API apart)
// and returns the deployments completed per minute, from the first request to the
// last end. A deployment first warms the installation.
func throughput(b *testing.B, workers, n int) float64 {
	redisURL, stopRedis, err := testenv.StartRedis()
	if err != nil {
		b.Fatal(err)
	}
	defer stopRedis()
	instance := testenv.Instance("e2e")
	var stacks []*stack
	defer func() {
		for _, s := range stacks {
			s.stop()
		}
	}()
	join := func(role, id string) *stack {
		s, err := startStack(stackOpts{instance: instance, redisURL: redisURL, role: role, env: []string{"WORKER_ID=" + id}})
		if err != nil {
			b.Fatal(err)
		}
		stacks = append(stacks, s)
		return s
	}
	for i := range workers {
		join("worker", fmt.Sprintf("bench-%d", i))
	}
	front := join("api", "")
	deployWaiting(b, front, api.DeployRequest{PathURL: "examples/counter", Framework: "foundry"})
	// Each worker warms its own pool and compile store too.
	if workers > 1 {
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() { deployWaiting(b, front, api.DeployRequest{PathURL: "examples/counter", Framework: "foundry"}) })
		}
		wg.Wait()
	}
	start := time.Now()
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { deployWaiting(b, front, api.DeployRequest{PathURL: "examples/counter", Framework: "foundry"}) })
	}
	wg.Wait()
	return float64(n) / time.Since(start).Minutes()
}

// sideBySide holds the figures, in milliseconds.
type sideBySide struct {
	runs, queued            int
	original, byHand, floor []float64
	cold, coldSeen          float64
	warm, warmSeen          []float64
	warmForge, warmGateway  []float64
	phases                  map[string][]float64
	perMin1, perMin2        float64
}

func addPhases(m map[string][]float64, t jobs.Timings) map[string][]float64 {
	if m == nil {
		m = map[string][]float64{}
	}
	for _, p := range t.Phases() {
		m[p.Name] = append(m[p.Name], float64(p.MS))
	}
	return m
}

func (r sideBySide) rows() [][2]string {
	f := func(v float64) string { return fmt.Sprintf("%.0f ms", v) }
	return [][2]string{
		{"(a) original, before its caches (image built per request), client-seen", f(median(r.original))},
		{"(b) by hand: docker run, copy, forge script compiling and deploying", f(median(r.byHand))},
		{"(c) floor: forge script alone in a warm container, artifacts built, through a gateway", f(median(r.floor))},
		{"(d) service cold (first deployment), job total", f(r.cold)},
		{"(d) service cold, client-seen (POST /deploy?wait=)", f(r.coldSeen)},
		{"(d) service warm, job total", f(median(r.warm))},
		{"(d)   within it: forge", f(median(r.warmForge))},
		{"(d)   within it: the gateway", f(median(r.warmGateway))},
		{"(d) service warm, client-seen (POST /deploy?wait=)", f(median(r.warmSeen))},
		{fmt.Sprintf("(e) throughput, %d queued, 1 worker", r.queued), fmt.Sprintf("%.1f deployments/min", r.perMin1)},
		{fmt.Sprintf("(e) throughput, %d queued, 2 workers", r.queued), fmt.Sprintf("%.1f deployments/min", r.perMin2)},
	}
}

func (r sideBySide) ratios() [][2]string {
	floor := median(r.floor)
	x := func(v float64) string { return fmt.Sprintf("%.2f×", v) }
	return [][2]string{
		{"warm / floor (goal ≤ 1.15×)", x(median(r.warm) / floor)},
		{"client-seen / floor (goal ≤ 1.30×)", x(median(r.warmSeen) / floor)},
		{"warm / forge inside it", x(median(r.warm) / median(r.warmForge))},
		{"warm / by hand", x(median(r.warm) / median(r.byHand))},
		{"cold / warm", x(r.cold / median(r.warm))},
		{"original / warm client-seen", x(median(r.original) / median(r.warmSeen))},
		{"2 workers / 1 worker (throughput)", x(r.perMin2 / r.perMin1)},
	}
}

func (r sideBySide) String() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "side by side, examples/counter, medians of %d runs (a: up to 3)\n", r.runs)
	for _, row := range r.rows() {
		fmt.Fprintf(&sb, "  %-78s %s\n", row[0], row[1])
	}
	for _, row := range r.ratios() {
		fmt.Fprintf(&sb, "  %-78s %s\n", row[0], row[1])
	}
	fmt.Fprintf(&sb, "  warm phases (median ms):")
	for _, p := range (jobs.Timings{}).Phases() {
		fmt.Fprintf(&sb, " %s %.0f", p.Name, median(r.phases[p.Name]))
	}
	sb.WriteString("\n")
	return sb.String()
}

// Markdown is the report as docs/benchmarks.md keeps it.
func (r sideBySide) Markdown() string {
	var sb strings.Builder
	sb.WriteString("# Benchmarks\n\nWritten by `make bench` (BenchmarkSideBySide in e2e/bench_sidebyside_test.go); ")
	sb.WriteString("every figure below comes from one run on one machine, one after the other (the floor's runs and the warm deployments taking turns, each after a pause of 300 ms): compare them as ratios.\n\n")
	fmt.Fprintf(&sb, "Machine: %s\n\n", machine())
	fmt.Fprintf(&sb, "Project: examples/counter (forge script, one contract). Medians of %d runs ((a): up to 3).\n\n", r.runs)
	sb.WriteString("| what | figure |\n| --- | --- |\n")
	for _, row := range r.rows() {
		fmt.Fprintf(&sb, "| %s | %s |\n", row[0], row[1])
	}
	sb.WriteString("\n| ratio | |\n| --- | --- |\n")
	for _, row := range r.ratios() {
		fmt.Fprintf(&sb, "| %s | %s |\n", row[0], row[1])
	}
	sb.WriteString("\nA warm deployment's phases (`timings_ms`, median ms; they add up to its total):\n\n| ")
	var names, vals []string
	for _, p := range (jobs.Timings{}).Phases() {
		names = append(names, p.Name)
		vals = append(vals, fmt.Sprintf("%.0f", median(r.phases[p.Name])))
	}
	sb.WriteString(strings.Join(names, " | ") + " |\n|" + strings.Repeat(" --- |", len(names)) + "\n| " + strings.Join(vals, " | ") + " |\n")
	sb.WriteString(`
How each is measured:

- (a) the service with IMAGE_CACHE_ENABLED, CONTAINER_REUSE_ENABLED and FOUNDRY_CACHE_ENABLED
  false: every request builds the runner image, runs a fresh container, compiles, deploys and
  removes the container, as the original system did before its cache.
- (b) runs forge in a fresh container of the service's own runner image on its chains' network,
  signing with anvil's first key (` + "`--private-key`" + `) and sending to the chain directly, as a
  user by hand would.
- (c) runs forge with ` + "`docker exec`" + ` in a container like a job's (no network, the project
  built in it) and sends through a gateway in front of the chain, which signs for it
  (` + "`--unlocked`" + `), with the relay already running in the container: as the service's forge
  sends. The floor is forge and the gateway, and nothing of the service.
- (d) the service's forge runs in a warm container of its pool; the first command of a job
  reaches it through the agent the pool started there while it idled, not through a
  ` + "`docker exec`" + ` of its own (README.md, "Architecture").
- (d) client-seen is one ` + "`POST /deploy?wait=5m`" + ` request, from sending it to the job in its answer.
- (e) an API and the workers apart on one redis-server; the deployments are sent at once, each
  a long poll; the figure runs from the first request to the last answer.
`)
	return sb.String()
}

// machine names what the figures ran on.
func machine() string {
	model := ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 1 {
			if kb, err := strconv.ParseFloat(f[1], 64); err == nil {
				mem = fmt.Sprintf("%.1f GiB", kb/(1<<20))
			}
		}
	}
	kernel, _ := exec.Command("uname", "-r").Output()
	dockerV, _ := exec.Command("docker", "version", "--format", "{{.Server.Version}}").Output()
	return fmt.Sprintf("%d CPUs (%s), %s memory, Linux %s, Docker engine %s, %s, %s",
		runtime.NumCPU(), model, mem, strings.TrimSpace(string(kernel)), strings.TrimSpace(string(dockerV)),
		runtime.Version(), time.Now().UTC().Format("2006-01-02"))
}
