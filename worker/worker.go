// Package worker runs deployments: an asynq server on the shared deployment queue and
// on a queue of its own, a heartbeat in Redis, and the handler that turns a
// task into a deployment and its outcome into the job's record.
package worker

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"

	"github.com/deployer-dev/deployer/cache/compilecache"
	"github.com/deployer-dev/deployer/cache/imagecache"
	"github.com/deployer-dev/deployer/chains"
	"github.com/deployer-dev/deployer/deployment"
	"github.com/deployer-dev/deployer/engine/docker"
	"github.com/deployer-dev/deployer/internal/fanout"
	"github.com/deployer-dev/deployer/internal/heartbeat"
	"github.com/deployer-dev/deployer/internal/redact"
	"github.com/deployer-dev/deployer/jobs"
	"github.com/deployer-dev/deployer/metrics"
	"github.com/deployer-dev/deployer/networks"
	"github.com/deployer-dev/deployer/pool"
	"github.com/deployer-dev/deployer/tasks"
)

// Config is what a worker needs of the configuration.
type Config struct {
	ID              string
	Concurrency     int
	ShutdownTimeout time.Duration
	// ImageMaxAge is how long a runner image may go unused before expiry removes it.
	ImageMaxAge time.Duration
}

// Deps are the parts a worker drives.
type Deps struct {
	Engine   *docker.Engine
	Jobs     *jobs.Store
	Beats    *heartbeat.Store
	Deployer *deployment.Deployer
	Images   *imagecache.Resolver
	Pool     *pool.Pool
	Compiles *compilecache.Store
	Chains   *chains.Supervisor
	Networks networks.Set
	Redact   *redact.Redactor
	// Metrics hears of every attempt; nil records nothing.
	Metrics *metrics.Deployments
}

// Worker is one worker process's share of the work.
type Worker struct {
	cfg Config
	ns  tasks.Namespace
	srv *asynq.Server
	// admin serves the worker's own queue apart from deployments, so that a
	// cleanup or a clear never waits for a deployment's slot.
	admin    *asynq.Server
	eng      *docker.Engine
	runner   *jobs.Runner
	beats    *heartbeat.Store
	deployer *deployment.Deployer
	images   *imagecache.Resolver
	pool     *pool.Pool
	compiles *compilecache.Store
	chains   *chains.Supervisor
	networks networks.Set
	log      *slog.Logger
	metrics  *metrics.Deployments
	// Scheduled runs are sent on to every engine or worker.
	client    *asynq.Client
	inspector *asynq.Inspector
	fanout    *fanout.Fanout

	stopping atomic.Bool
	inflight sync.WaitGroup
	active   atomic.Int64
	started  time.Time
}

// New returns a worker. It does not start until Run.
func New(cfg Config, redisOpt asynq.RedisConnOpt, ns tasks.Namespace, d Deps, log *slog.Logger) *Worker {
	w := &Worker{cfg: cfg, ns: ns, eng: d.Engine, beats: d.Beats, deployer: d.Deployer,
		images: d.Images, pool: d.Pool, compiles: d.Compiles, chains: d.Chains, networks: d.Networks, metrics: d.Metrics, log: log.With("worker_id", cfg.ID)}
	w.runner = jobs.NewRunner(d.Jobs, cfg.ID, d.Redact.String, w.log)
	w.client, w.inspector = asynq.NewClient(redisOpt), asynq.NewInspector(redisOpt)
	w.fanout = fanout.New(w.client, w.inspector, d.Beats)
	w.admin = asynq.NewServer(redisOpt, asynq.Config{
		// Maintenance runs one at a time, beside the deployments, never in their slots.
		Concurrency:       1,
		Queues:            map[string]int{ns.WorkerQueue(cfg.ID): 2, ns.MaintenanceQueue(): 1},
		TaskCheckInterval: 100 * time.Millisecond,
		Logger:            tasks.Logger(log.With("component", "asynq")),
		LogLevel:          asynq.WarnLevel,
	})
	w.srv = asynq.NewServer(redisOpt, asynq.Config{
		Concurrency: cfg.Concurrency,
		Queues: map[string]int{
			ns.DeployQueue(): 1,
		},
		ShutdownTimeout: cfg.ShutdownTimeout,
		// asynq polls queues while they are empty: its default second would be most
		// of a warm job, and even 20 ms was a twentieth of one. 200 polls a second of
		// an idle worker are little for Redis (a few per mille of a core).
		TaskCheckInterval: 5 * time.Millisecond,
		RetryDelayFunc: func(n int, _ error, _ *asynq.Task) time.Duration {
			// Retries are for our failures (engine restarting, Redis blip): soon,
			// then backing off.
			return min(time.Duration(1<<n)*2*time.Second, time.Minute)
		},
		Logger:   tasks.Logger(log.With("component", "asynq")),
		LogLevel: asynq.WarnLevel,
	})
	return w
}

// Queue is the worker's own queue.
func (w *Worker) Queue() string { return w.ns.WorkerQueue(w.cfg.ID) }

// Run serves until ctx ends, then drains: running jobs get ShutdownTimeout to finish,
// then go back to the queue, and the worker waits for their containers to be gone.
func (w *Worker) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	w.started = time.Now()
	// Containers an earlier run of this worker left are adopted or removed before
	// any job runs.
	if err := w.pool.Reconcile(ctx); err != nil {
		return fmt.Errorf("worker: reconcile containers: %w", err)
	}
	stopKeeper := w.pool.Start(&wg)
	mux := asynq.NewServeMux()
	mux.Handle(tasks.TypeDeploy, &deployHandler{w: w})
	hb := newHeartbeater(w)
	hb.start(&wg)
	stopAll := func() {
		stopKeeper()
		hb.shutdown()
		wg.Wait()
	}
	if err := w.srv.Start(mux); err != nil {
		stopAll()
		return fmt.Errorf("worker: %w", err)
	}
	if err := w.admin.Start(w.adminMux()); err != nil {
		w.srv.Shutdown()
		stopAll()
		return fmt.Errorf("worker: %w", err)
	}
	w.log.Info("worker started", "engine", w.eng.ID(), "concurrency", w.cfg.Concurrency, "queue", w.Queue())
	<-ctx.Done()
	w.log.Info("worker draining", "active", w.active.Load())
	w.stopping.Store(true)
	w.admin.Shutdown()
	w.srv.Shutdown()
	// asynq stops waiting for a handler once it requeued its task; the handler
	// still removes its container.
	done := make(chan struct{})
	go func() { w.inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		w.log.Warn("handlers still running after shutdown")
	}
	w.pool.Drain()
	stopAll()
	rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = w.beats.Remove(rctx, w.cfg.ID)
	w.client.Close()
	w.inspector.Close()
	w.log.Info("worker stopped")
	return nil
}

// DefaultID names a worker after its host and process. In a container the process
// is PID 1 on every start, so a restarted worker keeps its name and adopts its idle
// containers; on a host, set WORKER_ID for that.
func DefaultID() string {
	host, _ := os.Hostname()
	if host == "" {
		host = "worker"
	}
	return fmt.Sprintf("%s-%d", host, os.Getpid())
}
