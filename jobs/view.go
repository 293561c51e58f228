package jobs

import (
	"context"
	"errors"
	"time"
)

// TaskState is where the queue holds a job's task, as far as a job's status needs it.
type TaskState int

// Task states.
const (
	// TaskUnknown: the queue does not know the task (it finished and was dropped, or
	// the queue cannot be read).
	TaskUnknown TaskState = iota
	// TaskWaiting: queued or scheduled.
	TaskWaiting
	// TaskRunning: a worker holds it, or it waits for a retry.
	TaskRunning
	// TaskArchived: it ran out of retries, or a worker refused it.
	TaskArchived
)

// Effective is the job's status and error as a user sees them. The record is the
// truth once the job ended; before that, the queue knows whether it waits, runs or
// awaits a retry, and an archived task whose record never heard of it failed.
func (j Job) Effective(task TaskState, lastErr string) (Status, string) {
	if j.Status.Final() {
		return j.Status, j.Error
	}
	switch task {
	case TaskWaiting:
		return Queued, j.Error
	case TaskRunning:
		return Running, j.Error
	case TaskArchived:
		if j.Error != "" {
			return Failed, j.Error
		}
		return Failed, "the job failed: " + lastErr
	}
	return j.Status, j.Error
}

// Dequeuer takes a job's task out of its queue unless a worker runs it.
type Dequeuer interface {
	// Dequeue reports whether it removed the task.
	Dequeue(ctx context.Context, queue, id string) (bool, error)
}

// Cancel asks for the job's end. A task still queued is taken out and the job ends
// canceled here; a running one is ended by its worker, which watches the record, and
// Cancel waits up to wait for that. It returns the record as it then is, ErrFinal if
// the job had already ended.
func (s *Store) Cancel(ctx context.Context, j Job, q Dequeuer, wait time.Duration) (Job, error) {
	if j.Status.Final() {
		return j, ErrFinal
	}
	if err := s.RequestCancel(ctx, j.ID); err != nil {
		return j, err
	}
	if removed, err := q.Dequeue(ctx, j.Queue, j.ID); err == nil && removed {
		o := Outcome{Status: Canceled, Error: "canceled before it started"}
		if err := s.Finish(ctx, j.ID, o, time.Now()); err != nil && !errors.Is(err, ErrFinal) {
			return j, err
		}
	}
	deadline := time.Now().Add(wait)
	for {
		j, err := s.Get(ctx, j.ID)
		if err != nil || j.Status.Final() || time.Now().After(deadline) {
			return j, err
		}
		select {
		case <-ctx.Done():
			return j, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
