// Package compilecache is the compile cache: the compiled output of a project
// (forge's out/ and cache/solidity-files-cache.json), kept per content key (Key) so
// that a later job of the same project compiles nothing. The files live in a store,
// a directory on the worker's host that no container mounts, so no job can write
// into it; Redis indexes them (Index). Workers that share the directory share the
// store; a worker on another host, lacking the files, misses and stores its own.
//
// Its public names are FOUNDRY_CACHE_* and /admin/server/foundry-cache/*, from when
// Foundry was the only framework; its task types are cache:compile:*.
package compilecache

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/deployer-dev/deployer/cache"
)

// maxEntry bounds one project's artifacts.
const maxEntry = 256 << 20

// Layout is what one framework's compilation leaves in a project: the paths kept,
// relative to the project, and the framework's name the index reports.
type Layout struct {
	Framework string
	Paths     []string
}

var (
	// Foundry keeps the compiler's output and forge's record of what it compiled.
	// forge also writes sensitive values under cache/<script>/: never kept.
	Foundry = Layout{Framework: "foundry", Paths: []string{"out", "cache/solidity-files-cache.json"}}
	// Hardhat keeps artifacts and Hardhat's cache (build infos and its record of what
	// it compiled; Ignition writes elsewhere).
	Hardhat = Layout{Framework: "hardhat", Paths: []string{"artifacts", "cache"}}
)

// Store is a directory of artifacts.
type Store struct {
	dir     string
	id      string
	index   *Index
	ttl     time.Duration
	enabled bool
	log     *slog.Logger
}

// Open opens (making it if needed) the store in dir.
func Open(dir string, index *Index, ttl time.Duration, enabled bool, log *slog.Logger) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("compile cache store: %w", err)
	}
	id, err := storeID(dir)
	if err != nil {
		return nil, err
	}
	return &Store{dir: dir, id: id, index: index, ttl: ttl, enabled: enabled, log: log.With("component", "compilecache")}, nil
}

// storeID reads the directory's id, making one the first time.
func storeID(dir string) (string, error) {
	p := filepath.Join(dir, ".store-id")
	if b, err := os.ReadFile(p); err == nil && len(bytes.TrimSpace(b)) > 0 {
		return string(bytes.TrimSpace(b)), nil
	}
	host, _ := os.Hostname()
	buf := make([]byte, 6)
	_, _ = rand.Read(buf)
	id := sanitize(host) + "-" + hex.EncodeToString(buf)
	tmp := p + ".tmp" + hex.EncodeToString(buf)
	if err := os.WriteFile(tmp, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("compile cache store: %w", err)
	}
	// Two workers opening a new directory at once agree on the first id written.
	if err := os.Link(tmp, p); err != nil && !errors.Is(err, os.ErrExist) {
		os.Remove(tmp)
		return "", fmt.Errorf("compile cache store: %w", err)
	}
	os.Remove(tmp)
	b, err := os.ReadFile(p)
	if err != nil {
		return "", fmt.Errorf("compile cache store: %w", err)
	}
	return string(bytes.TrimSpace(b)), nil
}

var unsafeRE = regexp.MustCompile(`[^a-zA-Z0-9.-]+`)

func sanitize(s string) string {
	s = unsafeRE.ReplaceAllString(s, "-")
	if s == "" {
		return "host"
	}
	return s
}

// ID names the store.
func (s *Store) ID() string { return s.id }

// Enabled says whether jobs use the store.
func (s *Store) Enabled() bool { return s.enabled }

var keyRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

func (s *Store) file(key string) string { return filepath.Join(s.dir, key+".tgz") }

// Lookup returns the artifacts of a key, or false. An entry whose file is missing,
// of another size or another checksum is a miss, and is forgotten.
func (s *Store) Lookup(ctx context.Context, key string) ([]byte, bool) {
	if !s.enabled || !keyRE.MatchString(key) {
		return nil, false
	}
	entry, err := s.index.Get(ctx, s.id, key)
	if err != nil {
		if !errors.Is(err, cache.ErrNoEntry) {
			s.log.Warn("compile index unavailable (Redis); compiling", "error", err)
		}
		s.count(ctx, cache.Miss)
		return nil, false
	}
	data, err := os.ReadFile(s.file(key))
	sum := sha256.Sum256(data)
	if err != nil || int64(len(data)) != entry.Size || hex.EncodeToString(sum[:]) != entry.SHA256 {
		s.log.Warn("compile cache entry missing or damaged; compiling", "key", key[:12], "error", err)
		os.Remove(s.file(key))
		_ = s.index.Delete(ctx, s.id, key)
		s.count(ctx, cache.Miss)
		return nil, false
	}
	if err := s.index.Touch(ctx, s.id, key, time.Now()); err != nil {
		s.log.Warn("compile index unavailable (Redis)", "error", err)
	}
	s.count(ctx, cache.Hit)
	return data, true
}

func (s *Store) count(ctx context.Context, counter string) {
	_ = s.index.Count(ctx, s.id, counter)
}

// Save stores the artifacts of a key from a gzip'd tar stream (as `tar -cz` of the
// layout's paths in the project prints it). It is written to a temporary file and
// renamed, so a reader never sees half an entry; a stream holding anything but the
// layout's paths is refused.
func (s *Store) Save(ctx context.Context, key string, l Layout, r io.Reader, compile time.Duration) error {
	if !s.enabled || !keyRE.MatchString(key) {
		return nil
	}
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(r, maxEntry+1))
	if err != nil {
		return fmt.Errorf("read artifacts: %w", err)
	}
	if n > maxEntry {
		return fmt.Errorf("artifacts larger than %d bytes: not cached", maxEntry)
	}
	data := buf.Bytes()
	if err := Each(data, l, func(*tar.Header, io.Reader) error { return nil }); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(s.dir, ".partial-*")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(data)
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(tmp.Name())
		return werr
	}
	if err := os.Rename(tmp.Name(), s.file(key)); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	sum := sha256.Sum256(data)
	now := time.Now()
	return s.index.Put(ctx, s.id, key, Entry{Key: key, StoreID: s.id, Framework: l.Framework, Size: int64(len(data)),
		SHA256: hex.EncodeToString(sum[:]), CreatedAt: now, CompileMS: compile.Milliseconds(), LastUsed: now}, now)
}

// Each calls fn with every entry of stored artifacts, refusing anything outside the
// layout's paths.
func Each(data []byte, l Layout, fn func(h *tar.Header, body io.Reader) error) error {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("artifacts: %w", err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("artifacts: %w", err)
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		if !allowed(name, l.Paths) || (h.Typeflag != tar.TypeReg && h.Typeflag != tar.TypeDir) {
			return fmt.Errorf("artifacts: unexpected entry %q", h.Name)
		}
		h.Name = name
		if h.Typeflag == tar.TypeDir {
			h.Name += "/"
		}
		if err := fn(h, tr); err != nil {
			return err
		}
	}
}

func allowed(name string, paths []string) bool {
	if strings.HasPrefix(name, "/") || strings.Contains(name, "..") {
		return false
	}
	for _, p := range paths {
		if name == p || strings.HasPrefix(name, p+"/") {
			return true
		}
	}
	// The folder a kept file is in.
	for _, p := range paths {
		if strings.HasPrefix(p, name+"/") {
			return true
		}
	}
	return false
}
