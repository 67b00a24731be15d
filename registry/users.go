package registry

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"

	"github.com/vigil-vms/vigil/internal/apierr"
	"github.com/vigil-vms/vigil/internal/sqldb"
)

// Roles.
const (
	RoleAdmin     = "admin"     // everything
	RoleOperator  = "operator"  // live and playback
	RoleResponder = "responder" // live, playback, export, incidents
	RoleViewer    = "viewer"    // live only
)

// Roles lists the roles from most to least privileged.
var roles = []string{RoleAdmin, RoleOperator, RoleResponder, RoleViewer}

// ValidRole tells a known role.
func ValidRole(role string) bool { return slices.Contains(roles, role) }

// Password limits.
const (
	MinPasswordLen = 8
	MaxPasswordLen = 1024
)

// User is an account. Departments empty means every department.
type User struct {
	Username    string   `json:"username"`
	Role        string   `json:"role"`
	Departments []string `json:"departments"`
}

// Scoped tells whether the user is limited to departments.
func (u User) Scoped() bool { return len(u.Departments) > 0 }

// InScope tells whether the user sees cameras of the department.
func (u User) InScope(department string) bool {
	return !u.Scoped() || slices.Contains(u.Departments, department)
}

var usernameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

func validateUser(u User) error {
	var msgs []string
	if !usernameRE.MatchString(u.Username) {
		msgs = append(msgs, "username must be 1-64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit")
	}
	if !ValidRole(u.Role) {
		msgs = append(msgs, "role must be admin, operator, responder or viewer")
	}
	for _, d := range u.Departments {
		if !idRE.MatchString(d) {
			msgs = append(msgs, fmt.Sprintf("department %q is not a department id", truncate(d, 64)))
		}
	}
	if len(msgs) > 0 {
		return apierr.New(apierr.ErrInvalid, "user: %s", strings.Join(msgs, "; "))
	}
	return nil
}

// ValidatePassword checks a new password's length.
func ValidatePassword(p string) error {
	if n := utf8.RuneCountInString(p); n < MinPasswordLen {
		return apierr.New(apierr.ErrInvalid, "the password must have at least %d characters", MinPasswordLen)
	}
	if len(p) > MaxPasswordLen {
		return apierr.New(apierr.ErrInvalid, "the password must have at most %d bytes", MaxPasswordLen)
	}
	return nil
}

// argon2id parameters (OWASP: 19 MiB, 2 passes, 1 lane).
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
	argonSaltLen = 16
)

// hashPassword returns the PHC string of an argon2id hash with a fresh salt.
func hashPassword(p string) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("salt: %w", err)
	}
	key := argon2.IDKey([]byte(p), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// checkPassword compares p with a PHC argon2id hash in constant time.
func checkPassword(p, encoded string) bool {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var version int
	var mem, t uint32
	var threads uint8
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &mem, &t, &threads); err != nil ||
		mem == 0 || mem > 1<<20 || t == 0 || t > 16 || threads == 0 {
		return false
	}
	b64 := base64.RawStdEncoding
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return false
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil || len(want) == 0 || len(want) > 128 {
		return false
	}
	got := argon2.IDKey([]byte(p), salt, t, mem, threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// hashGate lets at most n argon2id computations run at once: each takes
// argonMemory (19 MiB), and a flood of logins — for unknown users too —
// would otherwise take memory without bound. A caller waits for a turn
// with its request's context.
type hashGate struct {
	turns         chan struct{}
	running, peak atomic.Int64 // for tests: computations now and at most
}

func newHashGate(n int) *hashGate {
	return &hashGate{turns: make(chan struct{}, max(n, 1))}
}

// do runs fn when a turn is free, or fails with ErrUnavailable when ctx
// ends first.
func (g *hashGate) do(ctx context.Context, fn func()) error {
	select {
	case g.turns <- struct{}{}:
	case <-ctx.Done():
		return apierr.New(apierr.ErrUnavailable, "too many password checks at once: try again (%v)", context.Cause(ctx))
	}
	n := g.running.Add(1)
	for p := g.peak.Load(); n > p && !g.peak.CompareAndSwap(p, n); p = g.peak.Load() {
	}
	defer func() {
		g.running.Add(-1)
		<-g.turns
	}()
	fn()
	return nil
}

// hash is hashPassword in a turn of the gate.
func (r *Registry) hash(ctx context.Context, p string) (h string, err error) {
	if gerr := r.argon.do(ctx, func() { h, err = hashPassword(p) }); gerr != nil {
		return "", gerr
	}
	return h, err
}

// check is checkPassword in a turn of the gate.
func (r *Registry) check(ctx context.Context, p, encoded string) (ok bool, err error) {
	err = r.argon.do(ctx, func() { ok = checkPassword(p, encoded) })
	return ok, err
}

// dummyHash is compared against when a user does not exist, so that an
// unknown name costs as much time as a wrong password.
var dummyHash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$" + base64.RawStdEncoding.EncodeToString(make([]byte, 32))

// Users lists every user by name.
func (r *Registry) Users(ctx context.Context) ([]User, error) {
	out, err := sqldb.QueryList(ctx, r.db, "list users", func(rows *sql.Rows, u *User) error {
		return rows.Scan(&u.Username, &u.Role)
	}, `SELECT username, role FROM users ORDER BY username`)
	if err != nil {
		return nil, err
	}
	for i := range out {
		if out[i].Departments, err = userDepartments(ctx, r.db, out[i].Username); err != nil {
			return nil, err
		}
	}
	if out == nil {
		out = []User{}
	}
	return out, nil
}

func userDepartments(ctx context.Context, q sqldb.Querier, username string) ([]string, error) {
	return sqldb.QueryList(ctx, q, fmt.Sprintf("user %q: departments", username), scanString,
		`SELECT department FROM user_departments WHERE username = ? ORDER BY department`, username)
}

// User returns one user.
func (r *Registry) User(ctx context.Context, username string) (User, error) {
	u, _, err := r.userWithHash(ctx, username)
	return u, err
}

func (r *Registry) userWithHash(ctx context.Context, username string) (User, string, error) {
	u := User{Username: username}
	var hash string
	err := r.db.QueryRow(ctx, `SELECT role, hash FROM users WHERE username = ?`, username).Scan(&u.Role, &hash)
	if notFound(err) {
		return u, "", apierr.New(apierr.ErrNotFound, "user %q does not exist", truncate(username, 64))
	}
	if err != nil {
		return u, "", fmt.Errorf("user %q: %w", username, err)
	}
	if u.Departments, err = userDepartments(ctx, r.db, username); err != nil {
		return u, "", err
	}
	return u, hash, nil
}

func setDepartments(ctx context.Context, tx *sqldb.Tx, u User) error {
	if _, err := tx.Exec(ctx, `DELETE FROM user_departments WHERE username = ?`, u.Username); err != nil {
		return fmt.Errorf("user %q: departments: %w", u.Username, err)
	}
	for _, d := range u.Departments {
		_, err := tx.Exec(ctx, `INSERT INTO user_departments(username, department) VALUES(?, ?)
			ON CONFLICT(username, department) DO NOTHING`, u.Username, d)
		if isForeignKey(err) {
			return apierr.New(apierr.ErrInvalid, "department %q does not exist", truncate(d, 64))
		}
		if err != nil {
			return fmt.Errorf("user %q: departments: %w", u.Username, err)
		}
	}
	return nil
}

func normalizeUser(u *User) {
	if u.Departments == nil {
		u.Departments = []string{}
	}
	slices.Sort(u.Departments)
	u.Departments = slices.Compact(u.Departments)
}

// CreateUser adds a user with a password.
func (r *Registry) CreateUser(ctx context.Context, u User, password string) (User, error) {
	normalizeUser(&u)
	if err := validateUser(u); err != nil {
		return u, err
	}
	if err := ValidatePassword(password); err != nil {
		return u, err
	}
	hash, err := r.hash(ctx, password)
	if err != nil {
		return u, err
	}
	err = r.inTx(ctx, func(tx *sqldb.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO users(username, hash, role, created_ns) VALUES(?, ?, ?, ?)`,
			u.Username, hash, u.Role, r.now().UnixNano())
		if r.isUnique(err) {
			return apierr.New(apierr.ErrConflict, "user %q already exists", u.Username)
		}
		if err != nil {
			return fmt.Errorf("create user %q: %w", u.Username, err)
		}
		return setDepartments(ctx, tx, u)
	})
	return u, err
}

// UpdateUser changes a user's role and departments, and the password when
// password is not empty (which ends the user's sessions and revokes their
// tokens). The last admin cannot lose the admin role.
func (r *Registry) UpdateUser(ctx context.Context, u User, password string) (User, error) {
	normalizeUser(&u)
	if err := validateUser(u); err != nil {
		return u, err
	}
	var hash string
	if password != "" {
		if err := ValidatePassword(password); err != nil {
			return u, err
		}
		var err error
		if hash, err = r.hash(ctx, password); err != nil {
			return u, err
		}
	}
	err := r.inTx(ctx, func(tx *sqldb.Tx) error {
		if err := lockAdmins(ctx, tx, u.Username); err != nil {
			return err
		}
		var role string
		err := tx.QueryRow(ctx, `SELECT role FROM users WHERE username = ?`, u.Username).Scan(&role)
		if notFound(err) {
			return apierr.New(apierr.ErrNotFound, "user %q does not exist", truncate(u.Username, 64))
		}
		if err != nil {
			return fmt.Errorf("update user %q: %w", u.Username, err)
		}
		if role == RoleAdmin && (u.Role != RoleAdmin || len(u.Departments) > 0) {
			if err := lastAdmin(ctx, tx, u.Username); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE users SET role = ? WHERE username = ?`, u.Role, u.Username); err != nil {
			return fmt.Errorf("update user %q: %w", u.Username, err)
		}
		if hash != "" {
			if err := setHash(ctx, tx, u.Username, hash); err != nil {
				return err
			}
		}
		return setDepartments(ctx, tx, u)
	})
	return u, err
}

// lockAdmins locks, on PostgreSQL, the rows of every admin and of username,
// always in the same order, before a transaction reads and changes them:
// two nodes that each demote or delete one of the last two admins at once
// are taken one after the other, and the second finds the last admin
// (lastAdmin). Every change of a user's role or departments goes through
// such a transaction. On SQLite the transaction holds the write lock already.
func lockAdmins(ctx context.Context, tx *sqldb.Tx, username string) error {
	lock := tx.Dialect.ForUpdate()
	if lock == "" {
		return nil
	}
	rows, err := tx.Query(ctx, `SELECT username FROM users WHERE role = 'admin' OR username = ? ORDER BY username`+lock, username)
	if err != nil {
		return fmt.Errorf("lock users: %w", err)
	}
	rows.Close()
	return rows.Err()
}

// lastAdmin refuses to take away the last admin of every department: an
// admin limited to departments manages no users, so without one nobody could.
func lastAdmin(ctx context.Context, tx *sqldb.Tx, username string) error {
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM users WHERE role = 'admin' AND username <> ?
		AND NOT EXISTS (SELECT 1 FROM user_departments d WHERE d.username = users.username)`, username).Scan(&n); err != nil {
		return fmt.Errorf("count admins: %w", err)
	}
	if n == 0 {
		return apierr.New(apierr.ErrConflict, "%q is the last admin of every department", username)
	}
	return nil
}

// setHash stores a new password hash, ends the user's sessions and revokes
// their API tokens: whoever knew the old password may have made either.
func setHash(ctx context.Context, tx *sqldb.Tx, username, hash string) error {
	if _, err := tx.Exec(ctx, `UPDATE users SET hash = ? WHERE username = ?`, hash, username); err != nil {
		return fmt.Errorf("user %q: password: %w", username, err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM sessions WHERE username = ?`, username); err != nil {
		return fmt.Errorf("user %q: sessions: %w", username, err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM tokens WHERE username = ?`, username); err != nil {
		return fmt.Errorf("user %q: tokens: %w", username, err)
	}
	return nil
}

// SetPassword changes a user's password, ends their sessions and revokes
// their API tokens.
func (r *Registry) SetPassword(ctx context.Context, username, password string) error {
	if err := ValidatePassword(password); err != nil {
		return err
	}
	hash, err := r.hash(ctx, password)
	if err != nil {
		return err
	}
	return r.inTx(ctx, func(tx *sqldb.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM users WHERE username = ?`, username).Scan(&n); err != nil {
			return fmt.Errorf("user %q: %w", username, err)
		}
		if n == 0 {
			return apierr.New(apierr.ErrNotFound, "user %q does not exist", truncate(username, 64))
		}
		return setHash(ctx, tx, username, hash)
	})
}

// DeleteUser removes a user, their sessions and tokens. The last admin
// cannot be deleted.
func (r *Registry) DeleteUser(ctx context.Context, username string) error {
	return r.inTx(ctx, func(tx *sqldb.Tx) error {
		if err := lockAdmins(ctx, tx, username); err != nil {
			return err
		}
		var role string
		err := tx.QueryRow(ctx, `SELECT role FROM users WHERE username = ?`, username).Scan(&role)
		if notFound(err) {
			return apierr.New(apierr.ErrNotFound, "user %q does not exist", truncate(username, 64))
		}
		if err != nil {
			return fmt.Errorf("delete user %q: %w", username, err)
		}
		if role == RoleAdmin {
			if err := lastAdmin(ctx, tx, username); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM users WHERE username = ?`, username); err != nil {
			return fmt.Errorf("delete user %q: %w", username, err)
		}
		return nil
	})
}

// ErrBadCredentials is the kind of a failed login: the same whether the
// user does not exist or the password is wrong.
var errBadCredentials = apierr.New(apierr.ErrInvalid, "wrong username or password")

// Authenticate checks a username and password and returns the user. An
// unknown user and a wrong password fail alike and take the same time. At
// most GOMAXPROCS password checks run at once; the others wait for a turn
// until ctx ends (then the error is of kind apierr.ErrUnavailable).
func (r *Registry) Authenticate(ctx context.Context, username, password string) (User, error) {
	if len(password) > MaxPasswordLen || len(username) > 256 {
		if _, err := r.check(ctx, password[:min(len(password), MaxPasswordLen)], dummyHash); err != nil {
			return User{}, err
		}
		return User{}, errBadCredentials
	}
	u, hash, err := r.userWithHash(ctx, username)
	if err != nil {
		if apierr.Status(err) != 404 {
			return User{}, err
		}
		hash = dummyHash
	}
	ok, cerr := r.check(ctx, password, hash)
	if cerr != nil {
		return User{}, cerr
	}
	if err != nil || !ok {
		return User{}, errBadCredentials
	}
	return u, nil
}

// IsBadCredentials tells the error of a failed login.
func IsBadCredentials(err error) bool { return err == errBadCredentials }

// EnsureAdmin creates the user admin on first start (when no admin
// exists): with password, or with a generated one that it returns for the
// caller to print once. It does nothing when an admin exists.
func (r *Registry) EnsureAdmin(ctx context.Context, password string) (generated string, err error) {
	var n int
	if err := r.db.QueryRow(ctx, `SELECT count(*) FROM users WHERE role = 'admin'`).Scan(&n); err != nil {
		return "", fmt.Errorf("ensure admin: %w", err)
	}
	if n > 0 {
		return "", nil
	}
	if password == "" {
		b := make([]byte, 15)
		if _, err := rand.Read(b); err != nil {
			return "", fmt.Errorf("ensure admin: %w", err)
		}
		generated = base64.RawURLEncoding.EncodeToString(b)
		password = generated
	}
	if _, err := r.CreateUser(ctx, User{Username: "admin", Role: RoleAdmin}, password); err != nil {
		if apierr.Status(err) == 409 {
			if u, err := r.User(ctx, "admin"); err == nil && u.Role == RoleAdmin {
				return "", nil // another node of the cluster made it meanwhile
			}
			// A non-admin user named admin exists: promote it and reset its password.
			if _, err := r.UpdateUser(ctx, User{Username: "admin", Role: RoleAdmin}, password); err != nil {
				return "", fmt.Errorf("ensure admin: %w", err)
			}
			return generated, nil
		}
		return "", fmt.Errorf("ensure admin: %w", err)
	}
	return generated, nil
}
