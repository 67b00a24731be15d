package dispatch

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/ingest"
)

// troubledRecorder is a recorder whose writes or uploads fail.
type troubledRecorder struct {
	*part
	problem string
	since   time.Time
	lost    int64
}

func (r *troubledRecorder) RecordingTrouble(string) (string, time.Time, int64) {
	return r.problem, r.since, r.lost
}

// A recorder in trouble shows in the camera's status: recordingError (and
// lastError while the stream has none), since when, and the units it could
// not write, also counted in dropped. The existing keys stay.
func TestStatusShowsRecordingTrouble(t *testing.T) {
	var log []string
	var mu sync.Mutex
	since := time.Date(2026, 11, 29, 15, 0, 0, 0, time.UTC)
	pull := newPart("ingest", &log, &mu)
	rec := &troubledRecorder{part: newPart("recorder", &log, &mu),
		problem: "not recording: the spool cannot be written since 2026-11-29T15:00:00Z: write: no space left on device",
		since:   since, lost: 250}
	d := New(pull, rec)
	cam := ingest.Camera{ID: "a", Name: "x", Enabled: true, Record: false}
	d.Apply(cam)
	st := d.Status(cam)
	if st.LastError != rec.problem || st.RecordingError != rec.problem || !st.RecordingErrorSince.Equal(since) {
		t.Fatalf("status %+v does not explain %q", st, rec.problem)
	}
	if st.Dropped != 250 || st.RecordingDropped != 250 {
		t.Fatalf("dropped %d, recordingDropped %d, want 250", st.Dropped, st.RecordingDropped)
	}
	m, b := asJSONObject(t, st)
	for _, k := range []string{"id", "state", "since", "lastError", "video", "audio", "viewers", "recording", "reconnects", "dropped",
		"recordingError", "recordingErrorSince", "recordingDropped"} {
		if _, ok := m[k]; !ok {
			t.Errorf("no %q in %s", k, b)
		}
	}
	if m["recording"] != false || !strings.Contains(m["lastError"].(string), "no space left") {
		t.Errorf("status %s", b)
	}

	// all well: no new keys, lastError untouched
	rec.problem, rec.since, rec.lost = "", time.Time{}, 0
	b, _ = json.Marshal(d.Status(cam))
	if strings.Contains(string(b), "recordingError") || strings.Contains(string(b), "recordingDropped") || !strings.Contains(string(b), `"lastError":""`) {
		t.Errorf("status without trouble: %s", b)
	}
}
