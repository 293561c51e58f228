package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Journals hands out jobs' journals.
type Journals struct {
	RDB redis.UniversalClient
	// Key names a job's journal; TTL is how long it is kept after its last write.
	Key func(jobID string) string
	TTL time.Duration
}

// Job is a job's journal.
func (j Journals) Job(jobID string) *JobJournal { return NewJobJournal(j.RDB, j.Key(jobID), j.TTL) }

// JobJournal is a job's journal in Redis: every transaction its gateway signed, in
// order, written before the transaction was sent, and, once the script ended, what it
// made. A retried job reads it instead of running the script again: a new run would
// pick new nonces and addresses, and send the deployment twice.
type JobJournal struct {
	rdb redis.UniversalClient
	key string
	ttl time.Duration
}

// NewJobJournal returns the journal at key, kept for ttl after its last write.
func NewJobJournal(rdb redis.UniversalClient, key string, ttl time.Duration) *JobJournal {
	return &JobJournal{rdb: rdb, key: key, ttl: ttl}
}

// Entry is one line of a journal: a transaction, or the end of the script.
type Entry struct {
	Tx *Sent `json:"tx,omitempty"`
	// Done holds what the script made, in forge's words (names and addresses), once
	// it ended well.
	Done json.RawMessage `json:"done,omitempty"`
}

// Record writes a transaction before it is sent.
func (j *JobJournal) Record(ctx context.Context, tx Sent) error {
	return j.append(ctx, Entry{Tx: &tx})
}

// Finish writes what the script made.
func (j *JobJournal) Finish(ctx context.Context, made any) error {
	b, err := json.Marshal(made)
	if err != nil {
		return err
	}
	return j.append(ctx, Entry{Done: b})
}

func (j *JobJournal) append(ctx context.Context, e Entry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	pipe := j.rdb.TxPipeline()
	pipe.RPush(ctx, j.key, b)
	pipe.Expire(ctx, j.key, j.ttl)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	return nil
}

// Read returns the journal's transactions, and what the script made if it ended.
func (j *JobJournal) Read(ctx context.Context) (txs []Sent, done json.RawMessage, err error) {
	lines, err := j.rdb.LRange(ctx, j.key, 0, -1).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, nil, fmt.Errorf("journal: %w", err)
	}
	for _, l := range lines {
		var e Entry
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			return nil, nil, fmt.Errorf("journal: a damaged entry: %w", err)
		}
		if e.Tx != nil {
			txs = append(txs, *e.Tx)
		}
		if e.Done != nil {
			done = e.Done
		}
	}
	return txs, done, nil
}
