// Package synthseg writes small fMP4 segments of H.264 video with
// mediacommon's fMP4 writer, shaped as the recorder writes them (tiny
// payloads, real structure), for the tests that play and export recordings.
// It imports none of Vigil's packages.
package synthseg

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4"
)

// SPS is a 1280x720 H.264 baseline SPS (from mediacommon's tests).
var SPS = []byte{
	0x67, 0x42, 0xc0, 0x28, 0xd9, 0x00, 0x78, 0x02,
	0x27, 0xe5, 0x84, 0x00, 0x00, 0x03, 0x00, 0x04,
	0x00, 0x00, 0x03, 0x00, 0xf0, 0x3c, 0x60, 0xc9,
	0x20,
}

// Spec says what H264 writes: 25 fps video at 90 kHz with a keyframe every
// 2 s (50 frames).
type Spec struct {
	Length         time.Duration // of the video
	FragmentFrames int           // frames a fragment (moof) holds: 25 is 1 s, 50 one fragment a GOP
	Payload        int           // bytes of each frame, one NAL unit in AVCC (at least 5)
	Base           uint64        // the first sample's decode time, as after a recorder restart
}

// H264 writes the segment s describes.
func H264(t testing.TB, s Spec) []byte {
	t.Helper()
	if s.FragmentFrames <= 0 || s.Payload < 5 {
		t.Fatalf("synthseg: spec %+v: FragmentFrames must be positive and Payload at least 5", s)
	}
	var buf seekablebuffer.Buffer
	init := fmp4.Init{Tracks: []*fmp4.InitTrack{{ID: 1, TimeScale: 90000,
		Codec: &mp4.CodecH264{SPS: SPS, PPS: []byte{0x08}}}}}
	if err := init.Marshal(&buf); err != nil {
		t.Fatal(err)
	}
	const fps, gop = 25, 50
	frames := int(s.Length.Seconds() * fps)
	for f, seq := 0, uint32(1); f < frames; f, seq = f+s.FragmentFrames, seq+1 {
		part := fmp4.Part{SequenceNumber: seq, Tracks: []*fmp4.PartTrack{{ID: 1, BaseTime: s.Base + uint64(f)*90000/fps}}}
		for i := f; i < min(f+s.FragmentFrames, frames); i++ {
			p := make([]byte, s.Payload)
			binary.BigEndian.PutUint32(p, uint32(s.Payload-4)) // one NAL unit in AVCC
			p[4] = 0x01                                        // non-IDR slice
			if i%gop == 0 {
				p[4] = 0x65 // IDR slice
			}
			part.Tracks[0].Samples = append(part.Tracks[0].Samples, &fmp4.Sample{
				Duration: 90000 / fps, IsNonSyncSample: i%gop != 0, Payload: p,
			})
		}
		if err := part.Marshal(&buf); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}
