package pool

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/deployer-dev/deployer/engine"
	"github.com/deployer-dev/deployer/engine/docker"
	"github.com/deployer-dev/deployer/internal/testenv"
	"github.com/deployer-dev/deployer/tasks"
)

// testLog writes the pool's log, debug lines too, to the test's: shown when it
// fails. A reset still running when the test ends logs nowhere.
type testLog struct {
	t    testing.TB
	mu   sync.Mutex
	done bool
}

func (w *testLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func logFor(t testing.TB) *slog.Logger {
	w := &testLog{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type rig struct {
	log *slog.Logger
	eng *docker.Engine
	rdb *redis.Client
	ns  tasks.Namespace
}

func newRig(t testing.TB) *rig {
	t.Helper()
	instance := testenv.Instance("pool")
	eng := testenv.RequireEngine(t, instance)
	t.Cleanup(func() { _ = testenv.Cleanup(instance) })
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	return &rig{log: logFor(t), eng: eng, rdb: rdb, ns: tasks.Namespace{Instance: instance}}
}

func (r *rig) pool(worker string, enabled bool) *Pool {
	return New(r.eng, r.rdb, r.ns, r.config(worker, enabled), r.log)
}

// lease leases a container of the rig's spec for job.
func (r *rig) lease(t testing.TB, p *Pool, job string) *Lease {
	t.Helper()
	l, err := p.Lease(context.Background(), r.spec(), job)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// config is a pool's usual configuration in these tests.
func (r *rig) config(worker string, enabled bool) Config {
	return Config{Enabled: enabled, MaxIdlePerKey: 2, MaxContainers: 4, IdleTimeout: time.Hour, MaxJobsPerContainer: 10, WorkerID: worker}
}

// spec is a job container like the deployment's, on the base image.
func (r *rig) spec() engine.ContainerSpec {
	return engine.ContainerSpec{
		Image:   testenv.BaseImage,
		Cmd:     []string{"sleep", "infinity"},
		User:    "10001:10001",
		Labels:  r.eng.Labels(engine.RoleJob, map[string]string{engine.LabelNetwork: "local"}),
		Tmpfs:   map[string]string{"/work": "size=64m,uid=10001,gid=10001,mode=0700", "/tmp": "size=64m,uid=10001,gid=10001,mode=0700"},
		Network: "none",
		Memory:  256 << 20,
		Pids:    128,
		Init:    true,
	}
}

func (r *rig) sh(t testing.TB, id, script string) (string, int) {
	t.Helper()
	var out bytes.Buffer
	code, err := r.eng.Exec(context.Background(), id, engine.ExecSpec{Cmd: []string{"sh", "-c", script}, Stdout: &out, Stderr: &out})
	if err != nil {
		t.Fatal(err)
	}
	return out.String(), code
}

// waitIdle waits for the background reset to put a container back.
func waitIdle(t testing.TB, p *Pool, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		idle := 0
		for _, k := range p.Snapshot().Keys {
			idle += k.Idle
		}
		if idle == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pool has %d idle containers, want %d", idle, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *rig) containers(t testing.TB) []engine.Container {
	t.Helper()
	cs, err := r.eng.ListContainers(context.Background(), map[string]string{engine.LabelRole: engine.RoleJob})
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// A job that leaves files and processes behind does not affect the next job.
func TestReusedContainerComesBackClean(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	p := r.pool("w1", true)
	ctx := context.Background()
	first := r.lease(t, p, "job-1")
	if first.Reused {
		t.Error("a new container reported as reused")
	}
	// What a hostile job could leave: files everywhere it can write, a locked
	// directory, daemons in the background (one detached from its parent).
	_, code := r.sh(t, first.ID, `
		echo secret > /work/key; mkdir -p /work/d/e && echo x > /work/d/e/f && chmod 000 /work/d
		echo planted > /tmp/.foundry-config; echo planted > /dev/shm/mark
		nohup sleep 1000 >/dev/null 2>&1 &
		sh -c 'sleep 1001 & exit 0'
		exit 0`)
	if code != 0 {
		t.Fatalf("planting failed: %d", code)
	}
	// A process of another user is the worker's own (a deployment's relay): the
	// reset leaves it.
	if code, err := r.eng.Exec(ctx, first.ID, engine.ExecSpec{Cmd: []string{"sh", "-c", "nohup sleep 1002 >/dev/null 2>&1 &"}, User: "10002:10002"}); err != nil || code != 0 {
		t.Fatalf("starting the worker's process: %d %v", code, err)
	}
	// Which the job cannot end.
	if out, code := r.sh(t, first.ID, `for d in /proc/[0-9]*; do
		case "$(tr '\0' ' ' < $d/cmdline 2>/dev/null)" in "sleep 1002 "*) kill -9 ${d#/proc/} && echo killed ;; esac
	done; exit 0`); code != 0 || strings.Contains(out, "killed") {
		t.Fatalf("the job ended the worker's process: %d %s", code, out)
	}
	if out, _ := r.sh(t, first.ID, "ps -eo comm= 2>/dev/null || ls /proc | grep -c '^[0-9]'"); out == "" {
		t.Fatal("cannot see processes")
	}
	first.Release(true)
	waitIdle(t, p, 1)

	second := r.lease(t, p, "job-2")
	if !second.Reused || second.ID != first.ID {
		t.Fatalf("second lease: reused %t, container %s (first %s)", second.Reused, second.ID, first.ID)
	}
	out, _ := r.sh(t, second.ID, `find /work /tmp /dev/shm -mindepth 1; for d in /proc/[0-9]*; do cat $d/cmdline | tr '\0' ' '; echo; done`)
	for _, leftover := range []string{"/work/key", "/work/d", "/tmp/.foundry-config", "/dev/shm/mark", "sleep 1000", "sleep 1001"} {
		if strings.Contains(out, leftover) {
			t.Errorf("the next job sees %q:\n%s", leftover, out)
		}
	}
	if !strings.Contains(out, "sleep infinity") || !strings.Contains(out, "sleep 1002") {
		t.Errorf("the container's own process, or the worker's, is gone:\n%s", out)
	}
	second.Release(true)
	waitIdle(t, p, 1)
	if s := p.Snapshot(); s.Hits != 1 || s.Misses != 1 || s.Total != 1 {
		t.Errorf("snapshot %+v", s)
	}
}

func TestInterruptedJobDestroysItsContainer(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	p := r.pool("w1", true)
	l, err := p.Lease(context.Background(), r.spec(), "job-1")
	if err != nil {
		t.Fatal(err)
	}
	l.Release(false)
	if cs := r.containers(t); len(cs) != 0 {
		t.Errorf("an interrupted job's container remains: %v", cs)
	}
	if s := p.Snapshot(); s.Total != 0 {
		t.Errorf("pool still counts it: %+v", s)
	}
}

func TestReuseDisabledGivesFreshContainersAndKeepsNone(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	p := r.pool("w1", false)
	a := r.lease(t, p, "job-1")
	a.Release(true)
	b := r.lease(t, p, "job-2")
	b.Release(true)
	if a.ID == b.ID || b.Reused {
		t.Errorf("reuse disabled, yet the second job got %s (first %s), reused %t", b.ID, a.ID, b.Reused)
	}
	if cs := r.containers(t); len(cs) != 0 {
		t.Errorf("containers remain with reuse disabled: %d", len(cs))
	}
}

func TestPoolBoundsAndKeys(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	p := New(r.eng, r.rdb, r.ns, Config{Enabled: true, MaxIdlePerKey: 1, MaxContainers: 2, WorkerID: "w1"}, r.log)
	ctx := context.Background()
	other := r.spec()
	other.Memory = 512 << 20
	if Key(other) == Key(r.spec()) {
		t.Fatal("different limits, same pool key")
	}
	env := r.spec()
	env.Env = []string{"A=1"}
	env2 := r.spec()
	env2.Env = []string{"A=2"}
	if Key(env) != Key(env2) {
		t.Error("the pool key depends on environment values, not just names")
	}
	a, _ := p.Lease(ctx, r.spec(), "1")
	b, _ := p.Lease(ctx, r.spec(), "2")
	if a == nil || b == nil {
		t.Fatal("leases failed")
	}
	// The pool is full: a third lease waits until one is released.
	got := make(chan *Lease, 1)
	go func() {
		l, err := p.Lease(ctx, r.spec(), "3")
		if err != nil {
			t.Error(err)
		}
		got <- l
	}()
	select {
	case <-got:
		t.Fatal("a lease beyond the limit did not wait")
	case <-time.After(300 * time.Millisecond):
	}
	a.Release(true)
	c := <-got
	if c.ID != a.ID {
		t.Errorf("the waiting lease got %s, want the released %s", c.ID, a.ID)
	}
	// Two idle of one key, with room for one: one is removed.
	b.Release(true)
	c.Release(true)
	p.resets.Wait()
	if n := len(r.containers(t)); n != 1 || p.Snapshot().Total != 1 {
		t.Errorf("%d containers (pool counts %d), want the one idle", n, p.Snapshot().Total)
	}
}

// A full pool makes room for a job of another kind by evicting an idle container.
func TestFullPoolEvictsIdleOfAnotherKey(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	p := New(r.eng, r.rdb, r.ns, Config{Enabled: true, MaxIdlePerKey: 2, MaxContainers: 2, WorkerID: "w1"}, r.log)
	ctx := context.Background()
	a := r.lease(t, p, "1")
	b := r.lease(t, p, "2")
	a.Release(true)
	b.Release(true)
	waitIdle(t, p, 2)
	other := r.spec()
	other.Memory = 512 << 20
	d, err := p.Lease(ctx, other, "3")
	if err != nil {
		t.Fatal(err)
	}
	if d.Reused {
		t.Error("a container of another key was handed out")
	}
	ids := map[string]bool{}
	for _, c := range r.containers(t) {
		ids[c.ID] = true
	}
	if len(ids) != 2 || !ids[d.ID] || (ids[a.ID] && ids[b.ID]) {
		t.Errorf("after eviction: %v (a %s, b %s, new %s)", ids, a.ID[:12], b.ID[:12], d.ID[:12])
	}
	d.Release(false)
}

// A worker restarted with the same id adopts its idle containers and removes the one
// its killed job ran in; a container another live worker leases is left alone, and
// one no live worker leases is removed.
func TestReconcile(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	ctx := context.Background()
	before := r.pool("w1", true)
	idle, err := before.Lease(ctx, r.spec(), "1")
	if err != nil {
		t.Fatal(err)
	}
	busy, err := before.Lease(ctx, r.spec(), "2")
	if err != nil {
		t.Fatal(err)
	}
	idle.Release(true)
	waitIdle(t, before, 1)
	// Another live worker's container, and a dead worker's.
	live := r.pool("w2", true)
	theirs, err := live.Lease(ctx, r.spec(), "3")
	if err != nil {
		t.Fatal(err)
	}
	dead := r.pool("w3", true)
	orphan, err := dead.Lease(ctx, r.spec(), "4")
	if err != nil {
		t.Fatal(err)
	}
	dead.dropLease(ctx, orphan.ID) // its lease lapsed

	// w1 dies (its memory is gone) and starts again.
	after := r.pool("w1", true)
	after.orphanAfter = 0
	if err := after.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, c := range r.containers(t) {
		ids[c.ID] = true
	}
	if !ids[idle.ID] || ids[busy.ID] || !ids[theirs.ID] || ids[orphan.ID] {
		t.Errorf("after reconcile: idle kept %t (want true), busy kept %t (false), other worker's kept %t (true), orphan kept %t (false)",
			ids[idle.ID], ids[busy.ID], ids[theirs.ID], ids[orphan.ID])
	}
	again, err := after.Lease(ctx, r.spec(), "5")
	if err != nil {
		t.Fatal(err)
	}
	if !again.Reused || again.ID != idle.ID {
		t.Errorf("the adopted container was not leased: %+v", again)
	}
	again.Release(false)
	theirs.Release(false)
}

func TestCleanupLeavesRunningJobsAlone(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	ctx := context.Background()
	p := r.pool("w1", true)
	running := r.lease(t, p, "1")
	idle := r.lease(t, p, "2")
	idle.Release(true)
	waitIdle(t, p, 1)
	// An exited container of ours.
	exited, err := r.eng.CreateContainer(ctx, engine.ContainerSpec{Image: testenv.BaseImage, Cmd: []string{"true"},
		Labels: r.eng.Labels(engine.RoleJob, nil), Network: "none"})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, _ := r.eng.InspectContainer(ctx, exited)
		if !c.Running || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	rep := p.Cleanup(ctx)
	if len(rep.Idle) != 1 || len(rep.Exited) != 1 || len(rep.Errors) != 0 {
		t.Errorf("cleanup %+v", rep)
	}
	if c, err := r.eng.InspectContainer(ctx, running.ID); err != nil || !c.Running {
		t.Errorf("cleanup stopped a running job: %v", err)
	}
	running.Release(false)
}

// A job that follows another at once waits for the container's reset rather than
// paying for a new container.
func TestBackToBackJobsShareTheContainer(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	p := r.pool("w1", true)
	p.resetWait = time.Minute
	first := r.lease(t, p, "1")
	first.Release(true)
	second := r.lease(t, p, "2")
	if !second.Reused || second.ID != first.ID {
		t.Errorf("the next job got %s (reused %t), not the container being reset %s", second.ID[:12], second.Reused, first.ID[:12])
	}
	second.Release(false)
}

// Cleanup right after a job takes the container being reset too: the job is over, and
// the user who asked for a cleanup expects it gone.
func TestCleanupTakesContainersBeingReset(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	p := r.pool("w1", true)
	ctx := context.Background()
	l := r.lease(t, p, "1")
	l.Release(true)
	rep := p.Cleanup(ctx)
	if len(rep.Idle) != 1 || len(rep.Errors) != 0 {
		t.Errorf("cleanup right after a job: %+v", rep)
	}
	if cs := r.containers(t); len(cs) != 0 {
		t.Errorf("job containers left after cleanup: %d", len(cs))
	}
	if s := p.Snapshot(); s.Total != 0 {
		t.Errorf("pool still counts %d containers", s.Total)
	}
}

// With spares, the second job of a key starts a second container; jobs after it
// take turns between the two, each finding one idle, not one being reset. A key used
// once gets none.
func TestSpareContainersTakeTurns(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	cfg := r.config("w1", true)
	cfg.Spare = true
	p := New(r.eng, r.rdb, r.ns, cfg, r.log)
	p.resetWait = time.Minute
	ctx := context.Background()
	first := r.lease(t, p, "1")
	first.Release(true)
	waitIdle(t, p, 1)
	if s := p.Snapshot(); s.Total != 1 {
		t.Fatalf("a key used once has %d containers", s.Total)
	}

	second := r.lease(t, p, "2")
	// The spare comes up while the second job runs.
	waitIdle(t, p, 1)
	second.Release(true)
	third := r.lease(t, p, "3")
	if third.ID == second.ID || !third.Reused {
		t.Fatalf("the third job got %s (reused %t), not the spare: the second's container was being reset", third.ID[:12], third.Reused)
	}
	third.Release(true)
	if err := p.waitResets(ctx); err != nil {
		t.Fatal(err)
	}
	if s := p.Snapshot(); s.Total != 2 || s.Misses != 1 {
		t.Errorf("snapshot %+v: want two containers, one made for a job", s)
	}
}
