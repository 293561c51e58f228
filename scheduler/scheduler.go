// Package scheduler enqueues periodic maintenance on cron specs. Every running
// scheduler enqueues (asynq has no leader election), so each periodic task is made
// safe to enqueue twice.
package scheduler

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/hibiken/asynq"

	"github.com/deployer-dev/deployer/tasks"
)

// Entry is a periodic task.
type Entry struct {
	Name string
	Spec string
	Task *asynq.Task
	Opts []asynq.Option
}

// Run registers the entries and enqueues them on their schedule until ctx ends.
func Run(ctx context.Context, redisOpt asynq.RedisConnOpt, entries []Entry, log *slog.Logger) error {
	if len(entries) == 0 {
		log.Info("scheduler has no periodic tasks configured")
		<-ctx.Done()
		return nil
	}
	s := asynq.NewScheduler(redisOpt, &asynq.SchedulerOpts{
		Logger:   tasks.Logger(log),
		LogLevel: asynq.WarnLevel,
	})
	for _, e := range entries {
		if _, err := s.Register(e.Spec, e.Task, e.Opts...); err != nil {
			return fmt.Errorf("scheduler: entry %s (%q): %w", e.Name, e.Spec, err)
		}
		log.Info("scheduled", "entry", e.Name, "spec", e.Spec)
	}
	if err := s.Start(); err != nil {
		return fmt.Errorf("scheduler: %w", err)
	}
	<-ctx.Done()
	s.Shutdown()
	return nil
}
