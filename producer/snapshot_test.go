package producer

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/deployer-dev/deployer/api"
	"github.com/deployer-dev/deployer/projects"
	"github.com/deployer-dev/deployer/tasks"
)

// queuedPayload is the payload of the job a 202 answer names.
func (f *fixture) queuedPayload(body []byte) (api.DeployResponse, tasks.Deploy) {
	f.t.Helper()
	var resp api.DeployResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		f.t.Fatal(err)
	}
	info, err := f.insp.GetTaskInfo(f.ns.DeployQueue(), resp.JobID)
	if err != nil {
		f.t.Fatalf("task not in the deployment queue: %v", err)
	}
	p, err := tasks.DecodeDeploy(info.Payload)
	if err != nil {
		f.t.Fatal(err)
	}
	return resp, p
}

// A path project is read once, when it is checked: the job runs from that snapshot,
// stored as an upload, whatever happens to the directory afterwards, and the job
// still shows the directory the user named.
func TestPathProjectRunsFromItsSnapshot(t *testing.T) {
	f := newFixture(t)
	dir := filepath.Join(f.root, "counter")
	// A top-level broadcast link is left out whatever it is.
	if err := os.Symlink("src", filepath.Join(dir, "broadcast")); err != nil {
		t.Fatal(err)
	}
	code, body := f.deploy(`{"path_url": "counter", "framework": "foundry"}`)
	if code != http.StatusAccepted {
		t.Fatalf("status %d: %s", code, body)
	}
	resp, p := f.queuedPayload(body)
	if p.Project.Upload == "" || p.Project.Path != "" {
		t.Fatalf("the job does not run from a snapshot: %+v", p.Project)
	}
	ctx := context.Background()
	archive, err := f.api.projects.Get(ctx, p.Project.Upload)
	if err != nil {
		t.Fatalf("the snapshot is not in the project store: %v", err)
	}
	counter, err := os.ReadFile(filepath.Join(dir, "src", "Counter.sol"))
	if err != nil {
		t.Fatal(err)
	}
	// The directory changes after the check: a file becomes a link to a secret.
	if err := os.Remove(filepath.Join(dir, "src", "Counter.sol")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "src", "Counter.sol")); err != nil {
		t.Fatal(err)
	}
	// What the job gets (the worker unpacks the same archive) is what was checked.
	out := t.TempDir()
	if err := projects.Unpack(archive, out, projects.DefaultLimits); err != nil {
		t.Fatalf("Unpack the snapshot: %v", err)
	}
	got, err := os.ReadFile(filepath.Join(out, "src", "Counter.sol"))
	if err != nil || !bytes.Equal(got, counter) {
		t.Errorf("the snapshot's src/Counter.sol = %q, %v; want the file as checked", got, err)
	}
	for _, name := range []string{"foundry.toml", "script/Deploy.s.sol"} {
		if _, err := os.Stat(filepath.Join(out, name)); err != nil {
			t.Errorf("the snapshot lacks %s: %v", name, err)
		}
	}
	if _, err := os.Lstat(filepath.Join(out, "broadcast")); err == nil {
		t.Error("the top-level broadcast link went into the snapshot")
	}

	// The user sees the directory they named, as before.
	code, body = f.do(http.MethodGet, resp.StatusURL, "", nil)
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	var view struct {
		Project string `json:"project"`
	}
	if err := json.Unmarshal(body, &view); err != nil || view.Project != "counter" {
		t.Errorf("the job shows project %q (%v), want %q", view.Project, err, "counter")
	}

	// Now the directory holds a link to a file outside: refused, as ListDir would.
	code, body = f.deploy(`{"path_url": "counter", "framework": "foundry"}`)
	if code != http.StatusBadRequest || !strings.Contains(errorOf(t, body), "link src/Counter.sol leads outside the project") {
		t.Errorf("status %d: %s", code, body)
	}
}

// An unchanged project deployed again is stored once.
func TestPathProjectSnapshotIsStoredOnce(t *testing.T) {
	f := newFixture(t)
	var sums []string
	for range 2 {
		code, body := f.deploy(`{"path_url": "counter", "framework": "foundry"}`)
		if code != http.StatusAccepted {
			t.Fatalf("status %d: %s", code, body)
		}
		_, p := f.queuedPayload(body)
		sums = append(sums, p.Project.Upload)
	}
	if sums[0] != sums[1] {
		t.Errorf("two snapshots of one unchanged project: %v", sums)
	}
}

// A FIFO in a path project is refused, and the request answers: nothing waits on it.
func TestPathProjectWithAFIFOIsRefused(t *testing.T) {
	f := newFixture(t)
	if err := syscall.Mkfifo(filepath.Join(f.root, "counter", "src", "Pipe.sol"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, body := f.deploy(`{"path_url": "counter", "framework": "foundry"}`)
	if code != http.StatusBadRequest || !strings.Contains(errorOf(t, body), "src/Pipe.sol is not a file, directory or link") {
		t.Errorf("status %d: %s", code, body)
	}
	if n := f.queued(); n != 0 {
		t.Errorf("%d tasks enqueued", n)
	}
}

// rawTarHeader is a tar header block written by hand, as a hostile client does:
// archive/tar's Writer will not put extended headers one after another.
func rawTarHeader(name string, typ byte, size int) []byte {
	b := make([]byte, 512)
	copy(b, name)
	copy(b[100:], "0000644\x000000000\x000000000\x00")
	copy(b[124:], fmt.Sprintf("%011o\x00%011o\x00", size, 0))
	b[156] = typ
	copy(b[257:], "ustar\x0000")
	copy(b[148:156], "        ")
	sum := 0
	for _, c := range b {
		sum += int(c)
	}
	copy(b[148:], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

// An upload of stacked 1 MiB PAX headers, gzip members repeated (55 KiB here,
// inflating to 50 MiB), is a 400 naming the problem, not seconds of inflating.
func TestHeaderFloodUploadIsRefused(t *testing.T) {
	f := newFixture(t)
	const size = 1 << 20
	record := fmt.Sprintf("%d comment=", size)
	record += strings.Repeat("a", size-len(record)-1) + "\n"
	var member bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&member, gzip.BestCompression)
	zw.Write(rawTarHeader("flood", 'x', size))
	zw.Write([]byte(record))
	zw.Close()
	archive := bytes.Repeat(member.Bytes(), 50)
	if len(archive) > 64<<10 {
		t.Fatalf("the archive has %d bytes, past the fixture's upload limit", len(archive))
	}
	code, body := f.do(http.MethodPost, "/projects", "application/gzip", archive)
	if code != http.StatusBadRequest || !strings.Contains(errorOf(t, body), "tar headers") {
		t.Errorf("status %d: %s", code, body)
	}
}
