// Package evidence builds and checks signed evidence packages: a zip holding
// the exported clips, a manifest.json that lists what they are (cameras,
// range, gaps, who exported them and when, the SHA-256 of each file) and
// manifest.sig, the Ed25519 signature of the manifest's exact bytes by the
// server's evidence key. Verify checks a package offline.
package evidence

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/vigil-vms/vigil/internal/keyfile"
)

// KeyFile is the name of the evidence key file, in the database's directory.
const KeyFile = "evidence.key"

// Key is the server's evidence signing key.
type Key struct {
	priv ed25519.PrivateKey
}

// NewKey wraps an Ed25519 private key (tests and tools).
func NewKey(priv ed25519.PrivateKey) Key { return Key{priv: priv} }

// Public is the key's public half.
func (k Key) Public() ed25519.PublicKey { return k.priv.Public().(ed25519.PublicKey) }

// Sign signs msg.
func (k Key) Sign(msg []byte) []byte { return ed25519.Sign(k.priv, msg) }

// Valid tells whether the key was loaded.
func (k Key) Valid() bool { return len(k.priv) == ed25519.PrivateKeySize }

// KeyID is the fingerprint of a public key: the first 8 bytes of its
// SHA-256, in hex.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// FormatPublic is how a public key is shown and pinned: its 32 bytes in hex.
func FormatPublic(pub ed25519.PublicKey) string { return hex.EncodeToString(pub) }

// ParsePublic reads a public key in hex (FormatPublic) or base64; text
// after the first field (a comment) is ignored.
func ParsePublic(s string) (ed25519.PublicKey, error) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return nil, errors.New("public key: empty")
	}
	for _, dec := range []func(string) ([]byte, error){hex.DecodeString, base64.StdEncoding.DecodeString, base64.RawStdEncoding.DecodeString} {
		if b, err := dec(f[0]); err == nil && len(b) == ed25519.PublicKeySize {
			return ed25519.PublicKey(b), nil
		}
	}
	return nil, fmt.Errorf("public key: not %d bytes in hex or base64", ed25519.PublicKeySize)
}

// LoadKey reads the evidence key at path (the base64 Ed25519 seed), or
// creates it there, readable by the owner only, when it does not exist.
// A key file readable by others is refused.
func LoadKey(path string) (key Key, created bool, err error) {
	text, created, err := keyfile.ReadOrCreate(path, "evidence key", func() ([]byte, error) {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv.Seed(), err
	})
	if err != nil {
		return Key{}, false, err
	}
	seed, err := base64.StdEncoding.DecodeString(text)
	if err != nil || len(seed) != ed25519.SeedSize {
		return Key{}, false, fmt.Errorf("evidence key %s: not a %d-byte Ed25519 seed in base64", path, ed25519.SeedSize)
	}
	return Key{priv: ed25519.NewKeyFromSeed(seed)}, created, nil
}
