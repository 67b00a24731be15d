package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/apierr"
)

// fakeCluster: this node is "me"; owners says who runs each camera.
type fakeCluster struct {
	mu     sync.Mutex
	owners map[string]string
	shared map[string][]byte
	calls  []string
}

func (f *fakeCluster) Owner(c string) (string, string, bool, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o := f.owners[c]
	return o, "http://" + o, o == "me", o != ""
}

func (f *fakeCluster) SharedStatus(c string) ([]byte, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.shared[c]
	return b, ok
}

func (f *fakeCluster) record(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, s)
}

func (f *fakeCluster) Put(_ context.Context, c string) error { f.record("Put " + c); return nil }
func (f *fakeCluster) PutAll(_ context.Context, cs []string) error {
	f.record("PutAll " + slices.Concat(cs, nil)[0] + "…")
	return nil
}
func (f *fakeCluster) Delete(_ context.Context, c string) error { f.record("Delete " + c); return nil }

// stopPart is a recorder fake that can stop a camera without disowning it.
type stopPart struct{ *part }

func (p stopPart) Stop(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	*p.log = append(*p.log, p.name+".Stop "+id)
	delete(p.cams, id)
}

// In cluster mode the dispatcher runs only the cameras this node holds:
// Load and Apply announce cameras to the cluster instead of running them,
// Acquired/Lost/Changed start and stop them, a camera that moves is
// stopped without being disowned, and Status answers for the cameras of
// other nodes from their shared status, with the node.
func TestClusterGating(t *testing.T) {
	var log []string
	var mu sync.Mutex
	pull, rec := newPart("ingest", &log, &mu), newPart("recorder", &log, &mu)
	d := New(pull, stopPart{rec})
	reg := map[string]ingest.Camera{
		"a": {ID: "a", Name: "x", Enabled: true, Record: true},
		"b": {ID: "b", Name: "y", Enabled: true, Record: true},
	}
	fc := &fakeCluster{owners: map[string]string{}, shared: map[string][]byte{}}
	d.SetCluster(ClusterOptions{Cluster: fc, Lookup: func(_ context.Context, id string) (ingest.Camera, error) {
		mu.Lock()
		defer mu.Unlock()
		c, ok := reg[id]
		if !ok {
			return c, apierr.New(apierr.ErrNotFound, "no camera %s", id)
		}
		return c, nil
	}})
	took := func() []string {
		mu.Lock()
		defer mu.Unlock()
		out := log
		log = nil
		return out
	}
	d.Load([]ingest.Camera{reg["a"], reg["b"]})
	if got := took(); len(got) != 0 {
		t.Fatalf("Load ran cameras itself: %v", got)
	}
	fc.owners["a"], fc.owners["b"] = "me", "other"
	d.Acquired("a")
	if got, want := took(), []string{"ingest.Set a x", "recorder.Set a x"}; !slices.Equal(got, want) {
		t.Fatalf("acquired: %v, want %v", got, want)
	}
	// an edit here of a camera another node runs is only announced
	d.Apply(ingest.Camera{ID: "b", Name: "y2", Enabled: true, Record: true})
	if got := took(); len(got) != 0 {
		t.Fatalf("Apply of b ran it here: %v", got)
	}
	// a change announced for a camera that runs here is read again
	mu.Lock()
	reg["a"] = ingest.Camera{ID: "a", Name: "x2", Enabled: true, Record: true}
	mu.Unlock()
	d.Changed("a")
	if got, want := took(), []string{"ingest.Set a x2", "recorder.Set a x2"}; !slices.Equal(got, want) {
		t.Fatalf("changed: %v, want %v", got, want)
	}
	d.Changed("b") // not here: nothing
	if got := took(); len(got) != 0 {
		t.Fatalf("Changed of b ran it here: %v", got)
	}

	// statuses: a from here, b from its owner's shared status
	st := d.Status(reg["a"])
	if st.Node != "me" || st.State != ingest.StateOnline || !st.Recording {
		t.Errorf("a: %+v", st)
	}
	fc.shared["b"], _ = json.Marshal(Status{Status: ingest.Status{ID: "b", StreamStatus: ingest.StreamStatus{State: ingest.StateOnline}, Viewers: 3}, Recording: true})
	st = d.Status(reg["b"])
	if st.Node != "other" || st.State != ingest.StateOnline || st.Viewers != 3 || !st.Recording {
		t.Errorf("b: %+v", st)
	}
	b, _ := json.Marshal(d.Status(reg["b"]))
	if !strings.Contains(string(b), `"node":"other"`) {
		t.Errorf("b as JSON: %s", b)
	}
	if sts := d.Statuses(); len(sts) != 1 || sts["a"] == nil {
		t.Errorf("shared statuses: %v", sts)
	}
	fc.owners["c"] = ""
	if st := d.Status(ingest.Camera{ID: "c", Enabled: true}); st.Node != "" || st.State != ingest.StateConnecting {
		t.Errorf("unowned: %+v", st)
	}

	// a moves away: stopped, not disowned (no recorder.Remove)
	fc.owners["a"] = "other"
	d.Lost("a")
	if got, want := took(), []string{"recorder.Stop a", "ingest.Remove a"}; !slices.Equal(got, want) {
		t.Fatalf("lost: %v, want %v", got, want)
	}
	// a deleted camera's lease acquired: the lease goes
	fc.owners["zz"] = "me"
	d.Acquired("zz")
	// deleting a camera on this node: lease deleted, index disowned here
	d.Remove("b")
	if got, want := took(), []string{"recorder.Remove b", "ingest.Remove b"}; !slices.Equal(got, want) {
		t.Fatalf("remove: %v, want %v", got, want)
	}
	want := []string{"PutAll a…", "Put b", "Delete zz", "Delete b"}
	if !slices.Equal(fc.calls, want) {
		t.Errorf("cluster calls %v, want %v", fc.calls, want)
	}
}

// A camera acquired while the registry cannot be read runs once it can.
func TestClusterAcquiredRetries(t *testing.T) {
	retryEvery = 10 * time.Millisecond
	defer func() { retryEvery = 2 * time.Second }()
	var log []string
	var mu sync.Mutex
	pull, rec := newPart("ingest", &log, &mu), newPart("recorder", &log, &mu)
	d := New(pull, stopPart{rec})
	fc := &fakeCluster{owners: map[string]string{"a": "me"}, shared: map[string][]byte{}}
	var fails atomic.Int32
	fails.Store(3)
	d.SetCluster(ClusterOptions{Cluster: fc, Lookup: func(_ context.Context, id string) (ingest.Camera, error) {
		if fails.Add(-1) >= 0 {
			return ingest.Camera{}, errors.New("database unreachable")
		}
		return ingest.Camera{ID: id, Name: "x", Enabled: true, Record: true}, nil
	}})
	d.Acquired("a")
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		got := slices.Clone(log)
		mu.Unlock()
		if slices.Equal(got, []string{"ingest.Set a x", "recorder.Set a x"}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after failed reads: %v", got)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
