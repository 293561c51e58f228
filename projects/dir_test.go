package projects

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func TestResolvePath(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "examples", "counter"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(outside, "proj"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(root, "file.txt"), "x", 0o644)
	symlink(t, filepath.Join(outside, "proj"), filepath.Join(root, "escape"))
	relOutside, err := filepath.Rel(root, outside)
	if err != nil {
		t.Fatal(err)
	}
	symlink(t, relOutside, filepath.Join(root, "escape-rel"))
	symlink(t, "examples/counter", filepath.Join(root, "inlink"))
	symlink(t, filepath.Join(root, "examples"), filepath.Join(root, "abslink"))
	symlink(t, "nowhere", filepath.Join(root, "dangling"))

	ok := []struct {
		in, want string
	}{
		{"examples/counter", "examples/counter"},
		{"examples/counter/", "examples/counter"},
		{"./examples/counter", "examples/counter"},
		{"examples", "examples"},
		{root + "/examples/counter", "examples/counter"},
		{"file://" + root + "/examples/counter", "examples/counter"},
		{"file://localhost" + root + "/examples/counter", "examples/counter"},
		{"file://examples/counter", "examples/counter"},
		{"file:examples/counter", "examples/counter"},
		{"inlink", "examples/counter"},
		{"abslink/counter", "examples/counter"},
	}
	for _, tt := range ok {
		t.Run("ok "+tt.in, func(t *testing.T) {
			got, err := ResolvePath(root, tt.in)
			if err != nil {
				t.Fatalf("ResolvePath(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("ResolvePath(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if filepath.IsAbs(got) {
				t.Fatalf("ResolvePath(%q) = %q is not relative", tt.in, got)
			}
		})
	}

	refused := []struct {
		in, msg string
	}{
		{"../x", `".." is not allowed`},
		{"..", `".." is not allowed`},
		{"examples/../examples/counter", `".." is not allowed`},
		{"file://../etc", `".." is not allowed`},
		{"file:///" + root + "/../" + filepath.Base(outside), `".." is not allowed`},
		{outside, "outside the projects root"},
		{outside + "/proj", "outside the projects root"},
		{"/etc", "outside the projects root"},
		{"file:///etc", "outside the projects root"},
		{"file://" + outside + "/proj", "outside the projects root"},
		{"escape", "outside the projects root"},
		{"escape-rel", "outside the projects root"},
		{"missing", "does not exist"},
		{"examples/missing", "does not exist"},
		{"dangling", "does not exist"},
		{"file.txt", "not a directory"},
		{"", "names no directory"},
		{"file://", "names no directory"},
	}
	for _, tt := range refused {
		t.Run("refused "+tt.in, func(t *testing.T) {
			got, err := ResolvePath(root, tt.in)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("ResolvePath(%q) = %q, %v; want ErrInvalid", tt.in, got, err)
			}
			if !strings.Contains(err.Error(), strconv.Quote(tt.in)) {
				t.Errorf("error %q does not name the path %q", err, tt.in)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not say %q", err, tt.msg)
			}
		})
	}
}

func TestResolvePathRootMissing(t *testing.T) {
	_, err := ResolvePath(filepath.Join(t.TempDir(), "missing"), "x")
	if err == nil {
		t.Fatal("no error for a missing projects root")
	}
	if errors.Is(err, ErrInvalid) {
		t.Errorf("a missing projects root is the service's failure, not the user's: %v", err)
	}
}

// makeProject writes a small project with an inside link and what must be skipped.
func makeProject(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "proj")
	writeFile(t, filepath.Join(dir, "foundry.toml"), goodTOML, 0o644)
	writeFile(t, filepath.Join(dir, "src", "Counter.sol"), "contract Counter {}\n", 0o644)
	writeFile(t, filepath.Join(dir, "script", "Deploy.s.sol"), "contract Deploy {}\n", 0o644)
	writeFile(t, filepath.Join(dir, "script", "run.sh"), "#!/bin/sh\n", 0o755)
	symlink(t, "../src/Counter.sol", filepath.Join(dir, "lib", "Counter.sol"))
	symlink(t, "src", filepath.Join(dir, "srclink"))
	writeFile(t, filepath.Join(dir, ".env"), "PRIVATE_KEY=0xdead\n", 0o600)
	writeFile(t, filepath.Join(dir, "script", ".env.local"), "X=1\n", 0o600)
	writeFile(t, filepath.Join(dir, "out", "Counter.json"), "{}", 0o644)
	writeFile(t, filepath.Join(dir, "cache", "c.json"), "{}", 0o644)
	writeFile(t, filepath.Join(dir, "broadcast", "Deploy.s.sol", "1", "run-latest.json"), "{}", 0o644)
	writeFile(t, filepath.Join(dir, ".git", "config"), "[core]\n", 0o644)
	writeFile(t, filepath.Join(dir, "src", "out", "Keep.sol"), "// kept\n", 0o644)
	return dir
}

func TestListDir(t *testing.T) {
	dir := makeProject(t)
	l, err := ListDir(dir, DefaultLimits)
	if err != nil {
		t.Fatalf("ListDir: %v", err)
	}
	want := []string{"foundry.toml", "script/Deploy.s.sol", "script/run.sh", "src/Counter.sol", "src/out/Keep.sol"}
	if got := sortedKeys(l.Files); !equalStrings(got, want) {
		t.Errorf("Files = %q, want %q", got, want)
	}
	if l.Files["src/Counter.sol"] != int64(len("contract Counter {}\n")) {
		t.Errorf("size of src/Counter.sol = %d", l.Files["src/Counter.sol"])
	}
	if string(l.FoundryTOML) != goodTOML {
		t.Errorf("FoundryTOML = %q", l.FoundryTOML)
	}
}

func TestListDirThroughLinkedDir(t *testing.T) {
	// The project directory itself may be reached through a link.
	dir := makeProject(t)
	link := filepath.Join(t.TempDir(), "link")
	symlink(t, dir, link)
	l, err := ListDir(link, DefaultLimits)
	if err != nil {
		t.Fatalf("ListDir: %v", err)
	}
	if !l.Has("src/Counter.sol") || string(l.FoundryTOML) != goodTOML {
		t.Errorf("listing through a link: %v, %q", l.Files, l.FoundryTOML)
	}
}

func TestListDirRefused(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir, outside string)
		lim   Limits
		msg   string
	}{
		{"absolute link outside", func(t *testing.T, dir, outside string) {
			symlink(t, filepath.Join(outside, "secret"), filepath.Join(dir, "src", "Secret.sol"))
		}, Limits{}, "leads outside"},
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
		}, Limits{}, "leads nowhere"},
		{"fifo", func(t *testing.T, dir, outside string) {
			if err := syscall.Mkfifo(filepath.Join(dir, "src", "fifo"), 0o644); err != nil {
				t.Fatalf("mkfifo: %v", err)
			}
		}, Limits{}, "not a file"},
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
			l, err := ListDir(dir, lim)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("ListDir = %v, %v; want ErrInvalid", l, err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("err = %q, want it to say %q", err, tt.msg)
			}
			// Pack validates as ListDir does.
			var buf bytes.Buffer
			if err := Pack(&buf, dir, lim, PackOptions{}); !errors.Is(err, ErrInvalid) {
				t.Errorf("Pack: err = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestListDirInsideLinks(t *testing.T) {
	dir := makeProject(t)
	// A link that goes out and comes back in is inside.
	symlink(t, "../"+filepath.Base(dir)+"/src", filepath.Join(dir, "roundabout"))
	symlink(t, filepath.Join(dir, "src", "Counter.sol"), filepath.Join(dir, "abs.sol"))
	symlink(t, ".", filepath.Join(dir, "self"))
	if _, err := ListDir(dir, DefaultLimits); err != nil {
		t.Fatalf("ListDir with inside links: %v", err)
	}
}

func TestListDirFoundryTOMLLink(t *testing.T) {
	tests := []struct {
		name   string
		target func(dir, outside string) string
	}{
		{"inside", func(dir, outside string) string { return "real.toml" }},
		{"outside", func(dir, outside string) string { return filepath.Join(outside, "foundry.toml") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := makeProject(t)
			outside := t.TempDir()
			const linked = "[profile.default]\nffi = true\n"
			writeFile(t, filepath.Join(dir, "real.toml"), linked, 0o644)
			writeFile(t, filepath.Join(outside, "foundry.toml"), linked, 0o644)
			if err := os.Remove(filepath.Join(dir, "foundry.toml")); err != nil {
				t.Fatal(err)
			}
			symlink(t, tt.target(dir, outside), filepath.Join(dir, "foundry.toml"))
			l, err := ListDir(dir, DefaultLimits)
			if err != nil {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("err = %v, want ErrInvalid or a listing without foundry.toml", err)
				}
				return
			}
			if l.FoundryTOML != nil {
				t.Fatalf("foundry.toml was read through its link: %q", l.FoundryTOML)
			}
			if l.Has("foundry.toml") {
				t.Errorf("a linked foundry.toml is listed as a regular file")
			}
		})
	}
}

func TestReadRegular(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "f"), "hello", 0o644)
	symlink(t, "f", filepath.Join(dir, "l"))
	if b, err := readRegular(filepath.Join(dir, "f"), 5); err != nil || string(b) != "hello" {
		t.Errorf("readRegular(f, 5) = %q, %v", b, err)
	}
	if _, err := readRegular(filepath.Join(dir, "f"), 4); !errors.Is(err, ErrInvalid) {
		t.Errorf("readRegular(f, 4) err = %v, want ErrInvalid (too large)", err)
	}
	if b, err := readRegular(filepath.Join(dir, "l"), 100); !errors.Is(err, ErrInvalid) {
		t.Errorf("readRegular(link) = %q, %v; want ErrInvalid (not followed)", b, err)
	}
	if _, err := readRegular(filepath.Join(dir, "missing"), 100); !errors.Is(err, ErrInvalid) {
		t.Errorf("readRegular(missing) err = %v, want ErrInvalid", err)
	}
}

func TestPackUnpackRoundTrip(t *testing.T) {
	const newTOML = "# sanitized\n[profile.default]\nffi = false\n"
	tests := []struct {
		name   string
		prefix string
	}{
		{"no prefix", ""},
		{"prefix", "project/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := makeProject(t)
			var buf bytes.Buffer
			err := Pack(&buf, src, DefaultLimits, PackOptions{
				Gzip:   true,
				Prefix: tt.prefix,
				Replace: map[string][]byte{
					"foundry.toml":    []byte(newTOML),
					"extra/added.txt": []byte("added"),
				},
				UID: 10001, GID: 10001,
			})
			if err != nil {
				t.Fatalf("Pack: %v", err)
			}
			archive := buf.Bytes()

			l, err := InspectArchive(archive, DefaultLimits)
			if err != nil {
				t.Fatalf("InspectArchive of Pack's output: %v", err)
			}
			var wantFiles []string
			for _, f := range []string{"extra/added.txt", "foundry.toml", "script/Deploy.s.sol", "script/run.sh", "src/Counter.sol", "src/out/Keep.sol"} {
				wantFiles = append(wantFiles, tt.prefix+f)
			}
			if got := sortedKeys(l.Files); !equalStrings(got, wantFiles) {
				t.Errorf("archive files %q, want %q", got, wantFiles)
			}

			_, dst := unpackSandbox(t)
			if err := Unpack(archive, dst, DefaultLimits); err != nil {
				t.Fatalf("Unpack of Pack's output: %v", err)
			}
			root := filepath.Join(dst, filepath.FromSlash(tt.prefix))
			if tt.prefix != "" {
				if got := tree(t, dst); len(got) == 0 || got[0] != "project/" {
					t.Fatalf("unpacked %q: not all under the prefix", got)
				}
				for _, p := range tree(t, dst) {
					if !strings.HasPrefix(p, tt.prefix) {
						t.Errorf("%s is not under the prefix", p)
					}
				}
			}
			want := []string{
				"extra/",
				"extra/added.txt",
				"foundry.toml",
				"lib/",
				"lib/Counter.sol -> ../src/Counter.sol",
				"script/",
				"script/Deploy.s.sol",
				"script/run.sh",
				"src/",
				"src/Counter.sol",
				"src/out/",
				"src/out/Keep.sol",
				"srclink -> src",
			}
			if got := tree(t, root); !equalStrings(got, want) {
				t.Fatalf("round trip:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			checks := map[string]string{
				"foundry.toml":        newTOML,
				"extra/added.txt":     "added",
				"src/Counter.sol":     "contract Counter {}\n",
				"script/Deploy.s.sol": "contract Deploy {}\n",
				"lib/Counter.sol":     "contract Counter {}\n",
				"srclink/Counter.sol": "contract Counter {}\n",
			}
			for name, body := range checks {
				if got := readFile(t, filepath.Join(root, filepath.FromSlash(name))); got != body {
					t.Errorf("%s = %q, want %q", name, got, body)
				}
			}
			st, err := os.Stat(filepath.Join(root, "script", "run.sh"))
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o755 {
				t.Errorf("run.sh mode %o, want 755", st.Mode().Perm())
			}
			// The project itself is untouched.
			if got := readFile(t, filepath.Join(src, "foundry.toml")); got != goodTOML {
				t.Errorf("Pack changed the project's foundry.toml: %q", got)
			}
		})
	}
}

func TestPackPlainHeaders(t *testing.T) {
	src := makeProject(t)
	var buf bytes.Buffer
	if err := Pack(&buf, src, DefaultLimits, PackOptions{Prefix: "p/", UID: 10001, GID: 10002}); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&buf)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not a plain tar: %v", err)
		}
		names = append(names, h.Name)
		if h.Uid != 10001 || h.Gid != 10002 || h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: owner %d:%d (%q:%q), want 10001:10002 with no names", h.Name, h.Uid, h.Gid, h.Uname, h.Gname)
		}
		if !strings.HasPrefix(h.Name, "p/") {
			t.Errorf("%s: no prefix", h.Name)
		}
		if h.Typeflag == tar.TypeSymlink && (strings.HasPrefix(h.Linkname, "/") || strings.Contains(h.Linkname, filepath.Base(src))) {
			t.Errorf("%s: link target %q is not relative to the project", h.Name, h.Linkname)
		}
		if h.Mode&^0o777 != 0 {
			t.Errorf("%s: mode %o has special bits", h.Name, h.Mode)
		}
		for _, skipped := range []string{".env", "out/", "cache/", "broadcast/", ".git/"} {
			if strings.HasPrefix(h.Name, "p/"+skipped) || strings.HasSuffix(h.Name, "/.env.local") {
				t.Errorf("%s should have been skipped", h.Name)
			}
		}
	}
	if len(names) == 0 || names[0] != "p/" {
		t.Errorf("first entry %q, want the prefix directory", names)
	}
}

// TestPackRewritesAbsoluteInsideLink: a link written absolute in the project but
// leading inside it is written relative, so that it means the same in the copy.
func TestPackRewritesAbsoluteInsideLink(t *testing.T) {
	src := makeProject(t)
	symlink(t, filepath.Join(src, "src", "Counter.sol"), filepath.Join(src, "script", "C.sol"))
	var buf bytes.Buffer
	if err := Pack(&buf, src, DefaultLimits, PackOptions{Gzip: true}); err != nil {
		t.Fatal(err)
	}
	_, dst := unpackSandbox(t)
	if err := Unpack(buf.Bytes(), dst, DefaultLimits); err != nil {
		t.Fatal(err)
	}
	target, err := os.Readlink(filepath.Join(dst, "script", "C.sol"))
	if err != nil {
		t.Fatal(err)
	}
	if target != "../src/Counter.sol" {
		t.Errorf("link target %q, want ../src/Counter.sol", target)
	}
}

// TestPackReplaceLinkedFile: Replace gives the contents of a file "instead of the
// project's own"; when the project's own is a link, the archive must still hold one
// entry of that name (Unpack refuses duplicates).
func TestPackReplaceLinkedFile(t *testing.T) {
	src := makeProject(t)
	writeFile(t, filepath.Join(src, "real.toml"), goodTOML, 0o644)
	if err := os.Remove(filepath.Join(src, "foundry.toml")); err != nil {
		t.Fatal(err)
	}
	symlink(t, "real.toml", filepath.Join(src, "foundry.toml"))
	var buf bytes.Buffer
	if err := Pack(&buf, src, DefaultLimits, PackOptions{Gzip: true, Replace: map[string][]byte{"foundry.toml": []byte("# mine\n")}}); err != nil {
		t.Fatal(err)
	}
	_, dst := unpackSandbox(t)
	if err := Unpack(buf.Bytes(), dst, DefaultLimits); err != nil {
		t.Fatalf("Unpack: %v", err)
	}
	st, err := os.Lstat(filepath.Join(dst, "foundry.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if !st.Mode().IsRegular() {
		t.Fatalf("foundry.toml is %v, want the replaced regular file", st.Mode())
	}
	if got := readFile(t, filepath.Join(dst, "foundry.toml")); got != "# mine\n" {
		t.Errorf("foundry.toml = %q", got)
	}
}
