package producer

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	"golang.org/x/sync/semaphore"

	"github.com/deployer-dev/deployer/jobs"
)

const (
	// maxFollowers bounds the clients following jobs at once: each holds a Redis
	// connection while it waits.
	maxFollowers = 256
	// followWindow is how long one read of a job's events waits; between two, the
	// stream gets a comment (proxies drop silent connections) and the job's record
	// is read again (a job whose task asynq archived has no end event).
	followWindow = 15 * time.Second
	// eventBatch bounds the events read at once.
	eventBatch = 256
)

// followers reads jobs' events for the clients that follow them, on Redis
// connections of their own.
type followers struct {
	rdb   redis.UniversalClient
	store *jobs.Store
	slots *semaphore.Weighted
}

// newFollowers opens the followers' client: the API's own client's options, with a
// pool as large as the followers allowed.
func newFollowers(rdb redis.UniversalClient, store *jobs.Store) *followers {
	f := &followers{rdb: rdb, store: store, slots: semaphore.NewWeighted(maxFollowers)}
	if c, ok := rdb.(*redis.Client); ok {
		opt := *c.Options()
		opt.PoolSize = maxFollowers + 8
		// The copy would share the original's notification handlers, which go-redis
		// refuses to register twice; a single Redis sends no such notifications.
		opt.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
		f.rdb = redis.NewClient(&opt)
		f.store = store.Follower(f.rdb)
	}
	return f
}

func (f *followers) close(shared redis.UniversalClient) error {
	if f.rdb == shared {
		return nil
	}
	return f.rdb.Close()
}

// jobEvents streams a job as server-sent events: "step" ({"step"}), "log"
// ({"text"}, redacted by the worker before it was stored) and, last, "end" (the job
// as GET /deploy/<id> answers it), after which the server closes the stream. Each
// event carries its id: a client that reconnects with Last-Event-ID (or
// ?last_event_id=) gets what followed, so that no event, the end least of all, is
// lost to a dropped connection or a restarted API.
func (a *API) jobEvents(c echo.Context) error {
	j, err := a.loadJob(c)
	if err != nil {
		return err
	}
	last := c.Request().Header.Get("Last-Event-ID")
	if last == "" {
		last = c.QueryParam("last_event_id")
	}
	if last != "" && !jobs.ValidEventID(last) {
		return apiError(http.StatusBadRequest, "Last-Event-ID %q is not an event id of this stream", last)
	}
	ctx := c.Request().Context()
	if !a.follow.slots.TryAcquire(1) {
		return apiError(http.StatusServiceUnavailable, "%d clients follow jobs already; poll GET /deploy/%s?wait=60s instead", maxFollowers, j.ID)
	}
	defer a.follow.slots.Release(1)

	w := c.Response()
	rc := http.NewResponseController(w)
	w.Header().Set(echo.HeaderContentType, "text/event-stream")
	w.Header().Set(echo.HeaderCacheControl, "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// A browser's EventSource waits this long before it reconnects.
	fmt.Fprint(w, "retry: 1000\n\n")
	w.Flush()

	// Each read of events may wait a window, and its answer must then leave in time.
	deadline := followWindow + a.cfg.Timeouts.withDefaults().Write
	wait := time.Duration(0) // the first read does not wait: an ended job's stream is all there
	for {
		_ = rc.SetWriteDeadline(time.Now().Add(deadline))
		evs, err := a.follow.store.Events(ctx, j.ID, last, wait, eventBatch)
		if err != nil {
			if ctx.Err() == nil {
				// The status is sent: the stream ends, and the client reconnects.
				a.log.Warn("job events: read failed", "job_id", j.ID, "error", err)
			}
			return nil
		}
		wait = followWindow
		if len(evs) == 0 {
			ended, err := a.endedWithoutEvent(ctx, w, j.ID)
			if err != nil || ended {
				return nil
			}
			fmt.Fprint(w, ": waiting\n\n")
			w.Flush()
			continue
		}
		for _, ev := range evs {
			last = ev.ID
			if ev.Type == jobs.EventEnd {
				a.sendEnd(ctx, w, ev.ID, j.ID)
				return nil
			}
			var data any
			switch ev.Type {
			case jobs.EventStep:
				data = map[string]string{"step": ev.Data}
			case jobs.EventLog:
				data = map[string]string{"text": ev.Data}
			default:
				continue
			}
			writeEvent(w, ev.ID, ev.Type, data)
		}
		w.Flush()
	}
}

// endedWithoutEvent ends the stream of a job that ended without an end event in
// its stream (asynq archived its task, or the stream expired before the record),
// and says whether it did.
func (a *API) endedWithoutEvent(ctx context.Context, w io.Writer, id string) (bool, error) {
	j, err := a.jobs.Get(ctx, id)
	if err != nil {
		return false, err
	}
	if st, _ := j.Effective(a.taskState(j.Queue, j.ID)); !st.Final() {
		return false, nil
	}
	writeEvent(w, "", jobs.EventEnd, a.view(ctx, j))
	return true, nil
}

// sendEnd sends the end event: the job as it ended.
func (a *API) sendEnd(ctx context.Context, w *echo.Response, eventID, id string) {
	j, err := a.jobs.Get(ctx, id)
	if err != nil {
		a.log.Warn("job events: the ended job could not be read", "job_id", id, "error", err)
		return
	}
	writeEvent(w, eventID, jobs.EventEnd, a.view(ctx, j))
	w.Flush()
}

// writeEvent writes one server-sent event; data is JSON, on one line.
func writeEvent(w io.Writer, id, typ string, data any) {
	b, err := json.Marshal(data)
	if err != nil {
		b = []byte("null")
	}
	if id != "" {
		fmt.Fprintf(w, "id: %s\n", id)
	}
	fmt.Fprintf(w, "event: %s\ndata: %s\n\n", typ, b)
}
