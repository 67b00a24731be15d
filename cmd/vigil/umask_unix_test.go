//go:build unix

package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// What vigil serve creates — database, spool, local store — is its owner's
// alone, whatever the umask it was started with (issue 12, item 13).
func TestServeCreatesPrivateFiles(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cfgPath := writeConfig(t, dir, fmt.Sprintf("backend: local, local: { dir: %q }", filepath.Join(data, "recordings")),
		fmt.Sprintf("spoolDir: %q", filepath.Join(data, "spool")), filepath.Join(data, "db", "vigil.db"))
	cmd := serveCmd(cfgPath, "VIGIL_ADMIN_PASSWORD=umask-test-pw")
	// The usual umask 022, inherited by the child.
	cmd.Path, cmd.Args = "/bin/sh", append([]string{"/bin/sh", "-c", `umask 022 && exec "$0" "$@"`, os.Args[0]}, cmd.Args[1:]...)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	awaitLog(t, stderr, "vigil started", 1, 30*time.Second)
	n := 0
	filepath.WalkDir(data, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Error(err)
			return nil
		}
		st, err := os.Stat(p)
		if err != nil {
			return nil // a file that went away (a WAL checkpoint)
		}
		n++
		if st.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s: mode %04o, readable by others", strings.TrimPrefix(p, dir), st.Mode().Perm())
		}
		return nil
	})
	if n < 4 {
		t.Fatalf("only %d files and directories made", n)
	}
}
