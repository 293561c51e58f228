package projects

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// ResolvePath turns a path_url naming a directory (a path or a file:// URL) into a
// path relative to root, refusing "..", and absolute paths and links that lead outside
// root. The directory must exist.
func ResolvePath(root, pathURL string) (string, error) {
	p := pathURL
	if strings.HasPrefix(p, "file:") {
		u, err := url.Parse(p)
		if err != nil {
			return "", invalidf("path_url %q is not a URL", pathURL)
		}
		p = u.Path
		if u.Host != "" && u.Host != "localhost" {
			// file://examples/counter: a relative path written as a URL.
			p = u.Host + u.Path
		}
		if u.Opaque != "" {
			p = u.Opaque
		}
	}
	if p == "" {
		return "", invalidf("path_url %q names no directory", pathURL)
	}
	for _, part := range strings.Split(filepath.ToSlash(p), "/") {
		if part == ".." {
			return "", invalidf("path_url %q: \"..\" is not allowed", pathURL)
		}
	}
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return "", fmt.Errorf("projects root %s: %w", root, err)
	}
	abs := p
	if !filepath.IsAbs(abs) {
		abs = filepath.Join(root, p)
	}
	real, err := filepath.EvalSymlinks(abs)
	if errors.Is(err, fs.ErrNotExist) {
		return "", invalidf("path_url %q does not exist", pathURL)
	}
	if err != nil {
		return "", invalidf("path_url %q cannot be read", pathURL)
	}
	rel, err := filepath.Rel(realRoot, real)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", invalidf("path_url %q is outside the projects root", pathURL)
	}
	st, err := os.Stat(real)
	if err != nil || !st.IsDir() {
		return "", invalidf("path_url %q is not a directory", pathURL)
	}
	return rel, nil
}

// walkDir visits the kept entries of a project directory, refusing links that lead
// outside it (resolved for real, not lexically) and enforcing the limits.
func walkDir(dir string, lim Limits, skip func(rel string, isDir bool) bool, fn func(rel string, d fs.DirEntry, linkTarget string) error) error {
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return fmt.Errorf("project %s: %w", dir, err)
	}
	var entries int
	var total int64
	return filepath.WalkDir(realDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return invalidf("cannot read %s", relOr(realDir, p))
		}
		rel := relOr(realDir, p)
		if rel == "." {
			return nil
		}
		if Skipped(rel, d.IsDir()) || (skip != nil && skip(rel, d.IsDir())) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		entries++
		if entries > lim.MaxEntries {
			return invalidf("more than %d entries", lim.MaxEntries)
		}
		var target string
		switch t := d.Type(); {
		case t&fs.ModeSymlink != 0:
			resolved, err := filepath.EvalSymlinks(p)
			if err != nil {
				return invalidf("link %s leads nowhere", rel)
			}
			r, err := filepath.Rel(realDir, resolved)
			if err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
				return invalidf("link %s leads outside the project", rel)
			}
			// Written into the copy relative, so it means the same there.
			target, err = filepath.Rel(filepath.Dir(p), resolved)
			if err != nil {
				return invalidf("link %s cannot be expressed inside the project", rel)
			}
		case t.IsRegular():
			info, err := d.Info()
			if err != nil {
				return invalidf("cannot read %s", rel)
			}
			total += info.Size()
			if total > lim.MaxBytes {
				return invalidf("more than %d bytes", lim.MaxBytes)
			}
		case t.IsDir():
		default:
			return invalidf("%s is not a file, directory or link", rel)
		}
		return fn(filepath.ToSlash(rel), d, target)
	})
}

func relOr(base, p string) string {
	r, err := filepath.Rel(base, p)
	if err != nil {
		return p
	}
	return r
}

// ListDir validates a project directory and lists it.
func ListDir(dir string, lim Limits) (*Listing, error) {
	l := &Listing{Files: make(map[string]int64)}
	err := walkDir(dir, lim, nil, func(rel string, d fs.DirEntry, _ string) error {
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		l.Files[rel] = info.Size()
		return nil
	})
	if err != nil {
		return nil, err
	}
	if _, ok := l.Files["foundry.toml"]; ok {
		b, err := readRegular(filepath.Join(dir, "foundry.toml"), foundryTOMLMax)
		if err != nil {
			return nil, err
		}
		l.FoundryTOML = b
	}
	for name, limit := range manifests {
		if _, ok := l.Files[name]; !ok {
			continue
		}
		b, err := readRegular(filepath.Join(dir, name), limit)
		if err != nil {
			return nil, err
		}
		if l.Manifests == nil {
			l.Manifests = map[string][]byte{}
		}
		l.Manifests[name] = b
	}
	return l, nil
}

// readRegular reads a file that must be a regular file (not a link) of bounded size.
func readRegular(p string, max int64) ([]byte, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|noFollow, 0)
	if err != nil {
		return nil, invalidf("cannot read %s", filepath.Base(p))
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, invalidf("%s is larger than %d bytes", filepath.Base(p), max)
	}
	return b, nil
}

// PackOptions shape a copy of a project.
type PackOptions struct {
	// Replace gives the contents of files written instead of the project's own
	// (slash-separated relative paths), added if the project lacks them.
	Replace map[string][]byte
	// Gzip compresses the stream (for upload); the engine takes it plain.
	Gzip bool
	// Prefix is prepended to every name in the archive.
	Prefix string
	// UID and GID own the entries in the archive.
	UID, GID int
	// Extra, when set, adds entries after the project's (names without Prefix).
	Extra func(add func(h *tar.Header, body io.Reader) error) error
	// Beside adds entries outside the project (names taken as they are).
	Beside []*tar.Header
	// Skip leaves out more than Skipped does (a framework's build output).
	Skip func(rel string, isDir bool) bool
}

// Pack writes a tar of a project directory (validated as ListDir does) to w.
func Pack(w io.Writer, dir string, lim Limits, opt PackOptions) error {
	var out io.Writer = w
	var zw *gzip.Writer
	if opt.Gzip {
		zw = gzip.NewWriter(w)
		out = zw
	}
	tw := tar.NewWriter(out)
	name := func(rel string) string { return opt.Prefix + rel }
	hdr := func(h *tar.Header) *tar.Header {
		h.Uid, h.Gid = opt.UID, opt.GID
		h.Uname, h.Gname = "", ""
		return h
	}
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return fmt.Errorf("project %s: %w", dir, err)
	}
	if opt.Prefix != "" {
		if err := tw.WriteHeader(hdr(&tar.Header{Typeflag: tar.TypeDir, Name: opt.Prefix, Mode: 0o755})); err != nil {
			return err
		}
	}
	err = walkDir(realDir, lim, opt.Skip, func(rel string, d fs.DirEntry, target string) error {
		if _, ok := opt.Replace[rel]; ok && !d.IsDir() {
			return nil
		}
		switch {
		case d.IsDir():
			return tw.WriteHeader(hdr(&tar.Header{Typeflag: tar.TypeDir, Name: name(rel) + "/", Mode: 0o755}))
		case target != "":
			return tw.WriteHeader(hdr(&tar.Header{Typeflag: tar.TypeSymlink, Name: name(rel), Linkname: filepath.ToSlash(target), Mode: 0o777}))
		}
		f, err := os.OpenFile(filepath.Join(realDir, filepath.FromSlash(rel)), os.O_RDONLY|noFollow, 0)
		if err != nil {
			return fmt.Errorf("read %s: %w", rel, err)
		}
		defer f.Close()
		info, err := f.Stat()
		if err != nil {
			return err
		}
		mode := int64(0o644)
		if info.Mode()&0o111 != 0 {
			mode = 0o755
		}
		if err := tw.WriteHeader(hdr(&tar.Header{Typeflag: tar.TypeReg, Name: name(rel), Size: info.Size(), Mode: mode, ModTime: info.ModTime()})); err != nil {
			return err
		}
		// A file that grows while it is read is cut at the size in the header.
		_, err = io.Copy(tw, io.LimitReader(f, info.Size()))
		return err
	})
	if err != nil {
		return err
	}
	for rel, b := range opt.Replace {
		if err := tw.WriteHeader(hdr(&tar.Header{Typeflag: tar.TypeReg, Name: name(rel), Size: int64(len(b)), Mode: 0o644})); err != nil {
			return err
		}
		if _, err := tw.Write(b); err != nil {
			return err
		}
	}
	if opt.Extra != nil {
		err := opt.Extra(func(h *tar.Header, body io.Reader) error {
			h.Name = name(h.Name)
			if err := tw.WriteHeader(hdr(h)); err != nil {
				return err
			}
			if body != nil {
				_, err := io.CopyN(tw, body, h.Size)
				return err
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	for _, h := range opt.Beside {
		if h.Size != 0 {
			return fmt.Errorf("pack: an entry beside the project has no body: %s", h.Name)
		}
		if err := tw.WriteHeader(hdr(h)); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if zw != nil {
		return zw.Close()
	}
	return nil
}

// ContentHash hashes a project as a job sees it: every kept file's path, executable
// bit and contents, every link's target, with replace applied. Times and owners do
// not count, so two copies of one project hash the same.
func ContentHash(dir string, lim Limits, replace map[string][]byte, skip func(rel string, isDir bool) bool) (string, error) {
	h := sha256.New()
	seen := map[string]bool{}
	err := walkDir(dir, lim, skip, func(rel string, d fs.DirEntry, target string) error {
		switch {
		case d.IsDir():
			return nil
		case replace[rel] != nil:
			return nil
		case target != "":
			fmt.Fprintf(h, "link %q %q\n", rel, target)
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		f, err := os.OpenFile(filepath.Join(dir, filepath.FromSlash(rel)), os.O_RDONLY|noFollow, 0)
		if err != nil {
			return fmt.Errorf("read %s: %w", rel, err)
		}
		defer f.Close()
		fh := sha256.New()
		if _, err := io.Copy(fh, io.LimitReader(f, info.Size())); err != nil {
			return err
		}
		fmt.Fprintf(h, "file %q %t %x\n", rel, info.Mode()&0o111 != 0, fh.Sum(nil))
		seen[rel] = true
		return nil
	})
	if err != nil {
		return "", err
	}
	names := make([]string, 0, len(replace))
	for rel := range replace {
		names = append(names, rel)
	}
	sort.Strings(names)
	for _, rel := range names {
		fmt.Fprintf(h, "file %q false %x\n", rel, sha256.Sum256(replace[rel]))
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
