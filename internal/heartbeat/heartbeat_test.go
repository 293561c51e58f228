package heartbeat

import (
	"context"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/deployer-dev/deployer/tasks"
)

func TestLiveListsRecentBeatsOnly(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	s := New(rdb, tasks.Namespace{Instance: "unit"})
	ctx := context.Background()
	now := time.Now()
	for id, seen := range map[string]time.Time{"fresh": now, "stale": now.Add(-time.Minute), "gone": now} {
		if err := s.Beat(ctx, Worker{ID: id, Healthy: true, LastSeen: seen}, 30*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Remove(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	live, err := s.Live(ctx, now, 30*time.Second)
	if err != nil || len(live) != 1 || live[0].ID != "fresh" {
		t.Errorf("live %+v, %v", live, err)
	}
	// A beat whose key expired (the worker died) is not live, whatever the index says.
	mr.FastForward(31 * time.Second)
	if live, _ := s.Live(ctx, now, 30*time.Second); len(live) != 0 {
		t.Errorf("expired beat still live: %+v", live)
	}
}
