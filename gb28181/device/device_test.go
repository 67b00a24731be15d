package device

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-vms/vigil/internal/apierr"
	"github.com/vigil-vms/vigil/internal/secretbox"
	"github.com/vigil-vms/vigil/internal/sqldb"
	"github.com/vigil-vms/vigil/internal/sqlitedb"
	"github.com/vigil-vms/vigil/registry"
)

func openStore(t *testing.T, key []byte) *Store {
	t.Helper()
	ctx := context.Background()
	db, err := sqlitedb.Open(filepath.Join(t.TempDir(), "vigil.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := registry.Open(ctx, &sqldb.DB{DB: db, Dialect: sqldb.SQLite}); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, db, key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func ptr(s string) *string { return &s }

const id1 = "44011300001320000001"

func TestCRUD(t *testing.T) {
	ctx := context.Background()
	key := make([]byte, KeySize)
	key[0] = 7
	s := openStore(t, key)
	d, err := s.Create(ctx, Input{ID: id1, Name: " river gate ", Department: "police", Password: ptr("secret1")})
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "river gate" || d.Created.IsZero() {
		t.Fatalf("created %+v", d)
	}
	var raw string
	if err := s.db.QueryRow(`SELECT password FROM gb28181_devices WHERE id = ?`, id1).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(raw, secretbox.Prefix) || strings.Contains(raw, "secret1") {
		t.Fatalf("stored password %q is not sealed", raw)
	}
	if pw, ok, err := s.Password(ctx, id1); err != nil || !ok || pw != "secret1" {
		t.Fatalf("password = %q %v %v", pw, ok, err)
	}
	// Update without password keeps it.
	if _, err := s.Update(ctx, Input{ID: id1, Name: "gate 2", Department: "police"}); err != nil {
		t.Fatal(err)
	}
	if pw, _, _ := s.Password(ctx, id1); pw != "secret1" {
		t.Fatalf("password after update = %q", pw)
	}
	if _, err := s.Update(ctx, Input{ID: id1, Name: "gate 2", Department: "police", Password: ptr("")}); err != nil {
		t.Fatal(err)
	}
	if pw, ok, _ := s.Password(ctx, id1); pw != "" || !ok {
		t.Fatalf("password after clearing = %q %v", pw, ok)
	}
	list, err := s.List(ctx)
	if err != nil || len(list) != 1 || list[0].Name != "gate 2" {
		t.Fatalf("list = %+v %v", list, err)
	}
	if err := s.Delete(ctx, id1); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.Password(ctx, id1); ok {
		t.Fatal("deleted device still looked up")
	}
	if err := s.Delete(ctx, id1); apierr.Status(err) != http.StatusNotFound {
		t.Fatalf("delete again: %v", err)
	}
}

func TestInvalid(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, nil)
	for _, tc := range []struct {
		name string
		in   Input
		code int
	}{
		{"short id", Input{ID: "4401130000132000000", Name: "x", Department: "police"}, 400},
		{"letters", Input{ID: "4401130000132000000a", Name: "x", Department: "police"}, 400},
		{"no name", Input{ID: id1, Department: "police"}, 400},
		{"no department", Input{ID: id1, Name: "x"}, 400},
		{"unknown department", Input{ID: id1, Name: "x", Department: "nowhere"}, 400},
		{"sealed-looking password", Input{ID: id1, Name: "x", Department: "police", Password: ptr(secretbox.Prefix + "x")}, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.Create(ctx, tc.in); apierr.Status(err) != tc.code {
				t.Fatalf("err = %v, want status %d", err, tc.code)
			}
		})
	}
	if _, err := s.Create(ctx, Input{ID: id1, Name: "x", Department: "police"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, Input{ID: id1, Name: "x", Department: "police"}); apierr.Status(err) != http.StatusConflict {
		t.Fatalf("duplicate: %v", err)
	}
	if _, err := s.Update(ctx, Input{ID: "44011300001320000009", Name: "x", Department: "police"}); apierr.Status(err) != http.StatusNotFound {
		t.Fatalf("update missing: %v", err)
	}
	// Without a key the password is stored as it is.
	if _, err := s.Update(ctx, Input{ID: id1, Name: "x", Department: "police", Password: ptr("plain")}); err != nil {
		t.Fatal(err)
	}
	if pw, ok, err := s.Password(ctx, id1); pw != "plain" || !ok || err != nil {
		t.Fatalf("password %q %v %v", pw, ok, err)
	}
}

func TestTransportRemembered(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, nil)
	if _, err := s.Create(ctx, Input{ID: id1, Name: "gate", Department: "police"}); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.Get(ctx, id1); d.Transport != "" {
		t.Fatalf("new device has transport %q", d.Transport)
	}
	if err := s.SetTransport(ctx, id1, TransportTCPPassive); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.Get(ctx, id1); d.Transport != TransportTCPPassive {
		t.Fatalf("transport %q", d.Transport)
	}
	if ds, _ := s.List(ctx); len(ds) != 1 || ds[0].Transport != TransportTCPPassive {
		t.Fatalf("list %+v", ds)
	}
	// an admin's edit keeps it
	if _, err := s.Update(ctx, Input{ID: id1, Name: "gate 2", Department: "police"}); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.Get(ctx, id1); d.Transport != TransportTCPPassive {
		t.Fatalf("after an update transport %q", d.Transport)
	}
	if err := s.SetTransport(ctx, id1, "sctp"); err == nil {
		t.Fatal("an unknown transport was stored")
	}
	if err := s.SetTransport(ctx, "44011300001320000009", TransportUDP); apierr.Status(err) != http.StatusNotFound {
		t.Fatalf("unknown device: %v", err)
	}
}
