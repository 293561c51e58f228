package projects

import (
	"archive/tar"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const goodTOML = "[profile.default]\nsrc = \"src\"\n"

// goodEntries is a project as a user would upload it, with what must be left out.
func goodEntries() []ent {
	setuid := reg("script/run.sh", "#!/bin/sh\n")
	setuid.mode = 0o4755
	private := reg("src/Private.sol", "// private\n")
	private.mode = 0o600
	return []ent{
		reg("foundry.toml", goodTOML),
		dirEnt("src/"),
		reg("src/Counter.sol", "contract Counter {}\n"),
		private,
		dirEnt("script/"),
		reg("script/Deploy.s.sol", "contract Deploy {}\n"),
		setuid,
		dirEnt("lib/"),
		sym("lib/Counter.sol", "../src/Counter.sol"),
		sym("srclink", "src"),
		// Not the top level: kept.
		dirEnt("src/out/"),
		reg("src/out/Keep.sol", "// kept\n"),
		// Left out.
		reg(".env", "PRIVATE_KEY=0xdead\n"),
		reg(".env.local", "X=1\n"),
		reg("script/.env", "Y=2\n"),
		dirEnt("out/"),
		reg("out/Counter.json", "{}"),
		dirEnt("cache/"),
		reg("cache/solidity-files-cache.json", "{}"),
		dirEnt("broadcast/"),
		dirEnt("broadcast/Deploy.s.sol/"),
		reg("broadcast/Deploy.s.sol/run-latest.json", "{}"),
		dirEnt(".git/"),
		reg(".git/config", "[core]\n"),
		dirEnt("lib/forge-std/"),
		dirEnt("lib/forge-std/.git/"),
		reg("lib/forge-std/.git/HEAD", "ref: main\n"),
		reg("lib/forge-std/README.md", "forge-std\n"),
	}
}

var goodFiles = map[string]int64{
	"foundry.toml":            int64(len(goodTOML)),
	"src/Counter.sol":         int64(len("contract Counter {}\n")),
	"src/Private.sol":         int64(len("// private\n")),
	"script/Deploy.s.sol":     int64(len("contract Deploy {}\n")),
	"script/run.sh":           int64(len("#!/bin/sh\n")),
	"src/out/Keep.sol":        int64(len("// kept\n")),
	"lib/forge-std/README.md": int64(len("forge-std\n")),
}

func TestInspectArchiveGood(t *testing.T) {
	l, err := InspectArchive(tgz(t, goodEntries()...), DefaultLimits)
	if err != nil {
		t.Fatalf("InspectArchive: %v", err)
	}
	if got, want := sortedKeys(l.Files), sortedKeys(goodFiles); !equalStrings(got, want) {
		t.Fatalf("Files = %q, want %q", got, want)
	}
	for name, size := range goodFiles {
		if l.Files[name] != size {
			t.Errorf("Files[%q] = %d, want %d", name, l.Files[name], size)
		}
	}
	if string(l.FoundryTOML) != goodTOML {
		t.Errorf("FoundryTOML = %q, want %q", l.FoundryTOML, goodTOML)
	}
	for _, name := range []string{"src/Counter.sol", "./src/Counter.sol", "src//Counter.sol", "foundry.toml"} {
		if !l.Has(name) {
			t.Errorf("Has(%q) = false", name)
		}
	}
	for _, name := range []string{".env", "out/Counter.json", ".git/config", "lib/Counter.sol", "srclink", "src"} {
		if l.Has(name) {
			t.Errorf("Has(%q) = true", name)
		}
	}
}

func TestInspectArchiveNoFoundryTOML(t *testing.T) {
	l, err := InspectArchive(tgz(t, reg("src/A.sol", "x")), DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	if l.FoundryTOML != nil {
		t.Errorf("FoundryTOML = %q, want nil", l.FoundryTOML)
	}
}

func TestInspectArchiveFoundryTOMLTooLarge(t *testing.T) {
	big := strings.Repeat("#", foundryTOMLMax+1)
	_, err := InspectArchive(tgz(t, reg("foundry.toml", big)), DefaultLimits)
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
}

// unpackSandbox makes base/target (returned) and base/sibling, and after the test
// checks that nothing was written anywhere but under target.
func unpackSandbox(t *testing.T) (base, target string) {
	t.Helper()
	base = t.TempDir()
	target = filepath.Join(base, "target")
	for _, d := range []string{target, filepath.Join(base, "sibling")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, p := range tree(t, base) {
			if p != "target/" && p != "sibling/" && !strings.HasPrefix(p, "target/") {
				t.Errorf("written outside the target dir: %s", p)
			}
		}
	})
	return base, target
}

func TestUnpackGood(t *testing.T) {
	_, dir := unpackSandbox(t)
	if err := Unpack(tgz(t, goodEntries()...), dir, DefaultLimits); err != nil {
		t.Fatalf("Unpack: %v", err)
	}
	want := []string{
		"foundry.toml",
		"lib/",
		"lib/Counter.sol -> ../src/Counter.sol",
		"lib/forge-std/",
		"lib/forge-std/README.md",
		"script/",
		"script/Deploy.s.sol",
		"script/run.sh",
		"src/",
		"src/Counter.sol",
		"src/Private.sol",
		"src/out/",
		"src/out/Keep.sol",
		"srclink -> src",
	}
	if got := tree(t, dir); !equalStrings(got, want) {
		t.Fatalf("unpacked:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := readFile(t, filepath.Join(dir, "foundry.toml")); got != goodTOML {
		t.Errorf("foundry.toml = %q", got)
	}
	if got := readFile(t, filepath.Join(dir, "lib", "Counter.sol")); got != "contract Counter {}\n" {
		t.Errorf("through the link: %q", got)
	}
	modes := map[string]os.FileMode{
		"foundry.toml":        0o644,
		"src/Counter.sol":     0o644,
		"src/Private.sol":     0o644,
		"script/Deploy.s.sol": 0o644,
		"script/run.sh":       0o755,
		"src":                 0o755,
	}
	for name, want := range modes {
		st, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(name)))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode()&(os.ModeSetuid|os.ModeSetgid|os.ModeSticky) != 0 {
			t.Errorf("%s: mode %v has a setuid, setgid or sticky bit", name, st.Mode())
		}
		if got := st.Mode().Perm(); got != want {
			t.Errorf("%s: mode %o, want %o", name, got, want)
		}
	}
}

// TestArchiveDotSlash: `tar -C project -czf - .` writes "./" first and every name
// under "./"; such an archive is a plain project.
func TestArchiveDotSlash(t *testing.T) {
	archive := tgz(t,
		dirEnt("./"),
		reg("./foundry.toml", goodTOML),
		dirEnt("./src/"),
		reg("./src/A.sol", "contract A {}"),
	)
	l, err := InspectArchive(archive, DefaultLimits)
	if err != nil {
		t.Fatalf("InspectArchive of a tar of \".\": %v", err)
	}
	if got, want := sortedKeys(l.Files), []string{"foundry.toml", "src/A.sol"}; !equalStrings(got, want) {
		t.Errorf("Files = %q, want %q", got, want)
	}
	_, dir := unpackSandbox(t)
	if err := Unpack(archive, dir, DefaultLimits); err != nil {
		t.Fatalf("Unpack of a tar of \".\": %v", err)
	}
	if got, want := tree(t, dir), []string{"foundry.toml", "src/", "src/A.sol"}; !equalStrings(got, want) {
		t.Errorf("unpacked %q, want %q", got, want)
	}
}

// TestArchiveSkippedWithoutDirEntries: build output, caches and version control are
// left out whether or not the archive has an entry for their directory (many tools
// write only files), as a directory project's are.
func TestArchiveSkippedWithoutDirEntries(t *testing.T) {
	archive := tgz(t,
		reg("foundry.toml", goodTOML),
		reg("src/A.sol", "contract A {}"),
		reg("out/A.sol/A.json", "{}"),
		reg("cache/solidity-files-cache.json", "{}"),
		reg("broadcast/Deploy.s.sol/1/run-latest.json", "{}"),
		reg(".git/config", "[core]"),
		reg("lib/x/.git/HEAD", "ref"),
	)
	want := []string{"foundry.toml", "src/A.sol"}
	l, err := InspectArchive(archive, DefaultLimits)
	if err != nil {
		t.Fatalf("InspectArchive: %v", err)
	}
	if got := sortedKeys(l.Files); !equalStrings(got, want) {
		t.Errorf("Files = %q, want %q", got, want)
	}
	_, dir := unpackSandbox(t)
	if err := Unpack(archive, dir, DefaultLimits); err != nil {
		t.Fatalf("Unpack: %v", err)
	}
	var files []string
	for _, p := range tree(t, dir) {
		if !strings.HasSuffix(p, "/") {
			files = append(files, p)
		}
	}
	if !equalStrings(files, want) {
		t.Errorf("unpacked files %q, want %q", files, want)
	}
}

func TestArchiveRefused(t *testing.T) {
	hard := ent{name: "b", typ: tar.TypeLink, link: "a", mode: 0o644}
	tests := []struct {
		name    string
		archive func(t *testing.T) []byte
		lim     Limits
		msg     string // part of the error
	}{
		{name: "dotdot", archive: func(t *testing.T) []byte { return tgz(t, reg("../x", "x")) }, msg: `"../x"`},
		{name: "nested dotdot", archive: func(t *testing.T) []byte { return tgz(t, reg("a/../../x", "x")) }, msg: "outside"},
		{name: "dotdot dir", archive: func(t *testing.T) []byte { return tgz(t, dirEnt("../d/")) }, msg: "outside"},
		{name: "absolute path", archive: func(t *testing.T) []byte { return tgz(t, reg("/etc/x", "x")) }, msg: `absolute path "/etc/x"`},
		{name: "backslash", archive: func(t *testing.T) []byte { return tgz(t, reg(`..\x`, "x")) }, msg: "characters"},
		{name: "symlink escapes", archive: func(t *testing.T) []byte {
			return tgz(t, sym("l", "../../etc/passwd"))
		}, msg: `link "l" leads outside`},
		{name: "nested symlink escapes", archive: func(t *testing.T) []byte {
			return tgz(t, dirEnt("a/"), dirEnt("a/b/"), sym("a/b/l", "../../../x"))
		}, msg: "leads outside"},
		{name: "symlink to parent", archive: func(t *testing.T) []byte { return tgz(t, sym("l", "..")) }, msg: "leads outside"},
		{name: "absolute symlink", archive: func(t *testing.T) []byte { return tgz(t, sym("l", "/etc/passwd")) }, msg: "leads outside"},
		{name: "empty symlink", archive: func(t *testing.T) []byte { return tgz(t, sym("l", "")) }, msg: "leads outside"},
		{name: "symlink through symlink", archive: func(t *testing.T) []byte {
			return tgz(t, dirEnt("sub/"), sym("sub/d", ".."), sym("sub/x", "d/.."))
		}, msg: "another link"},
		{name: "symlink through later symlink", archive: func(t *testing.T) []byte {
			return tgz(t, dirEnt("sub/"), sym("sub/x", "d/.."), sym("sub/d", ".."))
		}, msg: "another link"},
		{name: "write through symlink dir", archive: func(t *testing.T) []byte {
			return tgz(t, dirEnt("sub/"), sym("l", "sub"), reg("l/file", "x"))
		}, msg: `goes through the link "l"`},
		{name: "dir through symlink", archive: func(t *testing.T) []byte {
			return tgz(t, dirEnt("sub/"), sym("l", "sub"), dirEnt("l/d/"))
		}, msg: "goes through the link"},
		{name: "write through escaping symlink chain", archive: func(t *testing.T) []byte {
			return tgz(t, dirEnt("sub/"), sym("sub/d", ".."), sym("sub/x", "d/.."), reg("sub/x/sibling/evil", "x"))
		}, msg: "goes through the link"},
		{name: "hard link", archive: func(t *testing.T) []byte { return tgz(t, reg("a", "x"), hard) }, msg: "hard link"},
		{name: "char device", archive: func(t *testing.T) []byte {
			return tgz(t, ent{name: "dev", typ: tar.TypeChar, mode: 0o666})
		}, msg: `"dev" is not a file`},
		{name: "block device", archive: func(t *testing.T) []byte {
			return tgz(t, ent{name: "blk", typ: tar.TypeBlock, mode: 0o666})
		}, msg: "not a file"},
		{name: "fifo", archive: func(t *testing.T) []byte {
			return tgz(t, ent{name: "fifo", typ: tar.TypeFifo, mode: 0o666})
		}, msg: "not a file"},
		{name: "too many entries", lim: Limits{MaxEntries: 3, MaxBytes: 1 << 20}, archive: func(t *testing.T) []byte {
			return tgz(t, reg("a", "1"), reg("b", "2"), reg("c", "3"), reg("d", "4"))
		}, msg: "more than 3 entries"},
		{name: "too many entries counting skipped ones", lim: Limits{MaxEntries: 3, MaxBytes: 1 << 20}, archive: func(t *testing.T) []byte {
			return tgz(t, reg("a", "1"), dirEnt("out/"), reg("out/b", "2"), reg("out/c", "3"))
		}, msg: "more than 3 entries"},
		{name: "too many bytes", lim: Limits{MaxEntries: 100, MaxBytes: 10}, archive: func(t *testing.T) []byte {
			return tgz(t, reg("a", "123456"), reg("b", "12345"))
		}, msg: "more than 10 bytes"},
		{name: "too many bytes in a skipped file", lim: Limits{MaxEntries: 100, MaxBytes: 10}, archive: func(t *testing.T) []byte {
			return tgz(t, reg("a", "123456"), reg(".env", "12345"))
		}, msg: "more than 10 bytes"},
		{name: "not gzip: plain tar", archive: func(t *testing.T) []byte { return tarBytes(t, []ent{reg("a", "x")}) }, msg: "not a gzip'd tar"},
		{name: "not gzip: text", archive: func(t *testing.T) []byte { return []byte("hello, world") }, msg: "not a gzip'd tar"},
		{name: "not gzip: empty", archive: func(t *testing.T) []byte { return nil }, msg: "not a gzip'd tar"},
		{name: "gzip but not tar", archive: func(t *testing.T) []byte {
			return gz(t, []byte(strings.Repeat("not a tar header ", 64)))
		}, msg: "not a readable tar"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lim := tt.lim
			if lim == (Limits{}) {
				lim = DefaultLimits
			}
			archive := tt.archive(t)
			l, err := InspectArchive(archive, lim)
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("InspectArchive: err = %v, want ErrInvalid", err)
			} else if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("InspectArchive: err = %q, want it to say %q", err, tt.msg)
			}
			if l != nil {
				t.Errorf("InspectArchive returned a listing with its error")
			}
			_, dir := unpackSandbox(t)
			err = Unpack(archive, dir, lim)
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("Unpack: err = %v, want ErrInvalid", err)
			} else if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("Unpack: err = %q, want it to say %q", err, tt.msg)
			}
		})
	}
}

func TestUnpackDuplicate(t *testing.T) {
	tests := []struct {
		name    string
		entries []ent
	}{
		{"file twice", []ent{reg("a", "1"), reg("a", "2")}},
		{"file then link", []ent{reg("a", "1"), sym("a", "b")}},
		{"link then file", []ent{sym("a", "b"), reg("a", "1")}},
		{"link then file, via ./", []ent{sym("a", "b"), reg("./a", "1")}},
		{"link twice", []ent{reg("b", "1"), sym("a", "b"), sym("a", "b")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, dir := unpackSandbox(t)
			err := Unpack(tgz(t, tt.entries...), dir, DefaultLimits)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `"a" appears twice`) {
				t.Fatalf("err = %v, want ErrInvalid saying \"a\" appears twice", err)
			}
			// The first entry stays as it was: nothing was written through the link.
			if _, err := os.Lstat(filepath.Join(dir, "b")); err == nil && strings.HasPrefix(tt.name, "link then file") {
				t.Errorf("b was created through the link a")
			}
		})
	}
}

func TestUnpackDirEntryOverLink(t *testing.T) {
	// A directory entry named as an earlier link must not create anything through it.
	_, dir := unpackSandbox(t)
	err := Unpack(tgz(t, sym("l", "missing"), dirEnt("l/")), dir, DefaultLimits)
	if err == nil {
		// Accepting is acceptable only if nothing was made through the link.
		if _, statErr := os.Lstat(filepath.Join(dir, "missing")); statErr == nil {
			t.Fatalf("a directory was created through the link l")
		}
	}
}

func TestSkipped(t *testing.T) {
	tests := []struct {
		rel   string
		isDir bool
		want  bool
	}{
		{".env", false, true},
		{".env.local", false, true},
		{"script/.env", false, true},
		{"script/.env.production", false, true},
		{".envrc", false, false},
		{"env", false, false},
		{"out", true, true},
		{"cache", true, true},
		{"broadcast", true, true},
		{"./out", true, true},
		{".git", true, true},
		{"lib/forge-std/.git", true, true},
		{"src/out", true, false},
		{"lib/cache", true, false},
		// forge's output folders at the top, whatever their type (a link, a file).
		{"out", false, true},
		{"cache", false, true},
		{"broadcast", false, true},
		{"./broadcast", false, true},
		{"src/broadcast", false, false},
		{"lib/out", false, false},
		{".git", false, false},
		{"src", true, false},
		{".env", true, false},
		{"foundry.toml", false, false},
	}
	for _, tt := range tests {
		if got := Skipped(tt.rel, tt.isDir); got != tt.want {
			t.Errorf("Skipped(%q, %v) = %v, want %v", tt.rel, tt.isDir, got, tt.want)
		}
	}
}

func TestCheckName(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"a", "a", true},
		{"a/b/", "a/b", true},
		{"a//b", "a/b", true},
		{"a/./b", "a/b", true},
		{".", ".", true},
		{"", "", false},
		{"/a", "", false},
		{"C:/x", "", false},
		{"..", "", false},
		{"a/..", "", false},
		{"a/../b", "", false},
		{`a\b`, "", false},
		{"a\x00b", "", false},
		{"..a", "..a", true},
	}
	for _, tt := range tests {
		got, err := checkName(tt.in)
		if tt.ok {
			if err != nil || got != tt.want {
				t.Errorf("checkName(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
			continue
		}
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("checkName(%q) = %q, %v; want ErrInvalid", tt.in, got, err)
		}
	}
}

func TestLinkInside(t *testing.T) {
	tests := []struct {
		name, target string
		want         bool
	}{
		{"l", "src", true},
		{"l", "./src/A.sol", true},
		{"a/l", "..", true},
		{"a/l", "../b", true},
		{"a/b/l", "../../c", true},
		{"l", "..", false},
		{"l", "../x", false},
		{"a/l", "../..", false},
		{"a/l", "../../x", false},
		{"l", "src/../../x", false},
		{"l", "/etc/passwd", false},
		{"l", "", false},
		{"l", "..foo", true},
	}
	for _, tt := range tests {
		if got := linkInside(tt.name, tt.target); got != tt.want {
			t.Errorf("linkInside(%q, %q) = %v, want %v", tt.name, tt.target, got, tt.want)
		}
	}
}

func TestCheckLinkTargets(t *testing.T) {
	tests := []struct {
		name  string
		links map[string]string
		ok    bool
	}{
		{"none", nil, true},
		{"independent", map[string]string{"a": "src", "lib/b": "../src/B.sol"}, true},
		{"through another", map[string]string{"sub/d": "..", "sub/x": "d/.."}, false},
		{"into another", map[string]string{"a": "b", "b": "src"}, false},
		{"up then through", map[string]string{"x/l": "../y/m/f", "y/m": "z"}, false},
		{"escape by dots", map[string]string{"a/l": "../../x"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkLinkTargets(tt.links)
			if tt.ok && err != nil {
				t.Fatalf("err = %v", err)
			}
			if !tt.ok && !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
		})
	}
}

// Entries that collide on disk are the user's to fix: a retry would not mend them.
func TestUnpackCollisionsAreUserErrors(t *testing.T) {
	tests := []struct {
		name    string
		entries []ent
		msg     string
	}{
		{"file then a file inside it", []ent{reg("a", "1"), reg("a/b", "2")}, `"a/b" is inside an earlier entry that is not a directory`},
		{"file then a directory of its name", []ent{reg("a", "1"), dirEnt("a/")}, `"a" appears twice`},
		{"directory then a file of its name", []ent{dirEnt("a/"), reg("a", "1")}, `"a" appears twice`},
		{"name too long", []ent{reg(strings.Repeat("n", 300), "1")}, "too long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, dir := unpackSandbox(t)
			err := Unpack(tgz(t, tt.entries...), dir, DefaultLimits)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err = %v, want ErrInvalid saying %s", err, tt.msg)
			}
		})
	}
}
