package deployment

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deployer-dev/deployer/jobs"
	"github.com/deployer-dev/deployer/tasks"
)

// A path project's job runs from the snapshot the API stored: the directory it was
// taken from is not read again, even gone.
func TestJobRunsFromTheSnapshotNotTheDirectory(t *testing.T) {
	r := newRig(t, time.Minute, 0)
	if err := os.RemoveAll(filepath.Join(r.root, "counter")); err != nil {
		t.Fatal(err)
	}
	if _, err := r.run(t); err != nil {
		t.Fatalf("the job needed the directory: %v", err)
	}
	if !containsName(r.c.copied, "project/src/Counter.sol") {
		t.Errorf("the snapshot's files were not copied in: %v", r.c.copied)
	}
}

// A task that names a directory (queued by an API of the release before) fails for
// good, saying what to do, and nothing reads the directory.
func TestWorkerReadsNoPathProject(t *testing.T) {
	r := newRig(t, time.Minute, 0)
	p := tasks.Deploy{JobID: "j1", Framework: "foundry", Network: "local", Project: tasks.ProjectRef{Path: "counter"},
		Contract: "src/Counter.sol:Counter", ConstructorArgs: []string{"1"}}
	_, err := r.d.Run(context.Background(), p, &nopReporter{}, quiet)
	if !jobs.IsFinal(err) || !strings.Contains(err.Error(), `the job names the directory "counter", which workers no longer read: submit it again`) {
		t.Fatalf("err = %v", err)
	}
	if len(r.c.commands) != 0 {
		t.Errorf("ran commands for a refused job: %v", r.c.commands)
	}
}
