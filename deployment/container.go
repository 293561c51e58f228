package deployment

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/deployer-dev/deployer/chains"
	"github.com/deployer-dev/deployer/engine"
	"github.com/deployer-dev/deployer/foundry"
	"github.com/deployer-dev/deployer/pool"
	"github.com/deployer-dev/deployer/redact"
	"github.com/deployer-dev/deployer/tasks"
)

// box is a job's container: no network (the chain is reached through its IPC socket,
// mounted read-only), a read-only root, a non-root user, no capabilities, limits on
// memory, CPU and processes, and a tmpfs work dir. It is leased from the pool.
type box struct {
	eng     *engine.Engine
	lease   *pool.Lease
	mem     int64
	timeout time.Duration
	// broken says a command was interrupted (timeout, cancel, engine error): the
	// container may hold anything and is not reused.
	broken bool
}

// JobContainer is the container jobs of a network run in. Nothing in it names a job:
// the pool hands the same container to the next job of the same kind.
func JobContainer(eng *engine.Engine, cfg Config, network, imageID string, chain *chains.Chain) engine.ContainerSpec {
	return engine.ContainerSpec{
		Image: imageID,
		// The container idles while the job's commands run in it one after another.
		Cmd:  []string{"sleep", "infinity"},
		User: jobUser,
		Labels: eng.Labels(engine.RoleJob, map[string]string{
			engine.LabelNetwork:   network,
			engine.LabelFramework: "foundry",
		}),
		Tmpfs: map[string]string{
			workDir: "size=1g,uid=10001,gid=10001,mode=0700",
			"/tmp":  "size=256m,uid=10001,gid=10001,mode=0700",
		},
		Mounts:   []engine.Mount{{Volume: chain.IPCVolume, Target: "/ipc", ReadOnly: true}},
		Network:  "none",
		Memory:   cfg.Memory,
		NanoCPUs: cfg.NanoCPUs,
		Pids:     cfg.Pids,
		Init:     true,
	}
}

func (d *Deployer) lease(ctx context.Context, p tasks.Deploy, imageID string, chain *chains.Chain) (*box, error) {
	l, err := d.pool.Lease(ctx, JobContainer(d.eng, d.cfg, p.Network, imageID, chain), p.JobID)
	if err != nil {
		return nil, err
	}
	return &box{eng: d.eng, lease: l, mem: d.cfg.Memory, timeout: d.cfg.Timeout}, nil
}

// release gives the container back to the pool, unless the job was interrupted.
func (b *box) release(ctx context.Context) {
	b.lease.Release(!b.broken && ctx.Err() == nil)
}

// exec runs a command in the project directory (or the work dir for tar).
func (b *box) exec(ctx context.Context, cmd []string, stdin io.Reader, out io.Writer) (int, error) {
	dir := projectDir
	if cmd[0] == "tar" {
		dir = workDir
	}
	code, err := b.eng.Exec(ctx, b.lease.ID, engine.ExecSpec{
		Cmd:     cmd,
		Env:     foundry.Env(projectDir),
		WorkDir: dir,
		Stdin:   stdin,
		Stdout:  out,
		Stderr:  out,
	})
	if f, ok := out.(interface{ Flush() }); ok {
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

// explain turns an interrupted command into the reason a user understands.
func (b *box) explain(ctx context.Context, err error) error {
	ictx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if c, ierr := b.eng.InspectContainer(ictx, b.lease.ID); ierr == nil && c.OOMKilled {
		return userErrorf("the job ran out of memory (limit %d MiB)", b.mem>>20)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return userErrorf("the deployment timed out (limit %s)", b.timeout)
	}
	return err
}

// output keeps a command's output for parsing and passes it on, redacted line by
// line so that no secret is split across two writes.
type output struct {
	rep     Reporter
	red     *redact.Redactor
	all     bytes.Buffer
	pending []byte
}

// outputKeep bounds what is kept for parsing.
const outputKeep = 4 << 20

func newOutput(rep Reporter, red *redact.Redactor) *output {
	return &output{rep: rep, red: red}
}

func (o *output) Write(p []byte) (int, error) {
	if o.all.Len() < outputKeep {
		o.all.Write(p[:min(len(p), outputKeep-o.all.Len())])
	}
	o.pending = append(o.pending, p...)
	if i := bytes.LastIndexByte(o.pending, '\n'); i >= 0 {
		o.rep.Output(o.red.Bytes(o.pending[:i+1]))
		o.pending = append(o.pending[:0], o.pending[i+1:]...)
	}
	return len(p), nil
}

// Flush passes on a last line without its newline.
func (o *output) Flush() {
	if len(o.pending) > 0 {
		o.rep.Output(o.red.Bytes(o.pending))
		o.pending = o.pending[:0]
	}
}

func (o *output) String() string { return o.all.String() }

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
