package replay

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/g711"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/vigil-vms/vigil/gb28181/manscdp"
	"github.com/vigil-vms/vigil/gb28181/ps"
	"github.com/vigil-vms/vigil/internal/apierr"
	"github.com/vigil-vms/vigil/recorder/review"
)

// Recordings is the read side of the recorder that a Player needs
// (*review.Review implements it).
type Recordings interface {
	Recordings(ctx context.Context, camera string, start, end time.Time) (review.Recordings, error)
	Units(ctx context.Context, camera string, start, end time.Time) (*review.Units, error)
}

// Player answers an upper platform's record search and serves its playbacks
// and downloads from Vigil's recordings. It holds no state of its own and is
// safe for concurrent use.
type Player struct {
	// Review reads the recordings (a *review.Review).
	Review Recordings
	// Location is the zone of the wall-clock times written in RecordInfo
	// items (MANSCDP times carry no zone). It defaults to time.Local.
	Location *time.Location
}

// New returns a Player over the recordings.
func New(rv Recordings) *Player { return &Player{Review: rv} }

func (p *Player) location() *time.Location {
	if p.Location != nil {
		return p.Location
	}
	return time.Local
}

// RecordInfo answers a RecordInfo query for a camera over [start, end): one
// item per stretch of continuous recording (review spans: segments less than
// review.MaxGap apart merge), clipped to the range, oldest first, with
// StartTime and EndTime in Location, Type "time", Secrecy 0, FilePath
// "<camera>/<start as 20060102T150405>", Name the camera ID and FileSize the
// bytes of the segments it overlaps (whole segments, so an estimate). DeviceID
// is left empty: the caller sets it to the channel's 20-digit ID (and may
// replace Name) before manscdp.Encoder.RecordInfoPages. A range with
// nothing recorded answers an empty list; errors are review's
// (apierr.ErrInvalid for a bad range, longer than review.MaxRecordingsRange).
func (p *Player) RecordInfo(ctx context.Context, camera string, start, end time.Time) ([]manscdp.RecordItem, error) {
	rec, err := p.Review.Recordings(ctx, camera, start, end)
	if err != nil {
		return nil, err
	}
	loc := p.location()
	items := make([]manscdp.RecordItem, 0, len(rec.Spans))
	for _, sp := range rec.Spans {
		s, e := maxTime(sp.Start, start), minTime(sp.End, end)
		if !e.After(s) {
			continue
		}
		var size int64
		for _, seg := range rec.Segments {
			if seg.End.After(s) && seg.Start.Before(e) {
				size += seg.Bytes
			}
		}
		secrecy := 0
		st, et := manscdp.Time{Time: s.In(loc)}, manscdp.Time{Time: e.In(loc)}
		items = append(items, manscdp.RecordItem{
			Name:      camera,
			FilePath:  camera + "/" + s.In(loc).Format("20060102T150405"),
			StartTime: &st,
			EndTime:   &et,
			Secrecy:   &secrecy,
			Type:      "time",
			FileSize:  size,
		})
	}
	return items, nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// Frame is one recorded access unit ready for the PS muxer.
type Frame struct {
	// Time is the recorded wall-clock presentation time; DTS its decode
	// time (equal without B-frames). Frames come in DTS order.
	Time, DTS time.Time
	Video     bool
	// Key marks a video keyframe; its Payload begins with the parameter
	// sets (SPS and PPS, or VPS, SPS and PPS).
	Key bool
	// Type is the PS stream type: ps.TypeH264, ps.TypeH265, ps.TypeAAC
	// (Payload is one ADTS frame) or ps.TypeG711A (recorded G.711, stored as
	// 16-bit PCM at 8 kHz, encoded again).
	Type ps.StreamType
	// Payload is Annex-B for video.
	Payload []byte
}

// Reader reads a camera's recording as frames for the PS muxer, from the
// keyframe at or before the start asked for to the end, across gaps in
// recording (Frame times jump there). Audio the muxer cannot carry (Opus,
// PCM other than 8 kHz mono) is left out. Not safe for concurrent use.
type Reader struct {
	u            *review.Units
	video, audio *review.UnitTrack
	vType, aType ps.StreamType
	params       []byte // Annex-B parameter sets for keyframes
	aac          *mpeg4audio.AudioSpecificConfig
	pending      *review.Unit // the unit Open read to learn the tracks
}

// Open opens the camera's recording over [start, end) (at most
// review.MaxPlayback). It fails with review's errors before the first frame:
// apierr.ErrInvalid for bad arguments, apierr.ErrNotFound when nothing was
// recorded there; apierr.ErrUnsupported when the recording has no H.264 or
// H.265 video. The store is read under ctx by Next, so ctx must outlive the
// reading (not an INVITE's request context).
func (p *Player) Open(ctx context.Context, camera string, start, end time.Time) (*Reader, error) {
	u, err := p.Review.Units(ctx, camera, start, end)
	if err != nil {
		return nil, err
	}
	r := &Reader{u: u}
	// The tracks are known once the first init section is read: peek.
	first, err := u.Next()
	if err != nil {
		u.Close()
		return nil, fmt.Errorf("playback of %s: %w", camera, err)
	}
	for _, t := range u.Tracks {
		r.track(t)
	}
	if r.video == nil {
		u.Close()
		return nil, apierr.New(apierr.ErrUnsupported, "the recording of %s has no H.264 or H.265 video to send as MPEG-PS", camera)
	}
	r.pending = &first
	return r, nil
}

func (r *Reader) track(t *review.UnitTrack) {
	var b bytes.Buffer
	sc := []byte{0, 0, 0, 1}
	switch c := t.Codec.(type) {
	case *fmp4.CodecH264:
		if r.video == nil {
			r.video, r.vType = t, ps.TypeH264
			for _, n := range [][]byte{c.SPS, c.PPS} {
				b.Write(sc)
				b.Write(n)
			}
			r.params = b.Bytes()
		}
	case *fmp4.CodecH265:
		if r.video == nil {
			r.video, r.vType = t, ps.TypeH265
			for _, n := range [][]byte{c.VPS, c.SPS, c.PPS} {
				b.Write(sc)
				b.Write(n)
			}
			r.params = b.Bytes()
		}
	case *fmp4.CodecMPEG4Audio:
		if r.audio == nil {
			cfg := c.Config
			r.audio, r.aType, r.aac = t, ps.TypeAAC, &cfg
		}
	case *fmp4.CodecLPCM:
		if r.audio == nil && c.SampleRate == 8000 && c.ChannelCount == 1 && c.BitDepth == 16 && !c.LittleEndian {
			r.audio, r.aType = t, ps.TypeG711A
		}
	}
}

// Start is the recorded time of the first frame (a keyframe).
func (r *Reader) Start() time.Time { return r.u.Start }

// VideoType and AudioType are the PS stream types of the frames (AudioType
// 0 when no audio is carried): a ps.Muxer's VideoType and AudioType.
func (r *Reader) VideoType() ps.StreamType { return r.vType }

// AudioType: see VideoType.
func (r *Reader) AudioType() ps.StreamType { return r.aType }

// Gaps are the gaps in recording the reader went across so far.
func (r *Reader) Gaps() []review.Gap { return r.u.Gaps() }

// Next returns the next frame, io.EOF after the last. Any other error ends
// the reading early (the store failed, a segment is corrupt).
func (r *Reader) Next() (Frame, error) {
	for {
		var un review.Unit
		if r.pending != nil {
			un, r.pending = *r.pending, nil
		} else {
			var err error
			if un, err = r.u.Next(); err != nil {
				return Frame{}, err
			}
		}
		f, ok, err := r.frame(un)
		if err != nil {
			return Frame{}, err
		}
		if ok {
			return f, nil
		}
	}
}

func (r *Reader) frame(un review.Unit) (Frame, bool, error) {
	f := Frame{Time: un.Time, DTS: un.DTS}
	switch un.Track {
	case r.video:
		f.Video, f.Key, f.Type = true, un.Key, r.vType
		f.Payload = avccToAnnexB(un.Payload, r.vType, un.Key, r.params)
		if f.Payload == nil {
			return Frame{}, false, fmt.Errorf("recorded video sample at %s is not length-prefixed NAL units", un.Time.Format(time.RFC3339Nano))
		}
	case r.audio:
		f.Type = r.aType
		if r.aac != nil {
			b, err := mpeg4audio.ADTSPackets{{Type: r.aac.Type, SampleRate: r.aac.SampleRate,
				ChannelCount: r.aac.ChannelCount, AU: un.Payload}}.Marshal()
			if err != nil {
				return Frame{}, false, fmt.Errorf("recorded AAC frame at %s: %w", un.Time.Format(time.RFC3339Nano), err)
			}
			f.Payload = b
		} else {
			b, err := g711.Alaw(un.Payload).Marshal()
			if err != nil {
				return Frame{}, false, fmt.Errorf("recorded PCM at %s: %w", un.Time.Format(time.RFC3339Nano), err)
			}
			f.Payload = b
		}
	default:
		return Frame{}, false, nil
	}
	return f, true, nil
}

// Close ends the reading.
func (r *Reader) Close() { r.u.Close() }

// avccToAnnexB rewrites 4-byte length prefixes as start codes, putting the
// parameter sets before a keyframe that does not carry its own; nil when b
// is not well-formed.
func avccToAnnexB(b []byte, t ps.StreamType, key bool, params []byte) []byte {
	out := make([]byte, 0, len(b)+len(params)+8)
	if key && !hasParams(b, t) {
		out = append(out, params...)
	}
	for len(b) > 0 {
		if len(b) < 4 {
			return nil
		}
		n := int(b[0])<<24 | int(b[1])<<16 | int(b[2])<<8 | int(b[3])
		if n <= 0 || n > len(b)-4 {
			return nil
		}
		out = append(out, 0, 0, 0, 1)
		out = append(out, b[4:4+n]...)
		b = b[4+n:]
	}
	return out
}

// hasParams tells whether an AVCC sample carries an SPS.
func hasParams(b []byte, t ps.StreamType) bool {
	for len(b) >= 5 {
		n := int(b[0])<<24 | int(b[1])<<16 | int(b[2])<<8 | int(b[3])
		if n <= 0 || n > len(b)-4 {
			return false
		}
		if t == ps.TypeH265 && b[4]>>1&0x3F == 33 || t == ps.TypeH264 && b[4]&0x1F == 7 {
			return true
		}
		b = b[4+n:]
	}
	return false
}
