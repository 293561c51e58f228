package deployment

import (
	"time"

	"github.com/deployer-dev/deployer/jobs"
)

// Phases of a job, as timings_ms names them. Every moment of a job from its enqueue
// to its record belongs to exactly one, so that they add up to the total.
const (
	phaseQueue     = "queue"
	phaseProject   = "project"
	phaseImage     = "image"
	phaseDeps      = "deps"
	phaseChain     = "chain"
	phaseContainer = "container"
	phaseCopy      = "copy"
	phaseCompile   = "compile"
	phaseDeploy    = "deploy"
	phaseConfirm   = "confirm"
	phaseRelease   = "release"
)

// stopwatch charges the time of a job to one phase at a time.
type stopwatch struct {
	start time.Time
	last  time.Time
	cur   string
	spent map[string]time.Duration
}

// newStopwatch starts in the queue phase at enqueued (or now, when unknown), and
// moves to the next phase at now.
func newStopwatch(enqueued, now time.Time) *stopwatch {
	if enqueued.IsZero() || enqueued.After(now) {
		enqueued = now
	}
	s := &stopwatch{start: enqueued, last: enqueued, cur: phaseQueue, spent: map[string]time.Duration{}}
	s.enterAt(phaseProject, now)
	return s
}

// enter charges the time since the last change to the current phase, and makes phase
// the current one.
func (s *stopwatch) enter(phase string) { s.enterAt(phase, time.Now()) }

func (s *stopwatch) enterAt(phase string, now time.Time) {
	s.spent[s.cur] += now.Sub(s.last)
	s.cur, s.last = phase, now
}

// charge moves d, spent while the current phase ran, to phase: a step that did the
// work of two tells afterwards how long the first one took.
func (s *stopwatch) charge(phase string, d time.Duration) {
	if d <= 0 || phase == s.cur {
		return
	}
	s.spent[phase] += d
	s.spent[s.cur] -= d
}

// stop stops the watch and sets t's phases from it (Within is not the watch's).
func (s *stopwatch) stop(t *jobs.Timings) {
	s.enter("")
	t.SetPhases(s.spent)
}
