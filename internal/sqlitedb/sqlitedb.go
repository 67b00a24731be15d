// Package sqlitedb opens Vigil's embedded SQLite database (modernc.org/sqlite,
// pure Go) and runs versioned migrations, each component under its own name,
// so that the registry and the recorder keep their tables in one file.
package sqlitedb

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite" // the database/sql driver "sqlite"
)

// Open opens (creating it and its directory when missing) the database at
// path in WAL mode with foreign keys on and a busy timeout, so that concurrent
// writers wait instead of failing. A new database is readable by its owner
// only (0600, in a 0700 directory when that is made too): it holds password
// hashes and camera credentials. SQLite gives its WAL the same mode.
func Open(path string) (*sql.DB, error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("database: %w", err)
		}
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	f.Close()
	dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)" +
		"&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", path, err)
	}
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, fmt.Errorf("database %s: %w", path, err)
	}
	if _, err := db.Exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
		component TEXT NOT NULL PRIMARY KEY, version INTEGER NOT NULL)`); err != nil {
		db.Close()
		return nil, fmt.Errorf("database %s: %w", path, err)
	}
	return db, nil
}

// Migrate brings the component's tables to len(steps): step i (0-based)
// upgrades from version i to i+1. Each step runs in its own transaction with
// the version bump, so a failed step leaves the previous version intact.
// Never edit a released step: append a new one.
func Migrate(ctx context.Context, db *sql.DB, component string, steps []string) error {
	var version int
	err := db.QueryRowContext(ctx, `SELECT version FROM schema_migrations WHERE component = ?`, component).Scan(&version)
	if err != nil && err != sql.ErrNoRows {
		return fmt.Errorf("migrate %s: %w", component, err)
	}
	if version > len(steps) {
		return fmt.Errorf("migrate %s: the database is at version %d, newer than this program (%d)", component, version, len(steps))
	}
	for i := version; i < len(steps); i++ {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("migrate %s to %d: %w", component, i+1, err)
		}
		if _, err := tx.ExecContext(ctx, steps[i]); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate %s to %d: %w", component, i+1, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations(component, version) VALUES(?, ?)
			ON CONFLICT(component) DO UPDATE SET version = excluded.version`, component, i+1); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate %s to %d: %w", component, i+1, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migrate %s to %d: %w", component, i+1, err)
		}
	}
	return nil
}
