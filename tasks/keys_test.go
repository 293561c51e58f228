package tasks

import (
	"testing"
	"time"
)

// The names a running installation's Redis holds, byte for byte: a release that
// changed one would lose what an older one wrote. Change this list only with a
// migration.
func TestNamesAreStable(t *testing.T) {
	ns := Namespace{Instance: "prod-2"}
	images, compile := ns.Cache(ImageCacheKind), ns.Cache(CompileCacheKind)
	golden := []struct{ got, want string }{
		{ns.DeployQueue(), "prod-2:deploy"},
		{ns.MaintenanceQueue(), "prod-2:maintenance"},
		{ns.WorkerQueue("host-7"), "prod-2:worker:host-7"},
		{MaintenanceRunID(MaintenanceImageExpiry, 1700000000), "maintenance:run:image-expiry:1700000000"},
		{ns.JobKey("j1"), "deployer:prod-2:job:j1"},
		{ns.JobLogsKey("j1"), "deployer:prod-2:job:j1:logs"},
		{ns.JobEventsKey("j1"), "deployer:prod-2:job:j1:events"},
		{ns.RecentJobsKey(), "deployer:prod-2:jobs:recent"},
		{ns.OutcomesKey(), "deployer:prod-2:stats:outcomes"},
		{ns.JobLogBudgetKey("j1"), "deployer:prod-2:job:j1:log-budget"},
		{ns.ProjectKey("abc"), "deployer:prod-2:project:abc"},
		{ns.BudgetKey(UploadBudget, "2024-03-01", "alice"), "deployer:prod-2:budget:uploads:2024-03-01:alice"},
		{ns.BudgetKey(LogBudget, "2024-03-01", "ip:2001:db8::1"), "deployer:prod-2:budget:logs:2024-03-01:ip:2001:db8::1"},
		{ns.WorkersKey(), "deployer:prod-2:workers"},
		{ns.WorkerKey("host-7"), "deployer:prod-2:worker:host-7"},
		{ns.LeaseKey("c1"), "deployer:prod-2:lease:c1"},
		{ns.ImageBuildLock("e1", "k1"), "deployer:prod-2:lock:image-build:e1:k1"},
		{ns.ChainLock("e1", "local"), "deployer:prod-2:lock:chain:e1:local"},
		{ns.SenderLock("e1", "local", "0xabc"), "deployer:prod-2:lock:sender:e1:local:0xabc"},
		{ns.SenderSeed(), "deployer:prod-2:sender-seed"},
		{ns.CompilersLock("e1"), "deployer:prod-2:lock:compilers:e1"},
		{ns.DepsLock("e1", "abc"), "deployer:prod-2:lock:deps:e1:abc"},
		{ns.Cache(CompilerStoreKind).Entries("e1"), "deployer:prod-2:compilers:e1:entries"},
		{ns.JournalKey("j1"), "deployer:prod-2:journal:j1"},
		{ns.IdempotencyKey("alice", "abc"), "deployer:prod-2:idempotency:alice:abc"},
		{images.Owners(), "deployer:prod-2:images:owners"},
		{images.Entries("e1"), "deployer:prod-2:images:e1:entries"},
		{images.LastUsed("e1"), "deployer:prod-2:images:e1:last-used"},
		{images.Stats("e1"), "deployer:prod-2:images:e1:stats"},
		{compile.Owners(), "deployer:prod-2:compilations:owners"},
		{compile.Entries("s1"), "deployer:prod-2:compilations:s1:entries"},
		{compile.LastUsed("s1"), "deployer:prod-2:compilations:s1:last-used"},
		{compile.Stats("s1"), "deployer:prod-2:compilations:s1:stats"},
		{TypeDeploy, "deploy:run"},
		{TypeImageExpire, "cache:images:expire"},
		{TypeImageClear, "cache:images:clear"},
		{TypeCompileExpire, "cache:compile:expire"},
		{TypeCompileClear, "cache:compile:clear"},
		{TypeContainerStats, "containers:stats"},
		{TypeContainerCleanup, "containers:cleanup"},
		{TypePoolSweep, "containers:sweep"},
		{TypeMaintenanceRun, "maintenance:run"},
		{MaintenanceCompileExpiry, "compile-expiry"},
		{MaintenancePoolSweep, "pool-sweep"},
	}
	for _, g := range golden {
		if g.got != g.want {
			t.Errorf("name %q, want %q", g.got, g.want)
		}
	}
	// Two installations on one Redis share nothing.
	a, b := Namespace{Instance: "a"}, Namespace{Instance: "b"}
	if a.JobKey("x") == b.JobKey("x") || a.DeployQueue() == b.DeployQueue() || a.WorkerQueue("w") == b.WorkerQueue("w") {
		t.Error("two instances share a key or queue")
	}
}

// A budget window is a UTC day, whatever the caller's zone: it ends at the next UTC
// midnight, which is when an over-budget client is told its budget frees.
func TestBudgetWindow(t *testing.T) {
	east := time.FixedZone("UTC+9", 9*3600)
	for _, tt := range []struct {
		at   time.Time
		name string
		ends time.Time
	}{
		{time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC), "2024-03-01", time.Date(2024, 3, 2, 0, 0, 0, 0, time.UTC)},
		{time.Date(2024, 3, 1, 23, 59, 59, 0, time.UTC), "2024-03-01", time.Date(2024, 3, 2, 0, 0, 0, 0, time.UTC)},
		{time.Date(2024, 3, 2, 8, 0, 0, 0, east), "2024-03-01", time.Date(2024, 3, 2, 0, 0, 0, 0, time.UTC)},
		{time.Date(2024, 2, 29, 12, 0, 0, 0, time.UTC), "2024-02-29", time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)},
	} {
		name, ends := BudgetWindow(tt.at)
		if name != tt.name || !ends.Equal(tt.ends) {
			t.Errorf("BudgetWindow(%v) = %s, %v; want %s, %v", tt.at, name, ends, tt.name, tt.ends)
		}
	}
}
