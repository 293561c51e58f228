package deployment

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/deployer-dev/deployer/cache/compilecache"
	"github.com/deployer-dev/deployer/cache/imagecache"
	"github.com/deployer-dev/deployer/chains"
	"github.com/deployer-dev/deployer/engine"
	"github.com/deployer-dev/deployer/gateway"
	"github.com/deployer-dev/deployer/internal/redact"
	"github.com/deployer-dev/deployer/jobs"
	"github.com/deployer-dev/deployer/networks"
	"github.com/deployer-dev/deployer/projects"
	"github.com/deployer-dev/deployer/tasks"
)

// The pipeline's steps, run against fakes of the parts: no engine, no chain, no
// forge. The end-to-end tests run the same pipeline against the real ones.

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

const deployedTo = "0x5fbdb2315678afecb367f032d93f642f64180aa3"

// fakeChainRPC answers the worker's checks as a chain where deployTx created
// deployedTo.
func fakeChainRPC(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			ID     any             `json:"id"`
			Method string          `json:"method"`
			Params json.RawMessage `json:"params"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		var result any
		switch req.Method {
		case "eth_sendRawTransaction":
			var raw []hexutil.Bytes
			_ = json.Unmarshal(req.Params, &raw)
			tx := new(types.Transaction)
			if len(raw) == 1 && tx.UnmarshalBinary(raw[0]) == nil {
				result = tx.Hash().Hex()
			}
		case "eth_getTransactionReceipt":
			result = map[string]any{"status": "0x1", "contractAddress": deployedTo}
		case "debug_traceTransaction":
			result = map[string]any{"type": "CREATE", "to": deployedTo}
		case "eth_getCode":
			result = "0x6080"
		case "eth_getBalance":
			result = "0x0"
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"jsonrpc": "2.0", "id": req.ID, "result": result})
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

type fakeImages struct{ wait time.Duration }

func (f fakeImages) Resolve(ctx context.Context) (imagecache.Resolved, error) {
	select {
	case <-time.After(f.wait):
		return imagecache.Resolved{ID: "sha256:img", Key: "imagekey", Hit: f.wait == 0}, nil
	case <-ctx.Done():
		return imagecache.Resolved{}, ctx.Err()
	}
}

type fakeChains struct{ rpc string }

func (f fakeChains) Ensure(_ context.Context, n networks.Network) (*chains.Chain, error) {
	return &chains.Chain{Network: n, WorkerRPC: f.rpc, PublicRPC: "http://127.0.0.1:8545"}, nil
}

// fakeContainer plays forge: each command's answer is scripted by its name. It runs
// the relay's protocol too, so that a fake forge reaches the chain as forge does:
// through the job's gateway.
type fakeContainer struct {
	mu       sync.Mutex
	commands []string
	// forge answers a forge command: its output and exit code; it may block.
	forge    func(ctx context.Context, c *fakeContainer, cmd []string, out io.Writer) (int, error)
	copied   []string
	released *bool

	// The relay's pipes: requests go out on its stdout, answers come on its stdin.
	// wmu orders the writes to its stdout.
	relayOut io.Writer
	wmu      sync.Mutex
	answers  chan []byte
	nextID   uint64
}

// rpc sends one request through the relay, as forge would over http://127.0.0.1:8545.
func (c *fakeContainer) rpc(method string, params ...any) (json.RawMessage, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nextID++
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
	frame, _ := json.Marshal(map[string]any{"id": c.nextID, "body": string(body)})
	c.wmu.Lock()
	_, err := c.relayOut.Write(append(frame, '\n'))
	c.wmu.Unlock()
	if err != nil {
		return nil, err
	}
	line, ok := <-c.answers
	if !ok {
		return nil, errors.New("the relay ended")
	}
	var answer struct{ Body string }
	var resp struct {
		Result json.RawMessage
		Error  *struct{ Message string }
	}
	if err := json.Unmarshal(line, &answer); err != nil || json.Unmarshal([]byte(answer.Body), &resp) != nil {
		return nil, errors.New("bad answer")
	}
	if resp.Error != nil {
		return nil, errors.New(resp.Error.Message)
	}
	return resp.Result, nil
}

func (c *fakeContainer) ID() string                     { return "c0ffee000000" }
func (c *fakeContainer) Reused() bool                   { return false }
func (c *fakeContainer) TakeWarm() io.Closer            { return nil }
func (c *fakeContainer) Keep(w io.Closer)               { _ = w.Close() }
func (c *fakeContainer) OOMKilled(context.Context) bool { return false }
func (c *fakeContainer) Release(ok bool)                { c.released = &ok }

func (c *fakeContainer) Exec(ctx context.Context, spec engine.ExecSpec) (int, error) {
	c.mu.Lock()
	c.commands = append(c.commands, strings.Join(spec.Cmd, " "))
	c.mu.Unlock()
	switch {
	case spec.Cmd[0] == "node" && strings.HasSuffix(spec.Cmd[1], "relay.js"):
		answers := make(chan []byte, 16)
		c.mu.Lock()
		c.relayOut, c.answers = spec.Stdout, answers
		c.mu.Unlock()
		if _, err := io.WriteString(spec.Stdout, `{"ready":true}`+"\n"); err != nil {
			return -1, err
		}
		// Until the worker closes the relay's input, as the real one does; fences
		// go back out in line with the requests.
		in := bufio.NewReader(spec.Stdin)
		for {
			line, err := in.ReadBytes('\n')
			if err != nil {
				close(answers)
				return 0, nil
			}
			if bytes.Contains(line, []byte(`"fence"`)) {
				c.wmu.Lock()
				_, err := spec.Stdout.Write(line)
				c.wmu.Unlock()
				if err != nil {
					return -1, err
				}
				continue
			}
			answers <- line
		}
	case spec.Cmd[0] == "bash" && len(spec.Cmd) > 2 && spec.Cmd[2] == agentScript:
		return c.agent(ctx, spec)
	case spec.Cmd[0] == "tar" && spec.Cmd[1] == "-x":
		tr := tar.NewReader(spec.Stdin)
		for {
			h, err := tr.Next()
			if err != nil {
				return 0, nil
			}
			c.copied = append(c.copied, h.Name)
		}
	case spec.Cmd[0] == "tar" && spec.Cmd[1] == "-cz":
		return 0, writeTgz(spec.Stdout, map[string]string{"out/Counter.sol/Counter.json": "{}"})
	case spec.Cmd[0] == "forge":
		return c.forge(ctx, c, spec.Cmd, spec.Stdout)
	}
	return 127, nil
}

// agent does what agentScript does: reads the header and the files, marks the copy,
// and runs the command.
func (c *fakeContainer) agent(ctx context.Context, spec engine.ExecSpec) (int, error) {
	in := bufio.NewReader(spec.Stdin)
	next := func() (string, bool) {
		s, err := in.ReadString(0)
		return strings.TrimSuffix(s, "\x00"), err == nil
	}
	v, ok := next()
	n, err := strconv.Atoi(v)
	if !ok || err != nil {
		return 111, nil
	}
	args := make([]string, n)
	for i := range args {
		if args[i], ok = next(); !ok {
			return 111, nil
		}
	}
	tr := tar.NewReader(in)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return 111, nil
		}
		c.mu.Lock()
		c.copied = append(c.copied, h.Name)
		c.mu.Unlock()
	}
	if _, err := spec.Stderr.Write([]byte{agentCopied}); err != nil {
		return -1, err
	}
	inner := engine.ExecSpec{WorkDir: args[0], Stdout: spec.Stdout, Stderr: spec.Stderr}
	rest := args[1:]
	for len(rest) > 0 && strings.Contains(rest[0], "=") {
		inner.Env, rest = append(inner.Env, rest[0]), rest[1:]
	}
	inner.Cmd = rest
	return c.Exec(ctx, inner)
}

func (c *fakeContainer) ran(prefix string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cmd := range c.commands {
		if strings.HasPrefix(cmd, prefix) {
			return true
		}
	}
	return false
}

type fakeContainers struct {
	c *fakeContainer
}

func (f fakeContainers) Lease(context.Context, engine.ContainerSpec, string) (Container, error) {
	return f.c, nil
}

type fakeCompiles struct {
	mu      sync.Mutex
	entries map[string][]byte
}

func (f *fakeCompiles) Enabled() bool { return true }
func (f *fakeCompiles) Lookup(_ context.Context, key string) ([]byte, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.entries[key]
	return b, ok
}
func (f *fakeCompiles) Save(_ context.Context, key string, _ compilecache.Layout, r io.Reader, _ time.Duration) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.entries[key] = b
	return nil
}

type fakeCompilers struct{ ensured []string }

func (f *fakeCompilers) Defaults() []string { return []string{"0.8.30"} }
func (f *fakeCompilers) Known(context.Context) ([]string, error) {
	return []string{"0.8.19", "0.8.30"}, nil
}
func (f *fakeCompilers) Volume() string { return "compilers" }
func (f *fakeCompilers) Ensure(_ context.Context, v []string, _ func(string)) error {
	f.ensured = append(f.ensured, v...)
	return nil
}

type noLocks struct{}

func (noLocks) LockWait(ctx context.Context, _ string, _ time.Duration) (context.Context, func(), error) {
	return ctx, func() {}, nil
}

// fakeUploads is the project store: archives by their sha256.
type fakeUploads map[string][]byte

func (u fakeUploads) Get(_ context.Context, sum string) ([]byte, error) {
	b, ok := u[sum]
	if !ok {
		return nil, projects.ErrNotFound
	}
	return b, nil
}

type nopReporter struct {
	mu    sync.Mutex
	steps []string
}

func (r *nopReporter) Step(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.steps = append(r.steps, s)
}
func (r *nopReporter) Output([]byte)          {}
func (r *nopReporter) Container(string, bool) {}

func writeTgz(w io.Writer, files map[string]string) error {
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

// forgeOK compiles and deploys as forge does when all goes well: forge create asks
// the gateway to send its transaction from the sender it was given.
func forgeOK(_ context.Context, c *fakeContainer, cmd []string, out io.Writer) (int, error) {
	if cmd[1] != "create" {
		return 0, nil
	}
	from := cmd[slices.Index(cmd, "--from")+1]
	if rpc := cmd[slices.Index(cmd, "--rpc-url")+1]; rpc != "http://127.0.0.1:8545" {
		return 1, fmt.Errorf("forge was pointed at %s, not its relay", rpc)
	}
	res, err := c.rpc("eth_sendTransaction", map[string]any{"from": from, "input": "0x6080", "gas": "0x30000", "nonce": "0x0",
		"maxFeePerGas": "0x77359400", "maxPriorityFeePerGas": "0x1", "chainId": "0x7a69"})
	if err != nil {
		io.WriteString(out, "Error: "+err.Error()+"\n")
		return 1, nil
	}
	var hash string
	_ = json.Unmarshal(res, &hash)
	io.WriteString(out, "Compiler run successful\n{\n  \"deployer\": \""+from+"\",\n  \"deployedTo\": \""+deployedTo+"\",\n  \"transactionHash\": \""+hash+"\"\n}\n")
	return 0, nil
}

type rig struct {
	d        *Deployer
	c        *fakeContainer
	compiles *fakeCompiles
	root     string
	// project is the job's project: the snapshot of root/counter the API stored.
	project tasks.ProjectRef
}

func newRig(t *testing.T, timeout time.Duration, imageWait time.Duration) *rig {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "counter")
	for name, body := range map[string]string{
		"foundry.toml":    "[profile.default]\n",
		"src/Counter.sol": "// SPDX-License-Identifier: MIT\npragma solidity ^0.8.20;\ncontract Counter { constructor(uint256) {} }\n",
	} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	nets, err := networks.Parse([]byte(`{"networks": [{"name": "local", "type": "local", "chain_id": 31337, "port": 0}]}`), os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	snapshot, err := projects.Snapshot(root, "counter", projects.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	sum := projects.Sum(snapshot)
	c := &fakeContainer{forge: forgeOK}
	compiles := &fakeCompiles{entries: map[string][]byte{}}
	d := New(Deps{
		EngineID:   "engine-1",
		Images:     map[string]Images{"foundry": fakeImages{wait: imageWait}},
		Chains:     fakeChains{rpc: fakeChainRPC(t)},
		Containers: fakeContainers{c: c},
		Compiles:   compiles,
		Compilers:  &fakeCompilers{},
		Uploads:    fakeUploads{sum: snapshot},
		Rules:      jobs.Rules{Networks: nets},
		Senders:    gateway.NewSenders([]byte("a seed of the unit tests, 32 b.")),
		Locks:      noLocks{},
		Namespace:  tasks.Namespace{Instance: "unit"},
		Redact:     redact.New(),
	}, Config{Limits: projects.DefaultLimits, Memory: 1 << 30, Timeout: timeout})
	return &rig{d: d, c: c, compiles: compiles, root: root, project: tasks.ProjectRef{Upload: sum}}
}

func (r *rig) run(t *testing.T) (Report, error) {
	t.Helper()
	p := tasks.Deploy{JobID: "j1", Framework: "foundry", Network: "local", Project: r.project,
		Contract: "src/Counter.sol:Counter", ConstructorArgs: []string{"1"}}
	return r.d.Run(context.Background(), p, &nopReporter{}, quiet)
}

func TestDeploysAndConfirmsOnChain(t *testing.T) {
	r := newRig(t, time.Minute, 0)
	rep, err := r.run(t)
	if err != nil {
		t.Fatal(err)
	}
	// The transaction reported is the one the gateway signed and sent, from the
	// job's own sender.
	if rep.Result == nil || len(rep.Result.Contracts) != 1 || !strings.EqualFold(rep.Result.Contracts[0].Address, deployedTo) ||
		rep.Result.Contracts[0].Name != "Counter" || !strings.HasPrefix(rep.Result.Contracts[0].TxHash, "0x") ||
		!strings.HasPrefix(rep.Result.Sender, "0x") || rep.Result.Sender == "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266" {
		t.Fatalf("result %+v", rep.Result)
	}
	if !r.c.ran("forge build") || !r.c.ran("forge create src/Counter.sol:Counter") {
		t.Errorf("commands %v", r.c.commands)
	}
	if r.c.released == nil || !*r.c.released {
		t.Error("the container was not given back for reuse")
	}
	if !rep.Cache.ImageHit || rep.Cache.CompileHit {
		t.Errorf("cache %+v", rep.Cache)
	}
}

// The second deployment of an unchanged project compiles nothing: the artifacts the
// first stored travel into the container with the project.
func TestCompileCacheHitSkipsTheBuild(t *testing.T) {
	r := newRig(t, time.Minute, 0)
	if _, err := r.run(t); err != nil {
		t.Fatal(err)
	}
	if len(r.compiles.entries) != 1 {
		t.Fatalf("the first compile stored %d entries", len(r.compiles.entries))
	}
	r.c.commands, r.c.copied = nil, nil
	rep, err := r.run(t)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Cache.CompileHit || r.c.ran("forge build") {
		t.Errorf("second run: compile hit %t, commands %v", rep.Cache.CompileHit, r.c.commands)
	}
	if !containsName(r.c.copied, "project/out/Counter.sol/Counter.json") {
		t.Errorf("the cached artifacts were not copied in: %v", r.c.copied)
	}
}

func containsName(names []string, want string) bool {
	for _, n := range names {
		if n == want {
			return true
		}
	}
	return false
}

// A compile error is the user's: final, naming file and line, and the container,
// untouched by any interruption, goes back to the pool.
func TestCompileErrorIsFinal(t *testing.T) {
	r := newRig(t, time.Minute, 0)
	r.c.forge = func(_ context.Context, _ *fakeContainer, cmd []string, out io.Writer) (int, error) {
		io.WriteString(out, "Error (2314): Expected ';' but got '}'\n --> src/Counter.sol:3:40:\n")
		return 1, nil
	}
	_, err := r.run(t)
	if !jobs.IsFinal(err) || !strings.Contains(err.Error(), "compile error at src/Counter.sol:3:40") {
		t.Fatalf("err = %v", err)
	}
	if r.c.released == nil || !*r.c.released {
		t.Error("a compile error destroyed the container")
	}
}

// A script that runs past JOB_TIMEOUT fails for good, naming the step; its container
// is destroyed, since the script may still run in it.
func TestSlowScriptTimesOut(t *testing.T) {
	r := newRig(t, time.Second, 0)
	r.c.forge = func(ctx context.Context, _ *fakeContainer, cmd []string, out io.Writer) (int, error) {
		if cmd[1] == "build" {
			return 0, nil
		}
		<-ctx.Done()
		return -1, ctx.Err()
	}
	_, err := r.run(t)
	var te *TimeoutError
	if !errors.As(err, &te) || !te.Users || te.Step != "deploying to local" || !jobs.IsFinal(err) {
		t.Fatalf("err = %#v", err)
	}
	if want := "the deployment timed out while deploying to local (limit 1s)"; err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
	if r.c.released == nil || *r.c.released {
		t.Error("a timed-out container went back to the pool")
	}
}

// Building the runner image is the service's step: it may take longer than the
// user's whole budget without eating into it.
func TestPreparationIsNotTheUsersTime(t *testing.T) {
	r := newRig(t, time.Second, 1500*time.Millisecond)
	rep, err := r.run(t)
	if err != nil {
		t.Fatalf("a slow image build failed the job: %v", err)
	}
	if rep.Cache.ImageHit || rep.Timings.Image < 1500 {
		t.Errorf("image step %d ms, hit %t", rep.Timings.Image, rep.Cache.ImageHit)
	}
}

// An engine failure in a command is ours: not final (the job is retried), and the
// container, in an unknown state, is destroyed.
func TestEngineErrorIsRetried(t *testing.T) {
	r := newRig(t, time.Minute, 0)
	r.c.forge = func(context.Context, *fakeContainer, []string, io.Writer) (int, error) {
		return -1, engine.ErrUnavailable
	}
	_, err := r.run(t)
	if err == nil || jobs.IsFinal(err) {
		t.Fatalf("err = %v, want a retryable error", err)
	}
	if r.c.released == nil || *r.c.released {
		t.Error("a container whose command failed in the engine went back to the pool")
	}
}

// The worker checks the request again, with the API's check: a network that
// vanished from network.json fails the job for good.
func TestWorkerChecksTheRequestAgain(t *testing.T) {
	r := newRig(t, time.Minute, 0)
	p := tasks.Deploy{JobID: "j1", Framework: "foundry", Network: "gone", Project: r.project,
		Contract: "src/Counter.sol:Counter"}
	_, err := r.d.Run(context.Background(), p, &nopReporter{}, quiet)
	if !jobs.IsFinal(err) || !strings.Contains(err.Error(), `unknown network "gone"`) {
		t.Fatalf("err = %v", err)
	}
	if len(r.c.commands) != 0 {
		t.Errorf("ran commands for a refused job: %v", r.c.commands)
	}
}
