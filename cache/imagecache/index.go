package imagecache

import (
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/deployer-dev/deployer/cache"
	"github.com/deployer-dev/deployer/tasks"
)

// Entry is the index entry of one runner image on one engine.
type Entry struct {
	Key       string    `json:"key"`
	Tag       string    `json:"tag"`
	ImageID   string    `json:"image_id"`
	Framework string    `json:"framework"`
	EngineID  string    `json:"engine_id"`
	BuiltAt   time.Time `json:"built_at"`
	BuildMS   int64     `json:"build_ms"`
	Size      int64     `json:"size_bytes"`
	// Adopted says the image was found on the engine without an entry.
	Adopted  bool      `json:"adopted,omitempty"`
	LastUsed time.Time `json:"last_used"`
}

// Index is the image cache's index: entries per engine, oldest build first.
type Index = cache.Index[Entry]

// NewIndex returns the image cache's index of an installation.
func NewIndex(rdb redis.UniversalClient, ns tasks.Namespace) *Index {
	return cache.NewIndex(rdb, ns, tasks.ImageCacheKind,
		func(e Entry, used time.Time) Entry { e.LastUsed = used; return e },
		func(a, b Entry) bool { return a.BuiltAt.Before(b.BuiltAt) })
}
