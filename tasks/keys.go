package tasks

import (
	"fmt"
	"strings"
	"time"
)

// Every Redis key and asynq queue of an installation is named here, and only here.
// The strings are a contract with running installations: a release that changed one
// would lose the state an older release wrote (keys_test.go holds them byte for byte).

// Namespace names the Redis keys and asynq queues of one installation, so that two
// installations on one Redis never see each other's state.
type Namespace struct {
	Instance string
}

func (n Namespace) key(parts ...string) string {
	return "deployer:" + n.Instance + ":" + strings.Join(parts, ":")
}

// DeployQueue is the shared queue of deployments.
func (n Namespace) DeployQueue() string { return n.Instance + ":deploy" }

// MaintenanceQueue is the shared queue of periodic maintenance.
func (n Namespace) MaintenanceQueue() string { return n.Instance + ":maintenance" }

// WorkerQueue is the queue only the named worker listens on, for work that must reach
// one engine (cleanup, cache clear, stats).
func (n Namespace) WorkerQueue(workerID string) string { return n.Instance + ":worker:" + workerID }

// MaintenanceRunID is the asynq task id of a scheduled run of a kind of maintenance
// in the period starting at unix seconds: every scheduler names a period alike, so
// asynq refuses the second copy.
func MaintenanceRunID(kind string, periodStart int64) string {
	return fmt.Sprintf("%s:%s:%d", TypeMaintenanceRun, kind, periodStart)
}

// JobKey is a job's record (a hash).
func (n Namespace) JobKey(id string) string { return n.key("job", id) }

// JobLogsKey is a job's output.
func (n Namespace) JobLogsKey(id string) string { return n.key("job", id, "logs") }

// JobEventsKey is a job's stream of events (steps, output, its end), which the API
// relays to clients that follow the job.
func (n Namespace) JobEventsKey(id string) string { return n.key("job", id, "events") }

// RecentJobsKey indexes jobs by creation time, for the dashboard.
func (n Namespace) RecentJobsKey() string { return n.key("jobs", "recent") }

// OutcomesKey counts finished jobs by network and status.
func (n Namespace) OutcomesKey() string { return n.key("stats", "outcomes") }

// JobLogBudgetKey says whose log budget a job's output is charged to, and how large
// that budget is: the API writes it, the worker appending the output reads it.
func (n Namespace) JobLogBudgetKey(id string) string { return n.key("job", id, "log-budget") }

// Kinds of per-client byte budget, as their keys name them.
const (
	UploadBudget = "uploads"
	LogBudget    = "logs"
)

// BudgetKey counts the bytes of a kind (UploadBudget, LogBudget) a client stored in
// one budget window (BudgetWindow). The client comes last: an address holds colons.
func (n Namespace) BudgetKey(kind, window, client string) string {
	return n.key("budget", kind, window, client)
}

// BudgetWindow names the budget window t falls in (a UTC day) and says when it ends:
// budgets are per client per day, and a window's counter goes when the day does.
func BudgetWindow(t time.Time) (name string, ends time.Time) {
	day := t.UTC().Truncate(24 * time.Hour)
	return day.Format(time.DateOnly), day.Add(24 * time.Hour)
}

// BudgetBytes writes a budget's bytes as the messages about budgets say them.
func BudgetBytes(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d bytes", n)
}

// ProjectKey is an uploaded project's archive, by its sha256.
func (n Namespace) ProjectKey(sum string) string { return n.key("project", sum) }

// WorkersKey indexes workers by their last heartbeat.
func (n Namespace) WorkersKey() string { return n.key("workers") }

// WorkerKey is a worker's last heartbeat.
func (n Namespace) WorkerKey(id string) string { return n.key("worker", id) }

// LeaseKey is a pooled job container's lease: its owner and state.
func (n Namespace) LeaseKey(containerID string) string { return n.key("lease", containerID) }

// ImageBuildLock serializes builds of one runner image on one engine.
func (n Namespace) ImageBuildLock(engineID, imageKey string) string {
	return n.key("lock", "image-build", engineID, imageKey)
}

// ChainLock serializes starting the chain of a network on one engine.
func (n Namespace) ChainLock(engineID, network string) string {
	return n.key("lock", "chain", engineID, network)
}

// SenderLock serializes deployments from one sender to the chain of a network on
// one engine.
func (n Namespace) SenderLock(engineID, network, sender string) string {
	return n.key("lock", "sender", engineID, network, sender)
}

// SenderSeed is the seed the keys of managed chains' senders derive from.
func (n Namespace) SenderSeed() string { return n.key("sender-seed") }

// JournalKey lists the transactions a job's gateway signed, before it sent them.
func (n Namespace) JournalKey(jobID string) string { return n.key("journal", jobID) }

// IdempotencyKey maps a client's Idempotency-Key (its hash) to the job it made.
func (n Namespace) IdempotencyKey(client, keyHash string) string {
	return n.key("idempotency", client, keyHash)
}

// DepsLock serializes filling a dependency set's volume on one engine.
func (n Namespace) DepsLock(engineID, set string) string {
	return n.key("lock", "deps", engineID, set)
}

// CompilersLock serializes filling the compiler store's volume on one engine.
func (n Namespace) CompilersLock(engineID string) string { return n.key("lock", "compilers", engineID) }

// Kinds of cache index, as their keys name them.
const (
	ImageCacheKind    = "images"
	CompileCacheKind  = "compilations"
	CompilerStoreKind = "compilers"
)

// Cache names the keys of a cache index of the kind.
func (n Namespace) Cache(kind string) CacheKeys { return CacheKeys{ns: n, Kind: kind} }

// CacheKeys are the keys of one cache index.
type CacheKeys struct {
	ns   Namespace
	Kind string
}

// Owners is the set of owners (engines, stores) with entries or counters.
func (c CacheKeys) Owners() string { return c.ns.key(c.Kind, "owners") }

// Entries holds an owner's entries.
func (c CacheKeys) Entries(owner string) string { return c.ns.key(c.Kind, owner, "entries") }

// LastUsed holds the last use of an owner's entries.
func (c CacheKeys) LastUsed(owner string) string { return c.ns.key(c.Kind, owner, "last-used") }

// Stats holds an owner's counters.
func (c CacheKeys) Stats(owner string) string { return c.ns.key(c.Kind, owner, "stats") }
