package localredis

import (
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
)

// tick is how often the in-memory Redis's expiry catches up with the wall clock.
const tick = 500 * time.Millisecond

// memory is the fallback: a miniredis on a free port of 127.0.0.1, with a clock that
// moves, since miniredis lets keys expire only when told that time passed.
type memory struct {
	mr   *miniredis.Miniredis
	done chan struct{}
	wg   sync.WaitGroup
}

func startMemory() (*memory, error) {
	mr := miniredis.NewMiniRedis()
	if err := mr.Start(); err != nil {
		return nil, err
	}
	m := &memory{mr: mr, done: make(chan struct{})}
	mr.SetTime(time.Now())
	m.wg.Add(1)
	go m.clock()
	return m, nil
}

// clock advances miniredis with the wall clock, so TTLs run down as in Redis.
func (m *memory) clock() {
	defer m.wg.Done()
	t := time.NewTicker(tick)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-m.done:
			return
		case now := <-t.C:
			m.mr.SetTime(now)
			m.mr.FastForward(now.Sub(last))
			last = now
		}
	}
}

func (m *memory) addr() string { return m.mr.Addr() }

func (m *memory) close() {
	close(m.done)
	m.wg.Wait()
	m.mr.Close()
}
