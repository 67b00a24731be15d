package app_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/vigil-vms/vigil/app"
	"github.com/vigil-vms/vigil/evidence"
)

// The evidence key is created at first start next to the database,
// readable by its owner only, and the same key signs after a restart.
func TestEvidenceKeyFile(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir) // the same database for both starts
	start := func() *app.App {
		t.Helper()
		a, err := app.New(context.Background(), cfg, app.Options{AdminPassword: adminPassword})
		if err != nil {
			t.Fatal(err)
		}
		a.Close()
		return a
	}
	first := start()
	path := filepath.Join(dir, evidence.KeyFile)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatalf("no key file after the first start: %v", err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", st.Mode().Perm())
	}
	if !first.Evidence.Valid() {
		t.Fatal("the server has no evidence key")
	}
	second := start()
	if !second.Evidence.Public().Equal(first.Evidence.Public()) {
		t.Fatal("a restart made a new evidence key")
	}
}
