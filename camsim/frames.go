package camsim

import (
	"fmt"
	"math"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/g711"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
)

// Frames is an embedded clip as access units, for simulators that packetize the
// video themselves (gb28181/gbsim sends it as MPEG-PS). It is read from the same
// fixtures as the RTSP cameras' streams.
type Frames struct {
	// Codec is CodecH264 or CodecH265 for video; "aac", "pcma" or "pcmu" for audio.
	Codec string
	// Width and Height are the picture size (video only).
	Width, Height int
	// ClockRate is the rate of the PTS: 90000.
	ClockRate int
	// Duration is the loop length in ClockRate units: from the first frame of one
	// loop to the first frame of the next.
	Duration int64
	// Frames are the access units in order.
	Frames []Frame
}

// Frame is one access unit of a clip.
type Frame struct {
	// PTS is the presentation time in 90 kHz units from the start of the clip.
	PTS int64
	// Key is true for a video random-access unit (IDR or IRAP, with its parameter sets).
	Key bool
	// NALUs are the video NAL units without start codes; nil for audio.
	NALUs [][]byte
	// Audio is one AAC frame with its ADTS header, or 20 ms of G.711
	// samples; nil for video.
	Audio []byte
}

// VideoFrames returns the access units of the main (sub false) or sub-stream clip of
// codec (CodecH264 or CodecH265) and bitrate (BitrateNormal or BitrateHigh, main H.264
// only). Each call parses the fixture again; callers that need it often keep the result.
func VideoFrames(codec, bitrate string, sub bool) (*Frames, error) {
	if codec != CodecH264 && codec != CodecH265 {
		return nil, fmt.Errorf("camsim: codec %q: want %s or %s", codec, CodecH264, CodecH265)
	}
	if bitrate == "" {
		bitrate = BitrateNormal
	}
	name := mainFixture(codec, bitrate)
	if sub {
		name = codec + "_sub.ts"
	}
	data, err := media.ReadFile("media/" + name)
	if err != nil {
		return nil, fmt.Errorf("camsim: fixture %s: %w", name, err)
	}
	// buildVideoClip checks what the RTSP cameras rely on too (keyframe first,
	// parameter sets, increasing PTS) and measures the picture size.
	aus, ptss, err := readVideoTS(data, codec)
	if err != nil {
		return nil, fmt.Errorf("camsim: fixture %s: %w", name, err)
	}
	c, err := buildVideoClip(codec, aus, ptss)
	if err != nil {
		return nil, fmt.Errorf("camsim: fixture %s: %w", name, err)
	}
	f := &Frames{Codec: codec, Width: c.width, Height: c.height, ClockRate: 90000, Duration: c.duration, Frames: make([]Frame, len(aus))}
	for i, au := range aus {
		key := false
		if codec == CodecH264 {
			key = h264.IsRandomAccess(au)
		} else {
			key = h265.IsRandomAccess(au)
		}
		f.Frames[i] = Frame{PTS: c.frames[i].pts, Key: key, NALUs: au}
	}
	return f, nil
}

// AudioFrames returns the embedded AAC clip (mono, 48 kHz, about 8 s) as ADTS frames with
// 90 kHz PTS.
func AudioFrames() (*Frames, error) {
	data, err := media.ReadFile("media/audio_aac.adts")
	if err != nil {
		return nil, fmt.Errorf("camsim: fixture audio_aac.adts: %w", err)
	}
	var pkts mpeg4audio.ADTSPackets
	if err := pkts.Unmarshal(data); err != nil {
		return nil, fmt.Errorf("camsim: fixture audio_aac.adts: %w", err)
	}
	if len(pkts) == 0 || pkts[0].SampleRate <= 0 {
		return nil, fmt.Errorf("camsim: fixture audio_aac.adts: no usable frames")
	}
	rate := int64(pkts[0].SampleRate)
	f := &Frames{Codec: "aac", ClockRate: 90000, Frames: make([]Frame, len(pkts))}
	for i, p := range pkts {
		b, err := mpeg4audio.ADTSPackets{p}.Marshal()
		if err != nil {
			return nil, fmt.Errorf("camsim: fixture audio_aac.adts: frame %d: %w", i, err)
		}
		f.Frames[i] = Frame{PTS: int64(i) * aacSamplesPerFrame * 90000 / rate, Audio: b}
	}
	f.Duration = int64(len(pkts)) * aacSamplesPerFrame * 90000 / rate
	return f, nil
}

// G711Frames returns 8 s of a 1 kHz tone at 8 kHz in G.711 A-law (alaw true)
// or µ-law, in frames of 20 ms (160 bytes) with 90 kHz PTS, encoded with
// mediacommon's G.711 encoders: the audio GB/T 28181 devices usually send.
func G711Frames(alaw bool) (*Frames, error) {
	const (
		rate     = 8000
		perFrame = rate / 50
		seconds  = 8
	)
	lpcm := make([]byte, 2*rate*seconds) // big-endian 16-bit samples
	for i := 0; i < rate*seconds; i++ {
		v := int16(8000 * math.Sin(2*math.Pi*1000*float64(i)/rate))
		lpcm[2*i], lpcm[2*i+1] = byte(uint16(v)>>8), byte(v)
	}
	var samples []byte
	var err error
	codec := "pcmu"
	if alaw {
		codec = "pcma"
		samples, err = g711.Alaw(lpcm).Marshal()
	} else {
		samples, err = g711.Mulaw(lpcm).Marshal()
	}
	if err != nil {
		return nil, fmt.Errorf("camsim: %s tone: %w", codec, err)
	}
	f := &Frames{Codec: codec, ClockRate: 90000, Frames: make([]Frame, len(samples)/perFrame)}
	for i := range f.Frames {
		f.Frames[i] = Frame{PTS: int64(i) * perFrame * 90000 / rate, Audio: samples[i*perFrame : (i+1)*perFrame]}
	}
	f.Duration = int64(len(f.Frames)) * perFrame * 90000 / rate
	return f, nil
}
