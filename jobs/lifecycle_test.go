package jobs

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// finalErr is a failure a retry cannot fix, as deployment's errors say it.
type finalErr string

func (e finalErr) Error() string { return string(e) }
func (e finalErr) Final() bool   { return true }

func newRunner(t *testing.T) (*Runner, *Store) {
	t.Helper()
	s, _ := newStore(t)
	r := NewRunner(s, "w1", func(m string) string { return strings.ReplaceAll(m, "sekret", "***") }, quiet)
	r.cancelPoll = 5 * time.Millisecond
	return r, s
}

func create(t *testing.T, s *Store, id string) {
	t.Helper()
	if err := s.Create(context.Background(), Job{ID: id, Network: "local", Queue: "q", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, s *Store, id string) Job {
	t.Helper()
	j, err := s.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func TestRunnerRecordsWhatTheWorkDid(t *testing.T) {
	r, s := newRunner(t)
	create(t, s, "j1")
	res := &Result{ChainID: 1, Contracts: []Contract{{Name: "C"}}}
	v, err := r.Run(context.Background(), "j1", Attempt{MaxRetry: 3}, func(ctx context.Context, rep Reporter) (Report, error) {
		rep.Step("compiling")
		rep.Output([]byte("hello\n"))
		rep.Container("c0ffee", false)
		// The record says so soon; the work does not wait for it.
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			j := get(t, s, "j1")
			if j.Status == Running && j.Step == "compiling" && j.ContainerID == "c0ffee" && j.Worker == "w1" {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("while running: %+v", j)
				break
			}
		}
		return Report{Result: res, Timings: Timings{Total: 7}}, nil
	})
	if v != Ended || err != nil {
		t.Fatalf("verdict %v, %v", v, err)
	}
	j := get(t, s, "j1")
	if j.Status != Completed || j.Result == nil || j.Timings.Total != 7 || j.Attempts != 1 {
		t.Errorf("completed job %+v", j)
	}
	if logs, _ := s.Logs(context.Background(), "j1"); string(logs) != "hello\n" {
		t.Errorf("logs %q", logs)
	}
}

func TestRunnerFailsFinalErrorsOnceRedacted(t *testing.T) {
	r, s := newRunner(t)
	create(t, s, "j1")
	v, err := r.Run(context.Background(), "j1", Attempt{MaxRetry: 3}, func(context.Context, Reporter) (Report, error) {
		return Report{}, finalErr("compile error at src/A.sol:3 (sekret)")
	})
	if v != Ended || err == nil {
		t.Fatalf("verdict %v, %v: a final error ends the job and says why", v, err)
	}
	j := get(t, s, "j1")
	if j.Status != Failed || j.Error != "compile error at src/A.sol:3 (***)" {
		t.Errorf("failed job %+v", j)
	}
}

func TestRunnerRetriesOurFailuresThenGivesUp(t *testing.T) {
	r, s := newRunner(t)
	create(t, s, "j1")
	engineDown := func(context.Context, Reporter) (Report, error) {
		return Report{}, errors.New("docker engine unavailable")
	}
	v, _ := r.Run(context.Background(), "j1", Attempt{Retried: 0, MaxRetry: 1}, engineDown)
	if j := get(t, s, "j1"); v != Retry || j.Status != Running || !strings.HasPrefix(j.Step, "retrying after: docker engine unavailable") {
		t.Fatalf("first failure: verdict %v, job %+v", v, j)
	}
	v, err := r.Run(context.Background(), "j1", Attempt{Retried: 1, MaxRetry: 1}, engineDown)
	j := get(t, s, "j1")
	if v != Ended || err == nil || j.Status != Failed || j.Error != "internal error: docker engine unavailable" || j.Attempts != 2 {
		t.Errorf("last failure: verdict %v, %v, job %+v", v, err, j)
	}
}

func TestRunnerCancelsOnRequest(t *testing.T) {
	r, s := newRunner(t)
	create(t, s, "j1")
	v, err := r.Run(context.Background(), "j1", Attempt{MaxRetry: 3}, func(ctx context.Context, _ Reporter) (Report, error) {
		if err := s.RequestCancel(context.Background(), "j1"); err != nil {
			t.Error(err)
		}
		<-ctx.Done()
		return Report{}, ctx.Err()
	})
	if j := get(t, s, "j1"); v != Ended || err != nil || j.Status != Canceled {
		t.Errorf("verdict %v, %v, job %+v", v, err, j)
	}
	// Canceled before a worker took it: the work never runs.
	create(t, s, "j2")
	if err := s.RequestCancel(context.Background(), "j2"); err != nil {
		t.Fatal(err)
	}
	var ran atomic.Bool
	r.Run(context.Background(), "j2", Attempt{}, func(context.Context, Reporter) (Report, error) {
		ran.Store(true)
		return Report{}, nil
	})
	if j := get(t, s, "j2"); ran.Load() || j.Status != Canceled || j.Error != "canceled before it started" {
		t.Errorf("ran %t, job %+v", ran.Load(), j)
	}
}

func TestRunnerRequeuesOnShutdown(t *testing.T) {
	r, s := newRunner(t)
	create(t, s, "j1")
	ctx, stop := context.WithCancel(context.Background())
	v, _ := r.Run(ctx, "j1", Attempt{MaxRetry: 3, Stopping: func() bool { return true }}, func(ctx context.Context, _ Reporter) (Report, error) {
		stop()
		<-ctx.Done()
		return Report{}, ctx.Err()
	})
	if j := get(t, s, "j1"); v != Requeue || j.Status != Queued {
		t.Errorf("verdict %v, job %+v", v, j)
	}
}

// expiring is a context whose deadline passes when the test says, not by the clock.
type expiring struct {
	context.Context
	done chan struct{}
}

func (e *expiring) Done() <-chan struct{} { return e.done }
func (e *expiring) Deadline() (time.Time, bool) {
	return time.Now(), true
}
func (e *expiring) Err() error {
	select {
	case <-e.done:
		return context.DeadlineExceeded
	default:
		return nil
	}
}

// The queue's deadline is a timeout like every other: final, naming the step.
func TestRunnerQueueDeadlineIsFinal(t *testing.T) {
	r, s := newRunner(t)
	create(t, s, "j1")
	queue := &expiring{Context: context.Background(), done: make(chan struct{})}
	v, err := r.Run(queue, "j1", Attempt{MaxRetry: 3}, func(ctx context.Context, rep Reporter) (Report, error) {
		rep.Step("starting chain local")
		close(queue.done)
		<-ctx.Done()
		return Report{}, ctx.Err()
	})
	j := get(t, s, "j1")
	if v != Ended || err == nil || j.Status != Failed || !strings.Contains(j.Error, "timed out while starting chain local") {
		t.Errorf("verdict %v, %v, job %+v", v, err, j)
	}
}

// A retry of a job whose worker died after recording its end does not run again.
func TestRunnerDoesNotRunAnEndedJob(t *testing.T) {
	r, s := newRunner(t)
	create(t, s, "j1")
	if err := s.Finish(context.Background(), "j1", Outcome{Status: Completed}, time.Now()); err != nil {
		t.Fatal(err)
	}
	var ran atomic.Bool
	v, err := r.Run(context.Background(), "j1", Attempt{}, func(context.Context, Reporter) (Report, error) {
		ran.Store(true)
		return Report{}, nil
	})
	if v != Ended || err != nil || ran.Load() {
		t.Errorf("verdict %v, %v, ran %t", v, err, ran.Load())
	}
	if v, err := r.Run(context.Background(), "nope", Attempt{}, nil); v != Ended || err == nil {
		t.Errorf("a job without a record: verdict %v, %v", v, err)
	}
}

func TestEffectiveStatus(t *testing.T) {
	queued := Job{Status: Queued}
	for _, tt := range []struct {
		job     Job
		task    TaskState
		lastErr string
		want    Status
		wantErr string
	}{
		{queued, TaskWaiting, "", Queued, ""},
		{queued, TaskRunning, "", Running, ""},
		{queued, TaskArchived, "worker refused it", Failed, "the job failed: worker refused it"},
		{queued, TaskUnknown, "", Queued, ""},
		{Job{Status: Running, Error: ""}, TaskWaiting, "", Queued, ""},
		{Job{Status: Failed, Error: "compile error"}, TaskRunning, "", Failed, "compile error"},
		{Job{Status: Completed}, TaskArchived, "x", Completed, ""},
	} {
		if got, gotErr := tt.job.Effective(tt.task, tt.lastErr); got != tt.want || gotErr != tt.wantErr {
			t.Errorf("%s with task %d: %s %q, want %s %q", tt.job.Status, tt.task, got, gotErr, tt.want, tt.wantErr)
		}
	}
}

type fakeQueue struct{ holds bool }

func (q *fakeQueue) Dequeue(context.Context, string, string) (bool, error) {
	removed := q.holds
	q.holds = false
	return removed, nil
}

func TestCancel(t *testing.T) {
	_, s := newRunner(t)
	ctx := context.Background()
	// Still queued: taken out of the queue and ended here.
	create(t, s, "j1")
	j, err := s.Cancel(ctx, get(t, s, "j1"), &fakeQueue{holds: true}, time.Second)
	if err != nil || j.Status != Canceled || j.Error != "canceled before it started" {
		t.Errorf("queued job: %+v, %v", j, err)
	}
	// Running: flagged for its worker; Cancel waits, then answers as it is.
	create(t, s, "j2")
	if err := s.Start(ctx, "j2", "w1", time.Now()); err != nil {
		t.Fatal(err)
	}
	j, err = s.Cancel(ctx, get(t, s, "j2"), &fakeQueue{}, 20*time.Millisecond)
	if err != nil || j.Status != Running || !j.CancelRequested {
		t.Errorf("running job: %+v, %v", j, err)
	}
	// Ended: refused.
	if _, err := s.Cancel(ctx, get(t, s, "j1"), &fakeQueue{}, time.Second); !errors.Is(err, ErrFinal) {
		t.Errorf("ended job: %v", err)
	}
}

// An error quoting megabytes of a project's output is recorded cut, after the
// secrets in all of it were masked.
func TestRunnerCutsHugeMessages(t *testing.T) {
	r, s := newRunner(t)
	create(t, s, "j1")
	huge := "the config failed: " + strings.Repeat("w", 8<<20) + " sekret"
	_, _ = r.Run(context.Background(), "j1", Attempt{MaxRetry: 3}, func(context.Context, Reporter) (Report, error) {
		return Report{}, finalErr(strings.Repeat("sekret ", 1000) + huge)
	})
	j := get(t, s, "j1")
	if j.Status != Failed || len(j.Error) > maxMessage+100 || !strings.HasSuffix(j.Error, "[message cut]") {
		t.Fatalf("recorded %s with an error of %d bytes", j.Status, len(j.Error))
	}
	if strings.Contains(j.Error, "sekret") {
		t.Error("a secret survived the cut")
	}
}

// A job that ends while Redis is out of reach has its end recorded once Redis is
// back: it never stays running.
func TestRunnerRecordsTheEndAfterAnOutage(t *testing.T) {
	s, mr := newStore(t)
	r := NewRunner(s, "w1", func(m string) string { return m }, quiet)
	r.recordRetry = 10 * time.Millisecond
	create(t, s, "j1")
	back := make(chan struct{})
	v, err := r.Run(context.Background(), "j1", Attempt{MaxRetry: 3}, func(ctx context.Context, rep Reporter) (Report, error) {
		mr.Close()
		go func() {
			defer close(back)
			time.Sleep(300 * time.Millisecond)
			if err := mr.Restart(); err != nil {
				t.Error(err)
			}
		}()
		return Report{Result: &Result{ChainID: 1}}, nil
	})
	<-back
	if v != Ended || err != nil {
		t.Fatalf("verdict %v, %v", v, err)
	}
	if j := get(t, s, "j1"); j.Status != Completed || j.Result == nil {
		t.Errorf("after the outage the job is %s (%+v)", j.Status, j.Result)
	}
}

// Output is gathered and written in few writes, yet a follower reads the job's
// events in the order they happened: output before the step that follows it, and
// the end last.
func TestRunnerEventsKeepTheirOrder(t *testing.T) {
	r, s := newRunner(t)
	create(t, s, "j1")
	ctx := context.Background()
	_, err := r.Run(ctx, "j1", Attempt{MaxRetry: 3}, func(ctx context.Context, rep Reporter) (Report, error) {
		rep.Step("compiling")
		for i := range 100 {
			rep.Output([]byte(strings.Repeat("x", i%7) + "\n"))
		}
		rep.Step("deploying")
		rep.Output([]byte("sent\n"))
		return Report{Result: &Result{}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	evs, err := s.Events(ctx, "j1", "", 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	logs := 0
	var text strings.Builder
	for _, ev := range evs {
		if ev.Type == EventLog {
			logs++
			text.WriteString(ev.Data)
			if len(got) == 0 || got[len(got)-1] != "log" {
				got = append(got, "log")
			}
			continue
		}
		got = append(got, ev.Type+" "+ev.Data)
	}
	want := "step starting|step compiling|log|step deploying|log|end completed"
	if strings.Join(got, "|") != want {
		t.Errorf("events %q, want %q", strings.Join(got, "|"), want)
	}
	if logs > 10 {
		t.Errorf("101 lines of output took %d writes", logs)
	}
	if stored, _ := s.Logs(ctx, "j1"); text.String() != string(stored) {
		t.Errorf("the events' output differs from the log")
	}
	// Resuming after an event gives what followed it.
	after, err := s.Events(ctx, "j1", evs[len(evs)-2].ID, 0, 10)
	if err != nil || len(after) != 1 || after[0].Type != EventEnd {
		t.Errorf("after the last log event: %+v (%v)", after, err)
	}
}
