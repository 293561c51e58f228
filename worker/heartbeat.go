package worker

import (
	"context"
	"os"
	"sync"
	"time"

	"github.com/deployer-dev/deployer/internal/heartbeat"
)

// heartbeatInterval is how often a worker says it is alive; readers treat a worker
// silent for heartbeatTTL as gone.
const (
	heartbeatInterval = 5 * time.Second
	heartbeatTTL      = 30 * time.Second
)

// heartbeater records, every few seconds, that the worker is alive and whether its
// engine answers.
type heartbeater struct {
	w    *Worker
	done chan struct{}
}

func newHeartbeater(w *Worker) *heartbeater {
	return &heartbeater{w: w, done: make(chan struct{})}
}

func (h *heartbeater) start(wg *sync.WaitGroup) {
	h.exec()
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(heartbeatInterval)
		defer t.Stop()
		for {
			select {
			case <-h.done:
				return
			case <-t.C:
				h.exec()
			}
		}
	}()
}

func (h *heartbeater) shutdown() { close(h.done) }

// exec beats once.
func (h *heartbeater) exec() {
	w := h.w
	ctx, cancel := context.WithTimeout(context.Background(), heartbeatInterval)
	defer cancel()
	host, _ := os.Hostname()
	beat := heartbeat.Worker{
		ID: w.cfg.ID, Host: host, PID: os.Getpid(),
		EngineID: w.eng.ID(), EngineName: w.eng.Name(),
		Healthy: true, Queue: w.Queue(), Concurrency: w.cfg.Concurrency,
		Active: int(w.active.Load()), StartedAt: w.started, LastSeen: time.Now(),
	}
	if err := w.eng.Ping(ctx); err != nil {
		beat.Healthy, beat.Problem = false, "docker engine does not answer"
	}
	if w.stopping.Load() {
		beat.Healthy, beat.Problem = false, "shutting down"
	}
	if err := w.beats.Beat(ctx, beat, heartbeatTTL); err != nil {
		w.log.Warn("heartbeat failed", "error", err)
	}
}
