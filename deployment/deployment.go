// Package deployment runs one deployment job on a worker: it gets the project, the
// runner image and the chain, runs forge in a locked-down container that reaches
// nothing but its chain, and confirms on chain what forge says it deployed.
package deployment

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/deployer-dev/deployer/chains"
	"github.com/deployer-dev/deployer/engine"
	"github.com/deployer-dev/deployer/foundry"
	"github.com/deployer-dev/deployer/jobs"
	"github.com/deployer-dev/deployer/networks"
	"github.com/deployer-dev/deployer/pool"
	"github.com/deployer-dev/deployer/projects"
	"github.com/deployer-dev/deployer/redact"
	"github.com/deployer-dev/deployer/runner"
	"github.com/deployer-dev/deployer/tasks"
)

// Paths inside a job container.
const (
	workDir    = "/work"
	projectDir = workDir + "/project"
	jobUser    = "10001:10001"
)

// Config is what a Deployer needs to know of the installation.
type Config struct {
	WorkerID     string
	ProjectsRoot string
	Limits       projects.Limits
	Memory       int64
	NanoCPUs     int64
	Pids         int64
	// Timeout bounds a job from start to end.
	Timeout time.Duration
}

// Locker serializes work across workers (one sender per chain at a time).
type Locker interface {
	Lock(ctx context.Context, key string) (context.Context, func(), error)
}

// Deployer runs deployment jobs on one engine.
type Deployer struct {
	eng      *engine.Engine
	images   *runner.Resolver
	chains   *chains.Supervisor
	pool     *pool.Pool
	projects *projects.Store
	networks networks.Set
	locks    Locker
	ns       tasks.Namespace
	redact   *redact.Redactor
	cfg      Config
}

// New returns a Deployer.
func New(eng *engine.Engine, images *runner.Resolver, sup *chains.Supervisor, containers *pool.Pool, store *projects.Store,
	nets networks.Set, locks Locker, ns tasks.Namespace, red *redact.Redactor, cfg Config) *Deployer {
	return &Deployer{eng: eng, images: images, chains: sup, pool: containers, projects: store, networks: nets,
		locks: locks, ns: ns, redact: red, cfg: cfg}
}

// Reporter hears of a job's progress.
type Reporter interface {
	// Step says what the job does now.
	Step(step string)
	// Output receives forge's output, already redacted.
	Output(p []byte)
	// Container says which container the job runs in.
	Container(id string, reused bool)
}

// Report is what a finished job made and what it cost.
type Report struct {
	Result  *jobs.Result
	Timings jobs.Timings
	Cache   jobs.Cache
}

// Run runs a deployment. A *UserError says the user's project or request failed; any
// other error is ours (engine, Redis, chain) and worth a retry. The report's timings
// and cache fields are filled as far as the job got, even on failure.
func (d *Deployer) Run(ctx context.Context, p tasks.Deploy, rep Reporter, log *slog.Logger) (r Report, err error) {
	start := time.Now()
	if !p.EnqueuedAt.IsZero() {
		r.Timings.Queue = start.Sub(p.EnqueuedAt).Milliseconds()
	}
	defer func() { r.Timings.Total = time.Since(start).Milliseconds() + r.Timings.Queue }()
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	err = d.run(ctx, p, rep, log, &r)
	return r, err
}

func (d *Deployer) run(ctx context.Context, p tasks.Deploy, rep Reporter, log *slog.Logger, r *Report) error {
	if p.Framework != "foundry" {
		return userErrorf("framework %q is not supported yet", p.Framework)
	}
	net, err := d.networks.Get(p.Network)
	if err != nil {
		return userErrorf("%v", err)
	}
	if !net.Managed() {
		return userErrorf("network %q is remote; remote deployments are not enabled", net.Name)
	}
	if err := net.Available(); err != nil {
		return userErrorf("%v", err)
	}

	rep.Step("preparing project")
	dir, cleanup, err := d.materialize(ctx, p.Project)
	if err != nil {
		return err
	}
	defer cleanup()
	listing, err := projects.ListDir(dir, d.cfg.Limits)
	if err != nil {
		return asUserError(err)
	}
	if listing.FoundryTOML == nil {
		return userErrorf("not a Foundry project: no foundry.toml")
	}
	conf, err := foundry.SanitizeConfig(listing.FoundryTOML)
	if err != nil {
		return asUserError(err)
	}
	if len(conf.Dropped) > 0 {
		rep.Output([]byte(fmt.Sprintf("deployer: foundry.toml settings not used: %s\n", strings.Join(conf.Dropped, ", "))))
	}
	target, err := foundry.ResolveTarget(listing, p.Script, p.Contract, p.ConstructorArgs)
	if err != nil {
		return userErrorf("%v", err)
	}

	rep.Step("resolving runner image")
	t := time.Now()
	img, err := d.images.Resolve(ctx)
	r.Timings.Image = time.Since(t).Milliseconds()
	if err != nil {
		return err
	}
	r.Cache.ImageHit = img.Hit

	rep.Step("starting chain " + net.Name)
	chain, err := d.chains.Ensure(ctx, net)
	if err != nil {
		return err
	}

	rep.Step("starting container")
	t = time.Now()
	box, err := d.lease(ctx, p, img.ID, chain)
	if err != nil {
		return err
	}
	defer box.release(ctx)
	r.Cache.ContainerReused = box.lease.Reused
	rep.Container(box.lease.ID, box.lease.Reused)
	// The project goes in through the engine API, not a bind mount: the worker may
	// itself run in a container, and the user's directory is never written to.
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(projects.Pack(pw, dir, d.cfg.Limits, projects.PackOptions{
			Replace: map[string][]byte{"foundry.toml": conf.TOML},
			Prefix:  "project/",
			UID:     10001, GID: 10001,
		}))
	}()
	var tarOut bytes.Buffer
	code, err := box.exec(ctx, []string{"tar", "-x", "--no-same-permissions", "-C", workDir}, pr, &tarOut)
	pr.Close()
	if err != nil {
		return box.explain(ctx, err)
	}
	if code != 0 {
		return fmt.Errorf("copy project into container: tar exited %d: %s", code, lastLine(tarOut.String()))
	}
	r.Timings.Container = time.Since(t).Milliseconds()

	rep.Step("compiling")
	t = time.Now()
	out := newOutput(rep, d.redact)
	code, err = box.exec(ctx, foundry.BuildCommand(), nil, out)
	r.Timings.Compile = time.Since(t).Milliseconds()
	if err != nil {
		return box.explain(ctx, err)
	}
	if code != 0 {
		if msg := foundry.CompileError(out.String()); msg != "" {
			return userErrorf("%s", msg)
		}
		return userErrorf("compilation failed: %s", orDefault(foundry.FailureSummary(out.String()), "forge build exited "+fmt.Sprint(code)))
	}

	rep.Step("deploying to " + net.Name)
	t = time.Now()
	defer func() { r.Timings.Deploy = time.Since(t).Milliseconds() }()
	// One sender per chain at a time, whichever worker sends: forge picks nonces
	// from the chain, so two runs at once would collide.
	lockCtx, unlock, err := d.locks.Lock(ctx, d.ns.Key("lock", "sender", d.eng.ID(), net.Name, chains.AnvilSender))
	if err != nil {
		return err
	}
	defer unlock()
	out = newOutput(rep, d.redact)
	code, err = box.exec(lockCtx, foundry.DeployCommand(target, chains.IPCPath, chains.AnvilSender), nil, out)
	if err != nil {
		return box.explain(ctx, err)
	}
	if code != 0 {
		if msg := foundry.CompileError(out.String()); msg != "" {
			return userErrorf("%s", msg)
		}
		return userErrorf("deployment failed: %s", orDefault(foundry.FailureSummary(out.String()), "forge exited "+fmt.Sprint(code)))
	}
	var made foundry.Broadcast
	if target.IsScript() {
		var file bytes.Buffer
		path := projectDir + "/" + foundry.BroadcastPath(target, net.ChainID)
		code, err := box.exec(ctx, []string{"cat", path}, nil, &limitWriter{w: &file, n: 64 << 20})
		if err != nil {
			return box.explain(ctx, err)
		}
		if code != 0 {
			return userErrorf("the script sent no transactions (forge wrote no %s)", foundry.BroadcastPath(target, net.ChainID))
		}
		if made, err = foundry.ParseBroadcast(file.Bytes()); err != nil {
			return userErrorf("%v", err)
		}
	} else if made, err = foundry.ParseCreate(out.String(), target); err != nil {
		return userErrorf("%v", err)
	}
	contracts, err := confirm(ctx, chains.NewRPC(chain.WorkerRPC), made, log)
	if err != nil {
		return err
	}
	if contracts == nil {
		contracts = []jobs.Contract{}
	}
	unlock()
	r.Result = &jobs.Result{ChainID: net.ChainID, RPCURL: chain.PublicRPC, Contracts: contracts}
	return nil
}

// materialize returns a directory holding the project, and a function that removes
// it if it was made for this job.
func (d *Deployer) materialize(ctx context.Context, ref tasks.ProjectRef) (string, func(), error) {
	if ref.Upload == "" {
		rel, err := projects.ResolvePath(d.cfg.ProjectsRoot, ref.Path)
		if err != nil {
			return "", nil, asUserError(err)
		}
		return filepath.Join(d.cfg.ProjectsRoot, rel), func() {}, nil
	}
	archive, err := d.projects.Get(ctx, ref.Upload)
	if errors.Is(err, projects.ErrNotFound) {
		return "", nil, userErrorf("project %s was not found (uploads are kept 24 h)", ref)
	}
	if err != nil {
		return "", nil, err
	}
	dir, err := os.MkdirTemp("", "deployer-project-")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	if err := projects.Unpack(archive, dir, d.cfg.Limits); err != nil {
		cleanup()
		return "", nil, asUserError(err)
	}
	return dir, cleanup, nil
}

func asUserError(err error) error {
	if errors.Is(err, projects.ErrInvalid) || errors.Is(err, foundry.ErrRefused) {
		return &UserError{Msg: err.Error()}
	}
	return err
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
