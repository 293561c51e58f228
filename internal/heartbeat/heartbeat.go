// Package heartbeat keeps the list of live workers in Redis: each worker beats with
// its id, host, Docker engine and health, and the API reads who is alive (readiness,
// stats, and admin work sent to every engine).
package heartbeat

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/deployer-dev/deployer/tasks"
)

// Worker is a worker's last heartbeat.
type Worker struct {
	ID          string    `json:"id"`
	Host        string    `json:"host"`
	PID         int       `json:"pid"`
	EngineID    string    `json:"engine_id"`
	EngineName  string    `json:"engine_name"`
	Healthy     bool      `json:"healthy"`
	Problem     string    `json:"problem,omitempty"`
	Queue       string    `json:"queue"`
	Concurrency int       `json:"concurrency"`
	Active      int       `json:"active"`
	StartedAt   time.Time `json:"started_at"`
	LastSeen    time.Time `json:"last_seen"`
}

// Store reads and writes heartbeats.
type Store struct {
	rdb redis.UniversalClient
	ns  tasks.Namespace
}

// New returns the heartbeats of an installation.
func New(rdb redis.UniversalClient, ns tasks.Namespace) *Store {
	return &Store{rdb: rdb, ns: ns}
}

func (r *Store) setKey() string             { return r.ns.WorkersKey() }
func (r *Store) workerKey(id string) string { return r.ns.WorkerKey(id) }

// Beat records a heartbeat that lives for ttl.
func (r *Store) Beat(ctx context.Context, w Worker, ttl time.Duration) error {
	b, err := json.Marshal(w)
	if err != nil {
		return err
	}
	pipe := r.rdb.TxPipeline()
	pipe.Set(ctx, r.workerKey(w.ID), b, ttl)
	pipe.ZAdd(ctx, r.setKey(), redis.Z{Score: float64(w.LastSeen.UnixMilli()), Member: w.ID})
	// Forget workers silent for a day; the set would otherwise only grow.
	pipe.ZRemRangeByScore(ctx, r.setKey(), "-inf", strconv.FormatInt(w.LastSeen.Add(-24*time.Hour).UnixMilli(), 10))
	_, err = pipe.Exec(ctx)
	if err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	return nil
}

// Remove deletes a worker's heartbeat (it stopped cleanly).
func (r *Store) Remove(ctx context.Context, id string) error {
	pipe := r.rdb.TxPipeline()
	pipe.Del(ctx, r.workerKey(id))
	pipe.ZRem(ctx, r.setKey(), id)
	_, err := pipe.Exec(ctx)
	return err
}

// Live lists the workers whose last heartbeat is younger than within.
func (r *Store) Live(ctx context.Context, now time.Time, within time.Duration) ([]Worker, error) {
	min := strconv.FormatInt(now.Add(-within).UnixMilli(), 10)
	ids, err := r.rdb.ZRangeByScore(ctx, r.setKey(), &redis.ZRangeBy{Min: min, Max: "+inf"}).Result()
	if err != nil {
		return nil, fmt.Errorf("list workers: %w", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = r.workerKey(id)
	}
	vals, err := r.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, fmt.Errorf("list workers: %w", err)
	}
	var out []Worker
	for _, v := range vals {
		s, ok := v.(string)
		if !ok {
			continue
		}
		var w Worker
		if json.Unmarshal([]byte(s), &w) == nil && now.Sub(w.LastSeen) < within {
			out = append(out, w)
		}
	}
	return out, nil
}
