package review

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"slices"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/vigil-vms/vigil/recorder/archive"
)

// UnitTrack is one track of the recording that Units reads: its codec as
// the init section describes it (*fmp4.CodecH264 with SPS and PPS,
// *fmp4.CodecH265, *fmp4.CodecMPEG4Audio, *fmp4.CodecOpus, *fmp4.CodecLPCM…).
type UnitTrack struct {
	ID        int
	Timescale uint32
	Codec     fmp4.Codec
}

// Video tells whether the track is video.
func (t *UnitTrack) Video() bool { return t.Codec != nil && t.Codec.IsVideo() }

// Unit is one recorded access unit, as Units yields it.
type Unit struct {
	Track *UnitTrack
	// Time is the recorded wall-clock time of the unit's presentation.
	Time time.Time
	// DTS is its decode time on the same clock: Time without B-frames.
	// Units come in DTS order.
	DTS time.Time
	// Key is set for a video sample holding an IDR (H.264) or IRAP (H.265)
	// picture, as its NAL units say (container sync flags vary by muxer).
	Key bool
	// Payload is the sample as stored: length-prefixed NAL units (AVCC,
	// 4-byte lengths) for H.264 and H.265, the raw frame for audio. It stays
	// valid after the next unit.
	Payload []byte
}

// Units reads the recorded access units of a playback in order (Review.Units).
type Units struct {
	// Start is the recorded time of the first unit: the keyframe at or
	// before the start asked for, or the first keyframe after it when that
	// falls in a gap.
	Start time.Time
	// Tracks are the recording's tracks, as the first segment's init
	// section describes them.
	Tracks []*UnitTrack

	next func() (Unit, error, bool)
	stop func()
	c    *clip
}

// Next returns the next unit, or io.EOF after the last one before the end
// asked for (or where the recording ends, or its format changes). Errors
// other than io.EOF tell why the units end early (a store that fails, a
// corrupt segment).
func (u *Units) Next() (Unit, error) {
	un, err, ok := u.next()
	if !ok {
		return Unit{}, io.EOF
	}
	return un, err
}

// Gaps returns the gaps in recording that the units went across so far
// (more than MaxGap without recording).
func (u *Units) Gaps() []Gap { return append([]Gap(nil), u.c.gaps...) }

// Close ends the reading; Next afterwards returns io.EOF.
func (u *Units) Close() { u.stop() }

var errUnitsStopped = errors.New("units: stopped")

// Units returns the camera's recorded access units from the keyframe at or
// before start until end, in recorded order, with their wall-clock times.
// The first unit is that video keyframe (audio before it is left out).
// Unlike Playback it goes on across gaps in recording (Units.Gaps), so that
// a reader of the units skips them; it stops where the stream's format
// changes (a segment whose init section differs). Units at or after end are
// left out.
//
// It reads the index (and Spool) like Open, and fails like it before the
// first unit: apierr.ErrInvalid for bad arguments (the range is limited to
// MaxPlayback) and apierr.ErrNotFound where nothing was recorded. The store
// is read only by Next, a fragment at a time, under ctx.
func (rv *Review) Units(ctx context.Context, camera string, start, end time.Time) (*Units, error) {
	if err := checkCamera(camera); err != nil {
		return nil, err
	}
	if err := checkRange("the playback", start, end, MaxPlayback); err != nil {
		return nil, err
	}
	c := rv.newClip(ctx, camera, start, end)
	c.acrossGaps = true
	u := &Units{c: c}
	for {
		seg, ok, err := c.next()
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, notRecorded(start, end)
		}
		if i0, i1 := c.pickFragments(seg); i0 < i1 {
			c.queue = append([]archive.Segment{seg}, c.queue...)
			u.Start = seg.Start.Add(seg.Fragments[i0].Offset)
			break
		}
	}
	var tracks map[int]*UnitTrack
	c.onInit = func(b []byte) error {
		var in fmp4.Init
		if err := in.Unmarshal(bytes.NewReader(b)); err != nil {
			return err
		}
		tracks = map[int]*UnitTrack{}
		for _, t := range in.Tracks {
			ut := &UnitTrack{ID: t.ID, Timescale: t.TimeScale, Codec: t.Codec}
			tracks[t.ID] = ut
			u.Tracks = append(u.Tracks, ut)
		}
		return nil
	}
	keyed := false // a video keyframe was yielded: units before it are left out
	seq := func(yield func(Unit, error) bool) {
		c.onFragment = func(seg archive.Segment, f archive.Fragment, buf []byte) error {
			return emitFragment(seg, f, buf, tracks, end, &keyed, yield)
		}
		_, err := c.WriteTo(io.Discard)
		if err != nil && !errors.Is(err, errUnitsStopped) {
			yield(Unit{}, err)
		}
	}
	next, stop := iter.Pull2(iter.Seq2[Unit, error](seq))
	u.next = func() (Unit, error, bool) {
		un, err, ok := next()
		if ok && err != nil {
			stop() // an error ends the units
		}
		return un, err, ok
	}
	u.stop = stop
	return u, nil
}

// emitFragment yields the samples of one moof+mdat with their wall-clock
// times: the fragment's first video sample is at seg.Start+f.Offset (as the
// index says), and every other sample is placed from its decode time
// relative to that one.
func emitFragment(seg archive.Segment, f archive.Fragment, buf []byte, tracks map[int]*UnitTrack, end time.Time, keyed *bool, yield func(Unit, error) bool) error {
	var parts fmp4.Parts
	if err := parts.Unmarshal(buf); err != nil {
		return fmt.Errorf("segment %s: fragment at %d: %w", seg.Key, f.Pos, err)
	}
	// The reference: the first video track's base time, in ns.
	ref, hasRef := int64(0), false
	for _, p := range parts {
		for _, pt := range p.Tracks {
			if tr := tracks[pt.ID]; tr != nil && tr.Video() && !hasRef {
				ns, err := mulDiv(int64(pt.BaseTime), nsPerSecond, uint64(tr.Timescale))
				if err != nil {
					return fmt.Errorf("segment %s: %w", seg.Key, err)
				}
				ref, hasRef = ns, true
			}
		}
	}
	origin := seg.Start.Add(f.Offset)
	var units []Unit
	for _, p := range parts {
		for _, pt := range p.Tracks {
			tr := tracks[pt.ID]
			if tr == nil || tr.Timescale == 0 {
				continue
			}
			dts := int64(pt.BaseTime)
			for _, s := range pt.Samples {
				dns, err := mulDiv(dts, nsPerSecond, uint64(tr.Timescale))
				if err != nil {
					return fmt.Errorf("segment %s: %w", seg.Key, err)
				}
				pns, err := mulDiv(dts+int64(s.PTSOffset), nsPerSecond, uint64(tr.Timescale))
				if err != nil {
					return fmt.Errorf("segment %s: %w", seg.Key, err)
				}
				if !hasRef { // a fragment without video: its first sample is at origin
					ref, hasRef = dns, true
				}
				dts += int64(s.Duration)
				if len(s.Payload) == 0 {
					continue
				}
				units = append(units, Unit{Track: tr, Time: origin.Add(time.Duration(pns - ref)),
					DTS: origin.Add(time.Duration(dns - ref)), Key: isKey(tr.Codec, s.Payload), Payload: s.Payload})
			}
		}
	}
	// Interleave the tracks by decode time, keeping each track's order.
	slices.SortStableFunc(units, func(a, b Unit) int { return a.DTS.Compare(b.DTS) })
	for _, un := range units {
		if !un.Time.Before(end) {
			continue
		}
		if !*keyed {
			if !un.Key {
				continue
			}
			*keyed = true
		}
		if !yield(un, nil) {
			return errUnitsStopped
		}
	}
	return nil
}

// isKey tells whether an AVCC sample holds an IDR (H.264) or IRAP (H.265) picture.
func isKey(codec fmp4.Codec, b []byte) bool {
	h265 := false
	switch codec.(type) {
	case *fmp4.CodecH264:
	case *fmp4.CodecH265:
		h265 = true
	default:
		return false
	}
	for len(b) >= 5 {
		n := int(b[0])<<24 | int(b[1])<<16 | int(b[2])<<8 | int(b[3])
		if n <= 0 || n > len(b)-4 {
			return false
		}
		if h265 {
			if t := b[4] >> 1 & 0x3F; t >= 16 && t <= 23 {
				return true
			}
		} else if b[4]&0x1F == 5 {
			return true
		}
		b = b[4+n:]
	}
	return false
}
