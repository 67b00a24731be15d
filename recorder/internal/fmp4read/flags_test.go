package fmp4read

import (
	"bytes"
	"encoding/binary"
	"os"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
)

// Sample flags as muxers write them: a sync sample, and a non-sync sample
// that depends on others (ffmpeg's 0x01010000).
const (
	syncFlags    = 0x02000000
	nonSyncFlags = 0x01010000
)

func u32(v uint32) *uint32 { return &v }

// rawTraf is one track fragment of a hand-made moof, to cover the sample flag
// layouts that mediacommon does not write: tfhd default_sample_flags present
// or absent, trun first_sample_flags, per-sample flags, and trex defaults.
type rawTraf struct {
	track       uint32
	tfhdFlags   *uint32  // tfhd default_sample_flags; nil: absent
	firstFlags  *uint32  // trun first_sample_flags; nil: absent
	sampleFlags []uint32 // per-sample flags; nil: absent
	samples     int      // of 3600 ticks and 4 bytes each
	emptyTrun   bool     // a trun of no samples before the one with samples
	base        uint64
}

func appendBox(b []byte, typ string, body ...[]byte) []byte {
	n := 8
	for _, p := range body {
		n += len(p)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	b = append(b, typ...)
	for _, p := range body {
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

// rawFragment builds a moof+mdat whose trafs are laid out as described; the
// samples of every traf follow each other in the mdat.
func rawFragment(seq uint32, trafs ...rawTraf) []byte {
	build := func(moofSize int) []byte {
		var trafBoxes [][]byte
		data := 0
		for _, t := range trafs {
			tf := uint32(0x020000) // default-base-is-moof
			tfhd := be32(0, t.track)
			if t.tfhdFlags != nil {
				tf |= tfhdDefaultFlags
				tfhd = append(tfhd, be32(*t.tfhdFlags)...)
			}
			binary.BigEndian.PutUint32(tfhd, tf)
			tfdt := append([]byte{1, 0, 0, 0}, binary.BigEndian.AppendUint64(nil, t.base)...)
			var truns [][]byte
			if t.emptyTrun {
				truns = append(truns, appendBox(nil, "trun", be32(trunDataOffset, 0, uint32(moofSize+8+data))))
			}
			rf := uint32(trunDataOffset | trunSampleDuration | trunSampleSize)
			trun := be32(0, uint32(t.samples), uint32(moofSize+8+data))
			if t.firstFlags != nil {
				rf |= trunFirstSampleFlags
				trun = append(trun, be32(*t.firstFlags)...)
			}
			if t.sampleFlags != nil {
				rf |= trunSampleFlags
			}
			binary.BigEndian.PutUint32(trun, rf)
			for i := range t.samples {
				trun = append(trun, be32(3600, 4)...)
				if t.sampleFlags != nil {
					trun = append(trun, be32(t.sampleFlags[i])...)
				}
			}
			truns = append(truns, appendBox(nil, "trun", trun))
			data += 4 * t.samples
			body := [][]byte{appendBox(nil, "tfhd", tfhd), appendBox(nil, "tfdt", tfdt)}
			trafBoxes = append(trafBoxes, appendBox(nil, "traf", append(body, truns...)...))
		}
		moof := appendBox(nil, "moof", append([][]byte{appendBox(nil, "mfhd", be32(0, seq))}, trafBoxes...)...)
		return appendBox(moof, "mdat", bytes.Repeat([]byte{0, 0, 0, 0}, data/4))
	}
	first := build(0)
	moofSize := int(binary.BigEndian.Uint32(first))
	return build(moofSize)
}

// rawInit is the init section of buildSegment (H.264 track 1, AAC track 2)
// with the trex default_sample_flags of track 1 set to trex1.
func rawInit(t testing.TB, trex1 uint32) []byte {
	seg, _ := buildSegment(t, true, nil)
	res, err := Scan(bytes.NewReader(seg))
	if err != nil {
		t.Fatal(err)
	}
	init := seg[:res.InitSize]
	for p := 0; p+4 <= len(init); p++ {
		if string(init[p:p+4]) == "trex" && binary.BigEndian.Uint32(init[p+8:]) == 1 {
			binary.BigEndian.PutUint32(init[p+24:], trex1)
			return init
		}
	}
	t.Fatal("no trex of track 1 in the init section")
	return nil
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type keyframeCase struct {
	name string
	file func(testing.TB) []byte
	keys []bool          // Keyframe of each fragment
	offs []time.Duration // Offset of each fragment
	cut  bool            // something follows the last fragment
}

var pictures2 = []uint32{nonSyncFlags, nonSyncFlags}

// keyframeCases: segments written by other tools and by our recorder, and
// hand-made fragments for each place where sample flags may be.
var keyframeCases = []keyframeCase{
	// testdata/ffmpeg_frag.mp4: 4 s of testsrc2 320x240 25 fps (H.264, keyframe
	// every 2 s) and AAC, fragments of 1 s, written by
	//   ffmpeg -f lavfi -i testsrc2=size=320x240:rate=25 -f lavfi -i sine=frequency=1000:sample_rate=48000 -t 4
	//     -c:v libx264 -preset veryfast -tune zerolatency -profile:v baseline -pix_fmt yuv420p -g 50 -keyint_min 50
	//     -sc_threshold 0 -bf 0 -b:v 100k -maxrate 100k -bufsize 100k -c:a aac -b:a 32k -ac 1
	//     -movflags +frag_keyframe+empty_moov+default_base_moof -frag_duration 1000000 -f mp4 ffmpeg_frag.mp4
	// (ffmpeg 5.1): tfhd default_sample_flags non-sync, first_sample_flags sync
	// on the keyframe fragments; the last fragment holds only audio; an mfra
	// box follows the fragments.
	{"ffmpeg frag_keyframe", func(t testing.TB) []byte { return readTestdata(t, "ffmpeg_frag.mp4") },
		[]bool{true, false, true, false, false}, []time.Duration{0, time.Second, 2 * time.Second, 3 * time.Second, 4 * time.Second}, true},
	// testdata/recorder_sub.mp4: a segment of our recorder (camsim's 640x360
	// sub-stream, 3 s), kept by
	//   go run ./recorder/internal/benchrec -cameras 1 -duration 3s -segment 3s -sub -keep DIR
	// per-sample flags in the trun, none in tfhd.
	{"vigil recorder", func(t testing.TB) []byte { return readTestdata(t, "recorder_sub.mp4") },
		[]bool{true, false, true, false}, []time.Duration{0, time.Second, 2 * time.Second, 3 * time.Second}, false},
	{"first_sample_flags over a tfhd default", func(t testing.TB) []byte {
		return append(rawInit(t, 0),
			append(rawFragment(1, rawTraf{track: 1, tfhdFlags: u32(nonSyncFlags), firstFlags: u32(syncFlags), samples: 2}),
				rawFragment(2, rawTraf{track: 1, tfhdFlags: u32(nonSyncFlags), samples: 2, base: 7200})...)...)
	}, []bool{true, false}, []time.Duration{0, 80 * time.Millisecond}, false},
	{"first_sample_flags over a trex default", func(t testing.TB) []byte {
		return append(rawInit(t, nonSyncFlags),
			append(rawFragment(1, rawTraf{track: 1, firstFlags: u32(syncFlags), samples: 2}),
				rawFragment(2, rawTraf{track: 1, samples: 2, base: 7200})...)...)
	}, []bool{true, false}, nil, false},
	{"tfhd default over trex", func(t testing.TB) []byte {
		return append(rawInit(t, nonSyncFlags),
			append(rawFragment(1, rawTraf{track: 1, tfhdFlags: u32(syncFlags), samples: 2}),
				rawFragment(2, rawTraf{track: 1, tfhdFlags: u32(nonSyncFlags), samples: 2, base: 7200})...)...)
	}, []bool{true, false}, nil, false},
	{"trex default sync", func(t testing.TB) []byte {
		return append(rawInit(t, syncFlags), rawFragment(1, rawTraf{track: 1, samples: 2})...)
	}, []bool{true}, nil, false},
	{"per-sample flags over tfhd and trex", func(t testing.TB) []byte {
		return append(rawInit(t, nonSyncFlags),
			append(rawFragment(1, rawTraf{track: 1, tfhdFlags: u32(nonSyncFlags), sampleFlags: []uint32{syncFlags, nonSyncFlags}, samples: 2}),
				rawFragment(2, rawTraf{track: 1, tfhdFlags: u32(syncFlags), sampleFlags: pictures2, samples: 2, base: 7200})...)...)
	}, []bool{true, false}, nil, false},
	{"first_sample_flags with per-sample flags", func(t testing.TB) []byte {
		return append(rawInit(t, 0),
			rawFragment(1, rawTraf{track: 1, firstFlags: u32(syncFlags), sampleFlags: pictures2, samples: 2})...)
	}, []bool{true}, nil, false},
	{"audio traf first, empty trun first", func(t testing.TB) []byte {
		return append(rawInit(t, nonSyncFlags),
			append(rawFragment(1, rawTraf{track: 2, tfhdFlags: u32(syncFlags), samples: 3},
				rawTraf{track: 1, firstFlags: u32(syncFlags), samples: 2, emptyTrun: true}),
				rawFragment(2, rawTraf{track: 2, tfhdFlags: u32(syncFlags), samples: 3, base: 10800},
					rawTraf{track: 1, samples: 2, base: 7200, emptyTrun: true})...)...)
	}, []bool{true, false}, []time.Duration{0, 80 * time.Millisecond}, false},
}

func TestScanKeyframes(t *testing.T) {
	for _, tc := range keyframeCases {
		t.Run(tc.name, func(t *testing.T) {
			file := tc.file(t)
			res, err := Scan(bytes.NewReader(file))
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Fragments) != len(tc.keys) || res.Cut != tc.cut || (!tc.cut && res.Valid != int64(len(file))) {
				t.Fatalf("%d fragments (want %d), cut %v (want %v), valid %d of %d",
					len(res.Fragments), len(tc.keys), res.Cut, tc.cut, res.Valid, len(file))
			}
			t.Logf("fragments %+v, duration %v", res.Fragments, res.Duration)
			for i, f := range res.Fragments {
				if f.Keyframe != tc.keys[i] {
					t.Errorf("fragment %d: keyframe %v, want %v", i, f.Keyframe, tc.keys[i])
				}
				if tc.offs != nil && (f.Offset-tc.offs[i]).Abs() > 50*time.Millisecond {
					t.Errorf("fragment %d: offset %v, want %v", i, f.Offset, tc.offs[i])
				}
			}
			// the valid prefix, and each prefix ending at a fragment, scans to the
			// same flags; a cut inside a fragment drops just that one
			for i, f := range res.Fragments {
				for _, end := range []int64{f.Pos + f.Size, f.Pos + f.Size - 1} {
					got, err := Scan(bytes.NewReader(file[:end]))
					if err != nil {
						t.Fatalf("cut at %d: %v", end, err)
					}
					n := i + 1
					if end < f.Pos+f.Size {
						n = i
					}
					if len(got.Fragments) != n {
						t.Fatalf("cut at %d: %d fragments, want %d", end, len(got.Fragments), n)
					}
					for j, g := range got.Fragments {
						if g != res.Fragments[j] {
							t.Fatalf("cut at %d: fragment %d is %+v, want %+v", end, j, g, res.Fragments[j])
						}
					}
				}
			}
		})
	}
}

// TestMediacommonMissesFirstSampleFlags documents why the keyframe flag is
// read here and not taken from mediacommon's fmp4.Parts.
func TestMediacommonMissesFirstSampleFlags(t *testing.T) {
	frag := rawFragment(1, rawTraf{track: 1, tfhdFlags: u32(nonSyncFlags), firstFlags: u32(syncFlags), samples: 2})
	var parts fmp4.Parts
	if err := parts.Unmarshal(frag); err != nil {
		t.Fatal(err)
	}
	if !parts[0].Tracks[0].Samples[0].IsNonSyncSample {
		t.Log("mediacommon now reads first_sample_flags; the keyframe flag could be taken from it")
	}
	m, err := ParseMoof(frag, twoTracks)
	if err != nil || len(m.Trafs) != 1 || !m.Trafs[0].FirstKey {
		t.Errorf("ParseMoof: %+v, %v", m, err)
	}
}

// twoTracks is the track table of rawInit: video track 1, audio track 2.
var twoTracks = &Init{Tracks: []Track{{ID: 1, Timescale: 90000, Handler: "vide"}, {ID: 2, Timescale: 48000, Handler: "soun"}}}

func TestFirstSampleSyncRejects(t *testing.T) {
	good := rawFragment(1, rawTraf{track: 1, tfhdFlags: u32(nonSyncFlags), firstFlags: u32(syncFlags), samples: 2})
	for _, tc := range []struct {
		name string
		frag []byte
	}{
		{"empty", nil},
		{"not a moof", appendBox(nil, "mdat", []byte{1, 2, 3, 4})},
		{"truncated", good[:len(good)/2]},
		{"short tfhd", appendBox(nil, "moof", appendBox(nil, "traf", appendBox(nil, "tfhd", be32(0))))},
		{"tfhd flags promise more", appendBox(nil, "moof", appendBox(nil, "traf", appendBox(nil, "tfhd", be32(tfhdDefaultFlags|tfhdBaseDataOffset, 1))))},
		{"short trun", appendBox(nil, "moof", appendBox(nil, "traf", appendBox(nil, "tfhd", be32(0, 1)), appendBox(nil, "trun", be32(trunFirstSampleFlags, 1))))},
		{"trun flags promise more", appendBox(nil, "moof", appendBox(nil, "traf", appendBox(nil, "tfhd", be32(0, 1)), appendBox(nil, "trun", be32(trunSampleFlags|trunSampleDuration, 1, 0))))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseMoof(tc.frag, twoTracks); err == nil {
				t.Error("no error")
			}
		})
	}
	if m, err := ParseMoof(good, twoTracks); err != nil || len(m.Trafs) != 1 || m.Trafs[0].TrackID != 1 {
		t.Errorf("another track: %+v, %v", m, err)
	}
	for _, tc := range []struct {
		name string
		init []byte
	}{
		{"short trex", appendBox(nil, "moov", appendBox(nil, "mvex", appendBox(nil, "trex", be32(0, 1))))},
		{"bad size", []byte{0, 0, 0, 99, 'm', 'o', 'o', 'v'}},
	} {
		if _, err := ParseInit(tc.init); err == nil {
			t.Errorf("ParseInit %s: no error", tc.name)
		}
	}
}

// fuzzSeeds: the scan and keyframe tables, with the big files cut to their
// init section and first fragments.
func fuzzSeeds(f *testing.F) [][]byte {
	var seeds [][]byte
	for _, tc := range scanCases {
		file, ends := buildSegment(f, tc.audio, tc.frags)
		seeds = append(seeds, file, file[:ends[0]-3])
	}
	for _, tc := range keyframeCases {
		file := tc.file(f)
		res, err := Scan(bytes.NewReader(file))
		if err != nil || len(res.Fragments) == 0 {
			f.Fatalf("seed %s: %v", tc.name, err)
		}
		// the first two fragments, or the first one alone of the big files
		end := res.Fragments[0].Pos + res.Fragments[0].Size
		if len(res.Fragments) > 1 {
			end = res.Fragments[1].Pos + res.Fragments[1].Size
		}
		if end > 64<<10 {
			end = res.Fragments[0].Pos + res.Fragments[0].Size
		}
		seeds = append(seeds, file[:end], file[:end-3])
	}
	return seeds
}
