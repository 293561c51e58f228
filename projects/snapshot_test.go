package projects

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// snapshotOf snapshots the project dir (under its parent, the projects root).
func snapshotOf(t *testing.T, dir string, lim Limits) ([]byte, error) {
	t.Helper()
	return Snapshot(filepath.Dir(dir), filepath.Base(dir), lim)
}

// A path project's snapshot is an upload of it: the same files, links and listing
// as ListDir and Pack give, with the same things left out.
func TestSnapshotIsAnUploadOfTheProject(t *testing.T) {
	dir := makeProject(t)
	archive, err := snapshotOf(t, dir, DefaultLimits)
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	got, err := InspectArchive(archive, DefaultLimits)
	if err != nil {
		t.Fatalf("InspectArchive of the snapshot: %v", err)
	}
	want, err := ListDir(dir, DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	if !equalStrings(sortedKeys(got.Files), sortedKeys(want.Files)) || string(got.FoundryTOML) != string(want.FoundryTOML) {
		t.Errorf("snapshot lists %v %q, the directory %v %q", got.Files, got.FoundryTOML, want.Files, want.FoundryTOML)
	}
	_, out := unpackSandbox(t)
	if err := Unpack(archive, out, DefaultLimits); err != nil {
		t.Fatal(err)
	}
	wantTree := []string{
		"foundry.toml", "lib/", "lib/Counter.sol -> ../src/Counter.sol", "script/", "script/Deploy.s.sol",
		"script/run.sh", "src/", "src/Counter.sol", "src/out/", "src/out/Keep.sol", "srclink -> src",
	}
	if tr := tree(t, out); !equalStrings(tr, wantTree) {
		t.Errorf("unpacked snapshot:\n%s\nwant:\n%s", strings.Join(tr, "\n"), strings.Join(wantTree, "\n"))
	}
	if info, err := os.Stat(filepath.Join(out, "script", "run.sh")); err != nil || info.Mode()&0o111 == 0 {
		t.Errorf("script/run.sh lost its executable bit: %v %v", info, err)
	}
	// The same project makes the same archive: deploying it again stores nothing new.
	again, err := snapshotOf(t, dir, DefaultLimits)
	if err != nil || !bytes.Equal(again, archive) {
		t.Errorf("a second snapshot differs (%v)", err)
	}
}

// Links inside the project are kept, resolved as ListDir resolves them: through
// other links, from an absolute path, out of the project and straight back in.
func TestSnapshotInsideLinks(t *testing.T) {
	dir := makeProject(t)
	symlink(t, "../"+filepath.Base(dir)+"/src", filepath.Join(dir, "roundabout"))
	symlink(t, filepath.Join(dir, "src", "Counter.sol"), filepath.Join(dir, "abs.sol"))
	symlink(t, ".", filepath.Join(dir, "self"))
	symlink(t, "lib/Counter.sol", filepath.Join(dir, "chain.sol"))
	symlink(t, "../srclink/Counter.sol", filepath.Join(dir, "script", "via-dir-link.sol"))
	archive, err := snapshotOf(t, dir, DefaultLimits)
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	if _, err := InspectArchive(archive, DefaultLimits); err != nil {
		t.Fatalf("InspectArchive: %v", err)
	}
	_, out := unpackSandbox(t)
	if err := Unpack(archive, out, DefaultLimits); err != nil {
		t.Fatal(err)
	}
	for link, want := range map[string]string{
		"roundabout":              "src",
		"abs.sol":                 "src/Counter.sol",
		"self":                    ".",
		"chain.sol":               "src/Counter.sol",
		"script/via-dir-link.sol": "../src/Counter.sol",
	} {
		if got, err := os.Readlink(filepath.Join(out, link)); err != nil || got != want {
			t.Errorf("%s -> %q (%v), want %q", link, got, err, want)
		}
	}
}

func TestSnapshotRefused(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir, outside string)
		lim   Limits
		msg   string
	}{
		{"absolute link outside", func(t *testing.T, dir, outside string) {
			symlink(t, filepath.Join(outside, "secret"), filepath.Join(dir, "src", "Secret.sol"))
		}, Limits{}, "link src/Secret.sol leads outside"},
		{"relative link outside", func(t *testing.T, dir, outside string) {
			rel, err := filepath.Rel(filepath.Join(dir, "src"), filepath.Join(outside, "secret"))
			if err != nil {
				t.Fatal(err)
			}
			symlink(t, rel, filepath.Join(dir, "src", "Secret.sol"))
		}, Limits{}, "leads outside"},
		{"link to parent", func(t *testing.T, dir, outside string) {
			symlink(t, "..", filepath.Join(dir, "up"))
		}, Limits{}, "leads outside"},
		{"link to root", func(t *testing.T, dir, outside string) {
			symlink(t, "/", filepath.Join(dir, "root"))
		}, Limits{}, "leads outside"},
		{"link through inside link to outside", func(t *testing.T, dir, outside string) {
			symlink(t, outside, filepath.Join(dir, "a"))
			symlink(t, "a/secret", filepath.Join(dir, "b"))
		}, Limits{}, "leads outside"},
		{"link to outside dir", func(t *testing.T, dir, outside string) {
			symlink(t, outside, filepath.Join(dir, "lib", "ext"))
		}, Limits{}, "leads outside"},
		{"dangling link", func(t *testing.T, dir, outside string) {
			symlink(t, "nowhere", filepath.Join(dir, "src", "X.sol"))
		}, Limits{}, "link src/X.sol leads nowhere"},
		{"link loop", func(t *testing.T, dir, outside string) {
			symlink(t, "b", filepath.Join(dir, "a"))
			symlink(t, "a", filepath.Join(dir, "b"))
		}, Limits{}, "leads nowhere"},
		{"fifo", func(t *testing.T, dir, outside string) {
			if err := syscall.Mkfifo(filepath.Join(dir, "src", "fifo"), 0o644); err != nil {
				t.Fatalf("mkfifo: %v", err)
			}
		}, Limits{}, "src/fifo is not a file"},
		{"fifo as foundry.toml", func(t *testing.T, dir, outside string) {
			if err := os.Remove(filepath.Join(dir, "foundry.toml")); err != nil {
				t.Fatal(err)
			}
			if err := syscall.Mkfifo(filepath.Join(dir, "foundry.toml"), 0o644); err != nil {
				t.Fatalf("mkfifo: %v", err)
			}
		}, Limits{}, "foundry.toml is not a file"},
		{"too many entries", func(t *testing.T, dir, outside string) {}, Limits{MaxEntries: 3, MaxBytes: 1 << 20}, "more than 3 entries"},
		{"too many bytes", func(t *testing.T, dir, outside string) {}, Limits{MaxEntries: 100, MaxBytes: 20}, "more than 20 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := makeProject(t)
			outside := t.TempDir()
			writeFile(t, filepath.Join(outside, "secret"), "SECRET", 0o644)
			tt.setup(t, dir, outside)
			lim := tt.lim
			if lim == (Limits{}) {
				lim = DefaultLimits
			}
			archive, err := snapshotOf(t, dir, lim)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Snapshot = %d bytes, %v; want ErrInvalid", len(archive), err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("err = %q, want it to say %q", err, tt.msg)
			}
		})
	}
}

// openDir opens a directory for the tests of the snapshot's steps.
func openDir(t *testing.T, dir string) int {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// A file that was checked and then swapped for a link to a secret is not followed:
// the snapshot's open of it refuses the link itself.
func TestSnapshotDoesNotFollowASwappedInLink(t *testing.T) {
	dir := makeProject(t)
	outside := t.TempDir()
	writeFile(t, filepath.Join(outside, "secret"), "SECRET", 0o644)
	// The walk saw src/Counter.sol as a regular file; now it is a link.
	if err := os.Remove(filepath.Join(dir, "src", "Counter.sol")); err != nil {
		t.Fatal(err)
	}
	symlink(t, filepath.Join(outside, "secret"), filepath.Join(dir, "src", "Counter.sol"))
	src := openDir(t, filepath.Join(dir, "src"))
	if fd, err := openRegular(src, "Counter.sol"); !errors.Is(err, unix.ELOOP) {
		if err == nil {
			unix.Close(fd)
		}
		t.Fatalf("openRegular of a link: %v, want ELOOP", err)
	}
	var buf bytes.Buffer
	s := &snapshot{lim: DefaultLimits, tw: tar.NewWriter(&buf)}
	err := s.file(src, "src/Counter.sol", "Counter.sol")
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "src/Counter.sol changed while it was read") {
		t.Errorf("err = %v, want ErrInvalid saying the file changed", err)
	}
	if bytes.Contains(buf.Bytes(), []byte("SECRET")) {
		t.Error("the link's target was read")
	}
	// A directory on the way swapped for a link is not followed either.
	if err := os.RemoveAll(filepath.Join(dir, "script")); err != nil {
		t.Fatal(err)
	}
	symlink(t, outside, filepath.Join(dir, "script"))
	if _, err := openPath(openDir(t, dir), "script"); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "changed while it was read") {
		t.Errorf("openPath through a swapped-in link: %v", err)
	}
	if _, err := snapshotOf(t, filepath.Join(dir, "script"), DefaultLimits); !errors.Is(err, ErrInvalid) {
		t.Errorf("Snapshot of a directory that became a link: %v", err)
	}
}

// A file swapped for a FIFO after the walk looked at it is opened without waiting for
// a writer, and refused by what its descriptor is. (If the open blocked, this test
// would hang until go test's timeout.)
func TestSnapshotRefusesASwappedInFIFOWithoutBlocking(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "foundry.toml"), 0o644); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	s := &snapshot{lim: DefaultLimits, tw: tar.NewWriter(&buf)}
	err := s.file(openDir(t, dir), "foundry.toml", "foundry.toml")
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "foundry.toml is not a file, directory or link") {
		t.Fatalf("err = %v, want ErrInvalid saying it is not a file", err)
	}
	if buf.Len() != 0 {
		t.Errorf("the FIFO was written to the archive")
	}
}

// forge's output folders at the top are left out whatever they are: a broadcast link
// would carry forge's broadcast files into the project (or a planted one to the job).
func TestTopLevelOutputNamesSkippedWhateverTheirType(t *testing.T) {
	dir := makeProject(t)
	outside := t.TempDir()
	for _, d := range []string{"out", "cache", "broadcast"} {
		if err := os.RemoveAll(filepath.Join(dir, d)); err != nil {
			t.Fatal(err)
		}
	}
	symlink(t, "src", filepath.Join(dir, "broadcast"))
	symlink(t, outside, filepath.Join(dir, "out"))
	writeFile(t, filepath.Join(dir, "cache"), "a file", 0o644)
	symlink(t, "../src", filepath.Join(dir, "script", "broadcast"))

	check := func(t *testing.T, names []string) {
		t.Helper()
		var kept bool
		for _, n := range names {
			switch strings.SplitN(n, " ", 2)[0] {
			case "broadcast", "out", "cache":
				t.Errorf("%s was kept", n)
			case "script/broadcast":
				kept = true
			}
		}
		if !kept {
			t.Errorf("script/broadcast, not at the top, was left out: %v", names)
		}
	}
	archive, err := snapshotOf(t, dir, DefaultLimits)
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	_, out := unpackSandbox(t)
	if err := Unpack(archive, out, DefaultLimits); err != nil {
		t.Fatal(err)
	}
	t.Run("snapshot", func(t *testing.T) { check(t, tree(t, out)) })

	// The same archive made by hand (an upload), and a copy made by Pack.
	var buf bytes.Buffer
	if err := Pack(&buf, dir, DefaultLimits, PackOptions{}); err != nil {
		t.Fatalf("Pack: %v", err)
	}
	var packed []string
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		packed = append(packed, strings.TrimSuffix(h.Name, "/"))
	}
	t.Run("pack", func(t *testing.T) { check(t, packed) })
	upload := tgz(t, sym("broadcast", "src"), sym("out", "/etc"), reg("cache", "x"), reg("broadcast/run-latest.json", "{}"),
		dirEnt("script/"), sym("script/broadcast", "../src"), dirEnt("src/"))
	_, out2 := unpackSandbox(t)
	if err := Unpack(upload, out2, DefaultLimits); err != nil {
		t.Fatalf("Unpack: %v", err)
	}
	t.Run("upload", func(t *testing.T) { check(t, tree(t, out2)) })
}
