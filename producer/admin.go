package producer

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/labstack/echo/v4"

	"github.com/deployer-dev/deployer/cache/compilecache"
	"github.com/deployer-dev/deployer/cache/compilers"
	"github.com/deployer-dev/deployer/cache/imagecache"
	"github.com/deployer-dev/deployer/dashboard"
	"github.com/deployer-dev/deployer/internal/fanout"
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
	imagecache.Entry
	AgeSeconds  int64 `json:"age_seconds"`
	IdleSeconds int64 `json:"idle_seconds"`
}

func (a *API) imageCacheStatus(c echo.Context) error {
	out, err := a.imageCache(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

func (a *API) imageCache(ctx context.Context) (ImageCacheStatus, error) {
	engines, err := a.imageIndex.Owners(ctx)
	if err != nil {
		return ImageCacheStatus{}, err
	}
	live, err := a.beats.Live(ctx, time.Now(), readyWithin)
	if err != nil {
		return ImageCacheStatus{}, err
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
		imgs, err := a.imageIndex.List(ctx, id)
		if err != nil {
			return out, err
		}
		st, err := a.imageIndex.Stats(ctx, id)
		if err != nil {
			return out, err
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
			e.Images = append(e.Images, CacheImage{Entry: img,
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
	return out, nil
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
	return a.maintenance(c, tasks.TypeImageExpire, a.fanout.Send)
}

// compileCacheCleanup runs the compile cache expiry on every worker's store.
func (a *API) compileCacheCleanup(c echo.Context) error {
	return a.maintenance(c, tasks.TypeCompileExpire, a.fanout.SendAll)
}

type sender func(context.Context, *asynq.Task, time.Duration, ...asynq.Option) ([]fanout.Sent, error)

// maintenance sends a maintenance task and answers 202 with where it went, or 200
// with every answer when the request says ?wait=true.
func (a *API) maintenance(c echo.Context, typ string, send sender) error {
	ctx := c.Request().Context()
	task, err := tasks.NewMaintenance(typ, tasks.Maintenance{RequestedAt: time.Now()})
	if err != nil {
		return err
	}
	sent, err := send(ctx, task, 5*time.Minute)
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
	return a.clear(c, tasks.TypeImageClear, a.fanout.Send, "Cleared all image cache", "image cache",
		a.imageIndex.Owners, a.imageIndex.DeleteOwner)
}

// compileCacheClear empties every worker's compile cache store and its index.
func (a *API) compileCacheClear(c echo.Context) error {
	return a.clear(c, tasks.TypeCompileClear, a.fanout.SendAll, "Cleared all foundry cache", "foundry cache",
		a.compileIndex.Owners, a.compileIndex.DeleteOwner)
}

// clear sends a clear everywhere, waits for the answers, and forgets the index
// entries of owners (engines, stores) nobody cleared: whatever is left there is
// adopted again, or expires.
func (a *API) clear(c echo.Context, typ string, send sender, done, what string,
	owners func(context.Context) ([]string, error), forget func(context.Context, string) error) error {
	ctx := c.Request().Context()
	task, err := tasks.NewMaintenance(typ, tasks.Maintenance{RequestedAt: time.Now()})
	if err != nil {
		return err
	}
	sent, err := send(ctx, task, 5*time.Minute)
	if err != nil {
		return err
	}
	answers := a.fanout.Await(ctx, sent, answerWait)
	cleared := map[string]bool{}
	failed := 0
	for _, ans := range answers {
		var owner struct {
			EngineID string `json:"engine_id"`
			StoreID  string `json:"store_id"`
		}
		if ans.Error != "" || json.Unmarshal(ans.Result, &owner) != nil {
			failed++
			continue
		}
		cleared[owner.EngineID+owner.StoreID] = true
	}
	ids, err := owners(ctx)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if !cleared[id] {
			if err := forget(ctx, id); err != nil {
				return err
			}
		}
	}
	resp := ClearResponse{Success: failed == 0, Message: done, Engines: answers}
	if resp.Engines == nil {
		resp.Engines = []fanout.Answer{}
	}
	switch {
	case len(sent) == 0:
		resp.Message = "Cleared the " + what + " index; no Docker engine has a live worker"
	case failed > 0:
		resp.Message = fmt.Sprintf("Cleared the %s on %d of %d workers", what, len(sent)-failed, len(sent))
	}
	return c.JSON(http.StatusOK, resp)
}

// CompileCacheStatus answers GET /admin/server/foundry-cache/status.
type CompileCacheStatus struct {
	CachedCompilations int `json:"cached_compilations"`
	// ByFramework counts the cached compilations of each framework.
	ByFramework     map[string]int `json:"by_framework"`
	CacheEnabled    bool           `json:"cache_enabled"`
	CacheTTLSeconds int64          `json:"cache_ttl_seconds"`
	Hits            int64          `json:"hits"`
	Misses          int64          `json:"misses"`
	HitRate         float64        `json:"hit_rate"`
	SizeBytes       int64          `json:"size_bytes"`
	Stores          []StoreCache   `json:"stores"`
}

// StoreCache is one artifact store's part of the compile cache.
type StoreCache struct {
	StoreID   string               `json:"store_id"`
	Hits      int64                `json:"hits"`
	Misses    int64                `json:"misses"`
	SizeBytes int64                `json:"size_bytes"`
	Entries   []compilecache.Entry `json:"entries"`
	// ByFramework counts this store's entries of each framework.
	ByFramework map[string]int `json:"by_framework"`
}

func (a *API) compileCacheStatus(c echo.Context) error {
	out, err := a.compileCache(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

func (a *API) compileCache(ctx context.Context) (CompileCacheStatus, error) {
	stores, err := a.compileIndex.Owners(ctx)
	if err != nil {
		return CompileCacheStatus{}, err
	}
	out := CompileCacheStatus{CacheEnabled: a.cfg.CompileCacheEnabled, CacheTTLSeconds: int64(a.cfg.CompileCacheTTL.Seconds()),
		Stores: []StoreCache{}, ByFramework: frameworkCounts()}
	for _, id := range stores {
		entries, err := a.compileIndex.List(ctx, id)
		if err != nil {
			return out, err
		}
		st, err := a.compileIndex.Stats(ctx, id)
		if err != nil {
			return out, err
		}
		sc := StoreCache{StoreID: id, Hits: st.Hits, Misses: st.Misses, Entries: []compilecache.Entry{}, ByFramework: frameworkCounts()}
		for _, e := range entries {
			// Past its TTL an entry is gone, whether or not an expiry ran yet.
			if time.Since(e.LastUsed) > a.cfg.CompileCacheTTL {
				continue
			}
			if e.Framework == "" {
				// Entries stored before Hardhat projects were deployed are Foundry's.
				e.Framework = compilecache.Foundry.Framework
			}
			sc.Entries = append(sc.Entries, e)
			sc.SizeBytes += e.Size
			sc.ByFramework[e.Framework]++
			out.ByFramework[e.Framework]++
		}
		out.CachedCompilations += len(sc.Entries)
		out.Hits += st.Hits
		out.Misses += st.Misses
		out.SizeBytes += sc.SizeBytes
		out.Stores = append(out.Stores, sc)
	}
	if n := out.Hits + out.Misses; n > 0 {
		out.HitRate = float64(out.Hits) / float64(n)
	}
	return out, nil
}

// frameworkCounts starts a count with every framework at zero, so that a client sees
// each one named.
func frameworkCounts() map[string]int {
	return map[string]int{compilecache.Foundry.Framework: 0, compilecache.Hardhat.Framework: 0}
}

// CompilerStatus answers GET /admin/server/compilers: the compiler versions each
// engine's store holds, and the defaults a pragma's range resolves against.
type CompilerStatus struct {
	DefaultVersions []string          `json:"default_versions"`
	Versions        []string          `json:"versions"`
	Engines         []EngineCompilers `json:"engines"`
}

// EngineCompilers is one engine's compiler store.
type EngineCompilers struct {
	EngineID  string            `json:"engine_id"`
	Compilers []compilers.Entry `json:"compilers"`
}

func (a *API) compilerStatus(c echo.Context) error {
	out, err := a.compilers(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

func (a *API) compilers(ctx context.Context) (CompilerStatus, error) {
	out := CompilerStatus{DefaultVersions: a.cfg.SolcVersions, Versions: []string{}, Engines: []EngineCompilers{}}
	engines, err := a.compilerIndex.Owners(ctx)
	if err != nil {
		return out, err
	}
	seen := map[string]bool{}
	for _, id := range engines {
		entries, err := a.compilerIndex.List(ctx, id)
		if err != nil {
			return out, err
		}
		for _, e := range entries {
			if !seen[e.Version] {
				seen[e.Version] = true
				out.Versions = append(out.Versions, e.Version)
			}
		}
		if entries == nil {
			entries = []compilers.Entry{}
		}
		out.Engines = append(out.Engines, EngineCompilers{EngineID: id, Compilers: entries})
	}
	sort.Strings(out.Versions)
	return out, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func (a *API) dashboardPage(c echo.Context) error {
	return c.HTMLBlob(http.StatusOK, dashboard.Index())
}
