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

// A step that did the work of two (the agent's copy and the command after it) moves
// the first one's share to its phase afterwards; the phases still add up.
func TestStopwatchChargeMovesTimeBetweenPhases(t *testing.T) {
	t0 := time.Unix(1000, 0)
	s := newStopwatch(t0, t0)
	s.enterAt(phaseCopy, t0.Add(10*time.Millisecond))
	s.enterAt(phaseDeploy, t0.Add(11*time.Millisecond))
	// The deploy step's command carried the copy, which took 40 ms of its 300.
	s.charge(phaseCopy, 40*time.Millisecond)
	s.enterAt(phaseConfirm, t0.Add(311*time.Millisecond))
	var got jobs.Timings
	s.stop(&got)
	if got.Copy != 41 || got.Deploy != 260 || got.Total != got.Project+got.Copy+got.Deploy+got.Confirm {
		t.Fatalf("copy %d ms (want 41), deploy %d ms (want 260): %+v", got.Copy, got.Deploy, got)
	}
}
