package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"github.com/deployer-dev/deployer/tasks"
)

// adminMux routes the work sent to this worker's engine.
func (w *Worker) adminMux() *asynq.ServeMux {
	mux := asynq.NewServeMux()
	mux.HandleFunc(tasks.TypeImageExpire, w.expireImages)
	mux.HandleFunc(tasks.TypeImageClear, w.clearImages)
	mux.HandleFunc(tasks.TypeContainerStats, w.containerStats)
	mux.HandleFunc(tasks.TypeContainerCleanup, w.containerCleanup)
	return mux
}

func (w *Worker) containerStats(ctx context.Context, t *asynq.Task) error {
	if _, err := tasks.DecodeMaintenance(t.Payload()); err != nil {
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	inv, err := w.inventory(ctx)
	if err != nil {
		return err
	}
	return write(t, inv)
}

func (w *Worker) containerCleanup(ctx context.Context, t *asynq.Task) error {
	if _, err := tasks.DecodeMaintenance(t.Payload()); err != nil {
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	rep := w.pool.Cleanup(ctx)
	w.log.Info("container cleanup", "task_id", t.ResultWriter().TaskID(), "idle", rep.Idle, "exited", rep.Exited,
		"orphans", rep.Orphans, "errors", rep.Errors)
	return write(t, rep)
}

// write sets a task's result, for the API to collect.
func write(t *asynq.Task, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = t.ResultWriter().Write(b)
	return err
}

func (w *Worker) expireImages(ctx context.Context, t *asynq.Task) error {
	p, err := tasks.DecodeMaintenance(t.Payload())
	if err != nil {
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	maxAge := w.cfg.ImageMaxAge
	if p.MaxAgeSeconds > 0 {
		maxAge = time.Duration(p.MaxAgeSeconds) * time.Second
	}
	rep, err := w.images.Expire(ctx, maxAge)
	return w.answer(t, "image expiry", rep, err, "max_age", maxAge)
}

func (w *Worker) clearImages(ctx context.Context, t *asynq.Task) error {
	if _, err := tasks.DecodeMaintenance(t.Payload()); err != nil {
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	rep, err := w.images.Clear(ctx)
	return w.answer(t, "image cache clear", rep, err)
}

// answer writes an engine's report as the task's result, for the API to collect.
func (w *Worker) answer(t *asynq.Task, what string, rep tasks.ImageReport, err error, attrs ...any) error {
	log := w.log.With(append([]any{"task_id", t.ResultWriter().TaskID(), "engine", w.eng.ID()}, attrs...)...)
	if err != nil {
		log.Error(what+" failed", "error", err)
		return err
	}
	log.Info(what, "removed", rep.Removed, "in_use", rep.InUse, "kept", rep.Kept, "adopted", rep.Adopted, "errors", rep.Errors)
	return write(t, rep)
}
