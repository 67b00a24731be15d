package fmp4read

import (
	"bytes"
	"math"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
)

// The parameter sets of recorder/testdata/cam.h264 (320x240 baseline).
var (
	testSPS = []byte{0x67, 0x42, 0xc0, 0xd, 0xda, 0x5, 0x7, 0xec, 0x4, 0x40, 0x0, 0x0, 0x3, 0x0, 0x40, 0x0, 0x0, 0xc, 0xa3, 0xc5, 0xa, 0xa8}
	testPPS = []byte{0x68, 0xce, 0x3c, 0x80}
)

// frag describes one fragment of a test segment: pictures of 40 ms (the
// first a keyframe or not) and audio frames of 1024 samples at 48 kHz.
type frag struct {
	pictures int
	keyframe bool
	audio    int
}

var scanCases = []struct {
	name  string
	audio bool
	frags []frag
	dur   time.Duration // end of the last picture
}{
	{"one picture", false, []frag{{1, true, 0}}, 40 * time.Millisecond},
	{"keyframe every 2 s, 1 s fragments", false, []frag{{25, true, 0}, {25, false, 0}, {25, true, 0}, {10, false, 0}}, 3400 * time.Millisecond},
	{"with audio", true, []frag{{25, true, 47}, {25, false, 47}, {5, true, 9}}, 2200 * time.Millisecond},
	{"audio-only fragment", true, []frag{{25, true, 47}, {0, false, 3}}, time.Second},
}

// buildSegment marshals a test segment with mediacommon and returns it with
// the end position of each fragment.
func buildSegment(t testing.TB, audio bool, frags []frag) ([]byte, []int64) {
	t.Helper()
	init := fmp4.Init{Tracks: []*fmp4.InitTrack{{ID: 1, TimeScale: 90000, Codec: &fmp4.CodecH264{SPS: testSPS, PPS: testPPS}}}}
	if audio {
		init.Tracks = append(init.Tracks, &fmp4.InitTrack{ID: 2, TimeScale: 48000, Codec: &fmp4.CodecMPEG4Audio{
			Config: mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 48000, ChannelCount: 1}}})
	}
	var buf seekablebuffer.Buffer
	if err := init.Marshal(&buf); err != nil {
		t.Fatal(err)
	}
	out := append([]byte(nil), buf.Bytes()...)
	var ends []int64
	var vt, at uint64
	for i, f := range frags {
		p := fmp4.Part{SequenceNumber: uint32(i + 1)}
		if f.pictures > 0 {
			pt := &fmp4.PartTrack{ID: 1, BaseTime: vt}
			for j := range f.pictures {
				pt.Samples = append(pt.Samples, &fmp4.Sample{Duration: 3600, IsNonSyncSample: j > 0 || !f.keyframe,
					Payload: []byte{0, 0, 0, 2, 0x65, byte(j)}})
				vt += 3600
			}
			p.Tracks = append(p.Tracks, pt)
		}
		if f.audio > 0 {
			pt := &fmp4.PartTrack{ID: 2, BaseTime: at}
			for range f.audio {
				pt.Samples = append(pt.Samples, &fmp4.Sample{Duration: 1024, Payload: []byte{0x21, 0x10, 0x04}})
				at += 1024
			}
			p.Tracks = append(p.Tracks, pt)
		}
		buf.Reset()
		if err := p.Marshal(&buf); err != nil {
			t.Fatal(err)
		}
		out = append(out, buf.Bytes()...)
		ends = append(ends, int64(len(out)))
	}
	return out, ends
}

// scanBuilt builds a test segment and scans it, failing the test on an error.
func scanBuilt(t *testing.T, audio bool, frags []frag) ([]byte, []int64, *Result) {
	t.Helper()
	file, ends := buildSegment(t, audio, frags)
	res, err := Scan(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	return file, ends, res
}

func TestScan(t *testing.T) {
	for _, tc := range scanCases {
		t.Run(tc.name, func(t *testing.T) {
			file, ends, res := scanBuilt(t, tc.audio, tc.frags)
			if res.Cut || res.Valid != int64(len(file)) || len(res.Fragments) != len(tc.frags) || res.Duration != tc.dur {
				t.Fatalf("scan %+v", res)
			}
			var at time.Duration
			for i, f := range res.Fragments {
				if f.Pos+f.Size != ends[i] {
					t.Errorf("fragment %d ends at %d, want %d", i, f.Pos+f.Size, ends[i])
				}
				if f.Offset != at || f.Keyframe != (tc.frags[i].keyframe && tc.frags[i].pictures > 0) {
					t.Errorf("fragment %d: %+v, want offset %v", i, f, at)
				}
				at += time.Duration(tc.frags[i].pictures) * 40 * time.Millisecond
			}
			// every cut keeps exactly the complete fragments before it
			for cut := res.InitSize; cut < int64(len(file)); cut++ {
				got, err := Scan(bytes.NewReader(file[:cut]))
				if err != nil {
					t.Fatalf("cut at %d: %v", cut, err)
				}
				want, n := res.InitSize, 0
				for _, e := range ends {
					if e <= cut {
						want, n = e, n+1
					}
				}
				if got.Valid != want || len(got.Fragments) != n || got.Cut != (cut != want) {
					t.Fatalf("cut at %d: valid %d (want %d), %d fragments (want %d), cut %v",
						cut, got.Valid, want, len(got.Fragments), n, got.Cut)
				}
			}
			for cut := range res.InitSize {
				if _, err := Scan(bytes.NewReader(file[:cut])); err == nil {
					t.Fatalf("cut at %d, inside the init section: no error", cut)
				}
			}
			// a corrupt box after the last fragment
			got, err := Scan(bytes.NewReader(append(append([]byte{}, file...), 0, 0, 0, 9, 'j', 'u', 'n', 'k', 1)))
			if err != nil || !got.Cut || got.Valid != int64(len(file)) {
				t.Errorf("trailing garbage: %+v, %v", got, err)
			}
			// a huge declared size is not allocated
			huge := append(append([]byte{}, file...), 0, 0, 0, 1, 'm', 'o', 'o', 'f', 0, 0, 0, 0, 3, 0, 0, 0)
			if got, err := Scan(bytes.NewReader(huge)); err != nil || !got.Cut {
				t.Errorf("huge box: %+v, %v", got, err)
			}
		})
	}
}

func TestScaleDuration(t *testing.T) {
	for _, tc := range []struct {
		v     uint64
		scale uint32
		want  time.Duration
	}{
		{90000, 90000, time.Second},
		{3600, 90000, 40 * time.Millisecond},
		{1024, 48000, 21333333},
		{90000 * 3600 * 24, 90000, 24 * time.Hour},
		{5, 0, 0},
	} {
		if got := ScaleDuration(tc.v, tc.scale); got != tc.want {
			t.Errorf("%d/%d: %v, want %v", tc.v, tc.scale, got, tc.want)
		}
	}
}

// FuzzRead is the package's one fuzz target: whatever the bytes, nothing
// panics, and what is read is consistent with the input. Scan's fragments
// tile the valid prefix, which scans again to the same result; a parsed init
// section has no track of timescale 0; a moof that parses and is rewritten
// parses again with the times it was given. Seeded from the scan and keyframe
// tables (ffmpeg's fragments, our recorder's, hand-made sample flag layouts)
// and the moof table.
func FuzzRead(f *testing.F) {
	for _, seed := range fuzzSeeds(f) {
		f.Add(seed, uint64(1000))
	}
	for _, tc := range mp4Cases(f) {
		f.Add(tc.frag, uint64(1000))
		f.Add(tc.frag, uint64(math.MaxUint32)+1)
	}
	f.Add(appendBox(nil, "moov"), uint64(0))
	f.Fuzz(func(t *testing.T, b []byte, tm uint64) {
		checkInit(t, b)
		checkRewrite(t, b, tm)
		checkScan(t, b)
	})
}

func checkInit(t *testing.T, b []byte) {
	in, err := ParseInit(b)
	if err != nil {
		return
	}
	for _, tr := range in.Tracks {
		if tr.Timescale == 0 {
			t.Fatalf("track %d with timescale 0", tr.ID)
		}
	}
}

func checkRewrite(t *testing.T, b []byte, tm uint64) {
	in := &Init{Tracks: []Track{{ID: 1, Timescale: 90000}, {ID: 2, Timescale: 48000}}}
	m, err := ParseMoof(b, in)
	if err != nil {
		return
	}
	for _, tr := range m.Trafs {
		// a sample located must lie after its moof's start (thumbnails read it)
		if pos, size, err := tr.SampleAt(100); err == nil && (pos < 100 || size <= 0) {
			t.Fatalf("track %d: first sample at %d+%d for a moof at 100", tr.TrackID, pos, size)
		}
	}
	times := make([]uint64, len(m.Trafs))
	for i := range times {
		times[i] = tm + uint64(i)
	}
	out, err := RewriteMoof(append([]byte(nil), b...), m, 9, times, 100, 200)
	if err != nil {
		return
	}
	m2, err := ParseMoof(out, in)
	if err != nil {
		t.Fatalf("rewritten moof does not parse: %v", err)
	}
	for i, tr := range m2.Trafs {
		if tr.BaseTime != times[i] {
			t.Fatalf("track fragment %d: time %d, want %d", i, tr.BaseTime, times[i])
		}
	}
}

func checkScan(t *testing.T, b []byte) {
	res, err := Scan(bytes.NewReader(b))
	if err != nil {
		return
	}
	if res.Valid > int64(len(b)) || res.InitSize > res.Valid {
		t.Fatalf("valid %d, init %d of %d bytes", res.Valid, res.InitSize, len(b))
	}
	pos := res.InitSize
	for _, fr := range res.Fragments {
		if fr.Pos != pos || fr.Size <= 0 {
			t.Fatalf("fragment %+v at %d", fr, pos)
		}
		pos += fr.Size
	}
	if pos != res.Valid || (!res.Cut && res.Valid != int64(len(b))) {
		t.Fatalf("fragments end at %d, valid %d of %d, cut %v", pos, res.Valid, len(b), res.Cut)
	}
	// the valid prefix scans again to the same result
	again, err := Scan(bytes.NewReader(b[:res.Valid]))
	if err != nil || again.Cut || len(again.Fragments) != len(res.Fragments) {
		t.Fatalf("rescan of the valid prefix: %+v, %v", again, err)
	}
	for i, fr := range again.Fragments {
		if fr != res.Fragments[i] { // offsets and keyframe flags too
			t.Fatalf("rescan: fragment %d is %+v, was %+v", i, fr, res.Fragments[i])
		}
	}
}
