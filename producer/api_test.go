package producer

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/deployer-dev/deployer/api"
	"github.com/deployer-dev/deployer/internal/heartbeat"
	"github.com/deployer-dev/deployer/jobs"
	"github.com/deployer-dev/deployer/networks"
	"github.com/deployer-dev/deployer/projects"
	"github.com/deployer-dev/deployer/tasks"
)

const testNetworks = `{"networks": [
 {"name": "local", "type": "local", "chain_id": 31337, "port": 0},
 {"name": "fork", "type": "fork", "chain_id": 1, "port": 0, "fork_url_env": "TEST_FORK_URL"},
 {"name": "sepolia", "type": "remote", "chain_id": 11155111, "rpc_url_env": "TEST_RPC", "deployer_key_env": "TEST_KEY"},
 {"name": "mainnet", "type": "remote", "chain_id": 1, "rpc_url_env": "TEST_MAIN_RPC", "deployer_key_env": "TEST_MAIN_KEY", "clients": ["alice"]}
]}`

// testEnv configures mainnet (with a key in its URL), and leaves sepolia and the fork
// unconfigured.
func testEnv(name string) string {
	switch name {
	case "TEST_MAIN_RPC":
		return "https://rpc.example/v2/SECRETAPIKEY123"
	case "TEST_MAIN_KEY":
		return "0x" + strings.Repeat("5e", 32)
	}
	return ""
}

type fixture struct {
	t    testing.TB
	mr   *miniredis.Miniredis
	rdb  *redis.Client
	api  *API
	srv  *httptest.Server
	ns   tasks.Namespace
	root string
	insp *asynq.Inspector
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureWith(t, Access{})
}

func newFixtureWith(t *testing.T, acc Access) *fixture {
	t.Helper()
	return newFixtureConfig(t, func(c *Config) { c.Access = acc })
}

// newFixtureConfig is the API on a fresh miniredis, with its configuration as
// change leaves it.
func newFixtureConfig(t testing.TB, change func(*Config)) *fixture {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	nets, err := networks.Parse([]byte(testNetworks), testEnv)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	copyDir(t, filepath.Join("..", "examples", "counter"), filepath.Join(root, "counter"))
	ns := tasks.Namespace{Instance: "unit"}
	opt := asynq.RedisClientOpt{Addr: mr.Addr()}
	cfg := Config{
		ProjectsRoot:    root,
		MaxProjectBytes: 64 << 10,
		ProjectTTL:      24 * time.Hour,
		Limits:          projects.DefaultLimits,
		JobTimeout:      time.Minute,
		JobRetention:    24 * time.Hour,
		JobMaxRetry:     2,
		NetworkSecrets:  true,
	}
	if change != nil {
		change(&cfg)
	}
	a, err := New(cfg, rdb, opt, ns, nets, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	insp := asynq.NewInspector(opt)
	t.Cleanup(func() { insp.Close() })
	return &fixture{t: t, mr: mr, rdb: rdb, api: a, srv: srv, ns: ns, root: root, insp: insp}
}

func copyDir(t testing.TB, src, dst string) {
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
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) do(method, path, contentType string, body []byte) (int, []byte) {
	f.t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode >= 400 && !strings.HasPrefix(ct, "application/json") {
		f.t.Errorf("%s %s: error answered as %q, not JSON", method, path, ct)
	}
	return resp.StatusCode, b
}

func (f *fixture) deploy(body string) (int, []byte) {
	return f.do(http.MethodPost, "/deploy", "application/json", []byte(body))
}

// queued counts the tasks in the deployment queue, in any state.
func (f *fixture) queued() int {
	f.t.Helper()
	info, err := f.insp.GetQueueInfo(f.ns.DeployQueue())
	if err != nil {
		return 0 // the queue does not exist: nothing was ever enqueued
	}
	return info.Size + info.Completed + info.Archived
}

func (f *fixture) jobKeys() []string {
	var out []string
	for _, k := range f.mr.Keys() {
		if strings.Contains(k, ":job:") {
			out = append(out, k)
		}
	}
	return out
}

func errorOf(t testing.TB, b []byte) string {
	t.Helper()
	var e api.Error
	if err := json.Unmarshal(b, &e); err != nil || e.Error == "" {
		t.Fatalf("not an error body: %s", b)
	}
	return e.Error
}

func TestDeployRejectsBadRequestsAndEnqueuesNothing(t *testing.T) {
	f := newFixture(t)
	if err := os.MkdirAll(filepath.Join(f.root, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc", filepath.Join(f.root, "outside")); err != nil {
		t.Fatal(err)
	}
	ownSolc := filepath.Join(f.root, "own-solc")
	copyDir(t, filepath.Join(f.root, "counter"), ownSolc)
	if err := os.WriteFile(filepath.Join(ownSolc, "foundry.toml"), []byte("[profile.default]\nsolc = \"./bin/solc\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	noScript := filepath.Join(f.root, "noscript")
	copyDir(t, filepath.Join(f.root, "counter"), noScript)
	if err := os.RemoveAll(filepath.Join(noScript, "script")); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, body string
		code       int
		want       string
	}{
		{"not json", `{"path_url": `, 400, "not a JSON"},
		{"not an object", `[1,2]`, 400, "not a JSON"},
		{"unknown field", `{"path_url": "counter", "framework": "foundry", "colour": 1}`, 400, "colour"},
		{"missing path", `{"framework": "foundry"}`, 400, "path_url is required"},
		{"missing framework", `{"path_url": "counter"}`, 400, "framework is required"},
		{"hardhat on a Foundry project", `{"path_url": "counter", "framework": "hardhat"}`, 400, "is not a Hardhat project"},
		{"hardhat with a script", `{"path_url": "counter", "framework": "hardhat", "script": "script/Deploy.s.sol"}`, 400, "are Foundry's"},
		{"foundry with a module", `{"path_url": "counter", "framework": "foundry", "module": "ignition/modules/X.ts"}`, 400, "are Hardhat Ignition's"},
		{"unknown framework", `{"path_url": "counter", "framework": "truffle"}`, 400, "unknown framework"},
		{"unknown network", `{"path_url": "counter", "framework": "foundry", "network": "moon"}`, 400, "unknown network \"moon\""},
		{"remote unconfigured", `{"path_url": "counter", "framework": "foundry", "network": "sepolia"}`, 400, "TEST_RPC is not set"},
		{"remote without a durable Redis", `{"path_url": "counter", "framework": "foundry", "network": "mainnet"}`, 400, "a Redis that survives a crash"},
		{"fork unconfigured", `{"path_url": "counter", "framework": "foundry", "network": "fork"}`, 400, "TEST_FORK_URL is not set"},
		{"missing dir", `{"path_url": "nope", "framework": "foundry"}`, 400, "does not exist"},
		{"dotdot", `{"path_url": "../counter", "framework": "foundry"}`, 400, "\"..\" is not allowed"},
		{"absolute outside", `{"path_url": "/etc", "framework": "foundry"}`, 400, "outside the projects root"},
		{"link outside", `{"path_url": "outside", "framework": "foundry"}`, 400, "outside the projects root"},
		{"not foundry", `{"path_url": "empty", "framework": "foundry"}`, 400, "not a Foundry project"},
		{"own compiler", `{"path_url": "own-solc", "framework": "foundry"}`, 400, "not a version"},
		{"env with a contract", `{"path_url": "counter", "framework": "foundry", "contract": "src/Counter.sol:Counter", "env": {"A": "1"}}`, 400, "env goes with a script"},
		{"env naming forge's", `{"path_url": "counter", "framework": "foundry", "env": {"FOUNDRY_FFI": "true"}}`, 400, "configure forge"},
		{"no script nor contract", `{"path_url": "noscript", "framework": "foundry"}`, 400, "neither a script nor a contract"},
		{"missing script", `{"path_url": "counter", "framework": "foundry", "script": "script/Nope.s.sol"}`, 400, "has no script/Nope.s.sol"},
		{"args with script", `{"path_url": "counter", "framework": "foundry", "constructor_args": ["1"]}`, 400, "constructor_args go with contract"},
		{"both", `{"path_url": "counter", "framework": "foundry", "script": "script/Deploy.s.sol", "contract": "src/Counter.sol:Counter"}`, 400, "not both"},
		{"malformed sig", `{"path_url": "counter", "framework": "foundry", "sig": "run(uint256", "args": ["1"]}`, 400, "not a function signature"},
		{"wrong arg count", `{"path_url": "counter", "framework": "foundry", "sig": "run(address,uint256)", "args": ["0x1"]}`, 400, "takes 2 argument(s); args has 1"},
		{"args without sig", `{"path_url": "counter", "framework": "foundry", "args": ["1"]}`, 400, "args need sig"},
		{"sig with contract", `{"path_url": "counter", "framework": "foundry", "contract": "src/Counter.sol:Counter", "sig": "run()"}`, 400, "sig and args go with a script"},
		{"unknown upload", `{"path_url": "project://` + strings.Repeat("ab", 32) + `", "framework": "foundry"}`, 400, "was not found"},
		{"bad upload id", `{"path_url": "project://xyz", "framework": "foundry"}`, 400, "not a project id"},
		{"too large", `{"path_url": "` + strings.Repeat("a", 2<<20) + `"}`, 413, "larger than"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body := f.deploy(c.body)
			if code != c.code {
				t.Fatalf("status %d, want %d: %s", code, c.code, body)
			}
			if msg := errorOf(t, body); !strings.Contains(msg, c.want) {
				t.Errorf("error %q does not say %q", msg, c.want)
			}
		})
	}
	if n := f.queued(); n != 0 {
		t.Errorf("%d tasks enqueued by rejected requests", n)
	}
	if keys := f.jobKeys(); len(keys) != 0 {
		t.Errorf("rejected requests left job records: %v", keys)
	}
}

func TestDeployByPathEnqueuesVersionedTaskWithoutSecrets(t *testing.T) {
	f := newFixture(t)
	code, body := f.deploy(`{"path_url": "counter", "framework": "foundry", "network": "local"}`)
	if code != http.StatusAccepted {
		t.Fatalf("status %d: %s", code, body)
	}
	var resp api.DeployResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Status != "queued" || resp.StatusURL != "/deploy/"+resp.JobID || resp.JobID == "" {
		t.Fatalf("unexpected answer %+v", resp)
	}
	info, err := f.insp.GetTaskInfo(f.ns.DeployQueue(), resp.JobID)
	if err != nil {
		t.Fatalf("task not in the deployment queue: %v", err)
	}
	if info.State != asynq.TaskStatePending || info.Retention < 24*time.Hour {
		t.Errorf("task state %v retention %v", info.State, info.Retention)
	}
	p, err := tasks.DecodeDeploy(info.Payload)
	if err != nil {
		t.Fatal(err)
	}
	// Version 1 holds all this job carries: a worker of the release before runs it.
	// The job runs from the directory's snapshot, stored as an upload.
	if p.Version != 1 || p.Project.Path != "" || p.Project.Upload == "" || p.Script != "script/Deploy.s.sol" || p.JobID != resp.JobID {
		t.Errorf("payload %+v", p)
	}
	if strings.Contains(strings.ToLower(string(info.Payload)), "key") {
		t.Errorf("payload mentions a key: %s", info.Payload)
	}

	// Every documented key is present, null where it does not apply.
	code, body = f.do(http.MethodGet, resp.StatusURL, "", nil)
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	var raw map[string]any
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"job_id", "status", "framework", "network", "result", "error", "timings_ms", "cache"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("key %q missing from %s", k, body)
		}
	}
	if raw["status"] != "queued" || raw["result"] != nil || raw["error"] != nil {
		t.Errorf("queued job answered %s", body)
	}
}

func TestDeployContractWithArgs(t *testing.T) {
	f := newFixture(t)
	code, body := f.deploy(`{"path_url": "file://counter", "framework": "foundry", "contract": "src/Counter.sol:Counter", "constructor_args": ["7"]}`)
	if code != http.StatusAccepted {
		t.Fatalf("status %d: %s", code, body)
	}
	var resp api.DeployResponse
	_ = json.Unmarshal(body, &resp)
	info, err := f.insp.GetTaskInfo(f.ns.DeployQueue(), resp.JobID)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := tasks.DecodeDeploy(info.Payload)
	if p.Contract != "src/Counter.sol:Counter" || len(p.ConstructorArgs) != 1 || p.ConstructorArgs[0] != "7" || p.Script != "" {
		t.Errorf("payload %+v", p)
	}
}

func tarGz(t *testing.T, entries []*tar.Header, contents map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, h := range entries {
		body := contents[h.Name]
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(body))
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if body != "" {
			_, _ = tw.Write([]byte(body))
		}
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

func TestUploadThenDeploy(t *testing.T) {
	f := newFixture(t)
	var buf bytes.Buffer
	if err := projects.Pack(&buf, filepath.Join(f.root, "counter"), projects.DefaultLimits, projects.PackOptions{Gzip: true}); err != nil {
		t.Fatal(err)
	}
	code, body := f.do(http.MethodPost, "/projects", "application/gzip", buf.Bytes())
	if code != http.StatusCreated {
		t.Fatalf("status %d: %s", code, body)
	}
	var up api.UploadResponse
	if err := json.Unmarshal(body, &up); err != nil {
		t.Fatal(err)
	}
	sum := projects.Sum(buf.Bytes())
	if up.ProjectID != "sha256:"+sum || up.PathURL != "project://"+sum {
		t.Fatalf("upload answered %+v, want id of sha256 %s", up, sum)
	}
	if ttl := f.mr.TTL(f.ns.ProjectKey(sum)); ttl != 24*time.Hour {
		t.Errorf("stored project TTL %v, want 24h", ttl)
	}
	code, body = f.deploy(`{"path_url": "` + up.PathURL + `", "framework": "foundry"}`)
	if code != http.StatusAccepted {
		t.Fatalf("status %d: %s", code, body)
	}
	var resp api.DeployResponse
	_ = json.Unmarshal(body, &resp)
	info, err := f.insp.GetTaskInfo(f.ns.DeployQueue(), resp.JobID)
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := tasks.DecodeDeploy(info.Payload); p.Project.Upload != sum || p.Network != "local" {
		t.Errorf("payload %+v", p)
	}
}

func TestUploadRefusals(t *testing.T) {
	f := newFixture(t)
	good := map[string]string{"foundry.toml": "[profile.default]\n"}
	cases := []struct {
		name string
		body []byte
		code int
		want string
	}{
		{"empty", nil, 400, "empty"},
		{"not gzip", []byte("hello"), 400, "not a gzip"},
		{"dotdot", tarGz(t, []*tar.Header{{Name: "foundry.toml", Typeflag: tar.TypeReg}, {Name: "../evil", Typeflag: tar.TypeReg}}, good), 400, "outside the project"},
		{"absolute", tarGz(t, []*tar.Header{{Name: "/etc/evil", Typeflag: tar.TypeReg}}, nil), 400, "absolute path"},
		{"outside link", tarGz(t, []*tar.Header{{Name: "foundry.toml", Typeflag: tar.TypeReg}, {Name: "l", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}}, good), 400, "leads outside"},
		{"no foundry.toml", tarGz(t, []*tar.Header{{Name: "src/A.sol", Typeflag: tar.TypeReg}}, map[string]string{"src/A.sol": "x"}), 400, "no foundry.toml"},
		{"too large", bytes.Repeat([]byte("x"), 65<<10), 413, "larger than"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body := f.do(http.MethodPost, "/projects", "application/gzip", c.body)
			if code != c.code {
				t.Fatalf("status %d, want %d: %s", code, c.code, body)
			}
			if msg := errorOf(t, body); !strings.Contains(msg, c.want) {
				t.Errorf("error %q does not say %q", msg, c.want)
			}
		})
	}
	for _, k := range f.mr.Keys() {
		if strings.Contains(k, ":project:") {
			t.Errorf("refused upload stored: %s", k)
		}
	}
}

func TestUnknownJob(t *testing.T) {
	f := newFixture(t)
	for _, p := range []string{"/deploy/" + strings.Repeat("0", 24), "/deploy/nope", "/deploy/" + strings.Repeat("0", 24) + "/logs"} {
		if code, body := f.do(http.MethodGet, p, "", nil); code != http.StatusNotFound {
			t.Errorf("GET %s: %d %s", p, code, body)
		}
	}
	if code, _ := f.do(http.MethodDelete, "/deploy/"+strings.Repeat("0", 24), "", nil); code != http.StatusNotFound {
		t.Errorf("DELETE unknown: %d", code)
	}
}

func TestCancelQueuedJob(t *testing.T) {
	f := newFixture(t)
	_, body := f.deploy(`{"path_url": "counter", "framework": "foundry"}`)
	var resp api.DeployResponse
	_ = json.Unmarshal(body, &resp)
	code, body := f.do(http.MethodDelete, "/deploy/"+resp.JobID, "", nil)
	if code != http.StatusOK {
		t.Fatalf("cancel: %d %s", code, body)
	}
	var j api.Job
	_ = json.Unmarshal(body, &j)
	if j.Status != jobs.Canceled {
		t.Errorf("status %q after cancel", j.Status)
	}
	if _, err := f.insp.GetTaskInfo(f.ns.DeployQueue(), resp.JobID); err == nil {
		t.Error("canceled task still queued")
	}
	if code, _ := f.do(http.MethodDelete, "/deploy/"+resp.JobID, "", nil); code != http.StatusConflict {
		t.Errorf("second cancel: %d, want 409", code)
	}
}

func TestArchivedTaskReadsFailed(t *testing.T) {
	f := newFixture(t)
	_, body := f.deploy(`{"path_url": "counter", "framework": "foundry"}`)
	var resp api.DeployResponse
	_ = json.Unmarshal(body, &resp)
	if err := f.insp.ArchiveTask(f.ns.DeployQueue(), resp.JobID); err != nil {
		t.Fatal(err)
	}
	_, body = f.do(http.MethodGet, "/deploy/"+resp.JobID, "", nil)
	var j api.Job
	_ = json.Unmarshal(body, &j)
	if j.Status != jobs.Failed || j.Error == nil {
		t.Errorf("archived task reads %s", body)
	}
}

func TestReadiness(t *testing.T) {
	f := newFixture(t)
	if code, _ := f.do(http.MethodGet, "/healthz", "", nil); code != http.StatusOK {
		t.Errorf("healthz %d", code)
	}
	code, body := f.do(http.MethodGet, "/readyz", "", nil)
	if code != http.StatusServiceUnavailable || !strings.Contains(string(body), "no worker") {
		t.Errorf("readyz without workers: %d %s", code, body)
	}
	reg := heartbeat.New(f.rdb, f.ns)
	ctx := context.Background()
	sick := heartbeat.Worker{ID: "w1", Healthy: false, LastSeen: time.Now()}
	if err := reg.Beat(ctx, sick, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if code, _ := f.do(http.MethodGet, "/readyz", "", nil); code != http.StatusServiceUnavailable {
		t.Errorf("readyz with an unhealthy worker: %d", code)
	}
	stale := heartbeat.Worker{ID: "w2", Healthy: true, LastSeen: time.Now().Add(-time.Minute)}
	if err := reg.Beat(ctx, stale, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if code, _ := f.do(http.MethodGet, "/readyz", "", nil); code != http.StatusServiceUnavailable {
		t.Errorf("readyz with a stale heartbeat: %d", code)
	}
	healthy := heartbeat.Worker{ID: "w3", Healthy: true, LastSeen: time.Now()}
	if err := reg.Beat(ctx, healthy, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if code, body := f.do(http.MethodGet, "/readyz", "", nil); code != http.StatusOK {
		t.Errorf("readyz with a healthy worker: %d %s", code, body)
	}
	f.mr.Close()
	if code, body := f.do(http.MethodGet, "/readyz", "", nil); code != http.StatusServiceUnavailable || !strings.Contains(string(body), "redis") {
		t.Errorf("readyz without redis: %d %s", code, body)
	}
}

// The API must not link the Docker client: workers own the engines.
func TestProducerDoesNotLinkDocker(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "github.com/docker/") || strings.HasSuffix(dep, "/deployer/engine/docker") {
			t.Errorf("producer depends on %s", dep)
		}
	}
}

// A repeated POST /deploy with the same Idempotency-Key gets the job the first made,
// and nothing more is enqueued.
func TestIdempotencyKey(t *testing.T) {
	f := newFixture(t)
	post := func(key string) (int, api.DeployResponse) {
		req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/deploy", strings.NewReader(`{"path_url": "counter", "framework": "foundry"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out api.DeployResponse
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	code1, first := post("order-42")
	code2, again := post("order-42")
	code3, other := post("order-43")
	if code1 != http.StatusAccepted || code2 != http.StatusOK || again.JobID != first.JobID || again.Status != "queued" {
		t.Errorf("first %d %+v, again %d %+v", code1, first, code2, again)
	}
	if code3 != http.StatusAccepted || other.JobID == first.JobID {
		t.Errorf("another key: %d %+v", code3, other)
	}
	if n := f.queued(); n != 2 {
		t.Errorf("%d tasks enqueued, want 2", n)
	}
}

// ?wait= answers as soon as the job ends, with the job; a job still running when the
// wait is over answers as without it.
func TestWaitForTheEnd(t *testing.T) {
	f := newFixture(t)
	req := func(method, path, body string) (int, []byte) {
		r, _ := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	// No worker: the job never ends, and the waits run out.
	code, body := req(http.MethodPost, "/deploy?wait=0.3", `{"path_url": "counter", "framework": "foundry"}`)
	if code != http.StatusAccepted {
		t.Fatalf("POST ?wait with no worker: %d %s", code, body)
	}
	var queued api.DeployResponse
	_ = json.Unmarshal(body, &queued)
	// A worker (played here) ends it while a client waits.
	go func() {
		time.Sleep(200 * time.Millisecond)
		_ = f.api.jobs.Finish(context.Background(), queued.JobID, jobs.Outcome{Status: jobs.Failed, Error: "played"}, time.Now())
	}()
	start := time.Now()
	code, body = req(http.MethodGet, "/deploy/"+queued.JobID+"?wait=60s", "")
	var j api.Job
	_ = json.Unmarshal(body, &j)
	if code != http.StatusOK || j.Status != jobs.Failed || time.Since(start) > 30*time.Second {
		t.Errorf("GET ?wait: %d %s after %s", code, body, time.Since(start))
	}
	for _, bad := range []string{"soon", "-5", "-1s"} {
		if code, _ := req(http.MethodGet, "/deploy/"+queued.JobID+"?wait="+bad, ""); code != http.StatusBadRequest {
			t.Errorf("wait=%s: %d", bad, code)
		}
	}
}
