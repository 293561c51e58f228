// Package cache holds what deployer keeps warm between deployments, one package per
// cache, each named for what it caches:
//
//   - imagecache: the runner images, per Docker engine (public names: IMAGE_CACHE_*,
//     CONTAINER_CACHE_MAX_AGE, /admin/server/cache/*);
//   - compilecache: a project's compiled artifacts, per worker host (public names:
//     FOUNDRY_CACHE_*, /admin/server/foundry-cache/*).
//
// This package is what they share: the Redis index of a cache's entries per owner
// (an engine, a store), with last use kept apart and hit, miss and build counters.
// Workers write it; the API reads it for status without touching an engine.
package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/deployer-dev/deployer/tasks"
)

// Stats count resolutions of one owner (an engine, a store).
type Stats struct {
	Hits   int64 `json:"hits"`
	Misses int64 `json:"misses"`
	Builds int64 `json:"builds"`
}

// Counters.
const (
	Hit   = "hits"
	Miss  = "misses"
	Build = "builds"
)

// ErrNoEntry says the index has no entry for the key.
var ErrNoEntry = errors.New("no index entry")

// Index holds one cache's entries per owner: each entry as JSON, its last use apart
// (so that a hit writes one small value), and the owner's counters.
type Index[E any] struct {
	rdb  redis.UniversalClient
	keys tasks.CacheKeys
	// withUse returns the entry with its last use set; before orders a list.
	withUse func(E, time.Time) E
	before  func(a, b E) bool
}

// NewIndex returns the index of the cache kind (its Redis keys' segment).
func NewIndex[E any](rdb redis.UniversalClient, ns tasks.Namespace, kind string,
	withUse func(E, time.Time) E, before func(a, b E) bool) *Index[E] {
	return &Index[E]{rdb: rdb, keys: ns.Cache(kind), withUse: withUse, before: before}
}

// Put records an entry.
func (x *Index[E]) Put(ctx context.Context, owner, key string, e E, lastUsed time.Time) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	pipe := x.rdb.TxPipeline()
	pipe.SAdd(ctx, x.keys.Owners(), owner)
	pipe.HSet(ctx, x.keys.Entries(owner), key, b)
	pipe.HSet(ctx, x.keys.LastUsed(owner), key, lastUsed.UnixMilli())
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("%s index: %w", x.keys.Kind, err)
	}
	return nil
}

// Get returns an entry with its last use, or ErrNoEntry.
func (x *Index[E]) Get(ctx context.Context, owner, key string) (E, error) {
	var e E
	b, err := x.rdb.HGet(ctx, x.keys.Entries(owner), key).Bytes()
	if errors.Is(err, redis.Nil) {
		return e, ErrNoEntry
	}
	if err != nil {
		return e, fmt.Errorf("%s index: %w", x.keys.Kind, err)
	}
	if err := json.Unmarshal(b, &e); err != nil {
		return e, fmt.Errorf("%s index entry %s: %w", x.keys.Kind, key, err)
	}
	if ms, err := x.rdb.HGet(ctx, x.keys.LastUsed(owner), key).Int64(); err == nil {
		e = x.withUse(e, time.UnixMilli(ms))
	}
	return e, nil
}

// List returns an owner's entries, in the index's order.
func (x *Index[E]) List(ctx context.Context, owner string) ([]E, error) {
	entries, err := x.rdb.HGetAll(ctx, x.keys.Entries(owner)).Result()
	if err != nil {
		return nil, fmt.Errorf("%s index: %w", x.keys.Kind, err)
	}
	used, err := x.rdb.HGetAll(ctx, x.keys.LastUsed(owner)).Result()
	if err != nil {
		return nil, fmt.Errorf("%s index: %w", x.keys.Kind, err)
	}
	keys := make([]string, 0, len(entries))
	for k := range entries {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []E
	for _, k := range keys {
		var e E
		if json.Unmarshal([]byte(entries[k]), &e) != nil {
			continue
		}
		if ms, err := strconv.ParseInt(used[k], 10, 64); err == nil {
			e = x.withUse(e, time.UnixMilli(ms))
		}
		out = append(out, e)
	}
	sort.SliceStable(out, func(i, j int) bool { return x.before(out[i], out[j]) })
	return out, nil
}

// Touch records a use of an entry.
func (x *Index[E]) Touch(ctx context.Context, owner, key string, at time.Time) error {
	if err := x.rdb.HSet(ctx, x.keys.LastUsed(owner), key, at.UnixMilli()).Err(); err != nil {
		return fmt.Errorf("%s index: %w", x.keys.Kind, err)
	}
	return nil
}

// Delete removes entries.
func (x *Index[E]) Delete(ctx context.Context, owner string, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	pipe := x.rdb.TxPipeline()
	pipe.HDel(ctx, x.keys.Entries(owner), keys...)
	pipe.HDel(ctx, x.keys.LastUsed(owner), keys...)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("%s index: %w", x.keys.Kind, err)
	}
	return nil
}

// DeleteOwner removes all of an owner's entries; its counters stay.
func (x *Index[E]) DeleteOwner(ctx context.Context, owner string) error {
	return x.rdb.Del(ctx, x.keys.Entries(owner), x.keys.LastUsed(owner)).Err()
}

// Count adds one to an owner's counter (Hit, Miss or Build).
func (x *Index[E]) Count(ctx context.Context, owner, counter string) error {
	pipe := x.rdb.TxPipeline()
	pipe.SAdd(ctx, x.keys.Owners(), owner)
	pipe.HIncrBy(ctx, x.keys.Stats(owner), counter, 1)
	_, err := pipe.Exec(ctx)
	return err
}

// Stats returns an owner's counters.
func (x *Index[E]) Stats(ctx context.Context, owner string) (Stats, error) {
	h, err := x.rdb.HGetAll(ctx, x.keys.Stats(owner)).Result()
	if err != nil {
		return Stats{}, fmt.Errorf("%s index: %w", x.keys.Kind, err)
	}
	var s Stats
	s.Hits, _ = strconv.ParseInt(h[Hit], 10, 64)
	s.Misses, _ = strconv.ParseInt(h[Miss], 10, 64)
	s.Builds, _ = strconv.ParseInt(h[Build], 10, 64)
	return s, nil
}

// Owners lists the owners (engines, stores) the index knows, sorted.
func (x *Index[E]) Owners(ctx context.Context) ([]string, error) {
	ids, err := x.rdb.SMembers(ctx, x.keys.Owners()).Result()
	sort.Strings(ids)
	return ids, err
}
