// Package cache is the Redis side of what deployer keeps warm: the index of runner
// images per Docker engine and of compiled artifacts per store (what is there, when
// it was made, how big, when last used) with their hit, miss and build counters.
// Workers write it; the API reads it for status without touching an engine.
package cache

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
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
	Adopted  bool      `json:"adopted,omitempty"`
	LastUsed time.Time `json:"last_used"`
}

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

// Images is the image index of one installation, per engine.
type Images struct{ t table }

// NewImages returns the image index.
func NewImages(rdb redis.UniversalClient, ns tasks.Namespace) *Images {
	return &Images{table{rdb: rdb, ns: ns, kind: "images"}}
}

// Put records an image.
func (x *Images) Put(ctx context.Context, img Image) error {
	return x.t.put(ctx, img.EngineID, img.Key, img, img.LastUsed)
}

// Get returns one entry.
func (x *Images) Get(ctx context.Context, engine, key string) (Image, error) {
	var img Image
	last, err := x.t.get(ctx, engine, key, &img)
	img.LastUsed = last
	return img, err
}

// List returns an engine's entries, oldest build first.
func (x *Images) List(ctx context.Context, engine string) ([]Image, error) {
	var out []Image
	err := x.t.list(ctx, engine, func(raw []byte, last time.Time) {
		var img Image
		if json.Unmarshal(raw, &img) == nil {
			img.LastUsed = last
			out = append(out, img)
		}
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].BuiltAt.Before(out[j].BuiltAt) })
	return out, err
}

// Touch records a use of an image.
func (x *Images) Touch(ctx context.Context, engine, key string, at time.Time) error {
	return x.t.touch(ctx, engine, key, at)
}

// Delete removes entries.
func (x *Images) Delete(ctx context.Context, engine string, keys ...string) error {
	return x.t.delete(ctx, engine, keys...)
}

// DeleteEngine removes all of an engine's entries (its counters stay).
func (x *Images) DeleteEngine(ctx context.Context, engine string) error {
	return x.t.deleteOwner(ctx, engine)
}

// Count adds one to a counter of an engine.
func (x *Images) Count(ctx context.Context, engine, counter string) error {
	return x.t.count(ctx, engine, counter)
}

// Stats returns an engine's counters.
func (x *Images) Stats(ctx context.Context, engine string) (Stats, error) {
	return x.t.stats(ctx, engine)
}

// Engines lists the engines the index knows.
func (x *Images) Engines(ctx context.Context) ([]string, error) {
	return x.t.owners(ctx)
}
