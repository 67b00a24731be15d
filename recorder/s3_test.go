package recorder

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/vigil-vms/vigil/internal/testkit"
	"github.com/vigil-vms/vigil/recorder/archive"
	"github.com/vigil-vms/vigil/recorder/internal/rectest"
)

func TestRecordS3(t *testing.T) {
	checkLeaks(t)
	endpoint, access, secret, bucket, _, _ := testkit.StartS3(t)
	dir := t.TempDir()
	store := rectest.NewS3Store(t, endpoint, access, secret, bucket)
	h := startLocal(t, dir, Options{Store: store, SegmentDuration: 4 * time.Second})
	cams := []string{"cam-1", "cam-2"}
	for i, id := range cams {
		st, c := h.camera(id, i == 1, recT0)
		c.feedUntil(st, 8500*time.Millisecond)
		st.Close()
	}
	testkit.WaitFor(t, 20*time.Second, "uploads", func() bool {
		s := h.rec.Status()
		return s.Uploaded == 6 && s.Waiting == 0
	})
	rows := checkRecStored(t, store, h.ix, cams, true, "h264")
	cl, err := minio.New(endpoint, &minio.Options{Creds: credentials.NewStaticV4(access, secret, ""), Region: "us-east-1", BucketLookup: minio.BucketLookupPath})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range cams {
		if len(rows[id]) != 3 {
			t.Fatalf("%s: %d segments, want 3", id, len(rows[id]))
		}
		for _, s := range rows[id] {
			info, err := cl.StatObject(context.Background(), bucket, s.Key, minio.StatObjectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if info.Size != s.Bytes || info.UserMetadata["Start"] != s.Start.Format(time.RFC3339Nano) ||
				info.UserMetadata["End"] != s.End.Format(time.RFC3339Nano) || info.UserMetadata["Duration"] == "" {
				t.Errorf("%s: size %d, metadata %v; row %+v", s.Key, info.Size, info.UserMetadata, s)
			}
		}
	}
	ix2 := rectest.NewIndex(t)
	if n, err := archive.Reindex(context.Background(), store, ix2); err != nil || n != 6 {
		t.Fatalf("reindex: %d, %v", n, err)
	}
	h.stop()
}

// TestS3Outage stops the S3 server for 30 s of a camera recorded in real time
// (the outage of issue 5), while seven 4 s segments close, then restarts it:
// every segment arrives, in order, none lost.
func TestS3Outage(t *testing.T) {
	checkLeaks(t)
	const seg = 4 * time.Second
	const outage = 30 * time.Second
	store, _, stop, restart := rectest.StartS3Store(t)
	dir := t.TempDir()
	h := startLocal(t, dir, Options{Store: store,
		SegmentDuration: seg, UploadRetryMax: 2 * time.Second})
	st, c := h.camera("cam-1", true, recT0)
	c.feedUntil(st, 4500*time.Millisecond)
	testkit.WaitFor(t, 10*time.Second, "the first upload", func() bool { return h.rec.Status().Uploaded == 1 })

	// the store is down for 30 s of real time, while the segments ending at 8 s ... 32 s close
	stop()
	outageEnd := 4500*time.Millisecond + outage
	c.feedPaced(st, outageEnd)
	waiting := int(outageEnd/seg) - 1
	testkit.WaitFor(t, 20*time.Second, "failed uploads", func() bool {
		s := h.rec.Status()
		return s.Waiting == waiting && s.UploadErrors >= 3
	})
	s := h.rec.Status()
	if !strings.Contains(s.LastUploadError, "unreachable") || s.SpoolBytes == 0 || !h.rec.Recording("cam-1") {
		t.Errorf("status during the outage: %+v, recording %v", s, h.rec.Recording("cam-1"))
	}
	restart()
	end := outageEnd + 500*time.Millisecond
	c.feedUntil(st, end)
	st.Close()
	total := int((end + seg - 1) / seg)
	testkit.WaitFor(t, 30*time.Second, "the uploads after the outage", func() bool {
		s := h.rec.Status()
		return s.Uploaded == int64(total) && s.Waiting == 0
	})
	if s := h.rec.Status(); s.LastUploadError != "" || s.Dropped != 0 {
		t.Errorf("status after the outage: %+v", s)
	}
	rows := checkRecStored(t, store, h.ix, []string{"cam-1"}, true, "h264")["cam-1"]
	if len(rows) != total {
		t.Fatalf("%d segments, want %d", len(rows), total)
	}
	for i, r := range rows {
		if want := recT0.Add(time.Duration(i) * seg); !r.Start.Equal(want) {
			t.Errorf("segment %d starts at %v, want %v", i, r.Start, want)
		}
		if i > 0 && !rows[i-1].End.Equal(r.Start) {
			t.Errorf("gap between segment %d (end %v) and %d (start %v)", i-1, rows[i-1].End, i, r.Start)
		}
	}
	var keys []string
	store.List(context.Background(), "cam-1/", func(o archive.ObjectInfo) error { keys = append(keys, o.Key); return nil })
	if len(keys) != total {
		t.Errorf("store holds %v", keys)
	}
	h.stop()
}

// TestS3BadCredentials: a wrong secret is reported in a clear sentence while
// recording continues into the spool.
func TestS3BadCredentials(t *testing.T) {
	checkLeaks(t)
	endpoint, access, _, bucket, _, _ := testkit.StartS3(t)
	testStoreRefused(t, rectest.NewS3Store(t, endpoint, access, "wrong-secret-123", bucket), "bad credentials")
}

// TestS3MissingBucket: the bucket is missing and cannot be created (the server
// is read-only): a clear error, recording continues into the spool.
func TestS3MissingBucket(t *testing.T) {
	checkLeaks(t)
	endpoint, access, secret, bucket, _, _ := testkit.StartS3(t, "--readonly")
	testStoreRefused(t, rectest.NewS3Store(t, endpoint, access, secret, bucket), "could not be created")
}

func testStoreRefused(t *testing.T, store *archive.S3Store, want string) {
	dir := t.TempDir()
	h := startLocal(t, dir, Options{Store: store,
		SegmentDuration: 2 * time.Second, ShutdownGrace: time.Second})
	st, c := h.camera("cam-1", false, recT0)
	c.feedUntil(st, 4500*time.Millisecond)
	// the third segment is opened just after the second is closed (and
	// counted waiting): wait for both, or the check below races the cut
	testkit.WaitFor(t, 10*time.Second, "a failed upload", func() bool {
		s := h.rec.Status()
		return s.Waiting == 2 && s.UploadErrors > 0 && h.rec.Recording("cam-1")
	})
	s := h.rec.Status()
	if !strings.Contains(s.LastUploadError, want) {
		t.Errorf("last upload error %q does not say %q", s.LastUploadError, want)
	}
	if !h.rec.Recording("cam-1") || s.SpoolBytes == 0 || s.Uploaded != 0 {
		t.Errorf("status %+v, recording %v", s, h.rec.Recording("cam-1"))
	}
	t.Logf("status error: %s", s.LastUploadError)
	h.stop()
}
