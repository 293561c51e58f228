// Package projects gets a submitted project from where the user put it to where a
// worker can use it, safely: a directory under PROJECTS_ROOT, or a gzip'd tar uploaded
// through the API and kept content-addressed in Redis. A project is someone else's
// code: every path, link and size in it is checked before anything is written.
package projects

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// ErrInvalid marks a problem with what the user submitted (as opposed to a failure of
// ours); its message names the problem.
var ErrInvalid = errors.New("invalid project")

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Limits bound what one project may hold.
type Limits struct {
	MaxEntries int
	MaxBytes   int64
}

// DefaultLimits are generous for Solidity sources and small for anything else.
var DefaultLimits = Limits{MaxEntries: 20000, MaxBytes: 256 << 20}

// Listing is what validation needs to know of a project: its regular files and the
// contents of its foundry.toml.
type Listing struct {
	Files       map[string]int64
	FoundryTOML []byte
	// Manifests are the contents of the project's top-level package.json and
	// package-lock.json, when it has them (a Hardhat project's).
	Manifests map[string][]byte
}

// manifests are the top-level files a listing reads, with their size limits.
var manifests = map[string]int64{"package.json": 1 << 20, "package-lock.json": 32 << 20}

// Has says the project holds the regular file (a slash-separated relative path).
func (l *Listing) Has(name string) bool {
	_, ok := l.Files[path.Clean(name)]
	return ok
}

// Names lists the project's regular files.
func (l *Listing) Names() []string {
	out := make([]string, 0, len(l.Files))
	for n := range l.Files {
		out = append(out, n)
	}
	return out
}

// Skipped says whether a relative path is left out when a project is copied:
// version control, build output and secrets the project may carry, which would also
// change how forge behaves (.env). forge's output folders at the top are left out
// whatever their type: a link named broadcast would send what forge writes there into
// another part of the project, or bring a run file the job then reads.
func Skipped(rel string, isDir bool) bool {
	rel = path.Clean(rel)
	base := path.Base(rel)
	switch {
	case rel == "out" || rel == "cache" || rel == "broadcast":
		return true
	case !isDir:
		return base == ".env" || strings.HasPrefix(base, ".env.")
	}
	return base == ".git"
}

// checkName validates an archive or directory entry's relative name.
func checkName(name string) (string, error) {
	if name == "" {
		return "", invalidf("an entry has no name")
	}
	if strings.HasPrefix(name, "/") || (len(name) > 1 && name[1] == ':') {
		return "", invalidf("absolute path %q", name)
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", invalidf("path %q leads outside the project", name)
		}
	}
	if strings.ContainsRune(name, 0) || strings.Contains(name, "\\") {
		return "", invalidf("path %q has characters this service refuses", name)
	}
	clean := path.Clean(name)
	if clean == "." {
		return ".", nil
	}
	return clean, nil
}

// linkInside says whether a link named name (relative) with target stays inside the
// project.
func linkInside(name, target string) bool {
	if target == "" || strings.HasPrefix(target, "/") {
		return false
	}
	resolved := path.Join(path.Dir(name), target)
	return resolved != ".." && !strings.HasPrefix(resolved, "../")
}
