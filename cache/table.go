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

// table holds one kind of entry per owner (an engine, an artifact store): each
// entry as JSON, its last use apart (so that a hit writes one small value), and the
// owner's counters.
type table struct {
	rdb  redis.UniversalClient
	ns   tasks.Namespace
	kind string
}

func (t table) ownersKey() string              { return t.ns.Key(t.kind, "owners") }
func (t table) entriesKey(owner string) string { return t.ns.Key(t.kind, owner, "entries") }
func (t table) usedKey(owner string) string    { return t.ns.Key(t.kind, owner, "last-used") }
func (t table) statsKey(owner string) string   { return t.ns.Key(t.kind, owner, "stats") }

func (t table) put(ctx context.Context, owner, key string, v any, lastUsed time.Time) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	pipe := t.rdb.TxPipeline()
	pipe.SAdd(ctx, t.ownersKey(), owner)
	pipe.HSet(ctx, t.entriesKey(owner), key, b)
	pipe.HSet(ctx, t.usedKey(owner), key, lastUsed.UnixMilli())
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("%s index: %w", t.kind, err)
	}
	return nil
}

// get decodes an entry into v and returns its last use, or ErrNoEntry.
func (t table) get(ctx context.Context, owner, key string, v any) (time.Time, error) {
	b, err := t.rdb.HGet(ctx, t.entriesKey(owner), key).Bytes()
	if errors.Is(err, redis.Nil) {
		return time.Time{}, ErrNoEntry
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("%s index: %w", t.kind, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return time.Time{}, fmt.Errorf("%s index entry %s: %w", t.kind, key, err)
	}
	ms, err := t.rdb.HGet(ctx, t.usedKey(owner), key).Int64()
	if err != nil {
		return time.Time{}, nil
	}
	return time.UnixMilli(ms), nil
}

// list calls each with every entry of an owner, in key order.
func (t table) list(ctx context.Context, owner string, each func(raw []byte, lastUsed time.Time)) error {
	entries, err := t.rdb.HGetAll(ctx, t.entriesKey(owner)).Result()
	if err != nil {
		return fmt.Errorf("%s index: %w", t.kind, err)
	}
	used, err := t.rdb.HGetAll(ctx, t.usedKey(owner)).Result()
	if err != nil {
		return fmt.Errorf("%s index: %w", t.kind, err)
	}
	keys := make([]string, 0, len(entries))
	for k := range entries {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		var last time.Time
		if ms, err := strconv.ParseInt(used[k], 10, 64); err == nil {
			last = time.UnixMilli(ms)
		}
		each([]byte(entries[k]), last)
	}
	return nil
}

func (t table) touch(ctx context.Context, owner, key string, at time.Time) error {
	if err := t.rdb.HSet(ctx, t.usedKey(owner), key, at.UnixMilli()).Err(); err != nil {
		return fmt.Errorf("%s index: %w", t.kind, err)
	}
	return nil
}

func (t table) delete(ctx context.Context, owner string, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	pipe := t.rdb.TxPipeline()
	pipe.HDel(ctx, t.entriesKey(owner), keys...)
	pipe.HDel(ctx, t.usedKey(owner), keys...)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("%s index: %w", t.kind, err)
	}
	return nil
}

// deleteOwner removes all of an owner's entries; its counters stay.
func (t table) deleteOwner(ctx context.Context, owner string) error {
	return t.rdb.Del(ctx, t.entriesKey(owner), t.usedKey(owner)).Err()
}

func (t table) count(ctx context.Context, owner, counter string) error {
	pipe := t.rdb.TxPipeline()
	pipe.SAdd(ctx, t.ownersKey(), owner)
	pipe.HIncrBy(ctx, t.statsKey(owner), counter, 1)
	_, err := pipe.Exec(ctx)
	return err
}

func (t table) stats(ctx context.Context, owner string) (Stats, error) {
	h, err := t.rdb.HGetAll(ctx, t.statsKey(owner)).Result()
	if err != nil {
		return Stats{}, fmt.Errorf("%s index: %w", t.kind, err)
	}
	var s Stats
	s.Hits, _ = strconv.ParseInt(h[Hit], 10, 64)
	s.Misses, _ = strconv.ParseInt(h[Miss], 10, 64)
	s.Builds, _ = strconv.ParseInt(h[Build], 10, 64)
	return s, nil
}

func (t table) owners(ctx context.Context) ([]string, error) {
	ids, err := t.rdb.SMembers(ctx, t.ownersKey()).Result()
	sort.Strings(ids)
	return ids, err
}
