package ui

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/internal/testkit/synthseg"
	"github.com/vigil-vms/vigil/internal/testkit/testdb"
	"github.com/vigil-vms/vigil/recorder/archive"
	"github.com/vigil-vms/vigil/recorder/review"
)

// countingStore counts the reads of a store.
type countingStore struct {
	archive.Store
	gets atomic.Int64
}

func (c *countingStore) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	c.gets.Add(1)
	return c.Store.Get(ctx, key, offset, length)
}

// recordedSegment is a 10 s segment as the recorder writes it: 25 fps H.264
// at 90 kHz, 1 s fragments and a keyframe every 2 s, so every other fragment
// begins with one, frames of payload bytes.
func recordedSegment(t *testing.T, payload int) []byte {
	t.Helper()
	return synthseg.H264(t, synthseg.Spec{Length: 10 * time.Second, FragmentFrames: 25, Payload: payload})
}

// realReview stores a recorded segment of camera police-1 from fixtureT0 in
// a local store, indexes it with archive.Reindex and returns a
// review.Review over both.
func realReview(t *testing.T) (*review.Review, *archive.Index, *countingStore) {
	t.Helper()
	local, ix := storedSegment(t, "police-1", recordedSegment(t, 64))
	st := &countingStore{Store: local}
	return review.NewReview(st, ix, nil), ix, st
}

// realRecording is a fixture over realReview and the indexed segment (with
// its fragments) that it plays.
func realRecording(t *testing.T) (*fixture, archive.Segment, *countingStore) {
	t.Helper()
	rv, ix, st := realReview(t)
	f := newFixtureReview(t, Options{}, rv)
	segs, err := ix.Segments(context.Background(), "police-1", fixtureT0, fixtureT0.Add(time.Minute), true)
	if err != nil || len(segs) != 1 {
		t.Fatalf("index: %d segments, %v", len(segs), err)
	}
	return f, segs[0], st
}

// keyframeAt is the start of seg's last keyframe fragment at or before at,
// as the index knows it.
func keyframeAt(seg archive.Segment, at time.Time) time.Time {
	var kf time.Time
	for _, fr := range seg.Fragments {
		if t := seg.Start.Add(fr.Offset); fr.Keyframe && !t.After(at) {
			kf = t
		}
	}
	return kf
}

// storedSegment puts segment b of camera from fixtureT0 into a new local
// store and indexes it with archive.Reindex.
func storedSegment(t *testing.T, camera string, b []byte) (*archive.LocalStore, *archive.Index) {
	t.Helper()
	dir := t.TempDir()
	local, err := archive.NewLocalStore(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := local.Put(ctx, archive.SegmentKey(camera, fixtureT0), bytes.NewReader(b), int64(len(b)), nil); err != nil {
		t.Fatal(err)
	}
	ix, err := archive.OpenIndex(ctx, testdb.OpenSQLite(t, filepath.Join(dir, "index.db")))
	if err != nil {
		t.Fatal(err)
	}
	if n, err := archive.Reindex(ctx, local, ix); err != nil || n != 1 {
		t.Fatalf("reindex: %d segments, %v", n, err)
	}
	return local, ix
}

// TestPlaybackStartHeader plays a real recording through the API: the
// X-Vigil-Start header of GET and HEAD names the wall-clock time of the
// clip's first fragment, the keyframe at or before start; HEAD reads
// nothing from the store and is not audited.
func TestPlaybackStartHeader(t *testing.T) {
	f, seg, st := realRecording(t)
	keyframes := 0
	for _, fr := range seg.Fragments {
		if fr.Keyframe {
			keyframes++
		}
	}
	if keyframes < 4 || len(seg.Fragments) < 2*keyframes-1 {
		t.Fatalf("segment has %d fragments, %d with a keyframe: want 1 s fragments and 2 s GOPs", len(seg.Fragments), keyframes)
	}
	for _, off := range []time.Duration{0, 500 * time.Millisecond, 3300 * time.Millisecond,
		seg.Fragments[4].Offset, seg.Fragments[5].Offset + 200*time.Millisecond, 9900 * time.Millisecond} {
		start := fixtureT0.Add(off)
		t.Run(fmt.Sprint(off), func(t *testing.T) {
			want := keyframeAt(seg, start)
			if want.IsZero() {
				t.Fatalf("no keyframe at or before %s", start)
			}
			path := "/api/v1/cameras/police-1/playback?" + url.Values{
				"start": {start.Format(time.RFC3339Nano)}, "duration": {"3s"}}.Encode()

			before := st.gets.Load()
			audits := f.auditRows("playback")
			rec := f.do(req{method: "HEAD", path: path, who: pOperator})
			if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "video/mp4" {
				t.Fatalf("HEAD %d %v %s", rec.Code, rec.Header(), rec.Body)
			}
			head, err := time.Parse(time.RFC3339Nano, rec.Header().Get(StartHeader))
			if err != nil {
				t.Fatalf("HEAD %s: %v", StartHeader, err)
			}
			if !head.Equal(want) || head.After(start) {
				t.Fatalf("HEAD %s %s, want the first fragment's time %s (start %s)", StartHeader,
					head.Format(time.RFC3339Nano), want.Format(time.RFC3339Nano), start.Format(time.RFC3339Nano))
			}
			if n := st.gets.Load() - before; n != 0 {
				t.Fatalf("HEAD read the store %d times", n)
			}
			if n := f.auditRows("playback") - audits; n != 0 {
				t.Fatalf("HEAD wrote %d playback audit rows", n)
			}

			rec = f.do(req{method: "GET", path: path, who: pOperator})
			if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "video/mp4" {
				t.Fatalf("GET %d %v %s", rec.Code, rec.Header(), rec.Body)
			}
			if got := rec.Header().Get(StartHeader); got != want.UTC().Format(time.RFC3339Nano) {
				t.Fatalf("GET %s %q, want %s", StartHeader, got, want.UTC().Format(time.RFC3339Nano))
			}
			if body := rec.Body.Bytes(); len(body) < 8 || string(body[4:8]) != "ftyp" {
				t.Fatalf("GET body does not begin with ftyp: % x", body[:min(len(body), 16)])
			}
			if n := f.auditRows("playback") - audits; n != 1 {
				t.Fatalf("GET wrote %d playback audit rows, want 1", n)
			}
		})
	}

	// Nothing recorded: 404 for HEAD and GET alike, without the header.
	for _, m := range []string{"HEAD", "GET"} {
		rec := f.do(req{method: m, path: "/api/v1/cameras/police-1/playback?start=2026-11-26T09:00:00Z&duration=60s", who: pOperator})
		if rec.Code != http.StatusNotFound || rec.Header().Get(StartHeader) != "" {
			t.Fatalf("%s where nothing was recorded: %d %v", m, rec.Code, rec.Header())
		}
	}
}
