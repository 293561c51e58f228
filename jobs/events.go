package jobs

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/redis/go-redis/v9"
)

// Event types of a job's stream.
const (
	// EventStep: the job does something new; Data names it.
	EventStep = "step"
	// EventLog: output; Data is the text, redacted.
	EventLog = "log"
	// EventEnd: the job ended; Data is its status. It is the stream's last event.
	EventEnd = "end"
)

// Event is one change of a job, in the order the record went through them.
type Event struct {
	// ID orders events and lets a follower resume after one (a Redis stream id).
	ID   string
	Type string
	Data string
}

// eventIDRE matches a stream id a follower may resume after.
var eventIDRE = regexp.MustCompile(`^[0-9]{1,20}-[0-9]{1,20}$`)

// ValidEventID says id can be resumed after.
func ValidEventID(id string) bool { return eventIDRE.MatchString(id) }

// Events reads up to count of the job's events after the event id after ("": from
// the first). With none there, it waits up to wait for one (0: it does not wait),
// and returns none if none came.
func (s *Store) Events(ctx context.Context, id, after string, wait time.Duration, count int64) ([]Event, error) {
	if after == "" {
		after = "0"
	}
	block := time.Duration(-1) // go-redis: no BLOCK
	if wait > 0 {
		block = max(wait, time.Millisecond)
	}
	res, err := s.rdb.XRead(ctx, &redis.XReadArgs{Streams: []string{s.eventsKey(id), after}, Count: count, Block: block}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("events of job %s: %w", id, err)
	}
	var evs []Event
	for _, st := range res {
		for _, m := range st.Messages {
			typ, _ := m.Values["type"].(string)
			data, _ := m.Values["data"].(string)
			evs = append(evs, Event{ID: m.ID, Type: typ, Data: data})
		}
	}
	return evs, nil
}

// LastEventID is the id of the job's latest event, "0" when it has none: a follower
// that waits for what comes next starts after it.
func (s *Store) LastEventID(ctx context.Context, id string) (string, error) {
	msgs, err := s.rdb.XRevRangeN(ctx, s.eventsKey(id), "+", "-", 1).Result()
	if err != nil {
		return "", fmt.Errorf("events of job %s: %w", id, err)
	}
	if len(msgs) == 0 {
		return "0", nil
	}
	return msgs[0].ID, nil
}

// Follower reads jobs' events with a Redis client of its own: a follower blocks a
// connection while it waits, and must not take those of the rest of the API.
func (s *Store) Follower(rdb redis.UniversalClient) *Store {
	return &Store{rdb: rdb, ns: s.ns, retention: s.retention}
}
