package recorder

import (
	"bytes"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/recorder/archive"
)

// buildSegment writes a segment of the fixture with the fragmenter, as the
// camera writer does: init, then fragments. It returns the file and the
// positions where each fragment ends.
func buildSegment(t testing.TB, audio bool, length time.Duration) ([]byte, []int64) {
	t.Helper()
	fx := loadRecFixture(t)
	c := newRecClip(fx, ingest.NewStream("seg/main").SetTracks(fx.tracks(audio)), recT0)
	return fragmentUnits(t, c.next, length)
}

// fragmentUnits runs the units that next returns, up to the first at or
// after length, through a fragmenter, and returns the segment file with the
// positions where each fragment ends.
func fragmentUnits(t testing.TB, next func() *ingest.Unit, length time.Duration) ([]byte, []int64) {
	t.Helper()
	var fr *fragmenter
	var buf bytes.Buffer
	var ends []int64
	for {
		u := next()
		if u.PTS >= length {
			break
		}
		if fr == nil {
			var err error
			if fr, err = newFragmenter(u); err != nil {
				t.Fatal(err)
			}
			init, err := fr.initBytes()
			if err != nil {
				t.Fatal(err)
			}
			buf.Write(init)
		}
		frag, _, err := fr.add(u, maxFragment)
		if err != nil {
			t.Fatal(err)
		}
		if frag != nil {
			buf.Write(frag)
			ends = append(ends, int64(buf.Len()))
		}
	}
	frag, _, err := fr.finish(-1)
	if err != nil {
		t.Fatal(err)
	}
	buf.Write(frag)
	ends = append(ends, int64(buf.Len()))
	return buf.Bytes(), ends
}

var writerScanCases = []struct {
	name   string
	audio  bool
	length time.Duration
}{
	{"video 3s", false, 3 * time.Second},
	{"video and AAC 4s", true, 4 * time.Second},
	{"one picture", false, 40 * time.Millisecond},
}

// TestScanSegment scans segments made by the fragmenter (the camera writer's
// output); the scanner itself is tested and fuzzed in internal/fmp4read.
func TestScanSegment(t *testing.T) {
	for _, tc := range writerScanCases {
		t.Run(tc.name, func(t *testing.T) {
			file, ends := buildSegment(t, tc.audio, tc.length)
			sc, err := archive.ScanSegment(bytes.NewReader(file))
			if err != nil {
				t.Fatal(err)
			}
			if sc.Cut || sc.Valid != int64(len(file)) || len(sc.Fragments) != len(ends) {
				t.Fatalf("scan %+v, %d fragments expected", sc, len(ends))
			}
			if sc.Duration != tc.length.Round(40*time.Millisecond) && !(tc.length < 40*time.Millisecond) {
				t.Errorf("duration %v", sc.Duration)
			}
			for i, f := range sc.Fragments {
				if f.Pos+f.Size != ends[i] {
					t.Errorf("fragment %d ends at %d, want %d", i, f.Pos+f.Size, ends[i])
				}
				if i > 0 && f.Offset-sc.Fragments[i-1].Offset > time.Second {
					t.Errorf("fragment %d starts %v after the previous", i, f.Offset-sc.Fragments[i-1].Offset)
				}
				if f.Keyframe != (f.Offset%(2*time.Second) == 0) {
					t.Errorf("fragment %d at %v: keyframe %v", i, f.Offset, f.Keyframe)
				}
			}
			// cut at every byte of the last two fragments, and inside the init
			// section: the scan keeps the complete fragments only
			from := sc.InitSize
			if len(ends) > 2 {
				from = ends[len(ends)-3]
			}
			for cut := from; cut < int64(len(file)); cut += 97 {
				got, err := archive.ScanSegment(bytes.NewReader(file[:cut]))
				if err != nil {
					t.Fatalf("cut at %d: %v", cut, err)
				}
				want := sc.InitSize
				n := 0
				for _, e := range ends {
					if e <= cut {
						want, n = e, n+1
					}
				}
				if got.Valid != want || len(got.Fragments) != n || got.Cut != (cut != want) {
					t.Fatalf("cut at %d: valid %d (want %d), %d fragments (want %d), cut %v", cut, got.Valid, want, len(got.Fragments), n, got.Cut)
				}
			}
			for _, cut := range []int64{0, 7, 20, sc.InitSize - 1} {
				if _, err := archive.ScanSegment(bytes.NewReader(file[:cut])); err == nil {
					t.Errorf("cut at %d inside the init section: no error", cut)
				}
			}
			// garbage after the last fragment
			got, err := archive.ScanSegment(bytes.NewReader(append(append([]byte{}, file...), 0, 0, 0, 9, 'j', 'u', 'n', 'k', 1)))
			if err != nil || !got.Cut || got.Valid != int64(len(file)) {
				t.Errorf("trailing garbage: %+v, %v", got, err)
			}
		})
	}
}

// TestMarshalFragmentAsMediacommon: the fragments that the writer marshals
// itself, from the units' NAL units into one buffer, are byte for byte the
// fragments mediacommon's fmp4.Part.Marshal writes of the same samples.
func TestMarshalFragmentAsMediacommon(t *testing.T) {
	for _, tc := range writerScanCases {
		t.Run(tc.name, func(t *testing.T) {
			file, ends := buildSegment(t, tc.audio, tc.length)
			sc, err := archive.ScanSegment(bytes.NewReader(file))
			if err != nil {
				t.Fatal(err)
			}
			from := sc.InitSize
			for i, end := range ends {
				frag := file[from:end]
				from = end
				var parts fmp4.Parts
				if err := parts.Unmarshal(frag); err != nil || len(parts) != 1 {
					t.Fatalf("fragment %d: %d parts, %v", i, len(parts), err)
				}
				var buf seekablebuffer.Buffer
				if err := parts[0].Marshal(&buf); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(buf.Bytes(), frag) {
					t.Fatalf("fragment %d (%d bytes) differs from mediacommon's (%d bytes)", i, len(frag), buf.Len())
				}
			}
		})
	}
}

// BenchmarkFragmenter measures the recording path from hub unit to fMP4
// fragment, the way the camera writer drives it (fragments marshalled into
// pooled buffers): allocations and bytes per unit.
func BenchmarkFragmenter(b *testing.B) {
	fx := loadRecFixture(b)
	st := ingest.NewStream("bench/main")
	media := st.SetTracks(fx.tracks(true))
	c := newRecClip(fx, media, recT0)
	units := make([]*ingest.Unit, 0, 2000)
	for len(units) < cap(units) {
		units = append(units, c.next())
	}
	var bufs bufPool
	var fr *fragmenter
	b.ReportAllocs()
	b.ResetTimer()
	var bytes int64
	for i := range b.N {
		u := units[i%len(units)]
		if i%len(units) == 0 || fr == nil {
			// a new segment at each pass over the clip (its PTS starts again)
			for u.Track == nil || !u.Track.Video || !u.Keyframe {
				i++
				u = units[i%len(units)]
			}
			var err error
			if fr, err = newFragmenter(u); err != nil {
				b.Fatal(err)
			}
			fr.bufs = &bufs
		}
		frag, _, err := fr.add(u, maxFragment)
		if err != nil {
			b.Fatal(err)
		}
		if frag != nil {
			bytes += int64(len(frag))
			fr.release()
		}
	}
	b.SetBytes(bytes / int64(max(b.N, 1)))
}
