// Package runner defines the runner images jobs and chains run in: their Dockerfiles
// (embedded in the binary), the build context (the Dockerfile plus the toolchain
// set-up fetched), and the content key that names a build.
package runner

import (
	"archive/tar"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"sync"
)

// Each framework's directory holds its Dockerfile and files; common holds what every
// runner image carries (the gateway's relay).
//
//go:embed foundry hardhat common
var definitions embed.FS

// Frameworks.
const (
	Foundry = "foundry"
	Hardhat = "hardhat"
)

// Image is a runner image definition for one framework.
type Image struct {
	Framework string
	// BaseImage is the image the Dockerfile starts from (a build argument).
	BaseImage string
	// toolchain maps paths in the build context to files on this host.
	toolchain map[string]string

	once   sync.Once
	sum    string
	sumErr error
}

// NewFoundry is the Foundry runner: forge, anvil and cast, and the solc stand-in, from
// the toolchain directory set-up fills (bin/{forge,anvil,cast}, solc/node_modules).
func NewFoundry(toolchainDir, baseImage string) (*Image, error) {
	files := map[string]string{}
	for _, tool := range []string{"forge", "anvil", "cast"} {
		files["bin/"+tool] = filepath.Join(toolchainDir, "bin", tool)
	}
	modules := filepath.Join(toolchainDir, "solc", "node_modules")
	err := filepath.WalkDir(modules, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, _ := filepath.Rel(modules, p)
			files["solc/node_modules/"+filepath.ToSlash(rel)] = p
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("foundry toolchain in %s (run make setup): %w", toolchainDir, err)
	}
	for ctxPath, p := range files {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("foundry toolchain: %s missing (run make setup): %w", ctxPath, err)
		}
	}
	return &Image{Framework: Foundry, BaseImage: baseImage, toolchain: files}, nil
}

// NewHardhat is the Hardhat runner: Node.js 22, from the toolchain directory set-up
// fills (node22/bin/node).
func NewHardhat(toolchainDir, baseImage string) (*Image, error) {
	node := filepath.Join(toolchainDir, "node22", "bin", "node")
	if _, err := os.Stat(node); err != nil {
		return nil, fmt.Errorf("hardhat toolchain: Node.js 22 missing (run make setup): %w", err)
	}
	return &Image{Framework: Hardhat, BaseImage: baseImage, toolchain: map[string]string{"node": node}}, nil
}

// Repository is the image's name, without tag. Installations other than "default"
// get their own, so that one never removes the other's.
func (i *Image) Repository(instance string) string {
	if instance == "default" {
		return i.Framework + "-deployer"
	}
	return i.Framework + "-deployer-" + instance
}

// BuildArgs are the build's arguments.
func (i *Image) BuildArgs() map[string]string {
	return map[string]string{"BASE_IMAGE": i.BaseImage}
}

// embedded lists the definition's own files (Dockerfile, scripts) and the common
// ones, sorted.
func (i *Image) embedded() ([]string, error) {
	var names []string
	for _, dir := range []string{i.Framework, "common"} {
		err := fs.WalkDir(definitions, dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				names = append(names, p)
			}
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	sort.Strings(names)
	return names, nil
}

// contentSum hashes the build context once per process: the toolchain is hundreds of
// megabytes and does not change while the process runs.
func (i *Image) contentSum() (string, error) {
	i.once.Do(func() {
		h := sha256.New()
		names, err := i.embedded()
		if err != nil {
			i.sumErr = err
			return
		}
		for _, n := range names {
			b, err := definitions.ReadFile(n)
			if err != nil {
				i.sumErr = err
				return
			}
			fmt.Fprintf(h, "embedded %s %d\n", n, len(b))
			h.Write(b)
		}
		paths := make([]string, 0, len(i.toolchain))
		for p := range i.toolchain {
			paths = append(paths, p)
		}
		sort.Strings(paths)
		for _, p := range paths {
			f, err := os.Open(i.toolchain[p])
			if err != nil {
				i.sumErr = fmt.Errorf("hash toolchain: %w", err)
				return
			}
			fh := sha256.New()
			_, err = io.Copy(fh, f)
			f.Close()
			if err != nil {
				i.sumErr = fmt.Errorf("hash toolchain: %w", err)
				return
			}
			fmt.Fprintf(h, "file %s %x\n", p, fh.Sum(nil))
		}
		i.sum = hex.EncodeToString(h.Sum(nil))
	})
	return i.sum, i.sumErr
}

// Key names a build: a hash of the build context, the build arguments and the base
// image's id. A changed Dockerfile, binary or base gives a new key.
func (i *Image) Key(baseImageID string) (string, error) {
	content, err := i.contentSum()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "framework %s\ncontext %s\nbase-id %s\n", i.Framework, content, baseImageID)
	args := i.BuildArgs()
	keys := make([]string, 0, len(args))
	for k := range args {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(h, "arg %s=%s\n", k, args[k])
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// WriteContext writes the build context as a tar stream.
func (i *Image) WriteContext(w io.Writer) error {
	tw := tar.NewWriter(w)
	names, err := i.embedded()
	if err != nil {
		return err
	}
	for _, n := range names {
		b, err := definitions.ReadFile(n)
		if err != nil {
			return err
		}
		rel := path.Base(n)
		if err := tw.WriteHeader(&tar.Header{Name: rel, Mode: 0o644, Size: int64(len(b))}); err != nil {
			return err
		}
		if _, err := tw.Write(b); err != nil {
			return err
		}
	}
	paths := make([]string, 0, len(i.toolchain))
	for p := range i.toolchain {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		if err := addFile(tw, p, i.toolchain[p]); err != nil {
			return err
		}
	}
	return tw.Close()
}

func addFile(tw *tar.Writer, name, src string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	mode := int64(0o644)
	if st.Mode()&0o111 != 0 {
		mode = 0o755
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: st.Size()}); err != nil {
		return err
	}
	_, err = io.CopyN(tw, f, st.Size())
	return err
}
