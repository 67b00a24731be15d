package ui

import (
	"context"
	"net/http"
	"slices"
	"time"

	"github.com/vigil-vms/vigil/availability"
	"github.com/vigil-vms/vigil/gb28181/device"
	"github.com/vigil-vms/vigil/gb28181/sip"
	"github.com/vigil-vms/vigil/gb28181/upstream"
	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/apierr"
)

// GB28181 is the GB/T 28181 side: the devices an admin registered and the
// SIP server's runtime state of them.
type GB28181 struct {
	Devices *device.Store
	SIP     GBState
	// PTZ sends one pan/tilt/zoom command (speeds in −1…1, all 0 stops) to
	// the device of a GB/T 28181 camera (gateway.Gateway.PTZ). Without it
	// PTZ answers 503. See ptz.go for the automatic stop.
	PTZ func(ctx context.Context, cam ingest.Camera, pan, tilt, zoom float64) error
	// Alarms lists a camera's device alarms over a range (alarm.Store.Events),
	// shown with its other events. Optional.
	Alarms func(ctx context.Context, camera string, from, to time.Time) ([]availability.Event, error)
	// Updated follows an admin's change of a device: its cameras move to
	// its department (gateway.Gateway.DeviceUpdated). Optional.
	Updated func(ctx context.Context, deviceID string) error
	// Upstream is the state of the upper platforms Vigil registers to
	// (upstream.Service.Statuses). Optional.
	Upstream func() []upstream.Status
}

// GBState is what the API reads from the SIP server.
type GBState interface {
	DeviceState(id string) sip.State
	RefusedList() []sip.Refused
	Admitted(id string) // an admin added the device: no longer refused
	Forget(id string)
}

// gbDevice is a device as the API shows it.
type gbDevice struct {
	device.Device
	State     string     `json:"state"`
	Since     *time.Time `json:"since"` // null while never registered
	Address   string     `json:"address"`
	Transport string     `json:"transport"`
	LastError string     `json:"lastError"`
	Channels  []string   `json:"channels"`
}

type gbDeviceBody struct {
	ID         string  `json:"id"`
	Name       string  `json:"name"`
	Department string  `json:"department"`
	Password   *string `json:"password"`
}

func (s *Server) gb() (*GB28181, error) {
	if s.deps.GB28181 == nil || s.deps.GB28181.Devices == nil {
		return nil, apierr.New(apierr.ErrNotFound, "GB/T 28181 is not enabled (gb28181.enabled)")
	}
	return s.deps.GB28181, nil
}

// gbChannels maps each device to the channels its cameras show (from the
// registry: the cameras the catalog made), sorted.
func (s *Server) gbChannels(ctx context.Context) (map[string][]string, error) {
	cams, err := s.reg.Cameras(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, c := range cams {
		if c.Pushed() && c.GB28181 != nil {
			out[c.GB28181.Device] = append(out[c.GB28181.Device], c.GB28181.Channel)
		}
	}
	for _, chs := range out {
		slices.Sort(chs)
	}
	return out, nil
}

func (g *GB28181) show(d device.Device, channels map[string][]string) gbDevice {
	out := gbDevice{Device: d, State: sip.StateNever, Channels: []string{}}
	if chs := channels[d.ID]; chs != nil {
		out.Channels = chs
	}
	if g.SIP != nil {
		st := g.SIP.DeviceState(d.ID)
		out.State, out.Address, out.Transport, out.LastError = st.State, st.Address, st.Transport, st.LastError
		if d.Transport != "" { // the media transport that worked; until one has, the SIP one
			out.Transport = d.Transport
		}
		if !st.Since.IsZero() {
			out.Since = &st.Since
		}
	}
	return out
}

// gbVisible returns the device when the caller's departments cover it; a
// device outside them is "does not exist", like a camera.
func (s *Server) gbVisible(r *http.Request, c *call, g *GB28181, id string) (device.Device, error) {
	d, err := g.Devices.Get(r.Context(), id)
	if err != nil {
		return d, err
	}
	if !c.p.user.InScope(d.Department) {
		return device.Device{}, apierr.New(apierr.ErrNotFound, "device %q does not exist", truncate(id, 64))
	}
	return d, nil
}

func (s *Server) listGBDevices(w http.ResponseWriter, r *http.Request, c *call) error {
	g, err := s.gb()
	if err != nil {
		return err
	}
	ds, err := g.Devices.List(r.Context())
	if err != nil {
		return err
	}
	chs, err := s.gbChannels(r.Context())
	if err != nil {
		return err
	}
	out := []gbDevice{}
	for _, d := range ds {
		if c.p.user.InScope(d.Department) {
			out = append(out, g.show(d, chs))
		}
	}
	return writeOK(w, out, nil)
}

func (s *Server) getGBDevice(w http.ResponseWriter, r *http.Request, c *call) error {
	g, err := s.gb()
	if err != nil {
		return err
	}
	d, err := s.gbVisible(r, c, g, r.PathValue("id"))
	if err != nil {
		return err
	}
	chs, err := s.gbChannels(r.Context())
	if err != nil {
		return err
	}
	return writeOK(w, g.show(d, chs), nil)
}

func (s *Server) createGBDevice(w http.ResponseWriter, r *http.Request, c *call) error {
	g, err := s.gb()
	if err != nil {
		return err
	}
	var in gbDeviceBody
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	c.audit.Detail = "gb28181 device " + truncate(in.ID, 64)
	if err := inScopeDepartment(c.p, in.Department); err != nil {
		return err
	}
	d, err := g.Devices.Create(r.Context(), device.Input{ID: in.ID, Name: in.Name, Department: in.Department, Password: in.Password})
	if err != nil {
		return err
	}
	if g.SIP != nil {
		g.SIP.Admitted(d.ID)
	}
	s.log.Info("gb28181 device created", "device", d.ID, "user", c.p.user.Username)
	w.Header().Set("Location", "/api/v1/gb28181/devices/"+d.ID)
	writeJSON(w, http.StatusCreated, g.show(d, nil))
	return nil
}

func (s *Server) updateGBDevice(w http.ResponseWriter, r *http.Request, c *call) error {
	g, err := s.gb()
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	c.audit.Detail = "gb28181 device " + truncate(id, 64)
	var in gbDeviceBody
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	if in.ID != "" && in.ID != id {
		return apierr.New(apierr.ErrInvalid, "the id in the body (%q) differs from the URL's (%q): a device cannot be renamed", truncate(in.ID, 64), truncate(id, 64))
	}
	if _, err := s.gbVisible(r, c, g, id); err != nil {
		return err
	}
	if err := inScopeDepartment(c.p, in.Department); err != nil {
		return err
	}
	d, err := g.Devices.Update(r.Context(), device.Input{ID: id, Name: in.Name, Department: in.Department, Password: in.Password})
	if err != nil {
		return err
	}
	if g.Updated != nil {
		if err := g.Updated(r.Context(), id); err != nil {
			return err
		}
	}
	chs, err := s.gbChannels(r.Context())
	if err != nil {
		return err
	}
	return writeOK(w, g.show(d, chs), nil)
}

func (s *Server) deleteGBDevice(w http.ResponseWriter, r *http.Request, c *call) error {
	g, err := s.gb()
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	c.audit.Detail = "gb28181 device " + truncate(id, 64)
	if _, err := s.gbVisible(r, c, g, id); err != nil {
		return err
	}
	if err := g.Devices.Delete(r.Context(), id); err != nil {
		return err
	}
	if g.SIP != nil {
		g.SIP.Forget(id)
	}
	return writeNoContent(w, nil)
}

// listGBRefused lists REGISTERs from unknown devices. They belong to no
// department yet: every admin, limited or not, may add them to theirs.
func (s *Server) listGBRefused(w http.ResponseWriter, r *http.Request, c *call) error {
	g, err := s.gb()
	if err != nil {
		return err
	}
	out := []sip.Refused{}
	if g.SIP != nil {
		out = append(out, g.SIP.RefusedList()...)
	}
	return writeOK(w, out, nil)
}
