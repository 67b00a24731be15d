package lease

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/internal/sqldb"
	"github.com/vigil-vms/vigil/internal/testkit"
	"github.com/vigil-vms/vigil/internal/testkit/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// open connects to url as a node would (its own pool) and migrates.
func open(t testing.TB, url string, ttl time.Duration) *Leases {
	t.Helper()
	db, err := sqldb.Open(context.Background(), sqldb.Config{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	l, err := New(context.Background(), db, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func putCameras(t testing.TB, l *Leases, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := l.Put(context.Background(), fmt.Sprintf("cam-%03d", i)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestNeedsPostgres(t *testing.T) {
	db, err := sqldb.Open(context.Background(), sqldb.Config{Path: t.TempDir() + "/v.db"})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := New(context.Background(), db, 0); err == nil {
		t.Fatal("leases on SQLite accepted")
	}
}

// Acquire, renew, release and check, with the epoch raised on every change
// of owner, and an expired lease neither renewable nor passing Check.
func TestAcquireRenewReleaseCheck(t *testing.T) {
	ctx := context.Background()
	// long enough for the statements before the expiry on a loaded machine
	l := open(t, pgtest.URL(t), 3*time.Second)
	putCameras(t, l, 0, 1)
	const cam = "cam-000"
	if _, err := l.Acquire(ctx, "nope", "a"); !errors.Is(err, ErrNoCamera) {
		t.Fatalf("unknown camera: %v", err)
	}
	e1, err := l.Acquire(ctx, cam, "a")
	if err != nil || e1 != 1 {
		t.Fatalf("acquire: epoch %d, %v", e1, err)
	}
	if _, err := l.Acquire(ctx, cam, "b"); !errors.Is(err, ErrHeld) {
		t.Fatalf("second owner: %v", err)
	}
	if err := l.Check(ctx, cam, e1); err != nil {
		t.Fatalf("check: %v", err)
	}
	if err := l.Renew(ctx, cam, "a", e1); err != nil {
		t.Fatalf("renew: %v", err)
	}
	if err := l.Release(ctx, cam, "a", e1); err != nil {
		t.Fatal(err)
	}
	if err := l.Check(ctx, cam, e1); !errors.Is(err, ErrFenced) {
		t.Fatalf("check after release: %v", err)
	}
	e2, err := l.Acquire(ctx, cam, "b")
	if err != nil || e2 != e1+1 {
		t.Fatalf("acquire by b: epoch %d, %v", e2, err)
	}
	if err := l.Renew(ctx, cam, "a", e1); !errors.Is(err, ErrFenced) {
		t.Fatalf("renew by the old owner: %v", err)
	}
	// b stops renewing: after the TTL its lease is neither valid nor renewable
	testkit.WaitFor(t, 15*time.Second, "b's lease to expire", func() bool {
		return errors.Is(l.Check(ctx, cam, e2), ErrFenced)
	})
	if err := l.Renew(ctx, cam, "b", e2); !errors.Is(err, ErrFenced) {
		t.Fatalf("renew of an expired lease: %v", err)
	}
	e3, err := l.Acquire(ctx, cam, "b")
	if err != nil || e3 != e2+1 {
		t.Fatalf("re-acquire after expiry: epoch %d, %v", e3, err)
	}
}

// A writer that checks inside its transaction holds the lease row: a
// take-over of the expired lease waits for the write to commit, so the old
// owner's last write lands before the new owner exists.
func TestCheckTxHoldsTakeOver(t *testing.T) {
	ctx := context.Background()
	u := pgtest.URL(t)
	l := open(t, u, 2*time.Second)
	other := open(t, u, 2*time.Second)
	putCameras(t, l, 0, 1)
	const cam = "cam-000"
	e1, err := l.Acquire(ctx, cam, "a")
	if err != nil {
		t.Fatal(err)
	}
	tx, err := l.db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if err := l.CheckTx(ctx, tx, cam, e1); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 15*time.Second, "the lease to expire", func() bool {
		return errors.Is(other.Check(ctx, cam, e1), ErrFenced)
	})
	took := make(chan error, 1)
	go func() {
		_, err := other.Acquire(ctx, cam, "b")
		took <- err
	}()
	select {
	case err := <-took:
		t.Fatalf("take-over did not wait for the writer's transaction: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	testkit.Returned(t, took, 10*time.Second, "take-over after the commit")
}

// member is a node under test with a writer per camera it owns.
type member struct {
	*Node
	stop func()

	mu      sync.Mutex
	writing map[string]int64     // what OnAcquire started and OnLose has not stopped
	started map[string]time.Time // camera → when OnAcquire last started it
	stopped map[string]time.Time // camera → when OnLose last stopped it
	changes []string
	frozen  chan struct{} // non-nil: the loop blocks until it is closed
}

func (m *member) writers() map[string]int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]int64{}
	for c, e := range m.writing {
		out[c] = e
	}
	return out
}

func (m *member) freeze() {
	m.mu.Lock()
	m.frozen = make(chan struct{})
	m.mu.Unlock()
}

func (m *member) thaw() {
	m.mu.Lock()
	close(m.frozen)
	m.frozen = nil
	m.mu.Unlock()
}

func startMember(t testing.TB, url, name string, ttl time.Duration) *member {
	return startMemberVia(t, url, url, name, ttl)
}

func startMemberVia(t testing.TB, url, nodeURL, name string, ttl time.Duration) *member {
	t.Helper()
	return startMemberWith(t, nodeURL, name, ttl, nil)
}

// startMemberWith starts a member on nodeURL, with set (if not nil)
// adjusting its Node before it runs.
func startMemberWith(t testing.TB, nodeURL, name string, ttl time.Duration, set func(*Node)) *member {
	t.Helper()
	m := &member{writing: map[string]int64{}, started: map[string]time.Time{}, stopped: map[string]time.Time{}}
	m.Node = &Node{
		Leases:    open(t, nodeURL, ttl),
		Name:      name,
		Advertise: "http://" + name + ".test:8080",
		Logger:    testkit.Log(t),
		OnAcquire: func(c string, e int64) {
			m.mu.Lock()
			defer m.mu.Unlock()
			if _, dup := m.writing[c]; dup {
				t.Errorf("%s: acquired %s twice", name, c)
			}
			m.writing[c] = e
			m.started[c] = time.Now()
		},
		OnLose: func(c string) {
			m.mu.Lock()
			defer m.mu.Unlock()
			delete(m.writing, c)
			m.stopped[c] = time.Now()
		},
		OnChange: func(c string) {
			m.mu.Lock()
			defer m.mu.Unlock()
			m.changes = append(m.changes, c)
		},
	}
	m.beforeTick = func(ctx context.Context) {
		m.mu.Lock()
		f := m.frozen
		m.mu.Unlock()
		if f != nil {
			select {
			case <-f:
			case <-ctx.Done():
			}
		}
	}
	if set != nil {
		set(m.Node)
	}
	m.stop = testkit.Run(t, m.Run)
	return m
}

// spread returns how many cameras each member writes, and fails the test if
// two members write one camera.
func spread(t testing.TB, ms ...*member) ([]int, int) {
	t.Helper()
	counts, total, dup := tally(ms...)
	if dup != "" {
		t.Fatal(dup)
	}
	return counts, total
}

// tally counts the cameras each member writes; dup names a camera two of
// them write, if any.
func tally(ms ...*member) (counts []int, total int, dup string) {
	seen := map[string]string{}
	for _, m := range ms {
		w := m.writers()
		for c := range w {
			if other, ok := seen[c]; ok && dup == "" {
				dup = fmt.Sprintf("camera %s written by %s and %s", c, other, m.Name)
			}
			seen[c] = m.Name
		}
		counts = append(counts, len(w))
		total += len(w)
	}
	return counts, total, dup
}

func even(counts []int, total, want int) bool {
	if total != want {
		return false
	}
	lo, hi := counts[0], counts[0]
	for _, c := range counts {
		lo, hi = min(lo, c), max(hi, c)
	}
	return hi-lo <= 1
}

// Three nodes share 30 cameras 10 each, and the cameras added later are
// spread too (taken at once through NOTIFY, not at the next renewal).
func TestEvenSpread(t *testing.T) {
	u := pgtest.URL(t)
	ttl := 30 * time.Second // renewals every 10 s: anything faster is NOTIFY's doing
	l := open(t, u, ttl)
	putCameras(t, l, 0, 30)
	a, b, c := startMember(t, u, "node-a", ttl), startMember(t, u, "node-b", ttl), startMember(t, u, "node-c", ttl)
	testkit.WaitFor(t, 20*time.Second, "30 cameras spread 10/10/10", func() bool {
		counts, total := spread(t, a, b, c)
		return total == 30 && counts[0] == 10 && counts[1] == 10 && counts[2] == 10
	})
	start := time.Now()
	putCameras(t, l, 30, 33)
	testkit.WaitFor(t, 8*time.Second, "3 new cameras taken", func() bool {
		counts, total := spread(t, a, b, c)
		return even(counts, total, 33)
	})
	t.Logf("3 new cameras taken in %v (renewal period %v)", time.Since(start).Round(time.Millisecond), ttl/3)
	// the database agrees with the writers
	hs, err := l.Holders(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hs {
		var owner *member
		for _, m := range []*member{a, b, c} {
			if m.Name == h.Node {
				owner = m
			}
		}
		if owner == nil || owner.writers()[h.Camera] != h.Epoch {
			t.Errorf("%s: held by %q at epoch %d, not what the node writes", h.Camera, h.Node, h.Epoch)
		}
	}
	nodes, err := l.Nodes(context.Background())
	if err != nil || len(nodes) != 3 {
		t.Fatalf("nodes %v, %v", nodes, err)
	}
	for _, n := range nodes {
		if n.State != "up" || n.Cameras != 11 || n.Advertise == "" {
			t.Errorf("node %+v", n)
		}
	}
}

// A node that stops renewing (frozen for good, as a dead process) loses its
// cameras after the TTL; the others take them over and end up even.
func TestTakeOverAfterTTL(t *testing.T) {
	u := pgtest.URL(t)
	ttl := 2 * time.Second
	l := open(t, u, ttl)
	putCameras(t, l, 0, 30)
	a, b, c := startMember(t, u, "node-a", ttl), startMember(t, u, "node-b", ttl), startMember(t, u, "node-c", ttl)
	testkit.WaitFor(t, 20*time.Second, "even spread", func() bool {
		counts, total := spread(t, a, b, c)
		return even(counts, total, 30)
	})
	held := c.writers()
	c.freeze()
	start := time.Now()
	testkit.WaitFor(t, ttl+10*time.Second, "a and b to carry all 30 cameras", func() bool {
		counts, total := spread(t, a, b)
		return even(counts, total, 30)
	})
	took := time.Since(start)
	// c's last renewal was sent TTL·4/5 before heldUntil; the database
	// (same clock) let its leases go a full TTL after that, not before
	lastRenewal := time.Unix(0, c.heldUntil.Load()).Add(-(ttl - ttl/5))
	expiry := lastRenewal.Add(ttl)
	for cam := range held {
		for _, m := range []*member{a, b} {
			m.mu.Lock()
			if _, owns := m.writing[cam]; owns && m.started[cam].Before(expiry) {
				t.Errorf("%s: %s took it %v before c's lease expired", cam, m.Name, expiry.Sub(m.started[cam]))
			}
			m.mu.Unlock()
		}
	}
	t.Logf("take-over of a dead node's cameras: %v after it stopped, %v after its last renewal (leaseTTL %v)",
		took.Round(time.Millisecond), time.Since(lastRenewal).Round(time.Millisecond), ttl)
	nodes, err := l.Nodes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if want := map[bool]string{true: "down", false: "up"}[n.Name == "node-c"]; n.State != want {
			t.Errorf("%s: state %s, want %s", n.Name, n.State, want)
		}
	}
}

// A frozen node that resumes after its cameras moved is fenced: Check
// refuses its old epochs at once, its loop stops those writers, and no
// camera ends with two writers.
func TestFrozenNodeFenced(t *testing.T) {
	ctx := context.Background()
	u := pgtest.URL(t)
	testkit.CheckLeaks(t) // after the server's start: its goroutines live on
	ttl := 2 * time.Second
	l := open(t, u, ttl)
	putCameras(t, l, 0, 30)
	a, b, c := startMember(t, u, "node-a", ttl), startMember(t, u, "node-b", ttl), startMember(t, u, "node-c", ttl)
	testkit.WaitFor(t, 20*time.Second, "even spread", func() bool {
		counts, total := spread(t, a, b, c)
		return even(counts, total, 30)
	})
	c.freeze()
	before := c.writers() // what the paused process believes it writes
	testkit.WaitFor(t, ttl+10*time.Second, "a and b to take c's cameras", func() bool {
		_, total := spread(t, a, b)
		return total == 30
	})
	for cam, epoch := range before {
		if err := l.Check(ctx, cam, epoch); !errors.Is(err, ErrFenced) {
			t.Errorf("%s: the frozen node's epoch %d still passes Check: %v", cam, epoch, err)
		}
		// and by its own clock too, which a resumed writer asks first
		if c.Held(cam, epoch) {
			t.Errorf("%s: the frozen node still holds epoch %d by its clock", cam, epoch)
		}
	}
	c.thaw()
	// c comes back: its first round finds the leases moved and stops every
	// stale writer (until then they are fenced by Check, as shown above)
	testkit.WaitFor(t, 10*time.Second, "c to stop its stale writers", func() bool {
		now := c.writers()
		for cam, epoch := range before {
			if now[cam] == epoch {
				return false
			}
		}
		return true
	})
	// and rejoins with its share
	testkit.WaitFor(t, 20*time.Second, "an even spread with c back", func() bool {
		counts, total := spread(t, a, b, c)
		return even(counts, total, 30)
	})
	for cam, epoch := range c.writers() {
		if old, ok := before[cam]; ok && old == epoch {
			t.Errorf("%s: c still writes at its old epoch %d", cam, epoch)
		}
		if err := l.Check(ctx, cam, epoch); err != nil {
			t.Errorf("%s: c's new epoch %d: %v", cam, epoch, err)
		}
	}
}

// A node stopped cleanly releases its leases: the others carry its cameras
// within 3 s, whatever the TTL.
func TestCleanStopHandsOver(t *testing.T) {
	u := pgtest.URL(t)
	testkit.CheckLeaks(t) // after the server's start: its goroutines live on
	ttl := 30 * time.Second
	l := open(t, u, ttl)
	putCameras(t, l, 0, 30)
	a, b, c := startMember(t, u, "node-a", ttl), startMember(t, u, "node-b", ttl), startMember(t, u, "node-c", ttl)
	testkit.WaitFor(t, 20*time.Second, "even spread", func() bool {
		counts, total := spread(t, a, b, c)
		return even(counts, total, 30)
	})
	start := time.Now()
	b.stop()
	if w := b.writers(); len(w) != 0 {
		t.Fatalf("b stopped but still writes %v", w)
	}
	testkit.WaitFor(t, 10*time.Second, "a and c to carry all 30 cameras", func() bool {
		counts, total := spread(t, a, c)
		return even(counts, total, 30)
	})
	took := time.Since(start)
	t.Logf("hand-over on a clean stop: %v (leaseTTL %v)", took.Round(time.Millisecond), ttl)
	if took > 3*time.Second {
		t.Errorf("hand-over took %v, want under 3 s", took)
	}
	nodes, err := l.Nodes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if n.Name == "node-b" && (n.State != "down" || n.Cameras != 0) {
			t.Errorf("stopped node: %+v", n)
		}
	}
}

// A camera change reaches its owner at once through NOTIFY (the TTL is so
// long that no renewal round happens meanwhile), and a deleted camera's
// writer stops.
func TestNotifyReachesOwner(t *testing.T) {
	ctx := context.Background()
	u := pgtest.URL(t)
	testkit.CheckLeaks(t) // after the server's start: its goroutines live on
	ttl := 60 * time.Second
	l := open(t, u, ttl)
	putCameras(t, l, 0, 6)
	a, b := startMember(t, u, "node-a", ttl), startMember(t, u, "node-b", ttl)
	testkit.WaitFor(t, 20*time.Second, "even spread", func() bool {
		counts, total := spread(t, a, b)
		return even(counts, total, 6)
	})
	owner, other := a, b
	if _, ok := b.writers()["cam-002"]; ok {
		owner, other = b, a
	}
	start := time.Now()
	if err := l.Changed(ctx, "cam-002"); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 5*time.Second, "the owner to hear of the change", func() bool {
		owner.mu.Lock()
		defer owner.mu.Unlock()
		return len(owner.changes) == 1 && owner.changes[0] == "cam-002"
	})
	t.Logf("camera change reached its owner in %v", time.Since(start).Round(time.Millisecond))
	other.mu.Lock()
	if len(other.changes) != 0 {
		t.Errorf("a node that does not own the camera was told: %v", other.changes)
	}
	other.mu.Unlock()
	if err := l.Delete(ctx, "cam-002"); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 5*time.Second, "the deleted camera's writer to stop", func() bool {
		_, ok := owner.writers()["cam-002"]
		return !ok
	})
	if a.Stats().Notifications == 0 || b.Stats().Notifications == 0 {
		t.Errorf("notifications: a %d, b %d", a.Stats().Notifications, b.Stats().Notifications)
	}
}

func TestFairShare(t *testing.T) {
	live := []string{"a", "b", "c"}
	for _, c := range []struct {
		node  string
		total int
		want  int
	}{
		{"a", 30, 10}, {"b", 30, 10}, {"a", 31, 11}, {"b", 31, 10}, {"a", 32, 11}, {"b", 32, 11}, {"c", 32, 10},
		{"a", 0, 0}, {"c", 2, 0}, {"x", 30, 0},
	} {
		if got := fairShare(live, c.node, c.total); got != c.want {
			t.Errorf("fairShare(%s, %d) = %d, want %d", c.node, c.total, got, c.want)
		}
	}
}

// A node cut off from the database (a network split, here a proxy that
// drops its connections) with a negative ProvisionalMax stops writing when
// its leases lapse by its own clock, before the other nodes take its
// cameras over.
func TestCutOffNodeStopsBeforeTakeOver(t *testing.T) {
	u := pgtest.URL(t)
	testkit.CheckLeaks(t) // after the server's start: its goroutines live on
	proxy := pgtest.StartProxy(t, u)
	ttl := 2 * time.Second
	l := open(t, u, ttl)
	putCameras(t, l, 0, 30)
	a, b := startMember(t, u, "node-a", ttl), startMember(t, u, "node-b", ttl)
	c := startMemberWith(t, proxy.URL, "node-c", ttl, func(n *Node) { n.ProvisionalMax = -1 })
	testkit.WaitFor(t, 20*time.Second, "even spread", func() bool {
		counts, total := spread(t, a, b, c)
		return even(counts, total, 30)
	})
	held := c.writers()
	proxy.Cut()
	testkit.WaitFor(t, ttl+10*time.Second, "a and b to carry all 30 cameras", func() bool {
		_, total, _ := tally(a, b)
		return total == 30
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	margin := time.Hour
	for cam, epoch := range held {
		if c.Held(cam, epoch) {
			t.Errorf("%s: c still holds it by its own clock", cam)
		}
		stopped, ok := c.stopped[cam]
		if !ok {
			t.Errorf("%s: c never stopped writing it", cam)
			continue
		}
		var started time.Time // when the camera's new owner started it
		for _, m := range []*member{a, b} {
			m.mu.Lock()
			if _, owns := m.writing[cam]; owns {
				started = m.started[cam]
			}
			m.mu.Unlock()
		}
		margin = min(margin, started.Sub(stopped))
		if !stopped.Before(started) {
			t.Errorf("%s: c stopped at %v, the new owner started at %v: two writers for %v",
				cam, stopped.Format("15:04:05.000"), started.Format("15:04:05.000"), started.Sub(stopped))
		}
	}
	t.Logf("c stopped its %d cameras; the new owners started them at least %v later", len(held), margin.Round(time.Millisecond))
}

// PostgreSQL goes away for longer than the leases last and comes back: the
// nodes keep their writers meanwhile (provisionally: Held is false), then
// reclaim every lease at the same epoch (neither takes the other's lapsed
// leases first), and listen again.
func TestDatabaseRestart(t *testing.T) {
	ctx := context.Background()
	srv := pgtest.Dedicated(t)
	u := srv.URL("postgres")
	ttl := 2 * time.Second
	l := open(t, u, ttl)
	putCameras(t, l, 0, 10)
	a, b := startMember(t, u, "node-a", ttl), startMember(t, u, "node-b", ttl)
	testkit.WaitFor(t, 20*time.Second, "even spread", func() bool {
		counts, total := spread(t, a, b)
		return even(counts, total, 10)
	})
	before := map[string]int64{}
	for _, m := range []*member{a, b} {
		for c, e := range m.writers() {
			before[c] = e
		}
	}
	restarted := make(chan error, 1)
	downAt := time.Now()
	go func() { restarted <- srv.Restart(2 * ttl) }()
	testkit.WaitFor(t, 4*ttl, "both nodes provisional while the database is away", func() bool {
		return a.Provisional() && b.Provisional()
	})
	for c, e := range before {
		if a.Held(c, e) || b.Held(c, e) {
			t.Errorf("%s held at epoch %d by a node's clock while the database is away", c, e)
		}
	}
	testkit.Returned(t, restarted, 60*time.Second, "restart")
	start := time.Now()
	testkit.WaitFor(t, 30*time.Second, "every lease reclaimed", func() bool {
		for c, e := range before {
			if !a.Held(c, e) && !b.Held(c, e) {
				return false
			}
		}
		return true
	})
	t.Logf("leases reclaimed %v after the database came back", time.Since(start).Round(time.Millisecond))
	counts, total := spread(t, a, b)
	if !even(counts, total, 10) {
		t.Errorf("spread %v after the restart", counts)
	}
	for _, m := range []*member{a, b} {
		m.mu.Lock()
		for c, at := range m.stopped {
			if at.After(downAt) {
				t.Errorf("%s stopped %s at %v, while the database was away", m.Name, c, at.Format("15:04:05.000"))
			}
		}
		m.mu.Unlock()
		for c, e := range m.writers() {
			if e != before[c] {
				t.Errorf("%s: epoch %d after the restart, %d before", c, e, before[c])
			}
		}
	}
	// the listeners are back too: a change reaches its owner at once
	owner := a
	if _, ok := b.writers()["cam-003"]; ok {
		owner = b
	}
	testkit.WaitFor(t, 10*time.Second, "a change to reach the owner after the restart", func() bool {
		owner.mu.Lock()
		n := len(owner.changes)
		owner.mu.Unlock()
		if n > 0 {
			return true
		}
		if err := l.Changed(ctx, "cam-003"); err != nil {
			t.Logf("notify: %v", err)
		}
		return false
	})
}

// A lease that expired is reclaimed at its epoch by the node it names, as
// long as nobody took it; once taken (or released) it is not.
func TestReclaim(t *testing.T) {
	ctx := context.Background()
	l := open(t, pgtest.URL(t), time.Second)
	putCameras(t, l, 0, 1)
	const cam = "cam-000"
	e1, err := l.Acquire(ctx, cam, "a")
	if err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "a's lease to expire", func() bool {
		return errors.Is(l.Check(ctx, cam, e1), ErrFenced)
	})
	if err := l.Reclaim(ctx, cam, "b", e1); !errors.Is(err, ErrFenced) {
		t.Fatalf("reclaim by another node: %v", err)
	}
	if err := l.Reclaim(ctx, cam, "a", e1+1); !errors.Is(err, ErrFenced) {
		t.Fatalf("reclaim at another epoch: %v", err)
	}
	if err := l.Reclaim(ctx, cam, "a", e1); err != nil {
		t.Fatalf("reclaim: %v", err)
	}
	if err := l.Check(ctx, cam, e1); err != nil {
		t.Fatalf("check after the reclaim: %v", err)
	}
	testkit.WaitFor(t, 10*time.Second, "a's lease to expire again", func() bool {
		return errors.Is(l.Check(ctx, cam, e1), ErrFenced)
	})
	e2, err := l.Acquire(ctx, cam, "b")
	if err != nil || e2 != e1+1 {
		t.Fatalf("take-over: %d, %v", e2, err)
	}
	if err := l.Reclaim(ctx, cam, "a", e1); !errors.Is(err, ErrFenced) {
		t.Fatalf("reclaim after a take-over: %v", err)
	}
	if err := l.Release(ctx, cam, "b", e2); err != nil {
		t.Fatal(err)
	}
	if err := l.Reclaim(ctx, cam, "b", e2); !errors.Is(err, ErrFenced) {
		t.Fatalf("reclaim after a release: %v", err)
	}
}

// A node cut off alone from the database goes on writing provisionally
// (Held false) while the others take its cameras over; when it reaches
// the database again, it stops the writers of the cameras that moved, and
// takes its share again with new epochs.
func TestCutOffNodeProvisional(t *testing.T) {
	u := pgtest.URL(t)
	proxy := pgtest.StartProxy(t, u)
	ttl := 2 * time.Second
	l := open(t, u, ttl)
	putCameras(t, l, 0, 12)
	a := startMember(t, u, "node-a", ttl)
	c := startMemberVia(t, u, proxy.URL, "node-c", ttl)
	testkit.WaitFor(t, 20*time.Second, "even spread", func() bool {
		counts, total := spread(t, a, c)
		return even(counts, total, 12)
	})
	held := c.writers()
	proxy.Cut()
	testkit.WaitFor(t, ttl+10*time.Second, "a to carry all 12 cameras", func() bool {
		_, total, _ := tally(a)
		return total == 12
	})
	if !c.Provisional() {
		t.Errorf("c is not provisional")
	}
	for cam, e := range c.writers() {
		if held[cam] != e {
			t.Errorf("%s: c writes at %d, wrote at %d", cam, e, held[cam])
		}
		if c.Held(cam, e) {
			t.Errorf("%s: c holds it by its own clock while cut off", cam)
		}
	}
	if len(c.writers()) != len(held) {
		t.Errorf("c writes %v while cut off, wrote %v", c.writers(), held)
	}
	restored := time.Now()
	proxy.Restore()
	testkit.WaitFor(t, 10*time.Second, "c to stop its stale writers", func() bool {
		now := c.writers()
		for cam, e := range held {
			if now[cam] == e {
				return false
			}
		}
		return true
	})
	c.mu.Lock()
	for cam := range held {
		if at := c.stopped[cam]; at.Before(restored) {
			t.Errorf("%s: c stopped it at %v, before it reached the database", cam, at.Format("15:04:05.000"))
		}
	}
	c.mu.Unlock()
	testkit.WaitFor(t, 20*time.Second, "an even spread with c back", func() bool {
		counts, total := spread(t, a, c)
		return even(counts, total, 12)
	})
}

// A lone node's first round takes every camera and has started them
// (OnAcquire) when FirstRound is closed: the app serves from then on.
func TestFirstRound(t *testing.T) {
	u := pgtest.URL(t)
	ttl := 30 * time.Second
	putCameras(t, open(t, u, ttl), 0, 5)
	m := startMember(t, u, "node-a", ttl)
	select {
	case <-m.FirstRound():
	case <-time.After(20 * time.Second):
		t.Fatal("first round not ended within 20 s")
	}
	if w := m.writers(); len(w) != 5 {
		t.Fatalf("after the first round the node writes %d cameras, want 5", len(w))
	}

	// a node that cannot join ends its first round too (Run returned)
	bad := &Node{Leases: open(t, u, ttl), Name: ""}
	if err := bad.Run(context.Background()); err == nil {
		t.Fatal("a node without a name ran")
	}
	select {
	case <-bad.FirstRound():
	default:
		t.Fatal("FirstRound not closed after Run returned")
	}
}
