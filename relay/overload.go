package relay

import (
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/vigil-vms/vigil/ingest"
)

// overload is the relay's answer to a host that cannot keep up with its
// viewers (a starved CPU): when a viewer's units wait in its queue longer
// than Options.StepDownLag (the units queued for it span more than that), or
// its queue overflowed, every viewer steps down
// to keyframes only (no audio) for at least Options.StepDownFor after the
// last sign of it, and new viewers are refused meanwhile (503); then every
// viewer steps up again at its next keyframe. All viewers step together, so
// the load falls at once and none is favoured; no session is closed.
type overload struct {
	lag  time.Duration
	hold time.Duration
	log  *slog.Logger

	until   atomic.Int64 // UnixNano until which viewers get keyframes only (0: never stepped down)
	steps   atomic.Int64 // times the relay stepped down (figure)
	stepped atomic.Bool  // as last logged
}

// note reports how far a viewer is behind the live edge (the units waiting
// in its queue, see ingest.Subscription.Backlog) and whether its queue
// overflowed. The time the units took to reach the hub (a camera or a
// network that is late) does not count: only the relay's own delay.
func (o *overload) note(now time.Time, behind time.Duration, gap bool) {
	if behind <= o.lag && !gap {
		return
	}
	o.until.Store(now.Add(o.hold).UnixNano())
	if o.stepped.CompareAndSwap(false, true) {
		o.steps.Add(1)
		o.log.Warn("the live relay cannot keep up: every viewer gets keyframes only, new viewers are refused",
			"behind", behind.Round(time.Millisecond), "queueOverflow", gap, "for", o.hold)
	}
}

// keyframesOnly tells whether the viewers are stepped down now.
func (o *overload) keyframesOnly(now time.Time) bool {
	if now.UnixNano() < o.until.Load() {
		return true
	}
	if o.stepped.Load() && o.stepped.CompareAndSwap(true, false) {
		o.log.Info("the live relay keeps up again: viewers step up to every picture at their next keyframe")
	}
	return false
}

// stepDown is one viewer's state of the step-down: it follows the relay's
// at once when stepping down and at the next keyframe when stepping up (a
// picture after skipped ones would not decode).
type stepDown struct {
	on bool
}

// skip tells whether the viewer skips u now.
func (s *stepDown) skip(o *overload, now time.Time, u *ingest.Unit) bool {
	key := u.Keyframe && u.Track != nil && u.Track.Video
	if o.keyframesOnly(now) {
		s.on = true
	} else if s.on && key {
		s.on = false
	}
	return s.on && !key
}
