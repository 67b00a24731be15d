package replay

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/g711"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	"github.com/vigil-vms/vigil/gb28181/ps"
	"github.com/vigil-vms/vigil/internal/testkit/synthseg"
)

// g711Segment writes seconds of synthetic H.264 (25 fps, keyframe every
// 2 s) with G.711 audio as the recorder stores it: 16-bit big-endian PCM at
// 8 kHz mono, 20 ms a sample, a 1 kHz tone.
func g711Segment(t *testing.T, seconds int) []byte {
	t.Helper()
	var buf seekablebuffer.Buffer
	init := fmp4.Init{Tracks: []*fmp4.InitTrack{
		{ID: 1, TimeScale: 90000, Codec: &fmp4.CodecH264{SPS: synthseg.SPS, PPS: []byte{0x08}}},
		{ID: 2, TimeScale: 8000, Codec: &fmp4.CodecLPCM{BitDepth: 16, SampleRate: 8000, ChannelCount: 1}},
	}}
	if err := init.Marshal(&buf); err != nil {
		t.Fatal(err)
	}
	for s := range seconds {
		part := fmp4.Part{SequenceNumber: uint32(s + 1), Tracks: []*fmp4.PartTrack{
			{ID: 1, BaseTime: uint64(s) * 90000}, {ID: 2, BaseTime: uint64(s) * 8000}}}
		for i := range fixFPS {
			p := make([]byte, 40)
			binary.BigEndian.PutUint32(p, 36)
			p[4], p[5] = 0x01, 0x80 // first_mb_in_slice 0: each sample is a new picture
			if (s*fixFPS+i)%50 == 0 {
				p[4] = 0x65
			}
			part.Tracks[0].Samples = append(part.Tracks[0].Samples, &fmp4.Sample{Duration: 90000 / fixFPS, IsNonSyncSample: p[4] != 0x65, Payload: p})
		}
		for i := range 50 {
			pcm := make([]byte, 320)
			for j := range 160 {
				n := (s*50+i)*160 + j
				v := int16(8000 * math.Sin(2*math.Pi*1000*float64(n)/8000))
				binary.BigEndian.PutUint16(pcm[2*j:], uint16(v))
			}
			part.Tracks[1].Samples = append(part.Tracks[1].Samples, &fmp4.Sample{Duration: 160, Payload: pcm})
		}
		if err := part.Marshal(&buf); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func TestDownloadG711(t *testing.T) {
	f := newFixture(t)
	segs := f.record(t, "cam-711", t0, [][]byte{g711Segment(t, 4)})
	k, _, _ := play(t, f, SessionConfig{Camera: "cam-711", Start: t0, End: segs[0].End, Download: true}, nil)
	var audio, video int
	var pcm []byte
	dm := &ps.Demuxer{OnUnit: func(u *ps.Unit) {
		if u.Type == ps.TypeG711A {
			audio++
			pcm = append(pcm, g711.DecodeAlaw(u.Payload)...)
		} else if u.Type == ps.TypeH264 {
			video++
		}
	}, OnError: func(err error) { t.Errorf("demux: %v", err) }}
	dm.Write(k.ps(t, testSSRC))
	dm.Flush()
	if video != 4*fixFPS || audio != 4*50 {
		t.Errorf("%d video and %d G.711 A-law units, want 100 and 200", video, audio)
	}
	// The A-law decodes back to the tone (within A-law's error).
	if len(pcm) != 4*8000*2 {
		t.Fatalf("%d bytes of PCM, want %d", len(pcm), 4*8000*2)
	}
	for n := 0; n < 4*8000; n += 97 {
		want := 8000 * math.Sin(2*math.Pi*1000*float64(n)/8000)
		got := float64(int16(binary.BigEndian.Uint16(pcm[2*n:])))
		if math.Abs(got-want) > 300 {
			t.Fatalf("sample %d: %v, want %v", n, got, want)
		}
	}
}
