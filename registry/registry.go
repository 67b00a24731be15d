// Package registry is Vigil's database of record: departments, cameras,
// users, sessions, API tokens, incidents and the append-only audit log, all
// in the database the other components share: the embedded SQLite file of a
// single node, or the PostgreSQL database of a cluster, with the same code
// (package sqldb). It keeps no copies of rows in memory: every node of a
// cluster reads what another node wrote.
//
// Services here return errors of the apierr kinds with messages meant for
// users; only the HTTP layer maps them to status codes.
package registry

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/vigil-vms/vigil/internal/sqldb"
)

// Registry is the registry over one database.
type Registry struct {
	db   *sqldb.DB
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

// The registry's schema: goose files per engine (migrations/registry and
// migrations/sitemap, each with sqlite and postgres). The SQLite files 1 to
// N repeat the steps of the former sqlitedb migrations one for one, so an
// existing database is adopted (Legacy), not migrated again.
//
//go:embed migrations
var migrationFiles embed.FS

func componentMigrations(component string) sqldb.Migrations {
	return sqldb.Migrations{Component: component, FS: migrationFiles, Dir: "migrations/" + component, Legacy: component}
}

var (
	migrations        = componentMigrations("registry")
	siteMapMigrations = componentMigrations("sitemap")
)

// Open runs the registry's migrations in db and returns the registry. The
// four departments of the contract exist from the first start.
func Open(ctx context.Context, db *sqldb.DB) (*Registry, error) {
	return OpenWith(ctx, db, Options{})
}

// OpenFile opens the SQLite database at path (with sqldb.Open) and the
// registry in it, for a command or a test that needs nothing else from the
// database. closeDB closes the database.
func OpenFile(ctx context.Context, path string) (r *Registry, closeDB func() error, err error) {
	return OpenConfig(ctx, sqldb.Config{Path: path}, Options{})
}

// OpenConfig opens the database cfg names (SQLite or PostgreSQL) and the
// registry in it, for a command that needs nothing else from the database.
// closeDB closes the database.
func OpenConfig(ctx context.Context, cfg sqldb.Config, opts Options) (r *Registry, closeDB func() error, err error) {
	db, err := sqldb.Open(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	if r, err = OpenWith(ctx, db, opts); err != nil {
		db.Close()
		return nil, nil, err
	}
	return r, db.Close, nil
}

// OpenWith is Open with options. With a secret key it encrypts the camera
// passwords stored in plain text, and fails when a stored one does not
// decrypt with the key.
func OpenWith(ctx context.Context, db *sqldb.DB, opts Options) (*Registry, error) {
	seal, err := newSealer(opts.SecretKey)
	if err != nil {
		return nil, err
	}
	for _, m := range []sqldb.Migrations{migrations, siteMapMigrations} {
		if err := db.Migrate(ctx, m); err != nil {
			return nil, fmt.Errorf("registry: %w", err)
		}
	}
	r := &Registry{db: db, now: time.Now, seal: seal, argon: newHashGate(runtime.GOMAXPROCS(0))}
	if err := r.sealAll(ctx); err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	return r, nil
}

// inTx runs fn in a transaction, committing when it returns nil.
func (r *Registry) inTx(ctx context.Context, fn func(tx *sqldb.Tx) error) error {
	tx, err := r.db.Begin(ctx)
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

// isUnique tells a unique or primary key violation, on either engine.
func (r *Registry) isUnique(err error) bool {
	return err != nil && r.db.Dialect.IsUniqueViolation(err)
}

// isForeignKey tells a foreign key violation, on either engine.
func isForeignKey(err error) bool {
	if err == nil {
		return false
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return pg.Code == "23503" // foreign_key_violation
	}
	return strings.Contains(err.Error(), "FOREIGN KEY constraint failed")
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
