// Package secretbox seals short secrets (passwords) for storage with
// AES-256-GCM under the server's secret key, bound to what they belong to
// (the additional data: a camera's URL field, a device's password), so that a
// sealed value copied to another row does not open there.
package secretbox

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the length of the key in bytes.
const KeySize = 32

// Prefix starts every sealed value; a plain value cannot begin with it.
const Prefix = "vigil-enc1."

// Errors of Open.
var (
	ErrDamaged  = errors.New("the sealed value is damaged")
	ErrWrongKey = errors.New("the sealed value does not open with this key")
)

// Box seals and opens values under one key.
type Box struct{ aead cipher.AEAD }

// New returns a box for key, which must be KeySize bytes.
func New(key []byte) (*Box, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("the secret key has %d bytes, want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	return &Box{aead: aead}, nil
}

// Sealed reports whether s is a sealed value.
func Sealed(s string) bool { return strings.HasPrefix(s, Prefix) }

// Seal returns plain sealed for ad: Prefix and the base64 of nonce and box.
func (b *Box) Seal(plain string, ad []byte) (string, error) {
	n := b.aead.NonceSize()
	nonce := make([]byte, n, n+len(plain)+b.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	box := b.aead.Seal(nonce, nonce, []byte(plain), ad)
	return Prefix + base64.RawURLEncoding.EncodeToString(box), nil
}

// Open returns the plain value of sealed, which must have been sealed for
// ad: ErrDamaged when it does not parse, ErrWrongKey when it does not open.
func (b *Box) Open(sealed string, ad []byte) (string, error) {
	box, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(sealed, Prefix))
	n := b.aead.NonceSize()
	if !Sealed(sealed) || err != nil || len(box) < n {
		return "", ErrDamaged
	}
	plain, err := b.aead.Open(nil, box[:n], box[n:], ad)
	if err != nil {
		return "", ErrWrongKey
	}
	return string(plain), nil
}
