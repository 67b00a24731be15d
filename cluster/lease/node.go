package lease

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/stdlib"
)

// Node is this process as a member of the cluster: it heartbeats, renews
// its leases every TTL/3, takes free and expired leases up to its fair
// share, sheds those above it, and releases all of them when Run's context
// ends. Create it with its fields set, then call Run once.
//
// The callbacks run on Run's goroutine, one at a time, in the order of the
// events; they must not block for long (start or stop the camera's work and
// return).
type Node struct {
	// Leases is the lease table. Required.
	Leases *Leases
	// Name is this node's name, unique in the cluster (cluster.node).
	// Required.
	Name string
	// Advertise is the base URL other nodes reach this node's HTTP server at
	// (cluster.advertise).
	Advertise string
	// OnAcquire: this node now owns camera at epoch (start ingest and
	// recording; pass epoch to the writers' Check).
	OnAcquire func(camera string, epoch int64)
	// OnLose: this node no longer owns camera (shed, released, deleted,
	// expired or taken over): stop writing it.
	OnLose func(camera string)
	// OnChange: a camera this node owns changed its settings.
	OnChange func(camera string)
	// OnProvisional, when set, is told when the node starts running its
	// cameras provisionally (true; Owned and SafeUntil tell which and
	// since when), and when that ends (false): the cameras still owned then
	// were reclaimed at their epochs; those lost meanwhile had OnLose
	// called while Provisional was still true.
	OnProvisional func(on bool)
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// ProvisionalMax is how long the node keeps running its cameras after
	// its leases lapsed by its own clock because the database does not
	// answer (see [Node.Provisional]); past it, it stops them. 0 means
	// DefaultProvisional × the TTL; a negative value stops them as soon as
	// the leases lapse.
	ProvisionalMax time.Duration

	firstOnce sync.Once
	first     chan struct{} // closed when the first round has ended

	mu      sync.Mutex
	owned   map[string]int64 // camera → epoch
	changed map[string]bool  // cameras notified since the last tick
	wake    chan struct{}

	// beforeTick, when set (tests), runs at the start of every tick: a test
	// blocks in it to freeze the node as a paused process would be.
	beforeTick func(ctx context.Context)
	// BeforeTick is beforeTick for the tests of other packages (cluster).
	BeforeTick func(ctx context.Context)

	// heldUntil (unix ns) is when the leases lapse by this node's own clock:
	// the sending of the last successful renewal plus 4/5 of the TTL. The
	// database expires them no earlier than a full TTL after that sending
	// (its now() is read later), so a node cut off from the database knows
	// its writers provisional (or stops them, ProvisionalMax negative) TTL/5
	// before any other node can take its cameras, a margin for a late timer
	// on a loaded machine.
	heldUntil atomic.Int64

	// provisional: the leases lapsed while the database did not answer; the
	// cameras still run, their ownership to be reclaimed (see Provisional).
	provisional atomic.Bool
	// cutSince (loop only) is when the rounds began to fail; zero while
	// they succeed. graceUntil (loop only): after a failed round, the node
	// does not take the expired leases of other nodes before then.
	cutSince, graceUntil time.Time

	stats struct {
		ticks, roundTrips, renewed, notifications, acquired, lost atomic.Int64
	}
}

// Stats counts the machinery's work since Run started.
type Stats struct {
	Ticks         int64 // passes of the loop
	RoundTrips    int64 // statements and transactions sent to the database
	Renewed       int64 // lease rows renewed
	Notifications int64 // NOTIFY messages received
	Acquired      int64 // leases taken
	Lost          int64 // leases given up or lost
}

// Stats returns the counters.
func (n *Node) Stats() Stats {
	s := &n.stats
	return Stats{s.ticks.Load(), s.roundTrips.Load(), s.renewed.Load(), s.notifications.Load(), s.acquired.Load(), s.lost.Load()}
}

// Owned returns the cameras this node owns, with their epochs.
func (n *Node) Owned() map[string]int64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make(map[string]int64, len(n.owned))
	for c, e := range n.owned {
		out[c] = e
	}
	return out
}

// Held reports whether this node still holds camera at epoch by its own
// clock: it owns it at that epoch and its last renewal was less than 4/5
// of the TTL ago. Writers ask it before each write (it costs no round trip) and
// [Leases.Check] before each segment upload and index write.
func (n *Node) Held(camera string, epoch int64) bool {
	if time.Now().UnixNano() >= n.heldUntil.Load() {
		return false
	}
	e, ok := n.Epoch(camera)
	return ok && e == epoch
}

// DefaultProvisional is ProvisionalMax's default, in TTLs: with the
// default TTL of 10 s a node cut off from the database keeps recording for
// 100 s after its leases lapsed, enough for a restart of PostgreSQL or a
// fail-over to its standby, and short enough that a node split from the
// database (whose cameras the others have taken over) does not pull them
// a second time for long nor fill its spool with a recording that will be
// discarded.
const DefaultProvisional = 10

func (n *Node) provisionalMax() time.Duration {
	if n.ProvisionalMax == 0 {
		return DefaultProvisional * n.Leases.ttl
	}
	return n.ProvisionalMax
}

// Provisional reports whether the node runs its cameras provisionally: its
// leases lapsed by its own clock while the database did not answer, and it
// has not reached the database since. What its writers record meanwhile
// may be stored only once the node has reclaimed the camera's lease at the
// same epoch (nobody took it over: the database was away for everyone);
// if the epoch moved (the node alone was cut off, and another took the
// camera), the camera is lost (OnLose) while Provisional is still true, and
// what was recorded after the lapse must be fenced. Held is false
// meanwhile.
func (n *Node) Provisional() bool { return n.provisional.Load() }

// SafeUntil is the earliest moment the database can expire this node's
// leases: the sending of the last successful renewal plus the TTL (zero
// before the first). Until then no other node can own a camera this node
// held, so what its writers wrote before that moment was written by the one
// owner; a camera lost later (a paused process that woke up) may have had a
// second writer.
func (n *Node) SafeUntil() time.Time {
	u := n.heldUntil.Load()
	if u == 0 {
		return time.Time{}
	}
	return time.Unix(0, u).Add(n.Leases.ttl / 5)
}

// Epoch returns the epoch at which this node owns camera, if it does.
func (n *Node) Epoch(camera string) (int64, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	e, ok := n.owned[camera]
	return e, ok
}

func (n *Node) poke() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// FirstRound is closed once Run's first lease round has ended: the
// cameras of this node's share are taken and OnAcquire has run for each
// (or the round failed), or Run returned without one. A node serves its
// cameras' viewers from then on.
func (n *Node) FirstRound() <-chan struct{} {
	n.firstOnce.Do(func() { n.first = make(chan struct{}) })
	return n.first
}

// Run joins the cluster and runs the loop until ctx ends; then it releases
// every lease (so that the others take the cameras over within seconds) and
// marks the node down. It returns ctx's error, or the error that stopped it
// from joining.
func (n *Node) Run(ctx context.Context) error {
	firstEnded := false
	endFirst := func() {
		if !firstEnded {
			firstEnded = true
			n.FirstRound()
			close(n.first)
		}
	}
	defer endFirst()
	if n.Leases == nil || n.Name == "" {
		return errors.New("lease: node needs Leases and Name")
	}
	if n.Logger == nil {
		n.Logger = slog.Default()
	}
	n.owned = map[string]int64{}
	n.changed = map[string]bool{}
	n.wake = make(chan struct{}, 1)
	if err := n.join(ctx); err != nil {
		return err
	}
	lctx, stopListen := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		n.listen(lctx)
	}()
	defer func() {
		stopListen()
		wg.Wait()
	}()

	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			n.leave()
			return ctx.Err()
		case <-timer.C:
		case <-n.wake:
		}
		next, err := n.tick(ctx)
		endFirst()
		if err != nil && ctx.Err() == nil {
			n.Logger.Warn("cluster: lease round failed", "node", n.Name, "err", err)
			if n.cutSince.IsZero() {
				n.cutSince = time.Now()
			}
			next = n.Leases.ttl / 6
			// cut off from the database: once the leases lapse by our own
			// clock, the cameras run provisionally (their recording waits
			// in the spool until the leases are reclaimed), and stop when
			// that lasts too long (before another node may take over, when
			// ProvisionalMax is negative)
			left := time.Until(time.Unix(0, n.heldUntil.Load()))
			switch limit := n.provisionalMax(); {
			case left > 0:
				next = min(next, left)
			case limit < 0 || -left >= limit:
				n.dropAll()
			default:
				n.goProvisional()
				next = min(next, limit+left)
			}
		}
		timer.Stop()
		select {
		case <-timer.C:
		default:
		}
		timer.Reset(next)
	}
}

// join records the node as up and tells the others (they recompute their
// shares at once). Leases still under this name from an earlier run of the
// node are freed: their writers are gone, and whoever takes them next does
// so with a new epoch.
func (n *Node) join(ctx context.Context) error {
	l := n.Leases
	err := l.inTx(ctx, "join "+n.Name, func(tx *sqlTx) error {
		n.stats.roundTrips.Add(1)
		if _, err := tx.Exec(ctx, `INSERT INTO nodes(name, advertise, heartbeat, state, since)
			VALUES(?, ?, now(), 'up', now())
			ON CONFLICT(name) DO UPDATE SET advertise = excluded.advertise, heartbeat = now(), state = 'up', since = now()`,
			n.Name, n.Advertise); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE leases SET node = NULL, expires = '-infinity' WHERE node = ?`, n.Name); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `SELECT pg_notify(?, ?)`, ChannelLeases, "")
		return err
	})
	return err
}

// tick heartbeats, renews, and takes or sheds leases toward the fair share.
// It returns how long to wait before the next tick.
func (n *Node) tick(ctx context.Context) (time.Duration, error) {
	for _, f := range []func(context.Context){n.beforeTick, n.BeforeTick} {
		if f != nil {
			f(ctx)
			if ctx.Err() != nil {
				return 0, nil
			}
		}
	}
	n.stats.ticks.Add(1)
	l := n.Leases
	period := l.ttl / 3
	// a database that stops answering without closing the connection must
	// not hold the loop: past a TTL the round has failed anyway
	ctx, cancel := context.WithTimeout(ctx, l.ttl)
	defer cancel()

	// 1. heartbeat and renew in one transaction; the leases of cameras
	// run provisionally are reclaimed if they lapsed at the same epoch
	var reCams []string
	var reEpochs []int64
	if n.provisional.Load() {
		for c, e := range n.Owned() {
			reCams, reEpochs = append(reCams, c), append(reEpochs, e)
		}
	}
	renewed := map[string]int64{}
	sent := time.Now()
	err := l.inTx(ctx, "renew", func(tx *sqlTx) error {
		n.stats.roundTrips.Add(3)
		if _, err := tx.Exec(ctx, `UPDATE nodes SET heartbeat = now(), state = 'up' WHERE name = ?`, n.Name); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `UPDATE leases SET expires = now() + ? * interval '1 millisecond'
			WHERE node = ? AND (expires >= now() OR (camera, epoch) IN
				(SELECT * FROM unnest(CAST(? AS TEXT[]), CAST(? AS BIGINT[]))))
			RETURNING camera, epoch`, l.ttlMS(), n.Name, reCams, reEpochs)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var c string
			var e int64
			if err := rows.Scan(&c, &e); err != nil {
				return err
			}
			renewed[c] = e
		}
		return rows.Err()
	})
	if err != nil {
		return 0, err
	}
	if !n.cutSince.IsZero() {
		// back after failed rounds: the other nodes may have been cut off
		// too (a restart of the database) and their leases have lapsed;
		// give them a TTL to reclaim them before taking any. (For their
		// leases to lapse the database was away 2/3 TTL at least, so this
		// node failed for TTL/6 at least; a shorter failure was its own.)
		if sent.Sub(n.cutSince) >= l.ttl/6 {
			n.graceUntil = sent.Add(l.ttl)
		}
		n.cutSince = time.Time{}
	}
	n.stats.renewed.Add(int64(len(renewed)))
	n.mu.Lock()
	var lost []string
	for c, e := range n.owned {
		if renewed[c] != e {
			lost = append(lost, c)
			delete(n.owned, c)
		}
	}
	kept := len(n.owned)
	n.mu.Unlock()
	slices.Sort(lost)
	n.lose(lost) // Provisional still tells which losses ended a provisional run
	if n.provisional.Swap(false) {
		n.Logger.Warn("cluster: the database answers again; leases reclaimed", "node", n.Name,
			"reclaimed", kept, "taken over meanwhile", len(lost))
		n.provisionalEnded()
	}
	// only now: a camera lost was lost while the previous renewal was in
	// force (see SafeUntil)
	n.heldUntil.Store(sent.Add(l.ttl - l.ttl/5).UnixNano())

	// 2. the fair share: cameras spread evenly over the live nodes, the
	// remainder to the first nodes by name
	var live []string
	var total int
	var nextExpiry float64 // seconds until the earliest live lease of another node expires; 0 if none
	n.stats.roundTrips.Add(1)
	err = l.db.QueryRow(ctx, `SELECT
			coalesce((SELECT array_agg(name ORDER BY name) FROM nodes
				WHERE state = 'up' AND heartbeat >= now() - ? * interval '1 millisecond'), '{}'),
			(SELECT count(*) FROM leases),
			coalesce((SELECT extract(epoch FROM min(expires) - now()) FROM leases
				WHERE node IS NOT NULL AND node <> ? AND expires >= now()), 0)`,
		l.ttlMS(), n.Name).Scan(pgtype.NewMap().SQLScanner(&live), &total, &nextExpiry)
	if err != nil {
		return 0, fmt.Errorf("lease: share: %w", err)
	}
	target := fairShare(live, n.Name, total)
	have := len(renewed)
	switch {
	case have > target:
		if err := n.shed(ctx, renewed, have-target); err != nil {
			return 0, err
		}
	case have < target:
		if err := n.take(ctx, target-have, time.Now().Before(n.graceUntil)); err != nil {
			return 0, err
		}
	}

	// 3. settings changed for cameras this node owns
	n.mu.Lock()
	var changed []string
	for c := range n.changed {
		if _, ok := n.owned[c]; ok {
			changed = append(changed, c)
		}
	}
	clear(n.changed)
	n.mu.Unlock()
	slices.Sort(changed)
	for _, c := range changed {
		if n.OnChange != nil {
			n.OnChange(c)
		}
	}

	// wake when another node's lease expires, to take it over then
	if nextExpiry > 0 {
		if d := time.Duration(nextExpiry*float64(time.Second)) + 20*time.Millisecond; d < period {
			period = d
		}
	}
	return period, nil
}

// fairShare is node's share of total cameras over the live nodes: the
// quotient, plus one for the first (total mod nodes) nodes by name. A node
// missing from live gets none.
func fairShare(live []string, node string, total int) int {
	i := slices.Index(live, node)
	if i < 0 {
		return 0
	}
	share := total / len(live)
	if i < total%len(live) {
		share++
	}
	return share
}

// take acquires up to k free or expired leases (only free ones in grace,
// after the node was cut off). SKIP LOCKED keeps nodes that take at the
// same moment from waiting on each other's rows.
func (n *Node) take(ctx context.Context, k int, grace bool) error {
	l := n.Leases
	type got struct {
		camera string
		epoch  int64
	}
	var taken []got
	err := l.inTx(ctx, "take", func(tx *sqlTx) error {
		n.stats.roundTrips.Add(2)
		rows, err := tx.Query(ctx, `UPDATE leases SET node = ?, epoch = epoch + 1,
				expires = now() + ? * interval '1 millisecond'
			WHERE camera IN (SELECT camera FROM leases WHERE node IS NULL OR (expires < now() AND NOT CAST(? AS BOOLEAN))
				ORDER BY camera LIMIT ? FOR UPDATE SKIP LOCKED)
			RETURNING camera, epoch`, n.Name, l.ttlMS(), grace, k)
		if err != nil {
			return err
		}
		for rows.Next() {
			var g got
			if err := rows.Scan(&g.camera, &g.epoch); err != nil {
				rows.Close()
				return err
			}
			taken = append(taken, g)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(taken) > 0 {
			n.stats.roundTrips.Add(1)
			_, err = tx.Exec(ctx, `SELECT pg_notify(?, ?)`, ChannelLeases, "")
		}
		return err
	})
	if err != nil {
		return err
	}
	slices.SortFunc(taken, func(a, b got) int { return cmpString(a.camera, b.camera) })
	n.mu.Lock()
	for _, g := range taken {
		n.owned[g.camera] = g.epoch
	}
	n.mu.Unlock()
	n.stats.acquired.Add(int64(len(taken)))
	for _, g := range taken {
		if n.OnAcquire != nil {
			n.OnAcquire(g.camera, g.epoch)
		}
	}
	return nil
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// shed releases k of the leases held (the last by camera id), so that a
// node below its share takes them.
func (n *Node) shed(ctx context.Context, held map[string]int64, k int) error {
	cams := make([]string, 0, len(held))
	for c := range held {
		cams = append(cams, c)
	}
	slices.Sort(cams)
	cams = cams[len(cams)-k:]
	// stop the writers first, then free the rows
	n.mu.Lock()
	for _, c := range cams {
		delete(n.owned, c)
	}
	n.mu.Unlock()
	n.lose(cams)
	return n.release(ctx, cams)
}

func (n *Node) release(ctx context.Context, cams []string) error {
	if len(cams) == 0 {
		return nil
	}
	return n.Leases.inTx(ctx, "release", func(tx *sqlTx) error {
		n.stats.roundTrips.Add(2)
		if _, err := tx.Exec(ctx, `UPDATE leases SET node = NULL, expires = '-infinity'
			WHERE node = ? AND camera = ANY(?)`, n.Name, cams); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `SELECT pg_notify(?, ?)`, ChannelLeases, "")
		return err
	})
}

func (n *Node) lose(cams []string) {
	n.stats.lost.Add(int64(len(cams)))
	for _, c := range cams {
		if n.OnLose != nil {
			n.OnLose(c)
		}
	}
}

// goProvisional: the leases lapsed by the node's own clock, the database
// does not answer; the cameras go on running (see Provisional).
func (n *Node) goProvisional() {
	if n.provisional.Load() {
		return
	}
	n.mu.Lock()
	k := len(n.owned)
	n.mu.Unlock()
	if k == 0 {
		return
	}
	n.provisional.Store(true)
	if n.OnProvisional != nil {
		n.OnProvisional(true)
	}
	n.Logger.Warn("cluster: leases lapsed without the database; the cameras go on provisionally "+
		"(their recording is stored if the leases are reclaimed, fenced if they moved)",
		"node", n.Name, "cameras", k, "for at most", n.provisionalMax())
}

// dropAll stops every writer without a word to the database (which cannot
// be reached): the leases lapse there by themselves.
func (n *Node) dropAll() {
	n.mu.Lock()
	cams := make([]string, 0, len(n.owned))
	for c := range n.owned {
		cams = append(cams, c)
	}
	clear(n.owned)
	n.mu.Unlock()
	if len(cams) > 0 {
		slices.Sort(cams)
		if n.provisional.Load() {
			n.Logger.Warn("cluster: cut off from the database for too long; stopping the cameras run provisionally "+
				"(what they recorded since the lapse is fenced)", "node", n.Name, "cameras", len(cams), "limit", n.provisionalMax())
		} else {
			n.Logger.Warn("cluster: leases lapsed without the database; stopping the cameras", "node", n.Name, "cameras", len(cams))
		}
		n.lose(cams) // Provisional still tells whether they ran provisionally
	}
	if n.provisional.Swap(false) {
		n.provisionalEnded()
	}
}

func (n *Node) provisionalEnded() {
	if n.OnProvisional != nil {
		n.OnProvisional(false)
	}
}

// leave stops every camera, releases the leases and marks the node down,
// with a few seconds of its own (Run's context has ended).
func (n *Node) leave() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n.mu.Lock()
	cams := make([]string, 0, len(n.owned))
	for c := range n.owned {
		cams = append(cams, c)
	}
	clear(n.owned)
	n.mu.Unlock()
	slices.Sort(cams)
	n.lose(cams)
	if n.provisional.Swap(false) {
		n.provisionalEnded()
	}
	err := n.Leases.inTx(ctx, "leave", func(tx *sqlTx) error {
		n.stats.roundTrips.Add(3)
		if _, err := tx.Exec(ctx, `UPDATE nodes SET state = 'down', since = now() WHERE name = ?`, n.Name); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE leases SET node = NULL, expires = '-infinity' WHERE node = ?`, n.Name); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `SELECT pg_notify(?, ?)`, ChannelLeases, "")
		return err
	})
	if err != nil {
		n.Logger.Warn("cluster: releasing the leases on leaving failed; they expire after the TTL", "node", n.Name, "err", err)
	}
}

// listen receives the notifications on a connection of its own and wakes
// the loop; after a lost connection it connects again (and wakes the loop,
// which may have missed notifications meanwhile).
func (n *Node) listen(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		start := time.Now()
		err := n.listenOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		n.Logger.Warn("cluster: notifications lost; listening again", "node", n.Name, "err", err)
		if time.Since(start) > 10*time.Second {
			backoff = 100 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (n *Node) listenOnce(ctx context.Context) error {
	conn, err := n.Leases.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		pc := dc.(*stdlib.Conn).Conn()
		if _, err := pc.Exec(ctx, "LISTEN "+ChannelLeases+"; LISTEN "+ChannelCameras); err != nil {
			return fmt.Errorf("%w: listen: %v", driver.ErrBadConn, err)
		}
		n.poke()
		for {
			nt, err := pc.WaitForNotification(ctx)
			if err != nil {
				// the connection is in LISTEN mode or broken: not for the pool
				return fmt.Errorf("%w: %v", driver.ErrBadConn, err)
			}
			n.stats.notifications.Add(1)
			if nt.Channel == ChannelCameras && nt.Payload != "" {
				n.mu.Lock()
				n.changed[nt.Payload] = true
				n.mu.Unlock()
			}
			n.poke()
		}
	})
}
