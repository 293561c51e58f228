package deployment

import (
	"testing"
	"time"

	"github.com/deployer-dev/deployer/jobs"
)

// The phases add up to the total, to the millisecond, however the time falls.
func TestStopwatchPhasesAddUp(t *testing.T) {
	t0 := time.Unix(1000, 0)
	s := newStopwatch(t0, t0.Add(1400*time.Microsecond))
	at := t0.Add(1400 * time.Microsecond)
	for i, ph := range []string{phaseImage, phaseChain, phaseContainer, phaseCopy, phaseCompile, phaseDeploy, phaseConfirm} {
		at = at.Add(time.Duration(i+1)*time.Millisecond + 600*time.Microsecond)
		s.enterAt(ph, at)
	}
	s.enterAt(phaseRelease, at.Add(2300*time.Microsecond))
	var got jobs.Timings
	s.stop(&got)
	var sum int64
	for _, ph := range got.Phases() {
		sum += ph.MS
	}
	if sum != got.Total {
		t.Fatalf("phases add up to %d, total %d: %+v", sum, got.Total, got)
	}
	if got.Queue != 1 || got.Project != 2 {
		t.Errorf("queue %d ms (want 1), project %d ms (want 2: 1.6 ms, rounded with the queue's 1.4)", got.Queue, got.Project)
	}
}
