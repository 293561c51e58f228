package chains

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/deployer-dev/deployer/cache/imagecache"
	"github.com/deployer-dev/deployer/engine"
	"github.com/deployer-dev/deployer/networks"
	"github.com/deployer-dev/deployer/tasks"
)

// anvilRPC answers eth_chainId as a chain of the id.
func anvilRPC(t *testing.T, chainID uint64) int {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			ID any `json:"id"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		_ = json.NewEncoder(w).Encode(map[string]any{"jsonrpc": "2.0", "id": req.ID, "result": "0x" + strconv.FormatUint(chainID, 16)})
	}))
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	p, _ := strconv.Atoi(port)
	return p
}

// fakeEngine holds containers by name; a created chain container "runs" and answers
// on the port the test gave it.
type fakeEngine struct {
	mu         sync.Mutex
	containers map[string]engine.Container
	created    []engine.ContainerSpec
	removed    []string
	port       int
}

func (e *fakeEngine) ID() string       { return "engine-1" }
func (e *fakeEngine) Instance() string { return "unit" }
func (e *fakeEngine) CreateContainer(_ context.Context, spec engine.ContainerSpec) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.created = append(e.created, spec)
	e.containers[spec.Name] = engine.Container{ID: "id-" + spec.Name, Name: spec.Name, Labels: spec.Labels,
		Running: true, State: "running", HostPorts: map[int]int{rpcPort: e.port}, Env: spec.Env}
	return "id-" + spec.Name + "-0123456789", nil
}
func (e *fakeEngine) InspectContainer(_ context.Context, ref string) (engine.Container, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, ok := e.containers[ref]
	if !ok {
		return engine.Container{}, engine.ErrNotFound
	}
	return c, nil
}
func (e *fakeEngine) ListContainers(context.Context, map[string]string) ([]engine.Container, error) {
	return nil, nil
}
func (e *fakeEngine) RemoveContainer(_ context.Context, ref string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.removed = append(e.removed, ref)
	delete(e.containers, ref)
	return nil
}
func (e *fakeEngine) EnsureNetwork(context.Context, string, map[string]string) error { return nil }

type oneImage struct{}

func (oneImage) Resolve(context.Context) (imagecache.Resolved, error) {
	return imagecache.Resolved{ID: "sha256:runner"}, nil
}

type localLocks struct{ mu sync.Mutex }

func (l *localLocks) Lock(ctx context.Context, _ string) (context.Context, func(), error) {
	l.mu.Lock()
	return ctx, l.mu.Unlock, nil
}

func local(t *testing.T) networks.Network {
	set, err := networks.Parse([]byte(`{"networks": [{"name": "local", "type": "local", "chain_id": 31337, "port": 0}]}`), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	n, _ := set.Get("local")
	return n
}

// supervisor is a worker's supervisor; workers on one engine share the locks (in
// Redis, in production).
func supervisor(eng *fakeEngine, locks *localLocks) *Supervisor {
	return NewSupervisor(eng, oneImage{}, locks, tasks.Namespace{Instance: "unit"}, "203.0.113.7", false,
		slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// The first Ensure starts the chain, labelled ours, publishing its RPC; the next
// ones adopt it without starting another, whatever worker asks.
func TestEnsureStartsOnceThenAdopts(t *testing.T) {
	eng := &fakeEngine{containers: map[string]engine.Container{}, port: anvilRPC(t, 31337)}
	n := local(t)
	locks := &localLocks{}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := supervisor(eng, locks).Ensure(context.Background(), n)
			if err != nil {
				t.Error(err)
				return
			}
			if c.PublicRPC != "http://203.0.113.7:"+strconv.Itoa(eng.port) || len(c.AdminToken) != 48 {
				t.Errorf("chain %+v", c)
			}
		}()
	}
	wg.Wait()
	if len(eng.created) != 1 {
		t.Fatalf("%d chains started for one network", len(eng.created))
	}
	spec := eng.created[0]
	if !engine.Ours("unit", spec.Labels) || spec.Labels[engine.LabelRole] != engine.RoleChain || !strings.Contains(strings.Join(spec.Cmd, " "), "--chain-id 31337") ||
		!strings.Contains(strings.Join(spec.Env, " "), "DEPLOYER_PUBLIC_METHODS=") {
		t.Errorf("chain container %+v", spec)
	}
}

// A chain that died is replaced; a container of its name that is not ours is left alone.
func TestEnsureReplacesADeadChain(t *testing.T) {
	eng := &fakeEngine{containers: map[string]engine.Container{}, port: anvilRPC(t, 31337)}
	name := "deployer-unit-chain-local"
	eng.containers[name] = engine.Container{ID: "old", Name: name, Labels: engine.Labels("unit", engine.RoleChain, nil),
		Running: false, State: "exited"}
	if _, err := supervisor(eng, &localLocks{}).Ensure(context.Background(), local(t)); err != nil {
		t.Fatal(err)
	}
	if len(eng.removed) != 1 || len(eng.created) != 1 {
		t.Errorf("removed %v, created %d", eng.removed, len(eng.created))
	}
	// A container of that name that is not ours is never touched.
	eng = &fakeEngine{containers: map[string]engine.Container{name: {ID: "theirs", Name: name, Running: true}}, port: eng.port}
	if _, err := supervisor(eng, &localLocks{}).Ensure(context.Background(), local(t)); err == nil || len(eng.removed) != 0 {
		t.Errorf("someone else's container: err %v, removed %v", err, eng.removed)
	}
}
