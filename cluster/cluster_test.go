package cluster

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/internal/sqldb"
	"github.com/vigil-vms/vigil/internal/testkit"
	"github.com/vigil-vms/vigil/internal/testkit/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// fakeTarget stands for the dispatcher: the cameras it runs, and what it
// was told.
type fakeTarget struct {
	name    string
	mu      sync.Mutex
	running map[string]bool
	changes []string
	lostAt  map[string]time.Time
	onLost  func(c string) // when set, called after Lost's bookkeeping
}

func (f *fakeTarget) Acquired(c string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.running[c] = true
}

func (f *fakeTarget) Lost(c string) {
	f.mu.Lock()
	delete(f.running, c)
	f.lostAt[c] = time.Now()
	hook := f.onLost
	f.mu.Unlock()
	if hook != nil {
		hook(c)
	}
}

func (f *fakeTarget) Changed(c string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.changes = append(f.changes, c)
}

func (f *fakeTarget) Statuses() map[string][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string][]byte{}
	for c := range f.running {
		out[c] = fmt.Appendf(nil, `{"id":%q,"by":%q}`, c, f.name)
	}
	return out
}

func (f *fakeTarget) cams() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Sorted(maps.Keys(f.running))
}

type node struct {
	*Cluster
	t    *fakeTarget
	db   *sqldb.DB
	stop func()
}

func openDB(t testing.TB, url string) *sqldb.DB {
	t.Helper()
	db, err := sqldb.Open(context.Background(), sqldb.Config{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// startNode opens a node on its own pool and runs it; stop ends its Run
// (a clean stop, as at SIGTERM).
func startNode(t testing.TB, url, name string, ttl time.Duration, freeze func(context.Context)) *node {
	t.Helper()
	db := openDB(t, url)
	c, err := Open(context.Background(), db, Options{Node: name, Advertise: "http://" + name + ":8080", TTL: ttl,
		Refresh: 200 * time.Millisecond, Log: testkit.Log(t).With("node", name),
		StateFile: filepath.Join(t.TempDir(), "spool", ".cluster-provisional.json")})
	if err != nil {
		t.Fatal(err)
	}
	n := &node{Cluster: c, db: db, t: &fakeTarget{name: name, running: map[string]bool{}, lostAt: map[string]time.Time{}}}
	c.SetTarget(n.t)
	c.node.BeforeTick = freeze
	n.stop = testkit.Run(t, c.Run)
	return n
}

func cameras(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("cam-%02d", i)
	}
	return out
}

// owners checks that no camera runs on two nodes, and returns who runs each.
func owners(t testing.TB, ns ...*node) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, n := range ns {
		for _, c := range n.t.cams() {
			if o, dup := out[c]; dup {
				t.Fatalf("camera %s runs on %s and %s", c, o, n.Name())
			}
			out[c] = n.Name()
		}
	}
	return out
}

func evenly(t testing.TB, total int, ns ...*node) bool {
	t.Helper()
	if len(owners(t, ns...)) != total {
		return false
	}
	lo, hi := total, 0
	for _, n := range ns {
		k := len(n.t.cams())
		lo, hi = min(lo, k), max(hi, k)
	}
	return hi-lo <= 1
}

// Cameras spread evenly over three nodes; every node tells the same owner
// of every camera and serves its owner's status; a change reaches the
// owner's target at once; a clean stop hands the cameras over at once,
// well within the TTL.
func TestOwnershipStatusesAndHandOver(t *testing.T) {
	ctx := context.Background()
	u := pgtest.URL(t)
	ttl := 20 * time.Second // anything faster than TTL/3 is NOTIFY's or a release's doing
	a := startNode(t, u, "node-a", ttl, nil)
	b := startNode(t, u, "node-b", ttl, nil)
	c := startNode(t, u, "node-c", ttl, nil)
	if err := a.PutAll(ctx, cameras(12)); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 15*time.Second, "12 cameras 4/4/4", func() bool { return evenly(t, 12, a, b, c) })

	// every node agrees on the owner, and serves the owner's status
	own := owners(t, a, b, c)
	testkit.WaitFor(t, 10*time.Second, "every node to know every owner and status", func() bool {
		for _, n := range []*node{a, b, c} {
			for cam, o := range own {
				name, adv, local, ok := n.Owner(cam)
				if !ok || name != o || local != (o == n.Name()) || adv != "http://"+o+":8080" {
					return false
				}
				st, ok := n.SharedStatus(cam)
				if !ok || string(st) != fmt.Sprintf(`{"id":%q,"by":%q}`, cam, o) {
					return false
				}
			}
		}
		return true
	})
	for _, n := range []*node{a, b, c} {
		sh := n.SharedStatuses()
		for cam, o := range own {
			if _, ok := sh[cam]; ok != (o != n.Name()) {
				t.Errorf("%s: shared statuses %v: %s (run by %s) present %v", n.Name(), slices.Sorted(maps.Keys(sh)), cam, o, ok)
			}
		}
	}
	nodes, err := b.Nodes(ctx)
	if err != nil || len(nodes) != 3 {
		t.Fatalf("nodes: %v, %v", nodes, err)
	}
	for _, n := range nodes {
		if n.State != "up" || n.Cameras != 4 || n.Advertise != "http://"+n.Name+":8080" {
			t.Errorf("node %+v", n)
		}
	}

	// a change made on another node reaches the owner at once
	cam := a.t.cams()[0]
	start := time.Now()
	if err := c.Put(ctx, cam); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 3*time.Second, "the owner told of the change", func() bool {
		a.t.mu.Lock()
		defer a.t.mu.Unlock()
		return slices.Contains(a.t.changes, cam)
	})
	t.Logf("change reached the owner in %v", time.Since(start).Round(time.Millisecond))

	// a new camera is taken at once; a deleted one stops
	if err := b.Put(ctx, "cam-new"); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 3*time.Second, "the new camera taken", func() bool { return owners(t, a, b, c)["cam-new"] != "" })
	victim := owners(t, a, b, c)["cam-05"]
	if err := b.Delete(ctx, "cam-05"); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 3*time.Second, "the deleted camera stopped on "+victim, func() bool { return owners(t, a, b, c)["cam-05"] == "" })

	// a clean stop (SIGTERM) releases at once: the others take over in
	// well under the TTL
	held := c.t.cams()
	start = time.Now()
	c.stop()
	testkit.WaitFor(t, 3*time.Second, "c's cameras taken over by a and b", func() bool {
		o := owners(t, a, b)
		for _, cam := range held {
			if o[cam] == "" {
				return false
			}
		}
		return true
	})
	t.Logf("hand-over of %d cameras after a clean stop: %v", len(held), time.Since(start).Round(time.Millisecond))
	testkit.WaitFor(t, 5*time.Second, "12 cameras over a and b", func() bool { return evenly(t, 12, a, b) })
	// the statuses follow the new owners (read incrementally)
	testkit.WaitFor(t, 10*time.Second, "the statuses of c's cameras written by their new owners", func() bool {
		own := owners(t, a, b)
		for _, cam := range held {
			o := own[cam]
			viewer := a
			if o == a.Name() {
				viewer = b
			}
			st, ok := viewer.SharedStatus(cam)
			if !ok || string(st) != fmt.Sprintf(`{"id":%q,"by":%q}`, cam, o) {
				return false
			}
		}
		return true
	})
	if st, ok := a.SharedStatus("cam-05"); ok {
		t.Errorf("a deleted camera's status: %s", st)
	}
	nodes, err = a.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if (n.Name == "node-c") != (n.State == "down") {
			t.Errorf("after c stopped: %+v", n)
		}
	}
}

// The upload and index fences: a segment of the current ownership passes
// while the lease is held; once the lease moved behind the node's back it
// is fenced; the segments of a camera lost cleanly still pass, and those
// from before the run pass.
func TestFence(t *testing.T) {
	ctx := context.Background()
	u := pgtest.URL(t)
	a := startNode(t, u, "node-a", 10*time.Second, nil)
	if err := a.PutAll(ctx, []string{"cam-1", "cam-2"}); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "a owns both cameras", func() bool { return len(a.t.cams()) == 2 })
	now := time.Now()
	if err := a.Fence(ctx, "cam-1", now, now.Add(2*time.Second)); err != nil {
		t.Fatalf("owned camera fenced: %v", err)
	}
	if err := a.Fence(ctx, "cam-1", now.Add(-time.Hour), now.Add(-time.Hour+2*time.Second)); err != nil {
		t.Fatalf("a segment from before this run fenced: %v", err)
	}
	tx, err := a.db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.FenceIndex(ctx, tx, "cam-1"); err != nil {
		t.Fatalf("index fence of an owned camera: %v", err)
	}
	tx.Rollback()

	// the lease moves behind a's back (as when a was paused past its TTL)
	if _, err := a.db.Exec(ctx, `UPDATE leases SET node = 'node-x', epoch = epoch + 1 WHERE camera = 'cam-1'`); err != nil {
		t.Fatal(err)
	}
	if err := a.Fence(ctx, "cam-1", now, now.Add(2*time.Second)); !errors.Is(err, ErrFenced) {
		t.Fatalf("moved lease: upload fence %v", err)
	}
	tx, err = a.db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.FenceIndex(ctx, tx, "cam-1"); !errors.Is(err, ErrFenced) {
		t.Fatalf("moved lease: index fence %v", err)
	}
	tx.Rollback()

	// a clean stop: the last segments of the cameras it ran may be stored
	a.stop()
	if err := a.Fence(ctx, "cam-2", now, now.Add(time.Second)); err != nil {
		t.Fatalf("a camera released cleanly: %v", err)
	}
}

// A node frozen past its lease (a paused process) loses its cameras to
// the other; when it wakes up, what it wrote in the meantime is fenced,
// while what the new owner writes passes.
func TestFrozenNodeFenced(t *testing.T) {
	ctx := context.Background()
	u := pgtest.URL(t)
	ttl := 2 * time.Second
	var mu sync.Mutex
	var frozen chan struct{}
	freeze := func(ctx context.Context) {
		mu.Lock()
		f := frozen
		mu.Unlock()
		if f != nil {
			select {
			case <-f:
			case <-ctx.Done():
			}
		}
	}
	a := startNode(t, u, "node-a", ttl, freeze)
	if err := a.PutAll(ctx, cameras(4)); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "a owns the cameras", func() bool { return len(a.t.cams()) == 4 })
	b := startNode(t, u, "node-b", ttl, nil)
	testkit.WaitFor(t, 10*time.Second, "2/2", func() bool { return evenly(t, 4, a, b) })
	moved := a.t.cams()
	segStart := time.Now() // a segment a began before it froze
	mu.Lock()
	frozen = make(chan struct{})
	mu.Unlock()
	testkit.WaitFor(t, 4*ttl, "b to take a's cameras", func() bool { return len(b.t.cams()) == 4 })
	mu.Lock()
	close(frozen)
	frozen = nil
	mu.Unlock()
	testkit.WaitFor(t, 5*time.Second, "a to notice", func() bool { return len(a.t.cams()) < len(moved) })
	for _, cam := range moved {
		// a may take some back to even the load: a new ownership, but the
		// old segment stays fenced
		if err := a.Fence(ctx, cam, segStart, time.Now()); !errors.Is(err, ErrFenced) {
			t.Errorf("%s: a's segment from before the freeze: %v", cam, err)
		}
		if _, local := b.Epoch(cam); local {
			if err := b.Fence(ctx, cam, time.Now(), time.Now().Add(time.Second)); err != nil {
				t.Errorf("%s: the new owner's segment: %v", cam, err)
			}
		}
	}
}

// Once runs a job on exactly one of two nodes; it moves to the other when
// the holder's connection dies, and when the holder stops.
func TestOnce(t *testing.T) {
	ctx := context.Background()
	u := pgtest.URL(t)
	a := startNode(t, u, "node-a", 10*time.Second, nil)
	b := startNode(t, u, "node-b", 10*time.Second, nil)
	aj, bj := a.Once("retention"), b.Once("retention")
	ao, bo := a.Once("availability"), b.Once("availability")
	if !aj() || bj() || aj() != true {
		t.Fatal("retention: want a only")
	}
	if !bo() || ao() {
		t.Fatal("availability: want b only (the first to ask)")
	}
	// a's job connection dies (killed on the server)
	var killed int
	key := uint64(a.jobs["retention"].key)
	if err := a.db.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND classid::bigint = ? AND objid::bigint = ?`,
		int64(key>>32), int64(key&0xffffffff)).Scan(&killed); err != nil {
		t.Fatal(err)
	}
	if killed != 1 {
		t.Fatalf("killed %d backends", killed)
	}
	testkit.WaitFor(t, 5*time.Second, "retention to move to b", func() bool { return bj() })
	if aj() {
		t.Fatal("retention runs on both nodes")
	}
	// b stops: its jobs move to a at a's next pass
	b.stop()
	testkit.WaitFor(t, 5*time.Second, "a to run both jobs after b stopped", func() bool { return aj() && ao() })
	if bj() || bo() {
		t.Fatal("a stopped node runs jobs")
	}
}

// At a clean stop (SIGTERM) the writers close their last segment the moment
// they are told to stop (the target's Lost): that segment is stored, not
// refused as "not confirmed" (which left it in the node's spool until the
// next start).
func TestCleanStopLastSegmentStored(t *testing.T) {
	ctx := context.Background()
	a := startNode(t, pgtest.URL(t), "node-a", 10*time.Second, nil)
	started := time.Now()
	var mu sync.Mutex
	answers := map[string]error{}
	a.t.mu.Lock()
	a.t.onLost = func(cam string) { // as the recorder: close and upload the last segment
		err := a.Fence(context.Background(), cam, started, time.Now())
		mu.Lock()
		defer mu.Unlock()
		answers[cam] = err
	}
	a.t.mu.Unlock()
	if err := a.PutAll(ctx, []string{"cam-1", "cam-2"}); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "a owns both cameras", func() bool { return len(a.t.cams()) == 2 })
	a.stop()
	mu.Lock()
	defer mu.Unlock()
	for _, cam := range []string{"cam-1", "cam-2"} {
		err, told := answers[cam]
		if !told {
			t.Fatalf("%s: the target was not told the camera is lost", cam)
		}
		if err != nil {
			t.Errorf("%s: the last segment of a clean stop refused: %v", cam, err)
		}
	}
}
