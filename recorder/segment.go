package recorder

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/g711"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"

	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/recorder/internal/fmp4read"
)

// keyLayout formats a segment's UTC start time inside its key.
// scaleDuration converts v ticks of a timescale into a duration without overflow.
func scaleDuration(v uint64, scale uint32) time.Duration { return fmp4read.ScaleDuration(v, scale) }

// toTicks converts a duration to ticks of a timescale (d >= 0).
func toTicks(d time.Duration, scale uint32) uint64 {
	s := uint64(scale)
	u := uint64(d)
	return u/uint64(time.Second)*s + (u%uint64(time.Second))*s/uint64(time.Second)
}

// Defaults for closing a sample whose successor never came.
const defaultVideoTicks = 90000 / 25

// fragTrack is one track of the segment being written.
type fragTrack struct {
	src       *ingest.Track
	id        int
	scale     uint32
	video     bool
	pending   *ingest.Unit // last unit, waiting for the next one to know its duration
	placed    uint64       // decode time at which pending sits (or the next sample will)
	started   bool
	base      uint64 // decode time of samples[0]
	samples   []fragSample
	lastTicks uint32
}

// fragmenter turns units into an fMP4 init section and fragments.
type fragmenter struct {
	startPTS time.Duration
	tracks   []*fragTrack // by ingest track index; nil for tracks not recorded
	video    *fragTrack
	init     fmp4.Init
	seq      uint32
	fragBase uint64 // video decode time of the current fragment's first sample
	sps, pps []byte // parameter sets of the init section (H.264/H.265)

	// the pooled buffer of the last fragment (out, until release)
	bufs *bufPool // nil: buffers are allocated
	out  *[]byte
	// gate, when set, is entered before a fragment is marshalled and left
	// at its release, after the caller wrote it
	gate diskGate

	// the last fragment flushed, as the segment scanner reads it back
	lastVideo    bool          // it holds video samples
	lastStart    time.Duration // start of its first video sample, from the segment's start
	lastEnd      time.Duration // end of its last video sample, from the segment's start
	lastKeyframe bool          // its first video sample is a sync sample
}

// paramSets returns the VPS, SPS and PPS found in a keyframe access unit.
func paramSets(codec string, au [][]byte) (vps, sps, pps []byte) {
	for _, n := range au {
		if len(n) == 0 {
			continue
		}
		if codec == ingest.CodecH265 {
			switch (n[0] >> 1) & 0x3f {
			case 32:
				vps = n
			case 33:
				sps = n
			case 34:
				pps = n
			}
			continue
		}
		switch n[0] & 0x1f {
		case 7:
			sps = n
		case 8:
			pps = n
		}
	}
	return vps, sps, pps
}

// newFragmenter prepares a segment that starts with the keyframe k.
func newFragmenter(k *ingest.Unit) (*fragmenter, error) {
	fr := &fragmenter{startPTS: k.PTS, tracks: make([]*fragTrack, len(k.Media.Tracks))}
	vt := k.Track
	vps, sps, pps := paramSets(vt.Codec, k.Data)
	if sps == nil {
		sps = vt.SPS
	}
	if pps == nil {
		pps = vt.PPS
	}
	if vps == nil {
		vps = vt.VPS
	}
	var vc fmp4.Codec
	switch vt.Codec {
	case ingest.CodecH264:
		if sps == nil || pps == nil {
			return nil, errors.New("keyframe without SPS/PPS")
		}
		vc = &fmp4.CodecH264{SPS: sps, PPS: pps}
	case ingest.CodecH265:
		if vps == nil || sps == nil || pps == nil {
			return nil, errors.New("keyframe without VPS/SPS/PPS")
		}
		vc = &fmp4.CodecH265{VPS: vps, SPS: sps, PPS: pps}
	default:
		return nil, fmt.Errorf("video codec %q cannot be recorded", vt.Codec)
	}
	fr.sps, fr.pps = sps, pps
	fr.video = &fragTrack{src: vt, id: 1, scale: 90000, video: true}
	fr.tracks[vt.Index] = fr.video
	fr.init.Tracks = append(fr.init.Tracks, &fmp4.InitTrack{ID: 1, TimeScale: 90000, Codec: vc})

	if at := k.Media.Audio(); at != nil && at.Index < len(fr.tracks) {
		var ac fmp4.Codec
		scale := uint32(at.SampleRate)
		channels := max(at.ChannelCount, 1)
		switch at.Codec {
		case ingest.CodecAAC:
			var conf mpeg4audio.AudioSpecificConfig
			if err := conf.Unmarshal(at.AACConfig); err == nil {
				ac = &fmp4.CodecMPEG4Audio{Config: conf}
				scale = uint32(conf.SampleRate)
			}
		case ingest.CodecOpus:
			ac = &fmp4.CodecOpus{ChannelCount: channels}
			scale = 48000
		case ingest.CodecPCMU, ingest.CodecPCMA:
			if scale == 0 {
				scale = 8000
			}
			ac = &fmp4.CodecLPCM{BitDepth: 16, SampleRate: int(scale), ChannelCount: channels}
		}
		if ac != nil && scale > 0 {
			t := &fragTrack{src: at, id: 2, scale: scale}
			fr.tracks[at.Index] = t
			fr.init.Tracks = append(fr.init.Tracks, &fmp4.InitTrack{ID: 2, TimeScale: scale, Codec: ac})
		}
	}
	return fr, nil
}

// initBytes marshals the init section.
func (fr *fragmenter) initBytes() ([]byte, error) {
	var buf seekablebuffer.Buffer
	if err := fr.init.Marshal(&buf); err != nil {
		return nil, fmt.Errorf("marshal init: %w", err)
	}
	return buf.Bytes(), nil
}

// sameParams tells whether the keyframe k carries the parameter sets of the init section.
func (fr *fragmenter) sameParams(k *ingest.Unit) bool {
	_, sps, pps := paramSets(k.Track.Codec, k.Data)
	return (sps == nil || bytes.Equal(sps, fr.sps)) && (pps == nil || bytes.Equal(pps, fr.pps))
}

// ticks returns the decode time of u in its track's timescale, and false for
// a unit that precedes the segment.
func (fr *fragmenter) ticks(t *fragTrack, u *ingest.Unit) (uint64, bool) {
	d := u.PTS - fr.startPTS
	if d < 0 {
		return 0, false
	}
	return toTicks(d, t.scale), true
}

// complete turns the pending unit of t into a sample that lasts until
// nextTicks (or a default when the successor is unknown, nextTicks == nil).
func (fr *fragmenter) complete(t *fragTrack, next *uint64) error {
	u := t.pending
	if u == nil {
		return nil
	}
	t.pending = nil
	var dur uint32
	switch {
	case next != nil && *next > t.placed:
		dur = uint32(min(*next-t.placed, 1<<31))
	case t.lastTicks > 0:
		dur = t.lastTicks
	case t.video:
		dur = defaultVideoTicks
	default:
		dur = defaultAudioTicks(t, u)
	}
	s := fragSample{dur: dur}
	switch t.src.Codec {
	case ingest.CodecH264, ingest.CodecH265:
		// written length-prefixed (AVCC) from the unit's NAL units at flush
		if t.src.Codec == ingest.CodecH264 {
			s.nonSync = !h264.IsRandomAccess(u.Data)
		} else {
			s.nonSync = !h265.IsRandomAccess(u.Data)
		}
		s.au = u.Data
		n := 0
		for _, nalu := range u.Data {
			n += 4 + len(nalu)
		}
		if n > math.MaxUint32 {
			return fmt.Errorf("access unit of %d bytes", n)
		}
		s.size = uint32(n)
	case ingest.CodecPCMU:
		var p g711.Mulaw
		p.Unmarshal(u.Data[0])
		s.payload = p
	case ingest.CodecPCMA:
		var p g711.Alaw
		p.Unmarshal(u.Data[0])
		s.payload = p
	default:
		s.payload = u.Data[0]
	}
	if s.au == nil {
		s.size = uint32(len(s.payload))
	}
	if len(t.samples) == 0 {
		t.base = t.placed
	}
	t.samples = append(t.samples, s)
	t.placed += uint64(dur)
	t.lastTicks = dur
	return nil
}

func defaultAudioTicks(t *fragTrack, u *ingest.Unit) uint32 {
	switch t.src.Codec {
	case ingest.CodecAAC:
		return 1024
	case ingest.CodecPCMU, ingest.CodecPCMA:
		if len(u.Data) > 0 && len(u.Data[0]) > 0 {
			return uint32(len(u.Data[0]) / max(t.src.ChannelCount, 1))
		}
	}
	return t.scale / 50 // 20 ms
}

// add takes a unit of the segment. It returns the marshaled fragment when one
// is complete (at a keyframe, or when the current one spans maxFragment).
func (fr *fragmenter) add(u *ingest.Unit, maxFragment time.Duration) (frag []byte, keyframe bool, err error) {
	if u.Track == nil || u.Track.Index >= len(fr.tracks) || len(u.Data) == 0 {
		return nil, false, nil
	}
	t := fr.tracks[u.Track.Index]
	if t == nil {
		return nil, false, nil
	}
	at, ok := fr.ticks(t, u)
	if !ok {
		return nil, false, nil
	}
	if !t.started {
		t.started = true
		t.placed = at
	}
	if err := fr.complete(t, &at); err != nil {
		return nil, false, err
	}
	if t.video && len(t.samples) > 0 &&
		(u.Keyframe || scaleDuration(at-t.base, t.scale) >= maxFragment) {
		frag, keyframe, err = fr.flush()
	}
	t.pending = u
	return frag, keyframe, err
}

// flush marshals the completed samples of every track as one fragment; nil
// when there are none.
//
// The fragment is in a buffer lent by fr.bufs: valid until release, which
// the caller calls once it is written (or until the next flush). With a
// gate, flush enters it, and release leaves it.
func (fr *fragmenter) flush() ([]byte, bool, error) {
	fr.release()
	keyframe := false
	video := fr.video != nil && len(fr.video.samples) > 0
	var tracks [4]*fragTrack
	with := tracks[:0]
	for _, t := range fr.tracks {
		if t == nil || len(t.samples) == 0 {
			continue
		}
		if t.video {
			keyframe = !t.samples[0].nonSync
			var dur uint64
			for _, s := range t.samples {
				dur += uint64(s.dur)
			}
			fr.lastStart = scaleDuration(t.base, t.scale)
			fr.lastEnd = scaleDuration(t.base+dur, t.scale)
		}
		with = append(with, t)
	}
	if len(with) == 0 {
		return nil, false, nil
	}
	fr.gate.enter()
	frag, err := fr.marshalFragment(fr.seq+1, with)
	if err != nil {
		if fr.out != nil {
			fr.release()
		} else {
			fr.gate.leave()
		}
		return nil, false, fmt.Errorf("marshal fragment: %w", err)
	}
	fr.seq++
	fr.lastVideo, fr.lastKeyframe = video, keyframe
	for _, t := range with {
		clear(t.samples) // the units go
		t.samples = t.samples[:0]
	}
	return frag, keyframe, nil
}

// finish completes the pending samples (the ones that start before the
// segment's end, endPTS; any when endPTS < 0) and returns the last fragment.
// Audio units at or after endPTS are returned to carry into the next segment.
func (fr *fragmenter) finish(endPTS time.Duration) (frag []byte, carry []*ingest.Unit, err error) {
	for _, t := range fr.tracks {
		if t == nil || t.pending == nil {
			continue
		}
		if endPTS >= 0 {
			if !t.video && t.pending.PTS >= endPTS {
				carry = append(carry, t.pending)
				t.pending = nil
				continue
			}
			next, ok := fr.ticks(t, &ingest.Unit{PTS: endPTS})
			if ok && (t.video || next > t.placed) {
				if t.video {
					err = fr.complete(t, &next)
				} else {
					// audio: its own length, clipped at the segment's end
					d := uint64(t.lastTicks)
					if d == 0 {
						d = uint64(defaultAudioTicks(t, t.pending))
					}
					end := min(t.placed+d, next)
					err = fr.complete(t, &end)
				}
				if err != nil {
					return nil, nil, err
				}
				continue
			}
		}
		if err := fr.complete(t, nil); err != nil {
			return nil, nil, err
		}
	}
	frag, _, err = fr.flush()
	return frag, carry, err
}
