package review

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/internal/apierr"
	"github.com/vigil-vms/vigil/recorder/internal/rectest"
)

// checkExport exports [start, end) and checks it against the playback of the
// same range: same bytes, right size, hash and name.
func checkExport(t *testing.T, rv *Review, camera string, start, end time.Time) []byte {
	t.Helper()
	ex, err := rv.Export(context.Background(), camera, start, end)
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	got, err := io.ReadAll(ex.File)
	if err != nil {
		t.Fatal(err)
	}
	want := rectest.Play(t, rv, camera, start, end.Sub(start))
	if !bytes.Equal(got, want) {
		t.Fatalf("export differs from playback: %d and %d bytes", len(got), len(want))
	}
	sum := sha256.Sum256(got)
	if ex.Size != int64(len(got)) || ex.SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("export says %d bytes, sha256 %s; read %d, %x", ex.Size, ex.SHA256, len(got), sum)
	}
	// Resuming a download seeks.
	if _, err := ex.File.Seek(ex.Size/2, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	tail, err := io.ReadAll(ex.File)
	if err != nil || !bytes.Equal(tail, got[ex.Size/2:]) {
		t.Fatalf("read after seek: %v, %d bytes", err, len(tail))
	}
	if err := ex.File.Close(); err != nil {
		t.Fatal(err)
	}
	if wantName := camera + "_" + start.UTC().Format("20060102T150405Z") + "_" + end.UTC().Format("20060102T150405Z") + ".mp4"; ex.Name != wantName {
		t.Fatalf("name %q, want %q", ex.Name, wantName)
	}
	return got
}

func TestExportLocal(t *testing.T) {
	files := reviewFFmpegSegments(t, reviewFFmpegSpec{Size: "320x180", Seconds: 20, SegEvery: 4})
	st, ix := newReviewLocalStore(t), openReviewIndex(t)
	segs := addReviewSegments(t, st, ix, "police-007", reviewT0, 0, files)
	rv := NewReview(st, ix, nil)
	start, end := reviewT0.Add(5500*time.Millisecond), reviewT0.Add(13*time.Second)

	t.Run("in memory", func(t *testing.T) {
		rep := rectest.Check(t, checkExport(t, rv, "police-007", start, end))
		if want := end.Sub(rectest.KeyframeAtOrBefore(segs, start)).Seconds(); rep.VideoSeconds < want-0.05 || rep.VideoSeconds > want+2.05 {
			t.Fatalf("export lasts %.2fs, want %.2fs + up to one GOP", rep.VideoSeconds, want)
		}
	})
	t.Run("temporary file", func(t *testing.T) {
		rv.TempDir, rv.ExportMemoryBytes = t.TempDir(), 10<<10
		defer func() { rv.TempDir, rv.ExportMemoryBytes = "", 0 }()
		checkExport(t, rv, "police-007", start, end)
		left, err := os.ReadDir(rv.TempDir)
		if err != nil || len(left) != 0 {
			t.Fatalf("temporary files left after Close: %v %v", left, err)
		}
	})
}

func TestExportBadInput(t *testing.T) {
	st, ix := newReviewLocalStore(t), openReviewIndex(t)
	addReviewSegments(t, st, ix, "cam", reviewT0, 0, [][]byte{syntheticReviewSegment(t, 10*time.Second, 50, 0)})
	rv := NewReview(st, ix, nil)
	rv.TempDir, rv.ExportMemoryBytes = t.TempDir(), 1
	cases := []struct {
		name       string
		camera     string
		start, end time.Time
		kind       error
		says       string
	}{
		{"no camera", "", reviewT0, reviewT0.Add(time.Second), apierr.ErrInvalid, "camera is required"},
		{"no start", "cam", time.Time{}, reviewT0, apierr.ErrInvalid, "start is required"},
		{"no end", "cam", reviewT0, time.Time{}, apierr.ErrInvalid, "end is required"},
		{"inverted", "cam", reviewT0.Add(time.Minute), reviewT0, apierr.ErrInvalid, "is not after start"},
		{"empty", "cam", reviewT0, reviewT0, apierr.ErrInvalid, "is not after start"},
		{"over 24 h", "cam", reviewT0, reviewT0.Add(25 * time.Hour), apierr.ErrInvalid, "longer than the limit of 24 hours"},
		{"absurd end", "cam", reviewT0, time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), apierr.ErrInvalid, "not a plausible"},
		{"unknown camera", "nobody", reviewT0, reviewT0.Add(time.Minute), apierr.ErrNotFound, "nothing was recorded between"},
		{"nothing recorded", "cam", reviewT0.Add(time.Hour), reviewT0.Add(2 * time.Hour), apierr.ErrNotFound, "nothing was recorded between 2026-11-26T09:00:00Z and 2026-11-26T10:00:00Z"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := rv.Export(context.Background(), tc.camera, tc.start, tc.end)
			if !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("error %v, want kind %v saying %q", err, tc.kind, tc.says)
			}
		})
	}
	if left, _ := os.ReadDir(rv.TempDir); len(left) != 0 {
		t.Fatalf("failed exports left files: %v", left)
	}
}

// TestReviewS3 plays and exports through the S3 store on a real S3 server
// (versitygw) and gets the same bytes as through the local store.
func TestReviewS3(t *testing.T) {
	files := reviewFFmpegSegments(t, reviewFFmpegSpec{Size: "320x180", Seconds: 20, SegEvery: 4})
	s3, _, _, _ := rectest.StartS3Store(t)
	ix := openReviewIndex(t)
	segs := addReviewSegments(t, s3, ix, "police-007", reviewT0, 0, files)
	local, lix := newReviewLocalStore(t), openReviewIndex(t)
	addReviewSegments(t, local, lix, "police-007", reviewT0, 0, files)

	counted := &reviewCountingStore{Store: s3}
	rv := NewReview(counted, ix, nil)
	checkPlaybackCases(t, rv, "police-007", segs)
	start, end := reviewT0.Add(5500*time.Millisecond), reviewT0.Add(13*time.Second)
	got := checkExport(t, rv, "police-007", start, end)
	want := checkExport(t, NewReview(local, lix, nil), "police-007", start, end)
	if !bytes.Equal(got, want) {
		t.Fatal("S3 and local exports differ")
	}
	if counted.gets.Load() == 0 {
		t.Fatal("nothing was read from S3")
	}
}

// At most MaxExports clips are prepared or downloaded at once: each may be a
// temporary file of up to a day of video. The next one is refused until one
// is closed.
func TestExportLimit(t *testing.T) {
	st, ix := newReviewLocalStore(t), openReviewIndex(t)
	addReviewSegments(t, st, ix, "cam", reviewT0, 0, [][]byte{syntheticReviewSegment(t, 10*time.Second, 50, 0)})
	rv := NewReview(st, ix, nil)
	rv.MaxExports = 2
	ctx := context.Background()
	start, end := reviewT0, reviewT0.Add(5*time.Second)
	a, err := rv.Export(ctx, "cam", start, end)
	if err != nil {
		t.Fatal(err)
	}
	b, err := rv.Export(ctx, "cam", start, end)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rv.Export(ctx, "cam", start, end); !errors.Is(err, apierr.ErrUnavailable) || !strings.Contains(err.Error(), "try again") {
		t.Fatalf("a third export while two are open: %v", err)
	}
	a.File.Close()
	a.File.Close() // twice is harmless: it must not free a second place
	c, err := rv.Export(ctx, "cam", start, end)
	if err != nil {
		t.Fatalf("after one was closed: %v", err)
	}
	if _, err := rv.Export(ctx, "cam", start, end); !errors.Is(err, apierr.ErrUnavailable) {
		t.Fatalf("a double Close freed two places: %v", err)
	}
	// a failed export gives its place back
	b.File.Close()
	if _, err := rv.Export(ctx, "cam", reviewT0.Add(time.Hour), reviewT0.Add(2*time.Hour)); !errors.Is(err, apierr.ErrNotFound) {
		t.Fatalf("nothing recorded: %v", err)
	}
	d, err := rv.Export(ctx, "cam", start, end)
	if err != nil {
		t.Fatalf("after a failed export: %v", err)
	}
	c.File.Close()
	d.File.Close()
}

// An export goes on across gaps in recording, lists them with the parts of
// the range that hold nothing, and holds all that was recorded; a playback
// over the same range stops at the first gap and says so before its first byte.
func TestExportAcrossGaps(t *testing.T) {
	files := reviewFFmpegSegments(t, reviewFFmpegSpec{Size: "320x180", Seconds: 20, SegEvery: 4})
	st, ix := newReviewLocalStore(t), openReviewIndex(t)
	a := addReviewSegments(t, st, ix, "cam", reviewT0, 200*time.Millisecond, files[:2]) // small pauses: continuous
	b := addReviewSegments(t, st, ix, "cam", a[1].End.Add(3*time.Second), 0, files[2:4])
	c := addReviewSegments(t, st, ix, "cam", b[1].End.Add(20*time.Second), 0, files[4:])
	rv := NewReview(st, ix, nil)
	start, end := reviewT0.Add(-5*time.Second), c[0].End.Add(10*time.Second)

	ex, err := rv.Export(context.Background(), "cam", start, end)
	if err != nil {
		t.Fatal(err)
	}
	clip, err := io.ReadAll(ex.File)
	ex.File.Close()
	if err != nil {
		t.Fatal(err)
	}
	rep := rectest.Check(t, clip)
	var recorded time.Duration
	for _, s := range append(append(a, b...), c...) {
		recorded += s.End.Sub(s.Start)
	}
	if got := time.Duration(rep.VideoSeconds * float64(time.Second)); (got - recorded).Abs() > 300*time.Millisecond {
		t.Errorf("export holds %v of video, want the %v recorded", got, recorded)
	}
	if (ex.Recorded - recorded).Abs() > 300*time.Millisecond {
		t.Errorf("export says it holds %v, want %v", ex.Recorded, recorded)
	}
	want := []Gap{{start, reviewT0}, {a[1].End, b[0].Start}, {b[1].End, c[0].Start}, {c[0].End, end}}
	if len(ex.Gaps) != len(want) {
		t.Fatalf("export gaps %v, want %v", ex.Gaps, want)
	}
	for i, g := range ex.Gaps {
		if !g.Start.Equal(want[i].Start) || !g.End.Equal(want[i].End) {
			t.Errorf("gap %d: %v, want %v", i, g, want[i])
		}
	}

	for _, tc := range []struct {
		name        string
		start       time.Time
		dur         time.Duration
		stops       string
		end, resume time.Time
	}{
		{"across a pause and a gap", reviewT0.Add(time.Second), time.Minute, StopsAtGap, a[1].End, b[0].Start},
		{"ends before the gap", reviewT0.Add(time.Second), 5 * time.Second, StopsAtEnd, reviewT0.Add(6 * time.Second), time.Time{}},
		{"past the recording", c[0].Start, time.Minute, StopsAtRecordingEnd, c[0].End, time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pb, err := rv.Open(context.Background(), "cam", tc.start, tc.dur)
			if err != nil {
				t.Fatal(err)
			}
			if pb.Stops != tc.stops || !pb.End.Equal(tc.end) || !pb.Resume.Equal(tc.resume) {
				t.Fatalf("stops %q at %v, resumes %v; want %q at %v, %v", pb.Stops, pb.End, pb.Resume, tc.stops, tc.end, tc.resume)
			}
		})
	}
}
