package camsim

import (
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
)

// Under StaggerGOPs the cameras start at even steps through the clip (so
// their keyframes are apart), a camera's sub-stream with it, and a camera
// started mid-clip still streams from its next keyframe without gaps.
func TestStaggerGOPs(t *testing.T) {
	s := startServer(t, Options{Count: 4, StaggerGOPs: true})
	clip := ticksToDuration(s.clips.main.duration, s.clips.main.clockRate)
	for cam := 1; cam <= 4; cam++ {
		want := clip * time.Duration(cam-1) / 4
		if got := s.staggerOffset(streamPath(cam, false)); got != want {
			t.Errorf("camera %d starts %s into the clip, want %s", cam, got, want)
		}
		if got := s.staggerOffset(streamPath(cam, true)); got != want {
			t.Errorf("camera %d's sub-stream starts %s into the clip, want %s", cam, got, want)
		}
	}
	if clip/4%(2*time.Second) == 0 {
		t.Fatalf("clip of %s: a quarter of it is a whole number of GOPs, the test shows nothing", clip)
	}
	r := mustPlay(t, s.URL(2, false), gortsplib.TransportTCP)
	waitKeyframe(t, r, 5*time.Second)
	time.Sleep(500 * time.Millisecond)
	r.mu.Lock()
	decErr, gaps := r.decodeError, r.seqGaps
	r.mu.Unlock()
	if decErr != nil || gaps != 0 {
		t.Fatalf("decode error %v, %d sequence gaps", decErr, gaps)
	}
}
