package main

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/vigil-vms/vigil/camsim"
	"github.com/vigil-vms/vigil/internal/testkit/simcam"
	"github.com/vigil-vms/vigil/registry"
)

// TestDemoCamerasOnTheMap: every demo camera has its own coordinates (the
// camera map places it), and a camera an admin moved on the map keeps its
// place when the demo starts again (which re-points the cameras at the new
// simulator).
func TestDemoCamerasOnTheMap(t *testing.T) {
	ctx := context.Background()
	reg, closeDB, err := registry.OpenFile(ctx, filepath.Join(t.TempDir(), "vigil.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer closeDB()
	sim := simcam.Start(t, camsim.Options{Count: demoCameraCount, Codec: "h264"})
	if err := registerDemoCameras(ctx, reg, sim); err != nil {
		t.Fatal(err)
	}
	seen := map[[2]float64]string{}
	for _, d := range demoCameras {
		c, err := reg.Camera(ctx, d.id)
		if err != nil {
			t.Fatal(err)
		}
		at := [2]float64{c.Location.Lat, c.Location.Lng}
		if at == [2]float64{} {
			t.Errorf("demo camera %s has no coordinates", d.id)
		}
		if other, dup := seen[at]; dup {
			t.Errorf("demo cameras %s and %s share the coordinates %v", other, d.id, at)
		}
		seen[at] = d.id
	}
	moved, err := reg.Camera(ctx, demoCameras[0].id)
	if err != nil {
		t.Fatal(err)
	}
	moved.Location.Lat, moved.Location.Lng = 22.95, 113.39
	if _, _, err := reg.ReplaceCamera(ctx, moved); err != nil {
		t.Fatal(err)
	}
	if err := registerDemoCameras(ctx, reg, sim); err != nil {
		t.Fatal(err)
	}
	again, err := reg.Camera(ctx, moved.ID)
	if err != nil {
		t.Fatal(err)
	}
	if again.Location.Lat != 22.95 || again.Location.Lng != 113.39 {
		t.Fatalf("a restart of the demo put %s back to %v", moved.ID, again.Location)
	}
}
