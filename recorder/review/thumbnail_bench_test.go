package review

import (
	"context"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/internal/procstat"
)

// BenchmarkThumbnail measures the server's cost of one timeline thumbnail
// over real 1280x720 H.264 at 2 Mbit/s with AAC audio (a keyframe every 2 s,
// 1 s fragments, 10 s segments): the process's CPU time per thumbnail
// (cpu-µs/op, from /proc; ns/op is the wall time of one request), the bytes
// read from the store (read-B/op) and the bytes sent (mp4-B/op), against the
// keyframe's 1 s fragment, which a playback would read (frag-B/op). The
// index is SQLite and the store a local directory, as in a single-node
// installation:
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
	cpu0, cpuErr := procstat.CPU("self")
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
	if cpu1, err := procstat.CPU("self"); err == nil && cpuErr == nil {
		b.ReportMetric(float64((cpu1-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
	}
	b.ReportMetric(float64(read)/float64(b.N), "read-B/op")
	b.ReportMetric(float64(sent)/float64(b.N), "mp4-B/op")
	b.ReportMetric(float64(fragBytes)/float64(frags), "frag-B/op")
}
