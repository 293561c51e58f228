// Package config reads deployer's configuration from the environment, once, with
// envconfig. Every role (api, worker, scheduler) takes what it needs from one Config.
package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"
)

// Config is the whole configuration. Field tags name the environment variables.
type Config struct {
	// Instance names an installation; it is part of every label, Redis key and queue.
	Instance string `envconfig:"DEPLOYER_INSTANCE" default:"default"`
	// RedisURL is the shared Redis. Empty: `all` starts an embedded one.
	RedisURL string `envconfig:"REDIS_URL"`
	// DataDir holds the embedded Redis's state (`all` without REDIS_URL), so that
	// it survives a crash.
	DataDir string `envconfig:"DATA_DIR" default:"data"`

	// HTTPAddr is where the API listens. Unset, it depends on ADMIN_TOKEN: without
	// one every route is open, so only this host may reach it (127.0.0.1:5001);
	// with one, every interface (:5001).
	HTTPAddr string `envconfig:"HTTP_ADDR"`
	// ChainRPCVia is how workers reach the chains: "host" (the port published on
	// 127.0.0.1) or "network" (the Docker network, for a worker in a container).
	ChainRPCVia     string `envconfig:"CHAIN_RPC_VIA" default:"host"`
	PublicHost      string `envconfig:"PUBLIC_HOST" default:"127.0.0.1"`
	ProjectsRoot    string `envconfig:"PROJECTS_ROOT"`
	MaxProjectBytes int64  `envconfig:"MAX_PROJECT_BYTES" default:"20971520"`
	NetworksFile    string `envconfig:"NETWORKS_FILE" default:"network.json"`

	WorkerID string `envconfig:"WORKER_ID"`
	// MetricsAddr is where a worker serves its own Prometheus metrics (the API
	// cannot see a worker's histograms when roles run apart). Empty: not served;
	// in `deployer all`, the API's /metrics has everything.
	MetricsAddr       string   `envconfig:"METRICS_ADDR"`
	WorkerConcurrency int      `envconfig:"WORKER_CONCURRENCY" default:"4"`
	JobTimeout        Duration `envconfig:"JOB_TIMEOUT" default:"10m"`
	JobRetention      Duration `envconfig:"JOB_RETENTION" default:"48h"`
	JobMaxRetry       int      `envconfig:"JOB_MAX_RETRY" default:"3"`
	ShutdownTimeout   Duration `envconfig:"SHUTDOWN_TIMEOUT" default:"30s"`

	// Limits of every job container.
	JobMemory ByteSize `envconfig:"JOB_MEMORY" default:"2g"`
	JobCPUs   float64  `envconfig:"JOB_CPUS" default:"2"`
	JobPids   int64    `envconfig:"JOB_PIDS" default:"512"`

	// Runner images are built from BaseImage and the toolchain set-up fetched.
	BaseImage    string `envconfig:"BASE_IMAGE" default:"deployer-base:bookworm"`
	ToolchainDir string `envconfig:"TOOLCHAIN_DIR" default:".toolchain"`

	// The image cache (of runner images): images unused this long are removed. Its
	// age limit's public name predates the cache's.
	ImageCacheEnabled bool     `envconfig:"IMAGE_CACHE_ENABLED" default:"true"`
	ImageCacheMaxAge  Duration `envconfig:"CONTAINER_CACHE_MAX_AGE" default:"24h"`

	// The warm pool of job containers, per worker; CONTAINER_REUSE_ENABLED is its
	// public name.
	PoolEnabled       bool     `envconfig:"CONTAINER_REUSE_ENABLED" default:"true"`
	PoolMaxIdlePerKey int      `envconfig:"POOL_MAX_IDLE_PER_KEY" default:"2"`
	PoolMaxContainers int      `envconfig:"POOL_MAX_CONTAINERS" default:"8"`
	PoolIdleTimeout   Duration `envconfig:"POOL_IDLE_TIMEOUT" default:"10m"`
	PoolMaxJobsPerCtr int      `envconfig:"POOL_MAX_JOBS_PER_CONTAINER" default:"50"`
	PoolSpare         bool     `envconfig:"POOL_SPARE" default:"true"`

	// The compile cache: compiled artifacts on the worker's host, indexed in Redis.
	// FOUNDRY_CACHE_* are its public names, from when Foundry was the only framework.
	CompileCacheEnabled bool     `envconfig:"FOUNDRY_CACHE_ENABLED" default:"true"`
	CompileCacheTTL     Duration `envconfig:"FOUNDRY_CACHE_TTL" default:"3600"`
	CompileCacheDir     string   `envconfig:"FOUNDRY_CACHE_DIR"`

	// The compiler store: solc builds fetched from the npm registry on first need.
	// SOLC_VERSIONS are the versions a pragma's range resolves against (the newest
	// that satisfies it).
	SolcVersions     []string `envconfig:"SOLC_VERSIONS" default:"0.8.30,0.7.6,0.6.12,0.5.17"`
	CompilerStoreDir string   `envconfig:"COMPILER_STORE_DIR"`
	NPMRegistry      string   `envconfig:"NPM_REGISTRY" default:"https://registry.npmjs.org"`
	// NPMDepsDir holds Hardhat projects' dependencies, installed once per lockfile.
	NPMDepsDir string `envconfig:"NPM_DEPS_DIR"`

	LogLevel string `envconfig:"LOG_LEVEL" default:"info"`

	// The API as `deployer submit` reaches it.
	APIURL string `envconfig:"DEPLOYER_API" default:"http://127.0.0.1:5001"`

	// Access control. API_TOKEN opens the deployment routes, ADMIN_TOKEN every route.
	// API_TOKENS names clients: "alice=token1,bob=token2"; API_TOKEN is the client
	// "default".
	APIToken   string  `envconfig:"API_TOKEN"`
	AdminToken string  `envconfig:"ADMIN_TOKEN"`
	APITokens  Clients `envconfig:"API_TOKENS"`
	// RateLimit is deployments per minute per client; 0 turns the limit off.
	RateLimit      float64  `envconfig:"RATE_LIMIT" default:"60"`
	RateLimitBurst int      `envconfig:"RATE_LIMIT_BURST" default:"20"`
	TrustedProxies []string `envconfig:"TRUSTED_PROXIES"`
	// Per-client byte budgets per UTC day, so that no client fills Redis: the
	// uploads it stores, and the output its jobs keep. 0 turns one off.
	UploadBudgetBytes ByteBudget `envconfig:"UPLOAD_BUDGET_BYTES" default:"512m"`
	LogBudgetBytes    ByteBudget `envconfig:"LOG_BUDGET_BYTES" default:"128m"`
	// MonitoringReadOnly keeps asynqmon's UI from changing queues.
	MonitoringReadOnly bool `envconfig:"MONITORING_READ_ONLY" default:"true"`

	// Periodic maintenance (cron specs; empty turns one off).
	ScheduleImageExpiry   string `envconfig:"SCHEDULE_IMAGE_EXPIRY" default:"0 * * * *"`
	ScheduleCompileExpiry string `envconfig:"SCHEDULE_COMPILE_EXPIRY" default:"*/15 * * * *"`
	SchedulePoolSweep     string `envconfig:"SCHEDULE_POOL_SWEEP" default:"*/5 * * * *"`
}

// Load reads the environment. It fails naming the variable that does not parse.
func Load() (Config, error) {
	var c Config
	if err := envconfig.Process("", &c); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	if c.ProjectsRoot == "" {
		wd, err := os.Getwd()
		if err != nil {
			return Config{}, fmt.Errorf("config: PROJECTS_ROOT unset and no working directory: %w", err)
		}
		c.ProjectsRoot = wd
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = DefaultHTTPAddr(c.AdminToken)
	}
	if c.CompileCacheDir == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return Config{}, fmt.Errorf("config: FOUNDRY_CACHE_DIR unset and no cache directory: %w", err)
		}
		c.CompileCacheDir = filepath.Join(dir, "deployer", c.Instance, "foundry")
	}
	if c.NPMDepsDir == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return Config{}, fmt.Errorf("config: NPM_DEPS_DIR unset and no cache directory: %w", err)
		}
		c.NPMDepsDir = filepath.Join(dir, "deployer", c.Instance, "npm")
	}
	if c.CompilerStoreDir == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return Config{}, fmt.Errorf("config: COMPILER_STORE_DIR unset and no cache directory: %w", err)
		}
		c.CompilerStoreDir = filepath.Join(dir, "deployer", c.Instance, "compilers")
	}
	// Tools run from other working directories (npm in a scratch directory), so the
	// toolchain's path must not depend on this one.
	abs, err := filepath.Abs(c.ToolchainDir)
	if err != nil {
		return Config{}, fmt.Errorf("config: TOOLCHAIN_DIR: %w", err)
	}
	c.ToolchainDir = abs
	// redis-server runs in DATA_DIR and is handed paths in it, and the log names
	// where the state is: neither may depend on a working directory.
	if c.DataDir, err = filepath.Abs(c.DataDir); err != nil {
		return Config{}, fmt.Errorf("config: DATA_DIR: %w", err)
	}
	if err := c.validate(); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return c, nil
}

func (c Config) validate() error {
	if !validInstance(c.Instance) {
		return fmt.Errorf("DEPLOYER_INSTANCE %q: use 1-32 lowercase letters, digits and dashes", c.Instance)
	}
	if c.MaxProjectBytes <= 0 {
		return fmt.Errorf("MAX_PROJECT_BYTES must be positive")
	}
	if c.WorkerConcurrency <= 0 {
		return fmt.Errorf("WORKER_CONCURRENCY must be positive")
	}
	if c.JobTimeout.D() <= 0 {
		return fmt.Errorf("JOB_TIMEOUT must be positive")
	}
	if c.ChainRPCVia != "host" && c.ChainRPCVia != "network" {
		return fmt.Errorf("CHAIN_RPC_VIA %q: use host or network", c.ChainRPCVia)
	}
	if c.RateLimit < 0 || c.RateLimitBurst < 1 {
		return fmt.Errorf("RATE_LIMIT must not be negative and RATE_LIMIT_BURST must be positive")
	}
	for _, cidr := range c.TrustedProxies {
		if _, _, err := net.ParseCIDR(strings.TrimSpace(cidr)); err != nil {
			return fmt.Errorf("TRUSTED_PROXIES: %q is not a CIDR range (10.0.0.0/8)", cidr)
		}
	}
	if c.PoolMaxContainers < c.WorkerConcurrency {
		return fmt.Errorf("POOL_MAX_CONTAINERS (%d) must be at least WORKER_CONCURRENCY (%d)", c.PoolMaxContainers, c.WorkerConcurrency)
	}
	if c.PoolMaxIdlePerKey < 0 || c.PoolMaxJobsPerCtr < 0 {
		return fmt.Errorf("POOL_MAX_IDLE_PER_KEY and POOL_MAX_JOBS_PER_CONTAINER must not be negative")
	}
	if c.UploadBudgetBytes > 0 && int64(c.UploadBudgetBytes) < c.MaxProjectBytes {
		return fmt.Errorf("UPLOAD_BUDGET_BYTES (%d) is below MAX_PROJECT_BYTES (%d): the largest upload could never be stored",
			c.UploadBudgetBytes, c.MaxProjectBytes)
	}
	for name, token := range c.APITokens {
		if token == c.APIToken || token == c.AdminToken {
			return fmt.Errorf("API_TOKENS: client %q shares its token with API_TOKEN or ADMIN_TOKEN", name)
		}
	}
	for _, v := range c.SolcVersions {
		if !solcVersionRE.MatchString(strings.TrimSpace(v)) {
			return fmt.Errorf("SOLC_VERSIONS: %q is not a version such as 0.8.30", v)
		}
	}
	if c.JobRetention.D() < 24*time.Hour {
		return fmt.Errorf("JOB_RETENTION must be at least 24h: jobs stay pollable that long")
	}
	return nil
}

// DefaultHTTPAddr is where the API listens when HTTP_ADDR is unset: without an
// admin token every route is open, so it binds to loopback only.
func DefaultHTTPAddr(adminToken string) string {
	if adminToken == "" {
		return "127.0.0.1:5001"
	}
	return ":5001"
}

// CheckAPI refuses access control that would leave the API half open: deployment
// tokens without an admin token guard the deployment routes while the dashboard,
// monitoring and admin routes stay open to anyone. Only the API checks it: workers
// and `deployer submit` read API_TOKEN as a client's token.
func (c Config) CheckAPI() error {
	if c.AdminToken == "" && (c.APIToken != "" || len(c.APITokens) > 0) {
		return errors.New("API_TOKEN or API_TOKENS is set but ADMIN_TOKEN is not: deployments would need a token " +
			"while the dashboard, monitoring and admin routes stayed open to anyone; set ADMIN_TOKEN too " +
			"(or neither, for a development set-up on loopback)")
	}
	return nil
}

// validInstance keeps the instance usable in Docker names, labels and Redis keys.
func validInstance(s string) bool {
	if len(s) == 0 || len(s) > 32 || s[0] == '-' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

// Clients maps client names to their tokens, read from "name=token,name=token".
type Clients map[string]string

var clientNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

var solcVersionRE = regexp.MustCompile(`^\d+\.\d+\.\d+$`)

// Decode implements envconfig.Decoder. The tokens are never repeated in an error.
func (c *Clients) Decode(s string) error {
	out := Clients{}
	seen := map[string]bool{}
	for i, pair := range strings.Split(s, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		name, token, ok := strings.Cut(pair, "=")
		switch {
		case !ok || token == "":
			return fmt.Errorf("entry %d is not name=token", i+1)
		case !clientNameRE.MatchString(name):
			return fmt.Errorf("entry %d: a name is 1-32 lowercase letters, digits, dashes and underscores", i+1)
		case name == "admin" || name == "default":
			return fmt.Errorf("entry %d: %q is reserved (the admin token's and API_TOKEN's holder)", i+1, name)
		case out[name] != "":
			return fmt.Errorf("client %q is named twice", name)
		case seen[token]:
			return fmt.Errorf("client %q shares its token with another", name)
		}
		seen[token] = true
		out[name] = token
	}
	*c = out
	return nil
}

// ByteBudget is a size as ByteSize reads it, or 0 (off).
type ByteBudget int64

// Decode implements envconfig.Decoder.
func (b *ByteBudget) Decode(s string) error {
	if strings.TrimSpace(s) == "0" {
		*b = 0
		return nil
	}
	var n ByteSize
	if err := n.Decode(s); err != nil {
		return fmt.Errorf("%q is not a size such as 512m, or 0 (off)", strings.TrimSpace(s))
	}
	*b = ByteBudget(n)
	return nil
}

// Duration is a Go duration ("24h") or a whole number of seconds ("86400").
type Duration time.Duration

// Decode implements envconfig.Decoder.
func (d *Duration) Decode(s string) error {
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// maxSeconds is about a century: more than any timeout or age means.
const maxSeconds = 100 * 365 * 24 * 3600

// ParseDuration reads a Go duration or a number of seconds.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		// NaN fails both comparisons; the bound keeps the conversion from wrapping.
		if !(n >= 0 && n <= maxSeconds) {
			return 0, fmt.Errorf("%q is not a number of seconds between 0 and %d", s, int64(maxSeconds))
		}
		return time.Duration(n * float64(time.Second)), nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is neither a duration (24h) nor a number of seconds", s)
	}
	if v < 0 {
		return 0, fmt.Errorf("negative duration %q", s)
	}
	return v, nil
}

// ByteSize is a size in bytes, with an optional k, m or g suffix (powers of 1024).
type ByteSize int64

// Decode implements envconfig.Decoder.
func (b *ByteSize) Decode(s string) error {
	s = strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "g"):
		mult, s = 1<<30, strings.TrimSuffix(s, "g")
	case strings.HasSuffix(s, "m"):
		mult, s = 1<<20, strings.TrimSuffix(s, "m")
	case strings.HasSuffix(s, "k"):
		mult, s = 1<<10, strings.TrimSuffix(s, "k")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n > math.MaxInt64/mult {
		return fmt.Errorf("%q is not a size such as 2g or 512m", s)
	}
	*b = ByteSize(n * mult)
	return nil
}
