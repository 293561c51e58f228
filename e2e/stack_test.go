// Package e2e tests the whole service as a user meets it: the deployer binary (api,
// worker and scheduler in one process) on a real redis-server, the real Docker engine,
// real anvil chains and real forge, driven through the HTTP API.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/deployer-dev/deployer/api"
	"github.com/deployer-dev/deployer/chains"
	"github.com/deployer-dev/deployer/client"
	"github.com/deployer-dev/deployer/internal/heartbeat"
	"github.com/deployer-dev/deployer/internal/testenv"
	"github.com/deployer-dev/deployer/jobs"
	"github.com/deployer-dev/deployer/tasks"
)

var (
	binPath   string
	stackOnce sync.Once
	theStack  *stack
	stackErr  error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "deployer-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "deployer")
	build := exec.Command("go", "build", "-o", binPath, "./cmd/deployer")
	build.Dir = testenv.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build deployer: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	if theStack != nil {
		theStack.stop()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// stack is one running deployer with its own installation name and Redis.
type stack struct {
	instance  string
	url       string
	redisURL  string
	ns        tasks.Namespace
	cmd       *exec.Cmd
	logs      *syncBuffer
	client    *client.Client
	rdb       *redis.Client
	insp      *asynq.Inspector
	stopRedis func()
	exitOnce  sync.Once
	// confDir holds the stack's network file.
	confDir string
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testNetworks publishes chains on ports the engine picks, so tests never collide
// with a running demo or with each other.
const testNetworks = `{"networks": [
 {"name": "local", "type": "local", "chain_id": 31337, "port": 0},
 {"name": "other", "type": "local", "chain_id": 31338, "port": 0},
 {"name": "sepolia", "type": "remote", "chain_id": 11155111, "rpc_url_env": "E2E_SEPOLIA_RPC", "deployer_key_env": "E2E_SEPOLIA_KEY"}
]}`

// getStack returns the package's deployer, starting it on first use.
func getStack(t *testing.T) *stack {
	t.Helper()
	requireParts(t)
	stackOnce.Do(func() { theStack, stackErr = startStack(stackOpts{}) })
	if stackErr != nil {
		t.Fatalf("start deployer: %v", stackErr)
	}
	watchLogs(t, theStack)
	return theStack
}

// requireParts skips the test, or fails it under CI, without the engine, the
// toolchain or redis-server.
func requireParts(t testing.TB) {
	t.Helper()
	testenv.RequireEngine(t, "e2e-probe")
	if _, err := exec.LookPath("redis-server"); err != nil {
		testenv.Missing(t, "redis-server: %v", err)
	}
}

// stackOpts shape a deployer of a test's own.
type stackOpts struct {
	// instance and redisURL, when set, join an existing installation (a restart).
	instance string
	redisURL string
	env      []string
	// role is the deployer command: "all" (the default), "worker" or "scheduler".
	role string
	// networks replaces the test network file.
	networks string
	// bin replaces the deployer binary (one built with fault hooks).
	bin string
	// dataDir runs `deployer all` on its embedded Redis, kept in this DATA_DIR,
	// instead of on a redis-server of the test's.
	dataDir string
	// port is the API's (a restarted API comes back on its address); 0 takes a free one.
	port int
}

// ownStack starts a deployer of the test's own (for tests that stop it), stopped at
// the end of the test.
func ownStack(t *testing.T, opts stackOpts) *stack {
	t.Helper()
	requireParts(t)
	// A deployer of its own does not disturb the other tests: they overlap their
	// waiting (builds, leases, timeouts). A second process joining an installation
	// is part of its test already.
	if opts.instance == "" {
		t.Parallel()
	}
	s, err := startStack(opts)
	if err != nil {
		t.Fatalf("start deployer: %v", err)
	}
	t.Cleanup(s.stop)
	watchLogs(t, s)
	return s
}

// installation is for tests that run the roles apart: it starts a redis-server of
// the test's own and returns join, which starts one role (opts.role, with its
// options) of one installation on it.
func installation(t *testing.T) (join func(opts stackOpts) *stack) {
	t.Helper()
	redisURL, stopRedis, err := testenv.StartRedis()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stopRedis)
	instance := testenv.Instance("e2e")
	return func(opts stackOpts) *stack {
		opts.instance, opts.redisURL = instance, redisURL
		return ownStack(t, opts)
	}
}

// workerID is the environment that names a worker.
func workerID(id string) []string { return []string{"WORKER_ID=" + id} }

// watchLogs keeps the deployer's log as a test artifact, and prints its end, when the
// test fails.
func watchLogs(t *testing.T, s *stack) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		out := s.logs.String()
		dir := filepath.Join(testenv.RepoRoot(), "test-output")
		file := filepath.Join(dir, fmt.Sprintf("e2e-%s-%s-%d.log", t.Name(), s.instance, s.cmd.Process.Pid))
		if os.MkdirAll(dir, 0o755) == nil && os.WriteFile(file, []byte(out), 0o644) == nil {
			t.Logf("deployer log: %s", file)
		}
		if len(out) > 20000 {
			out = out[len(out)-20000:]
		}
		t.Logf("deployer log (tail):\n%s", out)
	})
}

func startStack(opts stackOpts) (*stack, error) {
	s := &stack{instance: opts.instance, redisURL: opts.redisURL, logs: &syncBuffer{}}
	if s.instance == "" {
		s.instance = testenv.Instance("e2e")
	}
	s.ns = tasks.Namespace{Instance: s.instance}
	if opts.dataDir != "" {
		s.redisURL = "unix://" + filepath.Join(opts.dataDir, "redis.sock")
	} else if s.redisURL == "" {
		redisURL, stopRedis, err := testenv.StartRedis()
		if err != nil {
			return nil, err
		}
		s.redisURL, s.stopRedis = redisURL, stopRedis
	}
	redisURL := s.redisURL
	dir, err := os.MkdirTemp("", "deployer-e2e-conf-")
	if err != nil {
		return nil, err
	}
	s.confDir = dir
	netFile := filepath.Join(dir, "network.json")
	nets := testNetworks
	if opts.networks != "" {
		nets = opts.networks
	}
	if err := os.WriteFile(netFile, []byte(nets), 0o644); err != nil {
		return nil, err
	}
	port := opts.port
	if port == 0 {
		if port, err = freePort(); err != nil {
			return nil, err
		}
	}
	s.url = "http://127.0.0.1:" + strconv.Itoa(port)
	role := opts.role
	if role == "" {
		role = "all"
	}
	bin := binPath
	if opts.bin != "" {
		bin = opts.bin
	}
	s.cmd = exec.Command(bin, role)
	s.cmd.Dir = testenv.RepoRoot()
	s.cmd.Env = append(os.Environ(),
		"DEPLOYER_INSTANCE="+s.instance,
		"REDIS_URL="+redisURL,
		"HTTP_ADDR=127.0.0.1:"+strconv.Itoa(port),
		"PROJECTS_ROOT="+testenv.RepoRoot(),
		"NETWORKS_FILE="+netFile,
		"TOOLCHAIN_DIR="+testenv.Toolchain(),
		"JOB_TIMEOUT=3m",
		"WORKER_CONCURRENCY=3",
		"LOG_LEVEL=debug",
		"FOUNDRY_CACHE_DIR="+s.foundryCacheDir(),
		"COMPILER_STORE_DIR="+filepath.Join(s.cacheDir(), "compilers"),
		"NPM_DEPS_DIR="+filepath.Join(s.cacheDir(), "npm"),
		// The tests send many deployments from one address; the limit has its own test.
		"RATE_LIMIT=0",
	)
	if opts.dataDir != "" {
		// The last value of a variable wins.
		s.cmd.Env = append(s.cmd.Env, "REDIS_URL=", "DATA_DIR="+opts.dataDir)
	}
	s.cmd.Env = append(s.cmd.Env, opts.env...)
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		return nil, err
	}
	s.rdb = redis.NewClient(opt)
	// From go-redis's options, which take a unix:// URL (the embedded Redis's).
	s.insp = asynq.NewInspector(asynq.RedisClientOpt{Network: opt.Network, Addr: opt.Addr,
		Username: opt.Username, Password: opt.Password, DB: opt.DB, TLSConfig: opt.TLSConfig})
	s.client = client.New(s.url, "")
	switch role {
	case "worker":
		return s, s.waitWorker()
	case "scheduler":
		return s, s.waitLog("scheduled", 30*time.Second)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(s.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("deployer not ready after 60 s:\n%s", s.logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// terminate sends SIGTERM, as an operator stopping the service does, and waits for
// the process to exit.
func (s *stack) terminate() {
	s.exitOnce.Do(func() {
		if s.cmd == nil || s.cmd.Process == nil {
			return
		}
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = s.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			_ = s.cmd.Process.Kill()
			<-done
		}
	})
}

// waitLog waits for the process to log a message.
func (s *stack) waitLog(msg string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for !strings.Contains(s.logs.String(), "msg="+msg) && !strings.Contains(s.logs.String(), `msg="`+msg) {
		if time.Now().After(deadline) {
			s.stop()
			return fmt.Errorf("no %q in the log after %s:\n%s", msg, limit, s.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// cacheDir holds the installation's caches on this host (the compile cache, the
// compiler store, Hardhat's dependencies), shared by its processes and removed with
// it: the default, under the user's cache directory, would outlive the test.
func (s *stack) cacheDir() string {
	return filepath.Join(os.TempDir(), "deployer-"+s.instance+"-cache")
}

// foundryCacheDir is the installation's compile cache store.
func (s *stack) foundryCacheDir() string { return filepath.Join(s.cacheDir(), "foundry") }

// waitWorker waits for the process's worker to beat in Redis.
func (s *stack) waitWorker() error {
	reg := heartbeat.New(s.rdb, s.ns)
	deadline := time.Now().Add(60 * time.Second)
	for {
		live, _ := reg.Live(context.Background(), time.Now(), 30*time.Second)
		for _, w := range live {
			if w.PID == s.cmd.Process.Pid {
				return nil
			}
		}
		if time.Now().After(deadline) {
			s.stop()
			return fmt.Errorf("worker did not beat in 60 s:\n%s", s.logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop ends the deployer the way an operator does (SIGTERM), then removes what the
// test installation left on the engine.
func (s *stack) stop() {
	s.terminate()
	if s.insp != nil {
		s.insp.Close()
	}
	if s.rdb != nil {
		s.rdb.Close()
	}
	_ = testenv.Cleanup(s.instance)
	os.RemoveAll(s.cacheDir())
	if s.confDir != "" {
		os.RemoveAll(s.confDir)
	}
	if s.stopRedis != nil {
		s.stopRedis()
	}
}

// deploy submits a request and waits for the job to end.
func (s *stack) deploy(t testing.TB, req api.DeployRequest) api.Job {
	t.Helper()
	return deployWith(t, s.client, req)
}

// submit queues a Foundry deployment and returns its job id, without waiting.
func (s *stack) submit(t testing.TB, req api.DeployRequest) string {
	t.Helper()
	req.Framework = "foundry"
	resp, err := s.client.Deploy(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return resp.JobID
}

// counterWith deploys examples/counter's contract with n as its constructor's
// argument: each one a deployment of its own.
func counterWith(n int) api.DeployRequest {
	return api.DeployRequest{PathURL: "examples/counter", Contract: "src/Counter.sol:Counter", ConstructorArgs: []string{strconv.Itoa(n)}}
}

// deployWith submits a request with a client (its token) and waits for the job to end.
func deployWith(t testing.TB, c *client.Client, req api.DeployRequest) api.Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	if req.Framework == "" {
		req.Framework = "foundry"
	}
	resp, err := c.Deploy(ctx, req)
	if err != nil {
		t.Fatalf("deploy %+v: %v", req, err)
	}
	j, err := c.Wait(ctx, resp.JobID, nil)
	if err != nil {
		t.Fatalf("wait for job %s: %v", resp.JobID, err)
	}
	return j
}

// requireCompleted fails unless the job completed, and checks on chain, through the
// RPC URL the job answered, that code is at every address it returned.
func requireCompleted(t testing.TB, j api.Job) {
	t.Helper()
	if j.Status != jobs.Completed {
		msg := ""
		if j.Error != nil {
			msg = *j.Error
		}
		t.Fatalf("job %s ended %s: %s", j.JobID, j.Status, msg)
	}
	if j.Result == nil || len(j.Result.Contracts) == 0 {
		t.Fatalf("completed job %s returned no contracts", j.JobID)
	}
	rpc := chains.NewRPC(j.Result.RPCURL, nil)
	ctx := context.Background()
	id, err := rpc.ChainID(ctx)
	if err != nil || id != j.Result.ChainID {
		t.Fatalf("chain at %s: id %d, %v (job says %d)", j.Result.RPCURL, id, err, j.Result.ChainID)
	}
	for _, c := range j.Result.Contracts {
		code, err := rpc.Code(ctx, c.Address)
		if err != nil {
			t.Fatal(err)
		}
		if len(code) <= 2 {
			t.Errorf("no code at %s (%s)", c.Address, c.Name)
		}
		rc, err := rpc.Receipt(ctx, c.TxHash)
		if err != nil || rc == nil || rc.Status != "0x1" {
			t.Errorf("contract %s: tx %s has no successful receipt (%v)", c.Name, c.TxHash, err)
		}
	}
}

// enqueue puts a task in the deployment queue as the API would, bypassing its checks.
func (s *stack) enqueue(task *asynq.Task, id string) error {
	aopt, err := asynq.ParseRedisURI(s.redisURL)
	if err != nil {
		return err
	}
	c := asynq.NewClient(aopt)
	defer c.Close()
	_, err = c.Enqueue(task, asynq.Queue(s.ns.DeployQueue()), asynq.TaskID(id), asynq.MaxRetry(1), asynq.Retention(time.Hour))
	return err
}

// deref prints an optional string.
func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

// chainAdmin is the worker's own access to a network's chain: its published port with
// the chain's admin token, for what users do not get (tracing).
func (s *stack) chainAdmin(t testing.TB, network string) *chains.RPC {
	t.Helper()
	url, header := s.chainAccess(t, network)
	return chains.NewRPC(url, header)
}

// chainAccess is the URL and the header chainAdmin reaches a chain with.
func (s *stack) chainAccess(t testing.TB, network string) (string, http.Header) {
	t.Helper()
	eng := testenv.RequireEngine(t, s.instance)
	c, err := eng.InspectContainer(context.Background(), "deployer-"+s.instance+"-chain-"+network)
	if err != nil {
		t.Fatal(err)
	}
	var token string
	for _, e := range c.Env {
		if v, ok := strings.CutPrefix(e, "DEPLOYER_ADMIN_TOKEN="); ok {
			token = v
		}
	}
	if token == "" || c.HostPorts[8545] == 0 {
		t.Fatalf("chain %s: no admin token or port", network)
	}
	return "http://127.0.0.1:" + strconv.Itoa(c.HostPorts[8545]), http.Header{chains.AdminHeader: {token}}
}
