package metrics

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/deployer-dev/deployer/jobs"
	"github.com/deployer-dev/deployer/tasks"
)

type pool tasks.PoolSnapshot

func (p pool) Snapshot() tasks.PoolSnapshot { return tasks.PoolSnapshot(p) }

// A warm deployment and a cold one land in their own series, each phase in its
// histogram, the caches' hits and misses counted; the pool and the chains are read
// at each scrape; every name is ours.
func TestDeploymentsAndWorker(t *testing.T) {
	reg := NewRegistry()
	d := NewDeployments(reg)
	warm := jobs.Report{Result: &jobs.Result{}, Cache: jobs.Cache{ImageHit: true, ContainerReused: true, CompileHit: true},
		Timings: jobs.Timings{Queue: 10, Project: 20, Image: 5, Container: 15, Copy: 30, Deploy: 600, Confirm: 20, Release: 0, Total: 700, Within: jobs.Within{Forge: 500}}}
	cold := jobs.Report{Timings: jobs.Timings{Image: 30000, Compile: 2000, Deploy: 900, Total: 32900}}
	d.Observe("local", "foundry", Completed, warm)
	d.Observe("local", "foundry", Failed, cold)
	d.Observe("local", "foundry", "", jobs.Report{})
	RegisterWorker(reg, "w1", pool{Keys: []tasks.PoolKey{{Key: "local/foundry", Idle: 2, Busy: 1}}, Hits: 7, Misses: 1},
		func(context.Context) ([]tasks.ChainStatus, error) {
			return []tasks.ChainStatus{{Network: "local", Healthy: true}}, nil
		})

	for name, want := range map[string]int{
		"deployer_deployment_duration_seconds": 2, "deployer_deployment_phase_seconds": 8,
		"deployer_image_cache_lookups_total": 2, "deployer_compile_cache_lookups_total": 2,
		"deployer_pool_idle_containers": 1, "deployer_chain_up": 1,
	} {
		if n, err := testutil.GatherAndCount(reg, name); err != nil || n != want {
			t.Errorf("%s: %d series (%v), want %d", name, n, err, want)
		}
	}
	expect := `
# HELP deployer_compile_cache_lookups_total Compile cache lookups by deployments that got that far, by result (hit, miss).
# TYPE deployer_compile_cache_lookups_total counter
deployer_compile_cache_lookups_total{result="hit"} 1
deployer_compile_cache_lookups_total{result="miss"} 1
# HELP deployer_pool_busy_containers Job containers running a job, per pool key.
# TYPE deployer_pool_busy_containers gauge
deployer_pool_busy_containers{key="local/foundry",worker="w1"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(expect), "deployer_compile_cache_lookups_total", "deployer_pool_busy_containers"); err != nil {
		t.Error(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if n := mf.GetName(); !strings.HasPrefix(n, "deployer_") && !strings.HasPrefix(n, "go_") && !strings.HasPrefix(n, "process_") {
			t.Errorf("metric %s is not named deployer_…", n)
		}
	}
}
