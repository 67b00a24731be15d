package registry

import "database/sql"

// scanString scans a row of one text column.
func scanString(rows *sql.Rows, s *string) error { return rows.Scan(s) }
