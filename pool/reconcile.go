package pool

import (
	"context"
	"strings"
	"time"

	"github.com/deployer-dev/deployer/engine"
	"github.com/deployer-dev/deployer/tasks"
)

// Reconcile runs when the worker starts, before it takes jobs: it adopts its own
// healthy idle containers (left by an earlier run with the same worker id), removes
// its others (a job it was running when it died), and removes orphans whose owner's
// lease lapsed. Containers that a live worker leases are left alone.
func (p *Pool) Reconcile(ctx context.Context) error {
	cs, err := p.eng.ListContainers(ctx, map[string]string{engine.LabelRole: engine.RoleJob})
	if err != nil {
		return err
	}
	for _, c := range cs {
		if c.Labels[engine.LabelWorker] != p.cfg.WorkerID {
			continue
		}
		_, state, held, err := p.lease(ctx, c.ID)
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(c.Name, "/")
		if held && state == leaseIdle && c.Running && p.adopt(ctx, c) {
			p.log.Info("adopted an idle job container", "container", name)
			continue
		}
		if err := p.eng.RemoveContainer(ctx, c.ID); err != nil {
			return err
		}
		p.log.Info("removed a job container left by an earlier run", "container", name, "state", state)
		p.dropLease(ctx, c.ID)
	}
	_, err = p.removeOrphans(ctx)
	return err
}

// adopt takes an idle container into the pool, if it has room and the container
// answers.
func (p *Pool) adopt(ctx context.Context, c engine.Container) bool {
	key := c.Labels[LabelPoolKey]
	p.mu.Lock()
	room := p.cfg.Enabled && p.total < p.cfg.MaxContainers && len(p.idle[key]) < p.cfg.MaxIdlePerKey
	p.mu.Unlock()
	if key == "" || !room {
		return false
	}
	m := &member{id: c.ID, name: strings.TrimPrefix(c.Name, "/"), key: key, user: jobUserOf(ctx, p, c.ID),
		created: c.Created, lastUsed: time.Now()}
	pid, err := p.mainPID(ctx, m)
	if err != nil || m.user == "" {
		return false
	}
	m.mainPID = pid
	p.mu.Lock()
	p.total++
	p.idle[key] = append(p.idle[key], m)
	p.mu.Unlock()
	p.setLease(ctx, m, leaseIdle, "")
	return true
}

// jobUserOf reads the user a container runs as.
func jobUserOf(ctx context.Context, p *Pool, id string) string {
	c, err := p.eng.InspectContainer(ctx, id)
	if err != nil {
		return ""
	}
	return c.User
}

// Drain removes the pool's containers when the worker stops: resets in flight
// finish first, then every idle container goes. Busy containers are their jobs' to
// release.
func (p *Pool) Drain() {
	p.resets.Wait()
	p.destroyIdle("worker stopping", func(*member) bool { return true })
}

// Cleanup removes this worker's idle containers, the engine's exited managed
// containers (of any role), and orphaned job containers. Running jobs and running
// chains are not touched. A container whose job just ended is being reset: cleanup
// waits for it and takes it too, since its job is over.
func (p *Pool) Cleanup(ctx context.Context) tasks.CleanupReport {
	rep := tasks.CleanupReport{WorkerID: p.cfg.WorkerID, EngineID: p.eng.ID(), Exited: []string{}, Orphans: []string{}}
	if err := p.waitResets(ctx); err != nil {
		rep.Errors = append(rep.Errors, err.Error())
	}
	rep.Idle = p.destroyIdle("cleanup", func(*member) bool { return true })
	cs, err := p.eng.ListContainers(ctx, nil)
	if err != nil {
		rep.Errors = append(rep.Errors, err.Error())
		return rep
	}
	for _, c := range cs {
		// A container another worker is creating right now is "created" for a moment.
		young := c.State == "created" && time.Since(c.Created) < leaseTTL
		if c.Running || c.State == "restarting" || young || p.mine(c.ID) {
			continue
		}
		if err := p.eng.RemoveContainer(ctx, c.ID); err != nil {
			rep.Errors = append(rep.Errors, err.Error())
			continue
		}
		rep.Exited = append(rep.Exited, strings.TrimPrefix(c.Name, "/"))
	}
	orphans, err := p.removeOrphans(ctx)
	if err != nil {
		rep.Errors = append(rep.Errors, err.Error())
	}
	rep.Orphans = append(rep.Orphans, orphans...)
	return rep
}
