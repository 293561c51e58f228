// Package imagecache is the image cache: it gives a deployment the runner image of
// its framework on its engine, built once and reused. An image is named by a content
// key (runner defines what goes into it); a missing one is built once however many
// ask, in a process by a single flight and across processes by a Redis lock. Redis
// indexes the images per engine (Index) with their last use, which the expiry reads:
// an image unused for its age limit is removed, never one a container uses, never
// the base image, never another installation's. The engine stays the truth.
//
// Its public names are IMAGE_CACHE_ENABLED, CONTAINER_CACHE_MAX_AGE and
// /admin/server/cache/*; its task types are cache:images:*.
package imagecache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/deployer-dev/deployer/cache"
	"github.com/deployer-dev/deployer/engine"
	"github.com/deployer-dev/deployer/runner"
	"github.com/deployer-dev/deployer/tasks"
)

// Locker serializes builds of one key across the processes on an engine.
type Locker interface {
	Lock(ctx context.Context, key string) (context.Context, func(), error)
}

// Engine is what the image cache needs of a Docker engine (engine/docker's).
type Engine interface {
	ID() string
	Instance() string
	InspectImage(ctx context.Context, ref string) (engine.Image, error)
	ListImages(ctx context.Context, role string) ([]engine.Image, error)
	Build(ctx context.Context, spec engine.BuildSpec) (string, error)
	Untag(ctx context.Context, tag string) error
	RemoveImage(ctx context.Context, id string) error
}

// Resolver gives the runner image of one definition on one engine: the one built from
// the current definition when the engine has it, a build when it does not. Concurrent
// first requests share one build: in a process by a single flight, across processes
// by a Redis lock. The engine is the truth and the Redis index its record: an entry
// whose image is gone is rebuilt, and an image of ours without an entry is adopted.
type Resolver struct {
	eng     Engine
	def     *runner.Image
	index   *Index
	locks   Locker
	ns      tasks.Namespace
	enabled bool
	log     *slog.Logger
	flight  singleflight.Group
}

// NewResolver returns the resolver of def on eng. With enabled false, every
// resolution builds (the baseline the cache is measured against).
func NewResolver(eng Engine, def *runner.Image, index *Index, locks Locker, ns tasks.Namespace, enabled bool, log *slog.Logger) *Resolver {
	return &Resolver{eng: eng, def: def, index: index, locks: locks, ns: ns, enabled: enabled, log: log}
}

// Resolved is a runner image ready to use.
type Resolved struct {
	ID  string
	Tag string
	Key string
	// Hit says the image was there. Otherwise this call built it, or waited for
	// another's build.
	Hit      bool
	Duration time.Duration
}

// ErrBaseMissing says the base image set-up makes is not on the engine.
var ErrBaseMissing = errors.New("base image missing")

// target computes the current key and tag.
func (r *Resolver) target(ctx context.Context) (key, tag string, err error) {
	base, err := r.eng.InspectImage(ctx, r.def.BaseImage)
	if errors.Is(err, engine.ErrNotFound) {
		return "", "", fmt.Errorf("%w: %s is not on this engine (make setup builds it)", ErrBaseMissing, r.def.BaseImage)
	}
	if err != nil {
		return "", "", err
	}
	key, err = r.def.Key(base.ID)
	if err != nil {
		return "", "", err
	}
	return key, r.def.Repository(r.eng.Instance()) + ":" + key[:12], nil
}

// Resolve returns the runner image, building it if the engine lacks it.
func (r *Resolver) Resolve(ctx context.Context) (Resolved, error) {
	start := time.Now()
	key, tag, err := r.target(ctx)
	if err != nil {
		return Resolved{}, err
	}
	if r.enabled {
		if img, ok, err := r.lookup(ctx, key, tag); err != nil {
			return Resolved{}, err
		} else if ok {
			r.recordUse(ctx, key, tag, img, true)
			return Resolved{ID: img.ID, Tag: tag, Key: key, Hit: true, Duration: time.Since(start)}, nil
		}
	}
	r.count(ctx, cache.Miss)
	ch := r.flight.DoChan(key, func() (any, error) {
		// The build outlives one caller's cancellation: others may wait on it.
		return r.buildOnce(context.WithoutCancel(ctx), key, tag)
	})
	var v any
	select {
	case <-ctx.Done():
		return Resolved{}, fmt.Errorf("wait for the build of %s: %w", tag, ctx.Err())
	case res := <-ch:
		if res.Err != nil {
			return Resolved{}, res.Err
		}
		v = res.Val
	}
	return Resolved{ID: v.(string), Tag: tag, Key: key, Duration: time.Since(start)}, nil
}

// lookup finds the image of the key on the engine.
func (r *Resolver) lookup(ctx context.Context, key, tag string) (engine.Image, bool, error) {
	img, err := r.eng.InspectImage(ctx, tag)
	if errors.Is(err, engine.ErrNotFound) {
		return engine.Image{}, false, nil
	}
	if err != nil {
		return engine.Image{}, false, err
	}
	return img, engine.Ours(r.eng.Instance(), img.Labels) && img.Labels[engine.LabelImageKey] == key, nil
}

// buildOnce builds under the engine's lock for the key, unless another process built
// the image while this one waited for the lock.
func (r *Resolver) buildOnce(ctx context.Context, key, tag string) (string, error) {
	if r.enabled {
		lockKey := r.ns.ImageBuildLock(r.eng.ID(), key)
		if _, unlock, err := r.locks.Lock(ctx, lockKey); err != nil {
			r.log.Warn("image build lock unavailable; building without it", "tag", tag, "error", err)
		} else {
			defer unlock()
		}
		if img, ok, err := r.lookup(ctx, key, tag); err != nil {
			return "", err
		} else if ok {
			r.recordUse(ctx, key, tag, img, false)
			return img.ID, nil
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	start := time.Now()
	r.log.Info("building runner image", "tag", tag, "framework", r.def.Framework)
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(r.def.WriteContext(pw)) }()
	id, err := r.eng.Build(ctx, engine.BuildSpec{
		Context:   pr,
		Tags:      []string{tag, r.def.Repository(r.eng.Instance()) + ":latest"},
		BuildArgs: r.def.BuildArgs(),
		Labels: engine.Labels(r.eng.Instance(), engine.RoleRunnerImage, map[string]string{
			engine.LabelImageKey:  key,
			engine.LabelFramework: r.def.Framework,
		}),
	})
	pr.Close()
	if err != nil {
		return "", fmt.Errorf("build runner image %s: %w", tag, err)
	}
	took := time.Since(start)
	r.log.Info("built runner image", "tag", tag, "id", shortID(id), "duration", took.Round(time.Millisecond))
	r.count(ctx, cache.Build)
	img, err := r.eng.InspectImage(ctx, id)
	if err != nil {
		return "", err
	}
	now := time.Now()
	r.put(ctx, Entry{Key: key, Tag: tag, ImageID: img.ID, Framework: r.def.Framework, EngineID: r.eng.ID(),
		BuiltAt: now, BuildMS: took.Milliseconds(), Size: img.Size, LastUsed: now})
	return img.ID, nil
}

// recordUse notes a use in the index, adopting an image that has no entry (or an
// entry naming another image).
func (r *Resolver) recordUse(ctx context.Context, key, tag string, img engine.Image, hit bool) {
	now := time.Now()
	if hit {
		r.count(ctx, cache.Hit)
	}
	entry, err := r.index.Get(ctx, r.eng.ID(), key)
	switch {
	case err == nil && entry.ImageID == img.ID:
		if err := r.index.Touch(ctx, r.eng.ID(), key, now); err != nil {
			r.warnIndex(err)
		}
	case err == nil || errors.Is(err, cache.ErrNoEntry):
		r.put(ctx, Entry{Key: key, Tag: tag, ImageID: img.ID, Framework: r.def.Framework, EngineID: r.eng.ID(),
			BuiltAt: img.Created, Size: img.Size, Adopted: true, LastUsed: now})
	default:
		r.warnIndex(err)
	}
}

func (r *Resolver) put(ctx context.Context, img Entry) {
	if err := r.index.Put(ctx, img.EngineID, img.Key, img, img.LastUsed); err != nil {
		r.warnIndex(err)
	}
}

func (r *Resolver) count(ctx context.Context, counter string) {
	if err := r.index.Count(ctx, r.eng.ID(), counter); err != nil {
		r.warnIndex(err)
	}
}

// warnIndex says the index is out of reach: deployments go on from the engine's
// state, and the index catches up (adoption) once Redis is back.
func (r *Resolver) warnIndex(err error) {
	r.log.Warn("image index unavailable (Redis); resolving from the engine's state", "error", err)
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
