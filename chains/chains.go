// Package chains runs the chains deployments go to: one anvil container per managed
// network (local or fork) per engine. A chain belongs to its engine, not to the
// worker that started it: any worker on the engine adopts it, checks it answers before
// use, and replaces it when it died.
package chains

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/deployer-dev/deployer/cache/imagecache"
	"github.com/deployer-dev/deployer/engine"
	"github.com/deployer-dev/deployer/gateway"
	"github.com/deployer-dev/deployer/networks"
	"github.com/deployer-dev/deployer/tasks"
)

// rpcPort is the chain container's published port: the chain's front (chain.js in
// the runner image), which serves the public methods to anyone and everything to a
// request with the chain's admin token. anvil itself listens on the container's
// loopback only.
const rpcPort = 8545

// AdminHeader carries a chain's admin token.
const AdminHeader = "X-Deployer-Admin"

const (
	envAdminToken    = "DEPLOYER_ADMIN_TOKEN"
	envPublicMethods = "DEPLOYER_PUBLIC_METHODS"
	envForkURL       = "DEPLOYER_FORK_URL"
)

// ImageResolver gives the runner image anvil runs in.
type ImageResolver interface {
	Resolve(ctx context.Context) (imagecache.Resolved, error)
}

// Locker serializes chain starts across the workers of an engine.
type Locker interface {
	Lock(ctx context.Context, key string) (context.Context, func(), error)
}

// Engine is what the chains need of a Docker engine (engine/docker's).
type Engine interface {
	ID() string
	Instance() string
	CreateContainer(ctx context.Context, spec engine.ContainerSpec) (string, error)
	InspectContainer(ctx context.Context, ref string) (engine.Container, error)
	ListContainers(ctx context.Context, match map[string]string) ([]engine.Container, error)
	RemoveContainer(ctx context.Context, ref string) error
	EnsureNetwork(ctx context.Context, name string, labels map[string]string) error
}

// Supervisor keeps the managed chains of one engine.
type Supervisor struct {
	eng        Engine
	images     ImageResolver
	locks      Locker
	ns         tasks.Namespace
	publicHost string
	viaNetwork bool
	log        *slog.Logger
}

// NewSupervisor returns the supervisor of an engine's chains. publicHost is how
// users reach the engine's host. viaNetwork says this worker reaches chains over the
// Docker network (it runs in a container on it), not through the host's 127.0.0.1.
func NewSupervisor(eng Engine, images ImageResolver, locks Locker, ns tasks.Namespace, publicHost string, viaNetwork bool, log *slog.Logger) *Supervisor {
	return &Supervisor{eng: eng, images: images, locks: locks, ns: ns, publicHost: publicHost, viaNetwork: viaNetwork, log: log}
}

// Chain is a running, answering chain.
type Chain struct {
	Network     networks.Network
	ContainerID string
	// WorkerRPC is how this worker reaches the chain, with AdminToken in AdminHeader
	// for the methods users do not get; PublicRPC is how users reach it.
	WorkerRPC  string
	AdminToken string
	PublicRPC  string
	StartedAt  time.Time
}

// Admin is the header that opens the chain's admin methods to the worker; nil for a
// chain without one (a real network's).
func (c *Chain) Admin() http.Header {
	if c.AdminToken == "" {
		return nil
	}
	return http.Header{AdminHeader: []string{c.AdminToken}}
}

// DockerNetwork is the Docker network chains are on.
func DockerNetwork(instance string) string {
	if instance == "default" {
		return "deployer-network"
	}
	return "deployer-network-" + instance
}

func (s *Supervisor) containerName(n networks.Network) string {
	return containerName(s.eng.Instance(), n.Name)
}

func containerName(instance, network string) string {
	return "deployer-" + instance + "-chain-" + network
}

// Remove removes a network's chain from the engine, with what was deployed on it.
func Remove(ctx context.Context, eng Engine, network string) error {
	return eng.RemoveContainer(ctx, containerName(eng.Instance(), network))
}

// ErrUnhealthy says a chain does not answer as it should.
var ErrUnhealthy = errors.New("chain unhealthy")

// Ensure returns the network's chain on this engine, starting it, or replacing a
// dead one, as needed. A healthy chain costs one inspect and one RPC; starting or
// replacing one happens under the engine's lock for the network, so that workers
// sharing an engine share one chain.
func (s *Supervisor) Ensure(ctx context.Context, n networks.Network) (*Chain, error) {
	if !n.Managed() {
		return nil, fmt.Errorf("network %s is not a managed chain", n.Name)
	}
	if err := n.Available(); err != nil {
		return nil, err
	}
	if c, err := s.healthy(ctx, n, 0); err == nil {
		return c, nil
	} else if ctx.Err() != nil {
		return nil, err
	}
	_, unlock, err := s.locks.Lock(ctx, s.ns.ChainLock(s.eng.ID(), n.Name))
	if err != nil {
		return nil, err
	}
	defer unlock()
	for starts := 0; ; starts++ {
		// Another worker may have started or replaced it while this one waited.
		c, err := s.healthy(ctx, n, 30*time.Second)
		if err == nil {
			return c, nil
		}
		if ctx.Err() != nil || starts == 3 {
			return nil, fmt.Errorf("chain %s: %w", n.Name, err)
		}
		switch {
		case errors.Is(err, engine.ErrNotFound):
		case errors.Is(err, ErrUnhealthy):
			s.log.Warn("chain is dead or does not answer; replacing it", "network", n.Name, "error", err)
			if err := s.eng.RemoveContainer(ctx, s.containerName(n)); err != nil {
				return nil, err
			}
		default:
			return nil, err
		}
		if err := s.start(ctx, n); err != nil && !errors.Is(err, engine.ErrConflict) {
			return nil, err
		}
	}
}

// healthy returns the chain if its container runs and answers within wait (at
// least once). Its errors: engine.ErrNotFound (no container), ErrUnhealthy.
func (s *Supervisor) healthy(ctx context.Context, n networks.Network, wait time.Duration) (*Chain, error) {
	c, err := s.eng.InspectContainer(ctx, s.containerName(n))
	if err != nil {
		return nil, err
	}
	if !engine.Ours(s.eng.Instance(), c.Labels) {
		return nil, fmt.Errorf("container %s exists but is not ours: %w", s.containerName(n), engine.ErrNotOurs)
	}
	if !c.Running {
		return nil, fmt.Errorf("%w: container is %s", ErrUnhealthy, c.State)
	}
	chain := s.chainOf(n, c)
	if err := s.waitHealthy(ctx, chain, wait); err != nil {
		return nil, err
	}
	return chain, nil
}

func (s *Supervisor) chainOf(n networks.Network, c engine.Container) *Chain {
	port := c.HostPorts[rpcPort]
	worker := "http://127.0.0.1:" + strconv.Itoa(port)
	if s.viaNetwork {
		worker = "http://" + s.containerName(n) + ":" + strconv.Itoa(rpcPort)
	}
	chain := &Chain{
		Network:     n,
		ContainerID: c.ID,
		WorkerRPC:   worker,
		PublicRPC:   "http://" + s.publicHost + ":" + strconv.Itoa(port),
		StartedAt:   c.StartedAt,
	}
	for _, e := range c.Env {
		if v, ok := strings.CutPrefix(e, envAdminToken+"="); ok {
			chain.AdminToken = v
		}
	}
	return chain
}

// start creates the chain's container. ErrConflict says another worker did first.
func (s *Supervisor) start(ctx context.Context, n networks.Network) error {
	img, err := s.images.Resolve(ctx)
	if err != nil {
		return err
	}
	netName := DockerNetwork(s.eng.Instance())
	if err := s.eng.EnsureNetwork(ctx, netName, engine.Labels(s.eng.Instance(), engine.RoleNetwork, nil)); err != nil {
		return err
	}
	token := make([]byte, 24)
	if _, err := rand.Read(token); err != nil {
		return err
	}
	env := []string{
		envAdminToken + "=" + hex.EncodeToString(token),
		envPublicMethods + "=" + strings.Join(gateway.PublicMethods(), ","),
	}
	args := []string{"--chain-id", strconv.FormatUint(n.ChainID, 10)}
	if n.Type == networks.Fork {
		// The upstream URL may hold a key: it goes in the environment, not in the
		// container's command, which the engine shows to anyone who lists it.
		env = append(env, envForkURL+"="+n.ForkURL())
		if n.ForkBlock > 0 {
			args = append(args, "--fork-block-number", strconv.FormatUint(n.ForkBlock, 10))
		}
	}
	id, err := s.eng.CreateContainer(ctx, engine.ContainerSpec{
		Name:    s.containerName(n),
		Image:   img.ID,
		Cmd:     append([]string{"node", "/usr/local/lib/deployer/chain.js"}, args...),
		Env:     env,
		Labels:  engine.Labels(s.eng.Instance(), engine.RoleChain, map[string]string{engine.LabelNetwork: n.Name}),
		Tmpfs:   map[string]string{"/tmp": "size=512m,uid=10001,gid=10001,mode=0700"},
		Network: netName,
		Aliases: []string{"chain-" + n.Name},
		Ports:   map[int]int{rpcPort: n.Port},
		Memory:  2 << 30,
		Pids:    256,
		Init:    true,
	})
	if err != nil {
		return err
	}
	s.log.Info("started chain", "network", n.Name, "type", n.Type, "container", id[:12])
	return nil
}

// waitHealthy polls eth_chainId until the chain answers with its chain id, for at
// most limit (one try when limit is 0).
func (s *Supervisor) waitHealthy(ctx context.Context, c *Chain, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	rpc := NewRPC(c.WorkerRPC, nil)
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		id, err := rpc.ChainID(cctx)
		cancel()
		if err == nil && id == c.Network.ChainID {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("chain id %d, expected %d", id, c.Network.ChainID)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%w: %v", ErrUnhealthy, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %v", ErrUnhealthy, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// List reports the engine's chains.
func (s *Supervisor) List(ctx context.Context, nets networks.Set) ([]tasks.ChainStatus, error) {
	cs, err := s.eng.ListContainers(ctx, map[string]string{engine.LabelRole: engine.RoleChain})
	if err != nil {
		return nil, err
	}
	out := []tasks.ChainStatus{}
	for _, sum := range cs {
		c, err := s.eng.InspectContainer(ctx, sum.ID)
		if err != nil {
			continue
		}
		st := tasks.ChainStatus{Network: c.Labels[engine.LabelNetwork], Container: strings.TrimPrefix(c.Name, "/"),
			State: c.State, StartedAt: c.StartedAt}
		if n, err := nets.Get(st.Network); err == nil && c.Running {
			chain := s.chainOf(n, c)
			st.RPCURL = chain.PublicRPC
			st.Healthy = s.waitHealthy(ctx, chain, 0) == nil
		}
		out = append(out, st)
	}
	return out, nil
}
