package localredis

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// appendFsync is the child's fsync policy. "always" fsyncs the append-only file
// before Redis answers a write, so a job the API answered 202 for is on disk even if
// the machine, not only the process, goes down the next moment. "everysec" would
// lose nothing to a kill -9 either (the writes are in the page cache) unless the
// disk is slow: Redis then holds its writes back, but not its answers, for up to
// two seconds. A deployment makes a few dozen writes, so the cost (about a
// millisecond each, measured) does not show.
const appendFsync = "always"

// maxSocketPath is the longest unix socket path every unix takes: sun_path is 108
// bytes on Linux and 104 on the BSDs, with the terminating NUL.
const maxSocketPath = 103

const (
	// readyTimeout bounds the wait for redis-server to answer at start: loading a
	// large append-only file takes a while.
	readyTimeout = 2 * time.Minute
	// stopTimeout is how long a redis-server gets to exit after SHUTDOWN (and again
	// after SIGTERM) before it is killed.
	stopTimeout = 15 * time.Second
	// maxBackoff bounds the wait between restarts of a redis-server that keeps dying.
	maxBackoff = 30 * time.Second
)

// child is the redis-server process, supervised: restarted when it dies on its own,
// stopped with SHUTDOWN.
type child struct {
	bin, dir string
	args     []string
	opts     redis.Options
	// sockDir is a private directory for the socket when DATA_DIR's path is too long
	// for one; it is removed on stop.
	sockDir string
	log     *slog.Logger

	mu sync.Mutex
	// proc is the current process; exited is closed when it exits.
	proc   *os.Process
	exited chan struct{}
	// quit is closed, under mu, by stop: no process starts after it.
	quit chan struct{}
	// done is closed when the supervisor returned: no process of ours runs.
	done     chan struct{}
	stopOnce sync.Once
	stopErr  error
}

// startChild stops a leftover redis-server on dir, starts one of its own and waits
// for it to answer.
func startChild(ctx context.Context, bin, dir string, log *slog.Logger) (*child, error) {
	c := &child{bin: bin, dir: dir, log: log, quit: make(chan struct{}), done: make(chan struct{})}
	sock := filepath.Join(dir, socketFile)
	if len(sock) > maxSocketPath {
		tmp, err := os.MkdirTemp("", "deployer-redis-")
		if err != nil {
			return nil, fmt.Errorf("embedded redis: a directory for its socket: %w", err)
		}
		sock, c.sockDir = filepath.Join(tmp, socketFile), tmp
		log.Info("DATA_DIR's path is too long for a unix socket; the embedded Redis listens in a private temporary directory", "socket", sock)
	}
	c.opts = redis.Options{Network: "unix", Addr: sock}
	c.args = []string{
		// No TCP: only this user reaches the socket (mode 0700).
		"--port", "0",
		"--unixsocket", sock, "--unixsocketperm", "700",
		"--dir", dir,
		"--appendonly", "yes", "--appendfsync", appendFsync,
		// The append-only file is the only persistence: no RDB snapshots beside it.
		"--save", "",
		"--pidfile", filepath.Join(dir, pidFile),
		"--logfile", filepath.Join(dir, logFile),
		"--daemonize", "no",
	}
	if err := replaceLeftover(ctx, dir, sock, log); err != nil {
		c.removeSockDir()
		return nil, err
	}
	started := make(chan error, 1)
	go c.supervise(started)
	if err := <-started; err != nil {
		c.removeSockDir()
		return nil, fmt.Errorf("embedded redis: start %s: %w", bin, err)
	}
	if err := c.waitReady(ctx); err != nil {
		_ = c.stop(context.Background())
		return nil, err
	}
	return c, nil
}

// supervise starts redis-server, and starts it again whenever it dies on its own,
// until stop.
func (c *child) supervise(started chan<- error) {
	// Pdeathsig fires when the thread that started the child exits, not the process:
	// this goroutine keeps its thread for as long as it starts and waits for children,
	// and the runtime ends the thread when the goroutine returns.
	runtime.LockOSThread()
	defer close(c.done)
	backoff := time.Second
	for first := true; ; first = false {
		cmd, exited, err := c.start()
		if first {
			started <- err
			if err != nil {
				return
			}
		}
		if errors.Is(err, errStopping) {
			return
		}
		if err != nil {
			c.log.Error("could not restart the embedded redis-server", "error", err, "retry_in", backoff)
		} else {
			since := time.Now()
			werr := cmd.Wait()
			close(exited)
			if c.stopping() {
				return
			}
			if time.Since(since) > time.Minute {
				backoff = time.Second
			}
			c.log.Error("the embedded redis-server exited on its own; restarting it from DATA_DIR",
				"pid", cmd.Process.Pid, "error", werr, "retry_in", backoff, "log", filepath.Join(c.dir, logFile), "log_tail", c.logTail())
		}
		select {
		case <-c.quit:
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

var errStopping = errors.New("stopping")

// start starts one process, unless stop began.
func (c *child) start() (*exec.Cmd, chan struct{}, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopping() {
		return nil, nil, errStopping
	}
	cmd := exec.Command(c.bin, c.args...)
	cmd.Dir = c.dir
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	c.proc, c.exited = cmd.Process, make(chan struct{})
	return cmd, c.exited, nil
}

func (c *child) stopping() bool {
	select {
	case <-c.quit:
		return true
	default:
		return false
	}
}

func (c *child) current() (*os.Process, chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.proc, c.exited
}

func (c *child) pid() int {
	if p, _ := c.current(); p != nil {
		return p.Pid
	}
	return 0
}

// client is a connection for the supervisor's own commands: no retries, short waits.
func (c *child) client() *redis.Client { return socketClient(c.opts.Addr) }

func socketClient(sock string) *redis.Client {
	return redis.NewClient(&redis.Options{Network: "unix", Addr: sock, MaxRetries: -1, DialerRetries: 1,
		DialTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second, PoolSize: 1})
}

// answers says a Redis answers PING on the socket. It looks for the socket file
// first: go-redis logs every failed dial, and a server starting has none yet.
func answers(ctx context.Context, rdb *redis.Client, sock string) bool {
	if _, err := os.Stat(sock); err != nil {
		return false
	}
	return rdb.Ping(ctx).Err() == nil
}

// waitReady waits until redis-server answers PING: it answers LOADING while it reads
// its append-only file.
func (c *child) waitReady(ctx context.Context) error {
	rdb := c.client()
	defer rdb.Close()
	_, exited := c.current()
	deadline := time.NewTimer(readyTimeout)
	defer deadline.Stop()
	for !answers(ctx, rdb, c.opts.Addr) {
		select {
		case <-exited:
			return fmt.Errorf("embedded redis-server exited at start (its log: %s): %s", filepath.Join(c.dir, logFile), c.logTail())
		case <-ctx.Done():
			return fmt.Errorf("embedded redis-server: %w", ctx.Err())
		case <-deadline.C:
			return fmt.Errorf("embedded redis-server did not answer within %s (its log: %s)", readyTimeout, filepath.Join(c.dir, logFile))
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// stop sends SHUTDOWN, which fsyncs the append-only file and removes the socket and
// pidfile, and waits for the process to exit; one that does not is sent SIGTERM,
// then killed. ctx bounds the whole wait.
func (c *child) stop(ctx context.Context) error {
	c.stopOnce.Do(func() {
		c.mu.Lock()
		close(c.quit)
		proc, exited := c.proc, c.exited
		c.mu.Unlock()
		defer c.removeSockDir()
		if proc == nil {
			<-c.done
			return
		}
		rdb := c.client()
		// The answer does not matter (the connection closes as the server exits):
		// the exit does.
		_ = rdb.Shutdown(ctx).Err()
		rdb.Close()
		if waitClosed(ctx, exited, stopTimeout) {
			<-c.done
			return
		}
		c.log.Warn("the embedded redis-server did not stop on SHUTDOWN; sending SIGTERM", "pid", proc.Pid)
		_ = proc.Signal(syscall.SIGTERM)
		if waitClosed(ctx, exited, stopTimeout) {
			<-c.done
			return
		}
		_ = proc.Kill()
		<-c.done
		c.stopErr = fmt.Errorf("embedded redis-server (pid %d) did not stop; killed it", proc.Pid)
	})
	return c.stopErr
}

func (c *child) removeSockDir() {
	if c.sockDir != "" {
		os.RemoveAll(c.sockDir)
	}
}

// waitClosed waits up to limit (and no longer than ctx) for ch to close.
func waitClosed(ctx context.Context, ch <-chan struct{}, limit time.Duration) bool {
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-ctx.Done():
		return false
	case <-t.C:
		return false
	}
}

// logTail is the end of redis-server's log, for messages about its failures.
func (c *child) logTail() string {
	b, err := os.ReadFile(filepath.Join(c.dir, logFile))
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-5):], "\n")
}

// replaceLeftover stops a redis-server that still serves dir, left by an earlier
// deployer: one that answers on the socket, or the live redis-server the pidfile
// names whose working directory is dir. It stops it rather than adopt it: a process
// that is not our child would not die with this one, and may run with another
// configuration (fsync policy, version). SHUTDOWN (or SIGTERM) makes it fsync its
// append-only file first, so the replacement starts from everything it had. Holding
// DATA_DIR's lock, no live deployer owns it. Leftovers are rare: on Linux the child
// dies with its parent.
func replaceLeftover(ctx context.Context, dir, sock string, log *slog.Logger) error {
	pid := readPidfile(dir)
	serving := func() bool { return pid > 0 && servesDir(pid, dir) }
	rdb := socketClient(sock)
	defer rdb.Close()
	if !serving() && !answers(ctx, rdb, sock) {
		return nil
	}
	log.Warn("a redis-server from an earlier run still serves DATA_DIR; stopping it to start one tied to this process",
		"pid", pid, "data_dir", dir)
	if err := rdb.Shutdown(ctx).Err(); err != nil && serving() {
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
	deadline := time.Now().Add(stopTimeout)
	for serving() || answers(ctx, rdb, sock) {
		if time.Now().After(deadline) {
			if !serving() {
				return fmt.Errorf("DATA_DIR: a redis-server still answers on %s and could not be stopped", sock)
			}
			_ = syscall.Kill(pid, syscall.SIGKILL)
			deadline = time.Now().Add(stopTimeout)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("DATA_DIR: stopping a leftover redis-server: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

func readPidfile(dir string) int {
	b, err := os.ReadFile(filepath.Join(dir, pidFile))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// servesDir says pid is a live redis-server whose working directory is dir (Redis
// moves into its --dir): a pid reused by an unrelated process, or by a redis-server
// serving other data, is left alone. It reads /proc, so elsewhere than on Linux it
// says no, and a leftover is found by its socket alone.
func servesDir(pid int, dir string) bool {
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil || !strings.HasPrefix(string(comm), "redis-server") {
		return false
	}
	cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
	if err != nil {
		return false
	}
	real, err := filepath.EvalSymlinks(dir)
	return err == nil && cwd == real
}
