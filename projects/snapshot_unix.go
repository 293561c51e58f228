//go:build unix

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
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// maxLinkHops bounds the links followed to resolve one link, as the kernel does.
const maxLinkHops = 40

// Snapshot reads the project directory rel (relative to root, as ResolvePath returns
// it) once, into a gzip'd tar in the format of an upload, which the caller then checks
// and stores as one. Clients may be able to write under PROJECTS_ROOT: a directory
// checked and then read again could have had a file swapped for a link or a FIFO in
// between, so nothing reads the directory twice and nothing follows a link. Every
// directory and file is opened relative to its parent's descriptor with O_NOFOLLOW,
// files with O_NONBLOCK (a FIFO cannot hold the open), and a file is read only when
// the descriptor itself is a regular file. A link is kept as a link, its target
// resolved inside the project (by the same no-follow reads) and written relative, as
// ListDir and Pack do; one that leads outside is refused.
//
// What is left out (Skipped), the limits and the messages are those of ListDir. The
// archive is the same for the same contents (no times, owners or modes beyond the
// executable bit), so a project deployed again is stored once.
func Snapshot(root, rel string, lim Limits) ([]byte, error) {
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return nil, fmt.Errorf("projects root %s: %w", root, err)
	}
	rootFD, err := openat(unix.AT_FDCWD, realRoot, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("projects root %s: %w", realRoot, err)
	}
	fd, err := openPath(rootFD, rel)
	unix.Close(rootFD)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	// The archive lives a day in Redis at most; speed counts more than its size.
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("snapshot %s: %w", rel, err)
	}
	s := &snapshot{lim: lim, realDir: filepath.Join(realRoot, rel), root: fd, tw: tar.NewWriter(zw)}
	defer unix.Close(fd)
	// The walk closes the descriptors it reads; links are resolved from fd.
	walkFD, err := unix.Dup(fd)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", rel, err)
	}
	if err := s.dir(walkFD, "."); err != nil {
		return nil, err
	}
	if err := s.tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// openPath opens the directory rel under dirFD, one component at a time, following no
// link: ResolvePath resolved rel's links already, so a link found now was swapped in.
func openPath(dirFD int, rel string) (int, error) {
	fd, err := unix.Dup(dirFD)
	if err != nil {
		return -1, fmt.Errorf("open %s: %w", rel, err)
	}
	for _, part := range strings.Split(filepath.ToSlash(rel), "/") {
		if part == "" || part == "." {
			continue
		}
		next, err := openat(fd, part, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC)
		unix.Close(fd)
		switch {
		case errors.Is(err, unix.ENOENT):
			return -1, invalidf("%s does not exist", rel)
		case err != nil:
			return -1, changed(rel, err)
		}
		fd = next
	}
	return fd, nil
}

// openat is openat(2), retried when a signal interrupts it.
func openat(dirFD int, name string, flags int) (int, error) {
	for {
		fd, err := unix.Openat(dirFD, name, flags, 0)
		if !errors.Is(err, unix.EINTR) {
			return fd, err
		}
	}
}

// changed names the error of opening what an earlier look at the directory saw: a
// link or something else in its place means the directory changed while it was read.
func changed(rel string, err error) error {
	if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.EMLINK) || errors.Is(err, unix.ENOTDIR) ||
		errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EINVAL) {
		return invalidf("%s changed while it was read", rel)
	}
	if errors.Is(err, unix.ENXIO) {
		return invalidf("%s is not a file, directory or link", rel)
	}
	return invalidf("cannot read %s", rel)
}

type snapshot struct {
	lim Limits
	// realDir is the project's path with no link in it, to place absolute links.
	realDir string
	// root is the project directory's descriptor, from which links are resolved.
	root    int
	tw      *tar.Writer
	entries int
	total   int64
}

// dir archives the entries of the directory open as fd (rel in the project), in name
// order, and closes fd.
func (s *snapshot) dir(fd int, rel string) error {
	f := os.NewFile(uintptr(fd), rel)
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return invalidf("cannot read %s", rel)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := s.entry(fd, path.Join(rel, name), name); err != nil {
			return err
		}
	}
	return nil
}

// entry archives the entry name of the directory open as dirFD (rel in the project).
func (s *snapshot) entry(dirFD int, rel, name string) error {
	// Only to choose how to open it: what is read is checked on its descriptor.
	var st unix.Stat_t
	if err := unix.Fstatat(dirFD, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return changed(rel, err)
	}
	typ := uint32(st.Mode) & unix.S_IFMT
	if Skipped(rel, typ == unix.S_IFDIR) {
		return nil
	}
	s.entries++
	if s.entries > s.lim.MaxEntries {
		return invalidf("more than %d entries", s.lim.MaxEntries)
	}
	switch typ {
	case unix.S_IFLNK:
		return s.link(dirFD, rel, name)
	case unix.S_IFDIR:
		fd, err := openat(dirFD, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC)
		if err != nil {
			return changed(rel, err)
		}
		if err := s.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: rel + "/", Mode: 0o755}); err != nil {
			unix.Close(fd)
			return err
		}
		return s.dir(fd, rel)
	case unix.S_IFREG:
		return s.file(dirFD, rel, name)
	}
	// A FIFO, socket or device is refused without being opened.
	return invalidf("%s is not a file, directory or link", rel)
}

// file archives a regular file, opened without following a link or waiting on a FIFO,
// and read only if the descriptor is a regular file.
func (s *snapshot) file(dirFD int, rel, name string) error {
	fd, err := openRegular(dirFD, name)
	if err != nil {
		return changed(rel, err)
	}
	f := os.NewFile(uintptr(fd), rel)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return invalidf("cannot read %s", rel)
	}
	if uint32(st.Mode)&unix.S_IFMT != unix.S_IFREG {
		return invalidf("%s is not a file, directory or link", rel)
	}
	s.total += st.Size
	if s.total > s.lim.MaxBytes {
		return invalidf("more than %d bytes", s.lim.MaxBytes)
	}
	mode := int64(0o644)
	if st.Mode&0o111 != 0 {
		mode = 0o755
	}
	if err := s.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: rel, Size: st.Size, Mode: mode}); err != nil {
		return err
	}
	// A file that grows while it is read is cut at the size in the header; one that
	// shrinks changed under us.
	n, err := io.Copy(s.tw, io.LimitReader(f, st.Size))
	if err != nil {
		return invalidf("cannot read %s", rel)
	}
	if n < st.Size {
		return invalidf("%s changed while it was read", rel)
	}
	return nil
}

// openRegular opens name under dirFD for reading the way a snapshot must: a link is
// not followed (ELOOP), a FIFO does not block the open, and a device's or socket's
// open fails or yields a descriptor fstat tells apart.
func openRegular(dirFD int, name string) (int, error) {
	return openat(dirFD, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC)
}

// link archives a link with its target resolved inside the project, relative.
func (s *snapshot) link(dirFD int, rel, name string) error {
	target, err := readlinkat(dirFD, name)
	if err != nil {
		return changed(rel, err)
	}
	resolved, err := s.resolve(rel, target)
	if err != nil {
		return err
	}
	// Written relative, so that it means the same in the copy.
	lt, err := filepath.Rel(path.Dir(rel), resolved)
	if err != nil {
		return invalidf("link %s cannot be expressed inside the project", rel)
	}
	return s.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: rel, Linkname: filepath.ToSlash(lt), Mode: 0o777})
}

// resolve says where the link rel, with target, leads in the project, following the
// links on the way as the kernel would, but reading each step through the project's
// descriptor without following anything. It answers a clean path inside the project.
func (s *snapshot) resolve(rel, target string) (string, error) {
	var cur []string
	if d := path.Dir(rel); d != "." {
		cur = strings.Split(d, "/")
	}
	todo, err := s.steps(rel, target)
	if err != nil {
		return "", err
	}
	if path.IsAbs(target) {
		cur = nil
	}
	hops := 0
	for len(todo) > 0 {
		part := todo[0]
		todo = todo[1:]
		switch part {
		case "", ".":
			continue
		case "..":
			if len(cur) > 0 {
				cur = cur[:len(cur)-1]
				continue
			}
			// Out of the project: inside only if the rest comes straight back in.
			back, ok := s.inside(filepath.Join(filepath.Dir(s.realDir), filepath.FromSlash(strings.Join(todo, "/"))))
			if !ok {
				return "", invalidf("link %s leads outside the project", rel)
			}
			todo = split(back)
			continue
		}
		next := append(cur[:len(cur):len(cur)], part)
		typ, link, err := s.lstat(next)
		if err != nil {
			return "", invalidf("link %s leads nowhere", rel)
		}
		if typ != unix.S_IFLNK {
			cur = next
			continue
		}
		if hops++; hops > maxLinkHops {
			return "", invalidf("link %s leads nowhere", rel)
		}
		more, err := s.steps(rel, link)
		if err != nil {
			return "", err
		}
		if path.IsAbs(link) {
			cur = nil
		}
		todo = append(more, todo...)
	}
	if len(cur) == 0 {
		return ".", nil
	}
	return strings.Join(cur, "/"), nil
}

// steps splits a link's target into the names to walk: an absolute target counts
// from the project's top, if it is inside the project at all.
func (s *snapshot) steps(rel, target string) ([]string, error) {
	if target == "" {
		return nil, invalidf("link %s leads nowhere", rel)
	}
	if !path.IsAbs(target) {
		return split(target), nil
	}
	inside, ok := s.inside(target)
	if !ok {
		return nil, invalidf("link %s leads outside the project", rel)
	}
	return split(inside), nil
}

// inside says where the absolute path p is in the project, if it is inside.
func (s *snapshot) inside(p string) (string, bool) {
	r, err := filepath.Rel(s.realDir, filepath.Clean(p))
	if err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
		return "", false
	}
	return filepath.ToSlash(r), true
}

func split(p string) []string {
	return strings.Split(p, "/")
}

// lstat says what parts (a path in the project with no link in it but maybe its
// last name) is, and its target if it is a link, opening each directory on the way
// with O_NOFOLLOW from the project's descriptor.
func (s *snapshot) lstat(parts []string) (uint32, string, error) {
	fd, err := openPath(s.root, strings.Join(parts[:len(parts)-1], "/"))
	if err != nil {
		return 0, "", err
	}
	defer unix.Close(fd)
	last := parts[len(parts)-1]
	var st unix.Stat_t
	if err := unix.Fstatat(fd, last, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return 0, "", err
	}
	typ := uint32(st.Mode) & unix.S_IFMT
	if typ != unix.S_IFLNK {
		return typ, "", nil
	}
	target, err := readlinkat(fd, last)
	return typ, target, err
}

// readlinkat reads the target of the link name under dirFD.
func readlinkat(dirFD int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		b := make([]byte, size)
		n, err := unix.Readlinkat(dirFD, name, b)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return "", err
		}
		if n < size {
			return string(b[:n]), nil
		}
	}
}
