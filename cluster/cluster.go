// Package cluster is the runtime of a Vigil node that shares a PostgreSQL
// database (and one S3 bucket) with other nodes (issue 16, `database.url`).
//
// It puts together what the parts of a node need to know about the others:
//
//   - which node runs each camera ([Cluster.Owner]): a camera's lease
//     (package cluster/lease), taken by one node at a time and spread evenly;
//     the node's [Target] (the dispatcher) is told when it gains, loses or
//     must re-read a camera, and starts or stops its ingest and recording;
//   - fencing: [Cluster.Fence] before each segment upload and
//     [Cluster.FenceIndex] inside each index write keep a node that lost a
//     camera without knowing it (a paused process, a split from the
//     database) from storing what it wrote meanwhile;
//   - work done once per cluster ([Cluster.Once]): a PostgreSQL advisory
//     lock per job, held on a connection of its own: the job runs on the
//     node that holds it, and moves when that node's connection ends;
//   - the cameras' statuses, which each owner writes to the camera_status
//     table and every node reads, so that any node answers for any camera;
//   - the nodes, for GET /api/v1/cluster ([Cluster.Nodes]).
//
// Usage (app/cluster.go):
//
//	c, err := cluster.Open(ctx, db, cluster.Options{Node: "a", Advertise: "http://a:8080"})
//	c.SetTarget(dispatcher)
//	go c.Run(ctx) // releases every lease when ctx ends
package cluster

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/vigil-vms/vigil/cluster/lease"
	"github.com/vigil-vms/vigil/internal/sqldb"
)

// ErrFenced is lease.ErrFenced: a write for a camera this node no longer
// owns (or did not own when it wrote) is refused with an error that
// errors.Is matches against it.
var ErrFenced = lease.ErrFenced

//go:embed migrations
var migrationFiles embed.FS

// Options configure a node.
type Options struct {
	// Node is this node's name, unique in the cluster (cluster.node). Required.
	Node string
	// Advertise is the base URL the other nodes reach this node's HTTP
	// server at (cluster.advertise).
	Advertise string
	// TTL is cluster.leaseTTL; 0 means lease.DefaultTTL.
	TTL time.Duration
	// Refresh is how often the node reads the others' view (leases, nodes,
	// statuses) and writes its cameras' statuses. It defaults to 1 second.
	Refresh time.Duration
	// Log defaults to slog.Default().
	Log *slog.Logger
	// Provisional is how long a node cut off from the database keeps its
	// cameras running after its leases lapsed (lease.Node.ProvisionalMax):
	// 0 means lease.DefaultProvisional TTLs, a negative value stops them at
	// the lapse.
	Provisional time.Duration
	// StateFile, when set, is where the node keeps the times its cameras
	// ran provisionally without being reclaimed (app: a hidden file in the
	// spool directory), so that the next process does not store what this
	// one recorded provisionally and left in the spool: see Fence.
	StateFile string
}

// Target runs the cameras this node owns (dispatch.Dispatcher). Its
// methods are called one at a time, in the order of the events, and must
// return soon.
type Target interface {
	// Acquired: this node now runs camera (start its ingest and recording).
	Acquired(camera string)
	// Lost: this node no longer runs camera; tell its writers to stop
	// before returning (the loss is judged clean or not right after: a
	// writer must not go on writing for long).
	Lost(camera string)
	// Changed: camera, which this node runs, was changed or deleted on
	// some node: read it again.
	Changed(camera string)
	// Statuses are the statuses of the cameras this node runs, as JSON, to
	// share with the other nodes.
	Statuses() map[string][]byte
}

// NodeInfo is one node, as GET /api/v1/cluster shows it.
type NodeInfo struct {
	Name      string    `json:"name"`
	Advertise string    `json:"advertise"`
	State     string    `json:"state"` // "up" or "down"
	Since     time.Time `json:"since"`
	Cameras   int       `json:"cameras"`
}

// Cluster is this node in the cluster. Create it with Open, give it its
// Target, and Run it.
type Cluster struct {
	db     *sqldb.DB
	leases *lease.Leases
	node   *lease.Node
	opts   Options
	log    *slog.Logger
	target Target

	mu       sync.Mutex
	holders  map[string]string     // camera → node holding its lease, as last read
	adverts  map[string]string     // node → advertise URL, as last read
	shared   map[string]sharedStat // camera → the status its owner wrote
	periods  map[string][]period   // camera → this run's periods of ownership, oldest first
	written  map[string]written    // camera → the status this node last wrote
	newest   time.Time             // the newest camera_status.updated read (refresh loop only)
	lastFull time.Time             // when every status was last read (refresh loop only)

	// prov: the provisional runs not reclaimed (Until set when one ended
	// without a reclaim; zero while it lasts), of this process and the
	// earlier ones (read from Options.StateFile). c.mu.
	prov []provRun

	jobsMu sync.Mutex
	jobs   map[string]*job
	closed bool // Run has ended: no job runs here any more
}

type sharedStat struct {
	node   string
	status []byte
}

type written struct {
	status []byte
	at     time.Time
}

// period is a time this node owned a camera, by its own clock: from
// acquired to lost (zero while it lasts). clean tells that it was lost
// before the database could have given the camera to another node, so
// everything written in it was written by the only owner. provisional
// tells that it ran provisionally when it was lost (cut off from the
// database, its lease taken over or given up after too long): then what
// ended before safe (the earliest moment the lease could have moved) was
// written by the only owner, and the rest is fenced.
type period struct {
	acquired, lost time.Time
	clean          bool
	provisional    bool
	safe           time.Time
}

// provRun is a provisional run of a camera that was not reclaimed (yet):
// what it recorded after Safe (till Until) may have had a second writer.
type provRun struct {
	Camera string    `json:"camera"`
	Epoch  int64     `json:"epoch"`
	Safe   time.Time `json:"safe"`
	Until  time.Time `json:"until,omitzero"`
}

// provKeep is how long an ended provisional run is remembered (the
// spool of an earlier process is uploaded long before).
const provKeep = 30 * 24 * time.Hour

// loadProv reads the provisional runs of the earlier processes: those
// still running when their process ended end now, at the latest.
func (c *Cluster) loadProv() error {
	if c.opts.StateFile == "" {
		return nil
	}
	b, err := os.ReadFile(c.opts.StateFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	var runs []provRun
	if err := json.Unmarshal(b, &runs); err != nil {
		return fmt.Errorf("cluster: %s: %w", c.opts.StateFile, err)
	}
	now := time.Now()
	for _, r := range runs {
		if r.Until.IsZero() {
			r.Until = now
		}
		if now.Sub(r.Until) < provKeep {
			c.prov = append(c.prov, r)
		}
	}
	c.saveProvLocked()
	return nil
}

// saveProvLocked writes c.prov to Options.StateFile. c.mu held (or not
// running yet).
func (c *Cluster) saveProvLocked() {
	if c.opts.StateFile == "" {
		return
	}
	err := func() error {
		if len(c.prov) == 0 {
			if err := os.Remove(c.opts.StateFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			return nil
		}
		b, err := json.Marshal(c.prov)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(c.opts.StateFile), 0o755); err != nil {
			return err
		}
		tmp := c.opts.StateFile + ".tmp"
		if err := os.WriteFile(tmp, b, 0o644); err != nil {
			return err
		}
		return os.Rename(tmp, c.opts.StateFile)
	}()
	if err != nil {
		c.log.Error("cluster: the provisional runs are not saved; a restart may store what they recorded", "file", c.opts.StateFile, "err", err)
	}
}

// provisional is lease.Node.OnProvisional: a provisional run of every
// camera owned starts, or ends (those still owned were reclaimed: their
// recording was the only owner's, forget the run).
func (c *Cluster) provisional(on bool) {
	owned := c.node.Owned()
	c.mu.Lock()
	defer c.mu.Unlock()
	if on {
		safe := c.node.SafeUntil()
		for cam, e := range owned {
			c.prov = append(c.prov, provRun{Camera: cam, Epoch: e, Safe: safe})
		}
	} else {
		now := time.Now()
		keep := c.prov[:0]
		for _, r := range c.prov {
			if r.Until.IsZero() {
				if e, ok := owned[r.Camera]; ok && e == r.Epoch {
					continue // reclaimed
				}
				r.Until = now
			}
			keep = append(keep, r)
		}
		c.prov = keep
	}
	c.saveProvLocked()
}

// Open migrates the cluster's tables on db (which must be PostgreSQL) and
// returns the node, not yet running.
func Open(ctx context.Context, db *sqldb.DB, o Options) (*Cluster, error) {
	if o.Node == "" {
		return nil, errors.New("cluster: the node needs a name (cluster.node)")
	}
	if o.Refresh <= 0 {
		o.Refresh = time.Second
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	l, err := lease.New(ctx, db, o.TTL)
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx, sqldb.Migrations{Component: "cluster_status", FS: migrationFiles, Dir: "migrations"}); err != nil {
		return nil, err
	}
	c := &Cluster{db: db, leases: l, opts: o, log: o.Log,
		holders: map[string]string{}, adverts: map[string]string{}, shared: map[string]sharedStat{},
		periods: map[string][]period{}, written: map[string]written{}, jobs: map[string]*job{}}
	c.node = &lease.Node{
		Leases:         l,
		Name:           o.Node,
		Advertise:      o.Advertise,
		Logger:         o.Log,
		ProvisionalMax: o.Provisional,
		OnAcquire:      c.acquired,
		OnLose:         c.lost,
		OnChange:       c.changed,
		OnProvisional:  c.provisional,
	}
	if err := c.loadProv(); err != nil {
		return nil, err
	}
	return c, nil
}

// SetTarget gives the node what runs its cameras; call it before Run.
func (c *Cluster) SetTarget(t Target) { c.target = t }

// SetAdvertise changes the URL the other nodes reach this node at (when
// it is known only once the HTTP listener is bound); call it before Run.
func (c *Cluster) SetAdvertise(url string) {
	c.opts.Advertise = url
	c.node.Advertise = url
}

// Name is this node's name.
func (c *Cluster) Name() string { return c.opts.Node }

// Leases is the lease table (for benchmarks and tools).
func (c *Cluster) Leases() *lease.Leases { return c.leases }

// LeaseNode is the membership loop (its Stats, for metrics and benchmarks).
func (c *Cluster) LeaseNode() *lease.Node { return c.node }

// Run joins the cluster and runs until ctx ends; then it stops every
// camera, releases their leases at once (the other nodes take them over in
// seconds) and gives up the jobs it ran. It returns ctx's error, or why it
// could not join.
func (c *Cluster) Run(ctx context.Context) error {
	rctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { c.refreshLoop(rctx) })
	err := c.node.Run(ctx)
	stop()
	wg.Wait()
	c.closeJobs()
	return err
}

// Started is closed once the node's first lease round has ended (its
// share of the cameras taken and started), or Run returned.
func (c *Cluster) Started() <-chan struct{} { return c.node.FirstRound() }

// Put adds the lease of a created camera, or tells its owner that it
// changed: the owner applies it at once (NOTIFY).
func (c *Cluster) Put(ctx context.Context, camera string) error {
	return c.leases.Put(ctx, camera)
}

// PutAll adds the leases of cameras that have none (at start).
func (c *Cluster) PutAll(ctx context.Context, cameras []string) error {
	return c.leases.PutAll(ctx, cameras)
}

// Delete removes a deleted camera's lease (its owner stops it) and its
// shared status.
func (c *Cluster) Delete(ctx context.Context, camera string) error {
	if err := c.leases.Delete(ctx, camera); err != nil {
		return err
	}
	if _, err := c.db.Exec(ctx, `DELETE FROM camera_status WHERE camera = ?`, camera); err != nil {
		return fmt.Errorf("cluster: delete the status of %s: %w", camera, err)
	}
	return nil
}

func (c *Cluster) acquired(camera string, epoch int64) {
	c.mu.Lock()
	c.holders[camera] = c.opts.Node
	c.periods[camera] = append(c.periods[camera], period{acquired: time.Now()})
	c.mu.Unlock()
	c.log.Debug("cluster: camera acquired", "camera", camera, "epoch", epoch)
	if c.target != nil {
		c.target.Acquired(camera)
	}
}

func (c *Cluster) lost(camera string) {
	now := time.Now()
	safe := c.node.SafeUntil()
	clean := now.Before(safe)
	provisional := c.node.Provisional()
	c.mu.Lock()
	if c.holders[camera] == c.opts.Node {
		delete(c.holders, camera)
	}
	ps := c.periods[camera]
	if n := len(ps); n > 0 && ps[n-1].lost.IsZero() {
		ps[n-1].lost, ps[n-1].clean, ps[n-1].provisional, ps[n-1].safe = now, clean, provisional, safe
	}
	if provisional {
		for i, r := range c.prov {
			if r.Camera == camera && r.Until.IsZero() {
				c.prov[i].Until = now
			}
		}
		c.saveProvLocked()
	}
	if len(ps) > maxPeriods {
		ps = slices.Delete(ps, 0, len(ps)-maxPeriods)
	}
	c.periods[camera] = ps
	c.mu.Unlock()
	// the period is marked lost before the writers are told to stop (they
	// stop within a unit): the last segment they close and upload is then
	// judged by it (stored after a clean hand-over), not refused as "not
	// confirmed" in between, which left it in the spool at a SIGTERM
	if c.target != nil {
		c.target.Lost(camera)
	}
	switch {
	case clean:
		c.log.Debug("cluster: camera released", "camera", camera)
	case provisional:
		c.log.Warn("cluster: camera run provisionally while cut off from the database is lost "+
			"(taken over meanwhile, or cut off too long); what was recorded after its lease lapsed is fenced",
			"camera", camera, "lapsed", safe.Add(-c.leases.TTL()/5))
	default:
		c.log.Warn("cluster: camera lost after its lease could have moved (paused or cut off); "+
			"what was written meanwhile is fenced", "camera", camera)
	}
}

// maxPeriods bounds the periods of ownership remembered per camera.
const maxPeriods = 16

func (c *Cluster) changed(camera string) {
	if c.target != nil {
		c.target.Changed(camera)
	}
}

// Owner tells which node runs camera: its name and advertise URL, and
// whether that is this node. ok is false when no node holds the camera's
// lease now (it is being taken over, or has just been created). It costs
// no round trip: other nodes' leases are as read at most Options.Refresh
// ago, this node's own are exact.
func (c *Cluster) Owner(camera string) (node, advertise string, local, ok bool) {
	if _, mine := c.node.Epoch(camera); mine {
		return c.opts.Node, c.opts.Advertise, true, true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.holders[camera]
	if n == "" || n == c.opts.Node { // our own lease as last read, lost since
		return "", "", false, false
	}
	return n, c.adverts[n], false, true
}

// Epoch returns the epoch (fencing token) at which this node owns camera.
func (c *Cluster) Epoch(camera string) (int64, bool) { return c.node.Epoch(camera) }

// SharedStatus is the status the owner of camera wrote last (JSON), if the
// current owner wrote one.
func (c *Cluster) SharedStatus(camera string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.shared[camera]
	if !ok || s.node != c.holders[camera] {
		return nil, false
	}
	return s.status, true
}

// SharedStatuses are the statuses (JSON) the current owners of the
// cameras of other nodes wrote last, by camera.
func (c *Cluster) SharedStatuses() map[string][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string][]byte{}
	for cam, s := range c.shared {
		if h := c.holders[cam]; h != "" && h != c.opts.Node && s.node == h {
			out[cam] = s.status
		}
	}
	return out
}

// Nodes lists the cluster's nodes, by name.
func (c *Cluster) Nodes(ctx context.Context) ([]NodeInfo, error) {
	ns, err := c.leases.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]NodeInfo, len(ns))
	for i, n := range ns {
		out[i] = NodeInfo{Name: n.Name, Advertise: n.Advertise, State: n.State, Since: n.Since.UTC(), Cameras: n.Cameras}
	}
	return out, nil
}

// errUnconfirmed: this node owns the camera but has not confirmed its
// lease lately (the database does not answer): not a fence, try later.
var errUnconfirmed = errors.New("cluster: the camera's lease is not confirmed now (database unreachable?)")

// Fence decides whether a segment of camera from start to end may be
// stored (recorder.Options.Fence, before each upload). A segment of the
// camera's current ownership is stored while the lease is still held at
// its epoch (one round trip): that includes what was recorded
// provisionally while the node was cut off from the database, once it has
// reclaimed the lease at the same epoch. One of an earlier ownership in
// this run is stored if that ended cleanly (released, or lost before the
// lease could have moved), or, when it ended a provisional run, if the
// segment ended before the lease could have moved; one from before this
// run (the spool of the previous process) too. A segment written while
// another node may have owned the camera answers an error matching
// ErrFenced; a database that does not answer, another error (the upload
// waits and tries again).
func (c *Cluster) Fence(ctx context.Context, camera string, start, end time.Time) error {
	epoch, owned := c.node.Epoch(camera)
	c.mu.Lock()
	p, found := c.periodOf(camera, start)
	c.mu.Unlock()
	switch {
	case !found:
		// before this run: the previous process's spool, unless recorded
		// in a provisional run that was not reclaimed
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, r := range c.prov {
			if r.Camera == camera && (end.IsZero() || end.After(r.Safe)) && (r.Until.IsZero() || start.Before(r.Until)) {
				return fmt.Errorf("cluster: segment of %s at %s recorded provisionally by an earlier process, not reclaimed: %w",
					camera, start.UTC().Format(time.RFC3339), ErrFenced)
			}
		}
		return nil
	case p.lost.IsZero() && owned:
		// the current ownership
		if !c.node.Held(camera, epoch) {
			return errUnconfirmed
		}
		if err := c.leases.Check(ctx, camera, epoch); err != nil {
			return fmt.Errorf("cluster: segment of %s at %s: %w", camera, start.UTC().Format(time.RFC3339), err)
		}
		return nil
	case p.lost.IsZero():
		return errUnconfirmed // the node gives the camera up this moment
	case !p.clean && p.provisional:
		if end.IsZero() || end.After(p.safe) {
			return fmt.Errorf("cluster: segment of %s at %s recorded provisionally, and the lease moved: %w",
				camera, start.UTC().Format(time.RFC3339), ErrFenced)
		}
	case !p.clean:
		return fmt.Errorf("cluster: segment of %s at %s written after the lease could have moved: %w",
			camera, start.UTC().Format(time.RFC3339), ErrFenced)
	}
	return nil
}

// periodOf finds the period of ownership of camera a segment that started
// at start belongs to: the last that began no later than a second after
// start. c.mu held.
func (c *Cluster) periodOf(camera string, start time.Time) (period, bool) {
	ps := c.periods[camera]
	for i := len(ps) - 1; i >= 0; i-- {
		if !ps[i].acquired.After(start.Add(time.Second)) {
			return ps[i], true
		}
	}
	return period{}, false
}

// FenceIndex is archive.Index.SetFence's check, inside the transaction
// that adds a camera's segment rows: while this node owns the camera, its
// lease must still be held at its epoch, and the lease row stays locked
// until the transaction ends (a take-over waits for the commit). A camera
// lost cleanly may still index its last segments (the upload was fenced);
// one lost after its lease could have moved may not, unless it was lost at
// the end of a provisional run: then the upload fence has let through only
// the segments that ended before the lease could move.
func (c *Cluster) FenceIndex(ctx context.Context, tx *sqldb.Tx, camera string) error {
	if epoch, owned := c.node.Epoch(camera); owned {
		if err := c.leases.CheckTx(ctx, tx, camera, epoch); err != nil {
			return fmt.Errorf("cluster: index %s: %w", camera, err)
		}
		return nil
	}
	c.mu.Lock()
	ps := c.periods[camera]
	c.mu.Unlock()
	if n := len(ps); n > 0 && !ps[n-1].lost.IsZero() && !ps[n-1].clean && !ps[n-1].provisional {
		return fmt.Errorf("cluster: index %s after the lease could have moved: %w", camera, ErrFenced)
	}
	return nil
}

// refreshLoop writes this node's statuses and reads the cluster's view
// every Options.Refresh.
func (c *Cluster) refreshLoop(ctx context.Context) {
	t := time.NewTicker(c.opts.Refresh)
	defer t.Stop()
	failing := false
	for {
		err := c.refresh(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil && !failing {
			c.log.Warn("cluster: refreshing the view of the cluster failed", "err", err)
		}
		failing = err != nil
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// statusRewrite is how often an unchanged status is written again;
// statusReread how often every status is read again (otherwise only those
// written since the last read, statusMargin before the newest seen).
const (
	statusRewrite = 15 * time.Second
	statusReread  = time.Minute
	statusMargin  = 10 * time.Second
)

func (c *Cluster) refresh(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, max(c.opts.Refresh, 5*time.Second))
	defer cancel()
	if err := c.share(ctx); err != nil {
		return err
	}
	holders, err := c.leases.Holders(ctx)
	if err != nil {
		return err
	}
	nodes, err := c.leases.Nodes(ctx)
	if err != nil {
		return err
	}
	// the statuses written since the last read (with a margin for the
	// transactions that committed late), all of them at first and every
	// statusReread
	full := c.lastFull.IsZero() || time.Since(c.lastFull) >= statusReread
	q := `SELECT camera, node, status, updated FROM camera_status`
	var args []any
	if !full {
		q += ` WHERE updated > ?`
		args = append(args, c.newest.Add(-statusMargin))
	}
	rows, err := c.db.Query(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("cluster: statuses: %w", err)
	}
	read := map[string]sharedStat{}
	newest := c.newest
	for rows.Next() {
		var cam string
		var s sharedStat
		var updated time.Time
		if err := rows.Scan(&cam, &s.node, &s.status, &updated); err != nil {
			rows.Close()
			return fmt.Errorf("cluster: statuses: %w", err)
		}
		read[cam] = s
		if updated.After(newest) {
			newest = updated
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("cluster: statuses: %w", err)
	}
	c.newest = newest
	if full {
		c.lastFull = time.Now()
	}
	c.mu.Lock()
	clear(c.holders)
	for _, h := range holders {
		if h.Node != "" {
			c.holders[h.Camera] = h.Node
		}
	}
	clear(c.adverts)
	for _, n := range nodes {
		c.adverts[n.Name] = n.Advertise
	}
	if full {
		c.shared = read
	} else {
		maps.Copy(c.shared, read)
	}
	c.mu.Unlock()
	return nil
}

// share writes the statuses of the cameras this node runs that changed
// (or were last written statusRewrite ago), in one statement.
func (c *Cluster) share(ctx context.Context) error {
	if c.target == nil {
		return nil
	}
	now := time.Now()
	var cams, stats []string
	for cam, st := range c.target.Statuses() {
		if _, mine := c.node.Epoch(cam); !mine {
			continue
		}
		c.mu.Lock()
		w, ok := c.written[cam]
		c.mu.Unlock()
		if ok && string(w.status) == string(st) && now.Sub(w.at) < statusRewrite {
			continue
		}
		cams, stats = append(cams, cam), append(stats, string(st))
	}
	if len(cams) == 0 {
		return nil
	}
	_, err := c.db.Exec(ctx, `INSERT INTO camera_status(camera, node, status, updated)
		SELECT t.camera, ?, t.status, now() FROM unnest(CAST(? AS TEXT[]), CAST(? AS TEXT[])) AS t(camera, status)
		ON CONFLICT (camera) DO UPDATE SET node = excluded.node, status = excluded.status, updated = excluded.updated`,
		c.opts.Node, cams, stats)
	if err != nil {
		return fmt.Errorf("cluster: share statuses: %w", err)
	}
	c.mu.Lock()
	for i, cam := range cams {
		c.written[cam] = written{status: []byte(stats[i]), at: now}
	}
	for cam := range c.written {
		if _, mine := c.node.Epoch(cam); !mine {
			delete(c.written, cam)
		}
	}
	c.mu.Unlock()
	return nil
}

// job is a job run once per cluster: on the node whose connection holds
// its advisory lock.
type job struct {
	name string
	key  int64
	mu   sync.Mutex
	conn *sql.Conn // holds the lock; nil when not held here
}

// Once returns the RunsHere of the job name (availability roll-ups,
// retention, …): true on exactly one node of the cluster at a time, the one
// that holds the job's PostgreSQL advisory lock on a connection of its own.
// Each call checks that connection (one round trip), or tries to take the
// lock; when the holder's connection ends (the node died, stopped, or lost
// the database), another node's next call takes the job over. Call it at
// each pass of the job.
func (c *Cluster) Once(name string) func() bool {
	c.jobsMu.Lock()
	j := c.jobs[name]
	if j == nil {
		h := fnv.New64a()
		h.Write([]byte("vigil job " + name))
		j = &job{name: name, key: int64(h.Sum64())}
		c.jobs[name] = j
	}
	c.jobsMu.Unlock()
	return func() bool { return c.runsHere(j) }
}

func (c *Cluster) runsHere(j *job) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	c.jobsMu.Lock()
	closed := c.closed
	c.jobsMu.Unlock()
	if closed {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if j.conn != nil {
		if err := j.conn.PingContext(ctx); err == nil {
			return true
		}
		c.log.Warn("cluster: the connection that held a job's lock ended; the job moves", "job", j.name)
		discard(j.conn)
		j.conn = nil
	}
	conn, err := c.db.Conn(ctx)
	if err != nil {
		return false
	}
	var got bool
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1)`, j.key).Scan(&got); err != nil || !got {
		if err != nil {
			discard(conn)
		} else {
			conn.Close()
		}
		return false
	}
	j.conn = conn
	c.log.Info("cluster: this node runs a job of the cluster", "job", j.name)
	return true
}

// discard closes conn's database session instead of returning it to the
// pool, which ends its advisory locks.
func discard(conn *sql.Conn) {
	_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	conn.Close()
}

// closeJobs gives up every job this node runs, at the end of Run.
func (c *Cluster) closeJobs() {
	c.jobsMu.Lock()
	c.closed = true
	jobs := make([]*job, 0, len(c.jobs))
	for _, j := range c.jobs {
		jobs = append(jobs, j)
	}
	c.jobsMu.Unlock()
	for _, j := range jobs {
		j.mu.Lock()
		if j.conn != nil {
			discard(j.conn)
			j.conn = nil
		}
		j.mu.Unlock()
	}
}
