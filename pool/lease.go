package pool

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/deployer-dev/deployer/engine"
	"github.com/deployer-dev/deployer/tasks"
)

// A lease lives leaseTTL after its owner last renewed it; owners renew every
// renewEvery, so a live worker's leases never lapse and a dead one's do.
const (
	leaseTTL   = 60 * time.Second
	renewEvery = 15 * time.Second
	// renewRetry is how soon a renewal that found Redis out of reach is tried
	// again: leases lapse during a long outage, and must be back as soon as Redis is.
	renewRetry = time.Second
	// orphanGrace is how long after a Redis outage lapsed leases are not taken for
	// orphans: their owners renew again within renewRetry.
	orphanGrace = 2 * renewEvery
	reapEvery   = 30 * time.Second
	leaseIdle   = "idle"
	leaseBusy   = "busy"
	leaseFields = 3
)

func (p *Pool) leaseKey(id string) string { return p.ns.LeaseKey(id) }

// setLease records who holds a container and in which state.
func (p *Pool) setLease(ctx context.Context, m *member, state, job string) {
	v := p.cfg.WorkerID + "|" + state + "|" + job
	p.mu.Lock()
	m.lease = v
	p.mu.Unlock()
	if err := p.rdb.Set(ctx, p.leaseKey(m.id), v, leaseTTL).Err(); err != nil {
		p.sawRedisFail()
		p.log.Warn("could not record a container lease", "container", m.name, "error", err)
	}
}

func (p *Pool) dropLease(ctx context.Context, id string) {
	_ = p.rdb.Del(ctx, p.leaseKey(id)).Err()
}

// lease reads a container's lease: its owner and state, ok false when it lapsed.
func (p *Pool) lease(ctx context.Context, id string) (owner, state string, ok bool, err error) {
	v, err := p.rdb.Get(ctx, p.leaseKey(id)).Result()
	if errors.Is(err, redis.Nil) {
		return "", "", false, nil
	}
	if err != nil {
		return "", "", false, err
	}
	parts := strings.SplitN(v, "|", leaseFields)
	if len(parts) < 2 {
		return "", "", false, nil
	}
	return parts[0], parts[1], true, nil
}

// Sweep removes idle containers past the idle timeout and orphaned job containers.
// The keeper runs it every half minute; the scheduler's pool sweep runs it too.
func (p *Pool) Sweep(ctx context.Context) tasks.CleanupReport {
	rep := tasks.CleanupReport{WorkerID: p.cfg.WorkerID, EngineID: p.eng.ID(), Idle: p.expireIdle(time.Now()), Exited: []string{}}
	orphans, err := p.removeOrphans(ctx)
	if err != nil {
		rep.Errors = append(rep.Errors, err.Error())
	}
	rep.Orphans = append([]string{}, orphans...)
	return rep
}

// expireIdle removes idle containers unused for the idle timeout.
func (p *Pool) expireIdle(now time.Time) []string {
	return p.destroyIdle("idle too long", func(m *member) bool {
		return p.cfg.IdleTimeout > 0 && now.Sub(m.lastUsed) > p.cfg.IdleTimeout
	})
}

// idleLocked lists the idle containers; p.mu is held.
func (p *Pool) idleLocked() []*member {
	var all []*member
	for _, list := range p.idle {
		all = append(all, list...)
	}
	return all
}

// destroyIdle removes the idle containers that match and returns their names.
func (p *Pool) destroyIdle(why string, match func(*member) bool) []string {
	p.mu.Lock()
	var doomed []*member
	for _, m := range p.idleLocked() {
		if match(m) {
			doomed = append(doomed, m)
		}
	}
	p.mu.Unlock()
	names := []string{}
	for _, m := range doomed {
		p.destroy(m, why)
		names = append(names, m.name)
	}
	return names
}

// mine says whether the pool holds the container.
func (p *Pool) mine(id string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.busy[id]; ok {
		return true
	}
	for _, m := range p.idleLocked() {
		if m.id == id {
			return true
		}
	}
	return false
}

// removeOrphans removes job containers on the engine that no live worker holds:
// their lease lapsed (and they are older than a lease, so a container being created
// right now is not taken for one).
func (p *Pool) removeOrphans(ctx context.Context) ([]string, error) {
	cs, err := p.eng.ListContainers(ctx, map[string]string{engine.LabelRole: engine.RoleJob})
	if err != nil {
		return nil, err
	}
	if at := p.redisFailed.Load(); at != 0 && time.Since(time.Unix(0, at)) < orphanGrace {
		// Every worker's leases may have lapsed while Redis was out of reach; their
		// owners write them again within renewRetry of its return.
		p.log.Debug("not looking for orphaned containers so soon after a Redis outage")
		return nil, nil
	}
	var removed []string
	for _, c := range cs {
		if p.mine(c.ID) || time.Since(c.Created) < p.orphanAfter {
			continue
		}
		_, _, held, err := p.lease(ctx, c.ID)
		if err != nil {
			p.sawRedisFail()
			return removed, err
		}
		if held {
			continue
		}
		if err := p.eng.RemoveContainer(ctx, c.ID); err != nil {
			p.log.Warn("could not remove an orphaned job container", "container", c.Name, "error", err)
			continue
		}
		p.log.Info("removed an orphaned job container", "container", strings.TrimPrefix(c.Name, "/"), "owner", c.Labels[engine.LabelWorker])
		removed = append(removed, strings.TrimPrefix(c.Name, "/"))
	}
	return removed, nil
}

// sawRedisFail records that Redis was out of reach just now.
func (p *Pool) sawRedisFail() { p.redisFailed.Store(time.Now().UnixNano()) }
