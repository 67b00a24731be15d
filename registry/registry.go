// Package registry is Vigil's database of record: departments, cameras,
// users, sessions, API tokens, incidents and the append-only audit log, all
// in the embedded SQLite database that the recorder shares.
//
// Services here return errors of the apierr kinds with messages meant for
// users; only the HTTP layer maps them to status codes.
package registry

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/vigil-vms/vigil/internal/sqlitedb"
)

// Registry is the registry over one database.
type Registry struct {
	db   *sql.DB
	now  func() time.Time
	seal *sealer // nil: camera passwords are stored as they are
	// argon bounds concurrent argon2id computations (19 MiB each).
	argon *hashGate
}

// Options tune a registry.
type Options struct {
	// SecretKey (KeySize bytes, see LoadKey) encrypts the passwords inside
	// the stored camera URLs; Open encrypts those stored in plain text. It
	// defaults to none: passwords are stored as they are, and a registry
	// without the key cannot read encrypted ones.
	SecretKey []byte
}

var migrations = []string{
	`CREATE TABLE departments (
		id      TEXT NOT NULL PRIMARY KEY,
		name_zh TEXT NOT NULL,
		name_en TEXT NOT NULL
	);
	INSERT INTO departments(id, name_zh, name_en) VALUES
		('flood-control',  '水利三防',   'Flood control'),
		('police',         '公安监控',   'Police'),
		('cold-storage',   '冷库监控',   'Cold storage'),
		('rental-housing', '出租屋管理', 'Rental housing');
	CREATE TABLE cameras (
		id             TEXT    NOT NULL PRIMARY KEY,
		name           TEXT    NOT NULL,
		department     TEXT    NOT NULL REFERENCES departments(id),
		lat            REAL    NOT NULL DEFAULT 0,
		lng            REAL    NOT NULL DEFAULT 0,
		address        TEXT    NOT NULL DEFAULT '',
		main_url       TEXT    NOT NULL,
		sub_url        TEXT    NOT NULL DEFAULT '',
		transport      TEXT    NOT NULL,
		record         INTEGER NOT NULL,
		retention_days INTEGER NOT NULL,
		enabled        INTEGER NOT NULL,
		tags           TEXT    NOT NULL DEFAULT '[]',
		created_ns     INTEGER NOT NULL,
		updated_ns     INTEGER NOT NULL
	);
	CREATE INDEX cameras_department ON cameras(department);
	CREATE TABLE users (
		username   TEXT    NOT NULL PRIMARY KEY,
		hash       TEXT    NOT NULL,
		role       TEXT    NOT NULL,
		created_ns INTEGER NOT NULL
	);
	CREATE TABLE user_departments (
		username   TEXT NOT NULL REFERENCES users(username) ON DELETE CASCADE,
		department TEXT NOT NULL REFERENCES departments(id),
		PRIMARY KEY (username, department)
	);
	CREATE TABLE sessions (
		id_hash    TEXT    NOT NULL PRIMARY KEY,
		csrf       TEXT    NOT NULL,
		username   TEXT    NOT NULL REFERENCES users(username) ON DELETE CASCADE,
		created_ns INTEGER NOT NULL,
		expires_ns INTEGER NOT NULL
	);
	CREATE TABLE tokens (
		id           TEXT    NOT NULL PRIMARY KEY,
		name         TEXT    NOT NULL,
		hash         TEXT    NOT NULL UNIQUE,
		username     TEXT    NOT NULL REFERENCES users(username) ON DELETE CASCADE,
		created_ns   INTEGER NOT NULL,
		last_used_ns INTEGER NOT NULL DEFAULT 0
	);
	CREATE TABLE audit (
		id       INTEGER PRIMARY KEY AUTOINCREMENT,
		time_ns  INTEGER NOT NULL,
		username TEXT    NOT NULL,
		address  TEXT    NOT NULL,
		action   TEXT    NOT NULL,
		camera   TEXT    NOT NULL,
		start_ns INTEGER NOT NULL DEFAULT 0,
		end_ns   INTEGER NOT NULL DEFAULT 0,
		result   TEXT    NOT NULL,
		detail   TEXT    NOT NULL
	);
	CREATE INDEX audit_time ON audit(time_ns);
	CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
		BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
	CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
		BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
	CREATE TABLE incidents (
		id         INTEGER PRIMARY KEY AUTOINCREMENT,
		title      TEXT    NOT NULL,
		start_ns   INTEGER NOT NULL,
		end_ns     INTEGER NOT NULL,
		note       TEXT    NOT NULL,
		created_by TEXT    NOT NULL,
		created_ns INTEGER NOT NULL
	);
	CREATE TABLE incident_cameras (
		incident INTEGER NOT NULL REFERENCES incidents(id) ON DELETE CASCADE,
		camera   TEXT    NOT NULL,
		PRIMARY KEY (incident, camera)
	);
	CREATE INDEX incident_cameras_camera ON incident_cameras(camera);`,
	// Camera incarnations: a random uid per camera, never reused, and the
	// time since when it owns the recordings under its id. Cameras that
	// exist at the upgrade own every recording of their id (since 0). An
	// incident names the incarnation of each of its cameras.
	`ALTER TABLE cameras ADD COLUMN uid TEXT NOT NULL DEFAULT '';
	ALTER TABLE cameras ADD COLUMN since_ns INTEGER NOT NULL DEFAULT 0;
	UPDATE cameras SET uid = lower(hex(randomblob(16)));
	CREATE UNIQUE INDEX cameras_uid ON cameras(uid);
	ALTER TABLE incident_cameras ADD COLUMN camera_uid TEXT NOT NULL DEFAULT '';
	UPDATE incident_cameras SET camera_uid = COALESCE((SELECT uid FROM cameras WHERE cameras.id = incident_cameras.camera), '');`,
	// Sliding sessions: a use moves expires_ns to now + idle_ns, never past
	// cap_ns. Displays: walls signed in for good by an admin, live view only.
	`ALTER TABLE sessions ADD COLUMN idle_ns INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE sessions ADD COLUMN cap_ns INTEGER NOT NULL DEFAULT 0;
	UPDATE sessions SET cap_ns = expires_ns;
	CREATE TABLE displays (
		id              TEXT    NOT NULL PRIMARY KEY,
		name            TEXT    NOT NULL,
		departments     TEXT    NOT NULL,
		created_by      TEXT    NOT NULL,
		created_ns      INTEGER NOT NULL,
		code_hash       TEXT    UNIQUE,
		code_expires_ns INTEGER NOT NULL DEFAULT 0,
		session_hash    TEXT    UNIQUE,
		csrf            TEXT    NOT NULL DEFAULT '',
		signed_in_ns    INTEGER NOT NULL DEFAULT 0,
		last_seen_ns    INTEGER NOT NULL DEFAULT 0
	);`,
	// GB/T 28181: a camera's source (rtsp, or gb28181 for a channel of a
	// registered device) and that channel; gb_missing marks a camera that
	// the catalog sync disabled because its channel left the catalog.
	`ALTER TABLE cameras ADD COLUMN source TEXT NOT NULL DEFAULT 'rtsp';
	ALTER TABLE cameras ADD COLUMN gb_device TEXT NOT NULL DEFAULT '';
	ALTER TABLE cameras ADD COLUMN gb_channel TEXT NOT NULL DEFAULT '';
	ALTER TABLE cameras ADD COLUMN gb_ptz INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE cameras ADD COLUMN gb_missing INTEGER NOT NULL DEFAULT 0;
	CREATE INDEX cameras_gb_device ON cameras(gb_device) WHERE gb_device != '';`,
	// Layouts and tours of the live wall; incidents gain a status, an
	// update time and notes over time (append-only).
	`CREATE TABLE layouts (
		id            TEXT    NOT NULL PRIMARY KEY,
		name          TEXT    NOT NULL,
		grid          INTEGER NOT NULL,
		cells         TEXT    NOT NULL,
		shared        TEXT    NOT NULL DEFAULT '',
		has_tour      INTEGER NOT NULL DEFAULT 0,
		tour_layouts  TEXT    NOT NULL DEFAULT '[]',
		tour_dwell_ns INTEGER NOT NULL DEFAULT 0,
		owner         TEXT    NOT NULL REFERENCES users(username) ON DELETE CASCADE,
		updated_ns    INTEGER NOT NULL
	);
	CREATE INDEX layouts_owner ON layouts(owner);
	ALTER TABLE incidents ADD COLUMN status TEXT NOT NULL DEFAULT 'open';
	ALTER TABLE incidents ADD COLUMN updated_ns INTEGER NOT NULL DEFAULT 0;
	CREATE TABLE incident_notes (
		id       INTEGER PRIMARY KEY AUTOINCREMENT,
		incident INTEGER NOT NULL REFERENCES incidents(id) ON DELETE CASCADE,
		author   TEXT    NOT NULL,
		time_ns  INTEGER NOT NULL,
		text     TEXT    NOT NULL
	);
	CREATE INDEX incident_notes_incident ON incident_notes(incident);
	CREATE TRIGGER incident_notes_no_update BEFORE UPDATE ON incident_notes
		BEGIN SELECT RAISE(ABORT, 'incident notes are append-only'); END;`,
}

// Open runs the registry's migrations in db and returns the registry. The
// four departments of the contract exist from the first start.
func Open(ctx context.Context, db *sql.DB) (*Registry, error) {
	return OpenWith(ctx, db, Options{})
}

// OpenFile opens the SQLite database at path (with sqlitedb.Open) and the
// registry in it, for a command or a test that needs nothing else from the
// database. closeDB closes the database.
func OpenFile(ctx context.Context, path string) (r *Registry, closeDB func() error, err error) {
	db, err := sqlitedb.Open(path)
	if err != nil {
		return nil, nil, err
	}
	if r, err = Open(ctx, db); err != nil {
		db.Close()
		return nil, nil, err
	}
	return r, db.Close, nil
}

// OpenWith is Open with options. With a secret key it encrypts the camera
// passwords stored in plain text, and fails when a stored one does not
// decrypt with the key.
func OpenWith(ctx context.Context, db *sql.DB, opts Options) (*Registry, error) {
	seal, err := newSealer(opts.SecretKey)
	if err != nil {
		return nil, err
	}
	if err := sqlitedb.Migrate(ctx, db, "registry", migrations); err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	if err := migrateSiteMap(ctx, db); err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	r := &Registry{db: db, now: time.Now, seal: seal, argon: newHashGate(runtime.GOMAXPROCS(0))}
	if err := r.sealAll(ctx); err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	return r, nil
}

// inTx runs fn in a transaction, committing when it returns nil.
func (r *Registry) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := r.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// isUnique tells a unique or primary key violation.
func isUnique(err error) bool {
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}

// isForeignKey tells a foreign key violation.
func isForeignKey(err error) bool {
	return err != nil && strings.Contains(err.Error(), "FOREIGN KEY constraint failed")
}

func nsTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

func timeNS(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

var errNoRows = sql.ErrNoRows

func notFound(err error) bool { return errors.Is(err, errNoRows) }
