package producer

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/labstack/echo/v4"

	"github.com/deployer-dev/deployer/api"
	"github.com/deployer-dev/deployer/hardhat"
	"github.com/deployer-dev/deployer/jobs"
	"github.com/deployer-dev/deployer/projects"
	"github.com/deployer-dev/deployer/tasks"
)

// maxRequestBytes bounds a JSON request.
const maxRequestBytes = 1 << 20

// uploadProject stores a gzip'd tar of a project, after checking every entry.
func (a *API) uploadProject(c echo.Context) error {
	r := c.Request()
	if r.ContentLength > a.cfg.MaxProjectBytes {
		return apiError(http.StatusRequestEntityTooLarge, "project archive is larger than %d bytes", a.cfg.MaxProjectBytes)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, a.cfg.MaxProjectBytes+1))
	if err != nil {
		return apiError(http.StatusBadRequest, "could not read the body: %v", err)
	}
	if int64(len(body)) > a.cfg.MaxProjectBytes {
		return apiError(http.StatusRequestEntityTooLarge, "project archive is larger than %d bytes", a.cfg.MaxProjectBytes)
	}
	if len(body) == 0 {
		return apiError(http.StatusBadRequest, "the body is empty: send a gzip'd tar of the project directory")
	}
	listing, err := projects.InspectArchive(body, a.cfg.Limits)
	if err != nil {
		return requestError(jobs.AsRequestError(err))
	}
	if listing.FoundryTOML == nil && hardhat.ConfigOf(listing) == "" {
		return apiError(http.StatusBadRequest, "neither a Foundry nor a Hardhat project: the archive has no foundry.toml or hardhat.config.ts at its top")
	}
	sum, err := a.projects.PutCharged(r.Context(), body, a.uploadCharge(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, api.UploadResponse{ProjectID: "sha256:" + sum, PathURL: "project://" + sum})
}

func (a *API) deploy(c echo.Context) error {
	ctx := c.Request().Context()
	if _, err := waitParam(c); err != nil {
		return err
	}
	idem, err := a.idempotency(c)
	if err != nil {
		return err
	}
	if idem != "" {
		// A repeated request: the job it made, as it is now.
		if id, err := a.rdb.Get(ctx, idem).Result(); err == nil {
			return a.repeated(c, id)
		}
	}
	req, err := decodeDeploy(c.Request())
	if err != nil {
		return err
	}
	p, shown, err := a.validate(ctx, req, clientOf(c))
	if err != nil {
		return err
	}
	id, err := newJobID()
	if err != nil {
		return err
	}
	if idem != "" {
		won, err := a.rdb.SetNX(ctx, idem, id, a.cfg.JobRetention).Result()
		if err != nil {
			return err
		}
		if !won {
			if other, err := a.rdb.Get(ctx, idem).Result(); err == nil {
				return a.repeated(c, other)
			}
		}
	}
	p.JobID = id
	p.EnqueuedAt = time.Now()
	job := jobs.Job{ID: id, Framework: p.Framework, Network: p.Network, Client: p.Client, Queue: a.ns.DeployQueue(),
		Project: shown, Target: targetOf(p), CreatedAt: p.EnqueuedAt}
	if err := a.chargeLogs(c, id); err != nil {
		return err
	}
	if err := a.jobs.Create(ctx, job); err != nil {
		return err
	}
	task, err := tasks.NewDeploy(p)
	if err != nil {
		return err
	}
	_, err = a.client.EnqueueContext(ctx, task,
		asynq.Queue(a.ns.DeployQueue()),
		asynq.TaskID(id),
		asynq.MaxRetry(a.cfg.JobMaxRetry),
		asynq.Retention(a.cfg.JobRetention),
		// The worker's own step limits end a job first, with a clear message.
		asynq.Timeout(tasks.DeployTimeout(a.cfg.JobTimeout)),
	)
	if err != nil {
		_ = a.jobs.Delete(context.WithoutCancel(ctx), id)
		if idem != "" {
			_ = a.rdb.Del(context.WithoutCancel(ctx), idem).Err()
		}
		a.log.Error("enqueue failed", "job_id", id, "error", err)
		return apiError(http.StatusServiceUnavailable, "the job could not be queued; try again")
	}
	a.log.Info("job queued", "job_id", id, "network", p.Network, "project", shown, "archive", p.Project.Upload)
	// ?wait= answers 200 with the job if it ends in time, else 202 as without it.
	if wait, err := waitParam(c); err == nil && wait > 0 {
		if j, ended, err := a.awaitEnd(ctx, id, wait); err == nil && ended {
			return c.JSON(http.StatusOK, a.view(ctx, j))
		}
	}
	return c.JSON(http.StatusAccepted, api.DeployResponse{JobID: id, Status: string(jobs.Queued), StatusURL: "/deploy/" + id})
}

// idempotency names the Redis key of the request's Idempotency-Key, per client, or ""
// without one.
func (a *API) idempotency(c echo.Context) (string, error) {
	k := c.Request().Header.Get("Idempotency-Key")
	if k == "" {
		return "", nil
	}
	if len(k) > 255 || strings.ContainsFunc(k, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "", apiError(http.StatusBadRequest, "Idempotency-Key: at most 255 printable characters")
	}
	sum := sha256.Sum256([]byte(k))
	client := clientOf(c)
	if client == "" {
		client = "-"
	}
	return a.ns.IdempotencyKey(client, hex.EncodeToString(sum[:])), nil
}

// repeated answers a request whose Idempotency-Key made a job already: that job.
func (a *API) repeated(c echo.Context, id string) error {
	j, err := a.jobs.Get(c.Request().Context(), id)
	if err != nil {
		return err
	}
	status, _ := j.Effective(a.taskState(j.Queue, j.ID))
	return c.JSON(http.StatusOK, api.DeployResponse{JobID: id, Status: string(status), StatusURL: "/deploy/" + id})
}

func targetOf(p tasks.Deploy) string {
	switch {
	case p.Module != "":
		return p.Module
	case p.Contract != "":
		return p.Contract
	}
	return p.Script
}

func decodeDeploy(r *http.Request) (api.DeployRequest, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBytes+1))
	if err != nil {
		return api.DeployRequest{}, apiError(http.StatusBadRequest, "could not read the body: %v", err)
	}
	if len(body) > maxRequestBytes {
		return api.DeployRequest{}, apiError(http.StatusRequestEntityTooLarge, "request body is larger than %d bytes", maxRequestBytes)
	}
	var req api.DeployRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return api.DeployRequest{}, apiError(http.StatusBadRequest, "the body is not a JSON deploy request: %v", err)
	}
	if dec.More() {
		return api.DeployRequest{}, apiError(http.StatusBadRequest, "the body holds more than one JSON value")
	}
	return req, nil
}

// validate reads the request's project and checks the request with jobs.Check, the
// check the worker runs again; it returns the payload to enqueue, and the project as
// the job's record shows it (what the user named). Its errors are 400s naming the
// problem.
func (a *API) validate(ctx context.Context, req api.DeployRequest, client string) (tasks.Deploy, string, error) {
	bad := func(format string, args ...any) (tasks.Deploy, string, error) {
		return tasks.Deploy{}, "", apiError(http.StatusBadRequest, format, args...)
	}
	refused := func(err error) (tasks.Deploy, string, error) {
		return tasks.Deploy{}, "", requestError(err)
	}
	if strings.TrimSpace(req.PathURL) == "" {
		return bad("path_url is required: a project:// id from POST /projects, or a directory under the projects root")
	}
	p := tasks.Deploy{Framework: req.Framework, Network: req.Network, Script: req.Script,
		Contract: req.Contract, ConstructorArgs: req.ConstructorArgs, Sig: req.Sig, Args: req.Args, Env: req.Env, Module: req.Module, Parameters: req.Parameters, Client: client}
	// The request alone first: a wrong framework or network needs no project read.
	if _, err := a.rules().Check(p, nil); err != nil {
		return refused(err)
	}
	var listing *projects.Listing
	// snapshot is a path project read once, the archive its job runs from.
	var snapshot []byte
	if sum, isUpload, err := projects.ParseUploadURL(req.PathURL); err != nil {
		return refused(jobs.AsRequestError(err))
	} else if isUpload {
		archive, err := a.projects.Get(ctx, sum)
		if errors.Is(err, projects.ErrNotFound) {
			return bad("project %s was not found: upload it with POST /projects (uploads are kept 24 h)", req.PathURL)
		}
		if err != nil {
			return tasks.Deploy{}, "", err
		}
		if listing, err = projects.InspectArchive(archive, a.cfg.Limits); err != nil {
			return refused(jobs.AsRequestError(err))
		}
		p.Project.Upload = sum
	} else {
		rel, err := projects.ResolvePath(a.cfg.ProjectsRoot, req.PathURL)
		if err != nil {
			return refused(jobs.AsRequestError(err))
		}
		// Clients may write under the projects root: what is checked here must be
		// what the job runs, so the directory is read once, into an archive checked
		// and stored as an upload is, and nothing reads the directory again.
		if snapshot, err = projects.Snapshot(a.cfg.ProjectsRoot, rel, a.cfg.Limits); err != nil {
			return refused(jobs.AsRequestError(err))
		}
		if listing, err = projects.InspectArchive(snapshot, a.cfg.Limits); err != nil {
			return refused(jobs.AsRequestError(err))
		}
		// The check's messages name the directory, as the user did.
		p.Project.Path = rel
	}
	plan, err := a.rules().Check(p, listing)
	if err != nil {
		return refused(err)
	}
	shown := p.Project.String()
	if snapshot != nil {
		sum, err := a.projects.Put(ctx, snapshot)
		if err != nil {
			return tasks.Deploy{}, "", err
		}
		p.Project = tasks.ProjectRef{Upload: sum}
	}
	p.Network = plan.Network.Name
	if plan.Hardhat != nil {
		p.Module = plan.Hardhat.Module
		return p, shown, nil
	}
	p.Script, p.Contract, p.ConstructorArgs = "", "", plan.Target.ConstructorArgs
	p.Sig, p.Args, p.Env = plan.Target.Sig, plan.Target.Args, plan.Target.Env
	if plan.Target.IsScript() {
		p.Script = plan.Target.String()
	} else {
		p.Contract = plan.Target.String()
	}
	return p, shown, nil
}

// requestError answers a RequestError as a 400 (403 when its client may not) and
// anything else as a 500.
func requestError(err error) error {
	var re *jobs.RequestError
	if errors.As(err, &re) {
		if re.Forbidden {
			return apiError(http.StatusForbidden, "%s", re.Msg)
		}
		return apiError(http.StatusBadRequest, "%s", re.Msg)
	}
	return err
}

// rules are what requests are checked against.
func (a *API) rules() jobs.Rules {
	return jobs.Rules{Networks: a.networks, Durable: a.cfg.DurableRedis, Secrets: a.cfg.NetworkSecrets}
}

func newJobID() (string, error) {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("job id: %w", err)
	}
	return hex.EncodeToString(b), nil
}
