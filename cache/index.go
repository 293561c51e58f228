// Package cache is the Redis side of what deployer keeps warm: the index of runner
// images per Docker engine (what is built, when, how big, when last used) and its
// hit, miss and build counters. Workers write it as they resolve images; the API
// reads it for status without touching an engine.
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

// Image is the index entry of one runner image on one engine.
type Image struct {
	Key       string    `json:"key"`
	Tag       string    `json:"tag"`
	ImageID   string    `json:"image_id"`
	Framework string    `json:"framework"`
	EngineID  string    `json:"engine_id"`
	BuiltAt   time.Time `json:"built_at"`
	BuildMS   int64     `json:"build_ms"`
	Size      int64     `json:"size_bytes"`
	// Adopted says the image was found on the engine without an entry.
	Adopted bool `json:"adopted,omitempty"`
	// LastUsed is kept apart from the entry, so that a hit writes one small value.
	LastUsed time.Time `json:"last_used"`
}

// Stats count resolutions on one engine.
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

// Images is the image index of one installation.
type Images struct {
	rdb redis.UniversalClient
	ns  tasks.Namespace
}

// NewImages returns the image index.
func NewImages(rdb redis.UniversalClient, ns tasks.Namespace) *Images {
	return &Images{rdb: rdb, ns: ns}
}

func (x *Images) enginesKey() string              { return x.ns.Key("images", "engines") }
func (x *Images) entriesKey(engine string) string { return x.ns.Key("images", engine, "entries") }
func (x *Images) usedKey(engine string) string    { return x.ns.Key("images", engine, "last-used") }
func (x *Images) statsKey(engine string) string   { return x.ns.Key("images", engine, "stats") }

// Put records an image.
func (x *Images) Put(ctx context.Context, img Image) error {
	b, err := json.Marshal(img)
	if err != nil {
		return err
	}
	pipe := x.rdb.TxPipeline()
	pipe.SAdd(ctx, x.enginesKey(), img.EngineID)
	pipe.HSet(ctx, x.entriesKey(img.EngineID), img.Key, b)
	pipe.HSet(ctx, x.usedKey(img.EngineID), img.Key, img.LastUsed.UnixMilli())
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("image index: %w", err)
	}
	return nil
}

// Touch records a use of an image.
func (x *Images) Touch(ctx context.Context, engine, key string, at time.Time) error {
	if err := x.rdb.HSet(ctx, x.usedKey(engine), key, at.UnixMilli()).Err(); err != nil {
		return fmt.Errorf("image index: %w", err)
	}
	return nil
}

// ErrNoEntry says the index has no entry for the image.
var ErrNoEntry = errors.New("no index entry")

// Get returns one entry.
func (x *Images) Get(ctx context.Context, engine, key string) (Image, error) {
	b, err := x.rdb.HGet(ctx, x.entriesKey(engine), key).Bytes()
	if errors.Is(err, redis.Nil) {
		return Image{}, ErrNoEntry
	}
	if err != nil {
		return Image{}, fmt.Errorf("image index: %w", err)
	}
	var img Image
	if err := json.Unmarshal(b, &img); err != nil {
		return Image{}, fmt.Errorf("image index entry %s: %w", key, err)
	}
	if ms, err := x.rdb.HGet(ctx, x.usedKey(engine), key).Int64(); err == nil {
		img.LastUsed = time.UnixMilli(ms)
	}
	return img, nil
}

// List returns an engine's entries, oldest build first.
func (x *Images) List(ctx context.Context, engine string) ([]Image, error) {
	entries, err := x.rdb.HGetAll(ctx, x.entriesKey(engine)).Result()
	if err != nil {
		return nil, fmt.Errorf("image index: %w", err)
	}
	used, err := x.rdb.HGetAll(ctx, x.usedKey(engine)).Result()
	if err != nil {
		return nil, fmt.Errorf("image index: %w", err)
	}
	out := make([]Image, 0, len(entries))
	for key, v := range entries {
		var img Image
		if json.Unmarshal([]byte(v), &img) != nil {
			continue
		}
		if ms, err := strconv.ParseInt(used[key], 10, 64); err == nil {
			img.LastUsed = time.UnixMilli(ms)
		}
		out = append(out, img)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].BuiltAt.Before(out[j].BuiltAt) })
	return out, nil
}

// Delete removes entries.
func (x *Images) Delete(ctx context.Context, engine string, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	pipe := x.rdb.TxPipeline()
	pipe.HDel(ctx, x.entriesKey(engine), keys...)
	pipe.HDel(ctx, x.usedKey(engine), keys...)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("image index: %w", err)
	}
	return nil
}

// DeleteEngine removes all of an engine's entries (its counters stay).
func (x *Images) DeleteEngine(ctx context.Context, engine string) error {
	return x.rdb.Del(ctx, x.entriesKey(engine), x.usedKey(engine)).Err()
}

// Count adds one to a counter of an engine.
func (x *Images) Count(ctx context.Context, engine, counter string) error {
	pipe := x.rdb.TxPipeline()
	pipe.SAdd(ctx, x.enginesKey(), engine)
	pipe.HIncrBy(ctx, x.statsKey(engine), counter, 1)
	_, err := pipe.Exec(ctx)
	return err
}

// Stats returns an engine's counters.
func (x *Images) Stats(ctx context.Context, engine string) (Stats, error) {
	h, err := x.rdb.HGetAll(ctx, x.statsKey(engine)).Result()
	if err != nil {
		return Stats{}, fmt.Errorf("image index: %w", err)
	}
	var s Stats
	s.Hits, _ = strconv.ParseInt(h[Hit], 10, 64)
	s.Misses, _ = strconv.ParseInt(h[Miss], 10, 64)
	s.Builds, _ = strconv.ParseInt(h[Build], 10, 64)
	return s, nil
}

// Engines lists the engines the index knows.
func (x *Images) Engines(ctx context.Context) ([]string, error) {
	ids, err := x.rdb.SMembers(ctx, x.enginesKey()).Result()
	sort.Strings(ids)
	return ids, err
}
