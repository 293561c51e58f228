package pool

import (
	"context"
	"sync"
	"time"
)

// renewer is responsible for keeping this worker's container leases alive: every
// renewEvery it writes each lease again, whole, so that one lost in a Redis outage
// comes back. A worker that dies stops renewing, and its containers become orphans
// that the reaper of any worker removes.
type renewer struct {
	p        *Pool
	interval time.Duration
	done     chan struct{}
}

type renewerParams struct {
	pool     *Pool
	interval time.Duration
}

func newRenewer(params renewerParams) *renewer {
	return &renewer{p: params.pool, interval: params.interval, done: make(chan struct{})}
}

func (r *renewer) start(wg *sync.WaitGroup) { every(wg, r.interval, r.done, r.exec) }

func (r *renewer) shutdown() { close(r.done) }

// exec renews every lease once.
func (r *renewer) exec() {
	p := r.p
	ctx, cancel := context.WithTimeout(context.Background(), r.interval)
	defer cancel()
	values := map[string]string{}
	p.mu.Lock()
	for id, m := range p.busy {
		values[id] = m.lease
	}
	for _, m := range p.idleLocked() {
		values[m.id] = m.lease
	}
	p.mu.Unlock()
	pipe := p.rdb.Pipeline()
	for id, v := range values {
		if v != "" {
			pipe.Set(ctx, p.leaseKey(id), v, leaseTTL)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		p.log.Warn("could not renew container leases", "error", err)
	}
}
