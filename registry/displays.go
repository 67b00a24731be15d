package registry

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vigil-vms/vigil/internal/apierr"
	"github.com/vigil-vms/vigil/internal/sqldb"
)

// Display is a wall screen that an admin signed in for good: it sees live
// view of its departments (every department when none) and nothing else,
// does not idle out, and stays signed in until an admin deletes it.
//
// The admin creates it and gets a one-time sign-in code (valid for
// DisplayCodeTTL); the wall's browser trades the code for its own secret
// (the session cookie), and the code is spent.
type Display struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Departments []string  `json:"departments"`
	CreatedBy   string    `json:"createdBy"`
	Created     time.Time `json:"created"`
	SignedIn    time.Time `json:"signedIn,omitzero"`
	LastSeen    time.Time `json:"lastSeen,omitzero"`
	// CodeExpires is when an unused sign-in code stops working; zero once
	// the code was used.
	CodeExpires time.Time `json:"codeExpires,omitzero"`
	CSRF        string    `json:"-"`
}

// DisplayCodeTTL is how long a display's sign-in code works.
const DisplayCodeTTL = 24 * time.Hour

// DisplaySecretPrefix starts the session secret of a display, so that its
// cookie is told from a user's session without a second lookup.
const DisplaySecretPrefix = "d."

var errNoDisplaySession = apierr.New(apierr.ErrNotFound, "no such display")

// CreateDisplay registers a display and returns it with its one-time
// sign-in code, which is stored only hashed.
func (r *Registry) CreateDisplay(ctx context.Context, name string, departments []string, by string) (Display, string, error) {
	name = strings.TrimSpace(name)
	if msg := checkText(name, 1, 100); msg != "" {
		return Display{}, "", apierr.New(apierr.ErrInvalid, "display name %s", msg)
	}
	depts := slices.Clone(departments)
	slices.Sort(depts)
	depts = slices.Compact(depts)
	if depts == nil {
		depts = []string{}
	}
	id, code, err := newIDAndSecret(18)
	if err != nil {
		return Display{}, "", err
	}
	now := r.now()
	d := Display{ID: id, Name: name,
		Departments: depts, CreatedBy: by, Created: now.UTC(), CodeExpires: now.Add(DisplayCodeTTL).UTC()}
	deptJSON, err := json.Marshal(depts)
	if err != nil {
		return Display{}, "", fmt.Errorf("create display: %w", err)
	}
	err = r.inTx(ctx, func(tx *sqldb.Tx) error {
		for _, dep := range depts {
			// locked on PostgreSQL: not deleted before the display is stored
			var found string
			err := tx.QueryRow(ctx, `SELECT id FROM departments WHERE id = ?`+tx.Dialect.ForUpdate(), dep).Scan(&found)
			if notFound(err) {
				return apierr.New(apierr.ErrInvalid, "department %q does not exist", truncate(dep, 64))
			}
			if err != nil {
				return fmt.Errorf("create display: %w", err)
			}
		}
		_, err := tx.Exec(ctx, `INSERT INTO displays(id, name, departments, created_by, created_ns, code_hash, code_expires_ns) VALUES(?, ?, ?, ?, ?, ?, ?)`,
			d.ID, d.Name, string(deptJSON), by, now.UnixNano(), sha256Hex(code), d.CodeExpires.UnixNano())
		if err != nil {
			return fmt.Errorf("create display: %w", err)
		}
		return nil
	})
	if err != nil {
		return Display{}, "", err
	}
	return d, code, nil
}

const displayColumns = `id, name, departments, created_by, created_ns, signed_in_ns, last_seen_ns, code_expires_ns, csrf`

func scanDisplay(sc interface{ Scan(...any) error }, d *Display) error {
	var depts string
	var created, signedIn, seen, codeExp int64
	if err := sc.Scan(&d.ID, &d.Name, &depts, &d.CreatedBy, &created, &signedIn, &seen, &codeExp, &d.CSRF); err != nil {
		return err
	}
	d.Created, d.SignedIn, d.LastSeen, d.CodeExpires = nsTime(created), nsTime(signedIn), nsTime(seen), nsTime(codeExp)
	if err := json.Unmarshal([]byte(depts), &d.Departments); err != nil {
		return fmt.Errorf("display %q: departments: %w", d.ID, err)
	}
	return nil
}

// Displays lists the displays by creation.
func (r *Registry) Displays(ctx context.Context) ([]Display, error) {
	return sqldb.QueryList(ctx, r.db, "list displays", func(rows *sql.Rows, d *Display) error {
		return scanDisplay(rows, d)
	}, `SELECT `+displayColumns+` FROM displays ORDER BY created_ns, id`)
}

// Display returns one display.
func (r *Registry) Display(ctx context.Context, id string) (Display, error) {
	var d Display
	err := scanDisplay(r.db.QueryRow(ctx, `SELECT `+displayColumns+` FROM displays WHERE id = ?`, id), &d)
	if notFound(err) {
		return d, apierr.New(apierr.ErrNotFound, "display %q does not exist", truncate(id, 64))
	}
	if err != nil {
		return d, fmt.Errorf("display: %w", err)
	}
	return d, nil
}

// SignInDisplay spends a display's sign-in code and returns the display and
// the secret of its session (for the cookie; stored hashed). A second
// sign-in of the same display needs a new display: the code works once.
func (r *Registry) SignInDisplay(ctx context.Context, code string) (Display, string, error) {
	secret, err := randomString(32)
	if err != nil {
		return Display{}, "", err
	}
	secret = DisplaySecretPrefix + secret
	csrf, err := randomString(32)
	if err != nil {
		return Display{}, "", err
	}
	now := r.now().UnixNano()
	res, err := r.db.Exec(ctx, `UPDATE displays SET code_hash = NULL, code_expires_ns = 0, session_hash = ?, csrf = ?, signed_in_ns = ?, last_seen_ns = ?
		WHERE code_hash = ? AND code_expires_ns > ?`, sha256Hex(secret), csrf, now, now, sha256Hex(code), now)
	if err != nil {
		return Display{}, "", fmt.Errorf("display sign-in: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return Display{}, "", apierr.New(apierr.ErrNotFound, "the display code is unknown, used or expired")
	}
	var d Display
	if err := scanDisplay(r.db.QueryRow(ctx, `SELECT `+displayColumns+` FROM displays WHERE session_hash = ?`, sha256Hex(secret)), &d); err != nil {
		return Display{}, "", fmt.Errorf("display sign-in: %w", err)
	}
	return d, secret, nil
}

// DisplaySession returns the display signed in with a secret and notes its
// use (at most once a minute); an unknown or revoked one fails with an
// error of kind apierr.ErrNotFound. A display's session does not expire.
func (r *Registry) DisplaySession(ctx context.Context, secret string) (Display, error) {
	var d Display
	err := scanDisplay(r.db.QueryRow(ctx, `SELECT `+displayColumns+` FROM displays WHERE session_hash = ?`, sha256Hex(secret)), &d)
	if notFound(err) {
		return d, errNoDisplaySession
	}
	if err != nil {
		return d, fmt.Errorf("display session: %w", err)
	}
	now := r.now()
	if now.Sub(d.LastSeen) > time.Minute {
		if _, err := r.db.Exec(ctx, `UPDATE displays SET last_seen_ns = ? WHERE id = ?`, now.UnixNano(), d.ID); err != nil {
			return d, fmt.Errorf("display session: %w", err)
		}
		d.LastSeen = now.UTC()
	}
	return d, nil
}

// SignOutDisplay ends the session of a display (its wall logged out); the
// display stays listed until deleted.
func (r *Registry) SignOutDisplay(ctx context.Context, id string) error {
	if _, err := r.db.Exec(ctx, `UPDATE displays SET session_hash = NULL, csrf = '' WHERE id = ?`, id); err != nil {
		return fmt.Errorf("display sign-out: %w", err)
	}
	return nil
}

// DeleteDisplay revokes a display: its wall is signed out at its next
// request and its code no longer works.
func (r *Registry) DeleteDisplay(ctx context.Context, id string) error {
	res, err := r.db.Exec(ctx, `DELETE FROM displays WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("delete display: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return apierr.New(apierr.ErrNotFound, "display %q does not exist", truncate(id, 64))
	}
	return nil
}
