package dbcopy

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
)

// pgColumn is a column of a target table.
type pgColumn struct {
	name      string
	dataType  string // information_schema's data_type: boolean, bigint, bytea, text, …
	generated bool   // GENERATED ALWAYS AS (…) STORED: not written
}

// catalog is what the copy needs to know of the target's schema (the
// current schema of the connection, public by default).
type catalog struct {
	columns map[string][]pgColumn // table → columns in order
	refs    map[string][]string   // table → the tables its foreign keys refer to
	goose   []string              // goose's version tables
}

func readCatalog(ctx context.Context, tx pgx.Tx) (*catalog, error) {
	c := &catalog{columns: map[string][]pgColumn{}, refs: map[string][]string{}}
	rows, err := tx.Query(ctx, `SELECT c.table_name, c.column_name, c.data_type, c.is_generated
		FROM information_schema.columns c
		JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
		WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
		ORDER BY c.table_name, c.ordinal_position`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var table string
		var col pgColumn
		var generated string
		if err := rows.Scan(&table, &col.name, &col.dataType, &generated); err != nil {
			rows.Close()
			return nil, err
		}
		col.generated = generated == "ALWAYS"
		if strings.HasPrefix(table, "goose_") {
			if len(c.goose) == 0 || c.goose[len(c.goose)-1] != table {
				c.goose = append(c.goose, table)
			}
			continue
		}
		c.columns[table] = append(c.columns[table], col)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = tx.Query(ctx, `SELECT DISTINCT cl.relname, rf.relname
		FROM pg_constraint co
		JOIN pg_class cl ON cl.oid = co.conrelid
		JOIN pg_class rf ON rf.oid = co.confrelid
		WHERE co.contype = 'f' AND cl.relnamespace = current_schema()::regnamespace
		ORDER BY 1, 2`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var from, to string
		if err := rows.Scan(&from, &to); err != nil {
			return nil, err
		}
		if from != to { // a table referring to itself is filled in key order
			c.refs[from] = append(c.refs[from], to)
		}
	}
	return c, rows.Err()
}

// order sorts the plans so that every table comes after the tables its
// foreign keys refer to (by name among equals, so the order is stable).
func (c *catalog) order(plans []*tablePlan) ([]*tablePlan, error) {
	byName := map[string]*tablePlan{}
	for _, p := range plans {
		byName[p.name] = p
	}
	var out []*tablePlan
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(name string, path []string) error
	visit = func(name string, path []string) error {
		switch state[name] {
		case 1:
			i := 0
			for path[i] != name {
				i++
			}
			return fmt.Errorf("%w: %s", errCycle, strings.Join(append(path[i:], name), " → "))
		case 2:
			return nil
		}
		state[name] = 1
		parents := append([]string(nil), c.refs[name]...)
		sort.Strings(parents)
		for _, parent := range parents {
			// a parent that is not copied (empty in SQLite, or PostgreSQL's
			// own) constrains nothing in the order
			if _, ok := byName[parent]; ok {
				if err := visit(parent, append(path, name)); err != nil {
					return err
				}
			}
		}
		state[name] = 2
		out = append(out, byName[name])
		return nil
	}
	names := make([]string, 0, len(plans))
	for _, p := range plans {
		names = append(names, p.name)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := visit(n, nil); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// occupied is who has put rows in the target's tables.
type occupied struct {
	xids   []string         // the transactions that ran the migrations
	seeded map[string]int64 // table → rows the migrations inserted
}

// occupancy counts the rows of every target table, and fails with a
// NotEmptyError when one holds a row that no migration inserted.
func occupancy(ctx context.Context, tx pgx.Tx) (*occupied, error) {
	var tables []string
	rows, err := tx.Query(ctx, `SELECT table_name FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name`)
	if err != nil {
		return nil, fmt.Errorf("target: %w", err)
	}
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return nil, fmt.Errorf("target: %w", err)
		}
		tables = append(tables, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("target: %w", err)
	}
	occ := &occupied{seeded: map[string]int64{}}
	var goose []string
	for _, t := range tables {
		if strings.HasPrefix(t, "goose_") {
			goose = append(goose, `SELECT xmin::text FROM `+quote(t))
		}
	}
	if len(goose) > 0 {
		rows, err := tx.Query(ctx, strings.Join(goose, " UNION "))
		if err != nil {
			return nil, fmt.Errorf("target: %w", err)
		}
		for rows.Next() {
			var x string
			if err := rows.Scan(&x); err != nil {
				rows.Close()
				return nil, fmt.Errorf("target: %w", err)
			}
			occ.xids = append(occ.xids, x)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("target: %w", err)
		}
	}
	used := map[string]int64{}
	for _, t := range tables {
		if strings.HasPrefix(t, "goose_") {
			continue
		}
		var all, seeded int64
		if err := tx.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE xmin::text = ANY($1)) FROM `+quote(t), occ.xids).Scan(&all, &seeded); err != nil {
			return nil, fmt.Errorf("target: table %s: %w", t, err)
		}
		if all > seeded {
			used[t] = all - seeded
		}
		if seeded > 0 {
			occ.seeded[t] = seeded
		}
	}
	if len(used) > 0 {
		return nil, &NotEmptyError{Rows: used}
	}
	return occ, nil
}

// checkVersions compares each component's schema version in both
// databases: their tables have the same columns only when the SQLite file
// was migrated by this program's version too.
func checkVersions(ctx context.Context, tx pgx.Tx, lite *sqliteSource, target *catalog) error {
	for _, g := range target.goose {
		have, ok, err := lite.version(ctx, g)
		if err != nil {
			return fmt.Errorf("source: %s: %w", g, err)
		}
		if !ok {
			continue // the component never ran on the SQLite file: its tables are not there either
		}
		var want *int64
		if err := tx.QueryRow(ctx, `SELECT max(version_id) FROM `+quote(g)+` WHERE is_applied`).Scan(&want); err != nil {
			return fmt.Errorf("target: %s: %w", g, err)
		}
		if want != nil && have != *want {
			return fmt.Errorf("%s: the SQLite database is at version %d, this program's schema at %d: "+
				"start this version of vigil on the SQLite database once (it migrates the file), stop it, then copy",
				strings.TrimPrefix(g, "goose_"), have, *want)
		}
	}
	return nil
}
