package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Final errors end a job without a retry: the user's (a bad request, a compile
// error, a reverted script) and timeouts. An error says it is final with a method
// Final() bool, so that the packages that make such errors need not know this one.
func IsFinal(err error) bool {
	var f interface{ Final() bool }
	return errors.As(err, &f) && f.Final()
}

// Report is what an attempt made and what it cost, as far as it got.
type Report struct {
	Result  *Result
	Timings Timings
	Cache   Cache
}

// Reporter hears of a running job's progress and writes it to the record.
type Reporter interface {
	// Step says what the job does now.
	Step(step string)
	// Output receives the job's output, already redacted.
	Output(p []byte)
	// Container says which container the job runs in.
	Container(id string, reused bool)
}

// Attempt is one run of a job's task, as its queue tells it.
type Attempt struct {
	// Retried is how many times the task ran before; MaxRetry how many retries it has.
	Retried, MaxRetry int
	// Stopping says the worker is shutting down: a job interrupted by that goes back
	// to its queue as it was.
	Stopping func() bool
}

// Verdict is what the queue does with the task after an attempt.
type Verdict int

// Verdicts.
const (
	// Ended: the job's record is final. The error, if any, says why it failed.
	Ended Verdict = iota
	// Retry: a failure of ours, with retries left; the record says it waits.
	Retry
	// Requeue: the worker stops; the task goes back to its queue untouched.
	Requeue
)

// Work runs an attempt of a job and reports to rep.
type Work func(ctx context.Context, rep Reporter) (Report, error)

// Runner runs attempts of jobs on one worker: it marks a job running, watches for a
// cancel request while the work runs, decides from what the work returned whether
// the job completed, failed, was canceled, waits for a retry or goes back to its
// queue, and records that. It knows nothing of the queue or of Docker.
type Runner struct {
	store  *Store
	worker string
	// redact removes secrets from messages before they are recorded.
	redact     func(string) string
	log        *slog.Logger
	cancelPoll time.Duration
	// recordFor bounds how long an outcome is tried again while Redis is out of
	// reach; recordRetry is the first wait between tries.
	recordFor, recordRetry time.Duration
}

// NewRunner returns the runner of a worker.
func NewRunner(store *Store, worker string, redact func(string) string, log *slog.Logger) *Runner {
	return &Runner{store: store, worker: worker, redact: redact, log: log, cancelPoll: 250 * time.Millisecond,
		recordFor: 10 * time.Minute, recordRetry: 100 * time.Millisecond}
}

// errCancelRequested ends a job's context when its user canceled it.
var errCancelRequested = errors.New("canceled by request")

// Run runs one attempt of the job id. ctx is the task's: it ends at the queue's
// deadline or when the worker shuts down.
func (r *Runner) Run(ctx context.Context, id string, a Attempt, work Work) (Verdict, error) {
	log := r.log.With("job_id", id)
	switch err := r.store.Start(ctx, id, r.worker, time.Now()); {
	case errors.Is(err, ErrFinal):
		// A retry of a job that already ended (its worker died after recording the
		// end): it is not run, nor reported, twice.
		log.Info("job already finished; not running it again")
		return Ended, nil
	case errors.Is(err, ErrNotFound):
		log.Error("job has no record; dropping it")
		return Ended, fmt.Errorf("job %s has no record", id)
	case err != nil:
		return Retry, err
	}
	if j, err := r.store.Get(ctx, id); err == nil && j.CancelRequested {
		r.finish(ctx, log, id, Outcome{Status: Canceled, Error: "canceled before it started"})
		return Ended, nil
	}

	jctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go r.watchCancel(jctx, id, cancel)
	started := time.Now()
	rec := &recorder{store: r.store, id: id, log: log}
	report, err := work(jctx, rec)
	// The output before the end: a follower sees the end last.
	rec.flush()
	out := Outcome{Result: report.Result, Timings: report.Timings, Cache: report.Cache}
	switch {
	case err == nil:
		out.Status = Completed
		r.finish(ctx, log, id, out)
		log.Info("deployment completed", "total_ms", report.Timings.Total)
		return Ended, nil
	case errors.Is(context.Cause(jctx), errCancelRequested):
		out.Status, out.Error = Canceled, "canceled by request"
		r.finish(ctx, log, id, out)
		log.Info("deployment canceled")
		return Ended, nil
	case a.Stopping != nil && a.Stopping() && ctx.Err() != nil:
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer rcancel()
		_ = r.store.Requeued(rctx, id)
		log.Info("deployment interrupted by shutdown; requeued")
		return Requeue, err
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil && !IsFinal(err):
		// The queue's own deadline, which the steps' limits should always beat: a
		// timeout all the same, final like every other.
		limit := time.Duration(0)
		if dl, ok := ctx.Deadline(); ok {
			limit = dl.Sub(started).Round(time.Second)
		}
		err = fmt.Errorf("the deployment timed out while %s (limit %s)", rec.step, limit)
		fallthrough
	case IsFinal(err):
		out.Status, out.Error = Failed, r.message(err)
		r.finish(ctx, log, id, out)
		log.Info("deployment failed", "error", out.Error)
		return Ended, errors.New(out.Error)
	}
	msg := r.message(err)
	if a.Retried >= a.MaxRetry {
		out.Status, out.Error = Failed, "internal error: "+msg
		r.finish(ctx, log, id, out)
		log.Error("deployment failed; no retries left", "error", msg)
		return Ended, errors.New(out.Error)
	}
	log.Warn("deployment failed; will retry", "error", msg, "retry", a.Retried+1, "max_retry", a.MaxRetry)
	_ = r.store.SetStep(context.WithoutCancel(ctx), id, "retrying after: "+msg)
	return Retry, errors.New(msg)
}

// maxMessage bounds a job's error as recorded: what users read, and what Redis
// keeps per job. Messages quote the project's output at times.
const maxMessage = 4 << 10

// message is an error as a job records it: redacted, then cut to maxMessage.
func (r *Runner) message(err error) string {
	msg := r.redact(err.Error())
	if len(msg) > maxMessage {
		msg = strings.ToValidUTF8(msg[:maxMessage], "") + "… [message cut]"
	}
	return msg
}

// finish records the outcome; a record that already ended stays as it was. The
// outcome is tried again while Redis is out of reach (the work is done, and a job
// whose end is not recorded would show running for ever, or run again), up to
// recordFor, backing off to a few seconds between tries.
func (r *Runner) finish(ctx context.Context, log *slog.Logger, id string, o Outcome) {
	at := time.Now()
	deadline := at.Add(r.recordFor)
	wait := r.recordRetry
	for tries := 1; ; tries++ {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		err := r.store.Finish(fctx, id, o, at)
		cancel()
		switch {
		case err == nil:
			if tries > 1 {
				log.Info("outcome recorded", "status", o.Status, "tries", tries)
			}
			return
		case errors.Is(err, ErrFinal), errors.Is(err, ErrNotFound):
			log.Warn("outcome not recorded", "status", o.Status, "error", err)
			return
		case time.Now().Add(wait).After(deadline):
			log.Error("could not record the outcome; giving up", "status", o.Status, "tries", tries, "error", err)
			return
		}
		if tries == 1 {
			log.Warn("could not record the outcome; trying again until Redis answers", "status", o.Status, "error", err)
		}
		time.Sleep(wait)
		wait = min(wait*2, 5*time.Second)
	}
}

// watchCancel ends the job's context when its record says it was canceled.
func (r *Runner) watchCancel(ctx context.Context, id string, cancel context.CancelCauseFunc) {
	t := time.NewTicker(r.cancelPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if j, err := r.store.Get(ctx, id); err == nil && j.CancelRequested {
				cancel(errCancelRequested)
				return
			}
		}
	}
}

// recorder writes a running job's progress and output to its record. The writes go
// in order through one goroutine of the recorder's: the job never waits on Redis to
// say where it is. Output is gathered for up to flushEvery (or flushBytes) and
// written at once: a line at a time, a chatty script would queue a write per line.
// A step queues what was gathered first, so that the record's events keep their
// order; flush waits for every write queued.
type recorder struct {
	store *Store
	id    string
	log   *slog.Logger
	// step is the last step reported; the work calls the recorder from the
	// attempt's own goroutine.
	step string

	// mu guards the rest.
	mu    sync.Mutex
	buf   []byte
	timer *time.Timer
	queue []recordWrite
	// done is closed when the writer emptied the queue; nil while none runs.
	done chan struct{}
}

// recordWrite is one write of the record: a step, the container, or output.
type recordWrite struct {
	step, container string
	logs            []byte
}

// How long and how much output the recorder gathers before it writes.
const (
	flushEvery = 50 * time.Millisecond
	flushBytes = 32 << 10
)

func (r *recorder) Step(step string) {
	r.step = step
	r.enqueue(recordWrite{step: step})
}

func (r *recorder) Container(id string, reused bool) {
	r.enqueue(recordWrite{container: id})
	r.log.Debug("job container", "container", id[:min(12, len(id))], "reused", reused)
}

func (r *recorder) Output(p []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf = append(r.buf, p...)
	if len(r.buf) >= flushBytes {
		r.queueOutputLocked()
		return
	}
	if r.timer == nil {
		r.timer = time.AfterFunc(flushEvery, func() {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.queueOutputLocked()
		})
	}
}

// enqueue queues a write after the output gathered so far.
func (r *recorder) enqueue(w recordWrite) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.queueOutputLocked()
	r.queue = append(r.queue, w)
	r.startLocked()
}

// queueOutputLocked queues the output gathered; r.mu is held.
func (r *recorder) queueOutputLocked() {
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
	if len(r.buf) == 0 {
		return
	}
	r.queue = append(r.queue, recordWrite{logs: r.buf})
	r.buf = nil
	r.startLocked()
}

// startLocked starts the writer unless it runs; r.mu is held.
func (r *recorder) startLocked() {
	if r.done != nil {
		return
	}
	r.done = make(chan struct{})
	go r.write(r.done)
}

// write writes the queue, in order, until it is empty.
func (r *recorder) write(done chan struct{}) {
	for {
		r.mu.Lock()
		if len(r.queue) == 0 {
			r.done = nil
			r.mu.Unlock()
			close(done)
			return
		}
		w := r.queue[0]
		r.queue = r.queue[1:]
		r.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var err error
		switch {
		case w.step != "":
			err = r.store.SetStep(ctx, r.id, w.step)
		case w.container != "":
			err = r.store.SetContainer(ctx, r.id, w.container)
		default:
			err = r.store.AppendLogs(ctx, r.id, w.logs)
		}
		cancel()
		if err != nil && !errors.Is(err, ErrFinal) {
			r.log.Warn("could not record the job's progress", "error", err)
		}
	}
}

// flush queues the output gathered and waits until every queued write is done.
func (r *recorder) flush() {
	r.mu.Lock()
	r.queueOutputLocked()
	done := r.done
	r.mu.Unlock()
	if done != nil {
		<-done
	}
}
