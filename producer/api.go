// Package producer is the HTTP API. It keeps the design's name for its role in the
// queue: it produces the tasks that workers consume. It checks requests (jobs.Check),
// stores uploaded projects, records and enqueues jobs, and answers polls, the
// dashboard and the admin routes from Redis. It does no Docker work and does not link
// the Docker client: workers own their engines.
package producer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/hibiken/asynq"
	asynqmetrics "github.com/hibiken/asynq/x/metrics"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/deployer-dev/deployer/api"
	"github.com/deployer-dev/deployer/cache/compilecache"
	"github.com/deployer-dev/deployer/cache/compilers"
	"github.com/deployer-dev/deployer/cache/imagecache"
	"github.com/deployer-dev/deployer/dashboard"
	"github.com/deployer-dev/deployer/internal/fanout"
	"github.com/deployer-dev/deployer/internal/heartbeat"
	"github.com/deployer-dev/deployer/internal/redact"
	"github.com/deployer-dev/deployer/jobs"
	"github.com/deployer-dev/deployer/metrics"
	"github.com/deployer-dev/deployer/networks"
	"github.com/deployer-dev/deployer/projects"
	"github.com/deployer-dev/deployer/tasks"
)

// Config is what the API needs of the configuration.
type Config struct {
	ProjectsRoot    string
	MaxProjectBytes int64
	ProjectTTL      time.Duration
	Limits          projects.Limits
	Access          Access
	// MonitoringReadOnly keeps asynqmon from changing queues.
	MonitoringReadOnly bool
	JobTimeout         time.Duration
	JobRetention       time.Duration
	// DurableRedis says the Redis survives a crash (not the embedded one): remote
	// networks need it.
	DurableRedis bool
	// NetworkSecrets says the process has the workers' environment (deployer all), so
	// the API can tell a request that a network is not configured.
	NetworkSecrets bool
	JobMaxRetry    int

	ImageCacheEnabled bool
	ImageCacheMaxAge  time.Duration

	CompileCacheEnabled bool
	CompileCacheTTL     time.Duration

	// SolcVersions are the compiler versions a pragma's range resolves against.
	SolcVersions []string

	// UploadBudget and LogBudget are the bytes of uploads and of job output each
	// client may store per UTC day (0: no budget).
	UploadBudget int64
	LogBudget    int64
	// Timeouts bound the connections (zero fields: defaultTimeouts).
	Timeouts Timeouts
	// Metrics is the process's registry, served on /metrics; the API adds its own
	// metrics and the queues'. Nil: no /metrics.
	Metrics *prometheus.Registry
}

// API serves the HTTP API.
type API struct {
	cfg          Config
	ns           tasks.Namespace
	rdb          redis.UniversalClient
	client       *asynq.Client
	inspector    *asynq.Inspector
	jobs         *jobs.Store
	projects     *projects.Store
	beats        *heartbeat.Store
	imageIndex   *imagecache.Index
	compileIndex *compilecache.Index
	// compilerIndex lists the compiler versions each engine's store holds.
	compilerIndex *compilers.Index
	fanout        *fanout.Fanout
	networks      networks.Set
	redact        *redact.Redactor
	redisOpt      asynq.RedisConnOpt
	log           *slog.Logger
	echo          *echo.Echo
	// follow serves the clients that follow jobs' events.
	follow *followers
	// metrics is nil without a registry.
	metrics *metrics.API
}

// New returns the API. rdb and redisOpt name the same Redis.
func New(cfg Config, rdb redis.UniversalClient, redisOpt asynq.RedisConnOpt, ns tasks.Namespace,
	nets networks.Set, log *slog.Logger) (*API, error) {
	if err := cfg.Access.check(); err != nil {
		return nil, err
	}
	a := &API{
		cfg:           cfg,
		ns:            ns,
		rdb:           rdb,
		client:        asynq.NewClient(redisOpt),
		inspector:     asynq.NewInspector(redisOpt),
		jobs:          jobs.NewStore(rdb, ns, cfg.JobRetention),
		projects:      projects.NewStore(rdb, ns, cfg.ProjectTTL),
		beats:         heartbeat.New(rdb, ns),
		imageIndex:    imagecache.NewIndex(rdb, ns),
		compileIndex:  compilecache.NewIndex(rdb, ns),
		compilerIndex: compilers.NewIndex(rdb, ns),
		networks:      nets,
		redact:        redact.New(nets.Secrets()...),
		redisOpt:      redisOpt,
		log:           log,
	}
	a.fanout = fanout.New(a.client, a.inspector, a.beats)
	a.follow = newFollowers(rdb, a.jobs)
	if cfg.Metrics != nil {
		a.metrics = metrics.NewAPI(cfg.Metrics, asynqmetrics.NewQueueMetricsCollector(a.inspector))
	}
	e, err := a.routes()
	if err != nil {
		a.Close()
		return nil, err
	}
	a.echo = e
	return a, nil
}

// Handler is the API's HTTP handler.
func (a *API) Handler() http.Handler { return a.echo }

// Close releases the API's Redis clients.
func (a *API) Close() error {
	return errors.Join(a.client.Close(), a.inspector.Close(), a.follow.close(a.rdb))
}

// Serve serves on ln until ctx ends, then stops accepting and lets requests in
// flight finish.
func (a *API) Serve(ctx context.Context, ln net.Listener) error {
	srv := a.cfg.Timeouts.server(a.echo)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	a.log.Info("api listening", "addr", ln.Addr().String())
	if level, msg := exposure(ln.Addr(), a.cfg.Access); msg != "" {
		a.log.Log(ctx, level, msg, "addr", ln.Addr().String())
	}
	select {
	case err := <-errc:
		return fmt.Errorf("api: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	a.log.Info("api stopped")
	return err
}

func (a *API) routes() (*echo.Echo, error) {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = a.errorHandler
	ip, err := ipExtractor(a.cfg.Access.TrustedProxies)
	if err != nil {
		return nil, err
	}
	e.IPExtractor = ip
	e.Use(a.logRequests, securityHeaders, a.limit)

	// Open: probes.
	e.GET("/healthz", a.healthz)
	e.GET("/readyz", a.readyz)

	// Deployments: the API token or the admin token. Who the caller is is settled
	// first, then where the request comes from, then what it sends.
	acc := a.cfg.Access
	deployers := map[string]string{clientDefault: acc.APIToken, networks.AdminClient: acc.AdminToken}
	for name, t := range acc.APITokens {
		deployers[name] = t
	}
	dep := e.Group("", identify(false, deployers), crossOrigin())
	dep.POST("/projects", a.uploadProject, rateLimit("uploads", acc.RateLimit, acc.RateLimitBurst), archiveBody)
	dep.POST("/deploy", a.deploy, rateLimit("deployments", acc.RateLimit, acc.RateLimitBurst), jsonBody)
	dep.GET("/deploy/:id", a.getJob)
	dep.GET("/deploy/:id/logs", a.getLogs)
	dep.GET("/deploy/:id/events", a.jobEvents)
	dep.DELETE("/deploy/:id", a.cancelJob)

	// Everything else: the admin token, from a program or a browser. The admin
	// routes take no body; asynqmon's API takes JSON.
	adm := e.Group("", identify(true, map[string]string{networks.AdminClient: acc.AdminToken}), crossOrigin())
	adm.GET("/admin/server/cache/status", a.imageCacheStatus)
	adm.POST("/admin/server/cache/cleanup", a.imageCacheCleanup)
	adm.POST("/admin/server/cache/clear", a.imageCacheClear)
	adm.GET("/admin/server/foundry-cache/status", a.compileCacheStatus)
	adm.POST("/admin/server/foundry-cache/cleanup", a.compileCacheCleanup)
	adm.POST("/admin/server/foundry-cache/clear", a.compileCacheClear)
	adm.GET("/admin/server/compilers", a.compilerStatus)
	adm.GET("/containers/stats", a.containerStats)
	adm.POST("/containers/cleanup", a.containerCleanup)
	adm.GET("/", a.dashboardPage)
	adm.GET(dashboard.StaticPrefix+"*", echo.WrapHandler(dashboard.Static()))
	adm.GET("/dashboard/api/overview", a.overview)
	if a.cfg.Metrics != nil {
		adm.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(a.cfg.Metrics, promhttp.HandlerOpts{})))
	}
	mon := a.monitoring()
	adm.Any("/monitoring", mon, jsonBody)
	adm.Any("/monitoring/*", mon, jsonBody)
	return e, nil
}

// apiError is an error answered to the client as {"error": msg}.
func apiError(code int, format string, args ...any) error {
	return echo.NewHTTPError(code, fmt.Sprintf(format, args...))
}

// errorHandler answers every error as JSON {"error": "..."}; internal errors are
// logged and answered without their details.
func (a *API) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	// What the body did (too large, too slow) is the answer, whatever the handler
	// made of its failed read: a body's read timeout is not Redis's.
	if berr := a.bodyError(c); berr != nil {
		err = berr
	}
	var over *projects.BudgetError
	if errors.As(err, &over) {
		err = overBudget(c, over)
	}
	err = a.unavailable(err, c)
	code, msg := http.StatusInternalServerError, "internal error"
	var he *echo.HTTPError
	if errors.As(err, &he) {
		code = he.Code
		if s, ok := he.Message.(string); ok {
			msg = s
		} else {
			msg = http.StatusText(code)
		}
	} else {
		a.log.Error("request failed", "method", c.Request().Method, "path", c.Path(), "error", err)
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(code)
		return
	}
	_ = c.JSON(code, api.Error{Error: msg})
}

func (a *API) logRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		d := time.Since(start)
		a.log.Debug("request", "method", c.Request().Method, "path", c.Request().URL.Path,
			"status", c.Response().Status, "duration", d)
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		a.metrics.ObserveRequest(route, c.Request().Method, c.Response().Status, d)
		return nil
	}
}

func (a *API) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// readyWithin is how recent a worker's heartbeat must be for the service to be ready.
const readyWithin = 30 * time.Second

func (a *API) readyz(c echo.Context) error {
	if ok, reason := a.ready(c.Request().Context()); !ok {
		return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": reason})
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}

// exposure says what the log should say of serving the access on addr: without an
// admin token every route is open, which is a development set-up on loopback and
// an exposed API anywhere else.
func exposure(addr net.Addr, acc Access) (slog.Level, string) {
	if acc.AdminToken != "" {
		return slog.LevelInfo, ""
	}
	if tcp, ok := addr.(*net.TCPAddr); ok && tcp.IP.IsLoopback() {
		return slog.LevelWarn, "ADMIN_TOKEN is not set: every route is open to whoever reaches this loopback address " +
			"(without ADMIN_TOKEN, HTTP_ADDR defaults to 127.0.0.1:5001); set ADMIN_TOKEN (and API_TOKEN or API_TOKENS) to serve other hosts"
	}
	return slog.LevelError, "UNPROTECTED API: ADMIN_TOKEN is not set and HTTP_ADDR reaches beyond loopback: anyone who reaches " +
		"this address can deploy, read every job, open the dashboard and monitoring and use the admin routes; set ADMIN_TOKEN, " +
		"or let HTTP_ADDR default to 127.0.0.1:5001"
}
