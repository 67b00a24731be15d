package recorder

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/camsim"
	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/testkit"
	"github.com/vigil-vms/vigil/internal/testkit/simcam"
	"github.com/vigil-vms/vigil/recorder/archive"
	"github.com/vigil-vms/vigil/recorder/internal/rectest"
)

// TestRecordCamsimS3 records two simulated RTSP cameras (H.264 and AAC),
// pulled by the ingest fleet, into a real S3 server for two segments each:
// every object parses as fMP4, starts with a keyframe and matches its index row.
func TestRecordCamsimS3(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time recording")
	}
	checkLeaks(t)
	s3, _, _, _ := rectest.StartS3Store(t)
	recordCamsim(t, "h264", s3)
}

// TestRecordCamsimH265 records two H.265 camsim cameras with audio to the local store.
func TestRecordCamsimH265(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time recording")
	}
	checkLeaks(t)
	store, err := archive.NewLocalStore(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	recordCamsim(t, "h265", store)
}

func recordCamsim(t *testing.T, codec string, store archive.Store) {
	sim := simcam.Start(t, camsim.Options{Count: 2, Codec: codec, Audio: true})
	mgr := ingest.NewFleet(ingest.FleetOptions{Log: testLog(t)})
	testkit.Run(t, mgr.Run)

	dir := t.TempDir()
	ix := openRecIndex(t, filepath.Join(dir, "vigil.db"))
	h := startRecorderFrom(t, Options{Store: store, Index: ix, SpoolDir: filepath.Join(dir, "spool"), SegmentDuration: 2 * time.Second}, mgr)
	cams := []string{"sim-1", "sim-2"}
	for i, id := range cams {
		c := ingest.Camera{ID: id, MainURL: sim.URL(i+1, false), Transport: "tcp", Record: true, Enabled: true}
		mgr.Set(c)
		h.rec.Set(c)
	}
	recWaitFor(t, 30*time.Second, "two segments of each camera", func() bool {
		for _, id := range cams {
			segs, err := ix.Segments(context.Background(), id, time.Unix(0, 0), time.Unix(1<<32, 0), false)
			if err != nil || len(segs) < 2 {
				return false
			}
		}
		return true
	})
	h.stop() // closes and uploads the open segments
	rows := checkRecStored(t, store, ix, cams, false, codec)
	for _, id := range cams {
		segs := rows[id]
		if len(segs) < 3 {
			t.Errorf("%s: %d segments", id, len(segs))
		}
		for i, s := range segs {
			if d := s.End.Sub(s.Start); i < len(segs)-1 && (d < 1900*time.Millisecond || d > 2100*time.Millisecond) {
				t.Errorf("%s segment %d lasts %v", id, i, d)
			}
			if i > 0 && s.Start.Sub(segs[i-1].End).Abs() > 100*time.Millisecond {
				t.Errorf("%s: %v between segments %d and %d", id, s.Start.Sub(segs[i-1].End), i-1, i)
			}
		}
	}
}
