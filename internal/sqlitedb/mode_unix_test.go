//go:build unix

package sqlitedb

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// The database holds password hashes and camera credentials: it, its WAL
// and the directory made for it are the owner's alone, whatever the umask
// (issue 12, item 13: vigil.db was created 0644).
func TestCreatedPrivate(t *testing.T) {
	old := syscall.Umask(0o022) // the usual umask; restored below
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "data")
	path := filepath.Join(dir, "vigil.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE t (x); INSERT INTO t VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]os.FileMode{dir: 0o700, path: 0o600, path + "-wal": 0o600, path + "-shm": 0o600} {
		st, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Mode().Perm(); got != want {
			t.Errorf("%s: mode %04o, want %04o", filepath.Base(name), got, want)
		}
	}
}
