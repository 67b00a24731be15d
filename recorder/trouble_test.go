package recorder

import (
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/dispatch"
	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/testkit"
	"github.com/vigil-vms/vigil/recorder/internal/rectest"
)

// During an S3 outage the camera is recorded to the spool, and its status
// says so: recording stays true, recordingError explains that uploads fail
// since when and why; Status has UploadFailingSince. Both clear after the
// next successful upload.
func TestUploadTroubleInStatus(t *testing.T) {
	checkLeaks(t)
	store, endpoint, stop, restart := rectest.StartS3Store(t)
	dir := t.TempDir()
	h := startLocal(t, dir, Options{Store: store, SegmentDuration: 4 * time.Second, UploadRetryMax: time.Second})
	d := dispatch.New(nil, h.rec)
	cam := ingest.Camera{ID: "cam-1", Record: true, Enabled: true}
	st, c := h.camera("cam-1", false, recT0)
	c.feedUntil(st, 4500*time.Millisecond)
	testkit.WaitFor(t, 10*time.Second, "the first upload", func() bool { return h.rec.Status().Uploaded == 1 })
	if s := d.Status(cam); s.RecordingError != "" || !s.Recording {
		t.Fatalf("status while all is well: %+v", s)
	}

	stop()
	before := time.Now()
	c.feedUntil(st, 9*time.Second) // a segment closes and cannot be uploaded
	testkit.WaitFor(t, 10*time.Second, "a failed upload", func() bool { return h.rec.Status().UploadErrors > 0 })
	s := d.Status(cam)
	const says = "recording to the spool; uploads to the object store failing since "
	if !s.Recording || !strings.HasPrefix(s.RecordingError, says) || !strings.Contains(s.RecordingError, endpoint+" is unreachable") {
		t.Errorf("camera status during the outage: recording %v, recordingError %q", s.Recording, s.RecordingError)
	}
	if s.LastError != s.RecordingError || s.RecordingErrorSince.Before(before.Add(-time.Second)) {
		t.Errorf("lastError %q, since %v", s.LastError, s.RecordingErrorSince)
	}
	rs := h.rec.Status()
	if rs.UploadFailingSince.IsZero() || !rs.UploadFailingSince.Equal(s.RecordingErrorSince) {
		t.Errorf("UploadFailingSince %v, camera since %v", rs.UploadFailingSince, s.RecordingErrorSince)
	}

	restart()
	c.feedUntil(st, 9500*time.Millisecond)
	st.Close()
	testkit.WaitFor(t, 30*time.Second, "the uploads after the outage", func() bool {
		s := h.rec.Status()
		return s.Waiting == 0 && s.Uploaded >= 3
	})
	if rs := h.rec.Status(); !rs.UploadFailingSince.IsZero() || rs.LastUploadError != "" {
		t.Errorf("after the outage: %+v", rs)
	}
	if p, _, _ := h.rec.RecordingTrouble("cam-1"); p != "" {
		t.Errorf("after the outage: %q", p)
	}
	h.stop()
}

// With the spool's disk full, the camera's status says it is not recorded
// and why, and counts the units it lost; all of that clears when writes work
// again. Writes go to /dev/full, where the kernel answers ENOSPC.
func TestSpoolWriteTroubleInStatus(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	checkLeaks(t)
	dir := t.TempDir()
	h := startLocal(t, dir, Options{SegmentDuration: 4 * time.Second})
	var full atomic.Bool
	h.rec.createFile = func(path string) (*os.File, error) {
		if full.Load() {
			return os.OpenFile("/dev/full", os.O_WRONLY, 0)
		}
		return createSpoolFile(path)
	}
	d := dispatch.New(nil, h.rec)
	cam := ingest.Camera{ID: "cam-1", Record: true, Enabled: true}
	st, c := h.camera("cam-1", false, recT0)
	c.feedUntil(st, 4500*time.Millisecond)
	testkit.WaitFor(t, 5*time.Second, "recording", func() bool { return h.rec.Recording("cam-1") })

	full.Store(true)
	c.feedUntil(st, 20*time.Second) // the next segments cannot be written
	testkit.WaitFor(t, 10*time.Second, "units counted as lost", func() bool {
		_, _, lost := h.rec.RecordingTrouble("cam-1")
		return lost > 100
	})
	s := d.Status(cam)
	if s.Recording || !strings.HasPrefix(s.RecordingError, "not recording: the spool cannot be written since ") ||
		!strings.HasSuffix(s.RecordingError, "no space left on device") || s.LastError != s.RecordingError {
		t.Errorf("camera status with the spool's disk full: recording %v, lastError %q, recordingError %q", s.Recording, s.LastError, s.RecordingError)
	}
	if strings.Contains(s.RecordingError, dir) {
		t.Errorf("the status shows a server path: %q", s.RecordingError)
	}
	if s.Dropped == 0 || s.Dropped != uint64(s.RecordingDropped) {
		t.Errorf("dropped %d, recordingDropped %d", s.Dropped, s.RecordingDropped)
	}
	if rs := h.rec.Status(); rs.SpoolWriteFailing != 1 || rs.UnitsLost != s.RecordingDropped {
		t.Errorf("recorder status: %d cameras failing, %d units lost; camera %d", rs.SpoolWriteFailing, rs.UnitsLost, s.RecordingDropped)
	}

	// space again: after the writer's pause, the next keyframe records
	full.Store(false)
	time.Sleep(writeRetry)
	c.feedUntil(st, 24500*time.Millisecond)
	testkit.WaitFor(t, 5*time.Second, "recording again", func() bool { return h.rec.Recording("cam-1") })
	s = d.Status(cam)
	if s.RecordingError != "" || s.LastError != "" || s.RecordingDropped == 0 {
		t.Errorf("camera status after the disk has space again: %+v", s)
	}
	if rs := h.rec.Status(); rs.SpoolWriteFailing != 0 {
		t.Errorf("recorder status after: %d cameras failing", rs.SpoolWriteFailing)
	}
	st.Close()
	h.stop()
}
