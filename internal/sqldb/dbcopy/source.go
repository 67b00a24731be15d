package dbcopy

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
)

// sqliteSource reads the SQLite file inside the read transaction open on conn.
type sqliteSource struct {
	conn *sql.Conn
}

// sqliteTable is one table of the SQLite file.
type sqliteTable struct {
	name    string
	columns []string
	key     []string // primary key columns, in key order
	rows    int64
	// sequence is the table's entry in sqlite_sequence: the largest id
	// AUTOINCREMENT has given (0: none)
	sequence int64
}

// bookkeeping reports whether a SQLite table is bookkeeping, not data: the
// engine's own, goose's version tables and the old migrations table.
func bookkeeping(name string) bool {
	lower := strings.ToLower(name)
	return strings.HasPrefix(lower, "sqlite_") || strings.HasPrefix(lower, "goose_") || lower == "schema_migrations"
}

// tables lists the data tables with their columns and row counts.
func (s *sqliteSource) tables(ctx context.Context) ([]sqliteTable, error) {
	rows, err := s.conn.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`)
	if err != nil {
		return nil, err
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return nil, err
		}
		if !bookkeeping(n) {
			names = append(names, n)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	seqs, err := s.sequences(ctx)
	if err != nil {
		return nil, err
	}
	var out []sqliteTable
	for _, n := range names {
		t := sqliteTable{name: n}
		if t.columns, t.key, err = s.columns(ctx, n); err != nil {
			return nil, fmt.Errorf("table %s: %w", n, err)
		}
		if err := s.conn.QueryRowContext(ctx, `SELECT count(*) FROM `+quote(n)).Scan(&t.rows); err != nil {
			return nil, fmt.Errorf("table %s: %w", n, err)
		}
		t.sequence = seqs[n]
		out = append(out, t)
	}
	return out, nil
}

// sequences reads sqlite_sequence, which exists once a table with
// AUTOINCREMENT does.
func (s *sqliteSource) sequences(ctx context.Context) (map[string]int64, error) {
	out := map[string]int64{}
	var n int
	if err := s.conn.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_sequence'`).Scan(&n); err != nil || n == 0 {
		return out, err
	}
	rows, err := s.conn.QueryContext(ctx, `SELECT name, seq FROM sqlite_sequence`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var seq int64
		if err := rows.Scan(&name, &seq); err != nil {
			return nil, err
		}
		out[name] = seq
	}
	return out, rows.Err()
}

// columns reads a table's columns (table_info leaves out generated ones)
// and its primary key.
func (s *sqliteSource) columns(ctx context.Context, table string) (cols, key []string, err error) {
	rows, err := s.conn.QueryContext(ctx, `SELECT name, pk FROM pragma_table_info(?) ORDER BY cid`, table)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	type keyCol struct {
		name string
		pos  int
	}
	var keys []keyCol
	for rows.Next() {
		var name string
		var pk int
		if err := rows.Scan(&name, &pk); err != nil {
			return nil, nil, err
		}
		cols = append(cols, name)
		if pk > 0 {
			keys = append(keys, keyCol{name, pk})
		}
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].pos < keys[j].pos })
	for _, k := range keys {
		key = append(key, k.name)
	}
	return cols, key, rows.Err()
}

// rows reads p's columns of its table in the order SQLite stores them: a
// table's rowid order, which is the order its rows were written in (a row
// that refers to an earlier row of its own table comes after it), or the
// primary key's for a table WITHOUT ROWID.
func (s *sqliteSource) rows(ctx context.Context, p *tablePlan) (*sql.Rows, error) {
	cols := make([]string, len(p.srcCols))
	for i, c := range p.srcCols {
		cols[i] = quote(c)
	}
	for _, i := range p.blobs {
		cols = append(cols, quote(p.srcCols[i])+` IS NULL`)
	}
	return s.conn.QueryContext(ctx, `SELECT `+strings.Join(cols, ", ")+` FROM `+quote(p.srcName))
}

// version is a goose version table's current version in the SQLite file;
// ok is false when the file has no such table.
func (s *sqliteSource) version(ctx context.Context, table string) (v int64, ok bool, err error) {
	var n int
	if err := s.conn.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, table).Scan(&n); err != nil || n == 0 {
		return 0, false, err
	}
	var max sql.NullInt64
	err = s.conn.QueryRowContext(ctx, `SELECT max(version_id) FROM `+quote(table)+` WHERE is_applied`).Scan(&max)
	return max.Int64, true, err
}

// rowSource feeds COPY from the SQLite rows, converting each value.
type rowSource struct {
	rows *sql.Rows
	plan *tablePlan
	n    int64
	raw  []any
	ptrs []any
	vals []any
	err  error // a conversion's error, which COPY reports less clearly
}

func (r *rowSource) Next() bool {
	if r.err != nil || !r.rows.Next() {
		return false
	}
	n := len(r.plan.srcCols)
	if r.raw == nil {
		r.raw = make([]any, n+len(r.plan.blobs))
		r.ptrs = make([]any, len(r.raw))
		for i := range r.raw {
			r.ptrs[i] = &r.raw[i]
		}
		r.vals = make([]any, n)
	}
	r.n++
	if err := r.rows.Scan(r.ptrs...); err != nil {
		r.err = fmt.Errorf("read row %d: %w", r.n, err)
		return false
	}
	for k, i := range r.plan.blobs {
		if b, ok := r.raw[i].([]byte); (r.raw[i] == nil || ok && b == nil) && r.raw[n+k] == int64(0) {
			r.raw[i] = []byte{} // an empty blob, not NULL
		}
	}
	for i, v := range r.raw[:n] {
		c, err := r.plan.convert[i](v)
		if err != nil {
			r.err = fmt.Errorf("row %d%s, column %s: %w", r.n, r.where(), r.plan.srcCols[i], err)
			return false
		}
		r.vals[i] = c
	}
	return true
}

// where names the current row by its primary key, when the key is copied.
func (r *rowSource) where() string {
	var parts []string
	for _, k := range r.plan.key {
		for i, c := range r.plan.srcCols {
			if c == k {
				parts = append(parts, fmt.Sprintf("%s = %v", c, r.raw[i]))
			}
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

func (r *rowSource) Values() ([]any, error) { return r.vals, nil }

func (r *rowSource) Err() error {
	if r.err != nil {
		return r.err
	}
	return r.rows.Err()
}
