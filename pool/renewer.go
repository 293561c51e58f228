package pool

import (
	"context"
	"sync"
	"time"
)

// renewer is responsible for keeping this worker's container leases alive: every
// renewEvery it writes each lease again, whole, so that one lost in a Redis outage
// comes back. While Redis is out of reach it tries every renewRetry, so that leases
// that lapsed in a long outage are back within a second of its return. A worker that
// dies stops renewing, and its containers become orphans that the reaper of any
// worker removes.
type renewer struct {
	p        *Pool
	interval time.Duration
	retry    time.Duration
	done     chan struct{}
}

type renewerParams struct {
	pool     *Pool
	interval time.Duration
	retry    time.Duration
}

func newRenewer(params renewerParams) *renewer {
	return &renewer{p: params.pool, interval: params.interval, retry: min(params.retry, params.interval), done: make(chan struct{})}
}

func (r *renewer) start(wg *sync.WaitGroup) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		wait := r.interval
		for {
			t := time.NewTimer(wait)
			select {
			case <-r.done:
				t.Stop()
				return
			case <-t.C:
			}
			wait = r.interval
			if !r.exec() {
				wait = r.retry
			}
		}
	}()
}

func (r *renewer) shutdown() { close(r.done) }

// exec renews every lease once, and says whether Redis took them. With no lease to
// renew it still asks Redis whether it answers: a worker that saw an outage holds
// off taking other workers' lapsed leases for orphans.
func (r *renewer) exec() bool {
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
	pipe.Ping(ctx)
	for id, v := range values {
		if v != "" {
			pipe.Set(ctx, p.leaseKey(id), v, leaseTTL)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		p.sawRedisFail()
		p.log.Warn("could not renew container leases", "error", err)
		return false
	}
	return true
}
