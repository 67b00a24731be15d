package fmp4read

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
)

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
		return appendBox(nil, "moof",
			appendBox(nil, "mfhd", be32(0, 7)),
			appendBox(nil, "traf",
				appendBox(nil, "tfhd", tfhd),
				appendBox(nil, "tfdt", be32(0, 1000)),
				appendBox(nil, "trun", be32(trunDataOffset|trunSampleSize, 2, dataOffset, 3, 4))))
	}
	moofSize := len(build(0, 0))
	var moof []byte
	if explicitBase {
		moof = build(0, uint64(filePos)+uint64(moofSize)+8)
	} else {
		moof = build(uint32(moofSize+8), 0)
	}
	return append(moof, appendBox(nil, "mdat", []byte("abcdefg"))...)
}

var handInit = &Init{Tracks: []Track{{ID: 1, Timescale: 90000, Handler: "vide"}}}

// mp4Cases feed the moof tests and the fuzz seeds.
func mp4Cases(t testing.TB) []struct {
	name string
	frag []byte
	ok   bool
} {
	synth, ends := buildSegment(t, false, []frag{{25, true, 0}, {25, false, 0}})
	return []struct {
		name string
		frag []byte
		ok   bool
	}{
		{"mediacommon fragment", synth[ends[0]:ends[1]], true},
		{"version 0 tfdt", handFragment(false, 0), true},
		{"explicit base data offset", handFragment(true, 5000), true},
		{"truncated", handFragment(false, 0)[:30], false},
		{"not a moof", appendBox(nil, "mdat", []byte("abc")), false},
		{"empty", nil, false},
	}
}

func TestParseMoof(t *testing.T) {
	for _, tc := range mp4Cases(t) {
		t.Run(tc.name, func(t *testing.T) {
			in := handInit
			if tc.name == "mediacommon fragment" {
				in = &Init{Tracks: []Track{{ID: 1, Timescale: 90000}}}
			}
			m, err := ParseMoof(tc.frag, in)
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
		m, err := ParseMoof(frag, handInit)
		if err != nil {
			t.Fatal(err)
		}
		if m.Trafs[0].BaseTime != 1000 || m.Trafs[0].Duration != 7200 || m.Trafs[0].tfdtV1 {
			t.Fatalf("parsed %+v", m.Trafs[0])
		}
		want := uint64(math.MaxUint32) + 12345
		out, err := RewriteMoof(append([]byte(nil), frag...), m, 42, []uint64{want}, inPos, outPos)
		if err != nil {
			t.Fatal(err)
		}
		if len(out) != len(frag)+4 {
			t.Fatalf("rewritten fragment has %d bytes, want %d", len(out), len(frag)+4)
		}
		m2, err := ParseMoof(out, handInit)
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

func TestParseInit(t *testing.T) {
	synth, _ := buildSegment(t, false, nil)
	in, err := ParseInit(synth)
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Tracks) != 1 || in.Tracks[0].Timescale != 90000 || in.Tracks[0].Handler != "vide" || len(in.Tracks[0].SampleEntry) == 0 {
		t.Fatalf("parsed %+v", in.Tracks)
	}
	if !in.SameAs(in) {
		t.Fatal("an init differs from itself")
	}
	other := *in
	other.Tracks = append([]Track(nil), in.Tracks...)
	other.Tracks[0].SampleEntry = append([]byte(nil), in.Tracks[0].SampleEntry...)
	other.Tracks[0].SampleEntry[len(other.Tracks[0].SampleEntry)-1] ^= 1
	if in.SameAs(&other) {
		t.Fatal("a changed sample entry is the same init")
	}
	for _, bad := range [][]byte{nil, appendBox(nil, "ftyp", []byte("isom")), synth[:len(synth)-3], appendBox(nil, "moov")} {
		if _, err := ParseInit(bad); err == nil {
			t.Errorf("ParseInit(%x) succeeded", bad)
		}
	}
}
