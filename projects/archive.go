package projects

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// foundryTOMLMax bounds the foundry.toml read for validation.
const foundryTOMLMax = 1 << 20

// walkArchive reads a gzip'd tar, checking every entry, and calls fn for each entry
// that is kept (not Skipped). The reader of a regular file is only valid during fn.
func walkArchive(archive []byte, lim Limits, fn func(h *tar.Header, name string, r io.Reader) error) error {
	zr, err := gzip.NewReader(bytes.NewReader(archive))
	if err != nil {
		return invalidf("not a gzip'd tar: %v", err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	var entries int
	var total int64
	links := make(map[string]string)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return invalidf("not a readable tar: %v", err)
		}
		entries++
		if entries > lim.MaxEntries {
			return invalidf("more than %d entries", lim.MaxEntries)
		}
		raw := strings.TrimPrefix(h.Name, "./")
		if raw == "" {
			raw = "." // tar -C dir -czf - . starts with "./"
		}
		name, err := checkName(raw)
		if err != nil {
			return err
		}
		if name == "." {
			continue
		}
		// Nothing may be written through a link, even one that stays inside: the
		// link's target could be replaced by a later entry.
		skipped := false
		for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
			if _, ok := links[dir]; ok {
				return invalidf("path %q goes through the link %q", name, dir)
			}
			// Archives need not hold an entry for a directory they fill.
			skipped = skipped || Skipped(dir, true)
		}
		if skipped {
			continue
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if Skipped(name, true) {
				continue
			}
		case tar.TypeReg:
			total += h.Size
			if h.Size < 0 || total > lim.MaxBytes {
				return invalidf("more than %d bytes unpacked", lim.MaxBytes)
			}
			if Skipped(name, false) {
				continue
			}
		case tar.TypeSymlink:
			if !linkInside(name, h.Linkname) {
				return invalidf("link %q leads outside the project (to %q)", name, h.Linkname)
			}
			links[name] = h.Linkname
			if Skipped(name, false) {
				continue
			}
		case tar.TypeLink:
			return invalidf("hard link %q: hard links are not supported", name)
		case tar.TypeXGlobalHeader:
			continue
		default:
			return invalidf("entry %q is not a file, directory or link", name)
		}
		if err := fn(h, name, tr); err != nil {
			return err
		}
	}
	return checkLinkTargets(links)
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
	err := walkArchive(archive, lim, func(h *tar.Header, name string, r io.Reader) error {
		if h.Typeflag != tar.TypeReg {
			return nil
		}
		l.Files[name] = h.Size
		if name == "foundry.toml" {
			b, err := io.ReadAll(io.LimitReader(r, foundryTOMLMax+1))
			if err != nil {
				return invalidf("read foundry.toml: %v", err)
			}
			if len(b) > foundryTOMLMax {
				return invalidf("foundry.toml is larger than %d bytes", foundryTOMLMax)
			}
			l.FoundryTOML = b
		}
		if limit, ok := manifests[name]; ok {
			b, err := io.ReadAll(io.LimitReader(r, limit+1))
			if err != nil {
				return invalidf("read %s: %v", name, err)
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
	return walkArchive(archive, lim, func(h *tar.Header, name string, r io.Reader) error {
		dst := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		switch h.Typeflag {
		case tar.TypeDir:
			return os.MkdirAll(dst, 0o755)
		case tar.TypeSymlink:
			if err := os.Symlink(h.Linkname, dst); errors.Is(err, os.ErrExist) {
				return invalidf("entry %q appears twice", name)
			} else if err != nil {
				return err
			}
		case tar.TypeReg:
			mode := os.FileMode(0o644)
			if h.Mode&0o111 != 0 {
				mode = 0o755
			}
			f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
			if errors.Is(err, os.ErrExist) {
				return invalidf("entry %q appears twice", name)
			}
			if err != nil {
				return fmt.Errorf("unpack %s: %w", name, err)
			}
			_, err = io.Copy(f, io.LimitReader(r, h.Size))
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			return err
		}
		return nil
	})
}
