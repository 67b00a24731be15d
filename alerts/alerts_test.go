package alerts

import (
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/internal/testkit"
	"github.com/vigil-vms/vigil/internal/testkit/testdb"
)

// receiver is a webhook receiver that checks signatures and can be down.
type receiver struct {
	t      *testing.T
	secret string
	srv    *httptest.Server

	mu       sync.Mutex
	down     bool
	events   []Event
	badSigs  int
	received chan Event
}

func newReceiver(t *testing.T, secret string) *receiver {
	r := &receiver{t: t, secret: secret, received: make(chan Event, 100)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.down {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		if req.Header.Get("X-Vigil-Signature") != Sign(r.secret, body) || req.Method != http.MethodPost ||
			req.Header.Get("Content-Type") != "application/json" {
			r.badSigs++
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var e Event
		if err := json.Unmarshal(body, &e); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.events = append(r.events, e)
		r.received <- e
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) setDown(down bool) {
	r.mu.Lock()
	r.down = down
	r.mu.Unlock()
}

func (r *receiver) next(t *testing.T, timeout time.Duration) Event {
	t.Helper()
	select {
	case e := <-r.received:
		return e
	case <-time.After(timeout):
		t.Fatalf("no event within %s", timeout)
		return Event{}
	}
}

func openDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	return testdb.Open(t, path)
}

// start runs a notifier until the test ends (or stop is called).
func start(t *testing.T, db *sql.DB, opts Options) (n *Notifier, stop func()) {
	t.Helper()
	if opts.RetryMin == 0 {
		opts.RetryMin, opts.RetryMax = 20*time.Millisecond, 100*time.Millisecond
	}
	n, err := New(context.Background(), db, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.Run(ctx); close(done) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return n, stop
}

func TestDeliverSignedInOrder(t *testing.T) {
	rcv := newReceiver(t, "k3y")
	db := openDB(t, filepath.Join(t.TempDir(), "v.db"))
	n, _ := start(t, db, Options{Webhooks: []Webhook{{URL: rcv.srv.URL, Secret: "k3y"}}})
	ctx := context.Background()
	for _, ev := range []string{CameraOffline, CameraOnline, StorageFailing} {
		if err := n.Publish(ctx, Event{Event: ev, Camera: "police-1", Department: "police", Message: ev}); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{CameraOffline, CameraOnline, StorageFailing} {
		e := rcv.next(t, 5*time.Second)
		if e.Event != want || e.ID == "" || e.Time.IsZero() || e.Severity == "" || e.Camera != "police-1" || e.Department != "police" {
			t.Fatalf("got %+v, want a full %s event", e, want)
		}
	}
	// the receiver answers before the sender removes the event from the queue
	testkit.WaitFor(t, 5*time.Second, "3 delivered", func() bool { return n.Stats().Delivered == 3 })
	if st := n.Stats(); st.Queued != 3 || st.Delivered != 3 || st.Pending != 0 || st.Dropped != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestSignature(t *testing.T) {
	// echo -n '{"a":1}' | openssl dgst -sha256 -hmac secret
	if got := Sign("secret", []byte(`{"a":1}`)); got != "sha256=aa9e2e3575f5d7098b6caccd790888c36d5fdb63342a73bada2d6a51747a8494" {
		t.Fatalf("signature %s differs from openssl's", got)
	}
	a, b := Sign("secret", []byte("x")), Sign("other", []byte("x"))
	if a == b || len(a) != len("sha256=")+64 {
		t.Fatalf("signatures %s %s", a, b)
	}
}

// A receiver that is down gets the events, in order, when it returns; another
// webhook is not held back meanwhile; a webhook's filter is applied.
func TestRetryAndIndependentWebhooks(t *testing.T) {
	dead, live := newReceiver(t, "a"), newReceiver(t, "b")
	dead.setDown(true)
	db := openDB(t, filepath.Join(t.TempDir(), "v.db"))
	n, _ := start(t, db, Options{Webhooks: []Webhook{
		{URL: dead.srv.URL, Secret: "a"},
		{URL: live.srv.URL, Secret: "b", Events: []string{CameraOffline}},
	}})
	ctx := context.Background()
	n.Publish(ctx, Event{Event: CameraOffline, Camera: "c1"})
	n.Publish(ctx, Event{Event: SpoolHigh})
	n.Publish(ctx, Event{Event: CameraOffline, Camera: "c2"})
	if e := live.next(t, 5*time.Second); e.Camera != "c1" {
		t.Fatalf("live got %+v", e)
	}
	if e := live.next(t, 5*time.Second); e.Camera != "c2" {
		t.Fatalf("live got %+v (spool.high is filtered out)", e)
	}
	time.Sleep(300 * time.Millisecond) // several retries against the dead one
	if st := n.Stats(); st.Failed < 2 || st.Pending != 3 {
		t.Fatalf("stats while one is down: %+v", st)
	}
	dead.setDown(false)
	for _, want := range []string{"c1", "", "c2"} {
		if e := dead.next(t, 5*time.Second); e.Camera != want {
			t.Fatalf("after return got %+v, want camera %q", e, want)
		}
	}
}

// Events queued while the receiver is down survive a restart of the notifier
// on the same database.
func TestQueueSurvivesRestart(t *testing.T) {
	rcv := newReceiver(t, "s")
	rcv.setDown(true)
	path := filepath.Join(t.TempDir(), "v.db")
	db := openDB(t, path)
	hooks := []Webhook{{URL: rcv.srv.URL, Secret: "s"}}
	n, stop := start(t, db, Options{Webhooks: hooks})
	ctx := context.Background()
	n.Publish(ctx, Event{Event: StorageFailing, Message: "one"})
	n.Publish(ctx, Event{Event: StorageRecovered, Message: "two"})
	stop()
	db.Close()

	rcv.setDown(false)
	db = openDB(t, path)
	defer db.Close()
	start(t, db, Options{Webhooks: hooks})
	for _, want := range []string{"one", "two"} {
		if e := rcv.next(t, 5*time.Second); e.Message != want {
			t.Fatalf("after restart got %+v, want %q", e, want)
		}
	}
}

// A full queue drops its oldest events and counts them.
func TestQueueBound(t *testing.T) {
	rcv := newReceiver(t, "")
	rcv.setDown(true)
	db := openDB(t, filepath.Join(t.TempDir(), "v.db"))
	n, err := New(context.Background(), db, Options{Webhooks: []Webhook{{URL: rcv.srv.URL}}, QueueMax: 3})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, m := range []string{"1", "2", "3", "4", "5"} {
		n.Publish(ctx, Event{Event: Alarm, Message: m})
	}
	if st := n.Stats(); st.Dropped != 2 || st.Pending != 3 || st.Queued != 5 {
		t.Fatalf("stats %+v", st)
	}
	rcv.setDown(false)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { n.Run(runCtx); close(done) }()
	defer func() { cancel(); <-done }()
	for _, want := range []string{"3", "4", "5"} {
		if e := rcv.next(t, 5*time.Second); e.Message != want {
			t.Fatalf("got %q, want %q (the oldest are dropped)", e.Message, want)
		}
	}
}

func TestSendTest(t *testing.T) {
	ok, bad := newReceiver(t, "x"), newReceiver(t, "y")
	bad.setDown(true)
	db := openDB(t, filepath.Join(t.TempDir(), "v.db"))
	n, _ := start(t, db, Options{Webhooks: []Webhook{
		{URL: ok.srv.URL, Secret: "x", Events: []string{CameraOffline}}, // test goes through any filter
		{URL: bad.srv.URL + "/?token=abc", Secret: "y"},
	}})
	res := n.SendTest(context.Background(), "admin")
	if len(res) != 2 || !res[0].Delivered || res[1].Delivered || res[1].Error == "" {
		t.Fatalf("results %+v", res)
	}
	if e := ok.next(t, time.Second); e.Event != Test {
		t.Fatalf("got %+v", e)
	}
	if got := res[1].URL; got != bad.srv.URL+"/?***" {
		t.Fatalf("the URL's query is not hidden: %s", got)
	}
	if n.Stats().Pending != 0 {
		t.Fatal("a test event was queued")
	}
}

func TestValidateWebhook(t *testing.T) {
	for _, tc := range []struct {
		w  Webhook
		ok bool
	}{
		{Webhook{URL: "https://a.example/x"}, true},
		{Webhook{URL: "http://10.0.0.1:9000/", Events: []string{CameraOffline, Alarm}}, true},
		{Webhook{URL: ""}, false},
		{Webhook{URL: "ftp://a/"}, false},
		{Webhook{URL: "http:///nohost"}, false},
		{Webhook{URL: "https://a/", Events: []string{"camera.gone"}}, false},
		{Webhook{URL: "https://a/", Events: []string{Test}}, false},
	} {
		if err := ValidateWebhook(tc.w); (err == nil) != tc.ok {
			t.Errorf("%+v: %v", tc.w, err)
		}
	}
}
