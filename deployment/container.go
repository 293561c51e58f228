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
	"github.com/deployer-dev/deployer/redact"
	"github.com/deployer-dev/deployer/tasks"
)

// box is a job's container: no network (the chain is reached through its IPC socket,
// mounted read-only), a read-only root, a non-root user, no capabilities, limits on
// memory, CPU and processes, and a tmpfs work dir.
type box struct {
	eng     *engine.Engine
	id      string
	mem     int64
	timeout time.Duration
}

// JobContainer is the container a job runs in.
func JobContainer(eng *engine.Engine, cfg Config, jobID, network, imageID string, chain *chains.Chain) engine.ContainerSpec {
	return engine.ContainerSpec{
		Name:  "deployer-" + eng.Instance() + "-job-" + jobID,
		Image: imageID,
		// The container idles while the job's commands run in it one after another.
		Cmd:  []string{"sleep", "infinity"},
		User: jobUser,
		Labels: eng.Labels(engine.RoleJob, map[string]string{
			engine.LabelJob:     jobID,
			engine.LabelWorker:  cfg.WorkerID,
			engine.LabelNetwork: network,
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

func (d *Deployer) startContainer(ctx context.Context, p tasks.Deploy, imageID string, chain *chains.Chain) (*box, error) {
	id, err := d.eng.CreateContainer(ctx, JobContainer(d.eng, d.cfg, p.JobID, p.Network, imageID, chain))
	if err != nil {
		return nil, err
	}
	return &box{eng: d.eng, id: id, mem: d.cfg.Memory, timeout: d.cfg.Timeout}, nil
}

// exec runs a command in the project directory (or the work dir for tar).
func (b *box) exec(ctx context.Context, cmd []string, stdin io.Reader, out io.Writer) (int, error) {
	dir := projectDir
	if cmd[0] == "tar" {
		dir = workDir
	}
	code, err := b.eng.Exec(ctx, b.id, engine.ExecSpec{
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
	return code, err
}

// remove kills and removes the container, whatever happened to the job's context.
func (b *box) remove() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = b.eng.RemoveContainer(ctx, b.id)
}

// explain turns an interrupted command into the reason a user understands.
func (b *box) explain(ctx context.Context, err error) error {
	ictx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if c, ierr := b.eng.InspectContainer(ictx, b.id); ierr == nil && c.OOMKilled {
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
