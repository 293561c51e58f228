package localredis

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ErrLocked says another deployer holds DATA_DIR.
var ErrLocked = errors.New("DATA_DIR is in use by another deployer")

// lockDir takes DATA_DIR's lock for the life of the process: two redis-servers on one
// append-only file would corrupt it. The kernel releases a flock when its holder dies,
// however it dies, so a crash leaves no stale lock behind. The file descriptor is
// close-on-exec, so the redis-server child does not hold the lock after its parent
// died.
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("DATA_DIR lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			who := "another process"
			if pid := strings.TrimSpace(string(holder)); pid != "" {
				who = "process " + pid
			}
			return nil, fmt.Errorf("%w: %s holds %s; stop it, or give this one a DATA_DIR of its own", ErrLocked, who, path)
		}
		return nil, fmt.Errorf("DATA_DIR lock %s: %w", path, err)
	}
	// The holder's pid is only for the message above; the lock is the flock.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}
