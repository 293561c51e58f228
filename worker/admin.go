package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"

	"github.com/deployer-dev/deployer/tasks"
)

// adminMux routes the maintenance and stats work sent to this worker. Each task
// decodes a versioned payload, does one thing, and writes its report as the task's
// result for the API to collect.
func (w *Worker) adminMux() *asynq.ServeMux {
	mux := asynq.NewServeMux()
	// level: stats are asked for often (the dashboard) and logged at debug.
	handle := func(typ, what string, level slog.Level, run func(context.Context, tasks.Maintenance) (any, error)) {
		mux.HandleFunc(typ, func(ctx context.Context, t *asynq.Task) error {
			p, err := tasks.DecodeMaintenance(t.Payload())
			if err != nil {
				return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
			}
			log := w.log.With("task_id", t.ResultWriter().TaskID(), "engine", w.eng.ID())
			result, err := run(ctx, p)
			if err != nil {
				log.Error(what+" failed", "error", err)
				return err
			}
			b, err := json.Marshal(result)
			if err != nil {
				return err
			}
			log.Log(ctx, level, what, "report", string(b))
			_, err = t.ResultWriter().Write(b)
			return err
		})
	}
	handle(tasks.TypeImageExpire, "image expiry", slog.LevelInfo, func(ctx context.Context, p tasks.Maintenance) (any, error) {
		maxAge := w.cfg.ImageMaxAge
		if p.MaxAgeSeconds > 0 {
			maxAge = time.Duration(p.MaxAgeSeconds) * time.Second
		}
		return w.images.Expire(ctx, maxAge)
	})
	handle(tasks.TypeImageClear, "image cache clear", slog.LevelInfo, func(ctx context.Context, _ tasks.Maintenance) (any, error) {
		return w.images.Clear(ctx)
	})
	handle(tasks.TypeCompileExpire, "compile cache expiry", slog.LevelInfo, func(ctx context.Context, _ tasks.Maintenance) (any, error) {
		return w.compiles.Expire(ctx)
	})
	handle(tasks.TypeCompileClear, "compile cache clear", slog.LevelInfo, func(ctx context.Context, _ tasks.Maintenance) (any, error) {
		return w.compiles.Clear(ctx)
	})
	handle(tasks.TypeContainerStats, "container stats", slog.LevelDebug, func(ctx context.Context, _ tasks.Maintenance) (any, error) {
		return w.inventory(ctx)
	})
	handle(tasks.TypeContainerCleanup, "container cleanup", slog.LevelInfo, func(ctx context.Context, _ tasks.Maintenance) (any, error) {
		return w.pool.Cleanup(ctx), nil
	})
	handle(tasks.TypePoolSweep, "pool sweep", slog.LevelInfo, func(ctx context.Context, _ tasks.Maintenance) (any, error) {
		return w.pool.Sweep(ctx), nil
	})
	handle(tasks.TypeMaintenanceRun, "scheduled maintenance", slog.LevelInfo, w.runMaintenance)
	return mux
}

// runMaintenance sends a scheduled run's work to every engine (images live per
// engine) or every worker (artifact stores and pools are each worker's).
func (w *Worker) runMaintenance(ctx context.Context, p tasks.Maintenance) (any, error) {
	send, typ := w.fanout.SendAll, ""
	switch p.Kind {
	case tasks.MaintenanceImageExpiry:
		send, typ = w.fanout.Send, tasks.TypeImageExpire
	case tasks.MaintenanceCompileExpiry:
		typ = tasks.TypeCompileExpire
	case tasks.MaintenancePoolSweep:
		typ = tasks.TypePoolSweep
	default:
		return nil, fmt.Errorf("unknown maintenance %q: %w", p.Kind, asynq.SkipRetry)
	}
	task, err := tasks.NewMaintenance(typ, tasks.Maintenance{RequestedAt: p.RequestedAt})
	if err != nil {
		return nil, err
	}
	return send(ctx, task, 10*time.Minute)
}
