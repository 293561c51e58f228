// Package compilers is the compiler store: the solc builds jobs compile with (solc-js,
// the compiler built for JavaScript, which forge runs through a stand-in), fetched on
// first need from the npm registry, checked against the registry's integrity hash,
// kept in a directory on the worker's host, and given to job containers read-only in
// a volume of the engine's, one directory per version, in which forge finds them
// (foundry's svm layout, through a per-job view the job's copy carries).
//
// Which versions a job gets is decided by foundry.ResolveCompilers, from the project
// alone: whatever other jobs fetched does not change it. An air-gapped host preloads
// the versions it needs (set-up's SOLC_VERSIONS) into the toolchain directory.
package compilers

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"

	"github.com/deployer-dev/deployer/cache"
	"github.com/deployer-dev/deployer/cache/imagecache"
	"github.com/deployer-dev/deployer/engine"
	"github.com/deployer-dev/deployer/tasks"
)

// Mount is where the store's volume is in a job's container.
const Mount = "/opt/compilers"

// Engine is what the store needs of a Docker engine (engine/docker's).
type Engine interface {
	ID() string
	Instance() string
	EnsureVolume(ctx context.Context, name string, labels map[string]string) (bool, error)
	CreateContainer(ctx context.Context, spec engine.ContainerSpec) (string, error)
	RemoveContainer(ctx context.Context, ref string) error
	Exec(ctx context.Context, containerID string, spec engine.ExecSpec) (int, error)
}

// Images gives the Foundry runner image, whose solc-js wrapper reads a build's long
// version when the volume is filled.
type Images interface {
	Resolve(ctx context.Context) (imagecache.Resolved, error)
}

// Locker serializes filling the volume across the workers of an engine.
type Locker interface {
	Lock(ctx context.Context, key string) (context.Context, func(), error)
}

// Entry is the index entry of one version in one engine's volume.
type Entry struct {
	Version     string    `json:"version"`
	LongVersion string    `json:"long_version,omitempty"`
	Size        int64     `json:"size_bytes"`
	InstalledAt time.Time `json:"installed_at"`
	LastUsed    time.Time `json:"last_used"`
}

// Index is the compiler store's index: versions per engine.
type Index = cache.Index[Entry]

// NewIndex returns the store's index of an installation.
func NewIndex(rdb redis.UniversalClient, ns tasks.Namespace) *Index {
	return cache.NewIndex(rdb, ns, tasks.CompilerStoreKind,
		func(e Entry, used time.Time) Entry { e.LastUsed = used; return e },
		func(a, b Entry) bool { return a.Version < b.Version })
}

// Config is a worker's compiler store.
type Config struct {
	// Dir is the store on the worker's host; Seed a directory set-up preloaded
	// (<version>/soljson.js), and BuiltIn the soljson.js of the version runner images
	// carry, both read before the registry is asked.
	Dir, Seed       string
	BuiltIn         string
	BuiltInVersion  string
	Defaults        []string
	Namespace       tasks.Namespace
	RegistryBaseURL string
}

// Store is a worker's compiler store.
type Store struct {
	cfg    Config
	reg    *Registry
	eng    Engine
	images Images
	locks  Locker
	index  *Index
	log    *slog.Logger
	flight singleflight.Group

	mu       sync.Mutex
	inVolume map[string]bool
}

// New returns the store of a worker on an engine.
func New(cfg Config, eng Engine, images Images, locks Locker, index *Index, log *slog.Logger) (*Store, error) {
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("compiler store: %w", err)
	}
	return &Store{cfg: cfg, reg: NewRegistry(cfg.RegistryBaseURL), eng: eng, images: images, locks: locks, index: index,
		log: log.With("component", "compilers")}, nil
}

// Defaults are the versions a range in a pragma is resolved against.
func (s *Store) Defaults() []string { return s.cfg.Defaults }

// Volume is the engine's volume of the store.
func (s *Store) Volume() string { return "deployer-" + s.eng.Instance() + "-compilers" }

// Known lists the versions that exist: the registry's, and, when it cannot be
// reached, those this host has.
func (s *Store) Known(ctx context.Context) ([]string, error) {
	vs, err := s.reg.Versions(ctx)
	if err == nil {
		return vs, nil
	}
	local := map[string]bool{s.cfg.BuiltInVersion: true}
	for _, dir := range []string{s.cfg.Dir, s.cfg.Seed} {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if _, err := os.Stat(filepath.Join(dir, e.Name(), "soljson.js")); err == nil {
				local[e.Name()] = true
			}
		}
	}
	var out []string
	for v := range local {
		if v != "" {
			out = append(out, v)
		}
	}
	s.log.Warn("npm registry unreachable: only the compilers on this host are known", "error", err, "versions", out)
	return out, nil
}

// Ensure makes the versions ready for a job: on the host (fetched when missing,
// telling step) and in the engine's volume, which a container of the Foundry runner
// image fills. With no versions, it makes sure the volume is there.
func (s *Store) Ensure(ctx context.Context, versions []string, step func(string)) error {
	for _, v := range versions {
		if _, err := s.onHost(ctx, v, step); err != nil {
			return err
		}
	}
	return s.inEngine(ctx, versions)
}

// onHost returns the path of a version's soljson.js on the host, fetching it once
// however many jobs ask.
func (s *Store) onHost(ctx context.Context, v string, step func(string)) (string, error) {
	file := filepath.Join(s.cfg.Dir, v, "soljson.js")
	if _, err := os.Stat(file); err == nil {
		return file, nil
	}
	_, err, _ := s.flight.Do(v, func() (any, error) {
		if _, err := os.Stat(file); err == nil {
			return nil, nil
		}
		var b []byte
		for _, local := range s.localCopies(v) {
			if data, err := os.ReadFile(local); err == nil {
				b = data
				break
			}
		}
		if b == nil {
			step("fetching solc " + v)
			start := time.Now()
			data, err := s.reg.Download(ctx, v)
			if err != nil {
				return nil, err
			}
			b = data
			s.log.Info("fetched a compiler", "version", v, "bytes", len(b), "duration", time.Since(start).Round(time.Millisecond))
		}
		return nil, writeAtomic(file, b)
	})
	return file, err
}

// localCopies are where a version may already be on the host without a download.
func (s *Store) localCopies(v string) []string {
	var out []string
	if s.cfg.Seed != "" {
		out = append(out, filepath.Join(s.cfg.Seed, v, "soljson.js"))
	}
	if v == s.cfg.BuiltInVersion && s.cfg.BuiltIn != "" {
		out = append(out, s.cfg.BuiltIn)
	}
	return out
}

func writeAtomic(file string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return err
	}
	tmp := file + ".tmp-" + randomSuffix()
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, file)
}

func randomSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// inEngine makes sure the engine's volume has the versions, filling it under the
// engine's lock. A volume made anew (removed by hand) is filled again.
func (s *Store) inEngine(ctx context.Context, versions []string) error {
	labels := engine.Labels(s.eng.Instance(), engine.RoleCompilers, nil)
	created, err := s.eng.EnsureVolume(ctx, s.Volume(), labels)
	if err != nil {
		return err
	}
	missing, err := s.missing(ctx, versions, created)
	if err != nil || len(missing) == 0 {
		s.touch(ctx, versions)
		return err
	}
	_, unlock, err := s.locks.Lock(ctx, s.cfg.Namespace.CompilersLock(s.eng.ID()))
	if err != nil {
		return err
	}
	defer unlock()
	// Another worker may have filled them while this one waited.
	if missing, err = s.missing(ctx, versions, false); err != nil || len(missing) == 0 {
		s.touch(ctx, versions)
		return err
	}
	img, err := s.images.Resolve(ctx)
	if err != nil {
		return err
	}
	if err := s.fill(ctx, missing, img.ID); err != nil {
		return fmt.Errorf("fill the compiler volume: %w", err)
	}
	s.touch(ctx, versions)
	return nil
}

// missing lists the versions the volume lacks, by the engine's index.
func (s *Store) missing(ctx context.Context, versions []string, reset bool) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if reset || s.inVolume == nil {
		s.inVolume = map[string]bool{}
		if reset {
			if err := s.index.DeleteOwner(ctx, s.eng.ID()); err != nil {
				return nil, err
			}
		}
	}
	var out []string
	for _, v := range versions {
		if s.inVolume[v] {
			continue
		}
		if _, err := s.index.Get(ctx, s.eng.ID(), v); err == nil {
			s.inVolume[v] = true
			continue
		} else if !errors.Is(err, cache.ErrNoEntry) {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func (s *Store) touch(ctx context.Context, versions []string) {
	now := time.Now()
	for _, v := range versions {
		_ = s.index.Touch(ctx, s.eng.ID(), v, now)
	}
}

// fill copies versions into the volume through a short-lived container of the runner
// image, which also writes each version's long name (the compiler asked once, so that
// forge's `solc --version` on every run costs nothing) and its solc-<version> command.
func (s *Store) fill(ctx context.Context, versions []string, imageID string) error {
	id, err := s.eng.CreateContainer(ctx, engine.ContainerSpec{
		Name:    "deployer-" + s.eng.Instance() + "-compilers-" + randomSuffix(),
		Image:   imageID,
		Cmd:     []string{"sleep", "infinity"},
		User:    "10001:10001",
		Labels:  engine.Labels(s.eng.Instance(), engine.RoleCompilers, nil),
		Mounts:  []engine.Mount{{Volume: s.Volume(), Target: Mount}},
		Network: "none",
		Memory:  2 << 30,
		Pids:    64,
		Init:    true,
	})
	if err != nil {
		return err
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = s.eng.RemoveContainer(rctx, id)
	}()
	var archive bytes.Buffer
	tw := tar.NewWriter(&archive)
	sizes := map[string]int64{}
	for _, v := range versions {
		b, err := os.ReadFile(filepath.Join(s.cfg.Dir, v, "soljson.js"))
		if err != nil {
			return err
		}
		sizes[v] = int64(len(b))
		cmd := fmt.Sprintf("#!/bin/sh\nSOLJSON_DIR=%s/%s exec node /usr/local/bin/solc \"$@\"\n", Mount, v)
		for _, f := range []struct {
			name string
			mode int64
			body []byte
		}{{v + "/soljson.js", 0o644, b}, {v + "/solc-" + v, 0o755, []byte(cmd)}} {
			if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.body)), Typeflag: tar.TypeReg}); err != nil {
				return err
			}
			if _, err := tw.Write(f.body); err != nil {
				return err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	var out bytes.Buffer
	if code, err := s.eng.Exec(ctx, id, engine.ExecSpec{Cmd: []string{"tar", "-x", "-C", Mount}, Stdin: &archive, Stdout: &out, Stderr: &out}); err != nil || code != 0 {
		return fmt.Errorf("tar exited %d: %v %s", code, err, strings.TrimSpace(out.String()))
	}
	for _, v := range versions {
		out.Reset()
		script := fmt.Sprintf(`const fs = require('fs'); const d = %q;
fs.writeFileSync(d + '/VERSION', require('/opt/solc/node_modules/solc/wrapper')(require(d + '/soljson.js')).version());
process.stdout.write(fs.readFileSync(d + '/VERSION', 'utf8'));`, Mount+"/"+v)
		code, err := s.eng.Exec(ctx, id, engine.ExecSpec{Cmd: []string{"node", "-e", script}, Stdout: &out, Stderr: &out})
		if err != nil || code != 0 {
			return fmt.Errorf("solc %s does not load: exit %d: %v %s", v, code, err, lastLine(out.String()))
		}
		long := strings.TrimSpace(out.String())
		now := time.Now()
		if err := s.index.Put(ctx, s.eng.ID(), v, Entry{Version: v, LongVersion: long, Size: sizes[v], InstalledAt: now, LastUsed: now}, now); err != nil {
			return err
		}
		s.mu.Lock()
		s.inVolume[v] = true
		s.mu.Unlock()
		s.log.Info("compiler ready on the engine", "version", long)
	}
	return nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// View is what a job's copy carries to offer forge the versions, and only them: for
// each, the svm directory forge looks in ($XDG_DATA_HOME/svm/<v>/solc-<v>), its
// command a link into the volume. root is where the copy puts it.
func View(root string, versions []string) []*tar.Header {
	sorted := append([]string(nil), versions...)
	sort.Strings(sorted)
	out := []*tar.Header{{Typeflag: tar.TypeDir, Name: root + "/", Mode: 0o755},
		{Typeflag: tar.TypeDir, Name: root + "/svm/", Mode: 0o755}}
	for _, v := range sorted {
		out = append(out,
			&tar.Header{Typeflag: tar.TypeDir, Name: root + "/svm/" + v + "/", Mode: 0o755},
			&tar.Header{Typeflag: tar.TypeSymlink, Name: root + "/svm/" + v + "/solc-" + v, Linkname: Mount + "/" + v + "/solc-" + v, Mode: 0o777})
	}
	return out
}
