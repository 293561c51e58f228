package pool

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// warmth counts what a Warmer readied and what was closed.
type warmth struct {
	readied []string
	mu      sync.Mutex
	closed  atomic.Int32
}

type warmed struct {
	w  *warmth
	id string
}

func (x warmed) Close() error { x.w.closed.Add(1); return nil }

// A container that comes back idle is readied for its next job, which takes what
// was readied; what no job took is closed with the container.
func TestIdleContainersAreReadiedForTheirNextJob(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	w := &warmth{}
	p := New(r.eng, r.rdb, r.ns, Config{Enabled: true, MaxIdlePerKey: 2, MaxContainers: 4, IdleTimeout: time.Hour,
		MaxJobsPerContainer: 10, WorkerID: "w1", Warm: func(ctx context.Context, id string) (io.Closer, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.readied = append(w.readied, id)
			if len(w.readied) > 2 {
				return nil, errors.New("no more")
			}
			return warmed{w: w, id: id}, nil
		}}, r.log)
	p.resetWait = time.Minute
	ctx := context.Background()
	first, err := p.Lease(ctx, r.spec(), "1")
	if err != nil {
		t.Fatal(err)
	}
	if first.TakeWarm() != nil {
		t.Error("a new container came readied")
	}
	first.Release(true)
	second, err := p.Lease(ctx, r.spec(), "2")
	if err != nil {
		t.Fatal(err)
	}
	got, ok := second.TakeWarm().(warmed)
	if !ok || got.id != second.ID || second.TakeWarm() != nil {
		t.Fatalf("the reused container's job got %v, want what was readied in %s, once", got, second.ID[:12])
	}
	_ = got.Close()
	second.Release(true)
	// Readied again, not taken: closed when the container goes.
	if err := p.waitResets(ctx); err != nil {
		t.Fatal(err)
	}
	p.Drain()
	if n := w.closed.Load(); n != 2 {
		t.Errorf("%d readied things closed, want 2 (one by the job, one with the container)", n)
	}
}
