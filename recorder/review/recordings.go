package review

import (
	"context"
	"fmt"
	"time"
)

// Recordings returns the camera's segments that overlap [start, end) and the
// spans of continuous recording they form: segments less than MaxGap apart
// merge into one span, so a gap in recording is a gap between spans. Spans
// and segments keep their recorded bounds (they are not clipped to the
// range). It reads the index only, and the recorder's spool view when
// Spool is set: the segments still on local disk count too, the one being
// written up to its last written fragment. A range with nothing recorded, or a camera
// the index does not know, answers empty lists; the range is limited to
// MaxRecordingsRange.
func (rv *Review) Recordings(ctx context.Context, camera string, start, end time.Time) (Recordings, error) {
	out := Recordings{Spans: []Span{}, Segments: []SegmentInfo{}}
	if err := checkCamera(camera); err != nil {
		return out, err
	}
	if err := checkRange("the recordings query", start, end, MaxRecordingsRange); err != nil {
		return out, err
	}
	sp, err := rv.spooled(ctx, camera, start, end) // before the index: see mergeSpooled
	if err != nil {
		return out, fmt.Errorf("recordings of %s: %w", camera, err)
	}
	segs, err := rv.ix.Segments(ctx, camera, start, end, false)
	if err != nil {
		return out, fmt.Errorf("recordings of %s: %w", camera, err)
	}
	segs = mergeSpooled(segs, sp, nil)
	for _, s := range segs {
		out.Segments = append(out.Segments, SegmentInfo{Start: s.Start, End: s.End, Bytes: s.Bytes})
		if n := len(out.Spans); n > 0 && s.Start.Sub(out.Spans[n-1].End) < MaxGap {
			if s.End.After(out.Spans[n-1].End) {
				out.Spans[n-1].End = s.End
			}
			continue
		}
		out.Spans = append(out.Spans, Span{Start: s.Start, End: s.End})
	}
	return out, nil
}
