package remote

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/camsim"
	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/apierr"
	"github.com/vigil-vms/vigil/internal/sqldb"
	"github.com/vigil-vms/vigil/internal/testkit"
	"github.com/vigil-vms/vigil/internal/testkit/testdb"
	"github.com/vigil-vms/vigil/recorder"
	"github.com/vigil-vms/vigil/recorder/archive"
	"github.com/vigil-vms/vigil/recorder/review"
)

// fakeRelay answers as a relay would, from what the test sets.
type fakeRelay struct {
	offerErr error
	onOffer  func() // called at each offer, when set
}

func (f *fakeRelay) Offer(ctx context.Context, camera string, kind ingest.StreamKind, sdp string) (string, string, error) {
	if f.onOffer != nil {
		f.onOffer()
	}
	if f.offerErr != nil {
		return "", "", f.offerErr
	}
	return "s-" + camera, "answer to " + sdp, nil
}
func (f *fakeRelay) Patch(ctx context.Context, id, frag string) error { return nil }
func (f *fakeRelay) Delete(id string) error {
	return apierr.New(apierr.ErrNotFound, "WHEP session %q not found", id)
}
func (f *fakeRelay) Alive(id string) bool { return false }

// fakeSpool is a spool of segments held in memory.
type fakeSpool struct {
	mu   sync.Mutex
	segs []archive.Segment
	data map[string][]byte
	pins map[string]int
}

func newFakeSpool() *fakeSpool {
	return &fakeSpool{data: map[string][]byte{}, pins: map[string]int{}}
}

func (f *fakeSpool) add(camera string, start time.Time, data []byte) archive.Segment {
	s := archive.Segment{Camera: camera, Start: start, End: start.Add(10 * time.Second), Bytes: int64(len(data)),
		Key: archive.SegmentKey(camera, start), InitSize: 4,
		Fragments: []archive.Fragment{{Offset: 0, Pos: 4, Size: int64(len(data) - 4), Keyframe: true}}}
	f.mu.Lock()
	f.segs = append(f.segs, s)
	f.data[s.Key] = data
	f.mu.Unlock()
	return s
}

func (f *fakeSpool) drop(key string) {
	f.mu.Lock()
	delete(f.data, key)
	f.mu.Unlock()
}

func (f *fakeSpool) pinned(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pins[key]
}

func (f *fakeSpool) Spooled(camera string, start, end time.Time) []archive.Segment {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []archive.Segment
	for _, s := range f.segs {
		if s.Camera == camera && s.Start.Before(end) && s.End.After(start) && f.data[s.Key] != nil {
			out = append(out, s)
		}
	}
	return out
}

func (f *fakeSpool) Pin(key string) func() {
	f.mu.Lock()
	f.pins[key]++
	f.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			f.mu.Lock()
			f.pins[key]--
			f.mu.Unlock()
		})
	}
}

func (f *fakeSpool) ReadSpooled(key string, off, length int64) (io.ReadCloser, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.data[key]
	if !ok {
		return nil, false, nil
	}
	return io.NopCloser(io.NewSectionReader(bytes.NewReader(d), off, length)), true, nil
}

// spoolNode is a node with a spool and no live relay worth the name.
type spoolNode struct {
	name   string
	owners *owners
	node   *Node
	server *httptest.Server
	logs   *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startSpoolNode(t *testing.T, name string, spool review.Spooled) *spoolNode {
	t.Helper()
	return startFakeNode(t, name, &fakeRelay{}, spool)
}

func startFakeNode(t *testing.T, name string, r Relay, spool review.Spooled) *spoolNode {
	t.Helper()
	o := newOwners(name)
	logs := &syncBuffer{}
	n, err := New(Options{Node: name, Secret: testSecret, Owners: o, Relay: r, Spool: spool,
		Log: slog.New(slog.NewTextHandler(logs, nil)), PinTTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(n.Handler(http.NotFoundHandler()))
	t.Cleanup(func() {
		srv.Close()
		n.Close()
	})
	return &spoolNode{name: name, owners: o, node: n, server: srv, logs: logs}
}

func spoolCluster(nodes []*spoolNode, cameras map[string]string) {
	for _, n := range nodes {
		for _, m := range nodes {
			n.owners.advertise(m.name, m.server.URL)
		}
		for cam, owner := range cameras {
			n.owners.set(cam, owner)
		}
	}
}

// TestSpoolOfTheOwner: node b lists the owner's spooled segments with its
// own (a camera that moved away may have left some), reads and pins them on
// the owner; a segment the owner no longer holds reads as gone; an owner out
// of reach lists nothing, logged, and is no error.
func TestSpoolOfTheOwner(t *testing.T) {
	leakCheck(t)
	t0 := time.Date(2026, 11, 29, 8, 0, 0, 123456789, time.UTC)
	fa, fb := newFakeSpool(), newFakeSpool()
	onA := fa.add("cam1", t0.Add(10*time.Second), []byte("initMOOFmdat-of-a"))
	onB := fb.add("cam1", t0, []byte("initMOOFmdat-left-on-b"))
	fa.add("cam2", t0, []byte("initother")) // another camera: not listed
	a, b := startSpoolNode(t, "a", fa), startSpoolNode(t, "b", fb)
	spoolCluster([]*spoolNode{a, b}, map[string]string{"cam1": "a", "cam2": "a"})

	got := b.node.Spool().Spooled("cam1", t0.Add(-time.Hour), t0.Add(time.Hour))
	if len(got) != 2 || got[0].Key != onB.Key || got[1].Key != onA.Key {
		t.Fatalf("spooled through b: %+v, want b's then a's", got)
	}
	if g := got[1]; !g.Start.Equal(onA.Start) || !g.End.Equal(onA.End) || g.Bytes != onA.Bytes || g.InitSize != 4 ||
		len(g.Fragments) != 1 || g.Fragments[0] != onA.Fragments[0] {
		t.Fatalf("a's segment through b: %+v, want %+v", g, onA)
	}
	if got := b.node.Spool().Spooled("cam1", t0.Add(time.Hour), t0.Add(2*time.Hour)); len(got) != 0 {
		t.Fatalf("spooled outside the range: %+v", got)
	}

	// pin and read on the owner, and on this node for its own
	unpin := b.node.Spool().Pin(onA.Key)
	if fa.pinned(onA.Key) != 1 || a.node.Pins() != 1 {
		t.Fatalf("pin through b: a's spool pinned %d, a holds %d pins", fa.pinned(onA.Key), a.node.Pins())
	}
	read := func(key string, off, n int64) (string, bool) {
		t.Helper()
		rc, ok, err := b.node.Spool().ReadSpooled(key, off, n)
		if err != nil {
			t.Fatalf("read %s: %v", key, err)
		}
		if !ok {
			return "", false
		}
		defer rc.Close()
		d, err := io.ReadAll(rc)
		if err != nil {
			t.Fatal(err)
		}
		return string(d), true
	}
	if d, ok := read(onA.Key, 4, 4); !ok || d != "MOOF" {
		t.Fatalf("read of a's segment through b: %q %v", d, ok)
	}
	if d, ok := read(onB.Key, 0, 4); !ok || d != "init" {
		t.Fatalf("read of b's own segment: %q %v", d, ok)
	}
	unpin()
	unpin() // twice is once
	testkit.WaitFor(t, 5*time.Second, "the pin on a to end", func() bool { return fa.pinned(onA.Key) == 0 && a.node.Pins() == 0 })

	// uploaded and removed on a since the listing: gone, the reader reads the store
	fa.drop(onA.Key)
	if _, ok := read(onA.Key, 0, 4); ok {
		t.Fatal("a segment a no longer holds reads through b")
	}

	// a out of reach: b lists its own, reads fall back to the store, no error
	onA2 := fa.add("cam1", t0.Add(20*time.Second), []byte("initMOOF"))
	if got := b.node.Spool().Spooled("cam1", t0.Add(-time.Hour), t0.Add(time.Hour)); len(got) != 2 {
		t.Fatalf("before a goes: %d segments", len(got))
	}
	a.server.Close()
	got = b.node.Spool().Spooled("cam1", t0.Add(-time.Hour), t0.Add(time.Hour))
	if len(got) != 1 || got[0].Key != onB.Key {
		t.Fatalf("spooled with the owner down: %+v, want b's own only", got)
	}
	if _, ok := read(onA2.Key, 0, 4); ok {
		t.Fatal("a read from a node that is down succeeded")
	}
	if !strings.Contains(b.logs.String(), "cannot list the spooled segments of a camera on its owner") || !strings.Contains(b.logs.String(), "node=a") {
		t.Fatalf("no warning naming node a in b's log:\n%s", b.logs.String())
	}
}

// TestPinExpires: a pin whose holder never releases it ends by itself.
func TestPinExpires(t *testing.T) {
	leakCheck(t)
	fa := newFakeSpool()
	seg := fa.add("cam1", time.Now(), []byte("initdata"))
	o := newOwners("a")
	a, err := New(Options{Node: "a", Secret: testSecret, Owners: o, Relay: &fakeRelay{}, Spool: fa, PinTTL: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler(http.NotFoundHandler()))
	defer srv.Close()
	defer a.Close()
	b := startSpoolNode(t, "b", nil)
	b.owners.advertise("a", srv.URL)
	b.owners.set("cam1", "a")
	if n := len(b.node.Spool().Spooled("cam1", seg.Start.Add(-time.Minute), seg.End)); n != 1 {
		t.Fatalf("%d segments listed", n)
	}
	_ = b.node.Spool().Pin(seg.Key) // never unpinned: b "died"
	if fa.pinned(seg.Key) != 1 {
		t.Fatal("not pinned")
	}
	testkit.WaitFor(t, 3*time.Second, "the forgotten pin to end", func() bool { return fa.pinned(seg.Key) == 0 && a.Pins() == 0 })
}

// TestPlaybackOfTheOwnersSpool: a real recorder on node a records a camsim
// camera; on node b, which records nothing, review (its Spool the remote
// one, over the shared index and store) shows and plays the open segment,
// which only a's spool holds.
func TestPlaybackOfTheOwnersSpool(t *testing.T) {
	leakCheck(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	db := testdb.OpenSQLite(t, "")
	ix, err := withDB(archive.OpenIndex, ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	store, err := archive.NewLocalStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	sim, err := camsim.New(camsim.Options{Addr: "127.0.0.1:0", Count: 1, Codec: camsim.CodecH264})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	fleet := ingest.NewFleet(ingest.FleetOptions{Log: quietLog(), BackoffMin: 100 * time.Millisecond, BackoffMax: 500 * time.Millisecond})
	rec, err := recorder.New(recorder.Options{Store: store, Index: ix, SpoolDir: t.TempDir(), SegmentDuration: time.Minute, Log: quietLog()}, fleet)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); fleet.Run(ctx) }()
	go func() { defer wg.Done(); rec.Run(ctx) }()
	defer wg.Wait()
	defer cancel()
	cam := ingest.Camera{ID: "cam1", MainURL: sim.URL(1, false), Transport: "tcp", Enabled: true, Record: true}
	fleet.Set(cam)
	rec.Set(cam)
	defer fleet.Remove("cam1")

	a, b := startSpoolNode(t, "a", rec), startSpoolNode(t, "b", nil)
	spoolCluster([]*spoolNode{a, b}, map[string]string{"cam1": "a"})
	rvB := review.NewReview(store, ix, nil)
	rvB.Spool = b.node.Spool()

	from, to := time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	var recs review.Recordings
	testkit.WaitFor(t, 15*time.Second, "3 s of recording seen through node b", func() bool {
		recs, err = rvB.Recordings(ctx, "cam1", from, to)
		if err != nil {
			t.Fatal(err)
		}
		return len(recs.Spans) == 1 && recs.Spans[0].End.Sub(recs.Spans[0].Start) >= 3*time.Second
	})
	if rows, err := ix.Segments(ctx, "cam1", from, to, false); err != nil || len(rows) != 0 {
		t.Fatalf("index rows %v, %v: the segment is open, only a's spool holds it", rows, err)
	}
	pb, err := rvB.Open(ctx, "cam1", recs.Spans[0].Start, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var clip bytes.Buffer
	if _, err := pb.WriteTo(&clip); err != nil {
		t.Fatal(err)
	}
	if clip.Len() < 1000 || !bytes.Contains(clip.Bytes()[:16], []byte("ftyp")) || !bytes.Contains(clip.Bytes(), []byte("moof")) {
		t.Fatalf("playback through node b: %d bytes, not an fMP4 clip", clip.Len())
	}
	testkit.WaitFor(t, 5*time.Second, "b's pins on a to end", func() bool { return a.node.Pins() == 0 })

	// the owner out of reach: the listing is empty, not an error
	a.server.Close()
	recs, err = rvB.Recordings(ctx, "cam1", from, to)
	if err != nil || len(recs.Spans) != 0 {
		t.Fatalf("recordings with the owner down: %+v, %v; want none and no error", recs, err)
	}
}

// withDB calls a constructor that takes the database as *sqldb.DB or, before
// its package moves onto sqldb (CLUSTER-SEAM §1), as *sql.DB: this test
// builds either way.
func withDB[D, T any](open func(context.Context, D) (T, error), ctx context.Context, db *sqldb.DB) (T, error) {
	if d, ok := any(db).(D); ok {
		return open(ctx, d)
	}
	return open(ctx, any(db.DB).(D))
}
