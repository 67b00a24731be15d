package alerts

import (
	"context"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/internal/sqldb"
	"github.com/vigil-vms/vigil/internal/testkit"
	"github.com/vigil-vms/vigil/internal/testkit/hookrecv"
	"github.com/vigil-vms/vigil/internal/testkit/pgtest"
	"github.com/vigil-vms/vigil/internal/testkit/testdb"
)

// receiver is a webhook receiver that checks signatures and can be down.
type receiver = hookrecv.Receiver[Event]

// newReceiver accepts POSTs of JSON signed with secret.
func newReceiver(t *testing.T, secret string) *receiver {
	return hookrecv.New[Event](t, func(req *http.Request, body []byte) bool {
		return req.Header.Get("X-Vigil-Signature") == Sign(secret, body) && req.Method == http.MethodPost &&
			req.Header.Get("Content-Type") == "application/json"
	})
}

// openDB opens a new database of the engine VIGIL_TEST_DATABASE selects;
// reopen opens the same database again, as a restarted server does.
func openDB(t *testing.T) (db *sqldb.DB, reopen func() *sqldb.DB) {
	t.Helper()
	if testdb.Postgres() {
		url := pgtest.URL(t)
		return testdb.OpenURL(t, url), func() *sqldb.DB { return testdb.OpenURL(t, url) }
	}
	path := filepath.Join(t.TempDir(), "v.db")
	return testdb.OpenSQLite(t, path), func() *sqldb.DB { return testdb.OpenSQLite(t, path) }
}

func TestMain(m *testing.M) { pgtest.Main(m) }

// start runs a notifier until the test ends (or stop is called).
func start(t *testing.T, db *sqldb.DB, opts Options) (n *Notifier, stop func()) {
	t.Helper()
	if opts.RetryMin == 0 {
		opts.RetryMin, opts.RetryMax = 20*time.Millisecond, 100*time.Millisecond
	}
	n, err := New(context.Background(), db, opts)
	if err != nil {
		t.Fatal(err)
	}
	return n, testkit.Run(t, n.Run)
}

func TestDeliverSignedInOrder(t *testing.T) {
	rcv := newReceiver(t, "k3y")
	db, _ := openDB(t)
	n, _ := start(t, db, Options{Webhooks: []Webhook{{URL: rcv.URL, Secret: "k3y"}}})
	ctx := context.Background()
	for _, ev := range []string{CameraOffline, CameraOnline, StorageFailing} {
		if err := n.Publish(ctx, Event{Event: ev, Camera: "police-1", Department: "police", Message: ev}); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{CameraOffline, CameraOnline, StorageFailing} {
		e := rcv.Next(t, 5*time.Second)
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
	dead.SetDown(true)
	db, _ := openDB(t)
	n, _ := start(t, db, Options{Webhooks: []Webhook{
		{URL: dead.URL, Secret: "a"},
		{URL: live.URL, Secret: "b", Events: []string{CameraOffline}},
	}})
	ctx := context.Background()
	n.Publish(ctx, Event{Event: CameraOffline, Camera: "c1"})
	n.Publish(ctx, Event{Event: SpoolHigh})
	n.Publish(ctx, Event{Event: CameraOffline, Camera: "c2"})
	if e := live.Next(t, 5*time.Second); e.Camera != "c1" {
		t.Fatalf("live got %+v", e)
	}
	if e := live.Next(t, 5*time.Second); e.Camera != "c2" {
		t.Fatalf("live got %+v (spool.high is filtered out)", e)
	}
	testkit.WaitFor(t, 5*time.Second, "several retries against the dead one", func() bool { return n.Stats().Failed >= 2 })
	if st := n.Stats(); st.Failed < 2 || st.Pending != 3 {
		t.Fatalf("stats while one is down: %+v", st)
	}
	dead.SetDown(false)
	for _, want := range []string{"c1", "", "c2"} {
		if e := dead.Next(t, 5*time.Second); e.Camera != want {
			t.Fatalf("after return got %+v, want camera %q", e, want)
		}
	}
}

// Events queued while the receiver is down survive a restart of the notifier
// on the same database.
func TestQueueSurvivesRestart(t *testing.T) {
	rcv := newReceiver(t, "s")
	rcv.SetDown(true)
	db, reopen := openDB(t)
	hooks := []Webhook{{URL: rcv.URL, Secret: "s"}}
	n, stop := start(t, db, Options{Webhooks: hooks})
	ctx := context.Background()
	n.Publish(ctx, Event{Event: StorageFailing, Message: "one"})
	n.Publish(ctx, Event{Event: StorageRecovered, Message: "two"})
	stop()
	db.Close()

	rcv.SetDown(false)
	db = reopen()
	defer db.Close()
	start(t, db, Options{Webhooks: hooks})
	for _, want := range []string{"one", "two"} {
		if e := rcv.Next(t, 5*time.Second); e.Message != want {
			t.Fatalf("after restart got %+v, want %q", e, want)
		}
	}
}

// A full queue drops its oldest events and counts them.
func TestQueueBound(t *testing.T) {
	rcv := newReceiver(t, "")
	rcv.SetDown(true)
	db, _ := openDB(t)
	n, err := New(context.Background(), db, Options{Webhooks: []Webhook{{URL: rcv.URL}}, QueueMax: 3})
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
	rcv.SetDown(false)
	defer testkit.Run(t, n.Run)()
	for _, want := range []string{"3", "4", "5"} {
		if e := rcv.Next(t, 5*time.Second); e.Message != want {
			t.Fatalf("got %q, want %q (the oldest are dropped)", e.Message, want)
		}
	}
}

func TestSendTest(t *testing.T) {
	ok, bad := newReceiver(t, "x"), newReceiver(t, "y")
	bad.SetDown(true)
	db, _ := openDB(t)
	n, _ := start(t, db, Options{Webhooks: []Webhook{
		{URL: ok.URL, Secret: "x", Events: []string{CameraOffline}}, // test goes through any filter
		{URL: bad.URL + "/?token=abc", Secret: "y"},
	}})
	res := n.SendTest(context.Background(), "admin")
	if len(res) != 2 || !res[0].Delivered || res[1].Delivered || res[1].Error == "" {
		t.Fatalf("results %+v", res)
	}
	if e := ok.Next(t, time.Second); e.Event != Test {
		t.Fatalf("got %+v", e)
	}
	if got := res[1].URL; got != bad.URL+"/?***" {
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

// A node starting without a webhook drops the events queued for it; in a
// cluster (RunsHere set) it keeps them a day for the node that has it.
func TestUnknownWebhookEvents(t *testing.T) {
	db, _ := openDB(t)
	ctx := context.Background()
	rcv := newReceiver(t, "s")
	rcv.SetDown(true)
	hooks := []Webhook{{URL: rcv.URL, Secret: "s"}}
	n, stop := start(t, db, Options{Webhooks: hooks})
	n.Publish(ctx, Event{Event: StorageFailing, Message: "queued"})
	stop()
	count := func() (c int) {
		if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM alert_queue`).Scan(&c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	// another node of the cluster, without the webhook: the event stays
	if _, err := New(ctx, db, Options{RunsHere: func() bool { return true }}); err != nil {
		t.Fatal(err)
	}
	if c := count(); c != 1 {
		t.Fatalf("%d events queued after a cluster node without the webhook started, want 1", c)
	}
	// ... until it is a day old
	if _, err := db.Exec(ctx, `UPDATE alert_queue SET created = ?`, time.Now().Add(-25*time.Hour).UnixMilli()); err != nil {
		t.Fatal(err)
	}
	if _, err := New(ctx, db, Options{RunsHere: func() bool { return true }}); err != nil {
		t.Fatal(err)
	}
	if c := count(); c != 0 {
		t.Fatalf("%d events queued for a day for a webhook no node has, want 0", c)
	}
	// a single node drops them at once
	n, stop = start(t, db, Options{Webhooks: hooks})
	n.Publish(ctx, Event{Event: StorageFailing, Message: "queued"})
	stop()
	if _, err := New(ctx, db, Options{}); err != nil {
		t.Fatal(err)
	}
	if c := count(); c != 0 {
		t.Fatalf("%d events queued after the webhook left a single node's configuration, want 0", c)
	}
}
