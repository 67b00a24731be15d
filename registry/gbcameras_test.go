package registry

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/vigil-vms/vigil/ingest"
)

const (
	testDevice  = "34020000001320000001"
	testChannel = "34020000001310000001"
)

func gbCamera() ingest.Camera {
	return ingest.Camera{ID: "gb-" + testChannel, Name: "River gate", Department: "flood-control",
		Source: ingest.SourceGB28181, GB28181: &ingest.GBChannel{Device: testDevice, Channel: testChannel, PTZ: true},
		Record: true, Enabled: true}
}

func TestValidateGBCamera(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*ingest.Camera)
		fields string
	}{
		{"valid", func(*ingest.Camera) {}, ""},
		{"no channel", func(c *ingest.Camera) { c.GB28181 = nil }, "gb28181"},
		{"url", func(c *ingest.Camera) { c.MainURL = "rtsp://10.0.0.1/x" }, "mainUrl"},
		{"sub url", func(c *ingest.Camera) { c.SubURL = "rtsp://10.0.0.1/x" }, "subUrl"},
		{"short device", func(c *ingest.Camera) { c.GB28181.Device = "3402" }, "gb28181.device"},
		{"letters in channel", func(c *ingest.Camera) { c.GB28181.Channel = "3402000000131000000x" }, "gb28181.channel"},
		{"id not the channel's", func(c *ingest.Camera) { c.ID = "gb-34020000001310000002" }, "id"},
		{"unknown source", func(c *ingest.Camera) { c.Source = "onvif" }, "source"},
		{"rtsp with gb id", func(c *ingest.Camera) {
			c.Source, c.GB28181, c.MainURL = ingest.SourceRTSP, nil, "rtsp://10.0.0.1/x"
		}, "id"},
		{"rtsp with channel", func(c *ingest.Camera) {
			c.Source, c.ID, c.MainURL = ingest.SourceRTSP, "river", "rtsp://10.0.0.1/x"
		}, "gb28181"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := gbCamera()
			gb := *c.GB28181
			c.GB28181 = &gb
			tc.mutate(&c)
			NormalizeCamera(&c)
			var got []string
			for _, e := range ValidateCamera(c, deptExists) {
				got = append(got, e.Field)
			}
			if strings.Join(got, ",") != tc.fields {
				t.Fatalf("error fields %v, want %q", got, tc.fields)
			}
		})
	}
}

func TestGBCameraStored(t *testing.T) {
	ctx := context.Background()
	r := openTest(t)
	if _, err := r.CreateCamera(ctx, goodCamera("police-007")); err != nil {
		t.Fatal(err)
	}
	if _, err := r.CreateCamera(ctx, gbCamera()); err != nil {
		t.Fatal(err)
	}
	rtsp, err := r.Camera(ctx, "police-007")
	if err != nil {
		t.Fatal(err)
	}
	if rtsp.Source != ingest.SourceRTSP || rtsp.GB28181 != nil || rtsp.Pushed() {
		t.Fatalf("RTSP camera reads back as source %q gb %v", rtsp.Source, rtsp.GB28181)
	}
	gb, err := r.Camera(ctx, "gb-"+testChannel)
	if err != nil {
		t.Fatal(err)
	}
	if !gb.Pushed() || gb.GB28181 == nil || *gb.GB28181 != (ingest.GBChannel{Device: testDevice, Channel: testChannel, PTZ: true}) || gb.MainURL != "" {
		t.Fatalf("GB camera reads back as %+v gb %+v", gb, gb.GB28181)
	}
	// A row written before the column had a value ("") reads as rtsp.
	if _, err := r.db.Exec(context.Background(), `UPDATE cameras SET source = '' WHERE id = 'police-007'`); err != nil {
		t.Fatal(err)
	}
	if c, err := r.Camera(ctx, "police-007"); err != nil || c.Source != ingest.SourceRTSP {
		t.Fatalf("empty source reads as %q (%v)", c.Source, err)
	}
	cams, err := r.DeviceCameras(ctx, testDevice)
	if err != nil || len(cams) != 1 || cams[0].ID != gb.ID {
		t.Fatalf("device cameras %v (%v)", cams, err)
	}
	if cams, _ := r.DeviceCameras(ctx, "34020000001320000009"); len(cams) != 0 {
		t.Fatalf("another device has cameras %v", cams)
	}
}

func TestReplaceGBCamera(t *testing.T) {
	ctx := context.Background()
	r := openTest(t)
	if _, err := r.CreateCamera(ctx, gbCamera()); err != nil {
		t.Fatal(err)
	}
	if _, err := r.CreateCamera(ctx, goodCamera("police-007")); err != nil {
		t.Fatal(err)
	}
	// An admin's edit that omits source and gb28181 keeps them.
	edit := ingest.Camera{ID: "gb-" + testChannel, Name: "River gate north", Department: "flood-control",
		Record: false, Enabled: true, RetentionDays: 7, Tags: []string{"river"}}
	now, _, err := r.ReplaceCamera(ctx, edit)
	if err != nil {
		t.Fatal(err)
	}
	if !now.Pushed() || now.GB28181.Channel != testChannel || !now.GB28181.PTZ || now.Name != "River gate north" || now.Record {
		t.Fatalf("after the edit %+v %+v", now, now.GB28181)
	}
	// Repeating them unchanged (as GET gave them) is fine; PTZ is kept.
	same := now
	same.GB28181 = &ingest.GBChannel{Device: testDevice, Channel: testChannel}
	if now, _, err = r.ReplaceCamera(ctx, same); err != nil || !now.GB28181.PTZ {
		t.Fatalf("repeat: %v %+v", err, now.GB28181)
	}
	bad := []struct {
		name   string
		mutate func(*ingest.Camera)
	}{
		{"department", func(c *ingest.Camera) { c.Department = "police" }},
		{"channel", func(c *ingest.Camera) {
			c.GB28181 = &ingest.GBChannel{Device: testDevice, Channel: "34020000001310000002"}
		}},
		{"to rtsp", func(c *ingest.Camera) { c.Source, c.GB28181, c.MainURL = ingest.SourceRTSP, nil, "rtsp://10.0.0.1/x" }},
		{"url", func(c *ingest.Camera) { c.MainURL = "rtsp://10.0.0.1/x" }},
	}
	for _, tc := range bad {
		c := now
		tc.mutate(&c)
		_, _, err := r.ReplaceCamera(ctx, c)
		wantStatus(t, err, http.StatusBadRequest)
	}
	// An RTSP camera cannot become a GB/T 28181 camera.
	rtsp := goodCamera("police-007")
	rtsp.Source = ingest.SourceGB28181
	rtsp.MainURL = ""
	rtsp.GB28181 = &ingest.GBChannel{Device: testDevice, Channel: "34020000001310000002"}
	_, _, err = r.ReplaceCamera(ctx, rtsp)
	wantStatus(t, err, http.StatusBadRequest)

	// The catalog sync may move it and mark it missing.
	sync := now
	sync.Department = "police"
	sync.Enabled = false
	sync.GB28181 = &ingest.GBChannel{Device: testDevice, Channel: testChannel, Missing: true}
	if _, _, err := r.UpdateGBCamera(ctx, sync); err != nil {
		t.Fatal(err)
	}
	got, _ := r.Camera(ctx, sync.ID)
	if got.Department != "police" || got.Enabled || !got.GB28181.Missing || got.GB28181.PTZ || got.UID != now.UID {
		t.Fatalf("after the sync %+v %+v", got, got.GB28181)
	}
	// ... but not an RTSP camera.
	rtsp = goodCamera("police-007")
	rtsp.Source, rtsp.MainURL = ingest.SourceGB28181, ""
	if _, _, err := r.UpdateGBCamera(ctx, rtsp); err == nil {
		t.Fatal("UpdateGBCamera turned an RTSP camera into a GB/T 28181 one")
	}
}
