// Package docker is the one place that talks to the Docker engine. Everything it
// creates carries the installation's labels, and it removes only what carries them:
// another installation's resources, or anything made by hand, are never touched.
package docker

import (
	"context"
	"errors"
	"fmt"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/client"

	"github.com/deployer-dev/deployer/engine"
)

// Engine is a Docker engine, seen by one installation.
type Engine struct {
	cli      *client.Client
	instance string
	id       string
	name     string
}

// New connects to the engine named by the environment (DOCKER_HOST, or the local
// socket), negotiating the API version: the engine may be older than this client.
func New(ctx context.Context, instance string) (*Engine, error) {
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	e := &Engine{cli: cli, instance: instance}
	info, err := cli.Info(ctx)
	if err != nil {
		cli.Close()
		return nil, e.wrap(err, "connect")
	}
	e.id, e.name = info.ID, info.Name
	return e, nil
}

// Close releases the client.
func (e *Engine) Close() error { return e.cli.Close() }

// ID identifies the engine; workers on one engine share its images and chains.
func (e *Engine) ID() string { return e.id }

// Name is the engine's host name.
func (e *Engine) Name() string { return e.name }

// Instance is the installation this engine view belongs to.
func (e *Engine) Instance() string { return e.instance }

// Ping says whether the engine answers.
func (e *Engine) Ping(ctx context.Context) error {
	_, err := e.cli.Ping(ctx)
	return e.wrap(err, "ping")
}

// Labels returns our labels for a resource of the role, with extra ones.
func (e *Engine) Labels(role string, extra map[string]string) map[string]string {
	return engine.Labels(e.instance, role, extra)
}

// Ours says whether labels are this installation's.
func (e *Engine) Ours(labels map[string]string) bool { return engine.Ours(e.instance, labels) }

// wrap turns engine errors into ours, keeping the original for the log.
func (e *Engine) wrap(err error, op string) error {
	switch {
	case err == nil:
		return nil
	case client.IsErrConnectionFailed(err):
		return fmt.Errorf("%s: %w: %v", op, engine.ErrUnavailable, err)
	case cerrdefs.IsNotFound(err):
		return fmt.Errorf("%s: %w: %v", op, engine.ErrNotFound, err)
	case cerrdefs.IsConflict(err):
		return fmt.Errorf("%s: %w: %v", op, engine.ErrConflict, err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: %w", op, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}
