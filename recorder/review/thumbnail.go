package review

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"

	"github.com/vigil-vms/vigil/internal/apierr"
	"github.com/vigil-vms/vigil/recorder/archive"
	"github.com/vigil-vms/vigil/recorder/internal/fmp4read"
)

// Limits of a thumbnail.
const (
	// thumbHeadBytes is how much of a fragment a thumbnail reads first: its
	// moof (about 1 KB for a second of video and audio) and the beginning
	// of the keyframe that follows it.
	thumbHeadBytes = 8 << 10
	// MaxThumbnailSample bounds the keyframe a thumbnail carries; a larger
	// one (a corrupt index, or a camera sending 4K keyframes of several
	// megabytes) is refused rather than read.
	MaxThumbnailSample = 4 << 20
)

// Thumbnail is the stored keyframe of a moment as a tiny fragmented MP4:
// an init section with the video track only, and one fragment holding that
// one sample (its decode time 0). A browser decodes it (WebCodecs, or a
// <video> element); the server decodes nothing.
type Thumbnail struct {
	// Time is the wall-clock time of the keyframe: the one at or before the
	// moment asked for.
	Time time.Time
	// MP4 is the init section followed by the fragment.
	MP4 []byte
	// Final is false when the keyframe comes from the segment being written
	// (or waiting for upload): a later request for the same moment may find
	// a nearer keyframe written meanwhile. An answer with Final set does not
	// change while the recording is kept.
	Final bool
	// ReadBytes is what was read from the store or the spool to make it.
	ReadBytes int64
}

// Thumbnail returns the camera's recorded keyframe at or before at (the
// latest one of the segment that holds at) as a tiny fMP4, reading from the
// segment only its init section, the keyframe's moof and the keyframe itself
// (ranged reads, never the rest of the fragment). It fails with
// apierr.ErrInvalid for bad arguments and apierr.ErrNotFound when nothing
// was recorded at that moment (a gap, or before the recording began).
func (rv *Review) Thumbnail(ctx context.Context, camera string, at time.Time) (Thumbnail, error) {
	if err := checkCamera(camera); err != nil {
		return Thumbnail{}, err
	}
	if err := checkTime("time", at); err != nil {
		return Thumbnail{}, err
	}
	c := rv.newClip(ctx, camera, at, at.Add(1))
	seg, ok, err := rv.segmentAt(ctx, camera, at, c.spooled)
	if err != nil {
		return Thumbnail{}, fmt.Errorf("thumbnail of %s: %w", camera, err)
	}
	if !ok {
		return Thumbnail{}, apierr.New(apierr.ErrNotFound, "nothing was recorded at %s", at.UTC().Format(reviewTimeFormat))
	}
	f, ok := keyframeAtOrBefore(seg, at)
	if !ok {
		return Thumbnail{}, apierr.New(apierr.ErrNotFound, "nothing was recorded at %s", at.UTC().Format(reviewTimeFormat))
	}
	if seg.InitSize <= 0 || seg.InitSize > maxInitSize || f.Size < 16 || f.Size > maxFragmentSize || f.Pos < seg.InitSize {
		return Thumbnail{}, fmt.Errorf("thumbnail of %s: segment %s: index gives an init section of %d bytes and a fragment of %d bytes at %d",
			camera, seg.Key, seg.InitSize, f.Size, f.Pos)
	}
	defer rv.pinSegment(seg, c.spooled[seg.Key])()

	th := Thumbnail{Time: seg.Start.Add(f.Offset), Final: !c.spooled[seg.Key]}
	initBytes, err := c.read(seg, 0, seg.InitSize)
	if err != nil {
		return Thumbnail{}, storeErrorFirst(err)
	}
	th.ReadBytes += int64(len(initBytes))
	sample, track, n, err := c.readKeyframe(seg, f, initBytes)
	th.ReadBytes += n
	if err != nil {
		return Thumbnail{}, storeErrorFirst(err)
	}
	if th.MP4, err = rv.thumbInits.mp4(initBytes, track, sample); err != nil {
		return Thumbnail{}, fmt.Errorf("thumbnail of %s: segment %s: %w", camera, seg.Key, err)
	}
	return th, nil
}

// keyframeAtOrBefore returns the segment's last keyframe fragment that
// starts at or before at, or its first keyframe fragment when none does.
func keyframeAtOrBefore(seg archive.Segment, at time.Time) (archive.Fragment, bool) {
	var out archive.Fragment
	found := false
	for _, f := range seg.Fragments {
		if !f.Keyframe || f.Offset < 0 {
			continue
		}
		if found && seg.Start.Add(f.Offset).After(at) {
			break
		}
		out, found = f, true
	}
	return out, found
}

// keyframeSample is the first video sample of a fragment.
type keyframeSample struct {
	data     []byte
	duration uint32
	cto      int32
}

// readKeyframe reads the fragment's moof and its first video sample: the
// first thumbHeadBytes of the fragment, then what of the sample lies beyond
// them. It returns the sample, the video track's id and the bytes read.
func (c *clip) readKeyframe(seg archive.Segment, f archive.Fragment, initBytes []byte) (keyframeSample, uint32, int64, error) {
	in, err := fmp4read.ParseInit(initBytes)
	if err != nil {
		return keyframeSample{}, 0, 0, fmt.Errorf("segment %s: init section: %w", seg.Key, err)
	}
	var video *fmp4read.Track
	for i := range in.Tracks {
		if in.Tracks[i].Handler == "vide" {
			video = &in.Tracks[i]
			break
		}
	}
	if video == nil {
		return keyframeSample{}, 0, 0, fmt.Errorf("segment %s: no video track", seg.Key)
	}
	head, err := c.read(seg, f.Pos, min(f.Size, thumbHeadBytes))
	read := int64(len(head))
	if err != nil {
		return keyframeSample{}, 0, read, err
	}
	moofSize := int64(binary.BigEndian.Uint32(head))
	if moofSize < 8 || moofSize > f.Size || moofSize > maxInitSize {
		return keyframeSample{}, 0, read, fmt.Errorf("segment %s: fragment at %d: moof of %d bytes", seg.Key, f.Pos, moofSize)
	}
	if moofSize > int64(len(head)) {
		more, err := c.read(seg, f.Pos+int64(len(head)), moofSize-int64(len(head)))
		read += int64(len(more))
		if err != nil {
			return keyframeSample{}, 0, read, err
		}
		head = append(head, more...)
	}
	m, err := fmp4read.ParseMoof(head[:moofSize], in)
	if err != nil {
		return keyframeSample{}, 0, read, fmt.Errorf("segment %s: fragment at %d: %w", seg.Key, f.Pos, err)
	}
	var traf *fmp4read.Traf
	for i := range m.Trafs {
		if m.Trafs[i].TrackID == video.ID && m.Trafs[i].Samples > 0 {
			traf = &m.Trafs[i]
			break
		}
	}
	if traf == nil || !traf.FirstKey {
		return keyframeSample{}, 0, read, fmt.Errorf("segment %s: fragment at %d does not begin with a video keyframe", seg.Key, f.Pos)
	}
	pos, size, err := traf.SampleAt(f.Pos)
	if err != nil {
		return keyframeSample{}, 0, read, fmt.Errorf("segment %s: fragment at %d: %w", seg.Key, f.Pos, err)
	}
	if size > MaxThumbnailSample || pos+size > f.Pos+f.Size {
		return keyframeSample{}, 0, read, fmt.Errorf("segment %s: fragment at %d: keyframe of %d bytes at %d", seg.Key, f.Pos, size, pos)
	}
	// What of the sample the head already holds, then the rest.
	data := make([]byte, 0, size)
	headEnd := f.Pos + int64(len(head))
	if pos < headEnd {
		data = append(data, head[pos-f.Pos:min(pos+size, headEnd)-f.Pos]...)
	}
	if rest := pos + size - max(pos, headEnd); rest > 0 {
		more, err := c.read(seg, max(pos, headEnd), rest)
		read += int64(len(more))
		if err != nil {
			return keyframeSample{}, 0, read, err
		}
		data = append(data, more...)
	}
	return keyframeSample{data: data, duration: traf.First.Duration, cto: traf.First.CTO}, video.ID, read, nil
}

// thumbInitCache keeps the video-only init sections made from stored ones:
// a camera's segments share theirs until its stream changes, and rewriting
// one is half the cost of a thumbnail.
type thumbInitCache struct {
	mu sync.Mutex
	m  map[string]thumbInit
}

type thumbInit struct {
	bytes     []byte
	id        int
	timescale uint32
}

// thumbInitsKept bounds the cache (it is emptied when full).
const thumbInitsKept = 256

// mp4 writes the init section of the video track alone and one fragment
// with the sample at decode time 0.
func (tc *thumbInitCache) mp4(initBytes []byte, track uint32, s keyframeSample) ([]byte, error) {
	key := string(initBytes)
	tc.mu.Lock()
	in, ok := tc.m[key]
	tc.mu.Unlock()
	if !ok {
		var err error
		if in, err = videoInit(initBytes, track); err != nil {
			return nil, err
		}
		tc.mu.Lock()
		if tc.m == nil || len(tc.m) >= thumbInitsKept {
			tc.m = map[string]thumbInit{}
		}
		tc.m[key] = in
		tc.mu.Unlock()
	}
	dur := s.duration
	if dur == 0 {
		dur = max(in.timescale/25, 1) // one frame at 25 fps
	}
	var buf seekablebuffer.Buffer
	buf.Write(in.bytes)
	part := fmp4.Part{SequenceNumber: 1, Tracks: []*fmp4.PartTrack{{
		ID:      in.id,
		Samples: []*fmp4.Sample{{Duration: dur, PTSOffset: s.cto, Payload: s.data}},
	}}}
	if err := part.Marshal(&buf); err != nil {
		return nil, fmt.Errorf("write fragment: %w", err)
	}
	return buf.Bytes(), nil
}

// videoInit writes the init section of the stored one's video track alone.
func videoInit(initBytes []byte, track uint32) (thumbInit, error) {
	var full fmp4.Init
	if err := full.Unmarshal(bytes.NewReader(initBytes)); err != nil {
		return thumbInit{}, fmt.Errorf("init section: %w", err)
	}
	var video *fmp4.InitTrack
	for _, t := range full.Tracks {
		if t.ID == int(track) {
			video = t
		}
	}
	if video == nil || video.Codec == nil {
		return thumbInit{}, fmt.Errorf("init section: track %d has no codec this server knows", track)
	}
	var buf seekablebuffer.Buffer
	if err := (&fmp4.Init{Tracks: []*fmp4.InitTrack{video}}).Marshal(&buf); err != nil {
		return thumbInit{}, fmt.Errorf("write init section: %w", err)
	}
	return thumbInit{bytes: buf.Bytes(), id: video.ID, timescale: video.TimeScale}, nil
}
