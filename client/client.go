// Package client talks to the deployer API: upload a project directory, deploy it,
// poll the job. `deployer submit` and the end-to-end tests use it.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/deployer-dev/deployer/api"
	"github.com/deployer-dev/deployer/hardhat"
	"github.com/deployer-dev/deployer/projects"
)

// Client is an API client.
type Client struct {
	base  string
	token string
	http  *http.Client
}

// New returns a client of the API at base (http://127.0.0.1:5001). token, when not
// empty, is sent as a Bearer token.
func New(base, token string) *Client {
	return &Client{base: strings.TrimRight(base, "/"), token: token, http: &http.Client{Timeout: 60 * time.Second}}
}

// StatusError is an answer other than the one expected.
type StatusError struct {
	Code    int
	Message string
}

func (e *StatusError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.Code, e.Message) }

func (c *Client) do(ctx context.Context, method, path, contentType string, body io.Reader, want int, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		var e api.Error
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return &StatusError{Code: resp.StatusCode, Message: e.Error}
		}
		return &StatusError{Code: resp.StatusCode, Message: strings.TrimSpace(string(b))}
	}
	if out == nil {
		return nil
	}
	if raw, ok := out.(*[]byte); ok {
		*raw = b
		return nil
	}
	return json.Unmarshal(b, out)
}

// UploadDir packs a project directory (without build output, .git or .env files) and
// uploads it. A Hardhat project whose package-lock.json pins its dependencies goes
// without node_modules (the service installs them from the lockfile), and without
// Hardhat's build output and Ignition's deployments. A Foundry project keeps its
// node_modules: that is where its imports are found.
func (c *Client) UploadDir(ctx context.Context, dir string) (api.UploadResponse, error) {
	opts := projects.PackOptions{Gzip: true}
	if isHardhat(dir) {
		opts.Skip = func(rel string, isDir bool) bool {
			switch rel {
			case "node_modules", "artifacts", "ignition/deployments":
				return true
			}
			return false
		}
	}
	var buf bytes.Buffer
	if err := projects.Pack(&buf, dir, projects.DefaultLimits, opts); err != nil {
		return api.UploadResponse{}, fmt.Errorf("pack %s: %w", dir, err)
	}
	return c.Upload(ctx, buf.Bytes())
}

// Upload uploads a gzip'd tar.
func (c *Client) Upload(ctx context.Context, archive []byte) (api.UploadResponse, error) {
	var out api.UploadResponse
	err := c.do(ctx, http.MethodPost, "/projects", "application/gzip", bytes.NewReader(archive), http.StatusCreated, &out)
	return out, err
}

// Deploy submits a deployment.
func (c *Client) Deploy(ctx context.Context, req api.DeployRequest) (api.DeployResponse, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return api.DeployResponse{}, err
	}
	var out api.DeployResponse
	err = c.do(ctx, http.MethodPost, "/deploy", "application/json", bytes.NewReader(b), http.StatusAccepted, &out)
	return out, err
}

// Job polls a job once.
func (c *Client) Job(ctx context.Context, id string) (api.Job, error) {
	var out api.Job
	err := c.do(ctx, http.MethodGet, "/deploy/"+id, "", nil, http.StatusOK, &out)
	return out, err
}

// Logs returns a job's output.
func (c *Client) Logs(ctx context.Context, id string) (string, error) {
	var b []byte
	err := c.do(ctx, http.MethodGet, "/deploy/"+id+"/logs", "", nil, http.StatusOK, &b)
	return string(b), err
}

// Cancel cancels a job and returns its state after the attempt.
func (c *Client) Cancel(ctx context.Context, id string) (api.Job, error) {
	var out api.Job
	err := c.do(ctx, http.MethodDelete, "/deploy/"+id, "", nil, http.StatusOK, &out)
	if se, ok := err.(*StatusError); ok && se.Code == http.StatusAccepted {
		return c.Job(ctx, id)
	}
	return out, err
}

// Wait polls a job until it ends or ctx does, calling progress on every change.
func (c *Client) Wait(ctx context.Context, id string, progress func(api.Job)) (api.Job, error) {
	var last string
	interval := 50 * time.Millisecond
	for {
		j, err := c.Job(ctx, id)
		if err != nil {
			return j, err
		}
		if key := string(j.Status) + "|" + j.Step; key != last && progress != nil {
			last = key
			progress(j)
		}
		if j.Status.Final() {
			return j, nil
		}
		select {
		case <-ctx.Done():
			return j, ctx.Err()
		case <-time.After(interval):
		}
		interval = min(interval*2, 500*time.Millisecond)
	}
}

func isHardhat(dir string) bool {
	if _, err := os.Stat(filepath.Join(dir, "package-lock.json")); err != nil {
		return false
	}
	for _, name := range hardhat.ConfigNames {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return true
		}
	}
	return false
}
