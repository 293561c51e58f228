package deployment

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/deployer-dev/deployer/engine"
)

// The agent is a command started in a job container before the job needs it, like
// the relay: it waits on its standard input for the job's files and its first
// command, unpacks the files, and runs the command. Starting a command with docker
// exec costs about a tenth of a second here; the agent takes two of them (the copy,
// and the first forge command) off a warm job's clock. Every later command of the job
// runs with docker exec as before.
//
// Its input is: the number of strings that follow, then the command's directory, its
// environment (NAME=value) and its argv, each ended by a NUL; then a tar stream of
// the files, unpacked into the work dir ($1). Its standard error carries agentCopied
// once the files are in; what comes before it is the copy's error, what follows it
// the command's. The exec's exit code is the command's.
const agentScript = `set -u
IFS= read -r -d '' n || exit 111
case "$n" in ''|*[!0-9]*) echo "agent: bad header" >&2; exit 111 ;; esac
args=()
for ((i = 0; i < n; i++)); do
  IFS= read -r -d '' a || { echo "agent: short header" >&2; exit 111; }
  args+=("$a")
done
tar -x --no-same-permissions -C "$1" || exit 111
cd "${args[0]}" || exit 111
printf '\0' >&2
exec env "${args[@]:1}" </dev/null`

// agentCopied is the byte the agent writes on its standard error once the files are
// in: what tar and bash print before it (names, messages) never holds one.
const agentCopied = 0

// agentProc is an agent in a job container, waiting for its job.
type agentProc struct {
	in             *io.PipeWriter
	stdout, stderr *io.PipeReader
	// ended is closed once the exec ended, with end.
	ended chan struct{}
	end   execEnd
	// stop ends the exec: the job gave up on it.
	stop context.CancelFunc
}

type execEnd struct {
	code int
	err  error
}

// launchAgent starts an agent with exec, which runs a command in the container; the
// agent lives until stop, or until the command it ran ends.
func launchAgent(exec func(context.Context, engine.ExecSpec) (int, error)) *agentProc {
	ctx, stop := context.WithCancel(context.Background())
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	errR, errW := io.Pipe()
	a := &agentProc{in: inW, stdout: outR, stderr: errR, ended: make(chan struct{}), stop: stop}
	go func() {
		code, err := exec(ctx, engine.ExecSpec{
			Cmd:     []string{"bash", "-c", agentScript, "deployer-agent", workDir},
			User:    jobUser,
			WorkDir: workDir,
			Stdin:   inR,
			Stdout:  outW,
			Stderr:  errW,
		})
		outW.Close()
		errW.Close()
		inR.Close()
		a.end = execEnd{code, err}
		close(a.ended)
	}()
	return a
}

// alive says the agent still waits.
func (a *agentProc) alive() bool { return !closed(a.ended) }

// Close ends an agent no job used: without input it exits at once.
func (a *agentProc) Close() error {
	a.in.Close()
	// Its output is nobody's: drained, so that the exec can end.
	go func() { _, _ = io.Copy(io.Discard, a.stdout) }()
	go func() { _, _ = io.Copy(io.Discard, a.stderr) }()
	awaitEnd(a.ended, a.stop)
	return nil
}

// closed says whether ch is closed.
func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// awaitEnd waits for an exec whose input was closed to end (ended), and ends it
// (stop) if it has not within a few seconds.
func awaitEnd(ended <-chan struct{}, stop context.CancelFunc) {
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		stop()
		<-ended
	}
}

// run sends the agent the files pack writes and the command (run in dir, with env),
// and waits for the command's end. copied is when the files were in (zero if they
// never were); a copy that failed is an error of its own, with the agent's message.
func (a *agentProc) run(ctx context.Context, pack func(io.Writer) error, dir string, env, cmd []string, stdout, stderr io.Writer) (code int, copied time.Time, err error) {
	args := append(append([]string{dir}, env...), cmd...)
	for _, s := range args {
		if strings.IndexByte(s, 0) >= 0 {
			return -1, time.Time{}, fmt.Errorf("agent: %q holds a NUL byte", clip(s, 40))
		}
	}
	packErr := make(chan error, 1)
	go func() {
		w := bufio.NewWriterSize(a.in, 64<<10)
		w.WriteString(strconv.Itoa(len(args)) + "\x00")
		for _, s := range args {
			w.WriteString(s + "\x00")
		}
		err := pack(w)
		if err == nil {
			err = w.Flush()
		}
		// A pack that failed cuts the stream: tar fails, and the agent with it.
		a.in.CloseWithError(err)
		packErr <- err
	}()
	mark := &copyMark{after: stderr}
	var wg sync.WaitGroup
	var outErr, errErr error
	wg.Add(2)
	go func() { defer wg.Done(); outErr = drain(stdout, a.stdout) }()
	go func() { defer wg.Done(); errErr = drain(mark, a.stderr) }()
	select {
	case <-a.ended:
	case <-ctx.Done():
		a.stop()
		<-a.ended
		wg.Wait()
		return -1, mark.at, fmt.Errorf("agent: %w", ctx.Err())
	}
	wg.Wait()
	end := a.end
	if end.err == nil {
		end.err = errors.Join(outErr, errErr)
	}
	if end.err != nil {
		return -1, mark.at, end.err
	}
	if mark.at.IsZero() {
		perr := <-packErr
		if perr != nil && !errors.Is(perr, io.ErrClosedPipe) {
			return end.code, mark.at, fmt.Errorf("copy project into container: %w", perr)
		}
		return end.code, mark.at, fmt.Errorf("copy project into container: exited %d: %s", end.code, lastLine(mark.before.String()))
	}
	return end.code, mark.at, nil
}

// drain copies r to w, and the rest of r nowhere once w fails: the agent's output
// must be read to its end, or its exec never ends.
func drain(w io.Writer, r io.Reader) error {
	_, err := io.Copy(w, r)
	if err != nil {
		_, _ = io.Copy(io.Discard, r)
		return fmt.Errorf("agent output: %w", err)
	}
	return nil
}

// copyMark splits the agent's standard error at agentCopied: what comes before is
// the copy's (kept, up to a bound), what comes after is the command's.
type copyMark struct {
	at     time.Time
	before bytes.Buffer
	after  io.Writer
}

func (m *copyMark) Write(p []byte) (int, error) {
	n := len(p)
	if m.at.IsZero() {
		i := bytes.IndexByte(p, agentCopied)
		if i < 0 {
			if m.before.Len() < 64<<10 {
				m.before.Write(p)
			}
			return n, nil
		}
		m.before.Write(p[:i])
		m.at, p = time.Now(), p[i+1:]
	}
	if len(p) > 0 {
		if _, err := m.after.Write(p); err != nil {
			return 0, err
		}
	}
	return n, nil
}
