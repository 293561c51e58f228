package deployment

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/deployer-dev/deployer/jobs"
)

// blockUntilDone stands for a step that hangs until its context ends, and then fails
// the way an interrupted engine call does: with some error of its own.
func blockUntilDone(ctx context.Context) error {
	<-ctx.Done()
	return fmt.Errorf("exec forge: %w", errors.New("use of closed network connection"))
}

func TestWithinNamesTheStepAndIsFinal(t *testing.T) {
	err := within(context.Background(), "starting chain local", 20*time.Millisecond, blockUntilDone)
	var te *TimeoutError
	if !errors.As(err, &te) || te.Step != "starting chain local" || te.Users {
		t.Fatalf("err = %#v, want the service's TimeoutError naming the step", err)
	}
	if !jobs.IsFinal(err) {
		t.Error("a timeout is retried")
	}
	if !strings.Contains(err.Error(), "the service timed out while starting chain local (its limit 20ms)") {
		t.Errorf("message: %q", err)
	}
}

// The end of the job's own context (a cancel, a shutdown) is not a step's timeout:
// the caller decides what it means.
func TestWithinLeavesTheJobsEndAlone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := within(ctx, "compiling", time.Minute, blockUntilDone)
	if jobs.IsFinal(err) {
		t.Fatalf("a canceled job became final: %v", err)
	}
}

func TestWithinKeepsOtherErrors(t *testing.T) {
	user := userErrorf("compile error at src/A.sol:3")
	if err := within(context.Background(), "compiling", time.Minute, func(context.Context) error { return user }); err != user {
		t.Errorf("err = %v", err)
	}
	ours := errors.New("engine unavailable")
	if err := within(context.Background(), "compiling", time.Minute, func(context.Context) error { return ours }); err != ours || jobs.IsFinal(err) {
		t.Errorf("err = %v, final %t", err, jobs.IsFinal(err))
	}
}

// The user's steps share one budget: what one step used is gone for the next, and
// the message names the step that ran out and the whole budget.
func TestBudgetIsShared(t *testing.T) {
	b := newBudget(200 * time.Millisecond)
	if err := b.run(context.Background(), "compiling", func(ctx context.Context) error {
		time.Sleep(120 * time.Millisecond)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if b.left > 80*time.Millisecond {
		t.Errorf("after a step of 120 ms, %s of 200 ms is left", b.left)
	}
	err := b.run(context.Background(), "deploying to local", blockUntilDone)
	var te *TimeoutError
	if !errors.As(err, &te) || !te.Users || te.Step != "deploying to local" || te.Limit != 200*time.Millisecond {
		t.Fatalf("err = %#v", err)
	}
	if want := "the deployment timed out while deploying to local (limit 200ms)"; err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
	if err := b.run(context.Background(), "confirming", func(context.Context) error { return nil }); !jobs.IsFinal(err) {
		t.Errorf("a spent budget ran another step: %v", err)
	}
}
