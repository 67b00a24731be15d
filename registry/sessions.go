package registry

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/vigil-vms/vigil/internal/apierr"
	"github.com/vigil-vms/vigil/internal/sqldb"
)

// Session is a login of a user through the web app.
type Session struct {
	User    User
	CSRF    string
	Expires time.Time
}

// Token is an API token of a user, for scripts. The secret itself is shown
// once and stored only as its SHA-256.
type Token struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	User     string    `json:"user"`
	Created  time.Time `json:"created"`
	LastUsed time.Time `json:"lastUsed,omitzero"`
}

// TokenPrefix starts every token secret, so that a leaked one is easy to find.
const TokenPrefix = "vgl_"

func randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// newIDAndSecret returns a fresh short lower-case id and a random secret of
// secretBytes bytes, for a token or display that is shown its secret once.
func newIDAndSecret(secretBytes int) (id, secret string, err error) {
	idPart, err := randomString(9)
	if err != nil {
		return "", "", err
	}
	secret, err = randomString(secretBytes)
	if err != nil {
		return "", "", err
	}
	return strings.ToLower(strings.NewReplacer("_", "", "-", "").Replace(idPart)), secret, nil
}

func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

var errNoSession = apierr.New(apierr.ErrNotFound, "no such session")

// CreateSession starts a session of the user for ttl, which does not slide.
// It is StartSession with ttl as both the idle timeout and the cap.
func (r *Registry) CreateSession(ctx context.Context, username string, ttl time.Duration) (id, csrf string, err error) {
	return r.StartSession(ctx, username, ttl, ttl)
}

// StartSession starts a session of the user and returns its secret id (for
// the cookie; stored hashed) and CSRF token. The session slides: each use
// extends it to idle from then, but never beyond maxAge from its start.
// Expired sessions are purged.
func (r *Registry) StartSession(ctx context.Context, username string, idle, maxAge time.Duration) (id, csrf string, err error) {
	if idle <= 0 || maxAge <= 0 {
		return "", "", fmt.Errorf("start session: idle %s and max age %s must be positive", idle, maxAge)
	}
	if id, err = randomString(32); err != nil {
		return "", "", err
	}
	if csrf, err = randomString(32); err != nil {
		return "", "", err
	}
	now := r.now()
	capAt := now.Add(maxAge)
	exp := min(now.Add(idle).UnixNano(), capAt.UnixNano())
	err = r.inTx(ctx, func(tx *sqldb.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM sessions WHERE expires_ns <= ?`, now.UnixNano()); err != nil {
			return fmt.Errorf("purge sessions: %w", err)
		}
		_, err := tx.Exec(ctx, `INSERT INTO sessions(id_hash, csrf, username, created_ns, expires_ns, idle_ns, cap_ns) VALUES(?, ?, ?, ?, ?, ?, ?)`,
			sha256Hex(id), csrf, username, now.UnixNano(), exp, int64(idle), capAt.UnixNano())
		if isForeignKey(err) {
			return apierr.New(apierr.ErrNotFound, "user %q does not exist", truncate(username, 64))
		}
		if err != nil {
			return fmt.Errorf("create session: %w", err)
		}
		return nil
	})
	return id, csrf, err
}

// slideEvery bounds how often a session's use is written to the database:
// at most once a minute, and at least twice per idle timeout so that a
// short one (in tests) still slides.
func slideEvery(idle time.Duration) time.Duration {
	return min(time.Minute, idle/2)
}

// Session returns the live session of a secret id and extends it by its
// idle timeout (written at most once a minute, never past its cap); an
// unknown or expired one fails with an error of kind apierr.ErrNotFound.
func (r *Registry) Session(ctx context.Context, id string) (Session, error) {
	var s Session
	var exp, idle, capNS int64
	hash := sha256Hex(id)
	err := r.db.QueryRow(ctx, `SELECT username, csrf, expires_ns, idle_ns, cap_ns FROM sessions WHERE id_hash = ?`, hash).
		Scan(&s.User.Username, &s.CSRF, &exp, &idle, &capNS)
	if notFound(err) {
		return s, errNoSession
	}
	if err != nil {
		return s, fmt.Errorf("session: %w", err)
	}
	s.Expires = nsTime(exp)
	now := r.now()
	if !now.Before(s.Expires) {
		return s, errNoSession
	}
	if idle > 0 {
		next := min(now.UnixNano()+idle, capNS)
		if next-exp >= int64(slideEvery(time.Duration(idle))) {
			if _, err := r.db.Exec(ctx, `UPDATE sessions SET expires_ns = ? WHERE id_hash = ? AND expires_ns < ?`, next, hash, next); err != nil {
				return s, fmt.Errorf("session: extend: %w", err)
			}
			s.Expires = nsTime(next)
		}
	}
	u, err := r.User(ctx, s.User.Username)
	if err != nil {
		return s, fmt.Errorf("session: %w", err)
	}
	s.User = u
	return s, nil
}

// DeleteSession ends a session; ending an unknown one is not an error.
func (r *Registry) DeleteSession(ctx context.Context, id string) error {
	if _, err := r.db.Exec(ctx, `DELETE FROM sessions WHERE id_hash = ?`, sha256Hex(id)); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// CreateToken makes an API token for the user and returns it with its
// secret, which is not stored and cannot be shown again.
func (r *Registry) CreateToken(ctx context.Context, username, name string) (Token, string, error) {
	name = strings.TrimSpace(name)
	if msg := checkText(name, 1, 100); msg != "" {
		return Token{}, "", apierr.New(apierr.ErrInvalid, "token name %s", msg)
	}
	id, secretPart, err := newIDAndSecret(32)
	if err != nil {
		return Token{}, "", err
	}
	t := Token{ID: id, Name: name, User: username, Created: r.now().UTC()}
	secret := TokenPrefix + secretPart
	_, err = r.db.Exec(ctx, `INSERT INTO tokens(id, name, hash, username, created_ns) VALUES(?, ?, ?, ?, ?)`,
		t.ID, t.Name, sha256Hex(secret), username, t.Created.UnixNano())
	if isForeignKey(err) {
		return Token{}, "", apierr.New(apierr.ErrNotFound, "user %q does not exist", truncate(username, 64))
	}
	if err != nil {
		return Token{}, "", fmt.Errorf("create token: %w", err)
	}
	return t, secret, nil
}

// Tokens lists the tokens of a user, or every user's when username is "".
func (r *Registry) Tokens(ctx context.Context, username string) ([]Token, error) {
	q := `SELECT id, name, username, created_ns, last_used_ns FROM tokens`
	var args []any
	if username != "" {
		q += ` WHERE username = ?`
		args = append(args, username)
	}
	return sqldb.QueryList(ctx, r.db, "list tokens", func(rows *sql.Rows, t *Token) error {
		var created, used int64
		err := rows.Scan(&t.ID, &t.Name, &t.User, &created, &used)
		t.Created, t.LastUsed = nsTime(created), nsTime(used)
		return err
	}, q+` ORDER BY created_ns, id`, args...)
}

// DeleteToken revokes a token. With username not empty, only a token of
// that user is found.
func (r *Registry) DeleteToken(ctx context.Context, id, username string) error {
	q := `DELETE FROM tokens WHERE id = ?`
	args := []any{id}
	if username != "" {
		q += ` AND username = ?`
		args = append(args, username)
	}
	res, err := r.db.Exec(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("delete token: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return apierr.New(apierr.ErrNotFound, "token %q does not exist", truncate(id, 64))
	}
	return nil
}

// TokenUser returns the user a token secret acts as, and the token's id; an
// unknown or revoked token fails with an error of kind apierr.ErrNotFound.
func (r *Registry) TokenUser(ctx context.Context, secret string) (User, string, error) {
	var id, username string
	var used int64
	err := r.db.QueryRow(ctx, `SELECT id, username, last_used_ns FROM tokens WHERE hash = ?`, sha256Hex(secret)).Scan(&id, &username, &used)
	if notFound(err) {
		return User{}, "", apierr.New(apierr.ErrNotFound, "unknown token")
	}
	if err != nil {
		return User{}, "", fmt.Errorf("token: %w", err)
	}
	now := r.now()
	// Note the use at most once a minute, to spare the database a write per request.
	if now.UnixNano()-used > int64(time.Minute) {
		if _, err := r.db.Exec(ctx, `UPDATE tokens SET last_used_ns = ? WHERE id = ?`, now.UnixNano(), id); err != nil {
			return User{}, "", fmt.Errorf("token: %w", err)
		}
	}
	u, err := r.User(ctx, username)
	if err != nil {
		return User{}, "", fmt.Errorf("token: %w", err)
	}
	return u, id, nil
}
