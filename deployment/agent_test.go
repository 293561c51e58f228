package deployment

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/deployer-dev/deployer/engine"
	"github.com/deployer-dev/deployer/internal/testenv"
)

// localAgent runs the agent's script on this machine, in dir instead of the
// container's work dir.
func localAgent(t *testing.T, dir string) *agentProc {
	t.Helper()
	if _, err := exec.LookPath("bash"); err != nil {
		testenv.Missing(t, "bash")
	}
	return launchAgent(func(ctx context.Context, spec engine.ExecSpec) (int, error) {
		args := append([]string{}, spec.Cmd[1:]...)
		args[len(args)-1] = dir
		cmd := exec.CommandContext(ctx, spec.Cmd[0], args...)
		cmd.Dir, cmd.Stdin, cmd.Stdout, cmd.Stderr = dir, spec.Stdin, spec.Stdout, spec.Stderr
		// As the engine ends an exec: the command and whatever it started.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		cmd.WaitDelay = 5 * time.Second
		err := cmd.Run()
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return exit.ExitCode(), nil
		}
		if err != nil {
			return -1, err
		}
		return 0, nil
	})
}

func packFiles(files map[string]string) func(io.Writer) error {
	return func(w io.Writer) error {
		tw := tar.NewWriter(w)
		for name, body := range files {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(body)), Mode: 0o644}); err != nil {
				return err
			}
			if _, err := io.WriteString(tw, body); err != nil {
				return err
			}
		}
		return tw.Close()
	}
}

func TestAgentCopiesThenRunsTheCommand(t *testing.T) {
	dir := t.TempDir()
	a := localAgent(t, dir)
	var stdout, stderr bytes.Buffer
	start := time.Now()
	code, copied, err := a.run(context.Background(), packFiles(map[string]string{"project/a.txt": "from the job"}),
		filepath.Join(dir, "project"), []string{"GREETING=a value\nwith a newline"},
		[]string{"sh", "-c", `cat a.txt; printf '%s' "$GREETING" >&2; exit 3`}, &stdout, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if code != 3 || stdout.String() != "from the job" || stderr.String() != "a value\nwith a newline" {
		t.Fatalf("code %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
	if copied.Before(start) || copied.After(time.Now()) {
		t.Fatalf("copied at %v, outside the run", copied)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "project", "a.txt")); err != nil || string(b) != "from the job" {
		t.Fatalf("the copy: %q %v", b, err)
	}
}

func TestAgentCopyFailureIsTheCopys(t *testing.T) {
	dir := t.TempDir()
	a := localAgent(t, dir)
	var stdout, stderr bytes.Buffer
	notTar := func(w io.Writer) error {
		_, err := io.WriteString(w, strings.Repeat("not a tar stream ", 64))
		return err
	}
	code, copied, err := a.run(context.Background(), notTar, dir, nil, []string{"touch", "ran"}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "copy project into container") || !copied.IsZero() {
		t.Fatalf("code %d, copied %v, err %v", code, copied, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "ran")); err == nil {
		t.Fatal("the command ran after a failed copy")
	}
	if stderr.Len() != 0 {
		t.Fatalf("the copy's message went to the command's stderr: %q", stderr.String())
	}
}

func TestAgentPackFailureCutsTheCopy(t *testing.T) {
	dir := t.TempDir()
	a := localAgent(t, dir)
	broken := errors.New("project unreadable")
	pack := func(w io.Writer) error {
		_ = packFiles(map[string]string{"project/a.txt": strings.Repeat("x", 4096)})(w)
		return broken
	}
	_, copied, err := a.run(context.Background(), pack, dir, nil, []string{"touch", "ran"}, io.Discard, io.Discard)
	if !errors.Is(err, broken) || !copied.IsZero() {
		t.Fatalf("copied %v, err %v", copied, err)
	}
}

func TestUnusedAgentEndsWhenClosed(t *testing.T) {
	a := localAgent(t, t.TempDir())
	if !a.alive() {
		t.Fatal("the agent ended before its input")
	}
	done := make(chan struct{})
	go func() { _ = a.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not end the agent")
	}
	if a.alive() {
		t.Fatal("alive after Close")
	}
}

func TestAgentRunStopsWithItsContext(t *testing.T) {
	dir := t.TempDir()
	a := localAgent(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for {
			if _, err := os.Stat(filepath.Join(dir, "started")); err == nil {
				cancel()
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	_, _, err := a.run(ctx, packFiles(nil), dir, nil, []string{"sh", "-c", "touch started; sleep 600"}, io.Discard, io.Discard)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

// A writer that fails (output past its limit) does not hold the agent up: the rest
// of the output is read and dropped, and the run says why it failed.
func TestAgentOutputPastItsWriterEnds(t *testing.T) {
	dir := t.TempDir()
	a := localAgent(t, dir)
	full := &limitWriter{w: io.Discard, n: 1024}
	done := make(chan error, 1)
	go func() {
		_, _, err := a.run(context.Background(), packFiles(nil), dir, nil, []string{"sh", "-c", "head -c 1000000 /dev/zero >&2"}, io.Discard, full)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "agent output") {
			t.Fatalf("err = %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the run did not end")
	}
}
