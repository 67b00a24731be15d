package review

import (
	"context"
	"io"
	"sort"
	"time"

	"github.com/vigil-vms/vigil/recorder/archive"
)

// Spooled is what the review side needs of the recorder to show recordings
// that are still on its local disk: the segment being written and the closed
// segments waiting for upload (during a storage outage, possibly hours of
// them). *recorder.Recorder implements it; this package does not import it.
type Spooled interface {
	// Spooled returns the camera's segments on local disk that overlap
	// [start, end), oldest first, each with its future store key and the
	// fragments completely written so far.
	Spooled(camera string, start, end time.Time) []archive.Segment
	// Pin keeps a segment's spool file until unpin is called, even if it is
	// uploaded meanwhile.
	Pin(key string) (unpin func())
	// ReadSpooled reads length bytes at off of a segment's spool file; ok is
	// false when the spool no longer holds it (uploaded and removed before it
	// was pinned): the reader reads the store instead.
	ReadSpooled(key string, off, length int64) (rc io.ReadCloser, ok bool, err error)
}

// The review side joins the index with the recorder's spool (Review.Spool).
// The spool is asked first, then the index: an upload stores the object,
// adds the index row, and only then removes the spool file, so a segment
// uploaded between the two questions is seen twice rather than not at all,
// and a segment seen twice (same key) is reported once, from the index.
//
// A spooled segment (a clip remembers which segments it took from the
// spool) is read from its file while pinned; a file that went between the
// listing and the pin was uploaded, and is read from the store under the same
// key (the object is the file, byte for byte).

// spooled returns the spool's segments overlapping [start, end) that the
// index would show under ctx (archive.Index.Visible: of the camera's current
// incarnation, and of the caller's departments); none when the review has
// no spool.
func (rv *Review) spooled(ctx context.Context, camera string, start, end time.Time) ([]archive.Segment, error) {
	if rv.Spool == nil {
		return nil, nil
	}
	sp := rv.Spool.Spooled(camera, start, end)
	out := sp[:0]
	for _, s := range sp {
		ok, err := rv.ix.Visible(ctx, camera, s.Start)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, s)
		}
	}
	return out, nil
}

// mergeSpooled returns the index rows and the spooled segments that the
// index does not hold (by key), sorted by start. The keys of the spooled
// segments taken are set in mark, when not nil.
func mergeSpooled(indexed, spooled []archive.Segment, mark map[string]bool) []archive.Segment {
	if len(spooled) == 0 {
		return indexed
	}
	keys := make(map[string]bool, len(indexed))
	for _, s := range indexed {
		keys[s.Key] = true
	}
	out := indexed
	for _, s := range spooled {
		if !keys[s.Key] {
			out = append(out, s)
			if mark != nil {
				mark[s.Key] = true
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}

// segmentAt returns, with its fragments, the camera's segment that contains
// t (Start <= t < End), indexed or spooled; the latest starting one when
// several do. The key of a spooled one is set in mark.
func (rv *Review) segmentAt(ctx context.Context, camera string, t time.Time, mark map[string]bool) (archive.Segment, bool, error) {
	sp, err := rv.spooled(ctx, camera, t, t.Add(1))
	if err != nil {
		return archive.Segment{}, false, err
	}
	seg, ok, err := rv.ix.SegmentAt(ctx, camera, t)
	if err != nil {
		return archive.Segment{}, false, err
	}
	for _, s := range sp {
		if s.Start.After(t) || !s.End.After(t) || (ok && (s.Key == seg.Key || !s.Start.After(seg.Start))) {
			continue
		}
		seg, ok = s, true
		mark[s.Key] = true
	}
	return seg, ok, nil
}

// segmentsAfter returns, with their fragments, up to limit of the camera's
// segments, indexed or spooled, that start in (after, before), oldest first.
// The keys of the spooled ones are set in mark.
func (rv *Review) segmentsAfter(ctx context.Context, camera string, after, before time.Time, limit int, mark map[string]bool) ([]archive.Segment, error) {
	all, err := rv.spooled(ctx, camera, after, before)
	if err != nil {
		return nil, err
	}
	var sp []archive.Segment
	for _, s := range all {
		if s.Start.After(after) && s.Start.Before(before) {
			sp = append(sp, s)
		}
	}
	segs, err := rv.ix.SegmentsAfter(ctx, camera, after, before, limit)
	if err != nil {
		return nil, err
	}
	segs = mergeSpooled(segs, sp, mark)
	if len(segs) > limit {
		segs = segs[:limit]
	}
	return segs, nil
}

// pinSegment pins a segment for the time it is read: in the store against
// retention (Review's pin), and a spooled one's file against its removal
// after upload. The returned function unpins.
func (rv *Review) pinSegment(seg archive.Segment, spooled bool) (unpin func()) {
	var fns []func()
	if rv.pin != nil {
		if f := rv.pin(seg.Key); f != nil {
			fns = append(fns, f)
		}
	}
	if spooled && rv.Spool != nil {
		if f := rv.Spool.Pin(seg.Key); f != nil {
			fns = append(fns, f)
		}
	}
	return func() {
		for _, f := range fns {
			f()
		}
	}
}
