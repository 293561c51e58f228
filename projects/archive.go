package projects

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
)

// foundryTOMLMax bounds the foundry.toml read for validation.
const foundryTOMLMax = 1 << 20

// Bounds on the decompressed stream. Go's tar reader consumes any number of PAX and
// GNU long-name headers, up to 1 MiB each, within one call to Next, and skips the data
// of entries nobody reads by inflating it: counting entries and declared sizes alone
// leaves a small upload free to make us inflate gigabytes.
const (
	// maxHeaderBytes bounds the tar headers before one entry's data (its header block,
	// PAX or GNU long-name headers, a sparse map), and the end-of-archive blocks. A
	// long path, a long link target, times and extended attributes take a few KiB.
	maxHeaderBytes = 64 << 10
	// entryOverhead is what the whole archive may hold per entry beyond its data, on
	// average: a header block, the data's padding, a PAX header with a long name.
	entryOverhead = 4 << 10
	blockSize     = 512
)

// archiveBudget bounds the decompressed bytes of an archive within lim: every entry's
// data (lim.MaxBytes, skipped entries' included) and its headers.
func archiveBudget(lim Limits) int64 {
	entries := int64(max(lim.MaxEntries, 0))
	return max(lim.MaxBytes, 0) + entries*entryOverhead + maxHeaderBytes
}

// meter counts the decompressed bytes the tar reader takes, and fails the reads past
// limit with errBound, which walkArchive turns into the refusal naming the bound.
type meter struct {
	r      io.Reader
	n      int64
	limit  int64
	budget int64
	hit    bool
}

// errBound is what a read past the meter's limit gets.
var errBound = errors.New("archive bound reached")

func (m *meter) Read(p []byte) (int, error) {
	if m.n >= m.limit {
		m.hit = true
		return 0, errBound
	}
	if rest := m.limit - m.n; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := m.r.Read(p)
	m.n += int64(n)
	return n, err
}

// allow lets the reader take data bytes of the current entry (with their padding) and
// the headers of the next one, within the archive's budget.
func (m *meter) allow(data int64) {
	m.limit = min(m.n+data+(-data)&(blockSize-1)+maxHeaderBytes, m.budget)
}

// refusal says which bound the archive broke.
func (m *meter) refusal() error {
	if m.limit == m.budget {
		return invalidf("the archive unpacks to more than %d bytes", m.budget)
	}
	return invalidf("more than %d bytes of tar headers before one entry (stacked PAX or GNU long-name headers)", maxHeaderBytes)
}

// walkArchive reads a gzip'd tar, checking every entry, and calls fn for each entry
// that is kept (not Skipped). The reader of a regular file is only valid during fn.
// It returns the decompressed bytes it read, which never exceed archiveBudget(lim).
func walkArchive(archive []byte, lim Limits, fn func(h *tar.Header, name string, r io.Reader) error) (int64, error) {
	zr, err := gzip.NewReader(bytes.NewReader(archive))
	if err != nil {
		return 0, invalidf("not a gzip'd tar: %v", err)
	}
	defer zr.Close()
	m := &meter{r: zr, budget: archiveBudget(lim)}
	m.allow(0)
	tr := tar.NewReader(m)
	var entries int
	var total int64
	links := make(map[string]string)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if m.hit {
			return m.n, m.refusal()
		}
		if err != nil {
			return m.n, invalidf("not a readable tar: %v", err)
		}
		entries++
		if entries > lim.MaxEntries {
			return m.n, invalidf("more than %d entries", lim.MaxEntries)
		}
		// Every entry's data counts, kept or not: the reader inflates it either way.
		var data int64
		switch h.Typeflag {
		case tar.TypeLink, tar.TypeSymlink, tar.TypeChar, tar.TypeBlock, tar.TypeDir, tar.TypeFifo:
			// Header only: the reader takes no data whatever the size says.
		default:
			data = h.Size
		}
		total += data
		if data < 0 || total > lim.MaxBytes {
			return m.n, invalidf("more than %d bytes unpacked", lim.MaxBytes)
		}
		m.allow(data)
		raw := strings.TrimPrefix(h.Name, "./")
		if raw == "" {
			raw = "." // tar -C dir -czf - . starts with "./"
		}
		name, err := checkName(raw)
		if err != nil {
			return m.n, err
		}
		if name == "." {
			continue
		}
		// Nothing may be written through a link, even one that stays inside: the
		// link's target could be replaced by a later entry.
		skipped := false
		for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
			if _, ok := links[dir]; ok {
				return m.n, invalidf("path %q goes through the link %q", name, dir)
			}
			// Archives need not hold an entry for a directory they fill.
			skipped = skipped || Skipped(dir, true)
		}
		// A skipped entry is never written, whatever its type, so it is not checked
		// further either (a link named out may lead anywhere: it is left out).
		if skipped || Skipped(name, h.Typeflag == tar.TypeDir) {
			continue
		}
		switch h.Typeflag {
		case tar.TypeDir, tar.TypeReg:
		case tar.TypeSymlink:
			if !linkInside(name, h.Linkname) {
				return m.n, invalidf("link %q leads outside the project (to %q)", name, h.Linkname)
			}
			links[name] = h.Linkname
		case tar.TypeLink:
			return m.n, invalidf("hard link %q: hard links are not supported", name)
		case tar.TypeXGlobalHeader:
			continue
		default:
			return m.n, invalidf("entry %q is not a file, directory or link", name)
		}
		if err := fn(h, name, entryData{r: tr, name: name}); m.hit {
			return m.n, m.refusal()
		} else if err != nil {
			return m.n, err
		}
	}
	return m.n, checkLinkTargets(links)
}

// entryData reads an entry's data: a failure to read it is the archive's (corrupt,
// truncated), not a failure of ours that a retry could mend.
type entryData struct {
	r    io.Reader
	name string
}

func (e entryData) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && !errors.Is(err, errBound) {
		err = invalidf("entry %q is corrupt: %v", e.name, err)
	}
	return n, err
}

// checkLinkTargets refuses a link whose target passes through another link: only then
// does the lexical check (linkInside) say where the link really leads.
func checkLinkTargets(links map[string]string) error {
	for name, target := range links {
		cur := path.Dir(name)
		for _, part := range strings.Split(target, "/") {
			switch part {
			case "", ".":
				continue
			case "..":
				if cur == "." {
					return invalidf("link %q leads outside the project (to %q)", name, target)
				}
				cur = path.Dir(cur)
			default:
				cur = path.Join(cur, part)
				if _, ok := links[cur]; ok {
					return invalidf("link %q points through another link (%q)", name, cur)
				}
			}
		}
	}
	return nil
}

// InspectArchive validates an uploaded archive and lists it.
func InspectArchive(archive []byte, lim Limits) (*Listing, error) {
	l := &Listing{Files: make(map[string]int64)}
	_, err := walkArchive(archive, lim, func(h *tar.Header, name string, r io.Reader) error {
		if h.Typeflag != tar.TypeReg {
			return nil
		}
		l.Files[name] = h.Size
		if name == "foundry.toml" {
			b, err := io.ReadAll(io.LimitReader(r, foundryTOMLMax+1))
			if err != nil {
				return err
			}
			if len(b) > foundryTOMLMax {
				return invalidf("foundry.toml is larger than %d bytes", foundryTOMLMax)
			}
			l.FoundryTOML = b
		}
		if limit, ok := manifests[name]; ok {
			b, err := io.ReadAll(io.LimitReader(r, limit+1))
			if err != nil {
				return err
			}
			if int64(len(b)) > limit {
				return invalidf("%s is larger than %d bytes", name, limit)
			}
			if l.Manifests == nil {
				l.Manifests = map[string][]byte{}
			}
			l.Manifests[name] = b
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return l, nil
}

// Unpack validates an archive and writes it under dir, which must be empty. Files
// get mode 0644 or 0755 whatever the archive says: no setuid bit, no foreign owner.
func Unpack(archive []byte, dir string, lim Limits) error {
	_, err := walkArchive(archive, lim, func(h *tar.Header, name string, r io.Reader) error {
		dst := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return unpackError(name, err)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(dst, 0o755); errors.Is(err, syscall.ENOTDIR) {
				return invalidf("entry %q appears twice", name)
			} else if err != nil {
				return unpackError(name, err)
			}
		case tar.TypeSymlink:
			if err := os.Symlink(h.Linkname, dst); err != nil {
				return unpackError(name, err)
			}
		case tar.TypeReg:
			mode := os.FileMode(0o644)
			if h.Mode&0o111 != 0 {
				mode = 0o755
			}
			f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
			if err != nil {
				return unpackError(name, err)
			}
			_, err = io.Copy(f, io.LimitReader(r, h.Size))
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			return err
		}
		return nil
	})
	return err
}

// unpackError says why an entry could not be written: an archive whose entries
// collide, or whose names the filesystem refuses, is the user's to fix, not a failure
// a retry would mend.
func unpackError(name string, err error) error {
	switch {
	case errors.Is(err, fs.ErrExist):
		return invalidf("entry %q appears twice", name)
	case errors.Is(err, syscall.ENOTDIR):
		return invalidf("entry %q is inside an earlier entry that is not a directory", name)
	case errors.Is(err, syscall.ENAMETOOLONG):
		return invalidf("entry %q has a name too long for a filesystem", name)
	}
	return fmt.Errorf("unpack %s: %w", name, err)
}
