// Package sqldb is the seam between Vigil's components and their SQL
// database, which is either the embedded SQLite file (a single node, the
// default) or PostgreSQL (a cluster of nodes, `database.url`). A component
// writes its queries once, with `?` placeholders and the SQL both engines
// share, and its schema twice, once per dialect; [DB] rewrites the
// placeholders for PostgreSQL and [DB.Migrate] runs the migrations that fit
// the engine.
//
// # What differs, and where it is handled
//
//   - Placeholders: SQLite takes `?`, PostgreSQL `$1, $2, …`. Queries are
//     written with `?`; [Dialect.Rebind] rewrites them (outside string
//     literals, quoted identifiers and comments) for PostgreSQL.
//   - Upserts and RETURNING: both engines accept `INSERT … ON CONFLICT (…) DO
//     UPDATE SET x = excluded.x` and `… RETURNING id` (SQLite since 3.24 and
//     3.35), so components use those, not SQLite's `INSERT OR REPLACE` /
//     `INSERT OR IGNORE`, and [DB.InsertID] (RETURNING) instead of
//     LastInsertId, which the pgx driver does not implement.
//   - Errors: [Dialect.IsUniqueViolation] tells a duplicate key on either.
//   - Types and triggers differ in DDL (INTEGER PRIMARY KEY AUTOINCREMENT vs
//     BIGINT GENERATED ALWAYS AS IDENTITY, BLOB vs BYTEA, RAISE(ABORT) vs a
//     PL/pgSQL trigger function): that is why each component keeps one set
//     of migration files per dialect ([Migrations]).
//
// # Migrations: why goose, and how a component registers its own
//
// Migrations run with pressly/goose v3 (MIT, maintained since 2012, used
// by many Go services): it reads plain SQL files from an embed.FS, keeps
// its version table per [Migrations.Component] (goose_<component>), runs
// each file in a transaction, and on PostgreSQL holds an advisory lock while
// it migrates, so several nodes starting at once against one database
// migrate it exactly once. It speaks both dialects and needs no driver of
// its own (we hand it the *sql.DB). golang-migrate was the alternative; it
// keeps one version table per database and needs its own database drivers,
// where our components migrate independently.
//
// There is no global registry and no init(): a component embeds its files,
//
//	//go:embed migrations
//	var migrationFiles embed.FS
//	var migrations = sqldb.Migrations{Component: "audit", FS: migrationFiles, Dir: "migrations"}
//
// with migrations/sqlite/00001_*.sql and migrations/postgres/00001_*.sql
// (goose's `-- +goose Up` annotated files, same version numbers on both
// sides), and calls db.Migrate(ctx, migrations) in its constructor, as the
// components call sqlitedb.Migrate today. A component moving over from
// sqlitedb.Migrate keeps its steps as the first SQLite files and names its
// old component in [Migrations.Legacy], so existing databases are adopted,
// not migrated twice.
package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // the database/sql driver "pgx"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"
	"github.com/pressly/goose/v3/lock"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/vigil-vms/vigil/internal/sqlitedb"
)

// Dialect is the SQL engine behind a [DB].
type Dialect string

const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// Rebind rewrites the `?` placeholders of query for d: unchanged for SQLite,
// `$1`, `$2`, … for PostgreSQL, numbered as SQLite numbers them: `?NNN`
// is parameter NNN, and a plain `?` is one more than the largest number so
// far. A `?` inside a string literal ('…'), a quoted identifier ("…") or a
// comment (-- … or /* … */) is left alone.
func (d Dialect) Rebind(query string) string {
	if d != Postgres || !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 8)
	largest := 0
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case c == '?':
			j := i + 1
			for j < len(query) && query[j] >= '0' && query[j] <= '9' {
				j++
			}
			b.WriteByte('$')
			if j > i+1 { // ?NNN: kept as $NNN
				if n, err := strconv.Atoi(query[i+1 : j]); err == nil {
					largest = max(largest, n)
				}
				b.WriteString(query[i+1 : j])
				i = j - 1
				continue
			}
			largest++
			b.WriteString(strconv.Itoa(largest))
			continue
		case c == '\'' || c == '"':
			// copy to the closing quote; a doubled quote is an escaped one
			// and simply closes and reopens
			j := strings.IndexByte(query[i+1:], c)
			if j < 0 {
				b.WriteString(query[i:])
				return b.String()
			}
			b.WriteString(query[i : i+j+2])
			i += j + 1
			continue
		case c == '-' && i+1 < len(query) && query[i+1] == '-':
			j := strings.IndexByte(query[i:], '\n')
			if j < 0 {
				b.WriteString(query[i:])
				return b.String()
			}
			b.WriteString(query[i : i+j+1])
			i += j
			continue
		case c == '/' && i+1 < len(query) && query[i+1] == '*':
			j := strings.Index(query[i+2:], "*/")
			if j < 0 {
				b.WriteString(query[i:])
				return b.String()
			}
			b.WriteString(query[i : i+j+4])
			i += j + 3
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// ForUpdate is the locking clause a read-then-write transaction appends to
// its SELECT: " FOR UPDATE" on PostgreSQL (rows are locked until the
// transaction ends, so two nodes cannot both read the old value), "" on
// SQLite, whose transactions take the database's write lock when they begin
// (_txlock=immediate) and which does not know the clause.
func (d Dialect) ForUpdate() string {
	if d == Postgres {
		return " FOR UPDATE"
	}
	return ""
}

// SkipLocked is ForUpdate that passes over rows another transaction holds
// (" FOR UPDATE SKIP LOCKED"): for a work queue that several nodes take
// from. "" on SQLite.
func (d Dialect) SkipLocked() string {
	if d == Postgres {
		return " FOR UPDATE SKIP LOCKED"
	}
	return ""
}

// IsUniqueViolation reports whether err is a unique or primary key
// constraint violation of d.
func (d Dialect) IsUniqueViolation(err error) bool {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return pg.Code == "23505"
	}
	var lite *sqlite.Error
	if errors.As(err, &lite) {
		return lite.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || lite.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// Config says which database to open: PostgreSQL when URL is set
// (`database.url`), otherwise the SQLite file at Path (`database.path`).
type Config struct {
	Path string
	URL  string
}

// DB is an open database with its dialect. Its Exec, Query, QueryRow and
// InsertID take queries written with `?` placeholders. The embedded
// *sql.DB is there for what needs no rewriting (Close, SetMaxOpenConns,
// BeginTx for a [Tx] through [DB.Begin] is preferred).
type DB struct {
	*sql.DB
	Dialect Dialect
}

// Open opens the database cfg names. A PostgreSQL database must be reachable
// (it is pinged, for at most 10 s) so that a wrong URL stops the start with
// a clear error.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	if cfg.URL == "" {
		db, err := sqlitedb.Open(cfg.Path)
		if err != nil {
			return nil, err
		}
		return &DB{DB: db, Dialect: SQLite}, nil
	}
	if !strings.HasPrefix(cfg.URL, "postgres://") && !strings.HasPrefix(cfg.URL, "postgresql://") {
		return nil, fmt.Errorf("database.url: %q is not a postgres:// URL", redact(cfg.URL))
	}
	db, err := sql.Open("pgx", cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", redact(cfg.URL), err)
	}
	db.SetMaxOpenConns(20)
	db.SetMaxIdleConns(5)
	db.SetConnMaxIdleTime(5 * time.Minute)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("database %s: %w", redact(cfg.URL), err)
	}
	return &DB{DB: db, Dialect: Postgres}, nil
}

// redact hides the password of a database URL in messages.
func redact(u string) string {
	at := strings.LastIndexByte(u, '@')
	scheme := strings.Index(u, "://")
	if at < 0 || scheme < 0 || at < scheme {
		return u
	}
	userinfo := u[scheme+3 : at]
	if i := strings.IndexByte(userinfo, ':'); i >= 0 {
		return u[:scheme+3] + userinfo[:i] + ":xxxxx" + u[at:]
	}
	return u
}

// Exec runs a statement written with `?` placeholders.
func (db *DB) Exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return db.ExecContext(ctx, db.Dialect.Rebind(query), args...)
}

// Query runs a query written with `?` placeholders.
func (db *DB) Query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return db.QueryContext(ctx, db.Dialect.Rebind(query), args...)
}

// QueryRow runs a query written with `?` placeholders that returns one row.
func (db *DB) QueryRow(ctx context.Context, query string, args ...any) *sql.Row {
	return db.QueryRowContext(ctx, db.Dialect.Rebind(query), args...)
}

// InsertID runs an INSERT (written with `?` placeholders, without a
// RETURNING clause) and returns the id the database gave the new row, by
// `RETURNING id` on both engines.
func (db *DB) InsertID(ctx context.Context, insert string, args ...any) (int64, error) {
	var id int64
	err := db.QueryRow(ctx, insert+" RETURNING id", args...).Scan(&id)
	return id, err
}

// Begin starts a transaction whose methods take `?` placeholders too.
func (db *DB) Begin(ctx context.Context) (*Tx, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	return &Tx{Tx: tx, Dialect: db.Dialect}, nil
}

// Tx is a transaction of a [DB].
type Tx struct {
	*sql.Tx
	Dialect Dialect
}

// Exec runs a statement written with `?` placeholders.
func (tx *Tx) Exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return tx.ExecContext(ctx, tx.Dialect.Rebind(query), args...)
}

// Query runs a query written with `?` placeholders.
func (tx *Tx) Query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return tx.QueryContext(ctx, tx.Dialect.Rebind(query), args...)
}

// QueryRow runs a query written with `?` placeholders that returns one row.
func (tx *Tx) QueryRow(ctx context.Context, query string, args ...any) *sql.Row {
	return tx.QueryRowContext(ctx, tx.Dialect.Rebind(query), args...)
}

// Migrations are one component's schema, as goose SQL files: FS holds a
// directory "sqlite" and a directory "postgres", each with the same
// versions (00001_create.sql, 00002_….sql, …) written for its engine.
type Migrations struct {
	Component string // names the version table goose_<Component>; lower case, digits, _
	FS        fs.FS
	// Dir is the folder of FS that holds sqlite/ and postgres/ ("": its root).
	Dir string
	// Legacy, when set, is the component's name in the schema_migrations
	// table of internal/sqlitedb, whose steps the first SQLite files repeat
	// one for one (step i = version i). An SQLite database migrated that
	// way is adopted: goose records versions 1..v as applied, without
	// running them again, and goes on from v+1.
	Legacy string
}

// Migrate brings m's tables up to its newest version on db's engine. On
// PostgreSQL it holds an advisory lock meanwhile, so nodes starting
// together migrate once; a database newer than the files is an error, not
// a silent downgrade.
func (db *DB) Migrate(ctx context.Context, m Migrations) error {
	if m.Component == "" || strings.Trim(m.Component, "abcdefghijklmnopqrstuvwxyz0123456789_") != "" {
		return fmt.Errorf("migrate: component name %q must be lower case letters, digits and _", m.Component)
	}
	dir, err := fs.Sub(m.FS, path.Join(m.Dir, string(db.Dialect)))
	if err != nil {
		return fmt.Errorf("migrate %s: %w", m.Component, err)
	}
	opts := []goose.ProviderOption{
		goose.WithTableName("goose_" + m.Component),
		goose.WithDisableGlobalRegistry(true),
		goose.WithLogger(goose.NopLogger()),
	}
	gd := goose.DialectSQLite3
	if db.Dialect == Postgres {
		gd = goose.DialectPostgres
		// retried every second for up to 2 minutes while another node migrates
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 120))
		if err != nil {
			return fmt.Errorf("migrate %s: %w", m.Component, err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	if db.Dialect == SQLite && m.Legacy != "" {
		if err := adoptLegacy(ctx, db, m); err != nil {
			return fmt.Errorf("migrate %s: adopt %s: %w", m.Component, m.Legacy, err)
		}
	}
	p, err := goose.NewProvider(gd, db.DB, dir, opts...)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", m.Component, err)
	}
	current, err := p.GetDBVersion(ctx)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", m.Component, err)
	}
	sources := p.ListSources()
	if len(sources) == 0 {
		return fmt.Errorf("migrate %s: no migrations for %s", m.Component, db.Dialect)
	}
	if newest := sources[len(sources)-1].Version; current > newest {
		return fmt.Errorf("migrate %s: the database is at version %d, newer than this program (%d)", m.Component, current, newest)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate %s: %w", m.Component, err)
	}
	return nil
}

// adoptLegacy records in goose's version table the versions that
// internal/sqlitedb applied, once: when goose's table does not exist yet.
func adoptLegacy(ctx context.Context, db *DB, m Migrations) error {
	table := "goose_" + m.Component
	var n int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, table).Scan(&n); err != nil || n != 0 {
		return err // goose's table exists: adopted before, or goose ran first
	}
	var legacy int64 // sqlitedb.Open makes schema_migrations in every SQLite database
	err := db.QueryRow(ctx, `SELECT version FROM schema_migrations WHERE component = ?`, m.Legacy).Scan(&legacy)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	store, err := database.NewStore(goose.DialectSQLite3, table)
	if err != nil {
		return err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := store.CreateVersionTable(ctx, tx); err != nil {
		return err
	}
	for v := int64(0); v <= legacy; v++ {
		if err := store.Insert(ctx, tx, database.InsertRequest{Version: v}); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// Querier is what QueryList reads through: a *DB or a *Tx.
type Querier interface {
	Query(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// QueryList runs query (with `?` placeholders) and scans each row into a T
// with scan, in order (an empty list, not nil, when there are none); every
// error is wrapped as "what: …". It is sqlitedb.QueryList read through q, so
// that the placeholders are rebound for the database's dialect.
func QueryList[T any](ctx context.Context, q Querier, what string, scan func(*sql.Rows, *T) error, query string, args ...any) ([]T, error) {
	return sqlitedb.QueryList(ctx, rebinding{q}, what, scan, query, args...)
}

// rebinding gives sqlitedb.QueryList a Querier's Query, which rebinds.
type rebinding struct{ q Querier }

func (r rebinding) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return r.q.Query(ctx, query, args...)
}
