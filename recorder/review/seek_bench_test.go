package review

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/internal/testkit"
	"github.com/vigil-vms/vigil/recorder/archive"
)

// BenchmarkSeek measures request → first byte of playable video (the init
// section and the first whole fragment written) at random points of an
// archive of 10 cameras × 7 days of 60 s segments, with the local store and
// with S3 (versitygw on loopback):
//
//	go test -run XXX -bench Seek -benchtime 300x ./recorder/review
//
// The index always holds the whole archive (100,800 rows with fragment
// lists). The local store holds every segment (hard links to one synthetic
// file per camera). Uploading 100,800 objects (4.6 GB) to versitygw takes too
// long on a shared 2-core machine, so the S3 store holds the first day of each
// camera (14,400 objects, about 20 s; fewer hours if a minute is not enough),
// and the S3 points are drawn there; a GET does not depend on how many other
// objects the bucket holds.
func BenchmarkSeek(b *testing.B) {
	const (
		cameras     = 10
		days        = 7
		seekS3Hours = 24
	)
	seg := syntheticReviewSegment(b, time.Minute, 16, 0)
	desc := describeReviewSegment(b, "x", reviewT0, seg)
	ix := openReviewIndex(b)

	begin := time.Now()
	local := newReviewLocalStore(b)
	masters := b.TempDir()
	var keys [][]string // per camera, per minute
	ctx := context.Background()
	for c := 0; c < cameras; c++ {
		camera := fmt.Sprintf("bench-%02d", c)
		var ck []string
		var rows []archive.Segment
		lastDir := ""
		master := filepath.Join(masters, camera+".mp4") // one file per camera: a file has at most 65,000 links
		if err := os.WriteFile(master, seg, 0o644); err != nil {
			b.Fatal(err)
		}
		for m := 0; m < days*24*60; m++ {
			start := reviewT0.Add(time.Duration(m) * time.Minute)
			key := reviewKey(camera, start)
			ck = append(ck, key)
			p := filepath.Join(local.Dir(), filepath.FromSlash(key))
			if d := filepath.Dir(p); d != lastDir {
				if err := os.MkdirAll(d, 0o755); err != nil {
					b.Fatal(err)
				}
				lastDir = d
			}
			if err := os.Link(master, p); err != nil {
				b.Fatal(err)
			}
			row := desc
			row.Camera, row.Key, row.Start, row.End = camera, key, start, start.Add(desc.End.Sub(desc.Start))
			rows = append(rows, row)
		}
		if err := ix.Add(ctx, rows...); err != nil {
			b.Fatal(err)
		}
		keys = append(keys, ck)
	}
	b.Logf("archive: %d cameras × %d days of 60 s segments (%d bytes, %d fragments each): index and local store in %s",
		cameras, days, len(seg), len(desc.Fragments), time.Since(begin).Round(time.Millisecond))

	b.Run("local", func(b *testing.B) {
		benchSeeks(b, NewReview(local, ix, nil), cameras, days*24*time.Hour)
	})
	if testkit.VersitygwBinary() == "" {
		b.Log("versitygw not found: the S3 seeks are not measured")
		return
	}
	// Set up once here: a sub-benchmark's function runs more than once.
	endpoint, access, secret, bucket, _, _ := testkit.StartS3(b)
	s3, err := archive.NewS3Store(ctx, archive.S3Options{Endpoint: endpoint, Bucket: bucket, AccessKey: access, SecretKey: secret})
	if err != nil {
		b.Fatal(err)
	}
	begin = time.Now()
	jobs := make(chan string)
	var wg sync.WaitGroup
	var failed atomic.Value
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for key := range jobs {
				if err := s3.Put(ctx, key, bytes.NewReader(seg), int64(len(seg)), nil); err != nil {
					failed.Store(err)
				}
			}
		}()
	}
	// Hour by hour for every camera, stopping after a minute on a slow machine.
	hours := 0
	for ; hours < seekS3Hours && time.Since(begin) < time.Minute; hours++ {
		for c := 0; c < cameras; c++ {
			for _, key := range keys[c][hours*60 : (hours+1)*60] {
				jobs <- key
			}
		}
	}
	close(jobs)
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatalf("upload: %v", err)
	}
	b.Logf("s3: uploaded %d objects (%d h × %d cameras) in %s", cameras*hours*60, hours, cameras, time.Since(begin).Round(time.Millisecond))
	b.Run("s3", func(b *testing.B) {
		benchSeeks(b, NewReview(s3, ix, nil), cameras, time.Duration(hours)*time.Hour)
	})
}

// firstFragmentWriter notes when the init section and the first fragment
// have been written (Playback writes them as two writes), then stops the playback.
type firstFragmentWriter struct {
	writes int
	at     time.Time
	cancel context.CancelFunc
}

func (w *firstFragmentWriter) Write(p []byte) (int, error) {
	w.writes++
	if w.writes == 2 {
		w.at = time.Now()
		w.cancel()
	}
	return len(p), nil
}

func benchSeeks(b *testing.B, rv *Review, cameras int, span time.Duration) {
	rng := rand.New(rand.NewPCG(1, 2))
	var all, early, late []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		camera := fmt.Sprintf("bench-%02d", rng.IntN(cameras))
		at := reviewT0.Add(time.Duration(rng.Int64N(int64(span - time.Minute))))
		ctx, cancel := context.WithCancel(context.Background())
		w := &firstFragmentWriter{cancel: cancel}
		t0 := time.Now()
		err := rv.Playback(ctx, w, camera, at, 30*time.Second)
		cancel()
		if err != nil && !errors.Is(err, context.Canceled) {
			b.Fatalf("playback %s at %s: %v", camera, at, err)
		}
		if w.at.IsZero() {
			b.Fatalf("playback %s at %s wrote no fragment", camera, at)
		}
		d := w.at.Sub(t0)
		all = append(all, d)
		switch inSeg := at.Sub(reviewT0) % time.Minute; {
		case inSeg < 20*time.Second:
			early = append(early, d)
		case inSeg >= 40*time.Second:
			late = append(late, d)
		}
	}
	b.StopTimer()
	b.ReportMetric(percentileMS(all, 50), "p50-ms")
	b.ReportMetric(percentileMS(all, 95), "p95-ms")
	if len(early) > 0 && len(late) > 0 {
		// Independent of the position inside the segment: compare seeks into
		// its first and last 20 s.
		b.ReportMetric(percentileMS(early, 50), "p50-first20s-ms")
		b.ReportMetric(percentileMS(late, 50), "p50-last20s-ms")
	}
}

func percentileMS(ds []time.Duration, p int) float64 {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (len(s)*p+99)/100 - 1
	return float64(s[max(i, 0)]) / float64(time.Millisecond)
}
