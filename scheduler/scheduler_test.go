package scheduler

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/robfig/cron/v3"

	"github.com/deployer-dev/deployer/tasks"
)

func TestPeriodNamesTheSameRunForEveryScheduler(t *testing.T) {
	hourly, _ := cron.ParseStandard("0 * * * *")
	fire := time.Date(2026, 11, 28, 7, 0, 0, 0, time.UTC)
	a, period := Period(hourly, fire.Add(3*time.Millisecond))
	b, _ := Period(hourly, fire.Add(900*time.Millisecond))
	if !a.Equal(b) || !a.Equal(fire) || period != time.Hour {
		t.Errorf("hourly: %s and %s, period %s", a, b, period)
	}
	every, _ := cron.ParseStandard("@every 10s")
	// Two schedulers started at different times fire at different offsets.
	x, p := Period(every, time.Date(2026, 11, 28, 7, 0, 21, 0, time.UTC))
	y, _ := Period(every, time.Date(2026, 11, 28, 7, 0, 27, 0, time.UTC))
	z, _ := Period(every, time.Date(2026, 11, 28, 7, 0, 31, 0, time.UTC))
	if !x.Equal(y) || x.Equal(z) || p != 10*time.Second {
		t.Errorf("@every: %s, %s, %s (period %s)", x, y, z, p)
	}
}

// Two schedulers firing a period's run enqueue it once.
func TestTwoSchedulersEnqueueOnce(t *testing.T) {
	mr := miniredis.RunT(t)
	opt := asynq.RedisClientOpt{Addr: mr.Addr()}
	client := asynq.NewClient(opt)
	defer client.Close()
	ns := tasks.Namespace{Instance: "unit"}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	e := Entry{Kind: tasks.MaintenanceImageExpiry, Spec: "*/5 * * * *"}
	sched, _ := cron.ParseStandard(e.Spec)
	fire := time.Date(2026, 11, 28, 7, 5, 0, 0, time.UTC)
	for i, s := range []*Scheduler{New(client, ns, []Entry{e}, log), New(client, ns, []Entry{e}, log)} {
		s.fire(context.Background(), e, sched, fire.Add(time.Duration(i)*40*time.Millisecond))
	}
	insp := asynq.NewInspector(opt)
	defer insp.Close()
	info, err := insp.GetQueueInfo(ns.MaintenanceQueue())
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != 1 {
		t.Errorf("%d runs enqueued for one period, want 1", info.Size)
	}
}
