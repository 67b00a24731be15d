package recorder

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
	"time"
)

// session is a recorded session as the writer sees it: the PTS and the wall
// time (as ingest files it) of the keyframe that starts each segment.
type session struct {
	pts  []time.Duration
	wall []time.Time
	jump int           // index of the segment from which the wall clock jumped (0: none)
	by   time.Duration // how far
}

// jitteredSession builds n segments of the given lengths (seconds) from a
// camera whose timestamps run rate parts per million fast, with keyframe wall
// times off by the given jitter, and a jump of the wall clock by `by` from
// segment `jump` on.
func jitteredSession(t0 time.Time, lens []time.Duration, ppm float64, jitter []time.Duration, jump int, by time.Duration) session {
	s := session{jump: jump, by: by}
	var real time.Duration
	for i, d := range lens {
		pts := time.Duration(float64(real) * (1 + ppm/1e6))
		wall := t0.Add(real + jitter[i])
		if jump > 0 && i >= jump {
			wall = wall.Add(by)
		}
		s.pts = append(s.pts, pts)
		s.wall = append(s.wall, wall)
		real += d
	}
	return s
}

// checkTimeline places the session's segments and checks the boundaries:
// between segments of one session no gap and no overlap beyond the slew of a
// drift correction (none at all while the drift stays in the dead band), and
// a real jump kept.
func checkTimeline(t *testing.T, s session, maxJitter time.Duration, ppm float64) {
	t.Helper()
	var tl timeline
	var prevEnd time.Time
	exact := ppm == 0 && maxJitter < timelineDeadBand/2
	for i := range s.pts {
		start, continued := tl.place(s.pts[i], s.wall[i])
		if i > 0 {
			elapsed := s.pts[i] - s.pts[i-1]
			gap := start.Sub(prevEnd)
			switch {
			case i == s.jump && (s.by > timelineResync+timelineDeadBand+2*maxJitter || s.by < -(timelineResync+timelineDeadBand+2*maxJitter)):
				if continued || gap < s.by-timelineDeadBand-2*maxJitter-elapsed/100 || gap > s.by+timelineDeadBand+2*maxJitter+elapsed/100 {
					t.Fatalf("segment %d: wall clock jumped by %v: gap %v (continued %v), want the jump kept", i, s.by, gap, continued)
				}
			case i == s.jump:
				// a jump between the dead band and the resync bound: either
			default:
				if !continued {
					t.Fatalf("segment %d: not continued (gap %v, jitter up to %v, %v ppm)", i, gap, maxJitter, ppm)
				}
				if limit := elapsed / timelineSlew; gap > limit || gap < -limit {
					t.Fatalf("segment %d: gap %v between segments of one session, more than the slew %v", i, gap, limit)
				}
				if exact && gap != 0 {
					t.Fatalf("segment %d: gap %v, want none (jitter up to %v, no drift)", i, gap, maxJitter)
				}
				// the keys, truncated to the millisecond, are off by less than one
				if kg := keyTime(start).Sub(keyTime(prevEnd.Add(-gap))) - gap; exact && (kg >= time.Millisecond || kg <= -time.Millisecond) {
					t.Fatalf("segment %d: keys %v apart from the line", i, kg)
				}
			}
			// the line stays near the wall clock
			if off := start.Sub(s.wall[i]); i != s.jump && (off > timelineResync+maxJitter || off < -timelineResync-maxJitter) {
				t.Fatalf("segment %d: placed %v from its wall time", i, off)
			}
		}
		if i+1 < len(s.pts) {
			prevEnd = start.Add(s.pts[i+1] - s.pts[i])
		}
	}
}

func TestTimelineCases(t *testing.T) {
	t0 := time.Date(2026, 11, 29, 10, 0, 0, 123456789, time.UTC)
	uniform := func(n int, d time.Duration) []time.Duration {
		out := make([]time.Duration, n)
		for i := range out {
			out[i] = d
		}
		return out
	}
	rng := rand.New(rand.NewPCG(1, 2))
	jitter := func(n int, j time.Duration) []time.Duration {
		out := make([]time.Duration, n)
		for i := range out {
			if j > 0 {
				out[i] = time.Duration(rng.Int64N(int64(2*j))) - j
			}
		}
		return out
	}
	cases := []struct {
		name   string
		lens   []time.Duration
		ppm    float64
		jitter time.Duration
		jump   int
		by     time.Duration
	}{
		{name: "exact", lens: uniform(50, 2*time.Second)},
		{name: "jitter 100ms", lens: uniform(200, 2*time.Second), jitter: 100 * time.Millisecond},
		{name: "jitter 120ms, 60s segments", lens: uniform(100, time.Minute), jitter: 120 * time.Millisecond},
		{name: "camera 500 ppm fast", lens: uniform(2000, 4*time.Second), ppm: 500, jitter: 50 * time.Millisecond},
		{name: "camera 800 ppm slow", lens: uniform(2000, 4*time.Second), ppm: -800, jitter: 50 * time.Millisecond},
		{name: "wall clock jumps ahead", lens: uniform(40, 2*time.Second), jitter: 80 * time.Millisecond, jump: 20, by: 7 * time.Second},
		{name: "wall clock jumps back", lens: uniform(40, 2*time.Second), jitter: 80 * time.Millisecond, jump: 20, by: -3 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := jitteredSession(t0, c.lens, c.ppm, jitter(len(c.lens), c.jitter), c.jump, c.by)
			checkTimeline(t, s, c.jitter, c.ppm)
		})
	}
}

// FuzzTimeline places sessions whose lengths, camera rate, keyframe jitter
// and wall-clock jump come from the fuzzer.
func FuzzTimeline(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 20, 20, 20, 20, 20, 20, 20, 20})
	f.Add([]byte{10, 200, 3, 90, 4, 250, 1, 17, 33, 200, 100, 4, 8, 9})
	f.Add([]byte{255, 255, 20, 255, 255, 0, 255, 0, 255, 0, 255, 0, 255, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < 6 {
			return
		}
		ppm := float64(int8(b[0])) * 4                                                     // ±512 ppm
		maxJitter := time.Duration(b[1]) * 400 * time.Microsecond                          // up to 102 ms
		jump := int(b[2] % 32)                                                             // segment at which the wall clock jumps
		by := time.Duration(int16(binary.BigEndian.Uint16(b[3:5]))) * time.Millisecond / 4 // ±8 s
		t0 := time.Unix(1_800_000_000, int64(b[5])*1_000_003)
		var lens, jit []time.Duration
		for i := 6; i+1 < len(b) && len(lens) < 200; i += 2 {
			lens = append(lens, 500*time.Millisecond+time.Duration(b[i])*240*time.Millisecond) // 0.5 s to 61.7 s
			j := time.Duration(int8(b[i+1])) * maxJitter / 128
			jit = append(jit, j)
		}
		if len(lens) < 2 {
			return
		}
		if jump >= len(lens) {
			jump = 0
		}
		// a jump is either small (drift the line corrects slowly) or real
		// (beyond what drift and jitter explain); between the two the
		// timeline may do either, over a few segments
		if big := timelineResync + timelineDeadBand + 2*maxJitter; by.Abs() > timelineDeadBand/4 && by.Abs() <= big {
			by = 0
		}
		checkTimeline(t, jitteredSession(t0, lens, ppm, jit, jump, by), maxJitter, ppm)
	})
}

// TestTimelineReset: a new session begins at its own wall time.
func TestTimelineReset(t *testing.T) {
	var tl timeline
	t0 := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	tl.place(0, t0)
	tl.reset()
	at := t0.Add(10 * time.Second)
	if got, continued := tl.place(2*time.Second, at); !got.Equal(at) || continued {
		t.Fatalf("after reset: placed at %v (continued %v), want %v", got, continued, at)
	}
	if got, continued := tl.place(time.Second, at.Add(time.Second)); continued || !got.Equal(at.Add(time.Second)) {
		t.Fatalf("PTS going back: placed at %v (continued %v), want a new line", got, continued)
	}
}
