// Package device keeps the GB/T 28181 devices an admin registered (IPCs,
// NVRs) in Vigil's database (SQLite or PostgreSQL). Only registered devices
// may REGISTER over SIP; their runtime state lives in package gb28181/sip.
package device

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/vigil-vms/vigil/internal/apierr"
	"github.com/vigil-vms/vigil/internal/secretbox"
	"github.com/vigil-vms/vigil/internal/sqldb"
)

// Device is a GB/T 28181 device as an admin registered it.
type Device struct {
	ID         string    `json:"id"` // 20-digit SIP ID
	Name       string    `json:"name"`
	Department string    `json:"department"`
	Created    time.Time `json:"created"`
	// Transport is the media transport that last worked with the device
	// (TransportUDP, TransportTCPPassive, TransportTCPActive), tried first
	// at the next INVITE; "" until one has.
	Transport string `json:"transport"`
}

// Media transports, as Vigil sees them: udp; tcp-passive (Vigil listens
// on gb28181.mediaPort, the device connects); tcp-active (Vigil connects
// to the device).
const (
	TransportUDP        = "udp"
	TransportTCPPassive = "tcp-passive"
	TransportTCPActive  = "tcp-active"
)

// Transports are the media transports in the order they are tried.
var Transports = []string{TransportUDP, TransportTCPPassive, TransportTCPActive}

// migrationFiles are the device table's migrations (migrations/sqlite,
// migrations/postgres). The departments table is the registry's: the
// registry migrates first. The SQLite files 1 and 2 are the two steps
// sqlitedb.Migrate ran as component "gb28181" (Legacy): such databases are
// adopted.
//
//go:embed migrations
var migrationFiles embed.FS

// KeySize is the length of the key that encrypts device passwords
// (AES-256-GCM): the same key as the camera passwords'.
const KeySize = secretbox.KeySize

// Store is the device table.
type Store struct {
	db  *sqldb.DB
	box *secretbox.Box // nil: passwords stored as they are
	now func() time.Time
}

// Open migrates the table in db and returns the store. With a key (the
// registry's secret key) passwords are stored encrypted.
func Open(ctx context.Context, db *sqldb.DB, key []byte) (*Store, error) {
	s := &Store{db: db, now: time.Now}
	if key != nil {
		box, err := secretbox.New(key)
		if err != nil {
			return nil, fmt.Errorf("gb28181 devices: %w", err)
		}
		s.box = box
	}
	if err := db.Migrate(ctx, sqldb.Migrations{Component: "gb28181", FS: migrationFiles, Dir: "migrations", Legacy: "gb28181"}); err != nil {
		return nil, fmt.Errorf("gb28181 devices: %w", err)
	}
	return s, nil
}

// ValidID reports whether id is a GB/T 28181 ID: 20 decimal digits.
func ValidID(id string) bool {
	return len(id) == 20 && strings.Trim(id, "0123456789") == ""
}

func idAD(id string) []byte { return []byte("vigil gb28181 device " + id + " password") }

func (s *Store) seal(id, password string) (string, error) {
	if password == "" || s.box == nil {
		return password, nil
	}
	sealed, err := s.box.Seal(password, idAD(id))
	if err != nil {
		return "", fmt.Errorf("device %q: seal password: %w", id, err)
	}
	return sealed, nil
}

func (s *Store) open(id, stored string) (string, error) {
	if !secretbox.Sealed(stored) {
		return stored, nil
	}
	if s.box == nil {
		return "", fmt.Errorf("device %q: its stored password is encrypted and this process has no secret key", id)
	}
	plain, err := s.box.Open(stored, idAD(id))
	switch {
	case errors.Is(err, secretbox.ErrDamaged):
		return "", fmt.Errorf("device %q: the stored password is damaged", id)
	case err != nil:
		return "", fmt.Errorf("device %q: the stored password does not decrypt with the secret key", id)
	}
	return plain, nil
}

// Input is what an admin sends to create or replace a device. Password nil
// keeps the stored one on update; "" means the default password.
type Input struct {
	ID         string
	Name       string
	Department string
	Password   *string
}

func (in *Input) check() error {
	in.Name = strings.TrimSpace(in.Name)
	in.Department = strings.TrimSpace(in.Department)
	if !ValidID(in.ID) {
		return apierr.New(apierr.ErrInvalid, "device id %q is not 20 digits", clip(in.ID))
	}
	if in.Name == "" {
		return apierr.New(apierr.ErrInvalid, "%s is required", "name")
	}
	if utf8.RuneCountInString(in.Name) > 100 || !utf8.ValidString(in.Name) {
		return apierr.New(apierr.ErrInvalid, "device name is longer than 100 characters")
	}
	if in.Department == "" {
		return apierr.New(apierr.ErrInvalid, "%s is required", "department")
	}
	if in.Password != nil && (len(*in.Password) > 128 || secretbox.Sealed(*in.Password)) {
		return apierr.New(apierr.ErrInvalid, "device password is longer than 128 bytes or begins with vigil-enc1.")
	}
	return nil
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64]
	}
	return s
}

func notExist(id string) error {
	return apierr.New(apierr.ErrNotFound, "device %q does not exist", clip(id))
}

func (s *Store) mapErr(err error, in Input) error {
	switch {
	case err == nil:
		return nil
	case isForeignKeyViolation(err):
		return apierr.New(apierr.ErrInvalid, "department %q does not exist", clip(in.Department))
	case s.db.Dialect.IsUniqueViolation(err):
		return apierr.New(apierr.ErrConflict, "device %q exists already", in.ID)
	}
	return fmt.Errorf("device %q: %w", in.ID, err)
}

// isForeignKeyViolation reports whether err is a foreign key violation on
// either engine (the department does not exist).
func isForeignKeyViolation(err error) bool {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return pg.Code == "23503"
	}
	var lite *sqlite.Error
	if errors.As(err, &lite) {
		return lite.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
	}
	return false
}

// Create adds a device.
func (s *Store) Create(ctx context.Context, in Input) (Device, error) {
	if err := in.check(); err != nil {
		return Device{}, err
	}
	pw := ""
	if in.Password != nil {
		pw = *in.Password
	}
	sealed, err := s.seal(in.ID, pw)
	if err != nil {
		return Device{}, err
	}
	now := s.now()
	_, err = s.db.Exec(ctx, `INSERT INTO gb28181_devices(id, name, department, password, created_ns) VALUES (?, ?, ?, ?, ?)`,
		in.ID, in.Name, in.Department, sealed, now.UnixNano())
	if err := s.mapErr(err, in); err != nil {
		return Device{}, err
	}
	return Device{ID: in.ID, Name: in.Name, Department: in.Department, Created: time.Unix(0, now.UnixNano()).UTC()}, nil
}

// Update replaces a device's name, department and (unless nil) password.
func (s *Store) Update(ctx context.Context, in Input) (Device, error) {
	if err := in.check(); err != nil {
		return Device{}, err
	}
	var res sql.Result
	var err error
	if in.Password != nil {
		sealed, serr := s.seal(in.ID, *in.Password)
		if serr != nil {
			return Device{}, serr
		}
		res, err = s.db.Exec(ctx, `UPDATE gb28181_devices SET name = ?, department = ?, password = ? WHERE id = ?`,
			in.Name, in.Department, sealed, in.ID)
	} else {
		res, err = s.db.Exec(ctx, `UPDATE gb28181_devices SET name = ?, department = ? WHERE id = ?`,
			in.Name, in.Department, in.ID)
	}
	if err := s.mapErr(err, in); err != nil {
		return Device{}, err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return Device{}, notExist(in.ID)
	}
	return s.Get(ctx, in.ID)
}

// Delete removes a device.
func (s *Store) Delete(ctx context.Context, id string) error {
	res, err := s.db.Exec(ctx, `DELETE FROM gb28181_devices WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("device %q: %w", clip(id), err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notExist(id)
	}
	return nil
}

// Get returns one device.
func (s *Store) Get(ctx context.Context, id string) (Device, error) {
	var d Device
	var ns int64
	err := s.db.QueryRow(ctx, `SELECT id, name, department, created_ns, transport FROM gb28181_devices WHERE id = ?`, id).
		Scan(&d.ID, &d.Name, &d.Department, &ns, &d.Transport)
	if errors.Is(err, sql.ErrNoRows) {
		return Device{}, notExist(id)
	}
	if err != nil {
		return Device{}, fmt.Errorf("device %q: %w", clip(id), err)
	}
	d.Created = time.Unix(0, ns).UTC()
	return d, nil
}

// List returns every device, by id.
func (s *Store) List(ctx context.Context) ([]Device, error) {
	rows, err := s.db.Query(ctx, `SELECT id, name, department, created_ns, transport FROM gb28181_devices ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("devices: %w", err)
	}
	defer rows.Close()
	out := []Device{}
	for rows.Next() {
		var d Device
		var ns int64
		if err := rows.Scan(&d.ID, &d.Name, &d.Department, &ns, &d.Transport); err != nil {
			return nil, fmt.Errorf("devices: %w", err)
		}
		d.Created = time.Unix(0, ns).UTC()
		out = append(out, d)
	}
	return out, rows.Err()
}

// Password returns a device's password ("" = the default) and whether the
// device is registered: the SIP server's lookup.
func (s *Store) Password(ctx context.Context, id string) (string, bool, error) {
	if !ValidID(id) {
		return "", false, nil
	}
	var stored string
	err := s.db.QueryRow(ctx, `SELECT password FROM gb28181_devices WHERE id = ?`, id).Scan(&stored)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("device %q: %w", id, err)
	}
	pw, err := s.open(id, stored)
	return pw, err == nil, err
}

// SetTransport remembers the media transport that worked with a device
// (one of Transports).
func (s *Store) SetTransport(ctx context.Context, id, transport string) error {
	if !slices.Contains(Transports, transport) {
		return fmt.Errorf("device %q: unknown media transport %q", clip(id), transport)
	}
	res, err := s.db.Exec(ctx, `UPDATE gb28181_devices SET transport = ? WHERE id = ?`, transport, id)
	if err != nil {
		return fmt.Errorf("device %q: %w", clip(id), err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notExist(id)
	}
	return nil
}
