// Package lease gives each camera of a cluster one owning node at a time,
// through lease rows in PostgreSQL (issue 16).
//
// A lease is a row (camera, node, epoch, expires). A node acquires a free
// or expired lease, which raises its epoch, the fencing token: every change
// of owner gives a new epoch, so a writer that holds an old one knows it
// has been replaced. The owner renews its leases every TTL/3; a node that
// stops renewing (dead, paused, cut off from the database) loses them when
// they expire, and the other nodes take them over. Expiry is judged by the
// database's clock alone.
//
// Writers call [Leases.Check] (or [Leases.CheckTx] inside the transaction
// of an index write, which holds the lease row until the write commits, so
// a take-over waits for it) before each segment upload and index write: a
// moved lease answers [ErrFenced], and the writer stops.
//
// A [Node] runs the membership loop: heartbeat, renewals, taking over
// leases up to its fair share (cameras spread evenly over the live nodes),
// shedding leases above it when nodes join, releasing all of them on a
// clean stop. A node cut off from the database keeps its cameras
// provisionally once its leases lapse, and reclaims them at the same epoch
// ([Leases.Reclaim]) when the database answers again, if nobody took them
// meanwhile (see [Node.Provisional]). Changes reach the nodes at once through LISTEN/NOTIFY:
// channel "vigil_leases" when leases move, "vigil_cameras" (payload: the
// camera id) when a camera is added, changed or removed.
package lease

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"time"

	"github.com/vigil-vms/vigil/internal/sqldb"
)

// Channels of the notifications.
const (
	ChannelLeases  = "vigil_leases"
	ChannelCameras = "vigil_cameras"
)

// ErrFenced means the lease has moved to another owner (or expired, or been
// released) since the epoch the caller holds: stop writing for the camera.
var ErrFenced = errors.New("lease: fenced: the camera's lease has moved")

// ErrHeld means another node holds a live lease on the camera.
var ErrHeld = errors.New("lease: held by another node")

// ErrNoCamera means no lease row exists for the camera.
var ErrNoCamera = errors.New("lease: no such camera")

//go:embed migrations
var migrationFiles embed.FS

// Leases is the lease table of one PostgreSQL database.
type sqlTx = sqldb.Tx

type Leases struct {
	db  *sqldb.DB
	ttl time.Duration
}

// DefaultTTL is cluster.leaseTTL's default.
const DefaultTTL = 10 * time.Second

// New migrates the lease tables and returns them, with leases lasting ttl
// (DefaultTTL when 0) from each renewal. db must be PostgreSQL.
func New(ctx context.Context, db *sqldb.DB, ttl time.Duration) (*Leases, error) {
	if db.Dialect != sqldb.Postgres {
		return nil, errors.New("lease: camera leases need PostgreSQL (database.url)")
	}
	if ttl == 0 {
		ttl = DefaultTTL
	}
	if ttl < time.Second {
		return nil, fmt.Errorf("lease: cluster.leaseTTL %v is below 1s", ttl)
	}
	if err := db.Migrate(ctx, sqldb.Migrations{Component: "cluster", FS: migrationFiles, Dir: "migrations"}); err != nil {
		return nil, err
	}
	return &Leases{db: db, ttl: ttl}, nil
}

// TTL is how long a lease lasts after each renewal.
func (l *Leases) TTL() time.Duration { return l.ttl }

func (l *Leases) ttlMS() int64 { return l.ttl.Milliseconds() }

// Put adds a free lease for camera (nothing when it exists) and notifies
// the nodes, so that one takes it at once.
func (l *Leases) Put(ctx context.Context, camera string) error {
	return l.inTx(ctx, "put "+camera, func(tx *sqlTx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO leases(camera) VALUES(?) ON CONFLICT DO NOTHING`, camera); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `SELECT pg_notify(?, ?)`, ChannelCameras, camera)
		return err
	})
}

// PutAll adds a free lease for each of cameras that has none, in one
// transaction, and notifies the nodes once (channel vigil_leases): what a
// node does at start with every registered camera.
func (l *Leases) PutAll(ctx context.Context, cameras []string) error {
	if len(cameras) == 0 {
		return nil
	}
	return l.inTx(ctx, "put", func(tx *sqlTx) error {
		res, err := tx.Exec(ctx, `INSERT INTO leases(camera) SELECT unnest(CAST(? AS TEXT[])) ON CONFLICT DO NOTHING`, cameras)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		_, err = tx.Exec(ctx, `SELECT pg_notify(?, '')`, ChannelLeases)
		return err
	})
}

// Delete removes camera's lease and notifies the nodes (the owner stops it).
func (l *Leases) Delete(ctx context.Context, camera string) error {
	return l.inTx(ctx, "delete "+camera, func(tx *sqlTx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM leases WHERE camera = ?`, camera); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `SELECT pg_notify(?, ?)`, ChannelCameras, camera)
		return err
	})
}

// Changed tells the nodes that camera's settings changed: its owner gets
// [Node.OnChange] at once.
func (l *Leases) Changed(ctx context.Context, camera string) error {
	if _, err := l.db.Exec(ctx, `SELECT pg_notify(?, ?)`, ChannelCameras, camera); err != nil {
		return fmt.Errorf("lease: notify %s: %w", camera, err)
	}
	return nil
}

func (l *Leases) inTx(ctx context.Context, what string, f func(tx *sqlTx) error) error {
	tx, err := l.db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("lease: %s: %w", what, err)
	}
	if err := f(tx); err != nil {
		tx.Rollback()
		return fmt.Errorf("lease: %s: %w", what, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("lease: %s: %w", what, err)
	}
	return nil
}

// Acquire makes node the owner of camera if its lease is free or expired,
// and returns the new epoch. It answers ErrHeld when another node (or node
// itself: renew instead) holds a live lease, ErrNoCamera when there is no
// lease row.
func (l *Leases) Acquire(ctx context.Context, camera, node string) (int64, error) {
	var epoch int64
	err := l.inTx(ctx, "acquire "+camera, func(tx *sqlTx) error {
		err := tx.QueryRow(ctx, `UPDATE leases SET node = ?, epoch = epoch + 1,
				expires = now() + ? * interval '1 millisecond'
			WHERE camera = ? AND (node IS NULL OR expires < now()) RETURNING epoch`,
			node, l.ttlMS(), camera).Scan(&epoch)
		if errors.Is(err, sql.ErrNoRows) {
			var one int
			if tx.QueryRow(ctx, `SELECT 1 FROM leases WHERE camera = ?`, camera).Scan(&one) != nil {
				return ErrNoCamera
			}
			return ErrHeld
		}
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `SELECT pg_notify(?, ?)`, ChannelLeases, camera)
		return err
	})
	return epoch, err
}

// Renew extends node's lease of camera at epoch by the TTL. A lease that
// expired is not renewed, even if nobody took it: ErrFenced (acquire it
// again, with a new epoch, so that writers of the old one stop).
func (l *Leases) Renew(ctx context.Context, camera, node string, epoch int64) error {
	res, err := l.db.Exec(ctx, `UPDATE leases SET expires = now() + ? * interval '1 millisecond'
		WHERE camera = ? AND node = ? AND epoch = ? AND expires >= now()`, l.ttlMS(), camera, node, epoch)
	if err != nil {
		return fmt.Errorf("lease: renew %s: %w", camera, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrFenced
	}
	return nil
}

// Reclaim extends node's lease of camera at epoch by the TTL even if it
// expired, as long as nobody took it meanwhile (it still names node, at
// epoch): what a node cut off from the database does when it answers
// again. Since every take-over raises the epoch, nobody else wrote for the
// camera since node acquired it, so what node recorded while cut off may
// be stored. It answers ErrFenced when the lease moved or was released.
func (l *Leases) Reclaim(ctx context.Context, camera, node string, epoch int64) error {
	res, err := l.db.Exec(ctx, `UPDATE leases SET expires = now() + ? * interval '1 millisecond'
		WHERE camera = ? AND node = ? AND epoch = ?`, l.ttlMS(), camera, node, epoch)
	if err != nil {
		return fmt.Errorf("lease: reclaim %s: %w", camera, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrFenced
	}
	return nil
}

// Release frees node's lease of camera at epoch and notifies the nodes, so
// that another takes it at once. Releasing a lease that moved is no error.
func (l *Leases) Release(ctx context.Context, camera, node string, epoch int64) error {
	return l.inTx(ctx, "release "+camera, func(tx *sqlTx) error {
		if _, err := tx.Exec(ctx, `UPDATE leases SET node = NULL, expires = '-infinity'
			WHERE camera = ? AND node = ? AND epoch = ?`, camera, node, epoch); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `SELECT pg_notify(?, ?)`, ChannelLeases, camera)
		return err
	})
}

// Check answers nil when the lease of camera is still held, unexpired, at
// epoch, and ErrFenced otherwise. A writer calls it before each segment
// upload and index write.
func (l *Leases) Check(ctx context.Context, camera string, epoch int64) error {
	return check(ctx, l.db.QueryRow(ctx, checkQuery, camera, epoch), camera)
}

// CheckTx is Check inside the writer's own transaction (on the same
// database): it also locks the lease row until tx ends, so that no other
// node can take the lease over between the check and the commit of the
// write.
func (l *Leases) CheckTx(ctx context.Context, tx *sqldb.Tx, camera string, epoch int64) error {
	return check(ctx, tx.QueryRow(ctx, checkQuery+` FOR SHARE`, camera, epoch), camera)
}

const checkQuery = `SELECT 1 FROM leases WHERE camera = ? AND epoch = ? AND node IS NOT NULL AND expires > now()`

func check(ctx context.Context, row *sql.Row, camera string) error {
	var one int
	err := row.Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrFenced
	}
	if err != nil {
		return fmt.Errorf("lease: check %s: %w", camera, err)
	}
	return nil
}

// Holder is who holds a camera's lease, as the database says now.
type Holder struct {
	Camera string
	Node   string // "" when free or expired
	Epoch  int64
}

// Holders lists every camera's lease, by camera.
func (l *Leases) Holders(ctx context.Context) ([]Holder, error) {
	rows, err := l.db.Query(ctx, `SELECT camera, CASE WHEN expires > now() THEN coalesce(node, '') ELSE '' END, epoch
		FROM leases ORDER BY camera`)
	if err != nil {
		return nil, fmt.Errorf("lease: holders: %w", err)
	}
	defer rows.Close()
	out := []Holder{}
	for rows.Next() {
		var h Holder
		if err := rows.Scan(&h.Camera, &h.Node, &h.Epoch); err != nil {
			return nil, fmt.Errorf("lease: holders: %w", err)
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// NodeInfo is one node of the cluster, as GET /api/v1/cluster shows it.
type NodeInfo struct {
	Name      string
	Advertise string
	State     string // "up" or "down"
	Since     time.Time
	Cameras   int
}

// Nodes lists the nodes that ever joined, by name: "up" when their
// heartbeat is younger than the TTL and they have not left.
func (l *Leases) Nodes(ctx context.Context) ([]NodeInfo, error) {
	rows, err := l.db.Query(ctx, `SELECT n.name, n.advertise,
			CASE WHEN n.state = 'up' AND n.heartbeat >= now() - ? * interval '1 millisecond' THEN 'up' ELSE 'down' END,
			n.since, (SELECT count(*) FROM leases l WHERE l.node = n.name AND l.expires > now())
		FROM nodes n ORDER BY n.name`, l.ttlMS())
	if err != nil {
		return nil, fmt.Errorf("lease: nodes: %w", err)
	}
	defer rows.Close()
	out := []NodeInfo{}
	for rows.Next() {
		var n NodeInfo
		if err := rows.Scan(&n.Name, &n.Advertise, &n.State, &n.Since, &n.Cameras); err != nil {
			return nil, fmt.Errorf("lease: nodes: %w", err)
		}
		out = append(out, n)
	}
	return out, rows.Err()
}
