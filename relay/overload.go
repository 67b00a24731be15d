package relay

import (
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/vigil-vms/vigil/ingest"
)

// overload is the relay's answer to a host that cannot keep up with its
// viewers (a starved CPU): when viewers stay behind the live edge by more
// than Options.StepDownLag (the units queued for them span more than that)
// for a second — at least two and a tenth of those playing — every viewer steps down
// to keyframes only (no audio) for at least Options.StepDownFor after the
// last sign of it, and new viewers are refused meanwhile (503); then every
// viewer steps up again at its next keyframe. All viewers step together, so
// the load falls at once and none is favoured; no session is closed.
type overload struct {
	lag  time.Duration
	hold time.Duration
	log  *slog.Logger

	late    atomic.Int64 // viewers late now
	until   atomic.Int64 // UnixNano until which viewers get keyframes only (0: never stepped down)
	steps   atomic.Int64 // times the relay stepped down (figure)
	stepped atomic.Bool  // as last logged
}

// setLate counts a viewer in or out of the late ones (see stepDown.late).
func (o *overload) setLate(late bool) {
	if late {
		o.late.Add(1)
	} else {
		o.late.Add(-1)
	}
}

// note steps every viewer down when enough of the playing viewers are late:
// at least two and a tenth of them. A single slow viewer (its network) is
// not an overload of the relay: it resumes at the next keyframe on its own
// when its queue overflows, and the others are not slowed. behind is how far
// the late viewer noting it is behind, for the log.
func (o *overload) note(now time.Time, playing int, behind time.Duration) {
	late := int(o.late.Load())
	if late < 2 || late*10 < playing {
		return
	}
	o.until.Store(now.Add(o.hold).UnixNano())
	if o.stepped.CompareAndSwap(false, true) {
		o.steps.Add(1)
		o.log.Warn("the live relay cannot keep up: every viewer gets keyframes only, new viewers are refused",
			"lateViewers", late, "viewers", playing, "behind", behind.Round(time.Millisecond), "for", o.hold)
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
	on          bool
	behindSince time.Time // when the viewer's backlog went over the lag (zero: it is not)
	counted     bool      // counted in overload.late
}

// stepDownPersist is how long a viewer's backlog must stay over the lag
// before it counts as late: units that reach the hub in a burst (a camera
// or a network that stalled, then caught up) make a backlog that a viewer
// keeping up sends in milliseconds.
const stepDownPersist = time.Second

// late tells whether the viewer, behind the live edge by backlog (see
// ingest.Subscription.Backlog: the relay's own delay, not the camera's),
// has been more than lag behind for stepDownPersist.
func (s *stepDown) late(now time.Time, backlog, lag time.Duration) bool {
	if backlog <= lag {
		s.behindSince = time.Time{}
		return false
	}
	if s.behindSince.IsZero() {
		s.behindSince = now
	}
	return now.Sub(s.behindSince) >= stepDownPersist
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
