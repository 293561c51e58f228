package docker

import (
	"context"
	"errors"
	"fmt"

	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"

	"github.com/deployer-dev/deployer/engine"
)

func isNotFound(err error) bool { return errors.Is(err, engine.ErrNotFound) }

// EnsureNetwork makes sure one of our bridge networks exists with the name.
func (e *Engine) EnsureNetwork(ctx context.Context, name string, labels map[string]string) error {
	n, err := e.cli.NetworkInspect(ctx, name, network.InspectOptions{})
	if err == nil {
		if !e.Ours(n.Labels) {
			return fmt.Errorf("network %s: %w", name, engine.ErrNotOurs)
		}
		return nil
	}
	if err := e.wrap(err, "inspect network "+name); !isNotFound(err) {
		return err
	}
	_, err = e.cli.NetworkCreate(ctx, name, network.CreateOptions{Driver: "bridge", Labels: labels})
	if err != nil {
		if werr := e.wrap(err, ""); errors.Is(werr, engine.ErrConflict) {
			return nil // another worker made it meanwhile
		}
		return e.wrap(err, "create network "+name)
	}
	return nil
}

// EnsureVolume makes sure one of our named volumes exists, and says whether it made it.
func (e *Engine) EnsureVolume(ctx context.Context, name string, labels map[string]string) (created bool, err error) {
	v, err := e.cli.VolumeInspect(ctx, name)
	if err == nil {
		if !e.Ours(v.Labels) {
			return false, fmt.Errorf("volume %s: %w", name, engine.ErrNotOurs)
		}
		return false, nil
	}
	if err := e.wrap(err, "inspect volume "+name); !isNotFound(err) {
		return false, err
	}
	// Creating an existing volume is not an error for the engine.
	_, err = e.cli.VolumeCreate(ctx, volume.CreateOptions{Name: name, Labels: labels})
	return err == nil, e.wrap(err, "create volume "+name)
}

// RemoveVolume removes one of our volumes; one already gone is fine.
func (e *Engine) RemoveVolume(ctx context.Context, name string) error {
	v, err := e.cli.VolumeInspect(ctx, name)
	if err != nil {
		if werr := e.wrap(err, ""); isNotFound(werr) {
			return nil
		}
		return e.wrap(err, "inspect volume "+name)
	}
	if !e.Ours(v.Labels) {
		return fmt.Errorf("volume %s: %w", name, engine.ErrNotOurs)
	}
	return e.wrap(e.cli.VolumeRemove(ctx, name, false), "remove volume "+name)
}
