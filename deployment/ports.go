package deployment

import (
	"context"
	"io"
	"time"

	"github.com/deployer-dev/deployer/cache/compilecache"
	"github.com/deployer-dev/deployer/cache/imagecache"
	"github.com/deployer-dev/deployer/chains"
	"github.com/deployer-dev/deployer/engine"
	"github.com/deployer-dev/deployer/jobs"
	"github.com/deployer-dev/deployer/networks"
)

// The parts a deployment drives, each named by what the pipeline needs of it, so that
// the pipeline's steps are tested with fakes (deployment_test.go) and the real parts
// end to end.

// Images gives the runner image (the image cache).
type Images interface {
	Resolve(ctx context.Context) (imagecache.Resolved, error)
}

// Chains gives a running, answering chain of a managed network.
type Chains interface {
	Ensure(ctx context.Context, n networks.Network) (*chains.Chain, error)
}

// Containers lease job containers (the warm pool).
type Containers interface {
	Lease(ctx context.Context, spec engine.ContainerSpec, job string) (Container, error)
}

// Container is a job's leased container.
type Container interface {
	ID() string
	// Reused says the container ran an earlier job.
	Reused() bool
	// Exec runs a command in it and returns the exit code.
	Exec(ctx context.Context, spec engine.ExecSpec) (int, error)
	// OOMKilled says the kernel killed a process of it for memory.
	OOMKilled(ctx context.Context) bool
	// Release gives it back: ok false (the job was interrupted) destroys it.
	Release(ok bool)
	// TakeWarm hands over what the pool readied in it for the job (its relay and
	// agent, started while it idled), or nil; the job closes it, or Keeps it.
	TakeWarm() io.Closer
	// Keep hands back what outlives the job in the container (its relay), for the
	// container's next job; it is closed if the container goes instead.
	Keep(io.Closer)
}

// CompileCache keeps compiled artifacts between jobs (the compile cache).
type CompileCache interface {
	Enabled() bool
	// Lookup returns the artifacts of a key, as a gzip'd tar, or false.
	Lookup(ctx context.Context, key string) ([]byte, bool)
	// Save stores the artifacts of a key, read as a gzip'd tar of the layout's paths.
	Save(ctx context.Context, key string, layout compilecache.Layout, r io.Reader, took time.Duration) error
}

// Compilers is the compiler store (cache/compilers).
type Compilers interface {
	// Defaults are the versions a pragma's range is resolved against.
	Defaults() []string
	// Known lists the versions that exist.
	Known(ctx context.Context) ([]string, error)
	// Ensure makes the versions ready in the engine's volume, telling step when it
	// fetches one.
	Ensure(ctx context.Context, versions []string, step func(string)) error
	// Volume is the engine's volume of the store, mounted read-only in job containers.
	Volume() string
}

// Dependencies is the dependency cache of Hardhat projects (cache/npmdeps).
type Dependencies interface {
	// Key names the dependency set of a package.json and its lockfile.
	Key(packageJSON, lockfile []byte) string
	// Volume is the engine's volume of a set, mounted read-only in job containers.
	Volume(key string) string
	// Ensure installs the set (telling step, writing npm's output to out) and fills
	// its volume with a container of imageID; it reports whether it installed.
	Ensure(ctx context.Context, key string, packageJSON, lockfile []byte, imageID string, step func(string), out io.Writer) (bool, error)
}

// Uploads holds uploaded projects.
type Uploads interface {
	// Get returns the archive of an upload by its sha256, or projects.ErrNotFound.
	Get(ctx context.Context, sum string) ([]byte, error)
}

// Locker serializes work across workers (one sender per chain at a time).
type Locker interface {
	// LockWait waits at most wait; the returned context ends if the lock is lost.
	LockWait(ctx context.Context, key string, wait time.Duration) (context.Context, func(), error)
}

// Reporter hears of a job's progress.
type Reporter = jobs.Reporter
