package dispatch

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/vigil-vms/vigil/gb28181/manscdp"
	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/testkit/testdb"
	"github.com/vigil-vms/vigil/registry"
)

const (
	dev  = "34020000001180000001" // an NVR
	ch1  = "34020000001310000001"
	ch2  = "34020000001310000002"
	dev2 = "34020000001320000009"
)

func ptr[T any](v T) *T { return &v }

// gbHarness is a dispatcher over a real registry and fake parts.
type gbHarness struct {
	d    *Dispatcher
	reg  *registry.Registry
	pull *part
	log  *[]string
}

func newGBHarness(t *testing.T) *gbHarness {
	t.Helper()
	reg, err := registry.Open(context.Background(), testdb.OpenSQLite(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	var log []string
	var mu sync.Mutex
	pull, rec := newPart("ingest", &log, &mu), newPart("recorder", &log, &mu)
	d := New(pull, rec)
	d.SetGB(GBOptions{Store: reg})
	return &gbHarness{d: d, reg: reg, pull: pull, log: &log}
}

func (h *gbHarness) cam(t *testing.T, id string) ingest.Camera {
	t.Helper()
	c, err := h.reg.Camera(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func catalog() []manscdp.Item {
	return []manscdp.Item{
		{DeviceID: dev, Name: "NVR", Parental: ptr(1)},             // the NVR itself
		{DeviceID: "34020000002150000001", Name: "Business group"}, // a group
		{DeviceID: "340200", Name: "Civil code"},                   // a region
		{DeviceID: "34020000001340000001", Name: "Alarm input"},    // not video
		{DeviceID: ch1, Name: "River gate\x00 ", Info: &manscdp.Info{PTZType: ptr(1)}, Longitude: 113.384, Latitude: 22.937, Address: "Gate 3"},
		{DeviceID: ch2, Name: "", Info: &manscdp.Info{PTZType: ptr(3)}},
	}
}

func TestSyncChannelsCreates(t *testing.T) {
	ctx := context.Background()
	h := newGBHarness(t)
	cams, err := h.d.SyncChannels(ctx, dev, "flood-control", catalog())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range cams {
		ids = append(ids, c.ID)
	}
	slices.Sort(ids)
	if strings.Join(ids, ",") != "gb-"+ch1+",gb-"+ch2 {
		t.Fatalf("cameras %v", ids)
	}
	c1 := h.cam(t, "gb-"+ch1)
	if c1.Name != "River gate" || c1.Department != "flood-control" || !c1.Enabled || !c1.Record ||
		!c1.Pushed() || *c1.GB28181 != (ingest.GBChannel{Device: dev, Channel: ch1, PTZ: true}) ||
		c1.Location != (ingest.Location{Lat: 22.937, Lng: 113.384, Address: "Gate 3"}) || c1.MainURL != "" {
		t.Fatalf("camera 1 %+v %+v", c1, c1.GB28181)
	}
	c2 := h.cam(t, "gb-"+ch2)
	if c2.Name != ch2 || c2.GB28181.PTZ || c2.Location != (ingest.Location{}) {
		t.Fatalf("camera 2 %+v %+v", c2, c2.GB28181)
	}
	// the parts run them
	if got, ok := h.pull.cams["gb-"+ch1]; !ok || !got.Pushed() || got.UID != c1.UID {
		t.Fatalf("ingest holds %+v", got)
	}
	// The same catalog again changes nothing.
	n := len(*h.log)
	if _, err := h.d.SyncChannels(ctx, dev, "flood-control", catalog()); err != nil {
		t.Fatal(err)
	}
	if len(*h.log) != n {
		t.Fatalf("a repeated catalog applied %v", (*h.log)[n:])
	}
}

func TestSyncChannelsKeepsTheAdminsEdits(t *testing.T) {
	ctx := context.Background()
	h := newGBHarness(t)
	if _, err := h.d.SyncChannels(ctx, dev, "flood-control", catalog()); err != nil {
		t.Fatal(err)
	}
	c := h.cam(t, "gb-"+ch2)
	c.Name, c.Record, c.Tags = "North bank", false, []string{"bank"}
	if _, _, err := h.reg.ReplaceCamera(ctx, c); err != nil {
		t.Fatal(err)
	}
	items := catalog()
	items[5].Name = "IPC 2"
	items[5].Info.PTZType = ptr(4)
	items[5].Longitude, items[5].Latitude = 113.1, 22.1
	if _, err := h.d.SyncChannels(ctx, dev, "police", items); err != nil {
		t.Fatal(err)
	}
	c = h.cam(t, "gb-"+ch2)
	if c.Name != "North bank" || c.Record || c.Department != "police" || !c.GB28181.PTZ || c.Location.Lat != 22.1 {
		t.Fatalf("after the second catalog %+v %+v", c, c.GB28181)
	}
	if got := h.pull.cams[c.ID]; got.Department != "police" {
		t.Fatalf("ingest has department %q", got.Department)
	}
}

func TestSyncChannelsMissing(t *testing.T) {
	ctx := context.Background()
	h := newGBHarness(t)
	if _, err := h.d.SyncChannels(ctx, dev, "flood-control", catalog()); err != nil {
		t.Fatal(err)
	}
	// channel 2 leaves the catalog: disabled and marked, not deleted
	if _, err := h.d.SyncChannels(ctx, dev, "flood-control", catalog()[:5]); err != nil {
		t.Fatal(err)
	}
	c2 := h.cam(t, "gb-"+ch2)
	if c2.Enabled || !c2.GB28181.Missing {
		t.Fatalf("left channel %+v %+v", c2, c2.GB28181)
	}
	if h.pull.cams[c2.ID].Enabled {
		t.Fatal("the ingest still runs the missing channel")
	}
	// it comes back (a NOTIFY ADD): enabled again
	if _, err := h.d.SyncChannels(ctx, dev, "flood-control", []manscdp.Item{{DeviceID: ch2, Event: manscdp.EventAdd}}); err != nil {
		t.Fatal(err)
	}
	if c2 = h.cam(t, c2.ID); !c2.Enabled || c2.GB28181.Missing {
		t.Fatalf("returned channel %+v %+v", c2, c2.GB28181)
	}
	// a NOTIFY is changes only: channel 1 stays
	if !h.cam(t, "gb-"+ch1).Enabled {
		t.Fatal("a NOTIFY disabled a channel it did not name")
	}
	// an admin disables channel 1; it leaves and returns: still disabled
	c1 := h.cam(t, "gb-"+ch1)
	c1.Enabled = false
	if _, _, err := h.reg.ReplaceCamera(ctx, c1); err != nil {
		t.Fatal(err)
	}
	if _, err := h.d.SyncChannels(ctx, dev, "flood-control", []manscdp.Item{{DeviceID: ch1, Event: manscdp.EventDel}}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.d.SyncChannels(ctx, dev, "flood-control", catalog()); err != nil {
		t.Fatal(err)
	}
	if c1 = h.cam(t, c1.ID); c1.Enabled {
		t.Fatal("the catalog enabled a camera the admin had disabled")
	}
	// the device is deleted: its cameras are disabled, and come back with it
	if err := h.d.DisableDevice(ctx, dev); err != nil {
		t.Fatal(err)
	}
	if c2 = h.cam(t, c2.ID); c2.Enabled || !c2.GB28181.Missing {
		t.Fatalf("camera of a deleted device %+v", c2)
	}
	if _, err := h.d.SyncChannels(ctx, dev, "flood-control", catalog()); err != nil {
		t.Fatal(err)
	}
	if c2 = h.cam(t, c2.ID); !c2.Enabled {
		t.Fatal("the re-added device's camera stays disabled")
	}
	if err := h.d.MoveDevice(ctx, dev, "police"); err != nil {
		t.Fatal(err)
	}
	if c := h.cam(t, c2.ID); c.Department != "police" {
		t.Fatalf("moved device's camera in %q", c.Department)
	}
}

func TestSyncChannelsCollision(t *testing.T) {
	ctx := context.Background()
	h := newGBHarness(t)
	if _, err := h.d.SyncChannels(ctx, dev, "flood-control", catalog()); err != nil {
		t.Fatal(err)
	}
	// another device ships the same default channel id: skipped
	cams, err := h.d.SyncChannels(ctx, dev2, "police", []manscdp.Item{{DeviceID: ch1, Name: "Other"}})
	if err != nil || len(cams) != 0 {
		t.Fatalf("second device got %v (%v)", cams, err)
	}
	if c := h.cam(t, "gb-"+ch1); c.GB28181.Device != dev || c.Department != "flood-control" {
		t.Fatalf("the first device's camera was taken: %+v", c.GB28181)
	}
}

func TestVideoChannel(t *testing.T) {
	for id, want := range map[string]bool{
		ch1: true, "34020000001320000001": true, // camera, IPC
		"34020000001110000001":  true,  // a DVR without children (an encoder channel)
		"34020000001340000001":  false, // alarm input
		"34020000002160000001":  false, // virtual organisation
		"3402000000131000000x":  false,
		"3402000000131000000":   false,
		"34020000002000000001":  false, // a platform
		"340200000013100000011": false,
	} {
		if got := VideoChannel(manscdp.Item{DeviceID: id}); got != want {
			t.Errorf("%s: %v, want %v", id, got, want)
		}
	}
	if VideoChannel(manscdp.Item{DeviceID: dev, Parental: ptr(1)}) {
		t.Error("an NVR listing itself is a channel")
	}
}
