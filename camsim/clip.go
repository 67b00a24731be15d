package camsim

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/g711"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	"github.com/pion/rtp"
)

// The fixtures are made by media/gen.sh and embedded so that the binary is self-contained.
//
//go:embed media/*.ts media/*.adts
var media embed.FS

// Payload types of the simulated cameras' SDP.
const (
	videoPayloadType = 96
	audioPayloadType = 97
)

// maxClipFrames bounds what a fixture may contain, so that a malformed file cannot make
// the simulator allocate without limit.
const maxClipFrames = 100000

// rtpPayload is one pre-packetized RTP payload of a frame.
type rtpPayload struct {
	data   []byte
	marker bool
}

// clipFrame is one access unit of a clip, already split into RTP payloads.
type clipFrame struct {
	// pts is the presentation time in clock-rate units from the start of the clip.
	pts int64
	// key is true for a video random-access unit (IDR with its parameter sets).
	key      bool
	payloads []rtpPayload
}

// clip is an encoded track parsed once and looped by every camera that uses it.
// It is immutable after parsing and shared by all cameras.
type clip struct {
	clockRate int
	// duration is the loop length in clock-rate units: the time from the first frame
	// of one loop to the first frame of the next.
	duration int64
	frames   []clipFrame
	format   format.Format

	// video only
	width, height int
}

// parseVideoTS reads an MPEG-TS file holding one H.264 or H.265 track into a clip.
// Every access unit must carry a PTS; the clip must begin with a keyframe and contain
// the parameter sets.
func parseVideoTS(data []byte, codec string) (*clip, error) {
	aus, ptss, err := readVideoTS(data, codec)
	if err != nil {
		return nil, err
	}
	return buildVideoClip(codec, aus, ptss)
}

// readVideoTS returns the access units (NAL units without start codes and without
// access unit delimiters) of the codec's track and their 90 kHz PTS.
func readVideoTS(data []byte, codec string) ([][][]byte, []int64, error) {
	r := &mpegts.Reader{R: bytes.NewReader(data)}
	if err := r.Initialize(); err != nil {
		return nil, nil, fmt.Errorf("read mpeg-ts: %w", err)
	}

	var track *mpegts.Track
	for _, t := range r.Tracks() {
		switch t.Codec.(type) {
		case *mpegts.CodecH264:
			if codec == CodecH264 {
				track = t
			}
		case *mpegts.CodecH265:
			if codec == CodecH265 {
				track = t
			}
		}
		if track != nil {
			break
		}
	}
	if track == nil {
		return nil, nil, fmt.Errorf("no %s track in mpeg-ts", codec)
	}

	var aus [][][]byte
	var ptss []int64
	td := mpegts.TimeDecoder{}
	td.Initialize()
	onAU := func(pts int64, _ int64, au [][]byte) error {
		if len(aus) >= maxClipFrames {
			return fmt.Errorf("more than %d access units", maxClipFrames)
		}
		// copy: the reader may reuse its buffers
		cp := make([][]byte, 0, len(au))
		for _, nalu := range au {
			if len(nalu) == 0 {
				continue
			}
			cp = append(cp, append([]byte(nil), nalu...))
		}
		if len(cp) == 0 {
			return nil
		}
		aus = append(aus, cp)
		ptss = append(ptss, td.Decode(pts))
		return nil
	}
	if codec == CodecH264 {
		r.OnDataH264(track, onAU)
	} else {
		r.OnDataH265(track, onAU)
	}
	r.OnDecodeError(func(error) {})
	for {
		err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("read mpeg-ts: %w", err)
		}
	}
	return aus, ptss, nil
}

// buildVideoClip turns access units with 90 kHz PTS into a packetized, loopable clip.
func buildVideoClip(codec string, aus [][][]byte, ptss []int64) (*clip, error) {
	if len(aus) < 2 {
		return nil, fmt.Errorf("need at least 2 access units, got %d", len(aus))
	}
	c := &clip{clockRate: 90000, frames: make([]clipFrame, len(aus))}

	var params [3][]byte // VPS (H.265 only), SPS, PPS of the first keyframe
	for i, au := range aus {
		switch codec {
		case CodecH264:
			c.frames[i].key = h264.IsRandomAccess(au)
		case CodecH265:
			c.frames[i].key = h265.IsRandomAccess(au)
		}
		if !c.frames[i].key || params[1] != nil {
			continue
		}
		for _, nalu := range au {
			switch codec {
			case CodecH264:
				switch h264.NALUType(nalu[0] & 0x1f) {
				case h264.NALUTypeSPS:
					params[1] = nalu
				case h264.NALUTypePPS:
					params[2] = nalu
				}
			case CodecH265:
				switch h265.NALUType((nalu[0] >> 1) & 0x3f) {
				case h265.NALUType_VPS_NUT:
					params[0] = nalu
				case h265.NALUType_SPS_NUT:
					params[1] = nalu
				case h265.NALUType_PPS_NUT:
					params[2] = nalu
				}
			}
		}
	}
	if !c.frames[0].key {
		return nil, fmt.Errorf("first access unit is not a keyframe")
	}
	if params[1] == nil || params[2] == nil || (codec == CodecH265 && params[0] == nil) {
		return nil, fmt.Errorf("keyframe without parameter sets")
	}

	var encode func([][]byte) ([]*rtp.Packet, error)
	switch codec {
	case CodecH264:
		var sps h264.SPS
		if err := sps.Unmarshal(params[1]); err != nil {
			return nil, fmt.Errorf("parse h264 sps: %w", err)
		}
		c.width, c.height = sps.Width(), sps.Height()
		f := &format.H264{PayloadTyp: videoPayloadType, SPS: params[1], PPS: params[2], PacketizationMode: 1}
		enc, err := f.CreateEncoder()
		if err != nil {
			return nil, fmt.Errorf("h264 rtp encoder: %w", err)
		}
		c.format, encode = f, enc.Encode
	case CodecH265:
		var sps h265.SPS
		if err := sps.Unmarshal(params[1]); err != nil {
			return nil, fmt.Errorf("parse h265 sps: %w", err)
		}
		c.width, c.height = sps.Width(), sps.Height()
		f := &format.H265{PayloadTyp: videoPayloadType, VPS: params[0], SPS: params[1], PPS: params[2]}
		enc, err := f.CreateEncoder()
		if err != nil {
			return nil, fmt.Errorf("h265 rtp encoder: %w", err)
		}
		c.format, encode = f, enc.Encode
	default:
		return nil, fmt.Errorf("unknown codec %q", codec)
	}

	first := ptss[0]
	for i, au := range aus {
		pts := ptss[i] - first
		if i > 0 && pts <= c.frames[i-1].pts {
			return nil, fmt.Errorf("access unit %d: pts %d not after the previous one (no B-frames allowed)", i, pts)
		}
		c.frames[i].pts = pts
		pkts, err := encode(au)
		if err != nil {
			return nil, fmt.Errorf("access unit %d: packetize: %w", i, err)
		}
		c.frames[i].payloads = toPayloads(pkts)
	}
	// The loop lasts as long as the clip plus one average frame interval.
	last := c.frames[len(c.frames)-1].pts
	c.duration = last + last/int64(len(c.frames)-1)
	return c, nil
}

// aacSamplesPerFrame is the number of samples in one AAC-LC frame.
const aacSamplesPerFrame = 1024

// parseADTS reads a raw ADTS AAC stream into a clip. All frames must share the
// configuration of the first one.
func parseADTS(data []byte) (*clip, error) {
	var pkts mpeg4audio.ADTSPackets
	if err := pkts.Unmarshal(data); err != nil {
		return nil, fmt.Errorf("read adts: %w", err)
	}
	if len(pkts) == 0 {
		return nil, fmt.Errorf("read adts: no frames")
	}
	if len(pkts) > maxClipFrames {
		return nil, fmt.Errorf("read adts: more than %d frames", maxClipFrames)
	}
	p0 := pkts[0]
	if p0.SampleRate <= 0 {
		return nil, fmt.Errorf("read adts: invalid sample rate %d", p0.SampleRate)
	}
	f := &format.MPEG4Audio{
		PayloadTyp: audioPayloadType,
		Config: &mpeg4audio.AudioSpecificConfig{
			Type:         p0.Type,
			SampleRate:   p0.SampleRate,
			ChannelCount: p0.ChannelCount,
		},
		SizeLength:       13,
		IndexLength:      3,
		IndexDeltaLength: 3,
	}
	enc, err := f.CreateEncoder()
	if err != nil {
		return nil, fmt.Errorf("aac rtp encoder: %w", err)
	}
	c := &clip{clockRate: p0.SampleRate, format: f, frames: make([]clipFrame, len(pkts))}
	for i, p := range pkts {
		if p.Type != p0.Type || p.SampleRate != p0.SampleRate || p.ChannelCount != p0.ChannelCount {
			return nil, fmt.Errorf("read adts: frame %d changes the audio configuration", i)
		}
		rp, err := enc.Encode([][]byte{p.AU})
		if err != nil {
			return nil, fmt.Errorf("aac frame %d: packetize: %w", i, err)
		}
		c.frames[i] = clipFrame{pts: int64(i) * aacSamplesPerFrame, payloads: toPayloads(rp)}
	}
	c.duration = int64(len(pkts)) * aacSamplesPerFrame
	return c, nil
}

func toPayloads(pkts []*rtp.Packet) []rtpPayload {
	out := make([]rtpPayload, len(pkts))
	for i, p := range pkts {
		out[i] = rtpPayload{data: p.Payload, marker: p.Marker}
	}
	return out
}

// clips are the parsed fixtures a server needs.
type clips struct {
	main, sub *clip
	audio     *clip // nil without audio
}

// mainFixture names the main stream's clip of a codec and bitrate.
func mainFixture(codec, bitrate string) string {
	if bitrate == BitrateHigh {
		return codec + "_main_high.ts"
	}
	return codec + "_main.ts"
}

func loadClips(codec, bitrate string, audio bool, audioCodec string) (*clips, error) {
	read := func(name string) ([]byte, error) {
		b, err := media.ReadFile("media/" + name)
		if err != nil {
			return nil, fmt.Errorf("fixture %s: %w", name, err)
		}
		return b, nil
	}
	var cs clips
	for _, v := range []struct {
		name string
		dst  **clip
	}{{mainFixture(codec, bitrate), &cs.main}, {codec + "_sub.ts", &cs.sub}} {
		b, err := read(v.name)
		if err != nil {
			return nil, err
		}
		c, err := parseVideoTS(b, codec)
		if err != nil {
			return nil, fmt.Errorf("fixture %s: %w", v.name, err)
		}
		*v.dst = c
	}
	if audio && audioCodec == AudioPCMU {
		c, err := pcmuTone()
		if err != nil {
			return nil, err
		}
		cs.audio = c
	} else if audio {
		b, err := read("audio_aac.adts")
		if err != nil {
			return nil, err
		}
		c, err := parseADTS(b)
		if err != nil {
			return nil, fmt.Errorf("fixture audio_aac.adts: %w", err)
		}
		cs.audio = c
	}
	return &cs, nil
}

// Audio codecs of Options.AudioCodec.
const (
	AudioAAC  = "aac"
	AudioPCMU = "pcmu"
)

// pcmuTone is 8 s of a 1 kHz tone in G.711 µ-law at 8 kHz (payload type 0),
// in 20 ms packets, encoded with mediacommon's G.711 encoder.
func pcmuTone() (*clip, error) {
	const (
		rate      = 8000
		perPacket = rate / 50 // 20 ms
		seconds   = 8
	)
	lpcm := make(g711.Mulaw, 2*rate*seconds)
	for i := 0; i < rate*seconds; i++ {
		v := int16(8000 * math.Sin(2*math.Pi*1000*float64(i)/rate))
		lpcm[2*i], lpcm[2*i+1] = byte(uint16(v)>>8), byte(v)
	}
	samples, err := lpcm.Marshal()
	if err != nil {
		return nil, fmt.Errorf("pcmu tone: %w", err)
	}
	f := &format.G711{PayloadTyp: 0, MULaw: true, SampleRate: rate, ChannelCount: 1}
	c := &clip{clockRate: rate, format: f, frames: make([]clipFrame, len(samples)/perPacket)}
	for i := range c.frames {
		c.frames[i] = clipFrame{pts: int64(i * perPacket), payloads: []rtpPayload{{data: samples[i*perPacket : (i+1)*perPacket]}}}
	}
	c.duration = int64(len(c.frames) * perPacket)
	return c, nil
}
