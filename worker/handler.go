package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"

	"github.com/deployer-dev/deployer/deployment"
	"github.com/deployer-dev/deployer/jobs"
	"github.com/deployer-dev/deployer/tasks"
)

// errCancelRequested ends a job's context when its user canceled it.
var errCancelRequested = errors.New("canceled by request")

// cancelPoll is how often a running job checks whether it was canceled.
const cancelPoll = 250 * time.Millisecond

// deployHandler decodes a deployment task, runs it and records the outcome.
type deployHandler struct {
	w *Worker
}

func (h *deployHandler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	w := h.w
	w.inflight.Add(1)
	defer w.inflight.Done()
	w.active.Add(1)
	defer w.active.Add(-1)

	p, err := tasks.DecodeDeploy(t.Payload())
	if err != nil {
		w.log.Error("refusing task", "task_id", t.ResultWriter().TaskID(), "error", err)
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	log := w.log.With("job_id", p.JobID)

	switch err := w.jobs.Start(ctx, p.JobID, w.cfg.ID, time.Now()); {
	case errors.Is(err, jobs.ErrFinal):
		// A retry of a job that already ended (its worker died after recording the
		// end): it is not run, nor reported, twice.
		log.Info("job already finished; not running it again")
		return nil
	case errors.Is(err, jobs.ErrNotFound):
		log.Error("job has no record; dropping it")
		return fmt.Errorf("job %s has no record: %w", p.JobID, asynq.SkipRetry)
	case err != nil:
		return err
	}
	if job, err := w.jobs.Get(ctx, p.JobID); err == nil && job.CancelRequested {
		h.finish(ctx, log, p.JobID, jobs.Outcome{Status: jobs.Canceled, Error: "canceled before it started"})
		return nil
	}

	jctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go h.watchCancel(jctx, p.JobID, cancel)

	log.Info("deployment started", "network", p.Network, "project", p.Project.String())
	started := time.Now()
	rep := &reporter{w: w, id: p.JobID, log: log}
	report, err := w.deployer.Run(jctx, p, rep, log)
	out := jobs.Outcome{Result: report.Result, Timings: report.Timings, Cache: report.Cache}
	switch {
	case err == nil:
		out.Status = jobs.Completed
		h.finish(ctx, log, p.JobID, out)
		log.Info("deployment completed", "contracts", len(report.Result.Contracts), "total_ms", report.Timings.Total)
		return nil
	case errors.Is(context.Cause(jctx), errCancelRequested):
		out.Status, out.Error = jobs.Canceled, "canceled by request"
		h.finish(ctx, log, p.JobID, out)
		log.Info("deployment canceled")
		return nil
	case w.stopping.Load() && ctx.Err() != nil:
		// The worker shuts down; asynq puts the task back in the queue.
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer rcancel()
		_ = w.jobs.Requeued(rctx, p.JobID)
		log.Info("deployment interrupted by shutdown; requeued")
		return err
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil && !deployment.IsFinal(err):
		// asynq's own deadline, which the steps' limits should always beat: a
		// timeout all the same, final like every other.
		limit := time.Duration(0)
		if dl, ok := ctx.Deadline(); ok {
			limit = dl.Sub(started).Round(time.Second)
		}
		err = &deployment.TimeoutError{Step: rep.step, Limit: limit}
		fallthrough
	case deployment.IsFinal(err):
		out.Status, out.Error = jobs.Failed, w.redact.String(err.Error())
		h.finish(ctx, log, p.JobID, out)
		log.Info("deployment failed", "error", out.Error)
		return fmt.Errorf("%s: %w", out.Error, asynq.SkipRetry)
	}
	msg := w.redact.String(err.Error())
	retried, _ := asynq.GetRetryCount(ctx)
	maxRetry, _ := asynq.GetMaxRetry(ctx)
	if retried >= maxRetry {
		out.Status, out.Error = jobs.Failed, "internal error: "+msg
		h.finish(ctx, log, p.JobID, out)
		log.Error("deployment failed; no retries left", "error", msg)
		return errors.New(msg)
	}
	log.Warn("deployment failed; will retry", "error", msg, "retry", retried+1, "max_retry", maxRetry)
	_ = w.jobs.SetStep(context.WithoutCancel(ctx), p.JobID, "retrying after: "+msg)
	return errors.New(msg)
}

// finish records the outcome; a record that already ended stays as it was.
func (h *deployHandler) finish(ctx context.Context, log *slog.Logger, id string, o jobs.Outcome) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := h.w.jobs.Finish(ctx, id, o, time.Now()); err != nil {
		log.Warn("could not record the outcome", "status", o.Status, "error", err)
	}
}

// watchCancel ends the job's context when the job's record says it was canceled.
func (h *deployHandler) watchCancel(ctx context.Context, id string, cancel context.CancelCauseFunc) {
	t := time.NewTicker(cancelPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if j, err := h.w.jobs.Get(ctx, id); err == nil && j.CancelRequested {
				cancel(errCancelRequested)
				return
			}
		}
	}
}

// reporter writes a running job's progress and output to its record.
type reporter struct {
	w   *Worker
	id  string
	log *slog.Logger
	// step is the last step reported; Run calls the reporter from its own goroutine.
	step string
}

func (r *reporter) Step(step string) {
	r.step = step
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.w.jobs.SetStep(ctx, r.id, step); err != nil && !errors.Is(err, jobs.ErrFinal) {
		r.log.Warn("could not record progress", "error", err)
	}
}

func (r *reporter) Container(id string, reused bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.w.jobs.SetContainer(ctx, r.id, id); err != nil && !errors.Is(err, jobs.ErrFinal) {
		r.log.Warn("could not record the container", "error", err)
	}
	r.log.Debug("job container", "container", id[:12], "reused", reused)
}

func (r *reporter) Output(p []byte) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.w.jobs.AppendLogs(ctx, r.id, p); err != nil {
		r.log.Warn("could not record output", "error", err)
	}
}
