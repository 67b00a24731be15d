package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/app"
	"github.com/vigil-vms/vigil/app/config"
	"github.com/vigil-vms/vigil/recorder/archive"
)

// vigil owners lists the cameras that have had an id, with the recordings
// of each: the deleted one's are found there.
func TestOwnersCommand(t *testing.T) {
	dir := t.TempDir()
	cfgPath := writeLocalConfig(t, dir, "2s")
	cfg, err := config.Load(cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	db, ix, _, err := app.OpenIndexAndStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC)
	add := func(min int) string {
		s := t0.Add(time.Duration(min) * time.Minute)
		seg := archive.Segment{Camera: "cam-x", Start: s, End: s.Add(time.Minute), Bytes: 10, Key: archive.SegmentKey("cam-x", s)}
		if err := ix.Add(ctx, seg); err != nil {
			t.Fatal(err)
		}
		return seg.Key
	}
	if _, err := ix.Own(ctx, archive.Owner{Camera: "cam-x", UID: "aaaa", Department: "police", Since: t0}, t0); err != nil {
		t.Fatal(err)
	}
	police := add(1)
	if err := ix.Disown(ctx, "cam-x", t0.Add(5*time.Minute)); err != nil {
		t.Fatal(err)
	}
	orphan := add(7)
	if _, err := ix.Own(ctx, archive.Owner{Camera: "cam-x", UID: "bbbb", Department: "flood-control", Since: t0.Add(10 * time.Minute)}, t0.Add(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	flood := add(11)
	db.Close()

	var out bytes.Buffer
	if err := run(ctx, []string{"owners", "cam-x", "--keys", "--config", cfgPath}, &out, &out, nil); err != nil {
		t.Fatalf("owners: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"camera cam-x incarnation aaaa: police, from 2026-11-29T08:00:00Z to 2026-11-29T08:05:00Z",
		"camera cam-x incarnation bbbb: flood-control, from 2026-11-29T08:10:00Z to now",
		"incarnation aaaa (deleted): 1 segments, 10 bytes, 2026-11-29T08:01:00Z to 2026-11-29T08:02:00Z\n  " + police,
		"incarnation bbbb (current): 1 segments, 10 bytes, 2026-11-29T08:11:00Z to 2026-11-29T08:12:00Z\n  " + flood,
		"no camera (orphans): 1 segments, 10 bytes, 2026-11-29T08:07:00Z to 2026-11-29T08:08:00Z\n  " + orphan,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if err := run(ctx, []string{"owners", "--config", cfgPath}, &out, &out, nil); err == nil || !strings.Contains(err.Error(), "name a camera id") {
		t.Errorf("owners without a camera: %v", err)
	}
}
