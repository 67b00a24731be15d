package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-vms/vigil/app/config"
	"github.com/vigil-vms/vigil/internal/testkit/testdb"
	"github.com/vigil-vms/vigil/registry"
)

func TestRunUser(t *testing.T) {
	ctx := context.Background()
	cfg := config.Default()
	cfg.Database.Path = filepath.Join(t.TempDir(), "vigil.db")
	var out bytes.Buffer
	run := func(stdin, env string, args ...string) error {
		out.Reset()
		return runUserEnv(ctx, cfg, args, &out, strings.NewReader(stdin), env)
	}
	if err := run("first-pass\n", "", "add", "li.wei", "--role", "responder", "--departments", "police,flood-control"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "flood-control, police") || strings.Contains(out.String(), "first-pass") {
		t.Fatalf("output %q", out.String())
	}
	if err := run("", "env-password", "add", "--role", "viewer", "wang"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]string{
		{"add", "x", "--role", "root"},
		{"add", "x"},
		{"add", "--role", "viewer"},
		{"add", "li.wei", "--role", "viewer"}, // exists
		{"passwd", "ghost"},
		{"passwd", "li.wei", "--role", "admin"},
		{"frobnicate", "x"},
		{},
	} {
		if err := run("some-password\n", "", bad...); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	if err := run("", "", "passwd", "li.wei"); err == nil || !strings.Contains(err.Error(), "VIGIL_USER_PASSWORD") {
		t.Fatalf("empty stdin: %v", err)
	}
	if err := run("second-pass\r\n", "", "passwd", "li.wei"); err != nil {
		t.Fatal(err)
	}
	reg, err := registry.Open(ctx, testdb.OpenSQLite(t, cfg.Database.Path))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Authenticate(ctx, "li.wei", "second-pass"); err != nil {
		t.Fatal(err)
	}
	if u, err := reg.Authenticate(ctx, "wang", "env-password"); err != nil || u.Role != "viewer" || len(u.Departments) != 0 {
		t.Fatalf("%+v %v", u, err)
	}
}
