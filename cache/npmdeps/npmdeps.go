// Package npmdeps is the dependency cache of Hardhat projects: the node_modules a
// project's lockfile pins, installed once per lockfile (npm ci, with no install
// scripts: no package's code runs) on the worker's host, and given to job containers
// read-only in a volume of the engine's, one per lockfile. A second deployment of a
// project, or of any project with the same lockfile, installs nothing.
//
// npm runs on the worker's host because that is where the network is: a job's
// container has none. What it may fetch is checked first (hardhat.CheckDependencies:
// the npm registry only, each package with its integrity hash), the project's own
// .npmrc is never read, and npm is told the registry explicitly.
package npmdeps

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/deployer-dev/deployer/engine"
	"github.com/deployer-dev/deployer/tasks"
)

// systemCAs are the certificates the host trusts (Debian's bundle), which npm, unlike
// the host's other clients, does not read by itself.
const systemCAs = "/etc/ssl/certs/ca-certificates.crt"

// Mount is where a dependency volume is in a job's container; the project's
// node_modules is a link to Mount/node_modules.
const Mount = "/opt/deps"

// Engine is what the cache needs of a Docker engine (engine/docker's).
type Engine interface {
	ID() string
	Instance() string
	EnsureVolume(ctx context.Context, name string, labels map[string]string) (bool, error)
	CreateContainer(ctx context.Context, spec engine.ContainerSpec) (string, error)
	RemoveContainer(ctx context.Context, ref string) error
	Exec(ctx context.Context, containerID string, spec engine.ExecSpec) (int, error)
}

// Locker serializes filling a volume across the workers of an engine.
type Locker interface {
	Lock(ctx context.Context, key string) (context.Context, func(), error)
}

// Config is a worker's dependency cache.
type Config struct {
	// Dir is the cache on the worker's host.
	Dir string
	// Node and NPM are the Node.js 22 binary and npm's npm-cli.js (set-up's).
	Node, NPM string
	Registry  string
	Namespace tasks.Namespace
}

// Cache is a worker's dependency cache.
type Cache struct {
	cfg    Config
	eng    Engine
	locks  Locker
	log    *slog.Logger
	flight singleflight.Group

	mu     sync.Mutex
	filled map[string]bool
}

// New returns the cache of a worker on an engine.
func New(cfg Config, eng Engine, locks Locker, log *slog.Logger) (*Cache, error) {
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("dependency cache: %w", err)
	}
	for _, f := range []string{cfg.Node, cfg.NPM} {
		if _, err := os.Stat(f); err != nil {
			// Foundry jobs need neither; Hardhat jobs will fail saying the same.
			log.Warn("Hardhat projects cannot be deployed until set-up has run", "missing", f)
		}
	}
	return &Cache{cfg: cfg, eng: eng, locks: locks, log: log.With("component", "npmdeps"), filled: map[string]bool{}}, nil
}

// Key names a dependency set: the lockfile and package.json, and the npm and Node.js
// that install it.
func (c *Cache) Key(packageJSON, lockfile []byte) string {
	h := sha256.New()
	fmt.Fprintf(h, "npm deps v1\nnode %s\nnpm %s\n", fileSum(c.cfg.Node), fileSum(filepath.Join(filepath.Dir(c.cfg.NPM), "..", "package.json")))
	fmt.Fprintf(h, "package.json %d\n", len(packageJSON))
	h.Write(packageJSON)
	fmt.Fprintf(h, "package-lock.json %d\n", len(lockfile))
	h.Write(lockfile)
	return hex.EncodeToString(h.Sum(nil))
}

func fileSum(p string) string {
	f, err := os.Open(p)
	if err != nil {
		return "missing"
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "missing"
	}
	// The size and time stand for the binary: hashing 120 MB on every job would cost
	// more than it is worth.
	return fmt.Sprintf("%d-%d", st.Size(), st.ModTime().UnixNano())
}

// Volume is the engine's volume of a dependency set.
func (c *Cache) Volume(key string) string {
	return "deployer-" + c.eng.Instance() + "-deps-" + key[:16]
}

// Ensure makes a dependency set ready in the engine's volume: installed on the host
// if it is not (telling step, and writing npm's output to out), then copied into the
// volume through a container of the runner image (imageID). It reports whether it
// installed.
func (c *Cache) Ensure(ctx context.Context, key string, packageJSON, lockfile []byte, imageID string, step func(string), out io.Writer) (bool, error) {
	installed, err := c.onHost(ctx, key, packageJSON, lockfile, step, out)
	if err != nil {
		return installed, err
	}
	return installed, c.inEngine(ctx, key, imageID)
}

func (c *Cache) dir(key string) string { return filepath.Join(c.cfg.Dir, key) }

// onHost installs the dependency set once, however many jobs ask.
func (c *Cache) onHost(ctx context.Context, key string, packageJSON, lockfile []byte, step func(string), out io.Writer) (bool, error) {
	done := filepath.Join(c.dir(key), ".complete")
	if _, err := os.Stat(done); err == nil {
		return false, nil
	}
	_, err, _ := c.flight.Do(key, func() (any, error) {
		if _, err := os.Stat(done); err == nil {
			return nil, nil
		}
		step("installing dependencies")
		return nil, c.install(ctx, key, packageJSON, lockfile, out)
	})
	return err == nil, err
}

// install runs npm ci in a fresh directory holding only the manifests, then moves
// the result into place.
func (c *Cache) install(ctx context.Context, key string, packageJSON, lockfile []byte, out io.Writer) error {
	work := filepath.Join(c.cfg.Dir, ".tmp-"+key[:16]+"-"+randomSuffix())
	defer os.RemoveAll(work)
	home := filepath.Join(work, "home")
	project := filepath.Join(work, "project")
	for _, d := range []string{home, project} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	for name, b := range map[string][]byte{"package.json": packageJSON, "package-lock.json": lockfile} {
		if err := os.WriteFile(filepath.Join(project, name), b, 0o600); err != nil {
			return err
		}
	}
	// Empty user and global configs: the project's .npmrc is never read, nor the host's.
	userrc, globalrc := filepath.Join(work, "userrc"), filepath.Join(work, "globalrc")
	for _, f := range []string{userrc, globalrc} {
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			return err
		}
	}
	start := time.Now()
	cmd := exec.CommandContext(ctx, c.cfg.Node, c.cfg.NPM, "ci",
		"--ignore-scripts", "--no-audit", "--no-fund", "--no-update-notifier",
		"--registry", c.cfg.Registry,
		"--userconfig", userrc, "--globalconfig", globalrc,
		"--cache", filepath.Join(c.cfg.Dir, ".npm-cache"))
	cmd.Dir = project
	// A clean environment: nothing of the worker's (its secrets above all) reaches npm
	// but how the host reaches the registry: its proxy and the certificates it trusts.
	cmd.Env = []string{"HOME=" + home, "PATH=" + filepath.Dir(c.cfg.Node) + ":/usr/bin:/bin", "NO_COLOR=1", "npm_config_loglevel=warn"}
	for _, k := range []string{"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE"} {
		if v, ok := os.LookupEnv(k); ok {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	if _, err := os.Stat(systemCAs); err == nil {
		cmd.Args = append(cmd.Args, "--cafile", systemCAs)
	}
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.MultiWriter(&buf, out), io.MultiWriter(&buf, out)
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if buf.Len() == 0 {
			// npm never ran (or died silently): the host's fault, not the project's.
			return fmt.Errorf("npm ci: %w", err)
		}
		return &InstallError{Msg: lastLines(buf.String(), 6)}
	}
	if err := os.WriteFile(filepath.Join(project, "node_modules", ".deployer-key"), []byte(key+"\n"), 0o600); err != nil {
		return err
	}
	dest := c.dir(key)
	_ = os.RemoveAll(dest)
	if err := os.MkdirAll(dest, 0o700); err != nil {
		return err
	}
	if err := os.Rename(filepath.Join(project, "node_modules"), filepath.Join(dest, "node_modules")); err != nil {
		return err
	}
	c.log.Info("installed dependencies", "key", key[:16], "duration", time.Since(start).Round(time.Millisecond))
	return os.WriteFile(filepath.Join(dest, ".complete"), nil, 0o600)
}

// InstallError says npm could not install the lockfile's packages: the project's to
// fix (a package that does not exist, a lockfile out of step with package.json).
type InstallError struct{ Msg string }

func (e *InstallError) Error() string { return "npm ci failed: " + e.Msg }

// Final says a retry would not help.
func (e *InstallError) Final() bool { return true }

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

func randomSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// inEngine fills the engine's volume of the set once, under the engine's lock.
func (c *Cache) inEngine(ctx context.Context, key, imageID string) error {
	c.mu.Lock()
	filled := c.filled[key]
	c.mu.Unlock()
	labels := engine.Labels(c.eng.Instance(), engine.RoleDeps, map[string]string{engine.LabelImageKey: key[:16]})
	created, err := c.eng.EnsureVolume(ctx, c.Volume(key), labels)
	if err != nil {
		return err
	}
	if filled && !created {
		return nil
	}
	_, unlock, err := c.locks.Lock(ctx, c.cfg.Namespace.DepsLock(c.eng.ID(), key[:16]))
	if err != nil {
		return err
	}
	defer unlock()
	id, err := c.eng.CreateContainer(ctx, engine.ContainerSpec{
		Name:    "deployer-" + c.eng.Instance() + "-deps-" + randomSuffix(),
		Image:   imageID,
		Cmd:     []string{"sleep", "infinity"},
		User:    "10001:10001",
		Labels:  engine.Labels(c.eng.Instance(), engine.RoleDeps, nil),
		Mounts:  []engine.Mount{{Volume: c.Volume(key), Target: Mount}},
		Network: "none",
		Memory:  1 << 30,
		Pids:    64,
		Init:    true,
	})
	if err != nil {
		return err
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = c.eng.RemoveContainer(rctx, id)
	}()
	// Another worker on the engine may have filled it while this one waited.
	var probe bytes.Buffer
	code, err := c.eng.Exec(ctx, id, engine.ExecSpec{Cmd: []string{"cat", Mount + "/node_modules/.deployer-key"}, Stdout: &probe})
	if err == nil && code == 0 && strings.TrimSpace(probe.String()) == key {
		c.markFilled(key)
		return nil
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(tarDir(pw, c.dir(key), "node_modules")) }()
	var out bytes.Buffer
	code, err = c.eng.Exec(ctx, id, engine.ExecSpec{Cmd: []string{"tar", "-x", "-C", Mount}, Stdin: pr, Stdout: &out, Stderr: &out})
	pr.Close()
	if err != nil || code != 0 {
		return fmt.Errorf("fill the dependency volume: tar exited %d: %v %s", code, err, lastLines(out.String(), 2))
	}
	c.markFilled(key)
	return nil
}

func (c *Cache) markFilled(key string) {
	c.mu.Lock()
	c.filled[key] = true
	c.mu.Unlock()
}

// tarDir writes dir/name as a tar stream, regular files, directories and links.
func tarDir(w io.Writer, dir, name string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(filepath.Join(dir, name), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		h, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		h.Name = filepath.ToSlash(rel)
		if d.IsDir() {
			h.Name += "/"
		}
		h.Uid, h.Gid, h.Uname, h.Gname = 10001, 10001, "", ""
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}
