// Package scheduler enqueues the periodic maintenance on cron specs: image expiry,
// compile cache expiry, and the idle pool sweep. Each run is one task on the
// installation's maintenance queue, which a worker turns into work for every engine
// (or every worker) that is alive.
//
// asynq has no leader election, and operators run more than one scheduler for
// availability: every scheduler enqueues. A run's task id names its period (the fire
// time), so the second scheduler to enqueue a period's run is refused by asynq, and
// the run happens once. Finished runs are kept for a period, so that a late scheduler
// is still refused; a failed run is archived under its own period's id and blocks
// nothing after it.
package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"
	"github.com/robfig/cron/v3"

	"github.com/deployer-dev/deployer/tasks"
)

// Entry is a periodic maintenance run.
type Entry struct {
	// Kind is the maintenance to run (tasks.MaintenanceImageExpiry, ...).
	Kind string
	// Spec is a cron spec ("0 * * * *") or a descriptor ("@hourly", "@every 10m").
	Spec string
}

// Scheduler enqueues the entries' runs.
type Scheduler struct {
	client  *asynq.Client
	ns      tasks.Namespace
	entries []Entry
	log     *slog.Logger
}

// New returns a scheduler of the entries; entries with an empty spec are off.
func New(client *asynq.Client, ns tasks.Namespace, entries []Entry, log *slog.Logger) *Scheduler {
	var on []Entry
	for _, e := range entries {
		if e.Spec != "" {
			on = append(on, e)
		}
	}
	return &Scheduler{client: client, ns: ns, entries: on, log: log}
}

// Run enqueues on schedule until ctx ends.
func (s *Scheduler) Run(ctx context.Context) error {
	if len(s.entries) == 0 {
		s.log.Info("scheduler has no periodic tasks configured")
		<-ctx.Done()
		return nil
	}
	c := cron.New(cron.WithLocation(time.UTC))
	for _, e := range s.entries {
		sched, err := cron.ParseStandard(e.Spec)
		if err != nil {
			return fmt.Errorf("scheduler: %s: spec %q: %w", e.Kind, e.Spec, err)
		}
		c.Schedule(sched, cron.FuncJob(func() { s.fire(ctx, e, sched, time.Now()) }))
		s.log.Info("scheduled", "maintenance", e.Kind, "spec", e.Spec)
	}
	c.Start()
	<-ctx.Done()
	<-c.Stop().Done()
	return nil
}

// fire enqueues one run, once per period whichever scheduler gets there first.
func (s *Scheduler) fire(ctx context.Context, e Entry, sched cron.Schedule, now time.Time) {
	slot, period := Period(sched, now)
	id := tasks.MaintenanceRunID(e.Kind, slot.Unix())
	task, err := tasks.NewMaintenance(tasks.TypeMaintenanceRun, tasks.Maintenance{Kind: e.Kind, RequestedAt: now})
	if err != nil {
		s.log.Error("maintenance run not enqueued", "maintenance", e.Kind, "error", err)
		return
	}
	_, err = s.client.EnqueueContext(ctx, task, asynq.Queue(s.ns.MaintenanceQueue()), asynq.TaskID(id),
		asynq.MaxRetry(2), asynq.Timeout(10*time.Minute), asynq.Retention(period))
	switch {
	case errors.Is(err, asynq.ErrTaskIDConflict):
		s.log.Debug("maintenance run already enqueued by another scheduler", "maintenance", e.Kind, "period", slot)
	case err != nil:
		s.log.Error("maintenance run not enqueued", "maintenance", e.Kind, "error", err)
	default:
		s.log.Info("maintenance run enqueued", "maintenance", e.Kind, "period", slot, "task_id", id)
	}
}

// Period names the period a fire at now belongs to: its start (the same for every
// scheduler firing on the spec) and length.
func Period(sched cron.Schedule, now time.Time) (time.Time, time.Duration) {
	if every, ok := sched.(cron.ConstantDelaySchedule); ok {
		// Schedulers started at different times fire @every at different offsets;
		// windows aligned on the clock give them the same names.
		return now.Truncate(every.Delay), every.Delay
	}
	// Standard specs fire on whole minutes: a fire a few milliseconds late belongs
	// to the minute it was meant for.
	start := now.Truncate(time.Minute)
	next := sched.Next(start)
	return start, max(sched.Next(next).Sub(next), time.Minute)
}
