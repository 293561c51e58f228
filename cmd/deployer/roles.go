package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/deployer-dev/deployer/cache/compilecache"
	"github.com/deployer-dev/deployer/cache/compilers"
	"github.com/deployer-dev/deployer/cache/imagecache"
	"github.com/deployer-dev/deployer/cache/npmdeps"
	"github.com/deployer-dev/deployer/chains"
	"github.com/deployer-dev/deployer/deployment"
	"github.com/deployer-dev/deployer/engine/docker"
	"github.com/deployer-dev/deployer/gateway"
	"github.com/deployer-dev/deployer/internal/config"
	"github.com/deployer-dev/deployer/internal/heartbeat"
	"github.com/deployer-dev/deployer/internal/localredis"
	"github.com/deployer-dev/deployer/internal/lock"
	"github.com/deployer-dev/deployer/internal/redact"
	"github.com/deployer-dev/deployer/jobs"
	"github.com/deployer-dev/deployer/metrics"
	"github.com/deployer-dev/deployer/networks"
	"github.com/deployer-dev/deployer/pool"
	"github.com/deployer-dev/deployer/producer"
	"github.com/deployer-dev/deployer/projects"
	"github.com/deployer-dev/deployer/runner"
	"github.com/deployer-dev/deployer/scheduler"
	"github.com/deployer-dev/deployer/tasks"
	"github.com/deployer-dev/deployer/worker"
)

type role int

const (
	roleAPI role = 1 << iota
	roleWorker
	roleScheduler
)

// projectTTL is how long an uploaded project is kept after its last use.
const projectTTL = 24 * time.Hour

// runRoles wires and runs the roles until ctx ends, then stops them all.
func runRoles(ctx context.Context, cfg config.Config, log *slog.Logger, roles role) error {
	conn, err := openRedis(ctx, cfg, roles, log)
	if err != nil {
		return err
	}
	// Deferred first, so run last: the roles drain into Redis before it stops.
	defer conn.close()
	redisOpt, durable := conn.asynq, conn.durable
	rdb := redis.NewClient(conn.opts)
	defer rdb.Close()
	nets, err := networks.Load(cfg.NetworksFile)
	if err != nil {
		return err
	}
	ns := tasks.Namespace{Instance: cfg.Instance}
	// One registry per process: in `deployer all` the API's /metrics shows the
	// worker's metrics too.
	reg := metrics.NewRegistry()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	run := func(name string, fn func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(ctx); err != nil {
				errs <- fmt.Errorf("%s: %w", name, err)
				cancel()
			}
		}()
	}
	if roles&roleWorker != 0 {
		w, closeWorker, err := newWorker(ctx, cfg, rdb, redisOpt, durable, ns, nets, reg, log)
		if err != nil {
			return err
		}
		defer closeWorker()
		run("worker", w.Run)
		if cfg.MetricsAddr != "" {
			ln, err := net.Listen("tcp", cfg.MetricsAddr)
			if err != nil {
				return fmt.Errorf("METRICS_ADDR: %w", err)
			}
			log.Info("worker metrics listening", "addr", ln.Addr().String())
			run("metrics", func(ctx context.Context) error { return serveMetrics(ctx, ln, reg, cfg.AdminToken) })
		}
	}
	if roles&roleAPI != 0 {
		a, err := producer.New(producer.Config{
			ProjectsRoot:    cfg.ProjectsRoot,
			MaxProjectBytes: cfg.MaxProjectBytes,
			ProjectTTL:      projectTTL,
			Limits:          projects.DefaultLimits,
			Access: producer.Access{
				APIToken:       cfg.APIToken,
				APITokens:      cfg.APITokens,
				AdminToken:     cfg.AdminToken,
				RateLimit:      cfg.RateLimit,
				RateLimitBurst: cfg.RateLimitBurst,
				TrustedProxies: cfg.TrustedProxies,
			},
			MonitoringReadOnly: cfg.MonitoringReadOnly,
			JobTimeout:         cfg.JobTimeout.D(),
			JobRetention:       cfg.JobRetention.D(),
			DurableRedis:       durable,
			NetworkSecrets:     roles&roleWorker != 0,
			JobMaxRetry:        cfg.JobMaxRetry,

			ImageCacheEnabled: cfg.ImageCacheEnabled,
			ImageCacheMaxAge:  cfg.ImageCacheMaxAge.D(),

			CompileCacheEnabled: cfg.CompileCacheEnabled,
			CompileCacheTTL:     cfg.CompileCacheTTL.D(),
			SolcVersions:        cfg.SolcVersions,

			Metrics:      reg,
			UploadBudget: int64(cfg.UploadBudgetBytes),
			LogBudget:    int64(cfg.LogBudgetBytes),
		}, rdb, redisOpt, ns, nets, log.With("component", "api"))
		if err != nil {
			return fmt.Errorf("api: %w", err)
		}
		defer a.Close()
		ln, err := net.Listen("tcp", cfg.HTTPAddr)
		if err != nil {
			return fmt.Errorf("HTTP_ADDR: %w", err)
		}
		run("api", func(ctx context.Context) error { return a.Serve(ctx, ln) })
	}
	if roles&roleScheduler != 0 {
		client := asynq.NewClient(redisOpt)
		defer client.Close()
		s := scheduler.New(client, ns, []scheduler.Entry{
			{Kind: tasks.MaintenanceImageExpiry, Spec: cfg.ScheduleImageExpiry},
			{Kind: tasks.MaintenanceCompileExpiry, Spec: cfg.ScheduleCompileExpiry},
			{Kind: tasks.MaintenancePoolSweep, Spec: cfg.SchedulePoolSweep},
		}, log.With("component", "scheduler"))
		run("scheduler", s.Run)
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

// redisConn is how the roles reach the installation's Redis.
type redisConn struct {
	opts  *redis.Options
	asynq asynq.RedisConnOpt
	// durable says the Redis keeps its state through a crash: remote networks need
	// that.
	durable bool
	// close stops the embedded Redis.
	close func()
}

// openRedis returns REDIS_URL's Redis, or, for `deployer all` without it, starts the
// embedded one in DATA_DIR.
func openRedis(ctx context.Context, cfg config.Config, roles role, log *slog.Logger) (redisConn, error) {
	if cfg.RedisURL != "" {
		aopt, err := asynq.ParseRedisURI(cfg.RedisURL)
		if err != nil {
			return redisConn{}, fmt.Errorf("REDIS_URL: %w", err)
		}
		ropt, err := redis.ParseURL(cfg.RedisURL)
		if err != nil {
			return redisConn{}, fmt.Errorf("REDIS_URL: %w", err)
		}
		return redisConn{opts: ropt, asynq: aopt, durable: true, close: func() {}}, nil
	}
	if roles != roleAPI|roleWorker|roleScheduler {
		return redisConn{}, errors.New("REDIS_URL is required (only `deployer all` embeds a Redis)")
	}
	srv, err := localredis.Open(ctx, localredis.Config{Dir: cfg.DataDir}, log.With("component", "redis"))
	if err != nil {
		return redisConn{}, fmt.Errorf("embedded redis: %w", err)
	}
	ropt := srv.Options()
	return redisConn{
		opts:    ropt,
		asynq:   asynq.RedisClientOpt{Network: ropt.Network, Addr: ropt.Addr, Password: ropt.Password},
		durable: srv.Durable(),
		close: func() {
			// The roles' context is over by now: the stop gets its own time.
			sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := srv.Close(sctx); err != nil {
				log.Error("embedded redis did not stop cleanly", "error", err)
			}
		},
	}, nil
}

// newWorker connects to this host's engine and wires a worker.
func newWorker(ctx context.Context, cfg config.Config, rdb *redis.Client, redisOpt asynq.RedisConnOpt, durable bool,
	ns tasks.Namespace, nets networks.Set, reg *prometheus.Registry, log *slog.Logger) (*worker.Worker, func(), error) {
	eng, err := docker.New(ctx, cfg.Instance)
	if err != nil {
		return nil, nil, fmt.Errorf("worker: %w", err)
	}
	def, err := runner.NewFoundry(cfg.ToolchainDir, cfg.BaseImage)
	if err != nil {
		eng.Close()
		return nil, nil, fmt.Errorf("worker: %w", err)
	}
	id := cfg.WorkerID
	if id == "" {
		id = worker.DefaultID()
	}
	log = log.With("component", "worker")
	locks := lock.New(rdb, 30*time.Second)
	images := imagecache.NewResolver(eng, def, imagecache.NewIndex(rdb, ns), locks, ns, cfg.ImageCacheEnabled, log)
	runners := map[string]deployment.Images{runner.Foundry: images}
	if hdef, err := runner.NewHardhat(cfg.ToolchainDir, cfg.BaseImage); err != nil {
		log.Warn("Hardhat deployments are off on this worker", "error", err)
	} else {
		runners[runner.Hardhat] = imagecache.NewResolver(eng, hdef, imagecache.NewIndex(rdb, ns), locks, ns, cfg.ImageCacheEnabled, log)
	}
	npm, err := npmdeps.New(npmdeps.Config{
		Dir:       cfg.NPMDepsDir,
		Node:      filepath.Join(cfg.ToolchainDir, "node22", "bin", "node"),
		NPM:       filepath.Join(cfg.ToolchainDir, "npm", "bin", "npm-cli.js"),
		Registry:  strings.TrimRight(cfg.NPMRegistry, "/") + "/",
		Namespace: ns,
	}, eng, locks, log)
	if err != nil {
		eng.Close()
		return nil, nil, fmt.Errorf("worker: %w", err)
	}
	red := redact.New(nets.Secrets()...)
	containers := pool.New(eng, rdb, ns, pool.Config{
		Enabled:             cfg.PoolEnabled,
		MaxIdlePerKey:       cfg.PoolMaxIdlePerKey,
		MaxContainers:       cfg.PoolMaxContainers,
		IdleTimeout:         cfg.PoolIdleTimeout.D(),
		MaxJobsPerContainer: cfg.PoolMaxJobsPerCtr,
		WorkerID:            id,
		// Each idle container has the relay and the agent running before its job.
		Warm:  deployment.Warmer(eng),
		Spare: cfg.PoolSpare,
	}, log)
	sup := chains.NewSupervisor(eng, images, locks, ns, cfg.PublicHost, cfg.ChainRPCVia == "network", log)
	compiles, err := compilecache.Open(cfg.CompileCacheDir, compilecache.NewIndex(rdb, ns), cfg.CompileCacheTTL.D(), cfg.CompileCacheEnabled, log)
	if err != nil {
		eng.Close()
		return nil, nil, fmt.Errorf("worker: %w", err)
	}
	builtIn, _ := os.ReadFile(filepath.Join(cfg.ToolchainDir, "solc", ".version"))
	store, err := compilers.New(compilers.Config{
		Dir:             cfg.CompilerStoreDir,
		Seed:            filepath.Join(cfg.ToolchainDir, "compilers"),
		BuiltIn:         filepath.Join(cfg.ToolchainDir, "solc", "node_modules", "solc", "soljson.js"),
		BuiltInVersion:  strings.TrimSpace(string(builtIn)),
		Defaults:        cfg.SolcVersions,
		Namespace:       ns,
		RegistryBaseURL: cfg.NPMRegistry,
	}, eng, images, locks, compilers.NewIndex(rdb, ns), log)
	if err != nil {
		eng.Close()
		return nil, nil, fmt.Errorf("worker: %w", err)
	}
	seed, err := gateway.LoadSeed(ctx, rdb, ns.SenderSeed())
	if err != nil {
		eng.Close()
		return nil, nil, fmt.Errorf("worker: %w", err)
	}
	dep := deployment.New(deployment.Deps{
		EngineID:   eng.ID(),
		Images:     runners,
		NPM:        npm,
		Chains:     sup,
		Containers: deployment.PoolContainers{Pool: containers, Engine: eng},
		Compiles:   compiles,
		Compilers:  store,
		Uploads:    projects.NewStore(rdb, ns, projectTTL),
		Rules:      jobs.Rules{Networks: nets, Durable: durable, Secrets: true},
		Senders:    gateway.NewSenders(seed),
		Journals:   gateway.Journals{RDB: rdb, Key: ns.JournalKey, TTL: cfg.JobRetention.D()},
		Locks:      locks,
		Namespace:  ns,
		Redact:     red,
	}, deployment.Config{
		WorkerID: id,
		Limits:   projects.DefaultLimits,
		Memory:   int64(cfg.JobMemory),
		NanoCPUs: int64(cfg.JobCPUs * 1e9),
		Pids:     cfg.JobPids,
		Timeout:  cfg.JobTimeout.D(),
	})
	w := worker.New(worker.Config{
		ID:              id,
		Concurrency:     cfg.WorkerConcurrency,
		ShutdownTimeout: cfg.ShutdownTimeout.D(),
		ImageMaxAge:     cfg.ImageCacheMaxAge.D(),
	}, redisOpt, ns, worker.Deps{
		Engine:   eng,
		Jobs:     jobs.NewStore(rdb, ns, cfg.JobRetention.D()),
		Beats:    heartbeat.New(rdb, ns),
		Deployer: dep,
		Images:   images,
		Pool:     containers,
		Compiles: compiles,
		Chains:   sup,
		Networks: nets,
		Redact:   red,
		Metrics:  metrics.NewDeployments(reg),
	}, log)
	metrics.RegisterWorker(reg, id, containers, func(ctx context.Context) ([]tasks.ChainStatus, error) { return sup.List(ctx, nets) })
	return w, func() { eng.Close() }, nil
}
