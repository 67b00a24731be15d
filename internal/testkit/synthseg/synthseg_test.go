package synthseg

import (
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
)

// A segment reads back as it was described: fragments of FragmentFrames
// frames from Base, a keyframe every 50 frames, the last fragment cut at
// Length.
func TestH264(t *testing.T) {
	b := H264(t, Spec{Length: 3 * time.Second, FragmentFrames: 25, Payload: 64, Base: 900})
	var parts fmp4.Parts
	if err := parts.Unmarshal(b); err != nil {
		t.Fatal(err)
	}
	if len(parts) != 3 {
		t.Fatalf("%d fragments, want 3", len(parts))
	}
	frame := 0
	for i, p := range parts {
		tr := p.Tracks[0]
		if tr.BaseTime != 900+uint64(i)*90000 || len(tr.Samples) != 25 {
			t.Fatalf("fragment %d: base %d, %d samples", i, tr.BaseTime, len(tr.Samples))
		}
		for _, s := range tr.Samples {
			key := frame%50 == 0
			if s.IsNonSyncSample == key || len(s.Payload) != 64 || (s.Payload[4] == 0x65) != key {
				t.Fatalf("frame %d: non-sync %v, %d bytes, NAL %#x", frame, s.IsNonSyncSample, len(s.Payload), s.Payload[4])
			}
			frame++
		}
	}
	last := H264(t, Spec{Length: 2500 * time.Millisecond, FragmentFrames: 50, Payload: 10})
	var lparts fmp4.Parts
	if err := lparts.Unmarshal(last); err != nil {
		t.Fatal(err)
	}
	if len(lparts) != 2 || len(lparts[1].Tracks[0].Samples) != 12 {
		t.Fatalf("2.5 s in fragments of 50 frames: %d fragments", len(lparts))
	}
}
