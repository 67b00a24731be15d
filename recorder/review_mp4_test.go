package recorder

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
)

func mp4TestBox(typ string, payload ...[]byte) []byte {
	n := 8
	for _, p := range payload {
		n += len(p)
	}
	b := binary.BigEndian.AppendUint32(nil, uint32(n))
	b = append(b, typ...)
	for _, p := range payload {
		b = append(b, p...)
	}
	return b
}

func be32(vs ...uint32) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	return b
}

// handFragment builds a moof+mdat of track 1 with two samples ("abc",
// "defg") and a version-0 tfdt. explicitBase sets tfhd's base_data_offset
// for a fragment at filePos in its file instead of counting from the moof.
func handFragment(explicitBase bool, filePos int64) []byte {
	build := func(dataOffset uint32, base uint64) []byte {
		tfhd := be32(tfhdDefaultBaseIsMoof|tfhdDefaultDuration, 1, 3600)
		if explicitBase {
			tfhd = append(be32(tfhdBaseDataOffset|tfhdDefaultDuration, 1), binary.BigEndian.AppendUint64(nil, base)...)
			tfhd = append(tfhd, be32(3600)...)
		}
		return mp4TestBox("moof",
			mp4TestBox("mfhd", be32(0, 7)),
			mp4TestBox("traf",
				mp4TestBox("tfhd", tfhd),
				mp4TestBox("tfdt", be32(0, 1000)),
				mp4TestBox("trun", be32(trunDataOffset|trunSampleSize, 2, dataOffset, 3, 4))))
	}
	moofSize := len(build(0, 0))
	var moof []byte
	if explicitBase {
		moof = build(0, uint64(filePos)+uint64(moofSize)+8)
	} else {
		moof = build(uint32(moofSize+8), 0)
	}
	return append(moof, mp4TestBox("mdat", []byte("abcdefg"))...)
}

var handInit = &mp4Init{Tracks: []mp4Track{{ID: 1, Timescale: 90000, Handler: "vide"}}}

// mp4Cases feed the moof tests and the fuzz seeds.
func mp4Cases(t testing.TB) []struct {
	name string
	frag []byte
	ok   bool
} {
	synth := syntheticReviewSegment(t, 4*time.Second, 20, 0)
	seg := describeReviewSegment(t, "x", reviewT0, synth)
	f := seg.Fragments[1]
	return []struct {
		name string
		frag []byte
		ok   bool
	}{
		{"mediacommon fragment", synth[f.Pos : f.Pos+f.Size], true},
		{"version 0 tfdt", handFragment(false, 0), true},
		{"explicit base data offset", handFragment(true, 5000), true},
		{"truncated", handFragment(false, 0)[:30], false},
		{"not a moof", mp4TestBox("mdat", []byte("abc")), false},
		{"empty", nil, false},
	}
}

func TestParseMoof(t *testing.T) {
	for _, tc := range mp4Cases(t) {
		t.Run(tc.name, func(t *testing.T) {
			in := handInit
			if tc.name == "mediacommon fragment" {
				in = &mp4Init{Tracks: []mp4Track{{ID: 1, Timescale: 90000}}}
			}
			m, err := parseMoof(tc.frag, in)
			if (err == nil) != tc.ok {
				t.Fatalf("parse: %v, want ok=%v", err, tc.ok)
			}
			if err == nil && len(m.Trafs) != 1 {
				t.Fatalf("%d track fragments", len(m.Trafs))
			}
		})
	}
}

func TestRewriteMoofWidensTfdt(t *testing.T) {
	for _, explicit := range []bool{false, true} {
		const inPos, outPos = 5000, 777
		frag := handFragment(explicit, inPos)
		m, err := parseMoof(frag, handInit)
		if err != nil {
			t.Fatal(err)
		}
		if m.Trafs[0].BaseTime != 1000 || m.Trafs[0].Duration != 7200 || m.Trafs[0].tfdtV1 {
			t.Fatalf("parsed %+v", m.Trafs[0])
		}
		want := uint64(math.MaxUint32) + 12345
		out, err := rewriteMoof(append([]byte(nil), frag...), m, 42, []uint64{want}, inPos, outPos)
		if err != nil {
			t.Fatal(err)
		}
		if len(out) != len(frag)+4 {
			t.Fatalf("rewritten fragment has %d bytes, want %d", len(out), len(frag)+4)
		}
		m2, err := parseMoof(out, handInit)
		if err != nil {
			t.Fatalf("reparse: %v", err)
		}
		if m2.Trafs[0].BaseTime != want || !m2.Trafs[0].tfdtV1 || binary.BigEndian.Uint32(out[m2.seqAt:]) != 42 {
			t.Fatalf("reparsed %+v", m2.Trafs[0])
		}
		// The sample data is where the rewritten offsets say, in the output file.
		file := append(make([]byte, outPos), out...)
		var data int64
		if explicit {
			data = int64(binary.BigEndian.Uint64(out[m2.Trafs[0].baseOffAt:]))
		} else {
			data = outPos + int64(int32(binary.BigEndian.Uint32(out[m2.Trafs[0].dataOffAts[0]:])))
		}
		if !bytes.HasPrefix(file[data:], []byte("abcdefg")) {
			t.Fatalf("explicit=%v: data offset points at %q", explicit, file[data:min(int(data)+7, len(file))])
		}
		if !explicit {
			var parts fmp4.Parts
			if err := parts.Unmarshal(out); err != nil {
				t.Fatalf("mediacommon: %v", err)
			}
			if parts[0].Tracks[0].BaseTime != want || string(parts[0].Tracks[0].Samples[1].Payload) != "defg" {
				t.Fatalf("mediacommon reads %+v", parts[0].Tracks[0])
			}
		}
	}
}

func TestMulDiv(t *testing.T) {
	cases := []struct {
		a    int64
		b, c uint64
		want int64
		ok   bool
	}{
		{90000, 1e9, 90000, 1e9, true},
		{-90000, 1e9, 90000, -1e9, true},
		{1, 1, 2, 1, true}, // rounds half up
		{math.MaxInt64, 1e9, 1, 0, false},
		{1 << 62, 4, 1, 0, false},
	}
	for _, tc := range cases {
		got, err := mulDiv(tc.a, tc.b, tc.c)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("mulDiv(%d, %d, %d) = %d, %v", tc.a, tc.b, tc.c, got, err)
		}
	}
}

func TestParseInit(t *testing.T) {
	synth := syntheticReviewSegment(t, 2*time.Second, 20, 0)
	seg := describeReviewSegment(t, "x", reviewT0, synth)
	in, err := parseInit(synth[:seg.InitSize])
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Tracks) != 1 || in.Tracks[0].Timescale != 90000 || in.Tracks[0].Handler != "vide" || len(in.Tracks[0].SampleEntry) == 0 {
		t.Fatalf("parsed %+v", in.Tracks)
	}
	if !in.sameAs(in) {
		t.Fatal("an init differs from itself")
	}
	other := *in
	other.Tracks = append([]mp4Track(nil), in.Tracks...)
	other.Tracks[0].SampleEntry = append([]byte(nil), in.Tracks[0].SampleEntry...)
	other.Tracks[0].SampleEntry[len(other.Tracks[0].SampleEntry)-1] ^= 1
	if in.sameAs(&other) {
		t.Fatal("a changed sample entry is the same init")
	}
	for _, bad := range [][]byte{nil, mp4TestBox("ftyp", []byte("isom")), synth[:seg.InitSize-3], mp4TestBox("moov")} {
		if _, err := parseInit(bad); err == nil {
			t.Errorf("parseInit(%x) succeeded", bad)
		}
	}
}

func FuzzParseInit(f *testing.F) {
	synth := syntheticReviewSegment(f, 2*time.Second, 20, 0)
	seg := describeReviewSegment(f, "x", reviewT0, synth)
	f.Add(synth[:seg.InitSize])
	f.Add(mp4TestBox("moov"))
	f.Fuzz(func(t *testing.T, b []byte) {
		in, err := parseInit(b)
		if err != nil {
			return
		}
		for _, tr := range in.Tracks {
			if tr.Timescale == 0 {
				t.Fatalf("track %d with timescale 0", tr.ID)
			}
		}
	})
}

func FuzzRewriteMoof(f *testing.F) {
	for _, tc := range mp4Cases(f) {
		f.Add(tc.frag, uint64(1000))
		f.Add(tc.frag, uint64(math.MaxUint32)+1)
	}
	in := &mp4Init{Tracks: []mp4Track{{ID: 1, Timescale: 90000}, {ID: 2, Timescale: 48000}}}
	f.Fuzz(func(t *testing.T, b []byte, tm uint64) {
		m, err := parseMoof(b, in)
		if err != nil {
			return
		}
		times := make([]uint64, len(m.Trafs))
		for i := range times {
			times[i] = tm + uint64(i)
		}
		out, err := rewriteMoof(append([]byte(nil), b...), m, 9, times, 100, 200)
		if err != nil {
			return
		}
		m2, err := parseMoof(out, in)
		if err != nil {
			t.Fatalf("rewritten moof does not parse: %v", err)
		}
		for i, tr := range m2.Trafs {
			if tr.BaseTime != times[i] {
				t.Fatalf("track fragment %d: time %d, want %d", i, tr.BaseTime, times[i])
			}
		}
	})
}
