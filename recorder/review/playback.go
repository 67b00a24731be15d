package review

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"time"

	"github.com/vigil-vms/vigil/internal/apierr"
	"github.com/vigil-vms/vigil/recorder/archive"
	"github.com/vigil-vms/vigil/recorder/internal/fmp4read"
)

// Limits that keep a corrupt index row from driving huge reads.
const (
	maxInitSize     = 16 << 20
	maxFragmentSize = 512 << 20
	// segmentsPerQuery is how many segments playback asks the index for at a time.
	segmentsPerQuery = 16
	// overlapSlack is how far a segment may begin before the previous one
	// ended and still be played from its first keyframe.
	overlapSlack = 500 * time.Millisecond
	// lookAheadSegments bounds how many segments Open reads from the index
	// ahead of the first to tell where the playback will stop.
	lookAheadSegments = 1024
)

// Why a playback stops (Playback.Stops).
const (
	// StopsAtEnd: the playback reaches the end asked for.
	StopsAtEnd = "end"
	// StopsAtGap: the recording pauses (more than MaxGap) at Playback.End
	// and resumes at Playback.Resume; ask again from there.
	StopsAtGap = "gap"
	// StopsAtRecordingEnd: nothing is recorded after Playback.End (yet: a
	// segment being written ends the playback where its written part ends).
	StopsAtRecordingEnd = "recording-end"
)

// Playback is a playback found by Review.Open: where its timeline begins,
// and the fragmented MP4 to write.
type Playback struct {
	// Start is the wall-clock time of the first frame: the recorded time of
	// the keyframe fragment at or before the start asked for (or of the first
	// keyframe after it when that falls in a gap), which the clip's timeline
	// places at 0.
	Start time.Time
	// End is the wall-clock time at which the playback stops, as the index
	// tells before the first byte: the end asked for, or where the recording
	// pauses or ends before it. Zero when the index was not read that far
	// (a playback of more than lookAheadSegments segments). A change of
	// codec or resolution, which only the segments themselves show, can
	// still stop it earlier.
	End time.Time
	// Stops tells why the playback stops at End: StopsAtEnd, StopsAtGap or
	// StopsAtRecordingEnd; "" when End is unknown.
	Stops string
	// Resume is where the recording resumes after the gap at End (StopsAtGap).
	Resume time.Time
	// WriteTo writes the clip (see Review.Playback) and returns the bytes
	// written. An error after the first byte only tells why the stream ended
	// early. It is called at most once, under the context given to Open.
	io.WriterTo
}

// Open finds the playback of the camera's recording from the keyframe at or
// before start until dur after start, and returns where it begins and how to
// write it. It walks the index (and the recorder's view of its spool,
// Review.Spool) once: the write continues the walk where finding the first
// frame left it, so a seek reads the index once, and never reads the store
// before WriteTo.
//
// It fails with apierr.ErrInvalid for bad arguments (dur must be in
// (0, MaxPlayback]) and apierr.ErrNotFound where nothing was recorded.
// WriteTo may still fail on a segment that the index describes but the store
// no longer holds or cannot parse.
func (rv *Review) Open(ctx context.Context, camera string, start time.Time, dur time.Duration) (Playback, error) {
	end, err := checkPlayback(camera, start, dur)
	if err != nil {
		return Playback{}, err
	}
	c := rv.newClip(ctx, camera, start, end)
	for {
		seg, ok, err := c.next()
		if err != nil {
			return Playback{}, err
		}
		if !ok {
			return Playback{}, notRecorded(start, end)
		}
		if i0, i1 := c.pickFragments(seg); i0 < i1 {
			c.queue = append([]archive.Segment{seg}, c.queue...)
			pb := Playback{Start: seg.Start.Add(seg.Fragments[i0].Offset), WriterTo: c}
			if pb.End, pb.Stops, pb.Resume, err = c.lookAhead(); err != nil {
				return Playback{}, err
			}
			return pb, nil
		}
	}
}

// Playback writes to w a fragmented MP4 of the camera's recording from the
// keyframe at or before start until dur after start: one init section, then
// moof+mdat fragments taken from the segments with their timestamps and
// sequence numbers rewritten into one continuous timeline starting at 0. It
// continues across segment boundaries and stops at a gap in recording (more
// than MaxGap between two segments), at a change of codec or resolution
// (a segment whose init section differs), or after the first fragment that
// reaches start+dur, so the clip ends less than one fragment (normally one
// GOP) after start+dur. It is Open, then WriteTo.
//
// Segments still on the recorder's local disk (Review.Spool) are played
// like indexed ones: one being written ends the clip where its written
// fragments end, and a client asks again for more.
//
// It reads only the init sections and the fragments it sends, with ranged
// reads, and writes each fragment as soon as it is read (flushing w when it
// is an http.Flusher).
//
// Bad arguments fail with apierr.ErrInvalid (dur must be in (0, MaxPlayback]),
// a range with nothing recorded with apierr.ErrNotFound; such errors come
// before the first byte is written. An error after the first byte only tells
// why the stream ended early: the caller can log it but no longer answer with it.
func (rv *Review) Playback(ctx context.Context, w io.Writer, camera string, start time.Time, dur time.Duration) error {
	pb, err := rv.Open(ctx, camera, start, dur)
	if err != nil {
		return err
	}
	_, err = pb.WriteTo(w)
	return err
}

// PlaybackStart returns the wall-clock time of the first frame that
// Playback would send for the same arguments (Open's Playback.Start). It
// reads the index (and the recorder's view of its spool, Review.Spool) only,
// never the store.
//
// It fails like Playback before its first byte: apierr.ErrInvalid for bad
// arguments and apierr.ErrNotFound where nothing was recorded. Playback may
// still fail afterwards on a segment that the index describes but the store
// no longer holds or cannot parse.
func (rv *Review) PlaybackStart(ctx context.Context, camera string, start time.Time, dur time.Duration) (time.Time, error) {
	pb, err := rv.Open(ctx, camera, start, dur)
	if err != nil {
		return time.Time{}, err
	}
	return pb.Start, nil
}

// checkPlayback validates the arguments of a playback and returns its end.
func checkPlayback(camera string, start time.Time, dur time.Duration) (time.Time, error) {
	if err := checkCamera(camera); err != nil {
		return time.Time{}, err
	}
	if err := checkTime("start", start); err != nil {
		return time.Time{}, err
	}
	if dur <= 0 {
		return time.Time{}, apierr.New(apierr.ErrInvalid, "duration %s must be positive", dur)
	}
	if dur > MaxPlayback {
		return time.Time{}, apierr.New(apierr.ErrInvalid, "duration %s is longer than the limit of %s; ask for a shorter playback",
			dur, fmtLimit(MaxPlayback))
	}
	end := start.Add(dur)
	if err := checkTime("start plus duration", end); err != nil {
		return time.Time{}, err
	}
	return end, nil
}

// clip is the state of one playback or export being written.
type clip struct {
	rv     *Review
	ctx    context.Context
	w      io.Writer
	fl     http.Flusher
	camera string
	start  time.Time
	end    time.Time

	init      *fmp4read.Init
	initBytes []byte // the init section, until it is written with the first fragment
	seq       uint32
	out       int64 // bytes written to w
	tracks    map[uint32]*clipTrack
	prevEnd   time.Time // recorded end of the last segment played
	// acrossGaps makes the clip go on across gaps in recording (an export),
	// noting them in gaps; a playback stops at the first.
	acrossGaps bool
	gaps       []Gap
	first      time.Time // wall time of the first frame written
	segMapped  bool      // the current segment's time shift is known
	segShift   int64     // ns added to the current segment's times

	// The walk over the index: segments fetched and not yet handed out, the
	// start of the last one fetched, and whether the index may hold more.
	queue   []archive.Segment
	after   time.Time
	more    bool
	started bool
	spooled map[string]bool // keys of the segments found in the spool

	// onInit and onFragment, when set (Units), receive the first init
	// section and each fragment instead of the fragments being rewritten
	// and written.
	onInit     func(b []byte) error
	onFragment func(seg archive.Segment, f archive.Fragment, buf []byte) error
}

// clipTrack follows one track of the output timeline.
type clipTrack struct {
	timescale uint32
	end       int64 // output decode time just past the last sample, in timescale units
	delta     int64 // added to the current segment's decode times
	mapped    bool  // delta is set for the current segment
}

func (rv *Review) newClip(ctx context.Context, camera string, start, end time.Time) *clip {
	return &clip{rv: rv, ctx: ctx, camera: camera, start: start, end: end, tracks: map[uint32]*clipTrack{},
		after: start, more: true, spooled: map[string]bool{}}
}

// missing returns the stretches of [start, end) that the written clip does
// not hold: the gaps it went across, and the start and end of the range
// where it has nothing.
func (c *clip) missing() []Gap {
	if !c.played() {
		return []Gap{{Start: c.start, End: c.end}}
	}
	var out []Gap
	if c.first.Sub(c.start) > MaxGap {
		out = append(out, Gap{Start: c.start, End: c.first})
	}
	out = append(out, c.gaps...)
	if last := c.prevEnd; c.end.Sub(last) > MaxGap {
		out = append(out, Gap{Start: last, End: c.end})
	}
	return out
}

// duration is the length of the written clip's timeline.
func (c *clip) duration() time.Duration {
	var d time.Duration
	for _, t := range c.tracks {
		ns, err := mulDiv(t.end, nsPerSecond, uint64(t.timescale))
		if err == nil {
			d = max(d, time.Duration(ns))
		}
	}
	return d
}

// WriteTo writes the clip to w, continuing the walk over the index where
// Open left it, and returns the bytes written.
func (c *clip) WriteTo(w io.Writer) (int64, error) {
	c.w = w
	c.fl, _ = w.(http.Flusher)
	for {
		seg, ok, err := c.next()
		if err != nil {
			return c.out, err
		}
		if !ok {
			break
		}
		done, err := c.playSegment(seg)
		if err != nil {
			return c.out, storeErrorFirst(err)
		}
		if done {
			break
		}
	}
	if c.out == 0 {
		return 0, notRecorded(c.start, c.end)
	}
	return c.out, nil
}

// next returns, oldest first, the segments that the clip may draw on: the
// one containing start, then those starting before end; ok is false when
// there are no more, or the next one lies beyond a gap in recording. A
// segment wholly inside what was played is passed over. Open and WriteTo
// share the walk, so that they choose the same first fragment, and the index
// is read once for both.
func (c *clip) next() (seg archive.Segment, ok bool, err error) {
	if !c.started {
		c.started = true
		first, ok, err := c.rv.segmentAt(c.ctx, c.camera, c.start, c.spooled)
		if err != nil {
			return archive.Segment{}, false, fmt.Errorf("playback of %s: %w", c.camera, err)
		}
		if ok {
			c.queue = append(c.queue, first)
		}
	}
	for {
		if err := c.ctx.Err(); err != nil {
			return archive.Segment{}, false, err
		}
		if len(c.queue) == 0 && c.more {
			if err := c.fetch(); err != nil {
				return archive.Segment{}, false, err
			}
		}
		if len(c.queue) == 0 {
			return archive.Segment{}, false, nil
		}
		seg := c.queue[0]
		c.queue = c.queue[1:]
		if c.played() {
			if gap := seg.Start.Sub(c.prevEnd); gap > MaxGap && !c.acrossGaps {
				c.rv.logger().Debug("playback stops at a gap in recording", "camera", c.camera, "segment", seg.Key, "gap", gap)
				return archive.Segment{}, false, nil
			}
			if !seg.End.After(c.prevEnd) {
				continue // wholly inside what was played
			}
		}
		return seg, true, nil
	}
}

// fetch appends the next batch of segments from the index to the queue.
func (c *clip) fetch() error {
	batch, err := c.rv.segmentsAfter(c.ctx, c.camera, c.after, c.end, segmentsPerQuery, c.spooled)
	if err != nil {
		return fmt.Errorf("playback of %s: %w", c.camera, err)
	}
	c.more = len(batch) == segmentsPerQuery
	if len(batch) > 0 {
		c.after = batch[len(batch)-1].Start
	}
	c.queue = append(c.queue, batch...)
	return nil
}

// lookAhead reads the index on from the first segment of the queue (the one
// the playback begins with) to tell where and why the playback will stop, as
// next will: at the end asked for, at a gap of more than MaxGap, or where
// the recording ends. The segments read stay queued for the write, so the
// index is still read once. Zero values when the answer lies more than
// lookAheadSegments segments ahead.
func (c *clip) lookAhead() (end time.Time, stops string, resume time.Time, err error) {
	prevEnd := c.queue[0].End
	for i := 1; ; {
		if prevEnd.After(c.end) || prevEnd.Equal(c.end) {
			return c.end, StopsAtEnd, time.Time{}, nil
		}
		if i == len(c.queue) {
			if !c.more {
				return prevEnd, StopsAtRecordingEnd, time.Time{}, nil
			}
			if i >= lookAheadSegments {
				return time.Time{}, "", time.Time{}, nil
			}
			if err := c.fetch(); err != nil {
				return time.Time{}, "", time.Time{}, err
			}
			continue
		}
		seg := c.queue[i]
		if !seg.Start.Before(c.end) {
			return c.end, StopsAtEnd, time.Time{}, nil
		}
		if seg.Start.Sub(prevEnd) > MaxGap {
			return prevEnd, StopsAtGap, seg.Start, nil
		}
		if seg.End.After(prevEnd) {
			prevEnd = seg.End
		}
		i++
	}
}

// played tells whether a segment was played already.
func (c *clip) played() bool { return !c.prevEnd.IsZero() }

// pickFragments returns the range [i0, i1) of the segment's fragments to play.
func (c *clip) pickFragments(seg archive.Segment) (int, int) {
	i0 := -1
	for i, f := range seg.Fragments {
		if !f.Keyframe {
			continue
		}
		at := seg.Start.Add(f.Offset)
		if !c.played() {
			if !at.After(c.start) || i0 < 0 {
				i0 = i
			}
			if at.After(c.start) {
				break
			}
			continue
		}
		if !at.Before(c.prevEnd.Add(-overlapSlack)) {
			i0 = i
			break
		}
	}
	if i0 < 0 {
		return 0, 0
	}
	i1 := i0
	for i1 < len(seg.Fragments) && seg.Start.Add(seg.Fragments[i1].Offset).Before(c.end) {
		i1++
	}
	return i0, i1
}

// playSegment writes the segment's fragments that the clip needs; done
// reports that the clip is complete or cannot continue.
func (c *clip) playSegment(seg archive.Segment) (done bool, err error) {
	i0, i1 := c.pickFragments(seg)
	if i0 >= i1 {
		if c.played() && !seg.Start.Before(c.end) {
			return true, nil
		}
		c.rv.logger().Debug("playback skips a segment without a usable keyframe", "camera", c.camera, "segment", seg.Key)
		return false, nil
	}
	if seg.InitSize <= 0 || seg.InitSize > maxInitSize {
		return false, fmt.Errorf("segment %s: index gives an init section of %d bytes", seg.Key, seg.InitSize)
	}
	frags := seg.Fragments[i0:i1]
	for _, f := range frags {
		if f.Size < 16 || f.Size > maxFragmentSize || f.Pos < seg.InitSize {
			return false, fmt.Errorf("segment %s: index gives a fragment of %d bytes at %d", seg.Key, f.Size, f.Pos)
		}
	}
	defer c.rv.pinSegment(seg, c.spooled[seg.Key])()

	// Runs of contiguous fragments, each read with one ranged Get.
	maxRead := c.rv.maxRead()
	var runs [][]archive.Fragment
	for i, f := range frags {
		if n := len(runs); n > 0 && i > 0 {
			last := runs[n-1]
			prev := last[len(last)-1]
			if f.Pos == prev.Pos+prev.Size && f.Pos+f.Size-last[0].Pos <= maxRead {
				runs[n-1] = append(last, f)
				continue
			}
		}
		runs = append(runs, []archive.Fragment{f})
	}

	c.segMapped = false
	for _, t := range c.tracks {
		t.mapped = false
	}
	for ri, run := range runs {
		off := run[0].Pos
		length := run[len(run)-1].Pos + run[len(run)-1].Size - off
		withInit := ri == 0 && off == seg.InitSize
		if ri == 0 && !withInit {
			initBytes, err := c.read(seg, 0, seg.InitSize)
			if err != nil {
				return false, err
			}
			if ok, err := c.takeInit(seg, initBytes); !ok || err != nil {
				return true, err
			}
		}
		if withInit {
			off, length = 0, length+seg.InitSize
		}
		body, err := c.get(seg, off, length)
		if err != nil {
			return false, err
		}
		err = c.playRun(seg, body, run, withInit)
		body.Close()
		if err != nil {
			if errors.Is(err, errInitChanged) {
				return true, nil
			}
			return false, err
		}
	}
	if at := seg.Start.Add(frags[0].Offset); !c.played() {
		c.first = at
	} else if at.Sub(c.prevEnd) > MaxGap {
		c.gaps = append(c.gaps, Gap{Start: c.prevEnd, End: at})
	}
	c.prevEnd = seg.End
	return false, nil
}

var errInitChanged = errors.New("init section changed")

func (c *clip) playRun(seg archive.Segment, body io.Reader, run []archive.Fragment, withInit bool) error {
	if withInit {
		initBytes := make([]byte, seg.InitSize)
		if _, err := io.ReadFull(body, initBytes); err != nil {
			return fmt.Errorf("segment %s: read init section: %w", seg.Key, err)
		}
		ok, err := c.takeInit(seg, initBytes)
		if err != nil {
			return err
		}
		if !ok {
			return errInitChanged
		}
	}
	for _, f := range run {
		buf := make([]byte, f.Size)
		if _, err := io.ReadFull(body, buf); err != nil {
			return fmt.Errorf("segment %s: read fragment at %d: %w", seg.Key, f.Pos, err)
		}
		if err := c.writeFragment(seg, f, buf); err != nil {
			return err
		}
		if err := c.ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

// takeInit adopts the first segment's init section, or checks that a later
// segment's matches it; ok is false when it does not (a new resolution or codec).
func (c *clip) takeInit(seg archive.Segment, b []byte) (ok bool, err error) {
	in, err := fmp4read.ParseInit(b)
	if err != nil {
		return false, fmt.Errorf("segment %s: init section: %w", seg.Key, err)
	}
	if c.init == nil {
		if c.onInit != nil {
			if err := c.onInit(b); err != nil {
				return false, fmt.Errorf("segment %s: init section: %w", seg.Key, err)
			}
		}
		c.init, c.initBytes = in, b
		for _, t := range in.Tracks {
			c.tracks[t.ID] = &clipTrack{timescale: t.Timescale}
		}
		return true, nil
	}
	if !c.init.SameAs(in) {
		c.rv.logger().Info("playback stops where the stream's format changes", "camera", c.camera, "segment", seg.Key)
		return false, nil
	}
	return true, nil
}

func (c *clip) get(seg archive.Segment, off, length int64) (io.ReadCloser, error) {
	if c.spooled[seg.Key] && c.rv.Spool != nil {
		body, ok, err := c.rv.Spool.ReadSpooled(seg.Key, off, length)
		if err != nil {
			return nil, fmt.Errorf("segment %s: spool file: %w", seg.Key, err)
		}
		if ok {
			return body, nil
		}
		c.rv.logger().Debug("playback reads from the store a spooled segment uploaded meanwhile",
			"camera", c.camera, "segment", seg.Key)
	}
	body, err := c.rv.store.Get(c.ctx, seg.Key, off, length)
	if err != nil {
		if errors.Is(err, archive.ErrObjectNotFound) && c.out == 0 {
			return nil, apierr.New(apierr.ErrNotFound, "the recording of %s at %s is no longer in the store",
				c.camera, seg.Start.Format(reviewTimeFormat))
		}
		return nil, storeFailed(c.ctx, fmt.Errorf("segment %s: read %d bytes at %d: %w", seg.Key, length, off, err))
	}
	return &storeBody{ReadCloser: body, ctx: c.ctx, key: seg.Key}, nil
}

func (c *clip) read(seg archive.Segment, off, length int64) ([]byte, error) {
	body, err := c.get(seg, off, length)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	b := make([]byte, length)
	if _, err := io.ReadFull(body, b); err != nil {
		return nil, fmt.Errorf("segment %s: read %d bytes at %d: %w", seg.Key, length, off, err)
	}
	return b, nil
}

const nsPerSecond = uint64(time.Second)

// writeFragment rewrites one moof+mdat onto the output timeline and writes it.
func (c *clip) writeFragment(seg archive.Segment, f archive.Fragment, buf []byte) error {
	if c.onFragment != nil {
		c.out += int64(len(buf))
		return c.onFragment(seg, f, buf)
	}
	m, err := fmp4read.ParseMoof(buf, c.init)
	if err != nil {
		return fmt.Errorf("segment %s: fragment at %d: %w", seg.Key, f.Pos, err)
	}
	for _, t := range m.Trafs {
		if t.BaseTime > math.MaxInt64/2 {
			return fmt.Errorf("segment %s: fragment at %d: decode time %d out of range", seg.Key, f.Pos, t.BaseTime)
		}
	}
	if !c.segMapped {
		// Shift the whole segment by one amount, so that its tracks keep their
		// alignment, placing its earliest track where the output ends now.
		ref := int64(math.MaxInt64)
		for _, t := range m.Trafs {
			ns, err := mulDiv(int64(t.BaseTime), nsPerSecond, uint64(c.tracks[t.TrackID].timescale))
			if err != nil {
				return fmt.Errorf("segment %s: %w", seg.Key, err)
			}
			ref = min(ref, ns)
		}
		var target int64
		for _, tr := range c.tracks {
			ns, err := mulDiv(tr.end, nsPerSecond, uint64(tr.timescale))
			if err != nil {
				return fmt.Errorf("segment %s: %w", seg.Key, err)
			}
			target = max(target, ns)
		}
		c.segShift, c.segMapped = target-ref, true
	}
	times := make([]uint64, len(m.Trafs))
	for i, t := range m.Trafs {
		tr := c.tracks[t.TrackID]
		if !tr.mapped {
			d, err := mulDiv(c.segShift, uint64(tr.timescale), nsPerSecond)
			if err != nil {
				return fmt.Errorf("segment %s: %w", seg.Key, err)
			}
			tr.delta, tr.mapped = d, true
		}
		out := int64(t.BaseTime) + tr.delta
		if out < tr.end { // never go back in time, whatever the source says
			tr.delta += tr.end - out
			out = tr.end
		}
		times[i] = uint64(out)
		tr.end = out + int64(t.Duration)
	}
	c.seq++
	buf, err = fmp4read.RewriteMoof(buf, m, c.seq, times, f.Pos, c.out+int64(len(c.initBytes)))
	if err != nil {
		return fmt.Errorf("segment %s: fragment at %d: %w", seg.Key, f.Pos, err)
	}
	if c.initBytes != nil {
		if err := c.write(c.initBytes); err != nil {
			return err
		}
		c.initBytes = nil
	}
	if err := c.write(buf); err != nil {
		return err
	}
	if c.fl != nil {
		c.fl.Flush()
	}
	return nil
}

func (c *clip) write(b []byte) error {
	n, err := c.w.Write(b)
	c.out += int64(n)
	if err != nil {
		return fmt.Errorf("write clip: %w", err)
	}
	return nil
}
