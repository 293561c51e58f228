package deployment

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/deployer-dev/deployer/cache/compilecache"
	"github.com/deployer-dev/deployer/engine"
	"github.com/deployer-dev/deployer/foundry"
	"github.com/deployer-dev/deployer/gateway"
	"github.com/deployer-dev/deployer/projects"
)

// box is a job's container: no network (the chain is reached through the gateway's
// relay on the container's own loopback), a read-only root, a non-root user, no
// capabilities, limits on memory, CPU and processes, and a tmpfs work dir. It is
// leased from the pool.
type box struct {
	c   Container
	mem int64
	// env is the environment of the job's commands: the framework's, and a script's
	// settings.
	env []string
	// broken says a command was interrupted (timeout, cancel, engine error): the
	// container may hold anything and is not reused.
	broken bool
	// forge is the time spent in forge's commands.
	forge time.Duration

	// agent, while the job has not used it, is the agent waiting in the container
	// (see agent.go); pending is the copy it is to make before the job's next
	// command, and copied is when it made it.
	agent   *agentProc
	pending func(io.Writer) error
	copied  time.Time
	// onCopy is told how long of the command that carried the copy the copy took.
	onCopy func(time.Duration)
}

// JobContainer is the container jobs of a network and framework run in. Nothing in it
// names a job: the pool hands the same container to the next job of the same kind.
// It mounts read-only what the framework needs: the compiler store (forge finds the
// job's versions through the view its copy carries; Hardhat through the wrapper
// config), and a Hardhat project's dependencies.
func JobContainer(instance string, cfg Config, network, framework, imageID string, mounts []engine.Mount) engine.ContainerSpec {
	return engine.ContainerSpec{
		Image: imageID,
		// The container idles while the job's commands run in it one after another.
		Cmd:  []string{"sleep", "infinity"},
		User: jobUser,
		Labels: engine.Labels(instance, engine.RoleJob, map[string]string{
			engine.LabelNetwork:   network,
			engine.LabelFramework: framework,
		}),
		Tmpfs: map[string]string{
			workDir: "size=1g,uid=10001,gid=10001,mode=0700",
			"/tmp":  "size=256m,uid=10001,gid=10001,mode=0700",
		},
		Mounts:   mounts,
		Network:  "none",
		Memory:   cfg.Memory,
		NanoCPUs: cfg.NanoCPUs,
		Pids:     cfg.Pids,
		Init:     true,
	}
}

// release gives the container back to the pool, unless the job was interrupted.
func (b *box) release(ctx context.Context) {
	b.c.Release(!b.broken && ctx.Err() == nil)
}

// copyProject puts the project into the container (with the files the job replaces or
// adds, and the cached artifacts when there are) through the engine API: never a bind
// mount, since the worker may itself run in a container, and the user's directory is
// never written to. With an agent in the container, the copy goes with the job's
// next command.
func (b *box) copyProject(ctx context.Context, dir string, lim projects.Limits, opts projects.PackOptions, cached []byte, layout compilecache.Layout) error {
	opts.Prefix, opts.UID, opts.GID = "project/", 10001, 10001
	if cached != nil {
		extra := opts.Extra
		opts.Extra = func(add func(h *tar.Header, body io.Reader) error) error {
			if extra != nil {
				if err := extra(add); err != nil {
					return err
				}
			}
			return compilecache.Each(cached, layout, func(h *tar.Header, body io.Reader) error {
				return add(&tar.Header{Typeflag: h.Typeflag, Name: h.Name, Size: h.Size, Mode: 0o644 | int64(h.FileInfo().Mode()&0o111), ModTime: h.ModTime}, body)
			})
		}
	}
	pack := func(w io.Writer) error { return projects.Pack(w, dir, lim, opts) }
	if b.agent != nil {
		b.pending = pack
		return nil
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(pack(pw)) }()
	var out bytes.Buffer
	code, err := b.exec(ctx, []string{"tar", "-x", "--no-same-permissions", "-C", workDir}, pr, &out, &out)
	pr.Close()
	if err != nil {
		return b.explain(ctx, err)
	}
	if code != 0 {
		return fmt.Errorf("copy project into container: tar exited %d: %s", code, lastLine(out.String()))
	}
	return nil
}

// compile runs forge build. A failure is the user's, with the compiler's first error,
// and the dependency folders the project declares but lacks when there are.
func (b *box) compile(ctx context.Context, out *output, emptyDeps []string) error {
	code, err := b.forgeExec(ctx, foundry.BuildCommand(), out)
	if err != nil {
		return err
	}
	if code != 0 && len(emptyDeps) > 0 {
		return userErrorf("compilation failed, and %s %s empty: the project's git submodules were not checked out (git submodule update --init --recursive before uploading): %s",
			strings.Join(emptyDeps, ", "), isAre(len(emptyDeps)), orDefault(foundry.CompileError(out.String()), lastLine(out.String())))
	}
	if code != 0 {
		if msg := foundry.CompileError(out.String()); msg != "" {
			return userErrorf("%s", msg)
		}
		return userErrorf("compilation failed: %s", orDefault(foundry.FailureSummary(out.String()), "forge build exited "+fmt.Sprint(code)))
	}
	return nil
}

// saveArtifacts streams the compiled output out of the container into the store.
func (b *box) saveArtifacts(ctx context.Context, store CompileCache, key string, layout compilecache.Layout, took time.Duration) error {
	pr, pw := io.Pipe()
	var stderr bytes.Buffer
	done := make(chan error, 1)
	go func() {
		err := store.Save(ctx, key, layout, pr, took)
		// Whatever Save left unread fails the writer instead of blocking it.
		pr.CloseWithError(errors.Join(err, io.ErrClosedPipe))
		done <- err
	}()
	code, err := b.exec(ctx, append([]string{"tar", "-cz", "-C", projectDir}, layout.Paths...), nil, pw, &stderr)
	if err == nil && code != 0 {
		err = fmt.Errorf("tar exited %d: %s", code, lastLine(stderr.String()))
	}
	pw.CloseWithError(err)
	if serr := <-done; err == nil {
		err = serr
	}
	return err
}

// deploy runs the deployment and returns what forge says it made.
func (b *box) deploy(ctx context.Context, target foundry.Target, chainID uint64, sender string, slow bool, out *output) (foundry.Broadcast, error) {
	cmd := foundry.DeployCommand(target, gateway.RelayURL, sender, slow)
	// A script's broadcast file comes back in the same exec, on its stderr, which
	// only the wrapper writes (forge's own goes to stdout, with the rest of its
	// output): a round trip to the engine less on every deployment.
	var file bytes.Buffer
	if target.IsScript() {
		cmd = append([]string{"sh", "-c", broadcastWrapper, "sh", foundry.BroadcastDir(target, chainID)}, cmd...)
	}
	code, err := b.forgeExecTo(ctx, cmd, out, &limitWriter{w: &file, n: 64 << 20})
	if err != nil {
		return foundry.Broadcast{}, err
	}
	if code != 0 {
		if msg := foundry.CompileError(out.String()); msg != "" {
			return foundry.Broadcast{}, userErrorf("%s", msg)
		}
		if hint := foundry.KeyHint(out.String()); hint != "" {
			return foundry.Broadcast{}, userErrorf("deployment failed: %s", hint)
		}
		return foundry.Broadcast{}, userErrorf("deployment failed: %s", orDefault(foundry.FailureSummary(out.String()), "forge exited "+fmt.Sprint(code)))
	}
	if !target.IsScript() {
		made, err := foundry.ParseCreate(out.String(), target)
		if err != nil {
			return made, userErrorf("%v", err)
		}
		return made, nil
	}
	// The run's only broadcast file: the project was copied in fresh, without one.
	if file.Len() == 0 {
		return foundry.Broadcast{}, userErrorf("the script sent no transactions (forge wrote nothing in %s)", foundry.BroadcastDir(target, chainID))
	}
	made, err := foundry.ParseBroadcast(file.Bytes())
	if err != nil {
		return made, userErrorf("%v", err)
	}
	return made, nil
}

// broadcastWrapper runs forge ("$@", after the broadcast directory $1) with its
// stderr on stdout, then, when forge succeeded, writes the run's only broadcast file
// on stderr; none, or more than one, writes nothing.
const broadcastWrapper = `d=$1; shift
"$@" 2>&1
code=$?
if [ "$code" -eq 0 ]; then
  set -- "$d"/*-latest.json
  if [ $# -eq 1 ] && [ -f "$1" ]; then cat "$1" >&2; fi
fi
exit "$code"`

// forgeExec runs forge and counts the time spent in it.
func (b *box) forgeExec(ctx context.Context, cmd []string, out *output) (int, error) {
	return b.forgeExecTo(ctx, cmd, out, out)
}

// forgeExecTo is forgeExec with the command's stderr apart.
func (b *box) forgeExecTo(ctx context.Context, cmd []string, out *output, stderr io.Writer) (int, error) {
	start := time.Now()
	code, err := b.exec(ctx, cmd, nil, out, stderr)
	if b.copied.After(start) {
		// The command carried the project's copy (the agent's): not forge's time.
		start = b.copied
	}
	b.forge += time.Since(start)
	if err != nil {
		return code, b.explain(ctx, err)
	}
	return code, nil
}

// exec runs a command in the project directory (or the work dir for tar).
func (b *box) exec(ctx context.Context, cmd []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	dir := projectDir
	if cmd[0] == "tar" {
		dir = workDir
	}
	if b.pending != nil && stdin != nil {
		// The agent gives its command no input: the copy goes first, alone.
		var msg bytes.Buffer
		code, err := b.execAfterCopy(ctx, workDir, []string{"true"}, &msg, &msg)
		if err == nil && code != 0 {
			err = fmt.Errorf("copy project into container: exited %d: %s", code, lastLine(msg.String()))
		}
		if err != nil {
			b.broken = true
			return -1, err
		}
	}
	var code int
	var err error
	if b.pending != nil {
		code, err = b.execAfterCopy(ctx, dir, cmd, stdout, stderr)
	} else {
		code, err = b.c.Exec(ctx, engine.ExecSpec{
			Cmd:     cmd,
			Env:     b.env,
			WorkDir: dir,
			Stdin:   stdin,
			Stdout:  stdout,
			Stderr:  stderr,
		})
	}
	if f, ok := stdout.(interface{ Flush() }); ok {
		f.Flush()
	}
	if err != nil {
		b.broken = true
	}
	if err == nil && code == 137 {
		// SIGKILL: the memory limit, or a job that killed its own commands.
		b.broken = true
		return code, b.explain(ctx, errKilled)
	}
	return code, err
}

var errKilled = errors.New("the job's command was killed")

// execAfterCopy runs cmd through the agent, after the pending copy.
func (b *box) execAfterCopy(ctx context.Context, dir string, cmd []string, stdout, stderr io.Writer) (int, error) {
	a, pack := b.agent, b.pending
	b.agent, b.pending = nil, nil
	start := time.Now()
	code, copied, err := a.run(ctx, pack, dir, b.env, cmd, stdout, stderr)
	if !copied.IsZero() {
		b.copied = copied
		if b.onCopy != nil {
			b.onCopy(copied.Sub(start))
		}
	}
	return code, err
}

// closeAgent ends the agent, if the job did not use it.
func (b *box) closeAgent() {
	if b.agent != nil {
		_ = b.agent.Close()
		b.agent, b.pending = nil, nil
	}
}

// explain turns a command killed for memory into the reason a user understands.
// A command cut by its step's limit is the step's to name (see within).
func (b *box) explain(ctx context.Context, err error) error {
	if b.c.OOMKilled(ctx) {
		return userErrorf("the job ran out of memory (limit %d MiB)", b.mem>>20)
	}
	return err
}

// limitWriter fails once more than n bytes are written.
type limitWriter struct {
	w io.Writer
	n int64
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > l.n {
		return 0, fmt.Errorf("output larger than the limit")
	}
	l.n -= int64(len(p))
	return l.w.Write(p)
}

func isAre(n int) string {
	if n == 1 {
		return "is"
	}
	return "are"
}
