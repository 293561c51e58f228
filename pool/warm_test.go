package pool

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deployer-dev/deployer/engine"
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
	cfg := r.config("w1", true)
	cfg.Warm = func(ctx context.Context, id string, _ io.Closer) (io.Closer, error) {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.readied = append(w.readied, id)
		if len(w.readied) > 2 {
			return nil, errors.New("no more")
		}
		return warmed{w: w, id: id}, nil
	}
	p := New(r.eng, r.rdb, r.ns, cfg, r.log)
	p.resetWait = time.Minute
	ctx := context.Background()
	first := r.lease(t, p, "1")
	if first.TakeWarm() != nil {
		t.Error("a new container came readied")
	}
	first.Release(true)
	second := r.lease(t, p, "2")
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

// countingEngine counts the pool's inspects.
type countingEngine struct {
	Engine
	inspects atomic.Int32
}

func (e *countingEngine) InspectContainer(ctx context.Context, ref string) (engine.Container, error) {
	e.inspects.Add(1)
	return e.Engine.InspectContainer(ctx, ref)
}

// runningWarmth is what a Warmer readied that says whether it still runs.
type runningWarmth struct{ running *atomic.Bool }

func (w runningWarmth) Running() bool { return w.running.Load() }
func (w runningWarmth) Close() error  { return nil }

// What the Warmer started answers for an idle container: while it runs, a lease asks
// the engine nothing; once it ended, the lease asks, and a container that died while
// idle is not handed out.
func TestLeaseTrustsWhatRunsInTheContainer(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	eng := &countingEngine{Engine: r.eng}
	var running atomic.Bool
	running.Store(true)
	cfg := r.config("w1", true)
	cfg.Warm = func(context.Context, string, io.Closer) (io.Closer, error) {
		return runningWarmth{&running}, nil
	}
	p := New(eng, r.rdb, r.ns, cfg, r.log)
	p.resetWait = time.Minute
	ctx := context.Background()
	first := r.lease(t, p, "1")
	first.Release(true)
	waitIdle(t, p, 1)
	before := eng.inspects.Load()
	second := r.lease(t, p, "2")
	if second.ID != first.ID || eng.inspects.Load() != before {
		t.Fatalf("lease: container %s (first %s), %d inspects, want the same one and none", second.ID[:12], first.ID[:12], eng.inspects.Load()-before)
	}
	second.Release(true)
	waitIdle(t, p, 1)

	// The container dies while idle, and what ran in it with it.
	if _, err := r.eng.Exec(ctx, second.ID, engine.ExecSpec{Cmd: []string{"sh", "-c", "kill -9 -1"}, User: "10001:10001"}); err != nil {
		t.Logf("kill: %v", err)
	}
	running.Store(false)
	deadline := time.Now().Add(time.Minute)
	for {
		c, err := r.eng.InspectContainer(ctx, second.ID)
		if err != nil || !c.Running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the container did not stop")
		}
		time.Sleep(50 * time.Millisecond)
	}
	third := r.lease(t, p, "3")
	defer third.Release(false)
	if third.ID == second.ID || third.Reused {
		t.Fatal("a container that died while idle was handed out")
	}
}

// What a job keeps in its container goes to the Warmer once the container is reset,
// and is closed when the container goes instead.
func TestWhatAJobKeepsGoesToTheWarmer(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	w := &warmth{}
	var (
		mu   sync.Mutex
		gave []io.Closer
	)
	cfg := r.config("w1", true)
	cfg.Warm = func(_ context.Context, id string, kept io.Closer) (io.Closer, error) {
		mu.Lock()
		defer mu.Unlock()
		gave = append(gave, kept)
		return warmed{w: w, id: id}, nil
	}
	p := New(r.eng, r.rdb, r.ns, cfg, r.log)
	p.resetWait = time.Minute
	first := r.lease(t, p, "1")
	kept := warmed{w: w, id: "kept by job 1"}
	first.Keep(kept)
	first.Release(true)
	waitIdle(t, p, 1)
	mu.Lock()
	if len(gave) != 1 || gave[0] != kept {
		t.Fatalf("the Warmer got %v, want what job 1 kept", gave)
	}
	mu.Unlock()
	if w.closed.Load() != 0 {
		t.Fatal("what the job kept was closed")
	}

	second := r.lease(t, p, "2")
	second.Keep(warmed{w: w, id: "kept by job 2"})
	second.Release(false)
	// The container goes: what the Warmer readied and job 2 did not take, and what
	// job 2 kept, are closed.
	if n := w.closed.Load(); n != 2 {
		t.Fatalf("%d closed, want 2", n)
	}
}
