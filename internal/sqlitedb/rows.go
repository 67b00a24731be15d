package sqlitedb

import (
	"context"
	"database/sql"
	"fmt"
)

// Queryer is what QueryList reads through: a *sql.DB, *sql.Conn or *sql.Tx.
type Queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// QueryList runs query and scans each row into a T with scan, returning them
// in order (an empty list, not nil, when there are none). Every error is
// wrapped as "what: ...". The rows are closed before it returns, so that the
// caller may query again on a one-connection database.
func QueryList[T any](ctx context.Context, q Queryer, what string, scan func(*sql.Rows, *T) error, query string, args ...any) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		var v T
		if err := scan(rows, &v); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}
