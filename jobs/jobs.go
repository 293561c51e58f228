// Package jobs keeps the record of every deployment job in Redis: what was asked,
// where it is, its result or error, timings, cache use and its (redacted) output.
// The API writes a record before it enqueues and reads it to answer polls; the worker
// running the job updates it. A record that reached a final state never changes again.
package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/deployer-dev/deployer/tasks"
)

// Status is where a job is, as the API reports it.
type Status string

// Statuses.
const (
	Queued    Status = "queued"
	Running   Status = "running"
	Completed Status = "completed"
	Failed    Status = "failed"
	Canceled  Status = "canceled"
)

// Final says the status can no longer change.
func (s Status) Final() bool { return s == Completed || s == Failed || s == Canceled }

// ErrNotFound says no record exists for the id (never made, or expired).
var ErrNotFound = errors.New("job not found")

// Job is a job's record.
type Job struct {
	ID        string    `json:"job_id"`
	Framework string    `json:"framework"`
	Network   string    `json:"network"`
	Client    string    `json:"client,omitempty"`
	Queue     string    `json:"queue"`
	Project   string    `json:"project"`
	Target    string    `json:"target"`
	CreatedAt time.Time `json:"created_at"`

	Status          Status    `json:"status"`
	Step            string    `json:"step,omitempty"`
	Result          *Result   `json:"result,omitempty"`
	Error           string    `json:"error,omitempty"`
	Timings         Timings   `json:"timings_ms"`
	Cache           Cache     `json:"cache"`
	Worker          string    `json:"worker,omitempty"`
	ContainerID     string    `json:"container_id,omitempty"`
	Attempts        int       `json:"attempts"`
	CancelRequested bool      `json:"cancel_requested,omitempty"`
	StartedAt       time.Time `json:"started_at,omitzero"`
	FinishedAt      time.Time `json:"finished_at,omitzero"`
}

// Result is what a completed deployment made.
type Result struct {
	ChainID uint64 `json:"chain_id"`
	RPCURL  string `json:"rpc_url"`
	// Sender is the address that signed the deployment; Client names whose it was,
	// when tokens name clients.
	Sender    string     `json:"sender"`
	Client    string     `json:"client,omitempty"`
	Contracts []Contract `json:"contracts"`
}

// Contract is one contract the deployment created, checked on chain.
type Contract struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	TxHash  string `json:"tx_hash"`
}

// Timings are the milliseconds of a job, from its enqueue until its worker records
// how it ended, charged to one phase at a time: the phases add up to Total.
type Timings struct {
	// Queue is the wait for a worker to take the job.
	Queue int64 `json:"queue"`
	// Project is fetching, unpacking and checking the project, and hashing it for
	// the compile cache.
	Project int64 `json:"project"`
	// Image is resolving the runner image and readying the compilers.
	Image int64 `json:"image"`
	// Deps is installing a Hardhat project's dependencies.
	Deps int64 `json:"deps"`
	// Chain is starting (or finding) the chain and opening the job's gateway.
	Chain int64 `json:"chain"`
	// Container is leasing the job's container.
	Container int64 `json:"container"`
	// Copy is copying the project, and cached artifacts, into the container.
	Copy int64 `json:"copy"`
	// Compile is forge build (or Hardhat's), and storing what it made.
	Compile int64 `json:"compile"`
	// Deploy is the script (or forge create), waiting for the sender's turn, funding.
	Deploy int64 `json:"deploy"`
	// Confirm is checking on chain what the deployment made.
	Confirm int64 `json:"confirm"`
	// Release is handing the container back and closing the gateway.
	Release int64 `json:"release"`
	Total   int64 `json:"total"`
	// Within are parts of the phases above, not phases of their own.
	Within Within `json:"within"`
}

// Phase is one phase of a job's timings.
type Phase struct {
	Name string
	MS   int64
}

// phaseField is a phase's name and the field that holds it.
type phaseField struct {
	name string
	ms   *int64
}

// phases names the phases in the order a job goes through them, with their fields.
func (t *Timings) phases() []phaseField {
	return []phaseField{{"queue", &t.Queue}, {"project", &t.Project}, {"image", &t.Image}, {"deps", &t.Deps},
		{"chain", &t.Chain}, {"container", &t.Container}, {"copy", &t.Copy}, {"compile", &t.Compile},
		{"deploy", &t.Deploy}, {"confirm", &t.Confirm}, {"release", &t.Release}}
}

// Phases lists the phases in the order a job goes through them; they add up to
// Total.
func (t Timings) Phases() []Phase {
	var out []Phase
	for _, p := range t.phases() {
		out = append(out, Phase{p.name, *p.ms})
	}
	return out
}

// SetPhases sets the phases, by name, and Total from what each took. Each phase's
// milliseconds are the difference of the rounded running sums, so that the phases
// add up to Total exactly.
func (t *Timings) SetPhases(spent map[string]time.Duration) {
	var sum time.Duration
	var shown int64
	for _, p := range t.phases() {
		sum += spent[p.name]
		*p.ms = sum.Milliseconds() - shown
		shown = sum.Milliseconds()
	}
	t.Total = shown
}

// Within are the parts of a job's phases spent in particular programs.
type Within struct {
	// Forge is the time spent in forge (or Hardhat) itself, compiling and deploying.
	Forge int64 `json:"forge"`
	// Gateway is what the job's gateway added: waiting for its relay to listen, and
	// its own work on requests beyond the chain's answers.
	Gateway int64 `json:"gateway"`
}

// Cache says which warm resources a job reused.
type Cache struct {
	ImageHit        bool `json:"image_hit"`
	ContainerReused bool `json:"container_reused"`
	CompileHit      bool `json:"compile_hit"`
	// DepsHit says a Hardhat project's dependencies were installed already.
	DepsHit bool `json:"deps_hit,omitempty"`
}

// Outcome is how a job ended.
type Outcome struct {
	Status  Status
	Result  *Result
	Error   string
	Timings Timings
	Cache   Cache
}

// LogCap bounds the output kept per job.
const LogCap = 1 << 20

const truncatedNote = "\n[output truncated at 1 MiB]\n"

// Store reads and writes job records.
type Store struct {
	rdb       redis.UniversalClient
	ns        tasks.Namespace
	retention time.Duration
}

// NewStore returns a store whose records live for retention after their last change.
func NewStore(rdb redis.UniversalClient, ns tasks.Namespace, retention time.Duration) *Store {
	return &Store{rdb: rdb, ns: ns, retention: retention}
}

func (s *Store) key(id string) string       { return s.ns.JobKey(id) }
func (s *Store) logsKey(id string) string   { return s.ns.JobLogsKey(id) }
func (s *Store) eventsKey(id string) string { return s.ns.JobEventsKey(id) }
func (s *Store) recentKey() string          { return s.ns.RecentJobsKey() }

// recentMax bounds the index of recent jobs the dashboard lists.
const recentMax = 1000

type meta struct {
	Framework string    `json:"framework"`
	Network   string    `json:"network"`
	Client    string    `json:"client,omitempty"`
	Queue     string    `json:"queue"`
	Project   string    `json:"project"`
	Target    string    `json:"target"`
	CreatedAt time.Time `json:"created_at"`
}

// Create writes the record of a new job, queued.
func (s *Store) Create(ctx context.Context, j Job) error {
	m, err := json.Marshal(meta{j.Framework, j.Network, j.Client, j.Queue, j.Project, j.Target, j.CreatedAt})
	if err != nil {
		return err
	}
	pipe := s.rdb.TxPipeline()
	pipe.HSet(ctx, s.key(j.ID), "meta", m, "status", string(Queued))
	pipe.Expire(ctx, s.key(j.ID), s.retention)
	pipe.ZAdd(ctx, s.recentKey(), redis.Z{Score: float64(j.CreatedAt.UnixMilli()), Member: j.ID})
	pipe.ZRemRangeByRank(ctx, s.recentKey(), 0, -recentMax-1)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("create job %s: %w", j.ID, err)
	}
	return nil
}

// Delete removes a record, for a job whose enqueue failed.
func (s *Store) Delete(ctx context.Context, id string) error {
	return s.rdb.Del(ctx, s.key(id), s.logsKey(id), s.eventsKey(id)).Err()
}

// Recent lists the ids of the newest jobs, newest first.
func (s *Store) Recent(ctx context.Context, n int) ([]string, error) {
	return s.rdb.ZRevRange(ctx, s.recentKey(), 0, int64(n-1)).Result()
}

// Get reads a record.
func (s *Store) Get(ctx context.Context, id string) (Job, error) {
	h, err := s.rdb.HGetAll(ctx, s.key(id)).Result()
	if err != nil {
		return Job{}, fmt.Errorf("read job %s: %w", id, err)
	}
	if len(h) == 0 || h["meta"] == "" {
		return Job{}, ErrNotFound
	}
	j := Job{ID: id, Status: Status(h["status"]), Step: h["step"], Error: h["error"], Worker: h["worker"],
		ContainerID: h["container"], CancelRequested: h["cancel"] == "1"}
	var m meta
	if err := json.Unmarshal([]byte(h["meta"]), &m); err != nil {
		return Job{}, fmt.Errorf("read job %s: %w", id, err)
	}
	j.Framework, j.Network, j.Client, j.Queue, j.Project, j.Target, j.CreatedAt = m.Framework, m.Network, m.Client, m.Queue, m.Project, m.Target, m.CreatedAt
	for field, dst := range map[string]any{"result": &j.Result, "timings": &j.Timings, "cache": &j.Cache} {
		if v := h[field]; v != "" {
			if err := json.Unmarshal([]byte(v), dst); err != nil {
				return Job{}, fmt.Errorf("read job %s field %s: %w", id, field, err)
			}
		}
	}
	j.Attempts, _ = strconv.Atoi(h["attempts"])
	j.StartedAt = parseTime(h["started_at"])
	j.FinishedAt = parseTime(h["finished_at"])
	return j, nil
}

func parseTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}

// setUnlessFinal writes fields unless the record is missing or final, and adds the
// change's event to the job's stream (KEYS[2]) in the same step, so that a follower
// sees every change the record went through, the end last. It answers 1 when it
// wrote, 0 when the record is final, -1 when there is none.
//
// ARGV: 1 to count an attempt, the event's type (” for none) and data, the stream's
// TTL (s), then the fields.
var setUnlessFinal = redis.NewScript(`
local s = redis.call('HGET', KEYS[1], 'status')
if not s then return -1 end
if s == 'completed' or s == 'failed' or s == 'canceled' then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
if ARGV[1] == '1' then redis.call('HINCRBY', KEYS[1], 'attempts', 1) end
if ARGV[2] ~= '' then
  redis.call('XADD', KEYS[2], '*', 'type', ARGV[2], 'data', ARGV[3])
  redis.call('EXPIRE', KEYS[2], tonumber(ARGV[4]))
end
return 1
`)

// ErrFinal says the job already reached a final state.
var ErrFinal = errors.New("job already finished")

func (s *Store) set(ctx context.Context, id string, attempt bool, ev Event, fields ...any) error {
	flag := "0"
	if attempt {
		flag = "1"
	}
	args := append([]any{flag, ev.Type, ev.Data, int(s.retention.Seconds())}, fields...)
	n, err := setUnlessFinal.Run(ctx, s.rdb, []string{s.key(id), s.eventsKey(id)}, args...).Int()
	if err != nil {
		return fmt.Errorf("update job %s: %w", id, err)
	}
	switch n {
	case -1:
		return ErrNotFound
	case 0:
		return ErrFinal
	}
	return nil
}

// Start marks the job running on a worker and counts the attempt. It returns
// ErrFinal when the job already ended (a retry of a job that completed, say).
func (s *Store) Start(ctx context.Context, id, worker string, at time.Time) error {
	return s.set(ctx, id, true, Event{Type: EventStep, Data: "starting"}, "status", string(Running), "worker", worker,
		"started_at", at.UTC().Format(time.RFC3339Nano), "step", "starting")
}

// Requeued marks a job that goes back to its queue (its worker shut down).
func (s *Store) Requeued(ctx context.Context, id string) error {
	return s.set(ctx, id, false, Event{Type: EventStep, Data: "requeued"}, "status", string(Queued), "step", "requeued")
}

// SetStep records what a running job does now, for progress lines.
func (s *Store) SetStep(ctx context.Context, id, step string) error {
	return s.set(ctx, id, false, Event{Type: EventStep, Data: step}, "step", step)
}

// SetContainer records the container a running job runs in.
func (s *Store) SetContainer(ctx context.Context, id, container string) error {
	return s.set(ctx, id, false, Event{}, "container", container)
}

// Finish records how the job ended, unless it already ended: a record is final once.
func (s *Store) Finish(ctx context.Context, id string, o Outcome, at time.Time) error {
	fields := []any{"status", string(o.Status), "step", "", "error", o.Error,
		"finished_at", at.UTC().Format(time.RFC3339Nano)}
	for field, v := range map[string]any{"timings": o.Timings, "cache": o.Cache} {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		fields = append(fields, field, b)
	}
	if o.Result != nil {
		b, err := json.Marshal(o.Result)
		if err != nil {
			return err
		}
		fields = append(fields, "result", b)
	}
	if err := s.set(ctx, id, false, Event{Type: EventEnd, Data: string(o.Status)}, fields...); err != nil {
		return err
	}
	// Counted once, by whoever ended the job: the record is final now.
	if b, err := s.rdb.HGet(ctx, s.key(id), "meta").Bytes(); err == nil {
		var m meta
		if json.Unmarshal(b, &m) == nil {
			s.rdb.HIncrBy(ctx, s.outcomesKey(), m.Network+":"+string(o.Status), 1)
		}
	}
	return nil
}

func (s *Store) outcomesKey() string { return s.ns.OutcomesKey() }

// Outcomes counts finished jobs by network and status.
func (s *Store) Outcomes(ctx context.Context) (map[string]map[Status]int64, error) {
	h, err := s.rdb.HGetAll(ctx, s.outcomesKey()).Result()
	if err != nil {
		return nil, err
	}
	out := map[string]map[Status]int64{}
	for k, v := range h {
		network, status, ok := strings.Cut(k, ":")
		n, err := strconv.ParseInt(v, 10, 64)
		if !ok || err != nil {
			continue
		}
		if out[network] == nil {
			out[network] = map[Status]int64{}
		}
		out[network][Status(status)] = n
	}
	return out, nil
}

// RequestCancel flags the job for cancellation; the worker running it (or the next
// one to pick it up) ends it canceled.
func (s *Store) RequestCancel(ctx context.Context, id string) error {
	return s.set(ctx, id, false, Event{}, "cancel", "1")
}

// appendCapped appends to a job's output until it reaches the cap, then notes the
// truncation once, and adds what it appended to the job's stream of events (KEYS[2]).
// With a budget (KEYS[3], the client's counter of the window) it
// also keeps no more than the client has left, charges what it keeps, and notes once
// that the budget is spent: the log ending with that note stops it growing.
//
// ARGV: output, cap, truncation note, the log's TTL (s); with a budget: the limit,
// the window's end (unix s), the budget's note.
var appendCapped = redis.NewScript(`
local cap = tonumber(ARGV[2])
local cur = redis.call('STRLEN', KEYS[1])
if cur >= cap then return 0 end
local data, note = ARGV[1], ''
if #KEYS > 2 then
  local spent = ARGV[7]
  if cur >= string.len(spent) and redis.call('GETRANGE', KEYS[1], -string.len(spent), -1) == spent then
    return 0
  end
  local left = tonumber(ARGV[5]) - tonumber(redis.call('GET', KEYS[3]) or '0')
  if string.len(data) > left then
    data, note = string.sub(data, 1, math.max(left, 0)), spent
  end
end
local room = cap - cur - string.len(ARGV[3])
if string.len(data) > room then
  data, note = string.sub(data, 1, math.max(room, 0)), ARGV[3]
end
if #KEYS > 2 and string.len(data) > 0 then
  redis.call('INCRBY', KEYS[3], string.len(data))
  redis.call('EXPIREAT', KEYS[3], tonumber(ARGV[6]))
end
redis.call('APPEND', KEYS[1], data .. note)
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
if string.len(data .. note) > 0 then
  redis.call('XADD', KEYS[2], '*', 'type', 'log', 'data', data .. note)
  redis.call('EXPIRE', KEYS[2], tonumber(ARGV[4]))
end
return 1
`)

// LogBudget is whose budget a job's output is charged to: its client (a token's
// holder, or "ip:" and the address of a caller without a token), and how many bytes
// of output the client's jobs together may keep per budget window (a UTC day).
type LogBudget struct {
	Client string `json:"client"`
	Limit  int64  `json:"limit"`
}

// ChargeLogs makes a job's output count against its client's log budget, so that
// one client's jobs cannot fill Redis with output. The API calls it before it
// creates the job; a job without one keeps output up to LogCap only.
func (s *Store) ChargeLogs(ctx context.Context, id string, b LogBudget) error {
	if b.Limit <= 0 {
		return nil
	}
	v, err := json.Marshal(b)
	if err != nil {
		return err
	}
	if err := s.rdb.Set(ctx, s.ns.JobLogBudgetKey(id), v, s.retention).Err(); err != nil {
		return fmt.Errorf("log budget of job %s: %w", id, err)
	}
	return nil
}

func (s *Store) logBudget(ctx context.Context, id string) (LogBudget, error) {
	var b LogBudget
	v, err := s.rdb.Get(ctx, s.ns.JobLogBudgetKey(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return b, nil
	}
	if err != nil {
		return b, err
	}
	if err := json.Unmarshal(v, &b); err != nil {
		return b, fmt.Errorf("log budget: %w", err)
	}
	return b, nil
}

// budgetNote ends the log of a job whose client's log budget is spent.
func budgetNote(b LogBudget, frees time.Time) string {
	return fmt.Sprintf("\n[output no longer kept: the log budget of client %q is spent (%s a day, LOG_BUDGET_BYTES); the job goes on; the budget frees at %s]\n",
		b.Client, tasks.BudgetBytes(b.Limit), frees.UTC().Format(time.RFC3339))
}

// AppendLogs adds output to the job's log. The caller redacts it first.
func (s *Store) AppendLogs(ctx context.Context, id string, p []byte) error {
	if len(p) == 0 {
		return nil
	}
	keys := []string{s.logsKey(id), s.eventsKey(id)}
	args := []any{p, LogCap, truncatedNote, int(s.retention.Seconds())}
	b, err := s.logBudget(ctx, id)
	if err != nil {
		return fmt.Errorf("append logs of job %s: %w", id, err)
	}
	if b.Limit > 0 {
		window, ends := tasks.BudgetWindow(time.Now())
		keys = append(keys, s.ns.BudgetKey(tasks.LogBudget, window, b.Client))
		args = append(args, b.Limit, ends.Unix(), budgetNote(b, ends))
	}
	if err := appendCapped.Run(ctx, s.rdb, keys, args...).Err(); err != nil {
		return fmt.Errorf("append logs of job %s: %w", id, err)
	}
	return nil
}

// Logs returns the job's output.
func (s *Store) Logs(ctx context.Context, id string) ([]byte, error) {
	b, err := s.rdb.Get(ctx, s.logsKey(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	return b, err
}
