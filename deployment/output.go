package deployment

import (
	"bytes"
	"fmt"

	"github.com/deployer-dev/deployer/internal/redact"
	"github.com/deployer-dev/deployer/jobs"
)

// Bounds of a command's output. A project's code prints what it likes: one line
// of gigabytes, or gigabytes of lines. The worker's memory and time stay linear in
// what it keeps, not in what is printed.
const (
	// outputHead and outputTail are kept for parsing: compile errors come first,
	// a failure's summary last.
	outputHead = 3 << 20
	outputTail = 1 << 20
	// maxLine is the longest line passed on; the rest of a longer one is dropped.
	maxLine = 64 << 10
)

// output keeps a command's output for parsing and passes it on, redacted line by
// line so that no secret is split across two writes, at most jobs.LogCap of it (the
// log's own cap, which notes the cut).
type output struct {
	rep Reporter
	red *redact.Redactor

	head, tail bytes.Buffer
	skipped    int64

	line    []byte // the line being read, up to maxLine
	cutting bool   // the line being read is longer than maxLine: drop until its end
	batch   []byte // complete lines of one write, passed on together
	sent    int
}

func newOutput(rep Reporter, red *redact.Redactor) *output {
	return &output{rep: rep, red: red}
}

func (o *output) Write(p []byte) (int, error) {
	o.keep(p)
	for rest := p; len(rest) > 0; {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			o.add(rest)
			break
		}
		o.add(rest[:i+1])
		if !o.cutting {
			o.batch = append(o.batch, o.line...)
		}
		o.line, o.cutting = o.line[:0], false
		rest = rest[i+1:]
	}
	o.pass()
	return len(p), nil
}

// add appends part of a line, cutting the line at maxLine.
func (o *output) add(b []byte) {
	if o.cutting {
		return
	}
	if len(o.line)+len(b) <= maxLine {
		o.line = append(o.line, b...)
		return
	}
	o.line = append(o.line, b[:maxLine-len(o.line)]...)
	// The cut may fall inside a secret, which the redactor would then not know:
	// drop the unfinished word at the end.
	kept := o.line[:bytes.LastIndexAny(o.line, " \t\r")+1]
	o.batch = append(o.batch, kept...)
	o.batch = fmt.Appendf(o.batch, "… [line cut at %d KiB]\n", maxLine>>10)
	o.line, o.cutting = o.line[:0], true
}

// pass hands the complete lines to the reporter, until the log is full.
func (o *output) pass() {
	if len(o.batch) == 0 {
		return
	}
	if o.sent <= jobs.LogCap {
		// The write that crosses the cap goes too: the log cuts it and says so.
		o.rep.Output(o.red.Bytes(o.batch))
		o.sent += len(o.batch)
	}
	o.batch = o.batch[:0]
}

// keep holds the head and the tail of the output for parsing.
func (o *output) keep(p []byte) {
	if n := min(len(p), outputHead-o.head.Len()); n > 0 {
		o.head.Write(p[:n])
		p = p[n:]
	}
	if len(p) == 0 {
		return
	}
	if len(p) >= outputTail {
		o.skipped += int64(o.tail.Len() + len(p) - outputTail)
		o.tail.Reset()
		o.tail.Write(p[len(p)-outputTail:])
		return
	}
	if over := o.tail.Len() + len(p) - 2*outputTail; over > 0 {
		// Drop the oldest half at once, so that keeping the tail stays linear.
		drop := o.tail.Len() - outputTail + len(p)
		drop = min(drop, o.tail.Len())
		o.skipped += int64(drop)
		o.tail.Next(drop)
	}
	o.tail.Write(p)
}

// Flush passes on a last line without its newline.
func (o *output) Flush() {
	if len(o.line) > 0 && !o.cutting {
		o.batch = append(o.batch, o.line...)
	}
	o.line, o.cutting = o.line[:0], false
	o.pass()
}

// String is what was kept of the output: all of it, or its head and its tail.
func (o *output) String() string {
	tail := o.tail.Bytes()
	skipped := o.skipped + int64(max(0, len(tail)-outputTail))
	tail = tail[max(0, len(tail)-outputTail):]
	if skipped == 0 {
		return o.head.String() + string(tail)
	}
	return fmt.Sprintf("%s\n[%d bytes of output not kept]\n%s", o.head.String(), skipped, tail)
}
