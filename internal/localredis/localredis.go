// Package localredis runs the Redis of `deployer all` when no REDIS_URL is given.
//
// With redis-server installed it runs one as a child process that keeps its data in
// an append-only file under DATA_DIR, fsynced before every reply, so that a job the
// API acknowledged survives a crash of the deployer, or of the machine. The child
// listens only on a unix socket in DATA_DIR, dies with its parent, and is restarted
// if it dies alone. Without redis-server it falls back to an in-memory miniredis,
// which loses everything on a crash, and says so loudly.
//
// One deployer at a time owns a DATA_DIR: it holds a lock on a file there for its
// whole life, and a second one is refused.
package localredis

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/redis/go-redis/v9"
)

// Config says where the embedded Redis keeps its state.
type Config struct {
	// Dir is DATA_DIR: the append-only file, the socket, the pidfile, redis-server's
	// log and the lock. It is created (mode 0700) if missing.
	Dir string
	// Binary is the redis-server to run: a path, or a name looked up in PATH.
	// Empty: "redis-server".
	Binary string
}

// Files in DATA_DIR.
const (
	lockFile   = "deployer.lock"
	pidFile    = "redis.pid"
	socketFile = "redis.sock"
	logFile    = "redis.log"
)

// Server is the running embedded Redis.
type Server struct {
	opts  redis.Options
	child *child
	mem   *memory
	lock  *os.File
	dir   string
}

// Open takes DATA_DIR and starts the embedded Redis in it: a redis-server child with
// its append-only file there, or, when there is no redis-server, an in-memory one. A
// redis-server that an earlier deployer left running on DATA_DIR is stopped first. It
// fails with ErrLocked when another deployer holds DATA_DIR.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Server, error) {
	if cfg.Dir == "" {
		return nil, errors.New("DATA_DIR is empty")
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("DATA_DIR: %w", err)
	}
	if err := privateDir(dir, log); err != nil {
		return nil, err
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	s := &Server{lock: lock, dir: dir}
	bin := cfg.Binary
	if bin == "" {
		bin = "redis-server"
	}
	path, lookErr := exec.LookPath(bin)
	if lookErr != nil {
		s.mem, err = startMemory()
		if err != nil {
			lock.Close()
			return nil, fmt.Errorf("in-memory redis: %w", err)
		}
		s.opts = redis.Options{Network: "tcp", Addr: s.mem.addr()}
		log.Warn("NO CRASH SAFETY: redis-server was not found, so the embedded Redis is in memory: "+
			"every job, record and upload is LOST when this process stops or crashes. "+
			"Install redis-server (make setup, or apt-get install redis-server) and restart to keep state in DATA_DIR, "+
			"or set REDIS_URL", "error", lookErr, "data_dir", dir)
		return s, nil
	}
	s.child, err = startChild(ctx, path, dir, log)
	if err != nil {
		lock.Close()
		return nil, err
	}
	s.opts = s.child.opts
	log.Info("started embedded redis-server; state is kept in DATA_DIR (append-only file, fsynced on every write)",
		"data_dir", dir, "socket", s.child.opts.Addr, "pid", s.child.pid())
	return s, nil
}

// Options are how to reach the server: its network, address and password.
func (s *Server) Options() *redis.Options {
	o := s.opts
	return &o
}

// Durable says the server keeps its state through a crash: redis-server with its
// append-only file, not the in-memory fallback.
func (s *Server) Durable() bool { return s.child != nil }

// Close stops the server: redis-server with SHUTDOWN, which fsyncs its append-only
// file, then releases DATA_DIR.
func (s *Server) Close(ctx context.Context) error {
	var err error
	if s.child != nil {
		err = s.child.stop(ctx)
	}
	if s.mem != nil {
		s.mem.close()
	}
	return errors.Join(err, s.lock.Close())
}

// privateDir makes dir, or tightens an existing one to its owner: the append-only
// file holds the installation's signing seed.
func privateDir(dir string, log *slog.Logger) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("DATA_DIR: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("DATA_DIR: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("DATA_DIR %s: %w", dir, fs.ErrExist)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("DATA_DIR: it holds secrets and is open to others (%s), and could not be made private: %w", fi.Mode().Perm(), err)
		}
		log.Info("DATA_DIR made private to its owner (mode 0700): it holds the installation's secrets", "data_dir", dir)
	}
	return nil
}
