package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"

	"github.com/deployer-dev/deployer/api"
	"github.com/deployer-dev/deployer/chains"
	dclient "github.com/deployer-dev/deployer/client"
	"github.com/deployer-dev/deployer/engine"
	"github.com/deployer-dev/deployer/internal/testenv"
	"github.com/deployer-dev/deployer/jobs"
	"github.com/deployer-dev/deployer/projects"
	"github.com/deployer-dev/deployer/tasks"
)

// Real projects leave ffi = true in foundry.toml unused: they deploy, with ffi off,
// and the job's log says so.
func TestProjectLeavingFFIOnDeploysWithItOff(t *testing.T) {
	s := getStack(t)
	dir := t.TempDir()
	copyTree(t, filepath.Join(testenv.RepoRoot(), "examples", "counter"), dir)
	toml := "[profile.default]\nsrc = \"src\"\nffi = true\n\n[profile.ci]\nffi = true\n"
	if err := os.WriteFile(filepath.Join(dir, "foundry.toml"), []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	up, err := s.client.UploadDir(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	j := s.deploy(t, api.DeployRequest{PathURL: up.PathURL})
	requireCompleted(t, j)
	logs, _ := s.client.Logs(context.Background(), j.JobID)
	if !strings.Contains(logs, "ffi is off (foundry.toml enables it in [profile.ci])") {
		t.Errorf("the log does not say ffi is off:\n%s", logs)
	}
}

func TestScriptCallingFFIFails(t *testing.T) {
	s := getStack(t)
	j := s.deploy(t, api.DeployRequest{PathURL: "e2e/testdata/ffi-call"})
	if j.Status != jobs.Failed || j.Error == nil {
		t.Fatalf("ffi script ended %s", j.Status)
	}
	if !strings.Contains(strings.ToLower(*j.Error), "ffi") {
		t.Errorf("error %q does not say ffi was refused", *j.Error)
	}
	logs, _ := s.client.Logs(context.Background(), j.JobID)
	if strings.Contains(logs, "FFI_RAN") {
		t.Errorf("the script's command ran:\n%s", logs)
	}
}

// A project that names its own compiler by path is refused before anything runs: the
// service compiles with its own builds only.
func TestProjectsOwnCompilerIsNeverRun(t *testing.T) {
	s := getStack(t)
	_, err := s.client.Deploy(context.Background(), api.DeployRequest{PathURL: "e2e/testdata/evil-solc", Framework: "foundry"})
	var se *dclient.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusBadRequest || !strings.Contains(se.Message, "not a version") {
		t.Fatalf("a project with its own solc: %v, want a 400", err)
	}
}

// maliciousArchive holds a Foundry project and an entry that climbs out of it.
func maliciousArchive(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, f := range []struct{ name, body string }{
		{"foundry.toml", "[profile.default]\n"},
		{"script/Deploy.s.sol", "contract Deploy { function run() external {} }\n"},
		{"../../../../tmp/deployer-escaped", "pwned\n"},
	} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write([]byte(f.body))
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

func TestMaliciousArchiveIsRefused(t *testing.T) {
	s := getStack(t)
	archive := maliciousArchive(t)
	_, err := s.client.Upload(context.Background(), archive)
	var se *dclient.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusBadRequest || !strings.Contains(se.Message, "outside the project") {
		t.Fatalf("upload: %v, want a 400", err)
	}

	// A worker does not trust the API either: put the archive in Redis and enqueue
	// a job for it directly.
	ctx := context.Background()
	sum := projects.Sum(archive)
	if err := s.rdb.Set(ctx, s.ns.ProjectKey(sum), archive, time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprintf("%024x", time.Now().UnixNano())
	store := jobs.NewStore(s.rdb, s.ns, 24*time.Hour)
	if err := store.Create(ctx, jobs.Job{ID: id, Framework: "foundry", Network: "local", Queue: s.ns.DeployQueue(), CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	task, err := tasks.NewDeploy(tasks.Deploy{JobID: id, Framework: "foundry", Network: "local",
		Project: tasks.ProjectRef{Upload: sum}, Script: "script/Deploy.s.sol", EnqueuedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.enqueue(task, id); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	j, err := s.client.Wait(wctx, id, nil)
	if err != nil {
		t.Fatal(err)
	}
	if j.Status != jobs.Failed || j.Error == nil || !strings.Contains(*j.Error, "outside the project") {
		t.Errorf("worker ran a malicious archive: %s %v", j.Status, j.Error)
	}
	if _, err := os.Stat("/tmp/deployer-escaped"); err == nil {
		t.Error("an archive entry was written outside its directory")
	}
}

// TestJobContainerReachesOnlyItsChain runs a long job and, while it runs, checks its
// container from outside (its configuration) and from inside (what it can reach),
// then cancels it.
func TestJobContainerReachesOnlyItsChain(t *testing.T) {
	s := getStack(t)
	ctx := context.Background()
	// Its own chain's published port, and a second chain, which the job must not reach.
	local := s.deploy(t, api.DeployRequest{PathURL: "examples/counter", Contract: "src/Counter.sol:Counter", ConstructorArgs: []string{"1"}})
	requireCompleted(t, local)
	requireCompleted(t, s.deploy(t, api.DeployRequest{PathURL: "examples/counter", Network: "other"}))

	resp, err := s.client.Deploy(ctx, api.DeployRequest{PathURL: "e2e/testdata/slow", Framework: "foundry"})
	if err != nil {
		t.Fatal(err)
	}
	var containerID string
	deadline := time.Now().Add(2 * time.Minute)
	for containerID == "" {
		j, err := s.client.Job(ctx, resp.JobID)
		if err != nil {
			t.Fatal(err)
		}
		if j.Status.Final() {
			t.Fatalf("slow job ended %s before the test looked at it", j.Status)
		}
		if strings.HasPrefix(j.Step, "deploying") {
			containerID = j.ContainerID
		}
		if time.Now().After(deadline) {
			t.Fatal("the slow job never started deploying")
		}
		time.Sleep(100 * time.Millisecond)
	}

	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	c, err := cli.ContainerInspect(ctx, containerID)
	if err != nil {
		t.Fatal(err)
	}
	hc := c.HostConfig
	if c.Config.User != "10001:10001" || !hc.ReadonlyRootfs || string(hc.NetworkMode) != "none" ||
		len(hc.CapDrop) != 1 || hc.CapDrop[0] != "ALL" || hc.Privileged ||
		hc.Memory == 0 || hc.NanoCPUs == 0 || hc.PidsLimit == nil || *hc.PidsLimit == 0 ||
		!strings.Contains(strings.Join(hc.SecurityOpt, ","), "no-new-privileges") {
		t.Errorf("job container is not locked down: user %q, config %+v", c.Config.User, hc)
	}
	// Nothing of the host or of a chain is mounted (the chain is reached through the
	// gateway's relay on the container's own loopback): only the compiler store,
	// read-only.
	for _, m := range c.Mounts {
		if m.Destination != "/opt/compilers" || m.RW || m.Type != "volume" {
			t.Errorf("unexpected mount %+v", m)
		}
	}

	eng := testenv.RequireEngine(t, s.instance)
	run := func(cmd ...string) (string, int) {
		var out bytes.Buffer
		code, err := eng.Exec(ctx, containerID, engine.ExecSpec{Cmd: cmd, Stdout: &out, Stderr: &out})
		if err != nil {
			t.Fatalf("exec %v: %v", cmd, err)
		}
		return out.String(), code
	}
	if out, code := run("cast", "chain-id", "--rpc-url", "http://127.0.0.1:8545"); code != 0 || strings.TrimSpace(out) != "31337" {
		t.Errorf("the job cannot reach its own chain through its gateway: %d %q", code, out)
	}
	if out, _ := run("id", "-u"); strings.TrimSpace(out) != "10001" {
		t.Errorf("the job runs as uid %q", out)
	}
	if _, code := run("touch", "/usr/local/bin/x"); code == 0 {
		t.Error("the job could write to its root filesystem")
	}

	// Every address the job might try: the host (through both bridges' gateways),
	// the chains' containers, its own chain's published port.
	var accepted atomic.Int32
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			conn.Close()
		}
	}()
	hostPort := ln.Addr().(*net.TCPAddr).Port
	var targets [][2]any
	for _, netName := range []string{"bridge", chains.DockerNetwork(s.instance)} {
		n, err := cli.NetworkInspect(ctx, netName, network.InspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, cfg := range n.IPAM.Config {
			if gw := gatewayOf(cfg); gw != "" {
				targets = append(targets, [2]any{gw, hostPort})
			}
		}
		for _, ep := range n.Containers {
			targets = append(targets, [2]any{strings.Split(ep.IPv4Address, "/")[0], 8545})
		}
	}
	u := strings.TrimPrefix(local.Result.RPCURL, "http://")
	host, port, _ := net.SplitHostPort(u)
	p, _ := strconv.Atoi(port)
	targets = append(targets, [2]any{host, p})
	if len(targets) < 4 {
		t.Fatalf("too few targets to probe: %v", targets)
	}
	probe := `const net = require('net'), os = require('os');
const targets = JSON.parse(process.argv[1]);
console.log('IFACES ' + Object.keys(os.networkInterfaces()).join(','));
// No process.exit: it would drop output still queued for the pipe.
for (const [host, port] of targets) {
  const s = net.connect({host, port, timeout: 2000});
  s.on('connect', () => { console.log('CONNECTED ' + host + ':' + port); s.destroy(); });
  s.on('error', (e) => { console.log('REFUSED ' + host + ':' + port + ' ' + e.code); });
  s.on('timeout', () => { console.log('TIMEOUT ' + host + ':' + port); s.destroy(); });
}`
	tj, _ := json.Marshal(targets)
	out, _ := run("node", "-e", probe, string(tj))
	if strings.Contains(out, "CONNECTED") || accepted.Load() != 0 {
		t.Errorf("the job container reached something besides its chain:\n%s", out)
	}
	if !strings.Contains(out, "IFACES lo\n") {
		t.Errorf("the job container has network interfaces:\n%s", out)
	}
	tried := 0
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "REFUSED ") || strings.HasPrefix(line, "TIMEOUT ") {
			tried++
		}
	}
	if tried != len(targets) {
		t.Errorf("probe did not try every target of %v:\n%s", targets, out)
	}

	// Cancel: the job ends canceled and its container is gone.
	j, err := s.client.Cancel(ctx, resp.JobID)
	if err != nil {
		t.Fatal(err)
	}
	if j.Status != jobs.Canceled {
		t.Errorf("after cancel the job is %s", j.Status)
	}
	deadline = time.Now().Add(30 * time.Second)
	for {
		if _, err := cli.ContainerInspect(ctx, containerID); err != nil {
			break // removed: an interrupted job's container is never reused
		}
		if time.Now().After(deadline) {
			t.Fatalf("the canceled job's container %s remains", containerID)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if info.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, info.Mode())
	})
	if err != nil {
		t.Fatal(err)
	}
}

// gatewayOf is a network's gateway; the default bridge may only name its subnet,
// whose first address is the gateway.
func gatewayOf(cfg network.IPAMConfig) string {
	if cfg.Gateway != "" {
		return cfg.Gateway
	}
	_, subnet, err := net.ParseCIDR(cfg.Subnet)
	if err != nil || subnet.IP.To4() == nil {
		return ""
	}
	ip := subnet.IP.To4()
	return net.IPv4(ip[0], ip[1], ip[2], ip[3]+1).String()
}
