package producer

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/deployer-dev/deployer/api"
	"github.com/deployer-dev/deployer/internal/heartbeat"
)

// Overview is everything the dashboard shows, in one answer.
type Overview struct {
	Instance    string             `json:"instance"`
	GeneratedAt time.Time          `json:"generated_at"`
	Ready       bool               `json:"ready"`
	ReadyReason string             `json:"ready_reason,omitempty"`
	Queues      []QueueDepth       `json:"queues"`
	Workers     []heartbeat.Worker `json:"workers"`
	// RecentJobs are the newest jobs, newest first.
	RecentJobs   []api.Job          `json:"recent_jobs"`
	ImageCache   ImageCacheStatus   `json:"image_cache"`
	CompileCache CompileCacheStatus `json:"compile_cache"`
	// Compilers are the solc versions the engines' stores hold.
	Compilers CompilerStatus `json:"compilers"`
	// Containers holds the pools, chains and deployments by network type.
	Containers ContainerStats `json:"containers"`
}

// QueueDepth is one queue's tasks by state.
type QueueDepth struct {
	Name           string `json:"name"`
	Pending        int    `json:"pending"`
	Active         int    `json:"active"`
	Scheduled      int    `json:"scheduled"`
	Retry          int    `json:"retry"`
	Archived       int    `json:"archived"`
	Completed      int    `json:"completed"`
	ProcessedToday int    `json:"processed_today"`
	FailedToday    int    `json:"failed_today"`
}

// recentJobs is how many jobs the dashboard lists and charts.
const recentJobs = 60

// overviewWait bounds how long the dashboard waits for workers' inventories: it
// refreshes every few seconds, and a slow worker shows as unanswered.
const overviewWait = 2 * time.Second

func (a *API) overview(c echo.Context) error {
	ctx := c.Request().Context()
	out := Overview{Instance: a.ns.Instance, GeneratedAt: time.Now(), Queues: []QueueDepth{}, RecentJobs: []api.Job{}}
	out.Ready, out.ReadyReason = a.ready(ctx)
	for _, q := range []string{a.ns.DeployQueue(), a.ns.MaintenanceQueue()} {
		d := QueueDepth{Name: q}
		if info, err := a.inspector.GetQueueInfo(q); err == nil {
			d = QueueDepth{Name: q, Pending: info.Pending, Active: info.Active, Scheduled: info.Scheduled, Retry: info.Retry,
				Archived: info.Archived, Completed: info.Completed, ProcessedToday: info.Processed, FailedToday: info.Failed}
		}
		out.Queues = append(out.Queues, d)
	}
	live, err := a.beats.Live(ctx, time.Now(), readyWithin)
	if err != nil {
		return err
	}
	out.Workers = live
	if out.Workers == nil {
		out.Workers = []heartbeat.Worker{}
	}
	ids, err := a.jobs.Recent(ctx, recentJobs)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if j, err := a.jobs.Get(ctx, id); err == nil {
			out.RecentJobs = append(out.RecentJobs, a.view(ctx, j))
		}
	}
	if out.ImageCache, err = a.imageCache(ctx); err != nil {
		return err
	}
	if out.CompileCache, err = a.compileCache(ctx); err != nil {
		return err
	}
	if out.Compilers, err = a.compilers(ctx); err != nil {
		return err
	}
	if out.Containers, err = a.containers(ctx, overviewWait); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// ready says whether Redis answers and a worker with a healthy engine beat lately,
// and if not, why.
func (a *API) ready(ctx context.Context) (bool, string) {
	if err := a.rdb.Ping(ctx).Err(); err != nil {
		return false, "redis does not answer"
	}
	live, err := a.beats.Live(ctx, time.Now(), readyWithin)
	if err != nil {
		return false, "cannot read the workers' heartbeats"
	}
	for _, w := range live {
		if w.Healthy {
			return true, ""
		}
	}
	return false, "no worker with a healthy Docker engine has reported in the last 30 s"
}
