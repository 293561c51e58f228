// Package client talks to the deployer API: upload a project directory, deploy it,
// poll the job. `deployer submit` and the end-to-end tests use it.
package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/deployer-dev/deployer/api"
	"github.com/deployer-dev/deployer/hardhat"
	"github.com/deployer-dev/deployer/jobs"
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

// Wait follows the job until it ends, telling progress of each change once.
func (c *Client) Wait(ctx context.Context, id string, progress func(api.Job)) (api.Job, error) {
	return c.Follow(ctx, id, Handlers{Progress: progress})
}

// Handlers hear of a followed job.
type Handlers struct {
	// Progress hears of each change of the job's status or step, once.
	Progress func(api.Job)
	// Output receives the job's output (redacted) as it comes.
	Output func(text string)
}

// Follow follows the job's events (GET /deploy/<id>/events) until it ends, and
// returns it as it ended. A dropped stream is resumed after the last event seen
// (Last-Event-ID), so that nothing is told twice or missed; an API that cannot
// stream is long-polled instead.
func (c *Client) Follow(ctx context.Context, id string, h Handlers) (api.Job, error) {
	j, err := c.Job(ctx, id)
	if err != nil {
		return j, err
	}
	var told string
	tell := func(j api.Job) {
		if key := string(j.Status) + "|" + j.Step; key != told && h.Progress != nil {
			told = key
			h.Progress(j)
		}
	}
	tell(j)
	if j.Status.Final() {
		return j, nil
	}
	last := ""
	for failures := 0; ; {
		before := last
		end, err := c.stream(ctx, id, &last, func(typ, data string) {
			switch typ {
			case "step":
				var ev struct{ Step string }
				if json.Unmarshal([]byte(data), &ev) == nil {
					st := jobs.Running
					if ev.Step == "requeued" {
						st = jobs.Queued
					}
					j.Status, j.Step = st, ev.Step
					tell(j)
				}
			case "log":
				var ev struct{ Text string }
				if json.Unmarshal([]byte(data), &ev) == nil && h.Output != nil {
					h.Output(ev.Text)
				}
			}
		})
		if end != nil {
			tell(*end)
			return *end, nil
		}
		if ctx.Err() != nil {
			return j, ctx.Err()
		}
		if last != before {
			// The stream dropped after news: resume at once after the last of it.
			failures = 0
			continue
		}
		// No stream (an API restarting, a proxy): the long poll answers meanwhile,
		// and says whether the job ended.
		failures++
		var se *StatusError
		if errors.As(err, &se) && se.Code != http.StatusServiceUnavailable && se.Code < 500 {
			return j, err
		}
		polled, perr := c.poll(ctx, id, min(time.Duration(failures)*time.Second, 10*time.Second))
		if perr == nil {
			tell(polled)
			if polled.Status.Final() {
				return polled, nil
			}
			j = polled
		} else if ctx.Err() != nil {
			return j, ctx.Err()
		}
	}
}

// poll long-polls the job for up to wait.
func (c *Client) poll(ctx context.Context, id string, wait time.Duration) (api.Job, error) {
	var j api.Job
	err := c.do(ctx, http.MethodGet, "/deploy/"+id+"?wait="+wait.String(), "", nil, http.StatusOK, &j)
	if err != nil {
		// Not even an answer: wait before the next try, as the poll would have.
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
	return j, err
}

// stream reads one connection of the job's events, calling on for each, and updates
// last to the id of the last event read. It returns the job when the end came.
func (c *Client) stream(ctx context.Context, id string, last *string, on func(typ, data string)) (*api.Job, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/deploy/"+id+"/events", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if *last != "" {
		req.Header.Set("Last-Event-ID", *last)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	// The client's own timeout would cut a stream that lasts as long as its job.
	resp, err := (&http.Client{Transport: c.http.Transport}).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var e api.Error
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return nil, &StatusError{Code: resp.StatusCode, Message: e.Error}
		}
		return nil, &StatusError{Code: resp.StatusCode, Message: strings.TrimSpace(string(b))}
	}
	sc := bufio.NewScanner(resp.Body)
	// A log event carries up to the worker's batch of output, its lines cut at 64 KiB.
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var evID, typ, data string
	for sc.Scan() {
		line := sc.Text()
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch {
		case line == "":
			if typ == "end" {
				var j api.Job
				if err := json.Unmarshal([]byte(data), &j); err != nil {
					return nil, fmt.Errorf("the job's end: %w", err)
				}
				return &j, nil
			}
			if typ != "" {
				on(typ, data)
			}
			if evID != "" {
				*last = evID
			}
			evID, typ, data = "", "", ""
		case field == "id":
			evID = value
		case field == "event":
			typ = value
		case field == "data":
			data = value
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return nil, io.ErrUnexpectedEOF
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
