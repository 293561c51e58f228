package producer

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/deployer-dev/deployer/api"
	"github.com/deployer-dev/deployer/jobs"
)

// sseEvent is one server-sent event as a client reads it.
type sseEvent struct {
	id, typ, data string
}

// follow reads a job's events until the server closes the stream, or until stop
// says so of an event.
func (f *fixture) follow(id, lastID string, stop func(sseEvent) bool) []sseEvent {
	f.t.Helper()
	req, err := http.NewRequest(http.MethodGet, f.srv.URL+"/deploy/"+id+"/events", nil)
	if err != nil {
		f.t.Fatal(err)
	}
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		f.t.Fatalf("events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var out []sseEvent
	var ev sseEvent
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if ev.typ != "" {
				out = append(out, ev)
				if stop != nil && stop(ev) {
					return out
				}
			}
			ev = sseEvent{}
		case strings.HasPrefix(line, "id: "):
			ev.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			ev.typ = line[7:]
		case strings.HasPrefix(line, "data: "):
			ev.data = line[6:]
		}
	}
	return out
}

// queue queues a deployment of the counter and returns the API's answer.
func (f *fixture) queue() api.DeployResponse {
	f.t.Helper()
	code, body := f.deploy(`{"path_url": "counter", "framework": "foundry"}`)
	if code != http.StatusAccepted {
		f.t.Fatalf("deploy: %d %s", code, body)
	}
	var resp api.DeployResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		f.t.Fatal(err)
	}
	return resp
}

// A follower hears a job's steps, its output and its end, in order, and the
// stream closes after the end; one that reconnects with Last-Event-ID gets only
// what followed, the end included.
func TestJobEventsStream(t *testing.T) {
	f := newFixture(t)
	resp := f.queue()
	store := jobs.NewStore(f.rdb, f.ns, time.Hour)
	ctx := context.Background()

	got := make(chan []sseEvent, 1)
	go func() { got <- f.follow(resp.JobID, "", nil) }()
	// The worker's side, while the client follows.
	if err := store.Start(ctx, resp.JobID, "w1", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := store.SetStep(ctx, resp.JobID, "compiling"); err != nil {
		t.Fatal(err)
	}
	if err := store.AppendLogs(ctx, resp.JobID, []byte("Compiler run successful!\n")); err != nil {
		t.Fatal(err)
	}
	out := jobs.Outcome{Status: jobs.Completed, Result: &jobs.Result{ChainID: 31337, Contracts: []jobs.Contract{{Name: "Counter", Address: "0x1"}}}}
	if err := store.Finish(ctx, resp.JobID, out, time.Now()); err != nil {
		t.Fatal(err)
	}
	var evs []sseEvent
	select {
	case evs = <-got:
	case <-time.After(30 * time.Second):
		t.Fatal("the stream did not close after the job's end")
	}
	var kinds []string
	for _, ev := range evs {
		kinds = append(kinds, ev.typ+" "+ev.data)
	}
	want := []string{`step {"step":"starting"}`, `step {"step":"compiling"}`, `log {"text":"Compiler run successful!\n"}`}
	if len(evs) != 4 || strings.Join(kinds[:3], "|") != strings.Join(want, "|") || evs[3].typ != "end" {
		t.Fatalf("events:\n%s\nwant %s, then the end", strings.Join(kinds, "\n"), strings.Join(want, "\n"))
	}
	var end api.Job
	if err := json.Unmarshal([]byte(evs[3].data), &end); err != nil || end.Status != jobs.Completed || end.Result == nil || end.Result.Contracts[0].Address != "0x1" {
		t.Fatalf("end event: %s (%v)", evs[3].data, err)
	}

	// Reconnecting after the log line: the end, and nothing before it.
	again := f.follow(resp.JobID, evs[2].id, nil)
	if len(again) != 1 || again[0].typ != "end" || again[0].id != evs[3].id {
		t.Fatalf("after a reconnect: %+v", again)
	}
	if code, _ := f.do(http.MethodGet, "/deploy/"+resp.JobID+"/events?last_event_id=x", "", nil); code != http.StatusBadRequest {
		t.Errorf("a bad Last-Event-ID: %d, want 400", code)
	}
}

// A long poll answers as soon as the job ends, not at its next poll.
func TestLongPollWakesAtTheEnd(t *testing.T) {
	f := newFixture(t)
	resp := f.queue()
	store := jobs.NewStore(f.rdb, f.ns, time.Hour)
	ctx := context.Background()
	if err := store.Start(ctx, resp.JobID, "w1", time.Now()); err != nil {
		t.Fatal(err)
	}
	type answer struct {
		code int
		body []byte
	}
	done := make(chan answer, 1)
	go func() {
		c, b := f.do(http.MethodGet, "/deploy/"+resp.JobID+"?wait=60s", "", nil)
		done <- answer{c, b}
	}()
	// The poll is waiting: nothing comes back before the end.
	select {
	case a := <-done:
		t.Fatalf("the long poll answered before the end: %d %s", a.code, a.body)
	case <-time.After(300 * time.Millisecond):
	}
	if err := store.Finish(ctx, resp.JobID, jobs.Outcome{Status: jobs.Failed, Error: "reverted"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	select {
	case a := <-done:
		var j api.Job
		if err := json.Unmarshal(a.body, &j); err != nil || a.code != http.StatusOK || j.Status != jobs.Failed {
			t.Fatalf("long poll: %d %s", a.code, a.body)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the long poll did not answer after the job ended")
	}
}
