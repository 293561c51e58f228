// Package lock is a mutual exclusion lock in Redis, shared by every worker: one build
// per image key, one chain start per engine and network, one sender per chain at a
// time. A lock has a TTL that its holder keeps extending, so a crashed holder does not
// block the key forever.
package lock

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Locker takes locks in one Redis.
type Locker struct {
	rdb redis.UniversalClient
	ttl time.Duration
}

// New returns a locker whose locks expire ttl after their holder last renewed them.
func New(rdb redis.UniversalClient, ttl time.Duration) *Locker {
	return &Locker{rdb: rdb, ttl: ttl}
}

var release = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)

var renew = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`)

// ErrLost says the lock expired while held (the holder stalled longer than its TTL).
var ErrLost = errors.New("lock lost")

// Lock waits until it holds key or ctx ends. The returned function releases the lock;
// the returned context ends if the lock is lost.
func (l *Locker) Lock(ctx context.Context, key string) (context.Context, func(), error) {
	return l.LockWait(ctx, key, 0)
}

// ErrWaitTimeout says the lock stayed held by another for the whole wait.
var ErrWaitTimeout = errors.New("lock still held by another after the wait")

// LockWait is Lock with the wait bounded by wait (0: as long as ctx lives), apart
// from ctx: the returned context derives from ctx, so a short wait does not shorten
// the hold.
func (l *Locker) LockWait(ctx context.Context, key string, wait time.Duration) (context.Context, func(), error) {
	buf := make([]byte, 16)
	_, _ = rand.Read(buf)
	token := hex.EncodeToString(buf)
	var expired <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		expired = t.C
	}
	backoff := 10 * time.Millisecond
	for {
		ok, err := l.rdb.SetNX(ctx, key, token, l.ttl).Result()
		if err != nil {
			return nil, nil, fmt.Errorf("lock %s: %w", key, err)
		}
		if ok {
			break
		}
		select {
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("lock %s: %w", key, ctx.Err())
		case <-expired:
			return nil, nil, fmt.Errorf("lock %s: waited %s: %w", key, wait, ErrWaitTimeout)
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 250*time.Millisecond)
	}
	held, lose := context.WithCancelCause(ctx)
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(l.ttl / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				n, err := renew.Run(context.WithoutCancel(ctx), l.rdb, []string{key}, token, l.ttl.Milliseconds()).Int()
				if err == nil && n == 0 {
					lose(ErrLost)
					return
				}
			}
		}
	}()
	var once sync.Once
	unlock := func() {
		once.Do(func() {
			close(done)
			lose(context.Canceled)
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_ = release.Run(rctx, l.rdb, []string{key}, token).Err()
		})
	}
	return held, unlock, nil
}
