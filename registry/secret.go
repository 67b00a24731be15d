package registry

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/vigil-vms/vigil/internal/apierr"
	"github.com/vigil-vms/vigil/internal/keyfile"
	"github.com/vigil-vms/vigil/internal/secretbox"
	"github.com/vigil-vms/vigil/internal/sqldb"
)

// KeySize is the length of the key that encrypts stored camera passwords
// (AES-256-GCM).
const KeySize = secretbox.KeySize

// sealedPrefix starts a stored password that is encrypted. What follows is
// base64url(nonce || ciphertext); the additional data binds it to its
// camera and field, so that a sealed password copied into another row does
// not open.
const sealedPrefix = secretbox.Prefix

// passwordRE finds the password of an RTSP URL as stored, the same way
// ingest.RedactURL and url.Parse do: after the user name's ':' up to the last
// '@' before the host.
var passwordRE = regexp.MustCompile(`(?i)^(rtsps?://[^:/?#\s"<>]*:)([^/?#\s"<>]*)(@.*)$`)

// LoadKey returns the key that encrypts stored camera passwords: from
// envValue (VIGIL_SECRET_KEY: 32 bytes in base64 or hex) when it is set, else
// from the file at path, which is created (mode 0600) with a new random key
// when it does not exist. created tells that a new key file was written.
// Keep the key apart from the database's backups: the database alone does not
// reveal the passwords, and without the key they cannot be read back.
func LoadKey(path, envValue string) (key []byte, created bool, err error) {
	if envValue != "" {
		key, err := decodeKey(strings.TrimSpace(envValue))
		if err != nil {
			return nil, false, fmt.Errorf("VIGIL_SECRET_KEY: %w", err)
		}
		return key, false, nil
	}
	text, created, err := keyfile.ReadOrCreate(path, "secret key", func() ([]byte, error) {
		key := make([]byte, KeySize)
		_, err := rand.Read(key)
		return key, err
	})
	if err != nil {
		return nil, false, err
	}
	key, err = decodeKey(text)
	if err != nil {
		return nil, false, fmt.Errorf("secret key %s: %w", path, err)
	}
	return key, created, nil
}

func decodeKey(s string) ([]byte, error) {
	for _, dec := range []func(string) ([]byte, error){
		base64.StdEncoding.DecodeString, base64.RawStdEncoding.DecodeString,
		base64.URLEncoding.DecodeString, base64.RawURLEncoding.DecodeString, hex.DecodeString,
	} {
		if b, err := dec(s); err == nil && len(b) == KeySize {
			return b, nil
		}
	}
	return nil, fmt.Errorf("not %d bytes in base64 or hex (make one with: openssl rand -base64 %d)", KeySize, KeySize)
}

// sealer encrypts and decrypts the passwords inside stored camera URLs.
// A nil sealer stores them as they are and refuses sealed ones.
type sealer struct{ box *secretbox.Box }

func newSealer(key []byte) (*sealer, error) {
	if key == nil {
		return nil, nil
	}
	box, err := secretbox.New(key)
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	return &sealer{box: box}, nil
}

func sealAD(camera, field string) []byte { return []byte("vigil camera " + camera + " " + field) }

// seal returns rawURL with its password encrypted. A URL without a
// password is returned as it is, and so is one sealed already unless fresh
// (a URL as a client sent it, whose password could only look sealed).
func (s *sealer) seal(rawURL, camera, field string, fresh bool) (string, error) {
	m := passwordRE.FindStringSubmatch(rawURL)
	if m == nil || m[2] == "" {
		return rawURL, nil
	}
	if strings.HasPrefix(m[2], sealedPrefix) && (!fresh || s == nil) {
		if fresh {
			return "", &ValidationError{Errors: []FieldError{{Field: field, Message: "a password may not begin with " + sealedPrefix}}}
		}
		return rawURL, nil
	}
	if s == nil {
		return rawURL, nil
	}
	sealed, err := s.box.Seal(m[2], sealAD(camera, field))
	if err != nil {
		return "", fmt.Errorf("camera %q: seal %s: %w", camera, field, err)
	}
	return m[1] + sealed + m[3], nil
}

// open returns rawURL with its sealed password decrypted.
func (s *sealer) open(rawURL, camera, field string) (string, error) {
	m := passwordRE.FindStringSubmatch(rawURL)
	if m == nil || !strings.HasPrefix(m[2], sealedPrefix) {
		return rawURL, nil
	}
	if s == nil {
		return "", apierr.New(apierr.ErrUnavailable, "camera %q: its stored password is encrypted and this process has no secret key", camera)
	}
	plain, err := s.box.Open(m[2], sealAD(camera, field))
	switch {
	case errors.Is(err, secretbox.ErrDamaged):
		return "", fmt.Errorf("camera %q: the stored %s password is damaged", camera, field)
	case err != nil:
		return "", fmt.Errorf("camera %q: the stored %s password does not decrypt: is this the secret key the database was written with?", camera, field)
	}
	return m[1] + plain + m[3], nil
}

// sealAll encrypts the passwords stored in plain text (a database from
// before encryption, or written without a key), and checks that every sealed
// one opens with the key: a wrong key fails at start, not at the first pull.
func (r *Registry) sealAll(ctx context.Context) error {
	if r.seal == nil {
		return nil
	}
	sealed := 0
	err := r.inTx(ctx, func(tx *sqldb.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id, main_url, sub_url FROM cameras`+tx.Dialect.ForUpdate())
		if err != nil {
			return fmt.Errorf("seal camera passwords: %w", err)
		}
		type row struct{ id, main, sub string }
		var all []row
		for rows.Next() {
			var x row
			if err := rows.Scan(&x.id, &x.main, &x.sub); err != nil {
				rows.Close()
				return fmt.Errorf("seal camera passwords: %w", err)
			}
			all = append(all, x)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("seal camera passwords: %w", err)
		}
		for _, x := range all {
			if _, _, err := r.openURLs(x.id, x.main, x.sub); err != nil {
				return err
			}
			smain, ssub, err := r.sealURLs(x.id, x.main, x.sub, false) // sealed ones stay as they are
			if err != nil {
				return err
			}
			if smain == x.main && ssub == x.sub {
				continue
			}
			if _, err := tx.Exec(ctx, `UPDATE cameras SET main_url = ?, sub_url = ? WHERE id = ?`, smain, ssub, x.id); err != nil {
				return fmt.Errorf("seal camera %q: %w", x.id, err)
			}
			sealed++
		}
		return nil
	})
	if err != nil || sealed == 0 || r.db.Dialect != sqldb.SQLite {
		return err
	}
	// The plain-text rows are still in the file's free pages and the WAL:
	// rewrite the file once (nothing else uses the database yet at open).
	// PostgreSQL reuses the space of dead rows in time (autovacuum); an
	// operator who must wipe them at once runs VACUUM FULL cameras.
	if _, err := r.db.Exec(ctx, `VACUUM`); err != nil {
		return fmt.Errorf("seal camera passwords: vacuum: %w", err)
	}
	if _, err := r.db.Exec(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		return fmt.Errorf("seal camera passwords: checkpoint: %w", err)
	}
	return nil
}

func (r *Registry) sealURLs(id, main, sub string, fresh bool) (string, string, error) {
	m, err := r.seal.seal(main, id, "mainUrl", fresh)
	if err != nil {
		return "", "", err
	}
	s, err := r.seal.seal(sub, id, "subUrl", fresh)
	return m, s, err
}

func (r *Registry) openURLs(id, main, sub string) (string, string, error) {
	m, err := r.seal.open(main, id, "mainUrl")
	if err != nil {
		return "", "", err
	}
	s, err := r.seal.open(sub, id, "subUrl")
	return m, s, err
}
