package deployment

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/deployer-dev/deployer/jobs"
)

// UserError is a failure caused by what the user submitted (a compile error, a
// refused project, a reverted script). Retrying does not help; its message is written
// for the user and holds no secret.
type UserError struct {
	Msg string
}

func (e *UserError) Error() string { return e.Msg }

// Final says a retry would not help.
func (e *UserError) Final() bool { return true }

func userErrorf(format string, args ...any) error {
	return &UserError{Msg: fmt.Sprintf(format, args...)}
}

// TimeoutError says a step ran past its limit. It is final wherever it happens: a
// script that is too slow stays too slow, and a retry of a preparation step that
// hung would hang again while the user waits.
type TimeoutError struct {
	// Step is what the job was doing, as its record's step names it.
	Step  string
	Limit time.Duration
	// Users says the limit was JOB_TIMEOUT, the user's budget; otherwise it was one of
	// the service's own step limits.
	Users bool
}

// Final says a retry would not help.
func (e *TimeoutError) Final() bool { return true }

func (e *TimeoutError) Error() string {
	if e.Users {
		return fmt.Sprintf("the deployment timed out while %s (limit %s)", e.Step, e.Limit)
	}
	return fmt.Sprintf("the service timed out while %s (its limit %s); this was not caused by the project, submit it again later", e.Step, e.Limit)
}

// within runs one step under a limit of its own. When the limit passes (and not ctx's
// own end), whatever fn returned becomes a TimeoutError naming the step: an
// interrupted command fails in many ways, and all of them mean the same thing here.
func within(ctx context.Context, step string, limit time.Duration, fn func(context.Context) error) error {
	sctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	err := fn(sctx)
	if err != nil && ctx.Err() == nil && errors.Is(sctx.Err(), context.DeadlineExceeded) && !jobs.IsFinal(err) {
		return &TimeoutError{Step: step, Limit: limit}
	}
	return err
}

// budget is what is left of JOB_TIMEOUT, the time the user's steps may take
// together. Waits that are the service's (a container, the chain's sender) are not
// taken from it.
type budget struct {
	limit, left time.Duration
}

func newBudget(limit time.Duration) *budget { return &budget{limit: limit, left: limit} }

// run runs one of the user's steps with what is left of the budget.
func (b *budget) run(ctx context.Context, step string, fn func(context.Context) error) error {
	if b.left <= 0 {
		return &TimeoutError{Step: step, Limit: b.limit, Users: true}
	}
	start := time.Now()
	err := within(ctx, step, b.left, fn)
	b.left -= time.Since(start)
	var t *TimeoutError
	if errors.As(err, &t) {
		t.Limit, t.Users = b.limit, true
	}
	return err
}
