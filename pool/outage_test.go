package pool

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/deployer-dev/deployer/internal/testenv"
	"github.com/deployer-dev/deployer/tasks"
)

// A Redis outage long enough for every lease to lapse: right after Redis returns,
// no worker takes another's running job container for an orphan, and the owner's
// lease is back by itself; a dead worker's container is still removed once the
// grace has passed.
func TestLeasesLapsedInAnOutageAreNotOrphans(t *testing.T) {
	t.Parallel()
	instance := testenv.Instance("pool")
	eng := testenv.RequireEngine(t, instance)
	t.Cleanup(func() { _ = testenv.Cleanup(instance) })
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	r := &rig{log: logFor(t), eng: eng, rdb: rdb, ns: tasks.Namespace{Instance: instance}}
	ctx := context.Background()

	owner, other, dead := r.pool("w1", true), r.pool("w2", true), r.pool("w3", true)
	other.orphanAfter = 0
	running, err := owner.Lease(ctx, r.spec(), "1")
	if err != nil {
		t.Fatal(err)
	}
	defer running.Release(false)
	orphan, err := dead.Lease(ctx, r.spec(), "2")
	if err != nil {
		t.Fatal(err)
	}
	// Both live workers renew (quickly, for the test); the dead one does not.
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, p := range []*Pool{owner, other} {
		rn := newRenewer(renewerParams{pool: p, interval: 100 * time.Millisecond, retry: 10 * time.Millisecond})
		rn.start(&wg)
		defer rn.shutdown()
	}

	mr.Close()
	waitUntil(t, "both workers saw the outage", func() bool {
		return owner.redisFailed.Load() != 0 && other.redisFailed.Load() != 0
	})
	mr.FastForward(leaseTTL + time.Second)
	if err := mr.Restart(); err != nil {
		t.Fatal(err)
	}
	if mr.Exists(owner.leaseKey(running.ID)) {
		t.Fatal("the lease did not lapse in the outage")
	}
	removed, err := other.removeOrphans(ctx)
	if err != nil || len(removed) != 0 {
		t.Fatalf("right after the outage another worker removed %v (%v)", removed, err)
	}
	waitUntil(t, "the owner's lease is back", func() bool { return mr.Exists(owner.leaseKey(running.ID)) })

	// Once the grace has passed, lapsed leases mean dead owners again.
	other.redisFailed.Store(time.Now().Add(-orphanGrace).UnixNano())
	removed, err = other.removeOrphans(ctx)
	if err != nil {
		t.Fatal(err)
	}
	left := map[string]bool{}
	for _, c := range r.containers(t) {
		left[c.ID] = true
	}
	if len(removed) != 1 || left[orphan.ID] || !left[running.ID] {
		t.Errorf("after the grace another worker removed %v: the dead worker's container is there %t (want false), the running job's %t (want true)",
			removed, left[orphan.ID], left[running.ID])
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30 s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
