// Package dbcopy copies a single node's SQLite database into an empty
// PostgreSQL database, so that the node can grow into a cluster (`vigil db
// copy --to postgres://…`).
//
// It knows no component's tables. The target is first migrated by the
// components themselves ([Options.Migrate]: the functions the server runs
// when it starts), so that its schema is the one a node on PostgreSQL
// expects. Then every table of the SQLite file that the target has too is
// copied, in the columns both have, each value converted to the type of
// its PostgreSQL column (SQLite keeps flags as 0/1 where PostgreSQL has
// BOOLEAN, and does not tell BLOB from TEXT as strictly as BYTEA does).
//
// The copy is all or nothing: one PostgreSQL transaction fills the tables,
// parents before children (the order of the target's foreign keys), with
// COPY; moves every identity and serial sequence past the largest id
// copied (and past the largest SQLite's AUTOINCREMENT ever gave, which it
// does not give again); and checks that each table holds as many rows as
// the SQLite table did before it commits. The SQLite file is read in one
// read transaction (a snapshot) and never written; it must be at the
// schema version the migrations bring the target to (goose_* tables
// compared), which `vigil serve` of the same version makes it.
//
// The target must be empty: a table with a row that the migrations did not
// put there (a user, a camera, a lease of a running node) stops the copy
// before anything is written ([NotEmptyError]). Rows the migrations insert
// (the four departments of the contract) are replaced by the SQLite file's
// rows. They are told apart by PostgreSQL's xmin: goose runs each migration
// in one transaction with the insertion of its version row, so a row a
// migration inserted carries the same transaction id as a goose_* row.
package dbcopy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/vigil-vms/vigil/internal/sqldb"
)

// Migrate brings one component's tables up to date in db, as the server
// does when it starts (for example a closure that opens the registry on db).
type Migrate func(ctx context.Context, db *sqldb.DB) error

// Options tune a copy.
type Options struct {
	// Migrate are run on the target, in order, before anything is copied.
	// It defaults to none: the target must then hold the tables already.
	Migrate []Migrate
	// Skip names SQLite tables not to copy (for a table that PostgreSQL
	// deliberately does not have). A table of the SQLite file with rows
	// and no PostgreSQL table is an error otherwise, not a silent loss.
	Skip []string
	// Progress, when set, is told each table as it is about to be copied.
	Progress func(table string, rows int64)
}

// Table is one copied table.
type Table struct {
	Name string
	Rows int64 // rows copied: as many as the SQLite table held, checked in the target
	// Replaced counts the rows the migrations had put in the target table
	// (deleted before the copy, so the table holds the SQLite file's rows).
	Replaced int64
	// Dropped are the SQLite table's columns that the PostgreSQL table does
	// not have: not copied.
	Dropped []string
	// Sequences are the identity or serial sequences set past the largest
	// copied value.
	Sequences []string
}

// Report says what a copy did.
type Report struct {
	Tables []Table // in the order they were filled
	// NotCopied are the SQLite tables left out: empty ones PostgreSQL does
	// not have, and those named in Options.Skip.
	NotCopied []string
}

// Rows is the number of rows copied in all.
func (r *Report) Rows() int64 {
	var n int64
	for _, t := range r.Tables {
		n += t.Rows
	}
	return n
}

// NotEmptyError is the refusal of a target that already holds data.
type NotEmptyError struct {
	Rows map[string]int64 // table → rows the migrations did not insert
}

func (e *NotEmptyError) Error() string {
	names := make([]string, 0, len(e.Rows))
	for t := range e.Rows {
		names = append(names, t)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, t := range names {
		parts[i] = fmt.Sprintf("%s (%d rows)", t, e.Rows[t])
	}
	return "the target database is not empty: " + strings.Join(parts, ", ") +
		"; copy into a new, empty database (CREATE DATABASE …), not one a node has used"
}

// Copy copies the SQLite database src into the PostgreSQL database dst,
// after migrating dst with opts.Migrate. When it fails, dst holds the
// migrations' schema and nothing else; the one exception is ANALYZE after
// the commit, whose error comes with the Report of the finished copy.
func Copy(ctx context.Context, src, dst *sqldb.DB, opts Options) (*Report, error) {
	if src.Dialect != sqldb.SQLite {
		return nil, fmt.Errorf("copy: the source must be an SQLite database, not %s", src.Dialect)
	}
	if dst.Dialect != sqldb.Postgres {
		return nil, fmt.Errorf("copy: the target must be a PostgreSQL database, not %s", dst.Dialect)
	}
	// refuse a used target before migrating it: a running cluster's
	// database is not changed, not even by a migration
	if err := withPG(ctx, dst, func(tx pgx.Tx) error {
		_, err := occupancy(ctx, tx)
		return err
	}); err != nil {
		return nil, err
	}
	for _, m := range opts.Migrate {
		if err := m(ctx, dst); err != nil {
			return nil, fmt.Errorf("migrate the target: %w", err)
		}
	}

	source, err := src.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	defer source.Close()
	// a deferred transaction reads one snapshot of the file (its writers,
	// a server still running, go on); BeginTx would take the write lock
	// (the database is opened with _txlock=immediate)
	if _, err := source.ExecContext(ctx, `BEGIN DEFERRED`); err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	defer source.ExecContext(context.WithoutCancel(ctx), `ROLLBACK`)
	lite := &sqliteSource{conn: source}
	srcTables, err := lite.tables(ctx)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}

	report := &Report{}
	if err := withPG(ctx, dst, func(tx pgx.Tx) error {
		return fill(ctx, tx, lite, srcTables, opts, report)
	}); err != nil {
		return nil, err
	}
	// fresh statistics for the planner: the tables grew from nothing
	conn, err := dst.Conn(ctx)
	if err == nil {
		for _, t := range report.Tables {
			if _, err = conn.ExecContext(ctx, `ANALYZE `+quote(t.Name)); err != nil {
				break
			}
		}
		conn.Close()
	}
	if err != nil {
		return report, fmt.Errorf("copied, but ANALYZE failed (run it by hand): %w", err)
	}
	return report, nil
}

// fill copies the tables of the SQLite snapshot into the target, in the
// target's transaction tx.
func fill(ctx context.Context, tx pgx.Tx, lite *sqliteSource, srcTables []sqliteTable, opts Options, report *Report) error {
	target, err := readCatalog(ctx, tx)
	if err != nil {
		return fmt.Errorf("target: %w", err)
	}
	if err := checkVersions(ctx, tx, lite, target); err != nil {
		return err
	}
	plans, err := plan(srcTables, target, opts.Skip, report)
	if err != nil {
		return err
	}
	if plans, err = target.order(plans); err != nil {
		return err
	}
	occ, err := occupancy(ctx, tx) // again: a node may have started meanwhile
	if err != nil {
		return err
	}
	// the migrations' rows go, children first
	for i := len(plans) - 1; i >= 0; i-- {
		p := plans[i]
		if occ.seeded[p.name] == 0 {
			continue
		}
		tag, err := tx.Exec(ctx, `DELETE FROM `+quote(p.name)+` WHERE xmin::text = ANY($1)`, occ.xids)
		if err != nil {
			return fmt.Errorf("table %s: remove the rows the migrations inserted: %w", p.name, err)
		}
		p.replaced = tag.RowsAffected()
	}
	for _, p := range plans {
		t, err := copyTable(ctx, tx, lite, p, opts.Progress)
		if err != nil {
			return err
		}
		report.Tables = append(report.Tables, t)
	}
	return nil
}

// withPG runs fn in a transaction on one connection of db, through pgx
// itself (for COPY), and commits when fn returns nil.
func withPG(ctx context.Context, db *sqldb.DB, fn func(tx pgx.Tx) error) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("target: %w", err)
	}
	defer conn.Close()
	return conn.Raw(func(driverConn any) error {
		c, ok := driverConn.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("target: driver connection %T is not pgx's", driverConn)
		}
		tx, err := c.Conn().Begin(ctx)
		if err != nil {
			return fmt.Errorf("target: %w", err)
		}
		defer tx.Rollback(context.WithoutCancel(ctx))
		if err := fn(tx); err != nil {
			return err
		}
		if err := tx.Commit(ctx); err != nil {
			return fmt.Errorf("target: commit: %w", err)
		}
		return nil
	})
}

// tablePlan is one table to copy: the columns both databases have, with the
// conversion of each into its PostgreSQL type.
type tablePlan struct {
	name    string // PostgreSQL's name
	srcName string // SQLite's
	rows    int64  // in the SQLite snapshot
	srcCols []string
	dstCols []string
	convert []converter
	blobs   []int // the columns going into BYTEA (SQLite's driver reads an empty blob as NULL)
	dropped []string
	key     []string // SQLite's primary key columns, which name a row in errors
	// autoincrement is the AUTOINCREMENT column, and sqliteSeq the largest
	// id SQLite has given in it (sqlite_sequence), deleted rows' too
	autoincrement string
	sqliteSeq     int64
	replaced      int64
}

// plan pairs the SQLite tables with the target's. An SQLite table with
// rows that the target does not have is an error, unless skipped.
func plan(src []sqliteTable, target *catalog, skip []string, report *Report) ([]*tablePlan, error) {
	var plans []*tablePlan
	var missing []string
	for _, st := range src {
		if slices.Contains(skip, st.name) {
			report.NotCopied = append(report.NotCopied, st.name)
			continue
		}
		name := strings.ToLower(st.name)
		cols, ok := target.columns[name]
		if !ok {
			cols, ok = target.columns[st.name]
			name = st.name
		}
		if !ok {
			if st.rows > 0 {
				missing = append(missing, fmt.Sprintf("%s (%d rows)", st.name, st.rows))
			} else {
				report.NotCopied = append(report.NotCopied, st.name)
			}
			continue
		}
		p := &tablePlan{name: name, srcName: st.name, rows: st.rows, key: st.key, sqliteSeq: st.sequence}
		if st.sequence > 0 && len(st.key) == 1 {
			p.autoincrement = st.key[0] // AUTOINCREMENT takes an INTEGER PRIMARY KEY
		}
		for _, c := range st.columns {
			pc, ok := findColumn(cols, c)
			if !ok {
				p.dropped = append(p.dropped, c)
				continue
			}
			if pc.generated {
				continue // computed by PostgreSQL
			}
			conv, err := converterFor(pc.dataType)
			if err != nil {
				return nil, fmt.Errorf("table %s column %s: %w", name, pc.name, err)
			}
			p.srcCols = append(p.srcCols, c)
			p.dstCols = append(p.dstCols, pc.name)
			p.convert = append(p.convert, conv)
			if pc.dataType == "bytea" {
				p.blobs = append(p.blobs, len(p.srcCols)-1)
			}
		}
		if len(p.srcCols) == 0 {
			return nil, fmt.Errorf("table %s: no column in common with the SQLite table", name)
		}
		plans = append(plans, p)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("the SQLite tables %s have no PostgreSQL table to go to (is this program older than the database?); "+
			"leave them out with --skip only if they are not needed", strings.Join(missing, ", "))
	}
	return plans, nil
}

func findColumn(cols []pgColumn, name string) (pgColumn, bool) {
	for _, c := range cols {
		if c.name == name {
			return c, true
		}
	}
	lower := strings.ToLower(name)
	for _, c := range cols {
		if c.name == lower {
			return c, true
		}
	}
	return pgColumn{}, false
}

// copyTable streams one table from the SQLite snapshot into the target with
// COPY, checks the count and sets the sequences.
func copyTable(ctx context.Context, tx pgx.Tx, lite *sqliteSource, p *tablePlan, progress func(string, int64)) (Table, error) {
	t := Table{Name: p.name, Replaced: p.replaced, Dropped: p.dropped}
	if progress != nil {
		progress(p.name, p.rows)
	}
	rows, err := lite.rows(ctx, p)
	if err != nil {
		return t, fmt.Errorf("table %s: read: %w", p.name, err)
	}
	defer rows.Close()
	src := &rowSource{rows: rows, plan: p}
	n, err := tx.CopyFrom(ctx, pgx.Identifier{p.name}, p.dstCols, src)
	if err != nil {
		if src.err != nil {
			err = src.err // the conversion's own message, not COPY's
		}
		return t, fmt.Errorf("table %s: %w", p.name, err)
	}
	var count int64
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM `+quote(p.name)).Scan(&count); err != nil {
		return t, fmt.Errorf("table %s: count: %w", p.name, err)
	}
	if n != p.rows || count != p.rows {
		return t, fmt.Errorf("table %s: %d rows in SQLite, %d copied, %d in PostgreSQL", p.name, p.rows, n, count)
	}
	t.Rows = n
	if t.Sequences, err = setSequences(ctx, tx, p); err != nil {
		return t, fmt.Errorf("table %s: %w", p.name, err)
	}
	return t, nil
}

// setSequences moves the identity and serial sequences of p's columns past
// the largest value copied, so that the next insert gets a new id — and
// past the largest id SQLite ever gave (sqlite_sequence: AUTOINCREMENT
// never reuses the id of a deleted row, an incident's for one, and neither
// does the copy).
func setSequences(ctx context.Context, tx pgx.Tx, p *tablePlan) ([]string, error) {
	var out []string
	for i, col := range p.dstCols {
		var seq *string
		if err := tx.QueryRow(ctx, `SELECT pg_get_serial_sequence($1, $2)`, quote(p.name), col).Scan(&seq); err != nil {
			return nil, fmt.Errorf("sequence of %s: %w", col, err)
		}
		if seq == nil {
			continue
		}
		var last int64
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(`+quote(col)+`), 0) FROM `+quote(p.name)).Scan(&last); err != nil {
			return nil, fmt.Errorf("largest %s: %w", col, err)
		}
		if p.srcCols[i] == p.autoincrement {
			last = max(last, p.sqliteSeq)
		}
		if last > 0 { // an empty table's sequence stays where it is
			if _, err := tx.Exec(ctx, `SELECT setval($1::text::regclass, $2)`, *seq, last); err != nil {
				return nil, fmt.Errorf("set %s: %w", *seq, err)
			}
		}
		out = append(out, *seq)
	}
	return out, nil
}

// quote is a SQL identifier, quoted (both engines' syntax).
func quote(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// errCycle is a foreign key cycle among the tables: no order fills them.
var errCycle = errors.New("the foreign keys of these tables form a cycle, so no order of filling them satisfies them")
