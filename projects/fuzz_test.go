package projects

import (
	"archive/tar"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// fuzzLimits are small, so that every input's work is small: the budget below is
// what any input may make the reader inflate.
var fuzzLimits = Limits{MaxEntries: 64, MaxBytes: 1 << 20}

// FuzzInspectArchive feeds arbitrary bytes to the archive reader as an upload: it
// must not panic, must not read past its budget, must refuse with a user's error, and
// must write nothing outside the directory it unpacks into. The seed corpus in
// testdata/fuzz/FuzzInspectArchive holds valid and hostile archives.
func FuzzInspectArchive(f *testing.F) {
	f.Add(tgz(f, goodEntries()...))
	f.Add(tgz(f, dirEnt("sub/"), sym("l", "sub"), reg("l/file", "through the link")))
	f.Add(headerFlood(f, 2, 'x', 'L'))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, archive []byte) {
		read, err := walkArchive(archive, fuzzLimits, func(*tar.Header, string, io.Reader) error { return nil })
		if budget := archiveBudget(fuzzLimits); read > budget {
			t.Fatalf("read %d decompressed bytes, past the budget of %d", read, budget)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Fatalf("walk: %v is not a user's error", err)
		}
		l, inspectErr := InspectArchive(archive, fuzzLimits)
		if inspectErr != nil && !errors.Is(inspectErr, ErrInvalid) {
			t.Fatalf("InspectArchive: %v is not a user's error", inspectErr)
		}
		if (inspectErr == nil) != (l != nil) {
			t.Fatalf("InspectArchive = %v, %v", l, inspectErr)
		}

		base := t.TempDir()
		dir := filepath.Join(base, "target")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		unpackErr := Unpack(archive, dir, fuzzLimits)
		if unpackErr != nil && !errors.Is(unpackErr, ErrInvalid) {
			t.Fatalf("Unpack: %v is not a user's error", unpackErr)
		}
		if inspectErr != nil && unpackErr == nil {
			t.Fatalf("Unpack accepted what InspectArchive refused (%v)", inspectErr)
		}
		if names, err := os.ReadDir(base); err != nil || len(names) != 1 {
			t.Fatalf("written beside the target dir: %v %v", names, err)
		}
		var total int64
		err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			info, err := d.Info()
			if err != nil {
				return err
			}
			switch {
			case d.Type()&fs.ModeSymlink != 0:
				target, err := os.Readlink(p)
				if err != nil {
					return err
				}
				if !linkInside(filepath.ToSlash(rel), target) {
					t.Errorf("link %s leads outside the target dir (to %q)", rel, target)
				}
			case info.Mode().IsRegular():
				total += info.Size()
				if info.Mode()&(fs.ModeSetuid|fs.ModeSetgid) != 0 {
					t.Errorf("%s has mode %v", rel, info.Mode())
				}
			case !info.IsDir():
				t.Errorf("%s is a %v", rel, info.Mode().Type())
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if total > fuzzLimits.MaxBytes {
			t.Errorf("unpacked %d bytes, past the limit of %d", total, fuzzLimits.MaxBytes)
		}
		if unpackErr != nil || l == nil {
			return
		}
		for name, size := range l.Files {
			info, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(name)))
			if err != nil || !info.Mode().IsRegular() || info.Size() != size {
				t.Errorf("listed %s (%d bytes), unpacked %v %v", name, size, info, err)
			}
		}
	})
}
