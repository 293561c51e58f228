package docker

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"

	"github.com/deployer-dev/deployer/engine"
)

// CreateContainer creates and starts a container, read-only, with no capabilities and
// no way to gain privileges. It returns engine.ErrConflict if the name is taken.
func (e *Engine) CreateContainer(ctx context.Context, spec engine.ContainerSpec) (string, error) {
	cfg := &container.Config{
		Image:        spec.Image,
		Cmd:          spec.Cmd,
		Env:          spec.Env,
		User:         spec.User,
		WorkingDir:   spec.WorkDir,
		Labels:       spec.Labels,
		ExposedPorts: nat.PortSet{},
	}
	pids := spec.Pids
	init := spec.Init
	host := &container.HostConfig{
		NetworkMode:    container.NetworkMode(spec.Network),
		ReadonlyRootfs: true,
		CapDrop:        []string{"ALL"},
		SecurityOpt:    []string{"no-new-privileges"},
		Tmpfs:          spec.Tmpfs,
		PortBindings:   nat.PortMap{},
		Init:           &init,
		Resources: container.Resources{
			Memory:     spec.Memory,
			MemorySwap: spec.Memory,
			NanoCPUs:   spec.NanoCPUs,
			PidsLimit:  &pids,
		},
	}
	if spec.RestartUnlessStopped {
		host.RestartPolicy = container.RestartPolicy{Name: container.RestartPolicyUnlessStopped}
	}
	for _, m := range spec.Mounts {
		host.Mounts = append(host.Mounts, mount.Mount{Type: mount.TypeVolume, Source: m.Volume, Target: m.Target, ReadOnly: m.ReadOnly})
	}
	for cport, hport := range spec.Ports {
		p := nat.Port(strconv.Itoa(cport) + "/tcp")
		cfg.ExposedPorts[p] = struct{}{}
		hp := ""
		if hport != 0 {
			hp = strconv.Itoa(hport)
		}
		host.PortBindings[p] = []nat.PortBinding{{HostIP: "127.0.0.1", HostPort: hp}}
	}
	var netCfg *network.NetworkingConfig
	if spec.Network != "" && spec.Network != "none" && len(spec.Aliases) > 0 {
		netCfg = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
			spec.Network: {Aliases: spec.Aliases},
		}}
	}
	resp, err := e.cli.ContainerCreate(ctx, cfg, host, netCfg, nil, spec.Name)
	if err != nil {
		return "", e.wrap(err, "create container "+spec.Name)
	}
	if err := e.cli.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		// Removed with a context of its own: ctx may be what failed.
		rmCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = e.cli.ContainerRemove(rmCtx, resp.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
		return "", e.wrap(err, "start container "+spec.Name)
	}
	return resp.ID, nil
}

// InspectContainer reads a container by name or id.
func (e *Engine) InspectContainer(ctx context.Context, ref string) (engine.Container, error) {
	r, err := e.cli.ContainerInspect(ctx, ref)
	if err != nil {
		return engine.Container{}, e.wrap(err, "inspect container "+ref)
	}
	c := engine.Container{ID: r.ID, Name: r.Name, Image: r.Image, HostPorts: map[int]int{}}
	if r.Config != nil {
		c.Labels, c.User, c.Env = r.Config.Labels, r.Config.User, r.Config.Env
	}
	if r.State != nil {
		c.Running, c.State, c.OOMKilled = r.State.Running, r.State.Status, r.State.OOMKilled
		c.StartedAt, _ = time.Parse(time.RFC3339Nano, r.State.StartedAt)
	}
	c.Created, _ = time.Parse(time.RFC3339Nano, r.Created)
	if r.NetworkSettings != nil {
		for p, bindings := range r.NetworkSettings.Ports {
			for _, b := range bindings {
				if hp, err := strconv.Atoi(b.HostPort); err == nil {
					c.HostPorts[p.Int()] = hp
				}
			}
		}
	}
	return c, nil
}

// ListContainers lists this installation's containers (running or not) whose labels
// match all of match.
func (e *Engine) ListContainers(ctx context.Context, match map[string]string) ([]engine.Container, error) {
	f := filters.NewArgs(
		filters.Arg("label", engine.LabelManagedBy+"="+engine.ManagedByValue),
		filters.Arg("label", engine.LabelInstance+"="+e.instance),
	)
	for k, v := range match {
		f.Add("label", k+"="+v)
	}
	list, err := e.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return nil, e.wrap(err, "list containers")
	}
	out := make([]engine.Container, 0, len(list))
	for _, s := range list {
		c := engine.Container{ID: s.ID, Image: s.ImageID, Labels: s.Labels, Running: s.State == "running", State: s.State,
			Created: time.Unix(s.Created, 0), HostPorts: map[int]int{}}
		if len(s.Names) > 0 {
			c.Name = s.Names[0]
		}
		for _, p := range s.Ports {
			if p.PublicPort != 0 {
				c.HostPorts[int(p.PrivatePort)] = int(p.PublicPort)
			}
		}
		out = append(out, c)
	}
	return out, nil
}

// RemoveContainer kills and removes one of our containers (and its anonymous
// volumes). A container without our labels is refused; one already gone is fine.
func (e *Engine) RemoveContainer(ctx context.Context, ref string) error {
	c, err := e.InspectContainer(ctx, ref)
	if err != nil {
		if isNotFound(err) {
			return nil
		}
		return err
	}
	if !e.Ours(c.Labels) {
		return fmt.Errorf("remove container %s: %w", ref, engine.ErrNotOurs)
	}
	err = e.cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && !isNotFound(e.wrap(err, "")) {
		return e.wrap(err, "remove container "+ref)
	}
	return nil
}
