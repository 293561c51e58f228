// Package cache keeps what a first deployment built warm for the next ones: the
// runner images on each engine.
package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/deployer-dev/deployer/engine"
	"github.com/deployer-dev/deployer/runner"
)

// Images resolves a runner image on one engine: the image built from the current
// definition when it is there, a build when it is not. Concurrent first requests in
// one process share one build.
type Images struct {
	eng   *engine.Engine
	def   *runner.Image
	log   *slog.Logger
	build singleflight.Group
}

// NewImages returns the image cache of one runner definition on one engine.
func NewImages(eng *engine.Engine, def *runner.Image, log *slog.Logger) *Images {
	return &Images{eng: eng, def: def, log: log}
}

// Resolved is a runner image ready to use.
type Resolved struct {
	ID  string
	Tag string
	Key string
	// Hit says the image was there; otherwise this call built it or waited for
	// another call's build.
	Hit      bool
	Duration time.Duration
}

// ErrBaseMissing says the base image set-up makes is not on the engine.
var ErrBaseMissing = errors.New("base image missing")

// Resolve returns the runner image, building it if the engine lacks it.
func (c *Images) Resolve(ctx context.Context) (Resolved, error) {
	start := time.Now()
	base, err := c.eng.InspectImage(ctx, c.def.BaseImage)
	if errors.Is(err, engine.ErrNotFound) {
		return Resolved{}, fmt.Errorf("%w: %s is not on this engine (make setup builds it)", ErrBaseMissing, c.def.BaseImage)
	}
	if err != nil {
		return Resolved{}, err
	}
	key, err := c.def.Key(base.ID)
	if err != nil {
		return Resolved{}, err
	}
	repo := c.def.Repository(c.eng.Instance())
	tag := repo + ":" + key[:12]
	if img, err := c.eng.InspectImage(ctx, tag); err == nil && c.eng.Ours(img.Labels) {
		return Resolved{ID: img.ID, Tag: tag, Key: key, Hit: true, Duration: time.Since(start)}, nil
	} else if err != nil && !errors.Is(err, engine.ErrNotFound) {
		return Resolved{}, err
	}
	v, err, _ := c.build.Do(key, func() (any, error) {
		// The build outlives one caller's cancellation: others may wait on it.
		return c.buildImage(context.WithoutCancel(ctx), key, tag, repo+":latest")
	})
	if err != nil {
		return Resolved{}, err
	}
	return Resolved{ID: v.(string), Tag: tag, Key: key, Duration: time.Since(start)}, nil
}

func (c *Images) buildImage(ctx context.Context, key, tag, latest string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	start := time.Now()
	c.log.Info("building runner image", "tag", tag, "framework", c.def.Framework)
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(c.def.WriteContext(pw)) }()
	id, err := c.eng.Build(ctx, engine.BuildSpec{
		Context:   pr,
		Tags:      []string{tag, latest},
		BuildArgs: c.def.BuildArgs(),
		Labels: c.eng.Labels(engine.RoleRunnerImage, map[string]string{
			engine.LabelImageKey:  key,
			engine.LabelFramework: c.def.Framework,
		}),
	})
	pr.Close()
	if err != nil {
		return "", fmt.Errorf("build runner image %s: %w", tag, err)
	}
	c.log.Info("built runner image", "tag", tag, "id", id, "duration", time.Since(start).Round(time.Millisecond))
	return id, nil
}
