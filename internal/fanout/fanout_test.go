package fanout

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/deployer-dev/deployer/internal/heartbeat"
	"github.com/deployer-dev/deployer/tasks"
)

// Send reaches one healthy worker per engine, the one that beat last; SendAll every
// healthy worker; Await collects their answers and names the silent ones.
func TestSendReachesEachEngineOnce(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	opt := asynq.RedisClientOpt{Addr: mr.Addr()}
	client, insp := asynq.NewClient(opt), asynq.NewInspector(opt)
	defer client.Close()
	defer insp.Close()
	ns := tasks.Namespace{Instance: "unit"}
	beats := heartbeat.New(rdb, ns)
	ctx := context.Background()
	now := time.Now()
	for _, w := range []heartbeat.Worker{
		{ID: "a1", EngineID: "A", Healthy: true, LastSeen: now.Add(-2 * time.Second)},
		{ID: "a2", EngineID: "A", Healthy: true, LastSeen: now},
		{ID: "b1", EngineID: "B", Healthy: true, LastSeen: now},
		{ID: "c1", EngineID: "C", Healthy: false, LastSeen: now},
	} {
		w.Queue = ns.WorkerQueue(w.ID)
		if err := beats.Beat(ctx, w, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	f := New(client, insp, beats)
	task := asynq.NewTask("unit:ping", nil)
	sent, err := f.Send(ctx, task, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(sent) != 2 || sent[0].WorkerID != "a2" || sent[1].WorkerID != "b1" {
		t.Fatalf("sent %+v, want a2 (A's latest) and b1", sent)
	}
	all, err := f.SendAll(ctx, task, time.Minute)
	if err != nil || len(all) != 3 {
		t.Fatalf("send all: %+v, %v", all, err)
	}

	// Only a2 answers.
	srv := asynq.NewServer(opt, asynq.Config{Queues: map[string]int{ns.WorkerQueue("a2"): 1}, LogLevel: asynq.FatalLevel})
	mux := asynq.NewServeMux()
	mux.HandleFunc("unit:ping", func(_ context.Context, t *asynq.Task) error {
		_, err := t.ResultWriter().Write([]byte(`{"pong":true}`))
		return err
	})
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	// Await returns once every task answered: a long limit costs nothing here.
	answered := f.Await(ctx, sent[:1], time.Minute)
	var pong struct{ Pong bool }
	if json.Unmarshal(answered[0].Result, &pong) != nil || !pong.Pong || answered[0].Error != "" {
		t.Errorf("a2 answered %+v", answered[0])
	}
	silent := f.Await(ctx, sent[1:], 100*time.Millisecond)
	if silent[0].Error == "" || silent[0].Result != nil {
		t.Errorf("b1 never ran, yet %+v", silent[0])
	}
}
