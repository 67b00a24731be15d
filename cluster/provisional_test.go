package cluster

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/internal/sqldb"
	"github.com/vigil-vms/vigil/internal/testkit"
	"github.com/vigil-vms/vigil/internal/testkit/pgtest"
)

// startNodeOpts is startNode with Options of the test's own.
func startNodeOpts(t testing.TB, url, name string, o Options) *node {
	t.Helper()
	db := openDB(t, url)
	o.Node, o.Advertise, o.Refresh, o.Log = name, "http://"+name+":8080", 200*time.Millisecond, testkit.Log(t).With("node", name)
	o.StateFile = filepath.Join(t.TempDir(), "spool", ".cluster-provisional.json")
	c, err := Open(context.Background(), db, o)
	if err != nil {
		t.Fatal(err)
	}
	n := &node{Cluster: c, db: db, t: &fakeTarget{name: name, running: map[string]bool{}, lostAt: map[string]time.Time{}}}
	c.SetTarget(n.t)
	n.stop = testkit.Run(t, c.Run)
	return n
}

// next opens the node's next process (not running) on db (the node's
// own when nil): what it finds in the state file the node leaves now.
func (n *node) next(t testing.TB, db *sqldb.DB) *Cluster {
	t.Helper()
	if db == nil {
		db = n.db
	}
	c, err := Open(context.Background(), db, Options{Node: n.Name(), TTL: n.leases.TTL(), StateFile: n.opts.StateFile,
		Log: testkit.Log(t).With("node", n.Name()+"'")})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (n *node) lostAt(cam string) (time.Time, bool) {
	n.t.mu.Lock()
	defer n.t.mu.Unlock()
	at, ok := n.t.lostAt[cam]
	return at, ok
}

// PostgreSQL goes away for several TTLs and comes back: the nodes' leases
// lapse meanwhile, but their cameras never stop (they run provisionally);
// back, each node reclaims its leases at the same epochs (neither takes the
// other's lapsed leases first), and the segments recorded meanwhile pass
// the upload and index fences.
func TestDatabaseAwayCamerasGoOn(t *testing.T) {
	ctx := context.Background()
	srv := pgtest.Dedicated(t)
	u := srv.URL("postgres")
	ttl := 2 * time.Second
	a := startNode(t, u, "node-a", ttl, nil)
	b := startNode(t, u, "node-b", ttl, nil)
	if err := a.PutAll(ctx, cameras(6)); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 15*time.Second, "6 cameras 3/3", func() bool { return evenly(t, 6, a, b) })
	before := map[*node]map[string]int64{a: a.node.Owned(), b: b.node.Owned()}

	downAt := time.Now()
	restarted := make(chan error, 1)
	go func() { restarted <- srv.Restart(4 * ttl) }()
	testkit.WaitFor(t, 3*ttl, "both nodes to run their cameras provisionally", func() bool {
		return a.node.Provisional() && b.node.Provisional()
	})
	for _, n := range []*node{a, b} {
		for cam, e := range before[n] {
			if n.node.Held(cam, e) {
				t.Errorf("%s: %s held by its clock while provisional", n.Name(), cam)
			}
			if err := n.Fence(ctx, cam, time.Now().Add(-time.Second), time.Now()); err == nil || errors.Is(err, ErrFenced) {
				t.Errorf("%s: %s: a provisional segment before the reclaim: %v, want a wait", n.Name(), cam, err)
			}
		}
	}
	testkit.Returned(t, restarted, 60*time.Second, "restart")
	back := time.Now()
	testkit.WaitFor(t, 3*ttl, "both nodes to reclaim their leases", func() bool {
		for _, n := range []*node{a, b} {
			if n.node.Provisional() {
				return false
			}
			for cam, e := range before[n] {
				if !n.node.Held(cam, e) {
					return false
				}
			}
		}
		return true
	})
	t.Logf("database away %v; leases reclaimed %v after it came back", back.Sub(downAt).Round(time.Millisecond), time.Since(back).Round(time.Millisecond))
	for _, n := range []*node{a, b} {
		lost := 0
		n.t.mu.Lock()
		for _, at := range n.t.lostAt {
			if at.After(downAt) {
				lost++
			}
		}
		n.t.mu.Unlock()
		if lost != 0 {
			t.Errorf("%s: %d cameras stopped while the database was away", n.Name(), lost)
		}
		if got := n.node.Owned(); len(got) != len(before[n]) {
			t.Errorf("%s: owns %v after, %v before", n.Name(), got, before[n])
		}
		for cam := range before[n] {
			// a segment recorded while the leases had lapsed
			start := downAt.Add(2 * ttl)
			if err := n.Fence(ctx, cam, start, start.Add(time.Second)); err != nil {
				t.Errorf("%s: %s: segment recorded provisionally: %v", n.Name(), cam, err)
			}
			tx, err := n.db.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := n.FenceIndex(ctx, tx, cam); err != nil {
				t.Errorf("%s: %s: index fence after the reclaim: %v", n.Name(), cam, err)
			}
			tx.Rollback()
		}
	}
	testkit.WaitFor(t, 5*time.Second, "still 3/3", func() bool { return evenly(t, 6, a, b) })
	// reclaimed: the next process would store them too (had this one left
	// them in its spool)
	if _, err := os.Stat(a.opts.StateFile); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("state file after the reclaim: %v", err)
	}
	next := a.next(t, nil)
	for cam := range before[a] {
		start := downAt.Add(2 * ttl)
		if err := next.Fence(ctx, cam, start, start.Add(time.Second)); err != nil {
			t.Errorf("%s: the next process: segment recorded provisionally and reclaimed: %v", cam, err)
		}
	}
}

// A node cut off from the database alone (a network split) goes on
// running its cameras provisionally while the other node takes them over
// (the cameras are pulled twice meanwhile); when it reaches the database
// again its leases have moved: it stops them, and what it recorded after
// its leases lapsed is fenced, while what it recorded before passes.
func TestSplitNodeProvisionalFenced(t *testing.T) {
	ctx := context.Background()
	u := pgtest.URL(t)
	proxy := pgtest.StartProxy(t, u)
	ttl := 2 * time.Second
	a := startNode(t, proxy.URL, "node-a", ttl, nil)
	b := startNode(t, u, "node-b", ttl, nil)
	if err := b.PutAll(ctx, cameras(4)); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 15*time.Second, "4 cameras 2/2", func() bool { return evenly(t, 4, a, b) })
	aCams := a.t.cams()
	preEnd := time.Now() // a segment a recorded before it was cut off
	preStart := preEnd.Add(-time.Second)
	time.Sleep(10 * time.Millisecond)

	proxy.Cut()
	cutAt := time.Now()
	testkit.WaitFor(t, 3*ttl, "b to take a's cameras", func() bool { return len(b.t.cams()) == 4 })
	t.Logf("b took a's cameras %v after the cut", time.Since(cutAt).Round(time.Millisecond))
	if !a.node.Provisional() {
		t.Errorf("a is not provisional")
	}
	if got := a.t.cams(); !slices.Equal(got, aCams) {
		t.Errorf("a runs %v while cut off, want %v still (provisionally)", got, aCams)
	}
	provStart := time.Now() // a segment a recorded provisionally, after b took over
	time.Sleep(time.Second)
	// were a to crash now, its next process would not store that segment
	// from its spool, but would the one from before the cut
	crashed := a.next(t, openDB(t, u))
	for _, cam := range aCams {
		if err := crashed.Fence(ctx, cam, provStart, provStart.Add(time.Second)); !errors.Is(err, ErrFenced) {
			t.Errorf("%s: a's next process after a crash: provisional segment: %v, want fenced", cam, err)
		}
		if err := crashed.Fence(ctx, cam, preStart, preEnd); err != nil {
			t.Errorf("%s: a's next process after a crash: segment from before the cut: %v", cam, err)
		}
	}

	proxy.Restore()
	restoredAt := time.Now()
	testkit.WaitFor(t, 3*ttl, "a to stop the cameras that moved", func() bool {
		for _, cam := range aCams {
			if at, ok := a.lostAt(cam); !ok || at.Before(restoredAt) {
				return false
			}
		}
		return true
	})
	if a.node.Provisional() {
		t.Errorf("a still provisional after reaching the database")
	}
	for _, cam := range aCams {
		if err := a.Fence(ctx, cam, provStart, provStart.Add(time.Second)); !errors.Is(err, ErrFenced) {
			t.Errorf("%s: a's provisional segment: %v, want fenced", cam, err)
		}
		if err := a.Fence(ctx, cam, preStart, preEnd); err != nil {
			t.Errorf("%s: a's segment from before the cut: %v", cam, err)
		}
	}
	// and so would its next process
	next := a.next(t, nil)
	for _, cam := range aCams {
		if err := next.Fence(ctx, cam, provStart, provStart.Add(time.Second)); !errors.Is(err, ErrFenced) {
			t.Errorf("%s: a's next process: provisional segment: %v, want fenced", cam, err)
		}
		if err := next.Fence(ctx, cam, preStart, preEnd); err != nil {
			t.Errorf("%s: a's next process: segment from before the cut: %v", cam, err)
		}
	}
	// back to an even spread, one owner per camera
	testkit.WaitFor(t, 15*time.Second, "2/2 again", func() bool { return evenly(t, 4, a, b) })
}

// A node cut off longer than Options.Provisional stops its cameras then,
// as when it stops at once: what it recorded provisionally is fenced.
func TestCutOffTooLongStops(t *testing.T) {
	ctx := context.Background()
	u := pgtest.URL(t)
	proxy := pgtest.StartProxy(t, u)
	ttl := 2 * time.Second
	limit := 3 * time.Second
	a := startNodeOpts(t, proxy.URL, "node-a", Options{TTL: ttl, Provisional: limit})
	if err := a.PutAll(ctx, cameras(2)); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "a owns the cameras", func() bool { return len(a.t.cams()) == 2 })
	proxy.Cut()
	cutAt := time.Now()
	testkit.WaitFor(t, 2*ttl, "a to go provisional", func() bool { return a.node.Provisional() })
	if len(a.t.cams()) != 2 {
		t.Fatalf("a stopped its cameras at the lapse")
	}
	provStart := time.Now()
	testkit.WaitFor(t, limit+2*ttl, "a to stop its cameras", func() bool { return len(a.t.cams()) == 0 })
	stopped := time.Since(cutAt)
	// the lapse comes at most 4/5 TTL after the cut, no sooner than 4/5 TTL
	// after the last renewal, sent at most TTL/3 before the cut
	if min := ttl*4/5 - ttl/3 + limit; stopped < min-100*time.Millisecond {
		t.Errorf("stopped %v after the cut, want at least %v", stopped, min)
	}
	t.Logf("cut off: cameras stopped %v after the cut (limit %v after the lapse)", stopped.Round(time.Millisecond), limit)
	if a.node.Provisional() {
		t.Errorf("still provisional after stopping")
	}
	for _, cam := range cameras(2) {
		if err := a.Fence(ctx, cam, provStart, provStart.Add(500*time.Millisecond)); !errors.Is(err, ErrFenced) {
			t.Errorf("%s: provisional segment of a camera stopped after the limit: %v", cam, err)
		}
	}
	proxy.Restore()
	testkit.WaitFor(t, 10*time.Second, "a to take its cameras again", func() bool { return len(a.t.cams()) == 2 })
}

// A database that stops answering without closing the connections (the
// packets dropped) does not hold the node's loop: its leases lapse, it
// runs its cameras provisionally, and reclaims them when the database
// answers again.
func TestStalledDatabase(t *testing.T) {
	ctx := context.Background()
	u := pgtest.URL(t)
	proxy := pgtest.StartProxy(t, u)
	ttl := 2 * time.Second
	a := startNode(t, proxy.URL, "node-a", ttl, nil)
	if err := a.PutAll(ctx, cameras(2)); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "a owns the cameras", func() bool { return len(a.t.cams()) == 2 })
	before := a.node.Owned()
	proxy.Stall()
	stalled := time.Now()
	testkit.WaitFor(t, 3*ttl, "a to go provisional", func() bool { return a.node.Provisional() })
	t.Logf("provisional %v after the database stalled", time.Since(stalled).Round(time.Millisecond))
	proxy.Restore()
	testkit.WaitFor(t, 4*ttl, "a to reclaim its leases", func() bool {
		for cam, e := range before {
			if !a.node.Held(cam, e) {
				return false
			}
		}
		return !a.node.Provisional()
	})
	if got := a.t.cams(); len(got) != 2 {
		t.Errorf("a runs %v", got)
	}
}
