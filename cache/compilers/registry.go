package compilers

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Registry is the npm registry's solc package: solc-js, the compiler built for
// JavaScript, one release per compiler version.
type Registry struct {
	base string
	http *http.Client

	mu        sync.Mutex
	releases  map[string]release
	fetchedAt time.Time
}

type release struct {
	Tarball   string `json:"tarball"`
	Integrity string `json:"integrity"`
}

// NewRegistry returns the registry at base (https://registry.npmjs.org).
func NewRegistry(base string) *Registry {
	return &Registry{base: strings.TrimRight(base, "/"), http: &http.Client{Timeout: 5 * time.Minute}}
}

// ErrUnreachable says the registry did not answer: the work can be retried.
var ErrUnreachable = errors.New("the npm registry is unreachable")

// maxTarball bounds a release's download.
const maxTarball = 64 << 20

// Versions lists the compiler versions the registry has, read at most once an hour.
// A release the registry names "0.8.7-fixed" counts as 0.8.7.
func (r *Registry) Versions(ctx context.Context) ([]string, error) {
	rel, err := r.list(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(rel))
	for v := range rel {
		out = append(out, v)
	}
	return out, nil
}

func (r *Registry) list(ctx context.Context) (map[string]release, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.releases != nil && time.Since(r.fetchedAt) < time.Hour {
		return r.releases, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.base+"/solc", nil)
	if err != nil {
		return nil, err
	}
	// The abbreviated document: versions and their tarballs, 200 kB instead of MBs.
	req.Header.Set("Accept", "application/vnd.npm.install-v1+json")
	resp, err := r.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: HTTP %d", ErrUnreachable, resp.StatusCode)
	}
	var doc struct {
		Versions map[string]struct {
			Dist release `json:"dist"`
		} `json:"versions"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&doc); err != nil {
		return nil, fmt.Errorf("the npm registry's solc document: %w", err)
	}
	rel := map[string]release{}
	for v, d := range doc.Versions {
		base, suffix, _ := strings.Cut(v, "-")
		switch suffix {
		case "":
			rel[base] = d.Dist
		case "fixed":
			if _, ok := rel[base]; !ok {
				rel[base] = d.Dist
			}
		}
	}
	r.releases, r.fetchedAt = rel, time.Now()
	return rel, nil
}

// Download fetches a version's soljson.js, checked against the integrity hash the
// registry publishes for its tarball.
func (r *Registry) Download(ctx context.Context, version string) ([]byte, error) {
	rel, err := r.list(ctx)
	if err != nil {
		return nil, err
	}
	d, ok := rel[version]
	if !ok {
		return nil, fmt.Errorf("solc %s is not in the npm registry", version)
	}
	alg, want, ok := strings.Cut(d.Integrity, "-")
	if !ok || alg != "sha512" {
		return nil, fmt.Errorf("solc %s: the registry publishes no sha512 integrity", version)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.Tarball, nil)
	if err != nil {
		return nil, err
	}
	resp, err := r.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: solc %s: HTTP %d", ErrUnreachable, version, resp.StatusCode)
	}
	tgz, err := io.ReadAll(io.LimitReader(resp.Body, maxTarball+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	if len(tgz) > maxTarball {
		return nil, fmt.Errorf("solc %s: the tarball is over %d bytes", version, maxTarball)
	}
	sum := sha512.Sum512(tgz)
	if base64.StdEncoding.EncodeToString(sum[:]) != want {
		return nil, fmt.Errorf("solc %s: the tarball does not match the registry's integrity hash", version)
	}
	return soljsonOf(tgz)
}

// soljsonOf reads package/soljson.js out of a solc release's tarball.
func soljsonOf(tgz []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(tgz))
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err != nil {
			return nil, errors.New("the release has no package/soljson.js")
		}
		if h.Name == "package/soljson.js" && h.Typeflag == tar.TypeReg {
			return io.ReadAll(io.LimitReader(tr, 4*maxTarball))
		}
	}
}
