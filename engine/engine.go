// Package engine is the one place that talks to the Docker engine. Everything it
// creates carries the installation's labels, and it removes only what carries them:
// another installation's resources, or anything made by hand, are never touched.
package engine

import (
	"context"
	"errors"
	"fmt"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/client"
)

// Labels every resource we create carries.
const (
	LabelManagedBy = "io.deployer.managed-by"
	LabelInstance  = "io.deployer.instance"
	LabelRole      = "io.deployer.role"
	LabelWorker    = "io.deployer.worker"
	LabelNetwork   = "io.deployer.network"
	LabelImageKey  = "io.deployer.image-key"
	LabelFramework = "io.deployer.framework"

	ManagedByValue = "deployer"
)

// Roles of the resources we create.
const (
	// RoleBase is the base image scripts/setup.sh makes; nothing here removes it.
	RoleBase        = "base"
	RoleRunnerImage = "runner-image"
	RoleChain       = "chain"
	RoleJob         = "job"
	RoleNetwork     = "network"
	RoleChainIPC    = "chain-ipc"
)

// Errors callers decide on.
var (
	// ErrUnavailable says the engine does not answer; the work can be retried.
	ErrUnavailable = errors.New("docker engine unavailable")
	// ErrNotFound says the resource does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict says a resource with the name exists already.
	ErrConflict = errors.New("already exists")
	// ErrNotOurs says the resource exists but does not carry this installation's labels.
	ErrNotOurs = errors.New("not managed by this installation")
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
	l := map[string]string{
		LabelManagedBy: ManagedByValue,
		LabelInstance:  e.instance,
		LabelRole:      role,
	}
	for k, v := range extra {
		l[k] = v
	}
	return l
}

// Ours says whether labels are this installation's.
func (e *Engine) Ours(labels map[string]string) bool {
	return labels[LabelManagedBy] == ManagedByValue && labels[LabelInstance] == e.instance
}

// wrap turns engine errors into ours, keeping the original for the log.
func (e *Engine) wrap(err error, op string) error {
	switch {
	case err == nil:
		return nil
	case client.IsErrConnectionFailed(err):
		return fmt.Errorf("%s: %w: %v", op, ErrUnavailable, err)
	case cerrdefs.IsNotFound(err):
		return fmt.Errorf("%s: %w: %v", op, ErrNotFound, err)
	case cerrdefs.IsConflict(err):
		return fmt.Errorf("%s: %w: %v", op, ErrConflict, err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: %w", op, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}
