package producer

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/deployer-dev/deployer/cache"
	"github.com/deployer-dev/deployer/fanout"
	"github.com/deployer-dev/deployer/tasks"
)

// answerWait is how long an admin request waits for every engine's worker.
const answerWait = 10 * time.Second

// ImageCacheStatus answers GET /admin/server/cache/status.
type ImageCacheStatus struct {
	CachedImages    int           `json:"cached_images"`
	CacheEnabled    bool          `json:"cache_enabled"`
	CachedImageTags []string      `json:"cached_image_tags"`
	MaxAgeSeconds   int64         `json:"max_age_seconds"`
	Engines         []EngineCache `json:"engines"`
}

// EngineCache is one engine's part of the image cache.
type EngineCache struct {
	EngineID string `json:"engine_id"`
	// Live says a worker on the engine beat in the last 30 s.
	Live    bool         `json:"live"`
	Workers []string     `json:"workers"`
	Hits    int64        `json:"hits"`
	Misses  int64        `json:"misses"`
	Builds  int64        `json:"builds"`
	HitRate float64      `json:"hit_rate"`
	Images  []CacheImage `json:"images"`
}

// CacheImage is one cached image with its ages.
type CacheImage struct {
	cache.Image
	AgeSeconds  int64 `json:"age_seconds"`
	IdleSeconds int64 `json:"idle_seconds"`
}

func (a *API) imageCacheStatus(c echo.Context) error {
	ctx := c.Request().Context()
	engines, err := a.images.Engines(ctx)
	if err != nil {
		return err
	}
	live, err := a.registry.Live(ctx, time.Now(), readyWithin)
	if err != nil {
		return err
	}
	workers := map[string][]string{}
	for _, w := range live {
		workers[w.EngineID] = append(workers[w.EngineID], w.ID)
		if !contains(engines, w.EngineID) {
			engines = append(engines, w.EngineID)
		}
	}
	sort.Strings(engines)
	now := time.Now()
	out := ImageCacheStatus{CacheEnabled: a.cfg.ImageCacheEnabled, MaxAgeSeconds: int64(a.cfg.ImageCacheMaxAge.Seconds()),
		CachedImageTags: []string{}, Engines: []EngineCache{}}
	for _, id := range engines {
		imgs, err := a.images.List(ctx, id)
		if err != nil {
			return err
		}
		st, err := a.images.Stats(ctx, id)
		if err != nil {
			return err
		}
		e := EngineCache{EngineID: id, Live: len(workers[id]) > 0, Workers: workers[id], Hits: st.Hits,
			Misses: st.Misses, Builds: st.Builds, Images: []CacheImage{}}
		if e.Workers == nil {
			e.Workers = []string{}
		}
		if n := st.Hits + st.Misses; n > 0 {
			e.HitRate = float64(st.Hits) / float64(n)
		}
		for _, img := range imgs {
			e.Images = append(e.Images, CacheImage{Image: img,
				AgeSeconds: int64(now.Sub(img.BuiltAt).Seconds()), IdleSeconds: int64(now.Sub(img.LastUsed).Seconds())})
			latest, _, _ := strings.Cut(img.Tag, ":")
			if latest += ":latest"; !contains(out.CachedImageTags, latest) {
				out.CachedImageTags = append(out.CachedImageTags, latest)
			}
		}
		out.CachedImages += len(imgs)
		out.Engines = append(out.Engines, e)
	}
	sort.Strings(out.CachedImageTags)
	return c.JSON(http.StatusOK, out)
}

// CleanupResponse answers POST /admin/server/cache/cleanup.
type CleanupResponse struct {
	TaskID  string          `json:"task_id,omitempty"`
	Queue   string          `json:"queue,omitempty"`
	Tasks   []fanout.Sent   `json:"tasks"`
	Engines []fanout.Answer `json:"engines,omitempty"`
}

// imageCacheCleanup runs the image expiry now on every engine with a live worker.
// It answers at once (202) unless asked to wait (?wait=true).
func (a *API) imageCacheCleanup(c echo.Context) error {
	ctx := c.Request().Context()
	task, err := tasks.NewMaintenance(tasks.TypeImageExpire, tasks.Maintenance{RequestedAt: time.Now()})
	if err != nil {
		return err
	}
	sent, err := a.fanout.Send(ctx, task, 5*time.Minute)
	if err != nil {
		return err
	}
	if len(sent) == 0 {
		return apiError(http.StatusServiceUnavailable, "no Docker engine has a live worker to run the cleanup")
	}
	resp := CleanupResponse{TaskID: sent[0].TaskID, Queue: sent[0].Queue, Tasks: sent}
	if c.QueryParam("wait") != "true" {
		return c.JSON(http.StatusAccepted, resp)
	}
	resp.Engines = a.fanout.Await(ctx, sent, answerWait)
	return c.JSON(http.StatusOK, resp)
}

// ClearResponse answers POST /admin/server/cache/clear.
type ClearResponse struct {
	Success bool            `json:"success"`
	Message string          `json:"message"`
	Engines []fanout.Answer `json:"engines"`
}

// imageCacheClear empties the image cache of every engine and its index.
func (a *API) imageCacheClear(c echo.Context) error {
	ctx := c.Request().Context()
	task, err := tasks.NewMaintenance(tasks.TypeImageClear, tasks.Maintenance{RequestedAt: time.Now()})
	if err != nil {
		return err
	}
	sent, err := a.fanout.Send(ctx, task, 5*time.Minute)
	if err != nil {
		return err
	}
	answers := a.fanout.Await(ctx, sent, answerWait)
	// Engines whose worker did not clear its own entries (none live, or no answer)
	// lose them here; the images left there are adopted again when next seen.
	cleared := map[string]bool{}
	failed := 0
	for _, ans := range answers {
		if ans.Error == "" {
			cleared[ans.EngineID] = true
		} else {
			failed++
		}
	}
	engines, err := a.images.Engines(ctx)
	if err != nil {
		return err
	}
	for _, id := range engines {
		if !cleared[id] {
			if err := a.images.DeleteEngine(ctx, id); err != nil {
				return err
			}
		}
	}
	resp := ClearResponse{Success: failed == 0, Message: "Cleared all image cache", Engines: answers}
	if resp.Engines == nil {
		resp.Engines = []fanout.Answer{}
	}
	switch {
	case len(sent) == 0:
		resp.Message = "Cleared the image cache index; no Docker engine has a live worker"
	case failed > 0:
		resp.Message = fmt.Sprintf("Cleared the image cache on %d of %d engines", len(sent)-failed, len(sent))
	}
	return c.JSON(http.StatusOK, resp)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
