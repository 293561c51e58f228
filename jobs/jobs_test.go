package jobs

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/deployer-dev/deployer/tasks"
)

func newStore(t *testing.T) (*Store, *miniredis.Miniredis) {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	return NewStore(rdb, tasks.Namespace{Instance: "unit"}, 48*time.Hour), mr
}

func TestLifecycle(t *testing.T) {
	s, mr := newStore(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	if err := s.Create(ctx, Job{ID: "j1", Framework: "foundry", Network: "local", Queue: "q", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if ttl := mr.TTL("deployer:unit:job:j1"); ttl != 48*time.Hour {
		t.Errorf("record TTL %v", ttl)
	}
	if err := s.Start(ctx, "j1", "w1", now); err != nil {
		t.Fatal(err)
	}
	if err := s.SetStep(ctx, "j1", "compiling"); err != nil {
		t.Fatal(err)
	}
	j, err := s.Get(ctx, "j1")
	if err != nil {
		t.Fatal(err)
	}
	if j.Status != Running || j.Worker != "w1" || j.Step != "compiling" || j.Attempts != 1 || !j.CreatedAt.Equal(now) {
		t.Fatalf("running job %+v", j)
	}
	res := &Result{ChainID: 31337, RPCURL: "http://127.0.0.1:8545", Contracts: []Contract{{Name: "C", Address: "0x1", TxHash: "0x2"}}}
	if err := s.Finish(ctx, "j1", Outcome{Status: Completed, Result: res, Timings: Timings{Total: 5}, Cache: Cache{ImageHit: true}}, now); err != nil {
		t.Fatal(err)
	}
	// A final record never changes: not by a late cancel, a retry or a second finish.
	if err := s.Finish(ctx, "j1", Outcome{Status: Failed, Error: "late"}, now); !errors.Is(err, ErrFinal) {
		t.Errorf("second finish: %v", err)
	}
	if err := s.Start(ctx, "j1", "w2", now); !errors.Is(err, ErrFinal) {
		t.Errorf("restart of a finished job: %v", err)
	}
	if err := s.RequestCancel(ctx, "j1"); !errors.Is(err, ErrFinal) {
		t.Errorf("cancel of a finished job: %v", err)
	}
	j, _ = s.Get(ctx, "j1")
	if j.Status != Completed || j.Result == nil || j.Result.Contracts[0].Address != "0x1" || j.Error != "" || j.Worker != "w1" || !j.Cache.ImageHit || j.Timings.Total != 5 {
		t.Errorf("finished job %+v", j)
	}
	if _, err := s.Get(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown job: %v", err)
	}
	if err := s.Start(ctx, "nope", "w", now); !errors.Is(err, ErrNotFound) {
		t.Errorf("start unknown job: %v", err)
	}
	ids, _ := s.Recent(ctx, 10)
	if len(ids) != 1 || ids[0] != "j1" {
		t.Errorf("recent %v", ids)
	}
}

func TestLogsAreCapped(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	chunk := bytes.Repeat([]byte("x"), 300<<10)
	for range 5 {
		if err := s.AppendLogs(ctx, "j", chunk); err != nil {
			t.Fatal(err)
		}
	}
	b, err := s.Logs(ctx, "j")
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != LogCap {
		t.Errorf("logs %d bytes, cap %d", len(b), LogCap)
	}
	if !bytes.HasSuffix(b, []byte(truncatedNote)) {
		t.Errorf("truncation not noted")
	}
	if err := s.AppendLogs(ctx, "j", []byte("more")); err != nil {
		t.Fatal(err)
	}
	if b2, _ := s.Logs(ctx, "j"); len(b2) != len(b) {
		t.Errorf("logs grew past the cap: %d", len(b2))
	}
}

// A client's jobs together keep no more output a day than its log budget: the job
// that spends it says so once at the end of its log, which then stops growing, and
// the next of its jobs keeps nothing but that note. Other clients and jobs without
// a budget are not affected.
func TestLogBudget(t *testing.T) {
	s, mr := newStore(t)
	ctx := context.Background()
	budget := LogBudget{Client: "alice", Limit: 1000}
	for _, id := range []string{"a1", "a2", "a3"} {
		if err := s.ChargeLogs(ctx, id, budget); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.ChargeLogs(ctx, "b1", LogBudget{Client: "ip:10.0.0.7", Limit: 1000}); err != nil {
		t.Fatal(err)
	}
	if ttl := mr.TTL("deployer:unit:job:a1:log-budget"); ttl != 48*time.Hour {
		t.Errorf("log budget record TTL %v, want the job's retention", ttl)
	}
	appendAll := func(id string, chunks ...string) string {
		t.Helper()
		for _, c := range chunks {
			if err := s.AppendLogs(ctx, id, []byte(c)); err != nil {
				t.Fatal(err)
			}
		}
		b, err := s.Logs(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	a1 := appendAll("a1", strings.Repeat("1", 600))
	if a1 != strings.Repeat("1", 600) {
		t.Errorf("a job within the budget lost output: %d bytes", len(a1))
	}
	a2 := appendAll("a2", strings.Repeat("2", 300), strings.Repeat("2", 300), "more", "and more")
	kept, note, ok := strings.Cut(a2, "\n[")
	if !ok || kept != strings.Repeat("2", 400) {
		t.Fatalf("the job that spends the budget keeps %d bytes before the note, want 400: %q", len(kept), a2)
	}
	for _, want := range []string{`log budget of client "alice" is spent`, "1000 bytes a day", "LOG_BUDGET_BYTES", "the job goes on", "frees at"} {
		if !strings.Contains(note, want) {
			t.Errorf("note %q does not say %q", note, want)
		}
	}
	if strings.Count(a2, "log budget") != 1 {
		t.Errorf("the note is not said once: %q", a2)
	}
	if a3 := appendAll("a3", "anything", "else"); !strings.HasPrefix(a3, "\n[output no longer kept") || strings.Count(a3, "log budget") != 1 {
		t.Errorf("a job started after the budget was spent keeps %q", a3)
	}
	if again := appendAll("a1", "late"); again != a1+a2[400:] {
		t.Errorf("a job that kept its output before the budget was spent keeps after it: %q", again[600:])
	}
	if b1 := appendAll("b1", strings.Repeat("b", 900)); len(b1) != 900 {
		t.Errorf("another client's job keeps %d bytes, want 900", len(b1))
	}
	if free := appendAll("nobudget", strings.Repeat("n", 5000)); len(free) != 5000 {
		t.Errorf("a job without a budget keeps %d bytes, want 5000", len(free))
	}
	window, ends := tasks.BudgetWindow(time.Now())
	counter := "deployer:unit:budget:logs:" + window + ":alice"
	if got, _ := mr.Get(counter); got != "1000" {
		t.Errorf("alice's counter holds %q, want 1000", got)
	}
	if ttl := mr.TTL(counter); ttl <= 0 || ttl > time.Until(ends)+time.Minute {
		t.Errorf("the counter lives %v, past its window's end in %v", ttl, time.Until(ends))
	}
}
