// Package fanout sends a task to every Docker engine that has a live worker (one
// worker per engine, on its own queue) and collects what each answered. Images,
// containers and chains live per engine, so cleanups and clears go this way.
package fanout

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/hibiken/asynq"

	"github.com/deployer-dev/deployer/internal/heartbeat"
)

// liveWithin is how recent a heartbeat must be for a worker to be sent work.
const liveWithin = 30 * time.Second

// Fanout dispatches to engines.
type Fanout struct {
	client    *asynq.Client
	inspector *asynq.Inspector
	beats     *heartbeat.Store
}

// New returns a Fanout.
func New(client *asynq.Client, inspector *asynq.Inspector, beats *heartbeat.Store) *Fanout {
	return &Fanout{client: client, inspector: inspector, beats: beats}
}

// Sent is a task sent to one engine.
type Sent struct {
	EngineID string `json:"engine_id"`
	WorkerID string `json:"worker_id"`
	TaskID   string `json:"task_id"`
	Queue    string `json:"queue"`
}

// Answer is an engine's answer, or why there is none.
type Answer struct {
	Sent
	Result json.RawMessage `json:"result,omitempty"`
	Error  string          `json:"error,omitempty"`
}

// Send enqueues the task once per engine with a live, healthy worker, on the queue of
// the worker that beat last.
func (f *Fanout) Send(ctx context.Context, task *asynq.Task, timeout time.Duration, opts ...asynq.Option) ([]Sent, error) {
	return f.send(ctx, task, timeout, true, opts)
}

// SendAll enqueues the task to every live, healthy worker: for work on what each
// worker holds itself (its pool of containers).
func (f *Fanout) SendAll(ctx context.Context, task *asynq.Task, timeout time.Duration, opts ...asynq.Option) ([]Sent, error) {
	return f.send(ctx, task, timeout, false, opts)
}

// send enqueues with no retry, the timeout, an hour's retention for the answer, and
// opts, which come last and win.
func (f *Fanout) send(ctx context.Context, task *asynq.Task, timeout time.Duration, perEngine bool, opts []asynq.Option) ([]Sent, error) {
	live, err := f.beats.Live(ctx, time.Now(), liveWithin)
	if err != nil {
		return nil, err
	}
	var targets []heartbeat.Worker
	best := map[string]int{}
	for _, w := range live {
		if !w.Healthy {
			continue
		}
		if i, ok := best[w.EngineID]; perEngine && ok {
			if w.LastSeen.After(targets[i].LastSeen) {
				targets[i] = w
			}
			continue
		}
		best[w.EngineID] = len(targets)
		targets = append(targets, w)
	}
	sort.Slice(targets, func(i, j int) bool {
		if targets[i].EngineID != targets[j].EngineID {
			return targets[i].EngineID < targets[j].EngineID
		}
		return targets[i].ID < targets[j].ID
	})
	var sent []Sent
	for _, w := range targets {
		all := append([]asynq.Option{asynq.Queue(w.Queue), asynq.MaxRetry(0), asynq.Timeout(timeout), asynq.Retention(time.Hour)}, opts...)
		info, err := f.client.EnqueueContext(ctx, task, all...)
		if err != nil {
			return sent, fmt.Errorf("send %s to worker %s: %w", task.Type(), w.ID, err)
		}
		sent = append(sent, Sent{EngineID: w.EngineID, WorkerID: w.ID, TaskID: info.ID, Queue: info.Queue})
	}
	return sent, nil
}

// Await waits up to limit for the answers of sent tasks. An engine whose worker did
// not answer in time is named in its Answer's error.
func (f *Fanout) Await(ctx context.Context, sent []Sent, limit time.Duration) []Answer {
	out := make([]Answer, len(sent))
	done := make([]bool, len(sent))
	for i, s := range sent {
		out[i] = Answer{Sent: s}
	}
	deadline := time.Now().Add(limit)
	for left := len(sent); left > 0; {
		for i, s := range sent {
			if done[i] {
				continue
			}
			info, err := f.inspector.GetTaskInfo(s.Queue, s.TaskID)
			if err != nil {
				continue
			}
			switch info.State {
			case asynq.TaskStateCompleted:
				out[i].Result = json.RawMessage(info.Result)
			case asynq.TaskStateArchived, asynq.TaskStateRetry:
				out[i].Error = info.LastErr
			default:
				continue
			}
			done[i] = true
			left--
		}
		if left == 0 || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return out
		case <-time.After(100 * time.Millisecond):
		}
	}
	for i := range out {
		if !done[i] {
			out[i].Error = fmt.Sprintf("worker %s of engine %s did not answer within %s", out[i].WorkerID, out[i].EngineID, limit)
		}
	}
	return out
}
