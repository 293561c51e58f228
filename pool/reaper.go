package pool

import (
	"context"
	"sync"
	"time"
)

// reaper is responsible for removing the containers nobody will use: this worker's
// idle containers past the idle timeout, and orphans, job containers on the engine
// whose owner's lease lapsed (the owner died). The scheduler's pool sweep runs the
// same round (Sweep) on demand.
type reaper struct {
	p        *Pool
	interval time.Duration
	done     chan struct{}
}

type reaperParams struct {
	pool     *Pool
	interval time.Duration
}

func newReaper(params reaperParams) *reaper {
	return &reaper{p: params.pool, interval: params.interval, done: make(chan struct{})}
}

func (r *reaper) start(wg *sync.WaitGroup) { every(wg, r.interval, r.done, r.exec) }

func (r *reaper) shutdown() { close(r.done) }

// exec runs one round of removals.
func (r *reaper) exec() {
	ctx, cancel := context.WithTimeout(context.Background(), r.interval)
	defer cancel()
	if rep := r.p.Sweep(ctx); len(rep.Errors) > 0 {
		r.p.log.Warn("pool sweep failed", "errors", rep.Errors)
	}
}

// Start runs the pool's background duties (the renewer and the reaper); the
// function it returns stops them.
func (p *Pool) Start(wg *sync.WaitGroup) func() {
	rn := newRenewer(renewerParams{pool: p, interval: renewEvery, retry: renewRetry})
	rp := newReaper(reaperParams{pool: p, interval: reapEvery})
	rn.start(wg)
	rp.start(wg)
	return func() {
		rn.shutdown()
		rp.shutdown()
	}
}

// every runs exec every interval on a goroutine of wg until done is closed: the loop
// of each of the pool's background duties.
func every(wg *sync.WaitGroup, interval time.Duration, done <-chan struct{}, exec func()) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				exec()
			}
		}
	}()
}
