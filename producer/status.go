package producer

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"time"

	"github.com/hibiken/asynq"
	"github.com/labstack/echo/v4"

	"github.com/deployer-dev/deployer/api"
	"github.com/deployer-dev/deployer/jobs"
)

var jobIDRE = regexp.MustCompile(`^[0-9a-f]{24}$`)

func (a *API) loadJob(c echo.Context) (jobs.Job, error) {
	id := c.Param("id")
	if !jobIDRE.MatchString(id) {
		return jobs.Job{}, apiError(http.StatusNotFound, "no job %q", id)
	}
	j, err := a.jobs.Get(c.Request().Context(), id)
	if errors.Is(err, jobs.ErrNotFound) {
		return jobs.Job{}, apiError(http.StatusNotFound, "no job %q", id)
	}
	return j, err
}

func (a *API) getJob(c echo.Context) error {
	j, err := a.loadJob(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, a.view(c.Request().Context(), j))
}

// view merges the job's record with its task's state: the record is the truth once
// the job ended; before that, asynq knows whether it waits, runs or awaits a retry.
func (a *API) view(ctx context.Context, j jobs.Job) api.Job {
	v := api.Job{JobID: j.ID, Status: j.Status, Framework: j.Framework, Network: j.Network,
		Step: j.Step, Project: j.Project, Target: j.Target, Attempts: j.Attempts, Worker: j.Worker, ContainerID: j.ContainerID,
		CancelRequested: j.CancelRequested, CreatedAt: j.CreatedAt}
	errMsg := j.Error
	if !j.Status.Final() {
		if info, err := a.inspector.GetTaskInfo(j.Queue, j.ID); err == nil {
			switch info.State {
			case asynq.TaskStatePending, asynq.TaskStateScheduled, asynq.TaskStateAggregating:
				v.Status = jobs.Queued
			case asynq.TaskStateActive, asynq.TaskStateRetry:
				v.Status = jobs.Running
			case asynq.TaskStateArchived:
				// The task ran out of retries, or a worker refused it, without the
				// record saying so.
				v.Status = jobs.Failed
				if errMsg == "" {
					errMsg = "the job failed: " + info.LastErr
				}
			}
		}
	}
	if v.Status == jobs.Completed {
		v.Result = j.Result
	}
	if (v.Status == jobs.Failed || v.Status == jobs.Canceled) && errMsg != "" {
		v.Error = &errMsg
	}
	// Timings and cache use are recorded when a job ends; before, they are unknown.
	if j.Status.Final() {
		v.Timings, v.Cache = &j.Timings, &j.Cache
	}
	if !j.StartedAt.IsZero() {
		v.StartedAt = &j.StartedAt
	}
	if !j.FinishedAt.IsZero() {
		v.FinishedAt = &j.FinishedAt
	}
	return v
}

func (a *API) getLogs(c echo.Context) error {
	j, err := a.loadJob(c)
	if err != nil {
		return err
	}
	b, err := a.jobs.Logs(c.Request().Context(), j.ID)
	if err != nil {
		return err
	}
	return c.Blob(http.StatusOK, "text/plain; charset=utf-8", b)
}

// cancelWait is how long DELETE waits for a running job to end canceled.
const cancelWait = 10 * time.Second

func (a *API) cancelJob(c echo.Context) error {
	ctx := c.Request().Context()
	j, err := a.loadJob(c)
	if err != nil {
		return err
	}
	if j.Status.Final() {
		return apiError(http.StatusConflict, "job %s already ended %s", j.ID, j.Status)
	}
	if err := a.jobs.RequestCancel(ctx, j.ID); errors.Is(err, jobs.ErrFinal) {
		return apiError(http.StatusConflict, "job %s already ended", j.ID)
	} else if err != nil {
		return err
	}
	// A task no worker holds is taken out of its queue here; a running one is
	// stopped by its worker, which watches the flag.
	if info, err := a.inspector.GetTaskInfo(j.Queue, j.ID); err == nil && info.State != asynq.TaskStateActive {
		if err := a.inspector.DeleteTask(j.Queue, j.ID); err == nil {
			if err := a.jobs.Finish(ctx, j.ID, jobs.Outcome{Status: jobs.Canceled, Error: "canceled before it started"}, time.Now()); err != nil && !errors.Is(err, jobs.ErrFinal) {
				return err
			}
		}
	}
	deadline := time.Now().Add(cancelWait)
	for {
		j, err = a.jobs.Get(ctx, j.ID)
		if err != nil {
			return err
		}
		if j.Status.Final() || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	code := http.StatusOK
	if !j.Status.Final() {
		code = http.StatusAccepted
	}
	return c.JSON(code, a.view(ctx, j))
}
