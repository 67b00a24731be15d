package app

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestRoofAndFoundation keeps the house's rule: the wiring (this package,
// app/config, app/metrics) sits on top and no package below it imports it;
// the helpers under internal/ are the foundation (test helpers there may
// build on ingest and camsim, never on the server's upper rooms).
func TestRoofAndFoundation(t *testing.T) {
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	list := func(t *testing.T, pkgs ...string) []string {
		t.Helper()
		args := append([]string{"list", "-deps", "-test=false", "-f", "{{.ImportPath}}"}, pkgs...)
		cmd := exec.Command(goBin, args...)
		cmd.Dir = ".."
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go list: %v\n%s", err, out)
		}
		return strings.Fields(string(out))
	}
	const mod = "github.com/vigil-vms/vigil/"
	for _, tc := range []struct {
		name    string
		pkgs    []string
		allowed func(dep string) bool
	}{
		{"rooms import no wiring",
			[]string{"./ingest", "./relay", "./recorder/...", "./registry", "./dispatch", "./availability", "./health", "./alerts", "./ui/...", "./camsim/...", "./evidence"},
			func(dep string) bool { return !strings.HasPrefix(dep, mod+"app") }},
		{"leaf helpers import no wiring and no server room",
			[]string{"./internal/..."},
			func(dep string) bool {
				return !strings.HasPrefix(dep, mod+"app") && dep != mod+"ui" && dep != mod+"dispatch" && dep != mod+"availability" &&
					dep != mod+"health" && dep != mod+"alerts"
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, dep := range list(t, tc.pkgs...) {
				if strings.HasPrefix(dep, mod) && !tc.allowed(dep) {
					t.Errorf("%v depend on %s", tc.pkgs, dep)
				}
			}
		})
	}
}
