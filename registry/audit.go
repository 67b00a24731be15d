package registry

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/vigil-vms/vigil/internal/sqldb"
)

// AuditEntry is one row of the append-only audit log.
type AuditEntry struct {
	ID      int64     `json:"id"`
	Time    time.Time `json:"time"`
	User    string    `json:"user"`
	Address string    `json:"address"`
	Action  string    `json:"action"`
	Camera  string    `json:"camera,omitempty"`
	Start   time.Time `json:"start,omitzero"`
	End     time.Time `json:"end,omitzero"`
	Result  string    `json:"result"`
	Detail  string    `json:"detail,omitempty"`
}

// AuditFilter selects audit entries; zero fields select everything.
type AuditFilter struct {
	From, To time.Time
	User     string
	Camera   string
	Action   string
	// Limit caps the entries returned, newest first. It defaults to 1000.
	Limit int
}

// Audit appends an entry; a zero Time is now. Never put a password in it.
func (r *Registry) Audit(ctx context.Context, e AuditEntry) error {
	if e.Time.IsZero() {
		e.Time = r.now()
	}
	_, err := r.db.Exec(ctx, `INSERT INTO audit(time_ns, username, address, action, camera, start_ns, end_ns, result, detail)
		VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.Time.UnixNano(), e.User, e.Address, e.Action, e.Camera, timeNS(e.Start), timeNS(e.End), e.Result, e.Detail)
	if err != nil {
		return fmt.Errorf("audit %s: %w", e.Action, err)
	}
	return nil
}

// AuditEntries returns the entries matching f, newest first.
func (r *Registry) AuditEntries(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	var where []string
	var args []any
	if !f.From.IsZero() {
		where, args = append(where, "time_ns >= ?"), append(args, f.From.UnixNano())
	}
	if !f.To.IsZero() {
		where, args = append(where, "time_ns < ?"), append(args, f.To.UnixNano())
	}
	if f.User != "" {
		where, args = append(where, "username = ?"), append(args, f.User)
	}
	if f.Camera != "" {
		where, args = append(where, "camera = ?"), append(args, f.Camera)
	}
	if f.Action != "" {
		where, args = append(where, "action = ?"), append(args, f.Action)
	}
	q := `SELECT id, time_ns, username, address, action, camera, start_ns, end_ns, result, detail FROM audit`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	if f.Limit <= 0 {
		f.Limit = 1000
	}
	q += ` ORDER BY time_ns DESC, id DESC LIMIT ?`
	args = append(args, f.Limit)
	return sqldb.QueryList(ctx, r.db, "audit", func(rows *sql.Rows, e *AuditEntry) error {
		var t, s, en int64
		err := rows.Scan(&e.ID, &t, &e.User, &e.Address, &e.Action, &e.Camera, &s, &en, &e.Result, &e.Detail)
		e.Time, e.Start, e.End = nsTime(t), nsTime(s), nsTime(en)
		return err
	}, q, args...)
}
