// Package deployment runs one deployment job on a worker: it gets the project, the
// runner image and the chain, runs forge in a locked-down container that reaches
// nothing but its chain, and confirms on chain what forge says it deployed.
package deployment

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/deployer-dev/deployer/cache/compilecache"
	"github.com/deployer-dev/deployer/cache/imagecache"
	"github.com/deployer-dev/deployer/chains"
	"github.com/deployer-dev/deployer/engine/docker"
	"github.com/deployer-dev/deployer/foundry"
	"github.com/deployer-dev/deployer/internal/lock"
	"github.com/deployer-dev/deployer/internal/redact"
	"github.com/deployer-dev/deployer/jobs"
	"github.com/deployer-dev/deployer/networks"
	"github.com/deployer-dev/deployer/pool"
	"github.com/deployer-dev/deployer/projects"
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
	// Timeout is JOB_TIMEOUT: it bounds the user's steps together (the service's
	// own have the limits in tasks).
	Timeout time.Duration
}

// Locker serializes work across workers (one sender per chain at a time).
type Locker interface {
	// LockWait waits at most wait; the returned context ends if the lock is lost.
	LockWait(ctx context.Context, key string, wait time.Duration) (context.Context, func(), error)
}

// Deployer runs deployment jobs on one engine.
type Deployer struct {
	Deps
	cfg Config
}

// Deps are the parts a Deployer drives.
type Deps struct {
	Engine    *docker.Engine
	Images    *imagecache.Resolver
	Chains    *chains.Supervisor
	Pool      *pool.Pool
	Compiles  *compilecache.Store
	Projects  *projects.Store
	Networks  networks.Set
	Locks     Locker
	Namespace tasks.Namespace
	Redact    *redact.Redactor
}

// New returns a Deployer.
func New(d Deps, cfg Config) *Deployer {
	return &Deployer{Deps: d, cfg: cfg}
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
	err = d.run(ctx, p, rep, log, &r)
	return r, err
}

func (d *Deployer) run(ctx context.Context, p tasks.Deploy, rep Reporter, log *slog.Logger, r *Report) error {
	if p.Framework != "foundry" {
		return userErrorf("framework %q is not supported yet", p.Framework)
	}
	net, err := d.Networks.Get(p.Network)
	if err != nil {
		return userErrorf("%v", err)
	}
	if !net.Managed() {
		return userErrorf("network %q is remote; remote deployments are not enabled", net.Name)
	}
	if err := net.Available(); err != nil {
		return userErrorf("%v", err)
	}

	// The service's own steps have limits of their own (step); the user's share
	// JOB_TIMEOUT (users.run), so that a cold start does not eat the user's time.
	step := func(name string, limit time.Duration, fn func(context.Context) error) error {
		rep.Step(name)
		return within(ctx, name, limit, fn)
	}
	users := newBudget(d.cfg.Timeout)

	var proj *project
	err = step("preparing project", tasks.ProjectStepLimit, func(ctx context.Context) (err error) {
		proj, err = d.prepare(ctx, p, rep)
		return err
	})
	if err != nil {
		return err
	}
	defer proj.cleanup()

	t := time.Now()
	var img imagecache.Resolved
	err = step("resolving runner image", tasks.ImageStepLimit, func(ctx context.Context) (err error) {
		img, err = d.Images.Resolve(ctx)
		return err
	})
	r.Timings.Image = time.Since(t).Milliseconds()
	if err != nil {
		return err
	}
	r.Cache.ImageHit = img.Hit

	var chain *chains.Chain
	err = step("starting chain "+net.Name, tasks.ChainStepLimit, func(ctx context.Context) (err error) {
		chain, err = d.Chains.Ensure(ctx, net)
		return err
	})
	if err != nil {
		return err
	}

	// A compile cache hit travels into the container with the project.
	var cached []byte
	var compileKey string
	if d.Compiles.Enabled() {
		t = time.Now()
		err = step("looking up compile cache", tasks.ProjectStepLimit, func(ctx context.Context) (err error) {
			if compileKey, err = d.compileKey(proj.dir, proj.conf.TOML, img.Key); err != nil {
				return asUserError(err)
			}
			cached, r.Cache.CompileHit = d.Compiles.Lookup(ctx, compileKey)
			return nil
		})
		r.Timings.Compile = time.Since(t).Milliseconds()
		if err != nil {
			return err
		}
	}

	t = time.Now()
	var box *box
	err = step("starting container", tasks.ContainerStepLimit, func(ctx context.Context) (err error) {
		box, err = d.lease(ctx, p, img.ID, chain)
		return err
	})
	if err != nil {
		return err
	}
	defer box.release(ctx)
	defer func() { r.Timings.Forge = box.forge.Milliseconds() }()
	r.Cache.ContainerReused = box.lease.Reused
	rep.Container(box.lease.ID, box.lease.Reused)
	err = users.run(ctx, "copying project", func(ctx context.Context) error {
		return box.copyProject(ctx, proj.dir, proj.conf.TOML, d.cfg.Limits, cached)
	})
	if err != nil {
		return err
	}
	r.Timings.Container = time.Since(t).Milliseconds()

	if !r.Cache.CompileHit {
		rep.Step("compiling")
		t = time.Now()
		err := users.run(ctx, "compiling", func(ctx context.Context) error {
			if err := box.compile(ctx, newOutput(rep, d.Redact)); err != nil {
				return err
			}
			if compileKey != "" {
				// Taken before any of the project's code runs (the script comes next),
				// so what is stored is the compiler's output and nothing else.
				if err := box.saveArtifacts(ctx, d.Compiles, compileKey, time.Since(t)); err != nil {
					log.Warn("compile cache: artifacts not stored", "error", err)
				}
			}
			return nil
		})
		r.Timings.Compile += time.Since(t).Milliseconds()
		if err != nil {
			return err
		}
	}

	rep.Step("deploying to " + net.Name)
	t = time.Now()
	defer func() { r.Timings.Deploy = time.Since(t).Milliseconds() }()
	// One sender per chain at a time, whichever worker sends: forge picks nonces
	// from the chain, so two runs at once would collide. The wait is the service's,
	// not the user's.
	wait := tasks.SenderWait(d.cfg.Timeout)
	held, unlock, err := d.Locks.LockWait(ctx, d.Namespace.SenderLock(d.Engine.ID(), net.Name, chains.AnvilSender), wait)
	if errors.Is(err, lock.ErrWaitTimeout) {
		return &TimeoutError{Step: "waiting for other deployments to " + net.Name, Limit: wait}
	}
	if err != nil {
		return err
	}
	defer unlock()
	var contracts []jobs.Contract
	err = users.run(ctx, "deploying to "+net.Name, func(ctx context.Context) error {
		// The step ends if the sender's lock is lost, too.
		ctx, cancel := context.WithCancelCause(ctx)
		defer cancel(nil)
		defer context.AfterFunc(held, func() { cancel(context.Cause(held)) })()
		made, err := box.deploy(ctx, proj.target, net.ChainID, newOutput(rep, d.Redact))
		if err != nil {
			return err
		}
		contracts, err = confirm(ctx, chains.NewRPC(chain.WorkerRPC), made, log)
		return err
	})
	if err != nil {
		return err
	}
	unlock()
	if contracts == nil {
		contracts = []jobs.Contract{}
	}
	r.Result = &jobs.Result{ChainID: net.ChainID, RPCURL: chain.PublicRPC, Contracts: contracts}
	return nil
}

// project is a job's project on the worker's disk, checked, with its sanitized
// foundry.toml and its target.
type project struct {
	dir     string
	conf    foundry.Config
	target  foundry.Target
	cleanup func()
}

// prepare gets the project and checks it.
func (d *Deployer) prepare(ctx context.Context, p tasks.Deploy, rep Reporter) (*project, error) {
	dir, cleanup, err := d.materialize(ctx, p.Project)
	if err != nil {
		return nil, err
	}
	proj, err := func() (*project, error) {
		listing, err := projects.ListDir(dir, d.cfg.Limits)
		if err != nil {
			return nil, asUserError(err)
		}
		if listing.FoundryTOML == nil {
			return nil, userErrorf("not a Foundry project: no foundry.toml")
		}
		conf, err := foundry.SanitizeConfig(listing.FoundryTOML)
		if err != nil {
			return nil, asUserError(err)
		}
		if len(conf.Dropped) > 0 {
			rep.Output([]byte(fmt.Sprintf("deployer: foundry.toml settings not used: %s\n", strings.Join(conf.Dropped, ", "))))
		}
		target, err := foundry.ResolveTarget(listing, p.Script, p.Contract, p.ConstructorArgs)
		if err != nil {
			return nil, userErrorf("%v", err)
		}
		return &project{dir: dir, conf: conf, target: target, cleanup: cleanup}, nil
	}()
	if err != nil {
		cleanup()
	}
	return proj, err
}

// compileKey names what a compilation of the project makes.
func (d *Deployer) compileKey(dir string, toml []byte, imageKey string) (string, error) {
	content, err := projects.ContentHash(dir, d.cfg.Limits, map[string][]byte{"foundry.toml": toml})
	if err != nil {
		return "", err
	}
	return compilecache.Key(content, imageKey, foundry.BuildCommand()), nil
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
	archive, err := d.Projects.Get(ctx, ref.Upload)
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
