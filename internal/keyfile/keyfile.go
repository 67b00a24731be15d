// Package keyfile reads a secret key file kept next to the database, or
// creates it, readable by the owner only, when it does not exist.
package keyfile

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// ReadOrCreate returns the text of the key file at path, trimmed. When the
// file does not exist it is created (mode 0600) holding the base64 of the
// bytes newKey returns, and created is true. A key file readable by others
// is refused. what names the key in errors ("secret key").
func ReadOrCreate(path, what string, newKey func() ([]byte, error)) (text string, created bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key, err := newKey()
		if err != nil {
			return "", false, fmt.Errorf("%s: %w", what, err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return "", false, fmt.Errorf("%s: %w", what, err)
		}
		text := base64.StdEncoding.EncodeToString(key)
		_, werr := f.WriteString(text + "\n")
		if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
			os.Remove(path)
			return "", false, fmt.Errorf("%s %s: %w", what, path, err)
		}
		return text, true, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("%s: %w", what, err)
	}
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
		return "", false, fmt.Errorf("%s %s: readable by others (mode %v): chmod 600 it", what, path, st.Mode().Perm())
	}
	return strings.TrimSpace(string(b)), false, nil
}
