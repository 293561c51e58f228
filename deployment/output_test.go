package deployment

import (
	"bytes"
	"strings"
	"testing"

	"github.com/deployer-dev/deployer/foundry"
	"github.com/deployer-dev/deployer/internal/redact"
	"github.com/deployer-dev/deployer/jobs"
)

// logSink is a Reporter that keeps what a job's log would receive.
type logSink struct {
	got    bytes.Buffer
	writes int
}

func (l *logSink) Step(string)            {}
func (l *logSink) Container(string, bool) {}
func (l *logSink) Output(p []byte)        { l.got.Write(p); l.writes++ }

const secret = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"

func TestOutputRedactsWholeLines(t *testing.T) {
	var sink logSink
	o := newOutput(&sink, redact.New(secret))
	// The key arrives in two writes; neither half is passed on alone.
	o.Write([]byte("key " + secret[:20]))
	if sink.got.Len() != 0 {
		t.Fatalf("half a line passed on: %q", sink.got.String())
	}
	o.Write([]byte(secret[20:] + "\nlast"))
	o.Flush()
	if strings.Contains(sink.got.String(), secret[2:20]) {
		t.Fatalf("the key reached the log: %q", sink.got.String())
	}
	if want := "key " + redact.Mask + "\nlast"; sink.got.String() != want {
		t.Errorf("log %q, want %q", sink.got.String(), want)
	}
}

// One line of 64 MiB, printed in pipe-sized writes: what is held stays at the
// line cap, what is passed on is its start and a note, and the key it ends in (cut
// in two by the cap) does not reach the log in part.
func TestOutputCutsAHugeLine(t *testing.T) {
	var sink logSink
	o := newOutput(&sink, redact.New(secret))
	prefix := strings.Repeat("word ", (maxLine-10)/5)
	o.Write([]byte(prefix + secret))
	chunk := bytes.Repeat([]byte("a"), 32<<10)
	for range (64 << 20) / len(chunk) {
		o.Write(chunk)
		if cap(o.line) > maxLine+len(chunk) {
			t.Fatalf("the line buffer grew to %d bytes", cap(o.line))
		}
	}
	o.Write([]byte("\nnext line\n"))
	o.Flush()
	log := sink.got.String()
	if !strings.HasPrefix(log, "word word") || !strings.Contains(log, "[line cut at 64 KiB]\nnext line\n") {
		t.Errorf("log: %q…%q", log[:min(40, len(log))], log[max(0, len(log)-80):])
	}
	if strings.Contains(log, secret[2:12]) {
		t.Error("part of the key cut by the line cap reached the log")
	}
	if len(log) > maxLine+100 {
		t.Errorf("%d bytes passed on for one cut line", len(log))
	}
	if kept := len(o.String()); kept > outputHead+outputTail+100 {
		t.Errorf("%d bytes kept for parsing", kept)
	}
}

// Gigabytes of short lines: the log receives its cap's worth and then nothing, and
// the failure at the end is still found in what was kept.
func TestOutputBoundsTheTotal(t *testing.T) {
	var sink logSink
	o := newOutput(&sink, redact.New())
	block := []byte(strings.Repeat("Compiling a line of output...\n", 1000))
	for range (64 << 20) / len(block) {
		o.Write(block)
	}
	o.Write([]byte("Error: script failed: boom\n"))
	o.Flush()
	if sink.got.Len() > jobs.LogCap+len(block) {
		t.Errorf("%d bytes passed on, over the log's cap", sink.got.Len())
	}
	if got := foundry.FailureSummary(o.String()); got != "script failed: boom" {
		t.Errorf("failure summary %q from what was kept", got)
	}
	if kept := len(o.String()); kept > outputHead+outputTail+100 {
		t.Errorf("%d bytes kept for parsing", kept)
	}
	writes := sink.writes
	o.Write(block)
	if sink.writes != writes {
		t.Error("output still passed on after the log's cap")
	}
}
