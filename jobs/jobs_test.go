package jobs

import (
	"bytes"
	"context"
	"errors"
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
