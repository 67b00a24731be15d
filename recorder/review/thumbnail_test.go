package review

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/internal/apierr"
	"github.com/vigil-vms/vigil/internal/testkit"
	"github.com/vigil-vms/vigil/recorder/internal/fmp4read"
	"github.com/vigil-vms/vigil/recorder/internal/rectest"
)

// decodeFirstFrame decodes the first video frame of an MP4 with ffmpeg into
// raw 8-bit grey pixels, and reports how many frames ffprobe counts in it
// and their size.
func decodeFirstFrame(t *testing.T, mp4 []byte) (pixels []byte, frames, width, height string) {
	t.Helper()
	name := testkit.TempFile(t, "in.mp4", mp4)
	var stderr bytes.Buffer
	probe := exec.Command("ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=nb_read_frames,width,height", "-of", "default=nw=1", name)
	probe.Stderr = &stderr
	out, err := probe.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("ffprobe: %v: %s", err, stderr.String())
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		k, v, _ := strings.Cut(line, "=")
		switch k {
		case "nb_read_frames":
			frames = v
		case "width":
			width = v
		case "height":
			height = v
		}
	}
	dec := exec.Command("ffmpeg", "-v", "error", "-i", name, "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "gray", "-")
	dec.Stderr = &stderr
	if pixels, err = dec.Output(); err != nil || len(pixels) == 0 {
		t.Fatalf("ffmpeg decode: %v: %s", err, stderr.String())
	}
	return pixels, frames, width, height
}

// TestThumbnailIsTheKeyframeOfTheMoment checks, over real H.264 segments
// with audio, that a thumbnail is one decodable frame of the video's size,
// the keyframe at or before the moment (pixel for pixel the first frame a
// playback from that moment shows, and not its neighbour's), read with a
// fraction of the fragment's bytes.
func TestThumbnailIsTheKeyframeOfTheMoment(t *testing.T) {
	files := reviewFFmpegSegments(t, reviewFFmpegSpec{Size: "320x180", Seconds: 20, SegEvery: 4})
	st, ix := newReviewLocalStore(t), openReviewIndex(t)
	segs := addReviewSegments(t, st, ix, "police-007", reviewT0, 0, files)
	counting := &reviewCountingStore{Store: st}
	rv := NewReview(counting, ix, nil)
	ctx := context.Background()

	var previous []byte
	for _, at := range []time.Duration{500 * time.Millisecond, 2500 * time.Millisecond, 5500 * time.Millisecond,
		8 * time.Second, 13900 * time.Millisecond, 19500 * time.Millisecond} {
		t.Run(at.String(), func(t *testing.T) {
			moment := reviewT0.Add(at)
			before := counting.bytes.Load()
			th, err := rv.Thumbnail(ctx, "police-007", moment)
			if err != nil {
				t.Fatal(err)
			}
			// The index keeps times to the microsecond.
			if want := rectest.KeyframeAtOrBefore(segs, moment); th.Time.Sub(want).Abs() > time.Millisecond {
				t.Fatalf("thumbnail of %s is the keyframe at %s, want %s", moment, th.Time, want)
			}
			if !th.Final {
				t.Error("a thumbnail from an indexed segment is not marked final")
			}
			if got := counting.bytes.Load() - before; got != th.ReadBytes {
				t.Errorf("the store gave %d bytes, the thumbnail counts %d", got, th.ReadBytes)
			}
			top, err := fmp4read.Boxes(th.MP4, 0, len(th.MP4))
			if err != nil || len(top) != 4 || top[0].Type != "ftyp" || top[1].Type != "moov" || top[2].Type != "moof" || top[3].Type != "mdat" {
				t.Fatalf("thumbnail boxes %v (%v), want ftyp moov moof mdat", top, err)
			}
			in, err := fmp4read.ParseInit(th.MP4[:top[1].End])
			if err != nil || len(in.Tracks) != 1 || in.Tracks[0].Handler != "vide" {
				t.Fatalf("thumbnail init: %+v, %v; want the video track alone", in, err)
			}
			// The fragment it came from, to compare the bytes read with.
			var fragSize int64
			for _, s := range segs {
				for _, f := range s.Fragments {
					if s.Start.Add(f.Offset).Sub(th.Time).Abs() <= time.Millisecond {
						fragSize = f.Size
					}
				}
			}
			if th.ReadBytes >= fragSize+int64(len(th.MP4)) || th.ReadBytes > int64(len(th.MP4))+thumbHeadBytes+4096 {
				t.Errorf("read %d bytes for a thumbnail of %d from a fragment of %d", th.ReadBytes, len(th.MP4), fragSize)
			}
			pixels, frames, w, h := decodeFirstFrame(t, th.MP4)
			if frames != "1" || w != "320" || h != "180" {
				t.Fatalf("ffprobe: %s frames of %sx%s, want 1 of 320x180", frames, w, h)
			}
			want, _, _, _ := decodeFirstFrame(t, rectest.Play(t, rv, "police-007", moment, time.Second))
			if !bytes.Equal(pixels, want) {
				t.Fatal("the thumbnail's frame differs from the first frame a playback from the same moment shows")
			}
			if previous != nil && bytes.Equal(pixels, previous) {
				t.Fatal("the thumbnails of two different keyframes have the same pixels: the comparison proves nothing")
			}
			previous = pixels
		})
	}
}

func TestThumbnailRefusals(t *testing.T) {
	st, ix := newReviewLocalStore(t), openReviewIndex(t)
	addReviewSegments(t, st, ix, "police-007", reviewT0, 5*time.Second, [][]byte{
		syntheticReviewSegment(t, 4*time.Second, 100, 0),
		syntheticReviewSegment(t, 4*time.Second, 100, 0),
	})
	rv := NewReview(st, ix, nil)
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		camera string
		at     time.Time
		kind   error
	}{
		{"no camera", "", reviewT0, apierr.ErrInvalid},
		{"no time", "police-007", time.Time{}, apierr.ErrInvalid},
		{"implausible time", "police-007", time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC), apierr.ErrInvalid},
		{"before the recording", "police-007", reviewT0.Add(-time.Second), apierr.ErrNotFound},
		{"in a gap", "police-007", reviewT0.Add(6 * time.Second), apierr.ErrNotFound},
		{"another camera", "police-008", reviewT0.Add(time.Second), apierr.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := rv.Thumbnail(ctx, tc.camera, tc.at)
			if !errors.Is(err, tc.kind) {
				t.Fatalf("err = %v, want %v", err, tc.kind)
			}
		})
	}
	// The synthetic segments' keyframes are every 2 s: one after the gap.
	th, err := rv.Thumbnail(ctx, "police-007", reviewT0.Add(9*time.Second+500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if want := reviewT0.Add(9 * time.Second); !th.Time.Equal(want) {
		t.Fatalf("thumbnail at %s, want the keyframe at %s", th.Time, want)
	}
}
