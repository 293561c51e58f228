package deployment

import (
	"context"
	"io"
	"time"

	"github.com/deployer-dev/deployer/engine"
	"github.com/deployer-dev/deployer/pool"
)

// ContainerEngine is what a job needs of the engine its containers run on.
type ContainerEngine interface {
	Exec(ctx context.Context, containerID string, spec engine.ExecSpec) (int, error)
	InspectContainer(ctx context.Context, ref string) (engine.Container, error)
}

// PoolContainers leases job containers from a worker's warm pool.
type PoolContainers struct {
	Pool   *pool.Pool
	Engine ContainerEngine
}

// Lease leases a container of the spec.
func (c PoolContainers) Lease(ctx context.Context, spec engine.ContainerSpec, job string) (Container, error) {
	l, err := c.Pool.Lease(ctx, spec, job)
	if err != nil {
		return nil, err
	}
	return &leased{lease: l, eng: c.Engine}, nil
}

// leased is a container of the pool, held by one job.
type leased struct {
	lease *pool.Lease
	eng   ContainerEngine
}

func (l *leased) ID() string          { return l.lease.ID }
func (l *leased) Reused() bool        { return l.lease.Reused }
func (l *leased) Release(ok bool)     { l.lease.Release(ok) }
func (l *leased) TakeWarm() io.Closer { return l.lease.TakeWarm() }
func (l *leased) Keep(w io.Closer)    { l.lease.Keep(w) }
func (l *leased) Exec(ctx context.Context, spec engine.ExecSpec) (int, error) {
	return l.eng.Exec(ctx, l.lease.ID, spec)
}

func (l *leased) OOMKilled(ctx context.Context) bool {
	// Asked after a command was cut short, when ctx may be over already.
	ictx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	c, err := l.eng.InspectContainer(ictx, l.lease.ID)
	return err == nil && c.OOMKilled
}
