package dispatch

import (
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/ingest"
)

// part is a fake ingest or recorder that logs the calls it gets.
type part struct {
	name string
	log  *[]string
	mu   *sync.Mutex

	cams map[string]ingest.Camera
	// gate, when set, holds Set of the camera named hold until it is closed;
	// entered is closed when that Set has begun.
	hold    string
	entered chan struct{}
	gate    chan struct{}
}

func newPart(name string, log *[]string, mu *sync.Mutex) *part {
	return &part{name: name, log: log, mu: mu, cams: map[string]ingest.Camera{}}
}

func (p *part) Set(c ingest.Camera) {
	p.mu.Lock()
	*p.log = append(*p.log, p.name+".Set "+c.ID+" "+c.Name)
	p.cams[c.ID] = c
	p.mu.Unlock()
	if p.gate != nil && c.Name == p.hold {
		close(p.entered)
		<-p.gate
	}
}

func (p *part) Remove(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	*p.log = append(*p.log, p.name+".Remove "+id)
	delete(p.cams, id)
}

func (p *part) Status(id string) (ingest.Status, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.cams[id]
	if !ok {
		return ingest.Status{}, false
	}
	return ingest.Status{ID: id, StreamStatus: ingest.StreamStatus{State: ingest.StateOnline}, Viewers: len(c.Name)}, true
}

func (p *part) Recording(id string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.cams[id]
	return ok && c.Record && c.Enabled
}

func TestFanOut(t *testing.T) {
	var log []string
	var mu sync.Mutex
	pull, rec := newPart("ingest", &log, &mu), newPart("recorder", &log, &mu)
	d := New(pull, rec)

	d.Load([]ingest.Camera{{ID: "a", Name: "x", Enabled: true, Record: true}, {ID: "b", Name: "y", Enabled: true}})
	d.Apply(ingest.Camera{ID: "a", Name: "x2", Enabled: true, Record: true})
	d.Remove("b")
	want := []string{
		"ingest.Set a x", "recorder.Set a x",
		"ingest.Set b y", "recorder.Set b y",
		"ingest.Set a x2", "recorder.Set a x2",
		// the recorder closes its segment before the ingest closes the streams
		"recorder.Remove b", "ingest.Remove b",
	}
	if !slices.Equal(log, want) {
		t.Fatalf("calls:\n%q\nwant\n%q", log, want)
	}
}

func TestStatus(t *testing.T) {
	var log []string
	var mu sync.Mutex
	pull, rec := newPart("ingest", &log, &mu), newPart("recorder", &log, &mu)
	d := New(pull, rec)
	d.Apply(ingest.Camera{ID: "a", Name: "abc", Enabled: true, Record: true})

	st := d.Status(ingest.Camera{ID: "a", Enabled: true})
	if st.ID != "a" || st.State != ingest.StateOnline || st.Viewers != 3 || !st.Recording {
		t.Fatalf("status %+v", st)
	}
	// the JSON is the contract's one flat object
	m, b := asJSONObject(t, st)
	if m["id"] != "a" || m["state"] != string(ingest.StateOnline) || m["recording"] != true || m["viewers"] != 3.0 {
		t.Fatalf("JSON %s", b)
	}

	for _, tc := range []struct {
		name string
		d    *Dispatcher
		cam  ingest.Camera
		want ingest.State
	}{
		{"not pulled yet", d, ingest.Camera{ID: "new", Enabled: true}, ingest.StateConnecting},
		{"not pulled, disabled", d, ingest.Camera{ID: "new"}, ingest.StateDisabled},
		{"no parts", New(nil, nil), ingest.Camera{ID: "a", Enabled: true}, ingest.StateConnecting},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := tc.d.Status(tc.cam)
			if st.ID != tc.cam.ID || st.State != tc.want || st.Recording {
				t.Fatalf("status %+v, want %s and not recording", st, tc.want)
			}
		})
	}
}

// Two edits of one camera racing each other end with the ingest and the
// recorder holding the same version of it.
func TestConcurrentChangesStayTogether(t *testing.T) {
	var log []string
	var mu sync.Mutex
	pull, rec := newPart("ingest", &log, &mu), newPart("recorder", &log, &mu)
	pull.hold, pull.entered, pull.gate = "first", make(chan struct{}), make(chan struct{})
	d := New(pull, rec)

	firstDone, secondDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(firstDone)
		d.Apply(ingest.Camera{ID: "a", Name: "first"})
	}()
	<-pull.entered // the first edit is inside the ingest
	go func() {
		defer close(secondDone)
		d.Apply(ingest.Camera{ID: "a", Name: "second"})
	}()
	select {
	case <-secondDone:
		// (only without serialization) the second edit went through both parts
	case <-time.After(200 * time.Millisecond):
		// the second edit waits for the first: the expected case
	}
	close(pull.gate)
	<-firstDone
	<-secondDone

	mu.Lock()
	defer mu.Unlock()
	if p, r := pull.cams["a"].Name, rec.cams["a"].Name; p != r {
		t.Fatalf("ingest holds %q, recorder holds %q (calls %q)", p, r, log)
	}
}

// TestStatusJSON checks the contract's field names (moved here from ingest:
// the API's status is the dispatcher's).
func TestStatusJSON(t *testing.T) {
	m := ingest.NewFleet(ingest.FleetOptions{})
	cam := ingest.Camera{ID: "police-007", MainURL: "rtsp://u:secret@10.1.2.3/x", Enabled: true}
	m.Set(cam)
	if _, ok := m.Status("police-007"); !ok {
		t.Fatal("no status")
	}
	st := New(m, nil).Status(cam)
	got, b := asJSONObject(t, st)
	for _, k := range []string{"id", "state", "since", "lastError", "video", "audio", "viewers", "recording", "reconnects", "dropped"} {
		if _, ok := got[k]; !ok {
			t.Errorf("no %q in %s", k, b)
		}
	}
	if _, ok := got["sub"]; ok || got["video"] != nil || got["state"] != "connecting" {
		t.Errorf("status JSON %s", b)
	}
	if strings.Contains(string(b), "secret") {
		t.Errorf("password in %s", b)
	}
}

// asJSONObject marshals v and reads it back as a JSON object, to see the
// fields a client sees; it returns the object and the JSON.
func asJSONObject(t *testing.T, v any) (map[string]any, []byte) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m, b
}
