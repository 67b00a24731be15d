package review

import (
	"context"
	"testing"
	"time"
)

// BenchmarkThumbnail measures the server's cost of one timeline thumbnail
// over real 1280x720 H.264 at 2 Mbit/s with AAC audio (a keyframe every 2 s,
// 1 s fragments, 10 s segments): CPU time per thumbnail (ns/op, one
// goroutine), the bytes read from the store (read-B/op) and the bytes sent
// (mp4-B/op), against the 1 s fragment a playback would read (frag-B/op):
//
//	go test -run XXX -bench Thumbnail -benchtime 200x ./recorder/review
func BenchmarkThumbnail(b *testing.B) {
	files := reviewFFmpegSegments(b, reviewFFmpegSpec{Size: "1280x720", Seconds: 30, SegEvery: 10, Bitrate: "2M"})
	st, ix := newReviewLocalStore(b), openReviewIndex(b)
	segs := addReviewSegments(b, st, ix, "bench", reviewT0, 0, files)
	rv := NewReview(st, ix, nil)
	ctx := context.Background()
	span := segs[len(segs)-1].End.Sub(reviewT0)
	var frags, fragBytes int64
	for _, s := range segs {
		for _, f := range s.Fragments {
			if f.Keyframe {
				frags++
				fragBytes += f.Size
			}
		}
	}
	var read, sent int64
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		at := reviewT0.Add(time.Duration(i*7919) * time.Millisecond % span)
		th, err := rv.Thumbnail(ctx, "bench", at)
		if err != nil {
			b.Fatal(err)
		}
		read += th.ReadBytes
		sent += int64(len(th.MP4))
	}
	b.ReportMetric(float64(read)/float64(b.N), "read-B/op")
	b.ReportMetric(float64(sent)/float64(b.N), "mp4-B/op")
	b.ReportMetric(float64(fragBytes)/float64(frags), "frag-B/op")
}
