package worker

import (
	"context"
	"fmt"

	"github.com/hibiken/asynq"

	"github.com/deployer-dev/deployer/jobs"
	"github.com/deployer-dev/deployer/metrics"
	"github.com/deployer-dev/deployer/tasks"
)

// deployHandler decodes a deployment task, hands it to the job runner with the
// deployment as its work, and tells asynq what the runner decided.
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
	retried, _ := asynq.GetRetryCount(ctx)
	maxRetry, _ := asynq.GetMaxRetry(ctx)
	attempt := jobs.Attempt{Retried: retried, MaxRetry: maxRetry, Stopping: w.stopping.Load}
	log.Info("deployment started", "network", p.Network, "project", p.Project.String(), "attempt", retried+1)
	var report jobs.Report
	verdict, err := w.runner.Run(ctx, p.JobID, attempt, func(ctx context.Context, rep jobs.Reporter) (jobs.Report, error) {
		r, err := w.deployer.Run(ctx, p, rep, log)
		report = r
		return r, err
	})
	w.metrics.Observe(p.Network, p.Framework, outcome(verdict, err, report), report)
	if verdict == jobs.Ended && err != nil {
		// Failed for good: archived, never retried.
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	// Retry and Requeue return the error: asynq retries the task, or, shutting
	// down, puts it back in the queue.
	return err
}

// outcome names how an attempt ended, for the metrics.
func outcome(v jobs.Verdict, err error, r jobs.Report) string {
	switch {
	case v == jobs.Retry:
		return metrics.Retried
	case v == jobs.Requeue:
		return metrics.Requeued
	case err != nil:
		return metrics.Failed
	case r.Result == nil && r.Timings.Total == 0:
		// Not run: the job had ended already, or was canceled before it started.
		return ""
	case r.Result == nil:
		// Ended without an error or a result: canceled.
		return metrics.Canceled
	}
	return metrics.Completed
}
