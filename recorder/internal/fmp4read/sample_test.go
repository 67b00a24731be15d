package fmp4read

import (
	"bytes"
	"os"
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
)

// TestSampleAt locates the first sample of every track fragment of real
// files (ours and ffmpeg's) and of hand-made fragments with either kind of
// base, and checks it against mediacommon's reader of the same fragment:
// the same bytes, and the duration of that first sample.
func TestSampleAt(t *testing.T) {
	for _, name := range []string{"testdata/recorder_sub.mp4", "testdata/ffmpeg_frag.mp4"} {
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			sc, err := Scan(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			in, err := ParseInit(b[:sc.InitSize])
			if err != nil {
				t.Fatal(err)
			}
			checked := 0
			for _, f := range sc.Fragments {
				frag := b[f.Pos : f.Pos+f.Size]
				m, err := ParseMoof(frag, in)
				if err != nil {
					t.Fatal(err)
				}
				var parts fmp4.Parts
				if err := parts.Unmarshal(frag); err != nil || len(parts) != 1 {
					t.Fatalf("mediacommon: %d parts, %v", len(parts), err)
				}
				for _, tr := range m.Trafs {
					pos, size, err := tr.SampleAt(f.Pos)
					if err != nil {
						t.Fatalf("fragment at %d, track %d: %v", f.Pos, tr.TrackID, err)
					}
					var want *fmp4.Sample
					for _, pt := range parts[0].Tracks {
						if uint32(pt.ID) == tr.TrackID && len(pt.Samples) > 0 {
							want = pt.Samples[0]
						}
					}
					if want == nil {
						t.Fatalf("mediacommon sees no sample of track %d", tr.TrackID)
					}
					if !bytes.Equal(b[pos:pos+size], want.Payload) || tr.First.Duration != want.Duration || tr.First.CTO != want.PTSOffset {
						t.Fatalf("fragment at %d, track %d: sample at %d+%d (duration %d, cto %d), mediacommon's is %d bytes (duration %d, cto %d)",
							f.Pos, tr.TrackID, pos, size, tr.First.Duration, tr.First.CTO, len(want.Payload), want.Duration, want.PTSOffset)
					}
					checked++
				}
			}
			if checked < 4 {
				t.Fatalf("only %d track fragments checked", checked)
			}
		})
	}
	for _, explicit := range []bool{false, true} {
		frag := handFragment(explicit, 1000)
		m, err := ParseMoof(frag, handInit)
		if err != nil {
			t.Fatal(err)
		}
		pos, size, err := m.Trafs[0].SampleAt(1000)
		if err != nil || size != 3 || string(frag[pos-1000:pos-1000+size]) != "abc" {
			t.Fatalf("explicit base %v: sample at %d+%d (%v)", explicit, pos, size, err)
		}
	}
}
