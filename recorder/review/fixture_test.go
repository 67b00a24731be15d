package review

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/internal/testkit"
	"github.com/vigil-vms/vigil/internal/testkit/synthseg"
	"github.com/vigil-vms/vigil/recorder/archive"
	"github.com/vigil-vms/vigil/recorder/internal/fmp4read"
	"github.com/vigil-vms/vigil/recorder/internal/rectest"
)

// Fixtures of the review tests: real segments encoded by ffmpeg, synthetic
// segments written with mediacommon's fMP4 writer, the index rows that
// describe them, and a store wrapper that counts what is read.

// reviewT0 is the wall-clock start of the fixtures' recordings.
var reviewT0 = time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)

func openReviewIndex(t testing.TB) *archive.Index {
	return rectest.OpenIndex(t, filepath.Join(t.TempDir(), "vigil.db"))
}

// reviewKey is the store key of a segment, as the contract lays it out.
func reviewKey(camera string, start time.Time) string {
	s := start.UTC()
	return fmt.Sprintf("%s/%04d/%02d/%02d/%02d-%02d-%02d.%03d.mp4", camera, s.Year(), s.Month(), s.Day(),
		s.Hour(), s.Minute(), s.Second(), s.Nanosecond()/1e6)
}

// describeReviewSegment builds the index row of a segment file starting at start:
// the init size, and each fragment's position, size, time and keyframe flag,
// timed by the first video track.
func describeReviewSegment(t testing.TB, camera string, start time.Time, b []byte) archive.Segment {
	t.Helper()
	top, err := fmp4read.Boxes(b, 0, len(b))
	if err != nil {
		t.Fatalf("describe segment: %v", err)
	}
	seg := archive.Segment{Camera: camera, Start: start, Bytes: int64(len(b)), Key: reviewKey(camera, start)}
	var in *fmp4read.Init
	var video *fmp4read.Track
	var first uint64
	var end time.Duration
	for i, bx := range top {
		switch bx.Type {
		case "moov":
			seg.InitSize = int64(bx.End)
			if in, err = fmp4read.ParseInit(b[:bx.End]); err != nil {
				t.Fatalf("describe segment: %v", err)
			}
			for j := range in.Tracks {
				if in.Tracks[j].Handler == "vide" {
					video = &in.Tracks[j]
					break
				}
			}
		case "moof":
			if i+1 >= len(top) || top[i+1].Type != "mdat" || video == nil {
				t.Fatalf("describe segment: moof at %d without mdat or video track", bx.Start)
			}
			m, err := fmp4read.ParseMoof(b[bx.Start:top[i+1].End], in)
			if err != nil {
				t.Fatalf("describe segment: %v", err)
			}
			for _, tr := range m.Trafs {
				if tr.TrackID != video.ID {
					continue
				}
				if len(seg.Fragments) == 0 {
					first = tr.BaseTime
				}
				ts := time.Duration(video.Timescale)
				off := time.Duration(tr.BaseTime-first) * time.Second / ts
				seg.Fragments = append(seg.Fragments, archive.Fragment{
					Offset: off, Pos: int64(bx.Start), Size: int64(top[i+1].End - bx.Start), Keyframe: tr.FirstKey,
				})
				end = off + time.Duration(tr.Duration)*time.Second/ts
			}
		}
	}
	if len(seg.Fragments) == 0 {
		t.Fatal("describe segment: no fragment")
	}
	seg.End = start.Add(end)
	return seg
}

// reviewFFmpegSpec is one run of ffmpeg that makes contiguous segments.
type reviewFFmpegSpec struct {
	Size     string // e.g. 320x180
	Seconds  int
	SegEvery int    // seconds per segment
	Bitrate  string // video bitrate; it defaults to 300k
}

var reviewFFmpegCache sync.Map // spec → [][]byte

// reviewFFmpegSegments encodes real H.264 (keyframe every 2 s, 1 s fragments, so
// every other fragment starts with a keyframe) with AAC audio and cuts it into
// self-contained fMP4 segments, as a camera recorder would.
func reviewFFmpegSegments(t testing.TB, spec reviewFFmpegSpec) [][]byte {
	t.Helper()
	rectest.RequireFFmpeg(t)
	if v, ok := reviewFFmpegCache.Load(spec); ok {
		return v.([][]byte)
	}
	bitrate := spec.Bitrate
	if bitrate == "" {
		bitrate = "300k"
	}
	segs := testkit.FFmpegSegments(t, spec.SegEvery,
		"-f", "lavfi", "-i", "testsrc2=size="+spec.Size+":rate=25",
		"-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000",
		"-t", fmt.Sprint(spec.Seconds),
		"-c:v", "libx264", "-preset", "veryfast", "-profile:v", "baseline", "-pix_fmt", "yuv420p",
		"-g", "50", "-keyint_min", "50", "-sc_threshold", "0", "-bf", "0", "-b:v", bitrate,
		"-x264-params", "repeat-headers=1",
		"-c:a", "aac", "-b:a", "32k", "-ac", "1")
	reviewFFmpegCache.Store(spec, segs)
	return segs
}

// addReviewSegments puts the files in the store and their rows in the index, back to
// back from start with gap between them; it returns the rows.
func addReviewSegments(t testing.TB, st archive.Store, ix *archive.Index, camera string, start time.Time, gap time.Duration, files [][]byte) []archive.Segment {
	t.Helper()
	ctx := context.Background()
	var out []archive.Segment
	at := start
	for _, b := range files {
		seg := describeReviewSegment(t, camera, at, b)
		if err := st.Put(ctx, seg.Key, bytes.NewReader(b), int64(len(b)), nil); err != nil {
			t.Fatal(err)
		}
		if err := ix.Add(ctx, seg); err != nil {
			t.Fatal(err)
		}
		out = append(out, seg)
		at = seg.End.Add(gap)
	}
	return out
}

// syntheticReviewSegment writes a segment of the given length: 25 fps video
// at 90 kHz, a keyframe every 2 s, one fragment per GOP, payload bytes per
// frame (tiny payloads, realistic structure). The first sample's decode time
// is base, as after a recorder restart.
func syntheticReviewSegment(t testing.TB, length time.Duration, payload int, base uint64) []byte {
	t.Helper()
	return synthseg.H264(t, synthseg.Spec{Length: length, FragmentFrames: 50, Payload: payload, Base: base})
}

// reviewCountingStore counts the calls and bytes read through a Store.
type reviewCountingStore struct {
	archive.Store
	gets  atomic.Int64
	bytes atomic.Int64
	mu    sync.Mutex
	log   []string // "key offset length" of each Get
}

func (c *reviewCountingStore) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	c.gets.Add(1)
	c.mu.Lock()
	c.log = append(c.log, fmt.Sprintf("%s %d %d", key, offset, length))
	c.mu.Unlock()
	rc, err := c.Store.Get(ctx, key, offset, length)
	if err != nil {
		return nil, err
	}
	return &reviewCountingBody{ReadCloser: rc, n: &c.bytes}, nil
}

type reviewCountingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *reviewCountingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

func newReviewLocalStore(t testing.TB) *archive.LocalStore {
	t.Helper()
	st, err := archive.NewLocalStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return st
}
