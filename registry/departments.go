package registry

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/vigil-vms/vigil/internal/apierr"
	"github.com/vigil-vms/vigil/internal/sqldb"
)

// Department groups cameras; users may be limited to departments.
type Department struct {
	ID   string         `json:"id"`
	Name DepartmentName `json:"name"`
}

// DepartmentName is a department's display name per language.
type DepartmentName struct {
	ZH string `json:"zh-CN"`
	EN string `json:"en"`
}

var idRE = regexp.MustCompile(`^[a-z0-9-]{1,64}$`)

// ValidateDepartment checks a department's id and names.
func ValidateDepartment(d Department) error {
	var msgs []string
	if !idRE.MatchString(d.ID) {
		msgs = append(msgs, fmt.Sprintf("id %q must be 1-64 lowercase letters, digits or '-'", truncate(d.ID, 64)))
	}
	for _, n := range []struct{ lang, v string }{{"zh-CN", d.Name.ZH}, {"en", d.Name.EN}} {
		if msg := checkText(n.v, 1, 100); msg != "" {
			msgs = append(msgs, "name "+n.lang+" "+msg)
		}
	}
	if len(msgs) > 0 {
		return apierr.New(apierr.ErrInvalid, "department: %s", strings.Join(msgs, "; "))
	}
	return nil
}

// checkText checks a display text: valid UTF-8, no control characters,
// min..max characters after trimming spaces. It returns "" or what is wrong.
func checkText(s string, min, max int) string {
	if !utf8.ValidString(s) {
		return "is not valid UTF-8"
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return "contains a control character"
		}
	}
	n := utf8.RuneCountInString(strings.TrimSpace(s))
	if n < min {
		return "is empty"
	}
	if n > max {
		return fmt.Sprintf("is longer than %d characters", max)
	}
	return ""
}

// Departments lists every department by id.
func (r *Registry) Departments(ctx context.Context) ([]Department, error) {
	return sqldb.QueryList(ctx, r.db, "list departments", func(rows *sql.Rows, d *Department) error {
		return rows.Scan(&d.ID, &d.Name.ZH, &d.Name.EN)
	}, `SELECT id, name_zh, name_en FROM departments ORDER BY id`)
}

// Department returns one department.
func (r *Registry) Department(ctx context.Context, id string) (Department, error) {
	d := Department{ID: id}
	err := r.db.QueryRow(ctx, `SELECT name_zh, name_en FROM departments WHERE id = ?`, id).Scan(&d.Name.ZH, &d.Name.EN)
	if notFound(err) {
		return d, apierr.New(apierr.ErrNotFound, "department %q does not exist", truncate(id, 64))
	}
	if err != nil {
		return d, fmt.Errorf("department %q: %w", id, err)
	}
	return d, nil
}

// CreateDepartment adds a department.
func (r *Registry) CreateDepartment(ctx context.Context, d Department) error {
	if err := ValidateDepartment(d); err != nil {
		return err
	}
	_, err := r.db.Exec(ctx, `INSERT INTO departments(id, name_zh, name_en) VALUES(?, ?, ?)`,
		d.ID, strings.TrimSpace(d.Name.ZH), strings.TrimSpace(d.Name.EN))
	if r.isUnique(err) {
		return apierr.New(apierr.ErrConflict, "department %q already exists", d.ID)
	}
	if err != nil {
		return fmt.Errorf("create department %q: %w", d.ID, err)
	}
	return nil
}

// UpdateDepartment renames a department.
func (r *Registry) UpdateDepartment(ctx context.Context, d Department) error {
	if err := ValidateDepartment(d); err != nil {
		return err
	}
	res, err := r.db.Exec(ctx, `UPDATE departments SET name_zh = ?, name_en = ? WHERE id = ?`,
		strings.TrimSpace(d.Name.ZH), strings.TrimSpace(d.Name.EN), d.ID)
	if err != nil {
		return fmt.Errorf("update department %q: %w", d.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return apierr.New(apierr.ErrNotFound, "department %q does not exist", truncate(d.ID, 64))
	}
	return nil
}

// DeleteDepartment removes a department that has no cameras and no users
// limited to it (removing it from a user's list could widen their scope to
// every department).
func (r *Registry) DeleteDepartment(ctx context.Context, id string) error {
	return r.inTx(ctx, func(tx *sqldb.Tx) error {
		// On PostgreSQL the row lock waits for the transactions that add a
		// camera or user to the department, and blocks new ones.
		var found string
		err := tx.QueryRow(ctx, `SELECT id FROM departments WHERE id = ?`+tx.Dialect.ForUpdate(), id).Scan(&found)
		if notFound(err) {
			return apierr.New(apierr.ErrNotFound, "department %q does not exist", truncate(id, 64))
		}
		if err != nil {
			return fmt.Errorf("delete department %q: %w", id, err)
		}
		var cams, users int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM cameras WHERE department = ?`, id).Scan(&cams); err != nil {
			return fmt.Errorf("delete department %q: %w", id, err)
		}
		if cams > 0 {
			return apierr.New(apierr.ErrConflict, "department %q still has %d camera(s): move or delete them first", id, cams)
		}
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM user_departments WHERE department = ?`, id).Scan(&users); err != nil {
			return fmt.Errorf("delete department %q: %w", id, err)
		}
		if users > 0 {
			return apierr.New(apierr.ErrConflict, "department %q still has %d user(s) limited to it: change them first", id, users)
		}
		res, err := tx.Exec(ctx, `DELETE FROM departments WHERE id = ?`, id)
		if isForeignKey(err) { // still named by something the checks above do not count
			return apierr.New(apierr.ErrConflict, "department %q is still in use", id)
		}
		if err != nil {
			return fmt.Errorf("delete department %q: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return apierr.New(apierr.ErrNotFound, "department %q does not exist", truncate(id, 64))
		}
		return nil
	})
}
