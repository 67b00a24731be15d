package ingest

import (
	"fmt"
	"time"
)

// Where a unit is filed is decided by the server's clock, never by the
// camera's: cameras with wrong clocks are common (an RTC reset by a power cut,
// no NTP, local time sent as UTC), and a camera's RTCP sender reports jitter
// by seconds against its RTP timestamps even when its clock is right.
//
// Each track of a session has a wallClock: it anchors media time 0 at the
// arrival of the track's first unit and advances with the RTP timestamps,
// which are smooth. Arrival times keep it
// near the server's clock: a unit cannot arrive before it was captured, and the
// earliest arrivals of a while are close to the capture times. Corrections are
// slewed (at most clockSlew of the media time that passed), so that unit times
// never jump by the jitter of a network or of the camera; only an error beyond
// clockResync (the camera's RTP timestamps jumped) is corrected at once, and
// the track's PTS then goes on by the server's clock as well.
//
// The camera's own clock, from its sender reports, is only compared with the
// server's to report a skew in status.

const (
	// clockSlew bounds a correction to 1/clockSlew of the media time since the
	// previous unit: 10 ms per second.
	clockSlew = 100
	// clockWindow is how long the earliest arrival is watched before a unit
	// time that runs early is corrected.
	clockWindow = 5 * time.Second
	// clockTolerance is how late the earliest unit of a window may arrive
	// without a correction: network delay and the pacing of a camera.
	clockTolerance = 100 * time.Millisecond
	// clockResync is the error beyond which the clock is re-anchored: at once
	// for a unit that claims to be captured after it arrived, after a window
	// for units that all arrive late.
	clockResync = 5 * time.Second
	// clockLate is how late a unit may arrive before the clock is re-anchored
	// at once: no network holds a unit this long.
	clockLate = 30 * time.Second
	// clockSkewWarn is the difference between a camera's clock and the
	// server's from which status reports it.
	clockSkewWarn = 5 * time.Second
	// skewWeight is the weight of a new sample in the skew average (1/n).
	skewWeight = 64
)

// wallClock maps the media time of one track of a session to the server's wall clock.
// The zero value is ready; it is not safe for concurrent use.
type wallClock struct {
	started bool
	anchor  time.Time     // wall time of media time 0
	lastRel time.Duration // latest media time seen
	pending time.Duration // correction still to slew into anchor

	winStart time.Time     // arrival at which the current window began
	winMin   time.Duration // smallest lag (arrival minus unit time) in the window
	resyncs  int           // times the clock was re-anchored after the start
}

// at returns the wall time of the unit at media time rel that arrived at
// arrival, and whether the clock was re-anchored there because the timestamps
// jumped.
func (c *wallClock) at(rel time.Duration, arrival time.Time) (time.Time, bool) {
	if !c.started {
		c.started = true
		c.anchor = arrival.Add(-rel)
		c.lastRel = rel
		c.newWindow(arrival)
		return arrival, false
	}
	var dt time.Duration
	if rel > c.lastRel {
		// with B-frames, media time steps back a little
		dt = rel - c.lastRel
		c.lastRel = rel
	}
	lag := arrival.Sub(c.anchor.Add(rel))
	if lag < -clockResync || lag > clockLate {
		// claims to be captured seconds after it arrived, or long before: the timestamps jumped
		c.resync(rel, arrival)
		return arrival, true
	}
	if lag < 0 && lag < c.pending {
		// arrived before its time: the anchor is late by at least -lag
		c.pending = lag
	}
	c.winMin = min(c.winMin, lag)
	if arrival.Sub(c.winStart) >= clockWindow {
		switch {
		case c.winMin > clockResync:
			// every unit came seconds late: the timestamps jumped back or stood still
			c.resync(rel, arrival)
			return arrival, true
		case c.winMin > clockTolerance && c.pending >= 0:
			// even the earliest unit came late: the anchor is early
			c.pending = c.winMin - clockTolerance/2
		}
		c.newWindow(arrival)
	}
	if step := dt / clockSlew; step > 0 && c.pending != 0 {
		step = max(-step, min(step, c.pending))
		c.anchor = c.anchor.Add(step)
		c.pending -= step
	}
	return c.anchor.Add(rel), false
}

func (c *wallClock) newWindow(arrival time.Time) {
	c.winStart = arrival
	c.winMin = time.Duration(1<<63 - 1)
}

func (c *wallClock) resync(rel time.Duration, arrival time.Time) {
	c.anchor = arrival.Add(-rel)
	c.lastRel = rel
	c.pending = 0
	c.resyncs++
	c.newWindow(arrival)
}

// skewMeter averages how far a camera's clock (the time its sender reports
// give a unit) is from the server's (the time the unit is filed at).
type skewMeter struct {
	n   int
	avg time.Duration
}

func (m *skewMeter) add(camera, server time.Time) {
	d := camera.Sub(server)
	m.n++
	if m.n == 1 {
		m.avg = d
		return
	}
	w := min(m.n, skewWeight)
	m.avg += (d - m.avg) / time.Duration(w)
}

// skewOff reports whether a camera's clock is off by clockSkewWarn or more.
func skewOff(skew time.Duration) bool {
	return skew <= -clockSkewWarn || skew >= clockSkewWarn
}

// skewText says in a sentence how far a camera's clock is off, or "" when it
// is within clockSkewWarn.
func skewText(skew time.Duration) string {
	if !skewOff(skew) {
		return ""
	}
	dir := "ahead of"
	if skew < 0 {
		dir, skew = "behind", -skew
	}
	return fmt.Sprintf("the camera's clock is %s %s the server's; its video is filed by the server's clock (set the camera's time or NTP)",
		skew.Round(time.Second), dir)
}

// ntpToTime converts a 64-bit NTP time of RTCP (RFC 3550: seconds since 1900,
// and the fraction of a second in units of 2^-32). gortsplib v4.16.2's own
// PacketNTP reads the fraction as nanoseconds, up to 3.3 s off.
func ntpToTime(v uint64) time.Time {
	const epochOffset = 2208988800 // seconds from 1900 to 1970
	sec := int64(v>>32) - epochOffset
	ns := int64((v & 0xffffffff) * 1e9 >> 32)
	return time.Unix(sec, ns)
}
