package ingest

import (
	"errors"
	"fmt"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph265"
	"github.com/bluenviron/gortsplib/v4/pkg/sdp"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/pion/rtp"
)

// trackReader turns the RTP packets of one format of the camera's session into
// the payload of hub units. A session has one video trackReader and at most one
// audio trackReader.
type trackReader struct {
	media  *description.Media
	format format.Format
	// track is the hub track the units are written to; set when the tracks are published.
	track *Track
	// proto is the track as known from the SDP, before publishing.
	proto Track

	// the wall-clock time of the track's units, and a shift of its PTS after
	// its timestamps jumped; the session's writer owns them
	clock    wallClock
	ptsShift time.Duration

	// video
	params *paramSets
	video  interface {
		Decode(*rtp.Packet) ([][]byte, error)
	}

	// audio: decode returns the frames of one packet
	audio func(*rtp.Packet) ([][]byte, error)
	// samples per audio frame when a packet carries several (AAC), else 0
	frameSamples int
}

// errNeedMore tells the RTP decoders' "wait for the next packets" results.
func errNeedMore(err error) bool {
	return errors.Is(err, rtph264.ErrMorePacketsNeeded) || errors.Is(err, rtph264.ErrNonStartingPacketAndNoPrevious) ||
		errors.Is(err, rtph265.ErrMorePacketsNeeded) || errors.Is(err, rtph265.ErrNonStartingPacketAndNoPrevious)
}

// planTracks picks the tracks to pull from a camera's session description:
// the first H.264 or H.265 video format and the first AAC, Opus or G.711 audio
// format. Without a supported video format it fails with ErrUnsupportedCodec.
func planTracks(desc *description.Session) ([]*trackReader, error) {
	var video, audio *trackReader
	var seen []string
	for _, m := range desc.Medias {
		if m.IsBackChannel {
			continue
		}
		for _, f := range m.Formats {
			seen = append(seen, f.Codec())
			if video == nil {
				if tr, err := newVideoReader(m, f); err != nil {
					return nil, err
				} else if tr != nil {
					video = tr
					continue
				}
			}
			if audio == nil && m != mediaOf(video) {
				if tr := newAudioReader(m, f); tr != nil {
					audio = tr
				}
			}
		}
	}
	if video == nil {
		if len(seen) == 0 {
			return nil, &PullError{Kind: ErrUnsupportedCodec, Msg: "the camera offers no media track"}
		}
		return nil, &PullError{Kind: ErrUnsupportedCodec,
			Msg: fmt.Sprintf("the camera offers no H.264 or H.265 video (it offers %v)", seen)}
	}
	if audio == nil {
		return []*trackReader{video}, nil
	}
	return []*trackReader{video, audio}, nil
}

func mediaOf(tr *trackReader) *description.Media {
	if tr == nil {
		return nil
	}
	return tr.media
}

// newVideoReader returns a reader for an H.264 or H.265 format, nil for another format.
func newVideoReader(m *description.Media, f format.Format) (*trackReader, error) {
	switch f := f.(type) {
	case *format.H264:
		dec, err := f.CreateDecoder()
		if err != nil {
			return nil, &PullError{Kind: ErrUnsupportedCodec, Msg: "the camera's H.264 packetization is not supported", Err: err}
		}
		sps, pps := f.SafeParams()
		return &trackReader{
			media: m, format: f, video: dec,
			params: newParamSets(CodecH264, nil, sps, pps),
			proto:  Track{Video: true, Codec: CodecH264, ClockRate: f.ClockRate()},
		}, nil
	case *format.H265:
		dec, err := f.CreateDecoder()
		if err != nil {
			return nil, &PullError{Kind: ErrUnsupportedCodec, Msg: "the camera's H.265 packetization is not supported", Err: err}
		}
		vps, sps, pps := f.SafeParams()
		return &trackReader{
			media: m, format: f, video: dec,
			params: newParamSets(CodecH265, vps, sps, pps),
			proto:  Track{Video: true, Codec: CodecH265, ClockRate: f.ClockRate()},
		}, nil
	}
	return nil, nil
}

// newAudioReader returns a reader for an AAC, Opus or G.711 format, nil for another format.
func newAudioReader(m *description.Media, f format.Format) *trackReader {
	switch f := f.(type) {
	case *format.MPEG4Audio:
		if f.Config == nil || f.SizeLength <= 0 || f.ClockRate() <= 0 {
			return nil
		}
		dec, err := f.CreateDecoder()
		if err != nil {
			return nil
		}
		cfg, err := f.Config.Marshal()
		if err != nil {
			return nil
		}
		return &trackReader{
			media: m, format: f, audio: dec.Decode, frameSamples: mpeg4audio.SamplesPerAccessUnit,
			proto: Track{Codec: CodecAAC, ClockRate: f.ClockRate(), SampleRate: f.Config.SampleRate,
				ChannelCount: f.Config.ChannelCount, AACConfig: cfg},
		}
	case *format.Opus:
		dec, err := f.CreateDecoder()
		if err != nil {
			return nil
		}
		ch := f.ChannelCount
		if ch <= 0 {
			ch = 2
		}
		return &trackReader{
			media: m, format: f, audio: oneFrame(dec.Decode),
			proto: Track{Codec: CodecOpus, ClockRate: f.ClockRate(), SampleRate: 48000, ChannelCount: ch},
		}
	case *format.G711:
		if f.ChannelCount <= 0 || f.SampleRate <= 0 {
			return nil
		}
		dec, err := f.CreateDecoder()
		if err != nil {
			return nil
		}
		codec := CodecPCMA
		if f.MULaw {
			codec = CodecPCMU
		}
		return &trackReader{
			media: m, format: f, audio: oneFrame(dec.Decode),
			proto: Track{Codec: codec, ClockRate: f.ClockRate(), SampleRate: f.SampleRate, ChannelCount: f.ChannelCount},
		}
	}
	return nil
}

func oneFrame(dec func(*rtp.Packet) ([]byte, error)) func(*rtp.Packet) ([][]byte, error) {
	return func(pkt *rtp.Packet) ([][]byte, error) {
		b, err := dec(pkt)
		if err != nil {
			return nil, err
		}
		if len(b) == 0 {
			return nil, errors.New("empty audio payload")
		}
		return [][]byte{b}, nil
	}
}

// publishTrack returns the hub track of the reader with what is known now:
// for video, the current parameter sets and picture size.
func (tr *trackReader) publishTrack() *Track {
	t := tr.proto
	if tr.params != nil {
		t.VPS, t.SPS, t.PPS = tr.params.vps, tr.params.sps, tr.params.pps
		t.Width, t.Height = tr.params.width, tr.params.height
	}
	return &t
}

// parseSDP decodes a session description as a camera sends it in its DESCRIBE answer.
func parseSDP(b []byte) (*description.Session, error) {
	var sd sdp.SessionDescription
	if err := sd.Unmarshal(b); err != nil {
		return nil, fmt.Errorf("parse SDP: %w", err)
	}
	var desc description.Session
	if err := desc.Unmarshal(&sd); err != nil {
		return nil, fmt.Errorf("parse SDP: %w", err)
	}
	return &desc, nil
}

// ticksToDuration converts RTP clock ticks into a duration without overflowing.
func ticksToDuration(ticks int64, clockRate int) time.Duration {
	if clockRate <= 0 {
		return 0
	}
	cr := int64(clockRate)
	return time.Duration(ticks/cr)*time.Second + time.Duration(ticks%cr)*time.Second/time.Duration(cr)
}
