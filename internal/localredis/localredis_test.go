package localredis

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// The embedded Redis lets keys expire as a real one does, without being told.
func TestKeysExpireWithTheWallClock(t *testing.T) {
	s, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rdb := redis.NewClient(&redis.Options{Addr: s.Addr()})
	defer rdb.Close()
	ctx := context.Background()
	if err := rdb.Set(ctx, "short", "v", time.Second).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Set(ctx, "long", "v", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for rdb.Exists(ctx, "short").Val() == 1 {
		if time.Now().After(deadline) {
			t.Fatal("a key with a one-second TTL did not expire")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if rdb.Exists(ctx, "long").Val() != 1 {
		t.Error("a key with an hour to live expired")
	}
}
