package producer

import (
	"context"
	"errors"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
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
	wait, err := waitParam(c)
	if err != nil {
		return err
	}
	j, err := a.loadJob(c)
	if err != nil {
		return err
	}
	if wait > 0 && !j.Status.Final() {
		if j, _, err = a.awaitEnd(c.Request().Context(), j.ID, wait); err != nil {
			return err
		}
	}
	return c.JSON(http.StatusOK, a.view(c.Request().Context(), j))
}

// maxWait is the longest ?wait= honoured; longer ones are cut to it, not refused.
const maxWait = 10 * time.Minute

// waitParam reads ?wait=: a duration ("60s") or seconds ("60").
func waitParam(c echo.Context) (time.Duration, error) {
	v := strings.TrimSpace(c.QueryParam("wait"))
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		secs, ferr := strconv.ParseFloat(v, 64)
		if ferr != nil || secs < 0 || math.IsNaN(secs) {
			return 0, apiError(http.StatusBadRequest, "wait=%q: a duration (60s) or a number of seconds", v)
		}
		d = time.Duration(min(secs, maxWait.Seconds()) * float64(time.Second))
	}
	if d < 0 {
		return 0, apiError(http.StatusBadRequest, "wait=%q: a duration (60s) or a number of seconds", v)
	}
	return min(d, maxWait), nil
}

// awaitEnd reads the job's record until the job ended or wait passed (or the client
// left), and returns it as it then is, and whether it ended. Between two reads it
// waits for the job's next event, so that it answers as soon as the job ends; when
// every follower's connection is taken, it reads every pollEvery instead.
func (a *API) awaitEnd(ctx context.Context, id string, wait time.Duration) (jobs.Job, bool, error) {
	deadline := time.Now().Add(wait)
	follow := a.follow.slots.TryAcquire(1)
	if follow {
		defer a.follow.slots.Release(1)
	}
	last := ""
	for {
		if follow && last == "" {
			// Before the record is read: an end written after the read is an event
			// after this one.
			var err error
			if last, err = a.follow.store.LastEventID(ctx, id); err != nil {
				follow = false
			}
		}
		j, err := a.jobs.Get(ctx, id)
		if err != nil || j.Status.Final() {
			return j, err == nil, err
		}
		// The record may say queued while asynq archived the task (a worker refused
		// it): the status users see is what ends the wait. No event says that: the
		// wait for events is cut to a second.
		left := time.Until(deadline)
		if st, _ := j.Effective(a.taskState(j.Queue, j.ID)); st.Final() || left <= 0 {
			return j, st.Final(), nil
		}
		if follow {
			evs, err := a.follow.store.Events(ctx, id, last, min(left, time.Second), eventBatch)
			if err == nil {
				if len(evs) > 0 {
					last = evs[len(evs)-1].ID
				}
				continue
			}
			if ctx.Err() != nil {
				return j, false, nil
			}
			follow = false
		}
		select {
		case <-ctx.Done():
			return j, false, nil
		case <-time.After(pollEvery):
		}
	}
}

// pollEvery is how often a long poll reads a job's record when it cannot wait for
// its events.
const pollEvery = 100 * time.Millisecond

// view is the job as the API answers it: its record, with the status and error the
// record and its task's state say together.
func (a *API) view(ctx context.Context, j jobs.Job) api.Job {
	v := api.Job{JobID: j.ID, Framework: j.Framework, Network: j.Network, Client: j.Client,
		Step: j.Step, Project: j.Project, Target: j.Target, Attempts: j.Attempts, Worker: j.Worker, ContainerID: j.ContainerID,
		CancelRequested: j.CancelRequested, CreatedAt: j.CreatedAt}
	state, lastErr := jobs.TaskUnknown, ""
	if !j.Status.Final() {
		state, lastErr = a.taskState(j.Queue, j.ID)
	}
	var errMsg string
	v.Status, errMsg = j.Effective(state, lastErr)
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

// taskState reads where asynq holds a job's task.
func (a *API) taskState(queue, id string) (jobs.TaskState, string) {
	info, err := a.inspector.GetTaskInfo(queue, id)
	if err != nil {
		return jobs.TaskUnknown, ""
	}
	switch info.State {
	case asynq.TaskStatePending, asynq.TaskStateScheduled, asynq.TaskStateAggregating:
		return jobs.TaskWaiting, ""
	case asynq.TaskStateActive, asynq.TaskStateRetry:
		return jobs.TaskRunning, ""
	case asynq.TaskStateArchived:
		return jobs.TaskArchived, info.LastErr
	}
	return jobs.TaskUnknown, ""
}

// dequeuer takes tasks no worker holds out of asynq's queues.
type dequeuer struct{ inspector *asynq.Inspector }

func (d dequeuer) Dequeue(_ context.Context, queue, id string) (bool, error) {
	info, err := d.inspector.GetTaskInfo(queue, id)
	if err != nil || info.State == asynq.TaskStateActive {
		return false, err
	}
	return d.inspector.DeleteTask(queue, id) == nil, nil
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
	j, err = a.jobs.Cancel(ctx, j, dequeuer{a.inspector}, cancelWait)
	if errors.Is(err, jobs.ErrFinal) {
		if j.Status.Final() {
			return apiError(http.StatusConflict, "job %s already ended %s", j.ID, j.Status)
		}
		return apiError(http.StatusConflict, "job %s already ended", j.ID)
	}
	if err != nil {
		return err
	}
	code := http.StatusOK
	if !j.Status.Final() {
		code = http.StatusAccepted
	}
	return c.JSON(code, a.view(ctx, j))
}
