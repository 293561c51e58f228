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
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/deployer-dev/deployer/internal/testenv"
)

func requireRedisServer(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		testenv.Missing(t, "redis-server: %v", err)
	}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(testWriter{}, nil)) }

type testWriter struct{}

func (testWriter) Write(p []byte) (int, error) { return len(p), nil }

func open(t *testing.T, cfg Config) *Server {
	t.Helper()
	s, err := Open(context.Background(), cfg, quiet())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

func client(t *testing.T, s *Server) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(s.Options())
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// eventually polls cond until it holds, failing after a deadline generous enough for
// any machine.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 30 s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// gone says the process ended: no such process, or a zombie nobody reaped yet.
func gone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return syscall.Kill(pid, 0) != nil
	}
	// pid (comm) state ...: the state follows the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && len(s) > i+2 && s[i+2] == 'Z'
}

// What the embedded redis-server is told is on disk when it stops, and comes back
// when it starts again on the same DATA_DIR; DATA_DIR and the socket are private.
func TestStateOutlivesARestart(t *testing.T) {
	requireRedisServer(t)
	dir := filepath.Join(t.TempDir(), "data")
	ctx := context.Background()
	s, err := Open(ctx, Config{Dir: dir}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if !s.Durable() || s.Options().Network != "unix" {
		t.Fatalf("durable %t, network %q: want a redis-server on a unix socket", s.Durable(), s.Options().Network)
	}
	rdb := redis.NewClient(s.Options())
	if err := rdb.Set(ctx, "job", "queued", 0).Err(); err != nil {
		t.Fatal(err)
	}
	rdb.Close()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{pidFile, socketFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			t.Errorf("%s left after a clean stop", f)
		}
	}
	s = open(t, Config{Dir: dir})
	if got := client(t, s).Get(ctx, "job").Val(); got != "queued" {
		t.Errorf("after a restart the key holds %q", got)
	}
	for _, p := range []string{dir, s.Options().Addr} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s is open to others: %s", p, fi.Mode().Perm())
		}
	}
}

// An existing DATA_DIR open to others is made private: the state holds secrets.
func TestOpenDataDirIsMadePrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	open(t, Config{Dir: dir, Binary: "no-such-redis-server"})
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("DATA_DIR mode %s, want 0700", fi.Mode().Perm())
	}
}

// A write Redis answered is on disk at once: a redis-server killed with SIGKILL right
// after starts again from DATA_DIR with it (the supervisor restarts it alone).
func TestKilledChildIsRestartedWithItsState(t *testing.T) {
	requireRedisServer(t)
	s := open(t, Config{Dir: t.TempDir()})
	rdb := client(t, s)
	ctx := context.Background()
	if err := rdb.Set(ctx, "job", "queued", 0).Err(); err != nil {
		t.Fatal(err)
	}
	first := s.child.pid()
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a new redis-server answers", func() bool {
		return s.child.pid() != first && rdb.Ping(ctx).Err() == nil
	})
	if got := rdb.Get(ctx, "job").Val(); got != "queued" {
		t.Errorf("after SIGKILL and a restart the key holds %q", got)
	}
}

// startLeftover starts a redis-server on dir as an earlier deployer would have, not
// tied to this process.
func startLeftover(t *testing.T, dir string) *exec.Cmd {
	t.Helper()
	c := &child{dir: dir}
	sock := filepath.Join(dir, socketFile)
	cmd := exec.Command("redis-server", "--port", "0", "--unixsocket", sock, "--dir", dir,
		"--appendonly", "yes", "--appendfsync", "always", "--save", "", "--pidfile", filepath.Join(dir, pidFile))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
	c.opts = redis.Options{Network: "unix", Addr: sock}
	rdb := c.client()
	defer rdb.Close()
	eventually(t, "the leftover answers", func() bool { return rdb.Ping(context.Background()).Err() == nil })
	eventually(t, "the leftover wrote its pidfile", func() bool { return readPidfile(dir) == cmd.Process.Pid })
	if err := rdb.Set(context.Background(), "job", "running", 0).Err(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// A redis-server an earlier run left serving DATA_DIR is stopped (it wrote its
// append-only file) and replaced by one tied to this process, with the same state.
func TestLeftoverIsReplaced(t *testing.T) {
	requireRedisServer(t)
	dir := t.TempDir()
	old := startLeftover(t, dir)
	s := open(t, Config{Dir: dir})
	eventually(t, "the leftover exits", func() bool { return gone(old.Process.Pid) })
	if s.child.pid() == old.Process.Pid {
		t.Fatal("the leftover was kept")
	}
	if got := client(t, s).Get(context.Background(), "job").Val(); got != "running" {
		t.Errorf("the replacement has %q for the leftover's key", got)
	}
}

// A leftover that no longer answers on its socket (its socket file was removed) is
// still found by its pidfile and stopped.
func TestSilentLeftoverIsReplaced(t *testing.T) {
	requireRedisServer(t)
	if runtime.GOOS != "linux" {
		t.Skip("a silent leftover is found through /proc")
	}
	dir := t.TempDir()
	old := startLeftover(t, dir)
	if err := os.Remove(filepath.Join(dir, socketFile)); err != nil {
		t.Fatal(err)
	}
	s := open(t, Config{Dir: dir})
	eventually(t, "the leftover exits", func() bool { return gone(old.Process.Pid) })
	if got := client(t, s).Get(context.Background(), "job").Val(); got != "running" {
		t.Errorf("the replacement has %q for the leftover's key", got)
	}
}

// A redis-server on other data whose pid the pidfile happens to name is left alone.
func TestUnrelatedProcessIsLeftAlone(t *testing.T) {
	requireRedisServer(t)
	other := startLeftover(t, t.TempDir())
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, pidFile), []byte(strconv.Itoa(other.Process.Pid)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	open(t, Config{Dir: dir})
	if gone(other.Process.Pid) {
		t.Error("a redis-server serving another directory was stopped")
	}
}

// Two deployers on one DATA_DIR would run two redis-servers on one append-only file:
// the second is refused, saying which process holds it, until the first stops.
func TestSecondOpenIsRefused(t *testing.T) {
	requireRedisServer(t)
	dir := t.TempDir()
	first, err := Open(context.Background(), Config{Dir: dir}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(context.Background(), Config{Dir: dir}, quiet())
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "process "+strconv.Itoa(os.Getpid())) {
		t.Fatalf("second open: %v, want ErrLocked naming this process", err)
	}
	if err := first.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	open(t, Config{Dir: dir})
}

// Without redis-server the embedded Redis is in memory, not durable, and says so
// loudly.
func TestFallbackWithoutRedisServer(t *testing.T) {
	var logs bytes.Buffer
	s, err := Open(context.Background(), Config{Dir: t.TempDir(), Binary: "no-such-redis-server"},
		slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	if s.Durable() {
		t.Error("the in-memory fallback says it is durable")
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "LOST") {
		t.Errorf("no loud warning:\n%s", logs.String())
	}
	rdb := redis.NewClient(s.Options())
	defer rdb.Close()
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
}

// The in-memory fallback lets keys expire as a real Redis does, without being told.
func TestFallbackKeysExpireWithTheWallClock(t *testing.T) {
	s := open(t, Config{Dir: t.TempDir(), Binary: "no-such-redis-server"})
	rdb := client(t, s)
	ctx := context.Background()
	if err := rdb.Set(ctx, "short", "v", time.Second).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Set(ctx, "long", "v", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a key with a one-second TTL expires", func() bool { return rdb.Exists(ctx, "short").Val() == 0 })
	if rdb.Exists(ctx, "long").Val() != 1 {
		t.Error("a key with an hour to live expired")
	}
}

// A DATA_DIR whose path is too long for a unix socket gets its socket in a private
// temporary directory, removed on stop.
func TestLongDataDir(t *testing.T) {
	requireRedisServer(t)
	dir := filepath.Join(t.TempDir(), strings.Repeat("d", 120))
	s, err := Open(context.Background(), Config{Dir: dir}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	sock := s.Options().Addr
	if len(sock) > maxSocketPath || strings.HasPrefix(sock, dir) {
		t.Errorf("socket %s", sock)
	}
	if err := redis.NewClient(s.Options()).Ping(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(sock)); err == nil {
		t.Errorf("the socket's directory %s outlived the server", filepath.Dir(sock))
	}
}

// helperEnv makes the test binary a deployer stand-in: it opens DATA_DIR, prints the
// redis-server's pid and waits to be killed.
const helperEnv = "LOCALREDIS_TEST_HELPER_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(helperEnv); dir != "" {
		// Started from a goroutine other than main's, as roles do.
		res := make(chan error)
		go func() {
			s, err := Open(context.Background(), Config{Dir: dir}, quiet())
			if err == nil {
				fmt.Printf("pid %d\n", s.child.pid())
			}
			res <- err
		}()
		if err := <-res; err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		select {}
	}
	os.Exit(m.Run())
}

// A deployer killed with SIGKILL takes its redis-server with it, and the next start
// on DATA_DIR finds everything it wrote.
func TestChildDiesWithItsParent(t *testing.T) {
	requireRedisServer(t)
	if runtime.GOOS != "linux" {
		t.Skip("the parent-death signal is Linux's")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pid int
	if _, err := fmt.Fscanf(out, "pid %d\n", &pid); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("helper: %v", err)
	}
	rdb := redis.NewClient(&redis.Options{Network: "unix", Addr: filepath.Join(dir, socketFile)})
	defer rdb.Close()
	if err := rdb.Set(context.Background(), "job", "queued", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	eventually(t, "the redis-server dies with its parent", func() bool { return gone(pid) })
	s := open(t, Config{Dir: dir})
	if got := client(t, s).Get(context.Background(), "job").Val(); got != "queued" {
		t.Errorf("after the crash the key holds %q", got)
	}
}
