// Package pool keeps job containers warm between jobs. A job leases an idle container
// of its pool key (everything that makes two containers interchangeable), runs in it,
// and gives it back; the container returns to the pool only after a verified reset
// (no process of the job left, its writable places empty). A container that failed,
// timed out or was killed for memory is destroyed instead.
//
// Each worker owns the containers it created. A lease in Redis, renewed while the
// worker lives, tells every other worker on the engine to leave them alone; once it
// lapses, the containers are orphans that any worker removes.
package pool

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/deployer-dev/deployer/engine"
	"github.com/deployer-dev/deployer/tasks"
)

// Config bounds a worker's pool.
type Config struct {
	// Enabled false gives every job a fresh container, removed when the job ends.
	Enabled             bool
	MaxIdlePerKey       int
	MaxContainers       int
	IdleTimeout         time.Duration
	MaxJobsPerContainer int
	WorkerID            string
	// Warm, when set, readies each container that comes back idle for its next
	// job, off the job's clock.
	Warm Warmer
	// Spare keeps a second container ready for a key whose jobs come one after
	// another (see Pool.spare).
	Spare bool
}

// Warmer readies an idle container for its next job: it starts what every job
// starts first (a deployment's relay and agent), so that the job finds it running.
// It runs after the container's reset; ctx bounds the readying only, not the life of
// what it starts. kept is what the last job handed back (Lease.Keep), or nil: the
// Warmer owns it, to use again or close. What it returns goes with the container to
// its next lease (Lease.TakeWarm), or is closed when the container goes without one.
type Warmer func(ctx context.Context, containerID string, kept io.Closer) (io.Closer, error)

// running is what a Warmer's result may say: that what it started in the container
// still runs, so the container does.
type running interface {
	Running() bool
}

// defaultResetWait bounds how long a lease waits for a container of its key to
// finish its reset before making a new one.
const defaultResetWait = 2 * time.Second

// LabelPoolKey is the label holding a pooled container's pool key.
const LabelPoolKey = "io.deployer.pool-key"

// Engine is what the pool needs of a Docker engine (engine/docker's).
type Engine interface {
	ID() string
	Instance() string
	CreateContainer(ctx context.Context, spec engine.ContainerSpec) (string, error)
	InspectContainer(ctx context.Context, ref string) (engine.Container, error)
	ListContainers(ctx context.Context, match map[string]string) ([]engine.Container, error)
	RemoveContainer(ctx context.Context, ref string) error
	Exec(ctx context.Context, containerID string, spec engine.ExecSpec) (int, error)
}

// member is one container of the pool.
type member struct {
	id   string
	name string
	key  string
	// mainPID is the container's own idle process (PID 1's child), which a reset
	// keeps; every other process belongs to a job.
	mainPID int
	user    string
	// lease is the value of the container's lease, written again on renewal.
	lease    string
	jobs     int
	created  time.Time
	lastUsed time.Time
	// warm is what the Warmer readied for the next job, kept what the last job
	// handed back for the Warmer (both guarded by the pool's mu).
	warm, kept io.Closer
}

// Pool is a worker's job containers on one engine.
type Pool struct {
	eng Engine
	rdb redis.UniversalClient
	ns  tasks.Namespace
	cfg Config
	log *slog.Logger

	mu    sync.Mutex
	idle  map[string][]*member
	busy  map[string]*member
	total int
	// resetting counts, per key, containers on their way back to idle; inReset
	// counts them all, and settled is closed whenever it drops to zero.
	resetting map[string]int
	inReset   int
	settled   chan struct{}
	// freed wakes leases waiting for room.
	freed chan struct{}

	hits, misses atomic.Int64
	resets       sync.WaitGroup
	// orphanAfter is how old a container without a lease must be to count as an
	// orphan (tests shorten it).
	orphanAfter time.Duration
	// resetWait is defaultResetWait (tests lengthen it, so that a slow machine's
	// reset does not change what they check).
	resetWait time.Duration
	// redisFailed is when (unix nanoseconds) the pool last found Redis out of
	// reach: leases that lapsed in an outage are not orphans until their owners
	// had time to write them again.
	redisFailed atomic.Int64
}

// New returns an empty pool.
func New(eng Engine, rdb redis.UniversalClient, ns tasks.Namespace, cfg Config, log *slog.Logger) *Pool {
	if cfg.MaxContainers <= 0 {
		cfg.MaxContainers = 1
	}
	return &Pool{eng: eng, rdb: rdb, ns: ns, cfg: cfg, log: log.With("component", "pool"),
		idle: map[string][]*member{}, busy: map[string]*member{}, resetting: map[string]int{},
		settled: make(chan struct{}), freed: make(chan struct{}, 1), orphanAfter: leaseTTL, resetWait: defaultResetWait}
}

// Key is the pool key of a container spec: a hash of everything that makes two
// containers interchangeable. Environment variables count by name only.
func Key(spec engine.ContainerSpec) string {
	h := sha256.New()
	fmt.Fprintf(h, "image=%s\nuser=%s\nworkdir=%s\nnetwork=%s\ninit=%t\n", spec.Image, spec.User, spec.WorkDir, spec.Network, spec.Init)
	fmt.Fprintf(h, "memory=%d\ncpus=%d\npids=%d\ncmd=%q\n", spec.Memory, spec.NanoCPUs, spec.Pids, spec.Cmd)
	for _, k := range sortedKeys(spec.Tmpfs) {
		fmt.Fprintf(h, "tmpfs %s=%s\n", k, spec.Tmpfs[k])
	}
	for _, m := range spec.Mounts {
		fmt.Fprintf(h, "mount %s %s %t\n", m.Volume, m.Target, m.ReadOnly)
	}
	var names []string
	for _, e := range spec.Env {
		name, _, _ := strings.Cut(e, "=")
		names = append(names, name)
	}
	sort.Strings(names)
	fmt.Fprintf(h, "env %s\n", strings.Join(names, ","))
	for _, l := range []string{engine.LabelFramework, engine.LabelNetwork, engine.LabelRole} {
		fmt.Fprintf(h, "label %s=%s\n", l, spec.Labels[l])
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Lease is a container held by one job.
type Lease struct {
	p *Pool
	m *member
	// ID is the container's id.
	ID string
	// Reused says the container was waiting in the pool: it ran an earlier job, or
	// came up as a spare.
	Reused bool
	once   sync.Once
	// warm is what the Warmer readied, until the job takes it.
	warmMu sync.Mutex
	warm   io.Closer
}

// TakeWarm hands the job what the pool's Warmer readied in the container, or nil:
// the job owns it then, and closes it.
func (l *Lease) TakeWarm() io.Closer {
	l.warmMu.Lock()
	defer l.warmMu.Unlock()
	w := l.warm
	l.warm = nil
	return w
}

// Keep hands back what the job leaves running in the container for the next (its
// relay): the Warmer gets it after the reset. It is closed if the container goes.
func (l *Lease) Keep(w io.Closer) {
	p := l.p
	p.mu.Lock()
	old := l.m.kept
	l.m.kept = w
	p.mu.Unlock()
	if old != nil {
		_ = old.Close()
	}
}

// ErrClosed says the pool is shutting down.
var ErrClosed = errors.New("pool closed")

// Lease gives a job a container of the spec: an idle one when the pool has it, a new
// one otherwise. At the pool's size limit it evicts an idle container of another key,
// or waits for one to be freed.
func (p *Pool) Lease(ctx context.Context, spec engine.ContainerSpec, job string) (*Lease, error) {
	key := Key(spec)
	// A container of the key being reset is back in about a tenth of a second;
	// a new one takes several times that. Wait for it, a little.
	waitReset := time.Now().Add(p.resetWait)
	for {
		p.mu.Lock()
		if list := p.idle[key]; p.cfg.Enabled && len(list) > 0 {
			m := list[len(list)-1]
			p.idle[key] = list[:len(list)-1]
			p.busy[m.id] = m
			warm := m.warm
			p.mu.Unlock()
			// A container that died while idle is not handed out. What the Warmer
			// started there answers without a round trip to the engine.
			if r, ok := warm.(running); !ok || !r.Running() {
				if c, err := p.eng.InspectContainer(ctx, m.id); err != nil || !c.Running {
					p.destroy(m, "dead while idle")
					continue
				}
			}
			p.mu.Lock()
			m.warm = nil
			p.mu.Unlock()
			p.hits.Add(1)
			p.setLease(ctx, m, leaseBusy, job)
			p.spare(spec, key)
			return &Lease{p: p, m: m, ID: m.id, Reused: true, warm: warm}, nil
		}
		if p.cfg.Enabled && p.resetting[key] > 0 && time.Now().Before(waitReset) {
			p.mu.Unlock()
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-p.freed:
			case <-time.After(20 * time.Millisecond):
			}
			continue
		}
		if p.total < p.cfg.MaxContainers {
			p.total++
			p.mu.Unlock()
			m, err := p.create(ctx, spec, key, job)
			if err != nil {
				p.mu.Lock()
				p.total--
				p.mu.Unlock()
				p.signal()
				return nil, err
			}
			p.misses.Add(1)
			return &Lease{p: p, m: m, ID: m.id}, nil
		}
		victim := p.evictableLocked(key)
		p.mu.Unlock()
		if victim != nil {
			p.destroy(victim, "making room for another kind of container")
			continue
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for a container (all %d busy): %w", p.cfg.MaxContainers, ctx.Err())
		case <-p.freed:
		case <-time.After(time.Second):
		}
	}
}

// evictableLocked takes the least recently used idle container of another key.
func (p *Pool) evictableLocked(except string) *member {
	var victim *member
	for key, list := range p.idle {
		if key == except || len(list) == 0 {
			continue
		}
		if victim == nil || list[0].lastUsed.Before(victim.lastUsed) {
			victim = list[0]
		}
	}
	if victim != nil {
		p.removeIdleLocked(victim)
		p.busy[victim.id] = victim
	}
	return victim
}

func (p *Pool) removeIdleLocked(m *member) {
	list := p.idle[m.key]
	for i, x := range list {
		if x == m {
			p.idle[m.key] = append(list[:i:i], list[i+1:]...)
			return
		}
	}
}

func (p *Pool) signal() {
	select {
	case p.freed <- struct{}{}:
	default:
	}
}

// create starts a container for the pool and records its lease.
func (p *Pool) create(ctx context.Context, spec engine.ContainerSpec, key, job string) (*member, error) {
	spec.Name = "deployer-" + p.eng.Instance() + "-job-" + randomSuffix()
	labels := map[string]string{}
	for k, v := range spec.Labels {
		labels[k] = v
	}
	labels[LabelPoolKey] = key
	labels[engine.LabelWorker] = p.cfg.WorkerID
	spec.Labels = labels
	id, err := p.eng.CreateContainer(ctx, spec)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	m := &member{id: id, name: spec.Name, key: key, user: spec.User, created: now, lastUsed: now}
	p.mu.Lock()
	p.busy[id] = m
	p.mu.Unlock()
	p.setLease(ctx, m, leaseBusy, job)
	if m.mainPID, err = p.mainPID(ctx, m); err != nil {
		// Removed here, not through destroy: the caller gives back its count.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = p.eng.RemoveContainer(rctx, id)
		p.dropLease(rctx, id)
		p.mu.Lock()
		delete(p.busy, id)
		p.mu.Unlock()
		return nil, err
	}
	return m, nil
}

func randomSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Release gives the container back. ok says the job ended normally (completed, or
// failed on the user's error); anything else (a timeout, a cancel, an engine error)
// destroys the container. The reset runs in the background: the job does not wait.
func (l *Lease) Release(ok bool) {
	l.once.Do(func() {
		if w := l.TakeWarm(); w != nil {
			_ = w.Close()
		}
		p, m := l.p, l.m
		m.jobs++
		m.lastUsed = time.Now()
		switch {
		case !ok:
			p.destroy(m, "the job did not end normally")
		case !p.cfg.Enabled:
			p.destroy(m, "reuse disabled")
		case p.cfg.MaxJobsPerContainer > 0 && m.jobs >= p.cfg.MaxJobsPerContainer:
			p.destroy(m, "ran its share of jobs")
		default:
			p.mu.Lock()
			p.comingLocked(m.key)
			p.mu.Unlock()
			go func() {
				defer p.resets.Done()
				defer p.came(m.key)
				p.giveBack(m)
			}()
		}
	})
}

// comingLocked counts a container on its way to idle (a reset, a spare); p.mu is
// held. Leases of its key wait a little for it; came counts it in.
func (p *Pool) comingLocked(key string) {
	p.resets.Add(1)
	p.resetting[key]++
	p.inReset++
}

func (p *Pool) came(key string) {
	p.mu.Lock()
	p.resetting[key]--
	if p.inReset--; p.inReset == 0 {
		close(p.settled)
		p.settled = make(chan struct{})
	}
	p.mu.Unlock()
	p.signal()
}

// spare starts a second container of a key whose only one a job just took, when
// the pool has room: a job that follows at once takes it instead of waiting for the
// first one's reset, and the two take turns. Nothing is made for a key used once.
func (p *Pool) spare(spec engine.ContainerSpec, key string) {
	p.mu.Lock()
	if !p.cfg.Spare || p.cfg.MaxIdlePerKey < 2 || len(p.idle[key]) > 0 || p.resetting[key] > 0 || p.total >= p.cfg.MaxContainers {
		p.mu.Unlock()
		return
	}
	p.total++
	p.comingLocked(key)
	p.mu.Unlock()
	go func() {
		defer p.resets.Done()
		defer p.came(key)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		m, err := p.create(ctx, spec, key, "")
		if err != nil {
			p.mu.Lock()
			p.total--
			p.mu.Unlock()
			p.log.Debug("could not start a spare container", "error", err)
			return
		}
		p.settle(ctx, m)
	}()
}

// giveBack resets a container and puts it back in the idle pool.
func (p *Pool) giveBack(m *member) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.reset(ctx, m); err != nil {
		p.destroy(m, "reset failed: "+err.Error())
		return
	}
	if c, err := p.eng.InspectContainer(ctx, m.id); err != nil || !c.Running || c.OOMKilled {
		p.destroy(m, "unhealthy after the job")
		return
	}
	p.settle(ctx, m)
}

// settle readies a clean container for its next job and makes it idle, unless its
// key has enough idle ones.
func (p *Pool) settle(ctx context.Context, m *member) {
	p.mu.Lock()
	full := len(p.idle[m.key]) >= p.cfg.MaxIdlePerKey
	p.mu.Unlock()
	if full {
		p.destroy(m, "enough idle containers of its kind")
		return
	}
	p.mu.Lock()
	kept := m.kept
	m.kept = nil
	p.mu.Unlock()
	if p.cfg.Warm == nil && kept != nil {
		_ = kept.Close()
	}
	if p.cfg.Warm != nil {
		// Without it the job starts its own: a warm-up that fails costs nothing else.
		if w, err := p.cfg.Warm(ctx, m.id, kept); err != nil {
			p.log.Debug("could not ready an idle container", "container", m.name, "error", err)
		} else {
			p.mu.Lock()
			m.warm = w
			p.mu.Unlock()
		}
	}
	p.mu.Lock()
	delete(p.busy, m.id)
	p.idle[m.key] = append(p.idle[m.key], m)
	p.mu.Unlock()
	p.setLease(ctx, m, leaseIdle, "")
	p.signal()
}

// waitResets waits until no container is on its way back to idle, or ctx ends.
func (p *Pool) waitResets(ctx context.Context) error {
	p.mu.Lock()
	n, settled := p.inReset, p.settled
	p.mu.Unlock()
	if n == 0 {
		return nil
	}
	select {
	case <-settled:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for %d container resets: %w", n, ctx.Err())
	}
}

// destroy removes a container of the pool, whatever its state.
func (p *Pool) destroy(m *member, why string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.eng.RemoveContainer(ctx, m.id); err != nil {
		p.log.Warn("could not remove a job container", "container", m.name, "error", err)
	} else {
		p.log.Debug("removed job container", "container", m.name, "reason", why)
	}
	p.dropLease(ctx, m.id)
	p.mu.Lock()
	warm, kept := m.warm, m.kept
	m.warm, m.kept = nil, nil
	if _, ok := p.busy[m.id]; ok {
		delete(p.busy, m.id)
		p.total--
	} else {
		before := len(p.idle[m.key])
		p.removeIdleLocked(m)
		if len(p.idle[m.key]) < before {
			p.total--
		}
	}
	p.mu.Unlock()
	for _, c := range []io.Closer{warm, kept} {
		if c != nil {
			_ = c.Close()
		}
	}
	p.signal()
}

// Snapshot returns the pool's state.
func (p *Pool) Snapshot() tasks.PoolSnapshot {
	p.mu.Lock()
	defer p.mu.Unlock()
	byKey := map[string]*tasks.PoolKey{}
	get := func(k string) *tasks.PoolKey {
		if byKey[k] == nil {
			byKey[k] = &tasks.PoolKey{Key: k}
		}
		return byKey[k]
	}
	for k, list := range p.idle {
		if len(list) > 0 {
			get(k).Idle += len(list)
		}
	}
	for _, m := range p.busy {
		get(m.key).Busy++
	}
	s := tasks.PoolSnapshot{WorkerID: p.cfg.WorkerID, Enabled: p.cfg.Enabled, Total: p.total, Max: p.cfg.MaxContainers,
		Hits: p.hits.Load(), Misses: p.misses.Load(), Keys: []tasks.PoolKey{}}
	for _, k := range sortedStatKeys(byKey) {
		s.Keys = append(s.Keys, *byKey[k])
	}
	return s
}

func sortedStatKeys(m map[string]*tasks.PoolKey) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
