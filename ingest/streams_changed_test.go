package ingest

import "testing"

// TestStreamsChanged: the channel of StreamsChanged is closed when a stream
// is added or removed, and not when a camera changes without that.
func TestStreamsChanged(t *testing.T) {
	m := NewFleet(FleetOptions{})
	closed := func(ch <-chan struct{}) bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
	cam := Camera{ID: "cam-1", MainURL: "rtsp://127.0.0.1:1/main"}
	for _, step := range []struct {
		name    string
		do      func()
		changed bool
	}{
		{"camera added", func() { m.Set(cam) }, true},
		{"same camera again", func() { m.Set(cam) }, false},
		{"sub stream added", func() { cam.SubURL = "rtsp://127.0.0.1:1/sub"; m.Set(cam) }, true},
		{"sub stream removed", func() { cam.SubURL = ""; m.Set(cam) }, true},
		{"camera removed", func() { m.Remove("cam-1") }, true},
		{"unknown camera removed", func() { m.Remove("cam-1") }, false},
	} {
		ch := m.StreamsChanged()
		step.do()
		if got := closed(ch); got != step.changed {
			t.Errorf("%s: channel closed %v, want %v", step.name, got, step.changed)
		}
	}
	if s := m.Stream("cam-1", Main); s != nil {
		t.Errorf("stream of a removed camera: %v", s)
	}
}
