package compilecache

import (
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/deployer-dev/deployer/cache"
	"github.com/deployer-dev/deployer/tasks"
)

// Entry is the index entry of one project's compiled artifacts in one store (a
// directory on a worker's host; workers sharing the directory share the store).
type Entry struct {
	Key       string    `json:"key"`
	StoreID   string    `json:"store_id"`
	Framework string    `json:"framework"`
	Size      int64     `json:"size_bytes"`
	SHA256    string    `json:"sha256"`
	CreatedAt time.Time `json:"created_at"`
	CompileMS int64     `json:"compile_ms"`
	LastUsed  time.Time `json:"last_used"`
}

// Index is the compile cache's index: entries per store, oldest first.
type Index = cache.Index[Entry]

// NewIndex returns the compile cache's index of an installation.
func NewIndex(rdb redis.UniversalClient, ns tasks.Namespace) *Index {
	return cache.NewIndex(rdb, ns, tasks.CompileCacheKind,
		func(e Entry, used time.Time) Entry { e.LastUsed = used; return e },
		func(a, b Entry) bool { return a.CreatedAt.Before(b.CreatedAt) })
}
