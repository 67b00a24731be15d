package recorder

import "time"

// Where the segments of one session begin on the wall clock.
//
// A segment is filed at the wall time of its first keyframe and lasts as long
// as its media (PTS) says, so the next segment of the same session would begin
// where the previous one ends only if the wall times of the two keyframes were
// exactly as far apart as their PTS. They are not: a unit's wall time follows
// the server's clock, which is corrected slowly against the arrival of units
// that jitter (a real camera's by a good part of a second), while its PTS
// follows the camera's timestamps. Filing each segment by its keyframe's wall
// time made false gaps and overlaps between segments that were recorded
// without a break, and playback and export stopped at them.
//
// A timeline therefore places the segments of one unbroken session on one
// line: the first at its keyframe's wall time, each next one where the
// previous one ended by the PTS. Only when the wall clock has moved away from
// that line by more than timelineDeadBand (a camera clock that runs at another
// rate than the server's, for hours) does it draw the line back, by at most
// 1/timelineSlew of the media time since the previous segment; and a jump
// beyond timelineResync (the camera's timestamps jumped and ingest re-anchored
// its clock) is a real discontinuity and is kept. A new session, or one that
// lost units or stopped, starts a new line (reset).
const (
	// timelineDeadBand is how far the wall clock may drift from the line
	// before the line is drawn back to it: more than ingest's corrections of
	// a unit's wall time for a camera (or a loaded server) that delivers late
	// for a while.
	timelineDeadBand = 500 * time.Millisecond
	// timelineSlew bounds a correction to 1/timelineSlew of the media time
	// since the previous segment: 10 ms per second.
	timelineSlew = 100
	// timelineResync is the drift beyond which the line is re-anchored at
	// the wall clock at once.
	timelineResync = 2 * time.Second
)

// timeline places the segments of one session; the zero value starts a new
// line. It is not safe for concurrent use.
type timeline struct {
	started bool
	wall    time.Time     // where the previous segment began, exactly
	pts     time.Duration // the PTS of its first keyframe
}

// reset starts a new line: the next segment is placed at its own wall time.
func (t *timeline) reset() { t.started = false }

// place returns the wall time at which a segment whose first keyframe has
// PTS pts and wall time wall begins, and whether it continues the previous
// segment (begins where it ended, up to a correction of the drift). The
// previous segment must have ended at pts (its media lasts until this keyframe).
// The result is exact; a key rounds it to the millisecond.
func (t *timeline) place(pts time.Duration, wall time.Time) (start time.Time, continued bool) {
	if !t.started || pts < t.pts {
		t.started, t.wall, t.pts = true, wall, pts
		return wall, false
	}
	elapsed := pts - t.pts
	line := t.wall.Add(elapsed)
	drift := wall.Sub(line)
	switch {
	case drift > timelineResync || drift < -timelineResync:
		line, continued = wall, false
	case drift > timelineDeadBand || drift < -timelineDeadBand:
		step := elapsed / timelineSlew
		line, continued = line.Add(max(-step, min(step, drift))), true
	default:
		continued = true
	}
	t.wall, t.pts = line, pts
	return line, continued
}

// keyTime is the millisecond of a segment's key for an exact start. The
// timeline keeps exact times, so the truncation does not add up along a
// session: the boundary between two segments that continue each other is off
// by less than a millisecond either way.
func keyTime(start time.Time) time.Time { return start.UTC().Truncate(time.Millisecond) }
