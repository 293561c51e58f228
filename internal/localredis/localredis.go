// Package localredis runs an embedded Redis (miniredis) for `deployer all` when no
// REDIS_URL is given, with a clock that moves: miniredis lets keys expire only when
// told that time passed.
package localredis

import (
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
)

// tick is how often expiry catches up with the wall clock.
const tick = 500 * time.Millisecond

// Server is a running embedded Redis.
type Server struct {
	mr   *miniredis.Miniredis
	done chan struct{}
	wg   sync.WaitGroup
}

// Start runs an embedded Redis on a free port of 127.0.0.1.
func Start() (*Server, error) {
	mr := miniredis.NewMiniRedis()
	if err := mr.Start(); err != nil {
		return nil, err
	}
	s := &Server{mr: mr, done: make(chan struct{})}
	mr.SetTime(time.Now())
	s.wg.Add(1)
	go s.clock()
	return s, nil
}

// clock advances miniredis with the wall clock, so TTLs run down as in Redis.
func (s *Server) clock() {
	defer s.wg.Done()
	t := time.NewTicker(tick)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-s.done:
			return
		case now := <-t.C:
			s.mr.SetTime(now)
			s.mr.FastForward(now.Sub(last))
			last = now
		}
	}
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.mr.Addr() }

// URL is the server's redis:// URL.
func (s *Server) URL() string { return "redis://" + s.mr.Addr() }

// Close stops the server.
func (s *Server) Close() {
	close(s.done)
	s.wg.Wait()
	s.mr.Close()
}
