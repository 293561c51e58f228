package e2e

import (
	"strings"
	"testing"
	"time"
)

// Two schedulers against one Redis run each period's maintenance once, and the run
// reaches the engine.
func TestTwoSchedulersRunEachPeriodOnce(t *testing.T) {
	off := []string{"SCHEDULE_IMAGE_EXPIRY=", "SCHEDULE_COMPILE_EXPIRY=", "SCHEDULE_POOL_SWEEP="}
	every2s := []string{"SCHEDULE_IMAGE_EXPIRY=@every 2s", "SCHEDULE_COMPILE_EXPIRY=", "SCHEDULE_POOL_SWEEP="}
	workers := ownStack(t, stackOpts{env: off})
	var schedulers []*stack
	for range 2 {
		schedulers = append(schedulers, ownStack(t, stackOpts{instance: workers.instance, redisURL: workers.redisURL, role: "scheduler", env: every2s}))
	}
	count := func(s *stack, msg string) int { return strings.Count(s.logs.String(), `msg="`+msg+`"`) }
	tally := func() (enqueued, refused int) {
		for _, s := range schedulers {
			enqueued += count(s, "maintenance run enqueued")
			refused += count(s, "maintenance run already enqueued by another scheduler")
		}
		return enqueued, refused
	}
	// Until three periods ran, however slowly the machine lets them: the check is
	// that no period ran twice, not how many fit in a given time.
	start := time.Now()
	for deadline := start.Add(2 * time.Minute); ; {
		if n, _ := tally(); n >= 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, s := range schedulers {
		s.terminate()
	}
	elapsed := time.Since(start)
	enqueued, refused := tally()
	periods := int(elapsed/(2*time.Second)) + 2
	if enqueued < 3 || enqueued > periods {
		t.Errorf("%d maintenance runs enqueued in %s of 2 s periods (at most %d)", enqueued, elapsed.Round(time.Second), periods)
	}
	if refused == 0 {
		t.Error("the second scheduler was never refused: did both run?")
	}
	// Each run was handled once, and sent one image expiry to the one engine.
	deadline := time.Now().Add(30 * time.Second)
	for {
		runs, expiries := count(workers, "scheduled maintenance"), count(workers, "image expiry")
		if runs == enqueued && expiries == enqueued {
			break
		}
		if runs > enqueued || expiries > enqueued || time.Now().After(deadline) {
			t.Fatalf("%d runs enqueued, %d handled, %d image expiries ran", enqueued, runs, expiries)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
