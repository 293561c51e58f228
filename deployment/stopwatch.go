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

// timings stops the watch and says what each phase took, in milliseconds. Each
// phase's figure is the difference of the rounded running sums, so that the figures
// add up to the total exactly.
func (s *stopwatch) timings() jobs.Timings {
	s.enter("")
	var t jobs.Timings
	var sum time.Duration
	var shown int64
	for _, p := range []struct {
		name string
		dst  *int64
	}{
		{phaseQueue, &t.Queue}, {phaseProject, &t.Project}, {phaseImage, &t.Image}, {phaseDeps, &t.Deps},
		{phaseChain, &t.Chain}, {phaseContainer, &t.Container}, {phaseCopy, &t.Copy}, {phaseCompile, &t.Compile},
		{phaseDeploy, &t.Deploy}, {phaseConfirm, &t.Confirm}, {phaseRelease, &t.Release},
	} {
		sum += s.spent[p.name]
		*p.dst = sum.Milliseconds() - shown
		shown = sum.Milliseconds()
	}
	t.Total = shown
	return t
}
