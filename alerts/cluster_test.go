package alerts

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/testkit"
	"github.com/vigil-vms/vigil/internal/testkit/pgtest"
	"github.com/vigil-vms/vigil/internal/testkit/testdb"
)

// node starts a Notifier on its own connection to the PostgreSQL database
// at url, as one node of a cluster, polling its queue every 50 ms.
func node(t *testing.T, url string, opts Options) *Notifier {
	t.Helper()
	opts.RetryMin, opts.RetryMax = 20*time.Millisecond, 50*time.Millisecond
	n, err := New(context.Background(), testdb.OpenURL(t, url), opts)
	if err != nil {
		t.Fatal(err)
	}
	n.poll = 50 * time.Millisecond
	testkit.Run(t, n.Run)
	return n
}

// slowReceiver takes 10 ms per POST, refuses the first attempt at every
// seventh event, and records what it accepted, in order, and how many
// POSTs it had at once at most.
type slowReceiver struct {
	mu       sync.Mutex
	got      []string // accepted event ids, in order
	attempts map[string]int
	inFlight atomic.Int32
	maxIn    atomic.Int32
}

func (r *slowReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	n := r.inFlight.Add(1)
	defer r.inFlight.Add(-1)
	for m := r.maxIn.Load(); n > m && !r.maxIn.CompareAndSwap(m, n); m = r.maxIn.Load() {
	}
	body, _ := io.ReadAll(req.Body)
	var e Event
	if json.Unmarshal(body, &e) != nil || req.Header.Get("X-Vigil-Signature") != Sign("c", body) {
		http.Error(w, "bad", http.StatusBadRequest)
		return
	}
	time.Sleep(10 * time.Millisecond)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts[e.ID]++
	var seq int
	_ = json.Unmarshal([]byte(e.Message), &seq)
	if seq%7 == 0 && r.attempts[e.ID] == 1 {
		http.Error(w, "try again", http.StatusServiceUnavailable)
		return
	}
	r.got = append(r.got, e.ID)
}

// Two nodes on one PostgreSQL database share the queue: every event is
// delivered once, by one of them, in the order it was queued, one POST at a
// time, also when attempts fail and are retried.
func TestClusterDeliversOnce(t *testing.T) {
	url := pgtest.URL(t)
	rcv := &slowReceiver{attempts: map[string]int{}}
	srv := httptest.NewServer(rcv)
	t.Cleanup(srv.Close)
	hooks := []Webhook{{URL: srv.URL, Secret: "c"}}
	nodes := []*Notifier{node(t, url, Options{Webhooks: hooks}), node(t, url, Options{Webhooks: hooks})}

	const events = 40
	var ids []string
	ctx := context.Background()
	for i := range events {
		e := Event{ID: newID(), Event: StorageFailing, Message: string(must(json.Marshal(i)))}
		if err := nodes[i%2].Publish(ctx, e); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ID)
	}
	testkit.WaitFor(t, 20*time.Second, "every event delivered", func() bool {
		return nodes[0].Stats().Pending == 0
	})
	time.Sleep(300 * time.Millisecond) // a second delivery would come now
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if len(rcv.got) != events {
		t.Fatalf("%d deliveries of %d events", len(rcv.got), events)
	}
	for i, id := range ids {
		if rcv.got[i] != id {
			t.Fatalf("delivery %d is %s, want %s (queued order)", i, rcv.got[i], id)
		}
	}
	if m := rcv.maxIn.Load(); m != 1 {
		t.Fatalf("%d POSTs at once, want one at a time", m)
	}
	d0, d1 := nodes[0].Stats().Delivered, nodes[1].Stats().Delivered
	t.Logf("delivered by node 1: %d, node 2: %d; failed attempts %d+%d", d0, d1, nodes[0].Stats().Failed, nodes[1].Stats().Failed)
	if d0 == 0 || d1 == 0 {
		t.Logf("one node delivered everything (allowed; the other found the head taken)")
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// The camera watch runs where RunsHere says: one camera.offline per outage
// with two nodes watching, and the node that takes over sends the
// camera.online of what the other announced.
func TestClusterWatchRunsHere(t *testing.T) {
	url := pgtest.URL(t)
	rcv := newReceiver(t, "r")
	hooks := []Webhook{{URL: rcv.URL, Secret: "r"}}
	var first atomic.Bool
	first.Store(true)
	n1 := node(t, url, Options{Webhooks: hooks, RunsHere: first.Load})
	n2 := node(t, url, Options{Webhooks: hooks, RunsHere: func() bool { return !first.Load() }})
	cams := []ingest.Camera{{ID: "c1", Name: "Gate", Department: "police", Enabled: true}}
	states := &fakeStates{state: map[string]ingest.State{}, since: map[string]time.Time{}}
	states.set("c1", ingest.StateOffline)
	watchCameras(t, n1, cams, states, 200*time.Millisecond)
	watchCameras(t, n2, cams, states, 200*time.Millisecond)
	if e := rcv.Next(t, 3*time.Second); e.Event != CameraOffline || e.Camera != "c1" {
		t.Fatalf("got %+v", e)
	}
	expectNone(t, rcv, 500*time.Millisecond, "a second camera.offline")

	first.Store(false) // node 2 watches from now on
	expectNone(t, rcv, 500*time.Millisecond, "camera.offline again after the hand-over")
	states.set("c1", ingest.StateOnline)
	if e := rcv.Next(t, 3*time.Second); e.Event != CameraOnline || e.Camera != "c1" {
		t.Fatalf("got %+v", e)
	}
	expectNone(t, rcv, 300*time.Millisecond, "a second camera.online")
}
