package metrics

import (
	"testing"
	"time"

	"github.com/vigil-vms/vigil/recorder"
)

type fakeRecorder struct{ st recorder.Status }

func (f fakeRecorder) Status() recorder.Status { return f.st }
func (fakeRecorder) Recording(string) bool     { return true }

// Upload failures, the spool disk's free space and spool write failures
// are metrics, not only log lines.
func TestStorageTroubleMetrics(t *testing.T) {
	gauge := func(st recorder.Status) map[string]float64 {
		t.Helper()
		m := New(Sources{Recorder: fakeRecorder{st}})
		mfs, err := m.Registry().Gather()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]float64{}
		for _, mf := range mfs {
			for _, s := range mf.GetMetric() {
				switch {
				case s.GetGauge() != nil:
					out[mf.GetName()] = s.GetGauge().GetValue()
				case s.GetCounter() != nil:
					out[mf.GetName()] = s.GetCounter().GetValue()
				}
			}
		}
		return out
	}
	since := time.Now().Add(-90 * time.Second)
	got := gauge(recorder.Status{LastUploadError: "S3 server x is unreachable", LastUploadErrorAt: time.Unix(1_800_000_000, 0),
		UploadFailingSince: since, SpoolDiskFree: 5 << 30, SpoolWriteFailing: 2, UnitsLost: 300, SpoolBytes: 1})
	if got["vigil_upload_failing"] != 1 || got["vigil_upload_failing_seconds"] < 89 || got["vigil_upload_failing_seconds"] > 200 ||
		got["vigil_upload_last_error_timestamp_seconds"] != 1_800_000_000 || got["vigil_spool_disk_free_bytes"] != 5<<30 ||
		got["vigil_spool_write_failing_cameras"] != 2 || got["vigil_recording_lost_units_total"] != 300 {
		t.Errorf("while failing: %v", got)
	}
	got = gauge(recorder.Status{SpoolDiskFree: -1})
	if _, ok := got["vigil_spool_disk_free_bytes"]; ok || got["vigil_upload_failing"] != 0 || got["vigil_upload_failing_seconds"] != 0 {
		t.Errorf("while all is well (disk not measured): %v", got)
	}
}
