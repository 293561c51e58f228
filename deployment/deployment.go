// Package deployment runs one deployment job on a worker: it gets the project, the
// runner image and the chain, runs forge in a locked-down container that reaches
// nothing but its chain, and confirms on chain what forge says it deployed.
//
// The pipeline (Run) is a sequence of steps over the parts in ports.go. The
// service's own steps (the image, the chain, a container) have limits of their own;
// the user's (copy, compile, script, confirmation) share JOB_TIMEOUT. A step past its
// limit ends the job for good, naming the step.
package deployment

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/deployer-dev/deployer/cache/compilecache"
	"github.com/deployer-dev/deployer/cache/compilers"
	"github.com/deployer-dev/deployer/cache/imagecache"
	"github.com/deployer-dev/deployer/cache/npmdeps"
	"github.com/deployer-dev/deployer/chains"
	"github.com/deployer-dev/deployer/engine"
	"github.com/deployer-dev/deployer/foundry"
	"github.com/deployer-dev/deployer/gateway"
	"github.com/deployer-dev/deployer/hardhat"
	"github.com/deployer-dev/deployer/internal/lock"
	"github.com/deployer-dev/deployer/internal/redact"
	"github.com/deployer-dev/deployer/jobs"
	"github.com/deployer-dev/deployer/projects"
	"github.com/deployer-dev/deployer/tasks"
)

// Paths inside a job container. dataDirName, beside the project in the work dir,
// holds the job's view of the compiler store (its XDG data dir, where forge looks).
const (
	workDir     = "/work"
	projectDir  = workDir + "/project"
	dataDirName = ".deployer"
	jobUser     = "10001:10001"
)

// Config is what a Deployer needs to know of the installation.
type Config struct {
	WorkerID string
	Limits   projects.Limits
	Memory   int64
	NanoCPUs int64
	Pids     int64
	// Timeout is JOB_TIMEOUT: it bounds the user's steps together.
	Timeout time.Duration
	// Steps bounds the service's own steps; zero fields take tasks' limits.
	Steps StepLimits
}

// StepLimits are the limits of the service's own steps of a deployment.
type StepLimits struct {
	Project, Image, Chain, Container time.Duration
	// Mine bounds the wait for a real network to mine what a job sent.
	Mine time.Duration
	// SenderWait bounds the wait for other deployments from the chain's sender.
	SenderWait time.Duration
}

func (l StepLimits) withDefaults(jobTimeout time.Duration) StepLimits {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.Project, tasks.ProjectStepLimit)
	def(&l.Image, tasks.ImageStepLimit)
	def(&l.Chain, tasks.ChainStepLimit)
	def(&l.Container, tasks.ContainerStepLimit)
	def(&l.Mine, tasks.MineStepLimit)
	def(&l.SenderWait, tasks.SenderWait(jobTimeout))
	return l
}

// Deps are the parts a Deployer drives.
type Deps struct {
	// EngineID names the engine the worker runs on: its chains and their senders
	// are the engine's.
	EngineID string
	// Images give each framework's runner image.
	Images     map[string]Images
	Chains     Chains
	Containers Containers
	Compiles   CompileCache
	Compilers  Compilers
	Uploads    Uploads
	// Rules are the request check the API ran, run again.
	Rules     jobs.Rules
	Locks     Locker
	Namespace tasks.Namespace
	Redact    *redact.Redactor
	// Senders make the keys that sign on managed chains, one per client.
	Senders gateway.Senders
	// Journals keep what a job sent to a real network, for a retry to read.
	Journals Journals
	// NPM is the dependency cache of Hardhat projects.
	NPM Dependencies
}

// Deployer runs deployment jobs on one engine.
type Deployer struct {
	Deps
	cfg Config
}

// New returns a Deployer.
func New(d Deps, cfg Config) *Deployer {
	cfg.Steps = cfg.Steps.withDefaults(cfg.Timeout)
	return &Deployer{Deps: d, cfg: cfg}
}

// Report is what a job made and what it cost.
type Report = jobs.Report

// Run runs a deployment. A final error (jobs.IsFinal: the user's, a timeout) ends the
// job; any other is ours (engine, Redis, chain) and worth a retry. The report's
// timings and cache fields are filled as far as the job got, even on failure.
func (d *Deployer) Run(ctx context.Context, p tasks.Deploy, rep Reporter, log *slog.Logger) (r Report, err error) {
	j := &job{d: d, p: p, rep: rep, log: log, r: &r, users: newBudget(d.cfg.Timeout), clock: newStopwatch(p.EnqueuedAt, time.Now())}
	err = j.run(ctx)
	j.clock.stop(&r.Timings)
	return r, err
}

// job is one run of the pipeline: what the steps found so far.
type job struct {
	d     *Deployer
	p     tasks.Deploy
	rep   Reporter
	log   *slog.Logger
	r     *Report
	users *budget
	// clock charges the job's time to its phases.
	clock *stopwatch

	proj       *project
	img        imagecache.Resolved
	chain      *chains.Chain
	compileKey string
	cached     []byte
	// solc are the compiler versions the job offers forge or Hardhat.
	solc []string
	// depsKey names a Hardhat project's dependency set.
	depsKey   string
	box       *box
	gw        *gateway.Session
	relay     *relayLink
	relayWait time.Duration
	// funded has the end of the sender's funding on a managed chain.
	funded chan error

	// unlocks release the sender locks the job took, its own and those of addresses
	// it signed for itself; the gateway takes the latter from its own goroutines.
	mu      sync.Mutex
	unlocks []func()
}

func (j *job) run(ctx context.Context) error {
	type step struct {
		phase string
		run   func(context.Context) error
	}
	steps := []step{
		{phaseProject, j.prepare}, {phaseImage, j.resolveImage}, {phaseImage, j.prepareCompilers},
		{phaseChain, j.ensureChain}, {phaseProject, j.lookupCompiled}, {phaseContainer, j.openContainer},
		{phaseCompile, j.compile}, {phaseDeploy, j.deploy},
	}
	if j.hardhat() {
		// Hardhat's compilers are known once its config ran (in the container), and
		// its dependencies are installed first.
		steps = []step{
			{phaseProject, j.prepare}, {phaseImage, j.resolveImage}, {phaseDeps, j.installDeps},
			{phaseChain, j.ensureChain}, {phaseContainer, j.openContainer}, {phaseCompile, j.probeCompilers},
			{phaseProject, j.lookupCompiled}, {phaseCopy, j.restoreCompiled}, {phaseCompile, j.compile},
			{phaseDeploy, j.deploy},
		}
	}
	defer j.close(ctx)
	for _, st := range steps {
		j.clock.enter(st.phase)
		if err := st.run(ctx); err != nil {
			return err
		}
	}
	return nil
}

// close gives back what the job held.
func (j *job) close(ctx context.Context) {
	j.clock.enter(phaseRelease)
	if j.box != nil {
		j.box.closeAgent()
		j.stopRelay()
		j.r.Timings.Within.Forge = j.box.forge.Milliseconds()
		j.box.release(ctx)
	}
	if j.gw != nil {
		cost, _ := j.gw.Cost()
		j.r.Timings.Within.Gateway = (j.relayWait + cost).Milliseconds()
	}
	j.mu.Lock()
	for _, unlock := range j.unlocks {
		unlock()
	}
	j.mu.Unlock()
	if j.proj != nil {
		j.proj.cleanup()
	}
}

// step runs one of the service's own steps under its limit.
func (j *job) step(ctx context.Context, name string, limit time.Duration, fn func(context.Context) error) error {
	j.rep.Step(name)
	return within(ctx, name, limit, fn)
}

// prepare gets the project onto the worker's disk and checks it, with the check the
// API ran (a worker trusts no archive it fetches, and the networks may have changed
// since).
func (j *job) prepare(ctx context.Context) error {
	return j.step(ctx, "preparing project", j.d.cfg.Steps.Project, func(ctx context.Context) error {
		dir, cleanup, err := j.d.materialize(ctx, j.p.Project)
		if err != nil {
			return err
		}
		listing, err := projects.ListDir(dir, j.d.cfg.Limits)
		if err != nil {
			cleanup()
			return jobs.AsRequestError(err)
		}
		plan, err := j.d.Rules.Check(j.p, listing)
		if err != nil {
			cleanup()
			return err
		}
		if len(plan.Config.Dropped) > 0 {
			j.rep.Output([]byte(fmt.Sprintf("deployer: foundry.toml settings not used: %s\n", strings.Join(plan.Config.Dropped, ", "))))
		}
		for _, note := range plan.Config.Notes {
			j.rep.Output([]byte("deployer: " + note + "\n"))
		}
		j.proj = &project{dir: dir, plan: plan, cleanup: cleanup}
		return nil
	})
}

func (j *job) resolveImage(ctx context.Context) error {
	err := j.step(ctx, "resolving runner image", j.d.cfg.Steps.Image, func(ctx context.Context) (err error) {
		images, ok := j.d.Images[j.p.Framework]
		if !ok {
			return userErrorf("framework %s has no runner image on this worker", j.p.Framework)
		}
		j.img, err = images.Resolve(ctx)
		return err
	})
	j.r.Cache.ImageHit = j.img.Hit
	return err
}

// prepareCompilers decides which compiler versions the project gets, from its files
// alone, and makes them ready on the engine, fetching any the host lacks.
func (j *job) prepareCompilers(ctx context.Context) error {
	return j.step(ctx, "preparing compilers", j.d.cfg.Steps.Image, func(ctx context.Context) error {
		needs, err := foundry.CompilerNeeds(j.proj.dir, j.proj.plan.Config.TOML)
		if err != nil {
			return err
		}
		known, err := j.d.Compilers.Known(ctx)
		if err != nil {
			return err
		}
		if j.solc, err = foundry.ResolveCompilers(needs, j.proj.plan.Config.Solc, j.d.Compilers.Defaults(), known); err != nil {
			return userErrorf("%v", err)
		}
		j.rep.Output([]byte("deployer: compiling with solc " + strings.Join(j.solc, ", ") + "\n"))
		return j.d.Compilers.Ensure(ctx, j.solc, j.rep.Step)
	})
}

func (j *job) ensureChain(ctx context.Context) error {
	net := j.proj.plan.Network
	var err error
	if j.remote() {
		err = j.remoteChain(ctx)
	} else {
		err = j.step(ctx, "starting chain "+net.Name, j.d.cfg.Steps.Chain, func(ctx context.Context) (err error) {
			j.chain, err = j.d.Chains.Ensure(ctx, net)
			return err
		})
	}
	if err != nil {
		return err
	}
	if err := j.openGateway(); err != nil {
		return err
	}
	if !j.remote() {
		// The sender's funds are seen to while the job goes on; the script waits.
		j.funded = make(chan error, 1)
		go func() { j.funded <- j.fund(ctx) }()
	}
	return nil
}

// lookupCompiled finds the project's artifacts in the compile cache: a hit travels
// into the container with the project, and forge compiles nothing.
func (j *job) lookupCompiled(ctx context.Context) error {
	if !j.d.Compiles.Enabled() {
		return nil
	}
	return j.step(ctx, "looking up compile cache", j.d.cfg.Steps.Project, func(ctx context.Context) error {
		opts := j.packOptions()
		replace := maps.Clone(opts.Replace)
		// Ignition's parameters are the deployment's, not the compilation's.
		delete(replace, hardhat.ParamsFile)
		content, err := projects.ContentHash(j.proj.dir, j.d.cfg.Limits, replace, opts.Skip)
		if err != nil {
			return jobs.AsRequestError(err)
		}
		image, build := j.img.Key, foundry.BuildCommand()
		if j.hardhat() {
			// Hardhat compiles with the plugins the dependencies bring.
			image, build = image+" deps "+j.depsKey, hardhat.BuildCommand()
		}
		j.compileKey = compilecache.Key(content, image, j.solc, build)
		j.cached, j.r.Cache.CompileHit = j.d.Compiles.Lookup(ctx, j.compileKey)
		return nil
	})
}

// openContainer leases the job's container (the service's step) and copies the
// project in (the user's: its size is theirs).
func (j *job) openContainer(ctx context.Context) error {
	err := j.step(ctx, "starting container", j.d.cfg.Steps.Container, func(ctx context.Context) error {
		mounts := []engine.Mount{{Volume: j.d.Compilers.Volume(), Target: compilers.Mount, ReadOnly: true}}
		env := append(foundry.Env(projectDir, workDir+"/"+dataDirName), foundry.EnvList(j.proj.plan.Target.Env)...)
		if j.hardhat() {
			mounts = append(mounts, engine.Mount{Volume: j.d.NPM.Volume(j.depsKey), Target: npmdeps.Mount, ReadOnly: true})
			env = hardhat.Env(gateway.RelayURL)
		}
		spec := JobContainer(j.d.Namespace.Instance, j.d.cfg, j.p.Network, j.p.Framework, j.img.ID, mounts)
		c, err := j.d.Containers.Lease(ctx, spec, j.p.JobID)
		if err != nil {
			return err
		}
		j.box = &box{c: c, mem: j.d.cfg.Memory, env: env, onCopy: func(d time.Duration) { j.clock.charge(phaseCopy, d) }}
		return nil
	})
	if err != nil {
		return err
	}
	j.clock.enter(phaseCopy)
	// The relay runs already (or starts now), the agent waits for the project; the
	// script waits for the relay.
	j.startRelay(ctx)
	j.r.Cache.ContainerReused = j.box.c.Reused()
	j.rep.Container(j.box.c.ID(), j.box.c.Reused())
	err = j.users.run(ctx, "copying project", func(ctx context.Context) error {
		return j.box.copyProject(ctx, j.proj.dir, j.d.cfg.Limits, j.packOptions(), j.cached, j.layout())
	})
	return err
}

// compile runs forge build, unless the compile cache had the artifacts, and stores
// what it made before any of the project's code runs (the script comes next), so
// that what is stored is the compiler's output and nothing else.
func (j *job) compile(ctx context.Context) error {
	if j.r.Cache.CompileHit {
		return nil
	}
	j.rep.Step("compiling")
	t := time.Now()
	return j.users.run(ctx, "compiling", func(ctx context.Context) error {
		if j.hardhat() {
			if err := j.box.compileHardhat(ctx, newOutput(j.rep, j.d.Redact)); err != nil {
				return err
			}
		} else if err := j.box.compile(ctx, newOutput(j.rep, j.d.Redact), foundry.EmptyDependencies(j.proj.dir)); err != nil {
			return err
		}
		if j.compileKey != "" {
			if err := j.box.saveArtifacts(ctx, j.d.Compiles, j.compileKey, j.layout(), time.Since(t)); err != nil {
				j.log.Warn("compile cache: artifacts not stored", "error", err)
			}
		}
		return nil
	})
}

// deploy runs the script (or forge create) through the job's gateway, under its
// sender's lock, and confirms on chain what it made, by the transactions that went
// through the gateway.
func (j *job) deploy(ctx context.Context) error {
	net := j.proj.plan.Network
	sender := strings.ToLower(j.gw.Sender().Hex())
	err := j.step(ctx, "connecting to "+net.Name, j.d.cfg.Steps.Container, func(ctx context.Context) error {
		if err := j.waitRelay(ctx); err != nil {
			return err
		}
		if j.remote() {
			return nil
		}
		if j.funded == nil {
			return j.fund(ctx)
		}
		select {
		case err := <-j.funded:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	if err != nil {
		return err
	}
	j.rep.Step("deploying to " + net.Name)
	// A sender's deployments to a chain take turns: forge picks nonces from the
	// chain, so two runs from one sender at once would collide. Other clients'
	// deployments run at the same time. The wait is the service's, not the user's.
	wait := j.d.cfg.Steps.SenderWait
	held, unlock, err := j.d.Locks.LockWait(ctx, j.senderLock(j.gw.Sender()), wait)
	if errors.Is(err, lock.ErrWaitTimeout) {
		return &TimeoutError{Step: "waiting for the sender's other deployments to " + net.Name, Limit: wait}
	}
	if err != nil {
		return err
	}
	defer unlock()
	if j.remote() {
		// A retry of a job that sent transactions before its worker died ends with
		// them: the script is never run twice.
		txs, done, err := j.d.Journals.Job(j.p.JobID).Read(ctx)
		if err != nil {
			return err
		}
		if len(txs) > 0 {
			return j.recoverJournal(ctx, txs, done)
		}
		if !j.hardhat() {
			if err := j.checkFunds(ctx, sender); err != nil {
				return err
			}
		}
		j.rep.Step("deploying to " + net.Name)
	}
	var made foundry.Broadcast
	err = j.users.run(ctx, "deploying to "+net.Name, func(ctx context.Context) (err error) {
		// The step ends if the sender's lock is lost, too.
		ctx, cancel := context.WithCancelCause(ctx)
		defer cancel(nil)
		defer context.AfterFunc(held, func() { cancel(context.Cause(held)) })()
		if j.hardhat() {
			made, err = j.box.deployHardhat(ctx, j.proj.plan.Hardhat, net.ChainID, newOutput(j.rep, j.d.Redact))
			return err
		}
		made, err = j.box.deploy(ctx, j.proj.plan.Target, net.ChainID, sender, j.remote(), newOutput(j.rep, j.d.Redact))
		return err
	})
	sent := j.gw.Sent()
	if err != nil {
		if j.remote() && len(sent) > 0 {
			return fmt.Errorf("%w; the transactions sent before it failed: %s", err, hashes(sent))
		}
		return err
	}
	j.clock.enter(phaseConfirm)
	// What forge's files say is checked against what went through the gateway.
	made.TxHashes = nil
	for _, s := range sent {
		made.TxHashes = append(made.TxHashes, strings.ToLower(s.Hash))
	}
	if j.remote() {
		if err := j.d.Journals.Job(j.p.JobID).Finish(ctx, made); err != nil {
			j.log.Warn("journal: the script's end not recorded", "error", err)
		}
		if err := j.waitConfirmed(ctx, sent); err != nil {
			return err
		}
	}
	var contracts []jobs.Contract
	err = j.step(ctx, "confirming on "+net.Name, j.d.cfg.Steps.Chain, func(ctx context.Context) (err error) {
		contracts, err = confirm(ctx, chains.NewRPC(j.chain.WorkerRPC, j.chain.Admin()), made, j.log)
		return err
	})
	if err != nil {
		return err
	}
	j.result(contracts, sender)
	return nil
}

// project is a job's project on the worker's disk, checked.
type project struct {
	dir     string
	plan    jobs.Plan
	cleanup func()
}

// materialize unpacks the job's project, an archive of the project store (an upload,
// or the snapshot the API took of a path project), into a directory of the job's own,
// and returns it with a function that removes it. A worker never reads a directory
// under PROJECTS_ROOT: clients may write there, and the API read it once for the job.
func (d *Deployer) materialize(ctx context.Context, ref tasks.ProjectRef) (string, func(), error) {
	if ref.Upload == "" {
		// Queued by an API of a release that did not snapshot path projects.
		return "", nil, userErrorf("the job names the directory %q, which workers no longer read: submit it again, and the API stores a snapshot of it with the job", ref.Path)
	}
	archive, err := d.Uploads.Get(ctx, ref.Upload)
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
		return "", nil, jobs.AsRequestError(err)
	}
	return dir, cleanup, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	return clip(s[strings.LastIndexByte(s, '\n')+1:], maxQuoted)
}

// maxQuoted bounds what an error quotes of a command's output: a project prints
// what it likes, on one line if it likes.
const maxQuoted = 300

// clip cuts s to n bytes, on a character boundary, saying so.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
