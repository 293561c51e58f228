package docker

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/deployer-dev/deployer/engine"
)

// Exec runs a command in a container and returns its exit code. When ctx ends first
// it returns ctx's error; the command may still run: the caller kills the container.
func (e *Engine) Exec(ctx context.Context, containerID string, spec engine.ExecSpec) (int, error) {
	created, err := e.cli.ContainerExecCreate(ctx, containerID, container.ExecOptions{
		Cmd:          spec.Cmd,
		Env:          spec.Env,
		WorkingDir:   spec.WorkDir,
		User:         spec.User,
		AttachStdin:  spec.Stdin != nil,
		AttachStdout: true,
		AttachStderr: true,
	})
	if err != nil {
		return -1, e.wrap(err, "exec create")
	}
	att, err := e.cli.ContainerExecAttach(ctx, created.ID, container.ExecAttachOptions{})
	if err != nil {
		return -1, e.wrap(err, "exec attach")
	}
	defer att.Close()

	stdinErr := make(chan error, 1)
	if spec.Stdin != nil {
		go func() {
			_, err := io.Copy(att.Conn, spec.Stdin)
			if cerr := att.CloseWrite(); err == nil {
				err = cerr
			}
			stdinErr <- err
		}()
	} else {
		stdinErr <- nil
	}
	stdout, stderr := spec.Stdout, spec.Stderr
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	outErr := make(chan error, 1)
	go func() {
		_, err := stdcopy.StdCopy(stdout, stderr, att.Reader)
		outErr <- err
	}()
	select {
	case <-ctx.Done():
		att.Close()
		return -1, fmt.Errorf("exec %s: %w", spec.Cmd[0], ctx.Err())
	case err := <-outErr:
		if err != nil {
			return -1, e.wrap(err, "exec output")
		}
	}
	// The output ends a moment before the engine records the exit: asked again
	// after a millisecond, then less often.
	code := -1
	for wait := time.Millisecond; code < 0; wait = min(2*wait, 5*time.Millisecond) {
		ins, err := e.cli.ContainerExecInspect(ctx, created.ID)
		if err != nil {
			return -1, e.wrap(err, "exec inspect")
		}
		if !ins.Running {
			code = ins.ExitCode
			break
		}
		select {
		case <-ctx.Done():
			return -1, fmt.Errorf("exec %s: %w", spec.Cmd[0], ctx.Err())
		case <-time.After(wait):
		}
	}
	// A command that failed may not have read all its input; its exit code says more
	// than the broken pipe.
	att.Close()
	if err := <-stdinErr; err != nil && code == 0 {
		return -1, fmt.Errorf("exec %s: write stdin: %w", spec.Cmd[0], err)
	}
	return code, nil
}
