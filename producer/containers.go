package producer

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"time"

	"github.com/hibiken/asynq"
	"github.com/labstack/echo/v4"

	"github.com/deployer-dev/deployer/internal/fanout"
	"github.com/deployer-dev/deployer/jobs"
	"github.com/deployer-dev/deployer/tasks"
)

// ContainerStats answers GET /containers/stats.
type ContainerStats struct {
	Engines []EngineContainers `json:"engines"`
	// Unanswered names the workers that did not report within 10 s.
	Unanswered []fanout.Answer `json:"unanswered"`
	// Deployments counts finished jobs by network type, then status.
	Deployments map[string]map[jobs.Status]int64 `json:"deployments_by_network_type"`
}

// EngineContainers is one engine's containers, chains and pools.
type EngineContainers struct {
	EngineID     string                    `json:"engine_id"`
	Containers   map[string]map[string]int `json:"containers"`
	CachedImages int                       `json:"cached_images"`
	Chains       []tasks.ChainStatus       `json:"chains"`
	Pools        []tasks.PoolSnapshot      `json:"pools"`
	ReuseHits    int64                     `json:"reuse_hits"`
	ReuseMisses  int64                     `json:"reuse_misses"`
}

func (a *API) containerStats(c echo.Context) error {
	out, err := a.containers(c.Request().Context(), answerWait)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// containers asks every worker for its inventory and waits up to wait for them.
func (a *API) containers(ctx context.Context, wait time.Duration) (ContainerStats, error) {
	out := ContainerStats{Engines: []EngineContainers{}, Unanswered: []fanout.Answer{}}
	task, err := tasks.NewMaintenance(tasks.TypeContainerStats, tasks.Maintenance{RequestedAt: time.Now()})
	if err != nil {
		return out, err
	}
	// Stats are asked for often (the dashboard): their answers are kept briefly.
	sent, err := a.fanout.SendAll(ctx, task, time.Minute, asynq.Retention(2*time.Minute))
	if err != nil {
		return out, err
	}
	byEngine := map[string]*EngineContainers{}
	for _, ans := range a.fanout.Await(ctx, sent, wait) {
		var inv tasks.Inventory
		if ans.Error != "" || json.Unmarshal(ans.Result, &inv) != nil {
			out.Unanswered = append(out.Unanswered, ans)
			continue
		}
		e := byEngine[inv.EngineID]
		if e == nil {
			// Engine-wide facts are the same in every worker's report of it.
			e = &EngineContainers{EngineID: inv.EngineID, Containers: inv.Containers, CachedImages: inv.CachedImages, Chains: inv.Chains}
			byEngine[inv.EngineID] = e
		}
		e.Pools = append(e.Pools, inv.Pool)
		e.ReuseHits += inv.Pool.Hits
		e.ReuseMisses += inv.Pool.Misses
	}
	for _, e := range byEngine {
		out.Engines = append(out.Engines, *e)
	}
	sort.Slice(out.Engines, func(i, j int) bool { return out.Engines[i].EngineID < out.Engines[j].EngineID })
	byNetwork, err := a.jobs.Outcomes(ctx)
	if err != nil {
		return out, err
	}
	out.Deployments = map[string]map[jobs.Status]int64{}
	for name, counts := range byNetwork {
		typ := "unknown"
		if n, err := a.networks.Get(name); err == nil {
			typ = n.Type
		}
		if out.Deployments[typ] == nil {
			out.Deployments[typ] = map[jobs.Status]int64{}
		}
		for status, n := range counts {
			out.Deployments[typ][status] += n
		}
	}
	return out, nil
}

// ContainerCleanup answers POST /containers/cleanup.
type ContainerCleanup struct {
	Workers    []tasks.CleanupReport `json:"workers"`
	Unanswered []fanout.Answer       `json:"unanswered"`
}

// containerCleanup removes idle pooled containers and exited managed ones on every
// engine; running jobs and chains are left alone.
func (a *API) containerCleanup(c echo.Context) error {
	ctx := c.Request().Context()
	task, err := tasks.NewMaintenance(tasks.TypeContainerCleanup, tasks.Maintenance{RequestedAt: time.Now()})
	if err != nil {
		return err
	}
	sent, err := a.fanout.SendAll(ctx, task, 5*time.Minute)
	if err != nil {
		return err
	}
	out := ContainerCleanup{Workers: []tasks.CleanupReport{}, Unanswered: []fanout.Answer{}}
	for _, ans := range a.fanout.Await(ctx, sent, answerWait) {
		var rep tasks.CleanupReport
		if ans.Error != "" || json.Unmarshal(ans.Result, &rep) != nil {
			out.Unanswered = append(out.Unanswered, ans)
			continue
		}
		out.Workers = append(out.Workers, rep)
	}
	return c.JSON(http.StatusOK, out)
}
