package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/vigil-vms/vigil/gb28181/manscdp"
	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/apierr"
)

// CameraStore is the database of record of cameras (registry.Registry):
// what SyncChannels needs to keep a GB/T 28181 device's cameras in step
// with its catalog.
type CameraStore interface {
	Camera(ctx context.Context, id string) (ingest.Camera, error)
	CreateCamera(ctx context.Context, c ingest.Camera) (ingest.Camera, error)
	// UpdateGBCamera writes a GB/T 28181 camera as its catalog says,
	// department and gb28181 fields included.
	UpdateGBCamera(ctx context.Context, c ingest.Camera) (now, before ingest.Camera, err error)
	// DeviceCameras lists the cameras of a device's channels.
	DeviceCameras(ctx context.Context, device string) ([]ingest.Camera, error)
}

// GBOptions are what the GB/T 28181 side of a Dispatcher needs.
type GBOptions struct {
	// Store holds the cameras. Required for SyncChannels.
	Store CameraStore
	// Log receives what a sync could not do. It defaults to discarding.
	Log *slog.Logger
}

// SetGB gives the dispatcher its GB/T 28181 options; call it before
// SyncChannels, DisableDevice or MoveDevice.
func (d *Dispatcher) SetGB(o GBOptions) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	d.gb = o
}

// GB/T 28181 catalog rules (see SyncChannels).
const (
	// maxChannelName bounds a camera name taken from a catalog
	// (registry.MaxNameLen).
	maxChannelName = 200
	maxAddress     = 500
)

// SyncChannels makes the cameras of device follow its catalog items (a
// complete catalog, or a catalog NOTIFY's changes: items with an Event):
//
//   - every video channel becomes the camera gb-<channel id> in the
//     device's department, named as the catalog names it, with PTZ when
//     its PTZType is 1 (dome) or 4 (remote-controlled box), located at
//     its Longitude/Latitude when the catalog gives them. A new camera is
//     enabled and recorded, as a camera an admin adds is by default: the
//     admin registered the device to watch it (turn recording off per
//     camera). Afterwards the name, location, record, retention and tags
//     are the admin's: the catalog does not overwrite them (it fills a
//     location that is still unset); PTZ and the department follow the
//     device.
//   - a channel that leaves the catalog (absent from a complete one, or
//     a DEL event) disables its camera and marks it missing; its
//     recordings stay. When it returns the camera is enabled again,
//     unless an admin had disabled it.
//   - a channel whose camera id belongs to another device or to an RTSP
//     camera is skipped and logged (devices shipped with the same default
//     channel ids collide this way).
//
// Video channels are items whose 20-digit id has type 131 (camera) or 132
// (IP camera), or another front-end type (111-199, not 133-135:
// displays, alarm inputs and outputs) without children (Parental 1 is an
// NVR or encoder listing itself). Business groups, virtual organisations
// and civil codes are not cameras.
//
// It returns the device's cameras after the sync. Syncs are serialized;
// every change is applied like an admin's (Apply).
func (d *Dispatcher) SyncChannels(ctx context.Context, device, department string, items []manscdp.Item) ([]ingest.Camera, error) {
	if d.gb.Store == nil {
		return nil, errors.New("dispatch: SyncChannels without a camera store (SetGB)")
	}
	d.syncMu.Lock()
	defer d.syncMu.Unlock()
	existing, err := d.gb.Store.DeviceCameras(ctx, device)
	if err != nil {
		return nil, err
	}
	byID := make(map[string]ingest.Camera, len(existing))
	for _, c := range existing {
		byID[c.ID] = c
	}
	changes := false // a catalog NOTIFY: items carry their Event (sip.CatalogChange)
	for _, it := range items {
		changes = changes || it.Event != ""
	}
	seen := map[string]bool{}
	var errs []error
	for _, it := range items {
		if !VideoChannel(it) {
			continue
		}
		id := "gb-" + it.DeviceID
		cam, ok := byID[id]
		if changes && it.Event == manscdp.EventDel {
			if ok {
				errs = append(errs, d.markMissing(ctx, cam, byID))
			}
			continue
		}
		if seen[id] {
			continue
		}
		seen[id] = true
		if !ok {
			errs = append(errs, d.createChannel(ctx, device, department, it, byID))
			continue
		}
		errs = append(errs, d.updateChannel(ctx, cam, department, it, byID))
	}
	if !changes {
		for _, c := range existing {
			if !seen[c.ID] {
				errs = append(errs, d.markMissing(ctx, c, byID))
			}
		}
	}
	out := make([]ingest.Camera, 0, len(byID))
	for _, c := range existing {
		out = append(out, byID[c.ID])
		delete(byID, c.ID)
	}
	for _, c := range byID { // created
		out = append(out, c)
	}
	return out, errors.Join(errs...)
}

// VideoChannel tells whether a catalog item is a channel that shows video
// (see SyncChannels).
func VideoChannel(it manscdp.Item) bool {
	id := it.DeviceID
	if len(id) != 20 || strings.Trim(id, "0123456789") != "" {
		return false
	}
	typ := id[10:13]
	switch {
	case typ == "131" || typ == "132":
		return true
	case typ == "133" || typ == "134" || typ == "135":
		return false
	case typ >= "111" && typ <= "199":
		return it.Parental == nil || *it.Parental != 1
	}
	return false
}

// channelPTZ tells whether a catalog item can pan, tilt or zoom: PTZType 1
// (dome) or 4 (remote-controlled box camera).
func channelPTZ(it manscdp.Item) bool {
	if it.Info == nil || it.Info.PTZType == nil {
		return false
	}
	t := *it.Info.PTZType
	return t == 1 || t == 4
}

// channelLocation is where the catalog places the item, or nil.
func channelLocation(it manscdp.Item) *ingest.Location {
	lat, lng := it.Latitude, it.Longitude
	if lat == 0 && lng == 0 || lat < -90 || lat > 90 || lng < -180 || lng > 180 || lat != lat || lng != lng {
		return nil
	}
	return &ingest.Location{Lat: lat, Lng: lng, Address: cleanText(it.Address, maxAddress)}
}

// cleanText makes a catalog's text a valid camera text: valid UTF-8,
// control characters as spaces, trimmed, at most max characters.
func cleanText(s string, max int) string {
	s = strings.ToValidUTF8(s, "�")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if utf8.RuneCountInString(s) > max {
		s = strings.TrimSpace(string([]rune(s)[:max]))
	}
	return s
}

func (d *Dispatcher) createChannel(ctx context.Context, device, department string, it manscdp.Item, byID map[string]ingest.Camera) error {
	id := "gb-" + it.DeviceID
	if other, err := d.gb.Store.Camera(ctx, id); err == nil {
		owner := "an RTSP camera"
		if other.GB28181 != nil {
			owner = "device " + other.GB28181.Device
		}
		d.gb.Log.Warn("gb28181 channel skipped: its camera id belongs to another", "device", device, "channel", it.DeviceID, "camera", id, "owner", owner)
		return nil
	} else if !errors.Is(err, apierr.ErrNotFound) {
		return err
	}
	name := cleanText(it.Name, maxChannelName)
	if name == "" {
		name = it.DeviceID
	}
	c := ingest.Camera{ID: id, Name: name, Department: department,
		Source:  ingest.SourceGB28181,
		GB28181: &ingest.GBChannel{Device: device, Channel: it.DeviceID, PTZ: channelPTZ(it)},
		Record:  true, Enabled: true, Tags: []string{}}
	if loc := channelLocation(it); loc != nil {
		c.Location = *loc
	}
	created, err := d.gb.Store.CreateCamera(ctx, c)
	if err != nil {
		return fmt.Errorf("device %s channel %s: %w", device, it.DeviceID, err)
	}
	byID[id] = created
	d.Apply(created)
	d.gb.Log.Info("gb28181 channel added as a camera", "device", device, "camera", id, "name", name)
	return nil
}

func (d *Dispatcher) updateChannel(ctx context.Context, cam ingest.Camera, department string, it manscdp.Item, byID map[string]ingest.Camera) error {
	c := cam
	gb := *cam.GB28181
	c.GB28181 = &gb
	c.Department = department
	gb.PTZ = channelPTZ(it)
	if gb.Missing {
		gb.Missing, c.Enabled = false, true
	}
	if loc := channelLocation(it); loc != nil && c.Location.Lat == 0 && c.Location.Lng == 0 {
		c.Location = *loc
	}
	if c.Department == cam.Department && gb == *cam.GB28181 && c.Enabled == cam.Enabled && c.Location == cam.Location {
		return nil
	}
	return d.storeGB(ctx, c, byID)
}

// markMissing disables the camera of a channel that left its catalog
// (unless an admin had disabled it already).
func (d *Dispatcher) markMissing(ctx context.Context, cam ingest.Camera, byID map[string]ingest.Camera) error {
	if !cam.Enabled || cam.GB28181.Missing {
		return nil
	}
	c := cam
	gb := *cam.GB28181
	gb.Missing = true
	c.GB28181, c.Enabled = &gb, false
	d.gb.Log.Info("gb28181 channel left its catalog: camera disabled", "device", gb.Device, "camera", c.ID)
	return d.storeGB(ctx, c, byID)
}

func (d *Dispatcher) storeGB(ctx context.Context, c ingest.Camera, byID map[string]ingest.Camera) error {
	now, _, err := d.gb.Store.UpdateGBCamera(ctx, c)
	if err != nil {
		return fmt.Errorf("device %s camera %s: %w", c.GB28181.Device, c.ID, err)
	}
	byID[c.ID] = now
	d.Apply(now)
	return nil
}

// DisableDevice disables the cameras of a device an admin deleted (marked
// missing: they come back when the device is added again and its catalog
// lists them). Their recordings stay.
func (d *Dispatcher) DisableDevice(ctx context.Context, device string) error {
	if d.gb.Store == nil {
		return errors.New("dispatch: DisableDevice without a camera store (SetGB)")
	}
	d.syncMu.Lock()
	defer d.syncMu.Unlock()
	cams, err := d.gb.Store.DeviceCameras(ctx, device)
	if err != nil {
		return err
	}
	byID := map[string]ingest.Camera{}
	var errs []error
	for _, c := range cams {
		errs = append(errs, d.markMissing(ctx, c, byID))
	}
	return errors.Join(errs...)
}

// MoveDevice moves a device's cameras to its new department (an admin
// changed the device's).
func (d *Dispatcher) MoveDevice(ctx context.Context, device, department string) error {
	if d.gb.Store == nil {
		return errors.New("dispatch: MoveDevice without a camera store (SetGB)")
	}
	d.syncMu.Lock()
	defer d.syncMu.Unlock()
	cams, err := d.gb.Store.DeviceCameras(ctx, device)
	if err != nil {
		return err
	}
	byID := map[string]ingest.Camera{}
	var errs []error
	for _, c := range cams {
		if c.Department != department {
			c.Department = department
			errs = append(errs, d.storeGB(ctx, c, byID))
		}
	}
	return errors.Join(errs...)
}
