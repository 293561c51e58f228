package lock

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

func TestMutualExclusion(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	l := New(rdb, time.Second)
	var inside, maxInside atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, unlock, err := l.Lock(context.Background(), "k")
			if err != nil {
				t.Error(err)
				return
			}
			n := inside.Add(1)
			if n > maxInside.Load() {
				maxInside.Store(n)
			}
			time.Sleep(5 * time.Millisecond)
			inside.Add(-1)
			unlock()
			unlock() // twice is harmless
		}()
	}
	wg.Wait()
	if maxInside.Load() != 1 {
		t.Errorf("%d holders at once", maxInside.Load())
	}
	if mr.Exists("k") {
		t.Error("lock left behind")
	}
}

func TestCrashedHolderExpires(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	// A holder that died without releasing.
	if err := mr.Set("k", "dead-token"); err != nil {
		t.Fatal(err)
	}
	mr.SetTTL("k", 2*time.Second)
	l := New(rdb, 2*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, _, err := l.Lock(ctx, "k"); err == nil {
		t.Fatal("took a held lock")
	}
	mr.FastForward(3 * time.Second)
	_, unlock, err := l.Lock(context.Background(), "k")
	if err != nil {
		t.Fatalf("expired lock not taken: %v", err)
	}
	unlock()
}

// A bounded wait gives up with ErrWaitTimeout, and the hold it returns is not bounded
// by the wait.
func TestLockWait(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	l := New(rdb, time.Second)
	_, unlock, err := l.Lock(context.Background(), "k")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.LockWait(context.Background(), "k", 50*time.Millisecond); !errors.Is(err, ErrWaitTimeout) {
		t.Fatalf("wait on a held lock: %v, want ErrWaitTimeout", err)
	}
	unlock()
	held, unlock, err := l.LockWait(context.Background(), "k", 50*time.Millisecond)
	if err != nil {
		t.Fatalf("free lock: %v", err)
	}
	defer unlock()
	select {
	case <-held.Done():
		t.Fatalf("the hold ended with the wait: %v", context.Cause(held))
	case <-time.After(200 * time.Millisecond):
	}
}
