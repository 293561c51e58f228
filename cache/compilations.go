package cache

import (
	"context"
	"encoding/json"
	"sort"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/deployer-dev/deployer/tasks"
)

// Compilation is the index entry of one project's compiled artifacts in one store (a
// directory on a worker's host; workers sharing the directory share the store).
type Compilation struct {
	Key       string    `json:"key"`
	StoreID   string    `json:"store_id"`
	Size      int64     `json:"size_bytes"`
	SHA256    string    `json:"sha256"`
	CreatedAt time.Time `json:"created_at"`
	CompileMS int64     `json:"compile_ms"`
	LastUsed  time.Time `json:"last_used"`
}

// Compilations is the compile cache's index of one installation, per store.
type Compilations struct{ t table }

// NewCompilations returns the compile cache's index.
func NewCompilations(rdb redis.UniversalClient, ns tasks.Namespace) *Compilations {
	return &Compilations{table{rdb: rdb, ns: ns, kind: "compilations"}}
}

// Put records an entry.
func (x *Compilations) Put(ctx context.Context, c Compilation) error {
	return x.t.put(ctx, c.StoreID, c.Key, c, c.LastUsed)
}

// Get returns an entry, or ErrNoEntry.
func (x *Compilations) Get(ctx context.Context, store, key string) (Compilation, error) {
	var c Compilation
	last, err := x.t.get(ctx, store, key, &c)
	c.LastUsed = last
	return c, err
}

// Touch records a use.
func (x *Compilations) Touch(ctx context.Context, store, key string, at time.Time) error {
	return x.t.touch(ctx, store, key, at)
}

// List returns a store's entries, oldest first.
func (x *Compilations) List(ctx context.Context, store string) ([]Compilation, error) {
	var out []Compilation
	err := x.t.list(ctx, store, func(raw []byte, last time.Time) {
		var c Compilation
		if json.Unmarshal(raw, &c) == nil {
			c.LastUsed = last
			out = append(out, c)
		}
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, err
}

// Delete removes entries.
func (x *Compilations) Delete(ctx context.Context, store string, keys ...string) error {
	return x.t.delete(ctx, store, keys...)
}

// DeleteStore removes all of a store's entries (its counters stay).
func (x *Compilations) DeleteStore(ctx context.Context, store string) error {
	return x.t.deleteOwner(ctx, store)
}

// Count adds one to a store's counter (Hit or Miss).
func (x *Compilations) Count(ctx context.Context, store, counter string) error {
	return x.t.count(ctx, store, counter)
}

// Stats returns a store's counters.
func (x *Compilations) Stats(ctx context.Context, store string) (Stats, error) {
	return x.t.stats(ctx, store)
}

// Stores lists the stores the index knows.
func (x *Compilations) Stores(ctx context.Context) ([]string, error) {
	return x.t.owners(ctx)
}
