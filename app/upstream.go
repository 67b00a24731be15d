package app

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/vigil-vms/vigil/alerts"
	"github.com/vigil-vms/vigil/gb28181/manscdp"
	"github.com/vigil-vms/vigil/gb28181/replay"
	"github.com/vigil-vms/vigil/gb28181/upstream"
	"github.com/vigil-vms/vigil/health"
	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/recorder/archive"
	"github.com/vigil-vms/vigil/ui"
)

// upPart is Vigil as a lower platform of the gb28181.upstream platforms:
// the service and its SIP sockets (its own, on the host of gb28181.listen
// with a port of the system's choice; the upper platforms answer to the
// REGISTER's source and Contact).
type upPart struct {
	svc *upstream.Service
	udp net.PacketConn
	tcp net.Listener
}

func (u *upPart) close() {
	if u.udp != nil {
		u.udp.Close()
	}
	if u.tcp != nil {
		u.tcp.Close()
	}
}

// buildUpstream builds the upward registration when gb28181 is enabled
// and upper platforms are configured; the alerts and health checks must be
// built.
func (a *App) buildUpstream(ctx context.Context) error {
	c := a.cfg.GB28181
	if !c.Enabled || len(c.Upstream) == 0 {
		return nil
	}
	channels, err := upstream.OpenChannels(ctx, a.db, c.Realm)
	if err != nil {
		return err
	}
	u := &upPart{}
	a.up = u
	host, _, _ := net.SplitHostPort(c.Listen)
	if u.udp, err = net.ListenPacket("udp", net.JoinHostPort(host, "0")); err != nil {
		return fmt.Errorf("gb28181 upstream: listen udp: %w", err)
	}
	port := u.udp.LocalAddr().(*net.UDPAddr).Port
	if u.tcp, err = net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port))); err != nil {
		if u.tcp, err = net.Listen("tcp", net.JoinHostPort(host, "0")); err != nil {
			return fmt.Errorf("gb28181 upstream: listen tcp: %w", err)
		}
	}
	var plats []upstream.Config
	for _, p := range c.Upstream {
		plats = append(plats, upstream.Config{ID: p.ID, Realm: p.Realm, Address: p.Address, Transport: p.Transport,
			LocalID: p.LocalID, Password: p.Password, Expires: time.Duration(p.Expires) * time.Second,
			Keepalive: p.Keepalive.D(), Departments: p.Departments})
	}
	u.svc = &upstream.Service{
		ID: c.ID, Realm: c.Realm, Platforms: plats, Channels: channels,
		Cameras: a.Registry.Cameras,
		DepartmentName: func(ctx context.Context, id string) string {
			if d, err := a.Registry.Department(ctx, id); err == nil && d.Name.ZH != "" {
				return d.Name.ZH
			}
			return id
		},
		Online: func(id string) bool {
			st, ok := a.Fleet.Status(id)
			return ok && (st.State == ingest.StateOnline || st.State == ingest.StateIdle)
		},
		Stream: func(id string) *ingest.Stream { return a.Fleet.Stream(id, ingest.Main) },
		Recordings: func(ctx context.Context, camera string, depts []string, start, end time.Time) ([]upstream.Recording, error) {
			segs, err := a.Index.Segments(archive.WithDepartments(ctx, depts), camera, start, end, false)
			out := make([]upstream.Recording, 0, len(segs))
			for _, sg := range segs {
				out = append(out, upstream.Recording{Start: sg.Start, End: sg.End, Bytes: sg.Bytes})
			}
			return out, err
		},
		Replay:  replay.New(a.Review),
		Audit:   a.Registry.Audit,
		MediaIP: c.MediaIP,
		OnEvent: func(e upstream.Event) {
			ev := alerts.Event{Event: alerts.UpstreamRecovered, Time: e.Time.UTC(), Message: e.Message}
			if e.Failing {
				ev.Event = alerts.UpstreamFailing
			}
			if err := a.Alerts.Publish(context.Background(), ev); err != nil {
				a.log.Error("alert", "event", ev.Event, "error", err)
			}
		},
		Log: a.log.With("part", "gb28181-upstream"),
	}
	if a.gb != nil && a.gb.gateway != nil {
		u.svc.PTZ = a.gb.gateway.PTZ
	}
	if a.gb != nil && a.gb.sip != nil {
		// device alarms go upward too, to the platforms that see the camera
		local := a.gb.sip.OnAlarm
		a.gb.sip.OnAlarm = func(device string, n *manscdp.Notify) {
			if local != nil {
				local(device, n)
			}
			u.svc.ForwardAlarm(device, n)
		}
	}
	a.Health.AddSource(upstreamChecks(u.svc))
	return nil
}

// upstreamChecks is one health check per upper platform: ok while
// registered, failing otherwise.
func upstreamChecks(svc *upstream.Service) health.Source {
	return func(context.Context) []health.Check {
		var out []health.Check
		for _, st := range svc.Statuses() {
			c := health.Check{Name: "upstream/" + st.ID, Status: health.OK, Since: st.Since,
				Message: fmt.Sprintf("registered to %s; %d live views", st.Address, st.Viewers)}
			if st.State != upstream.StateRegistered {
				c.Status, c.Message = health.Failing, fmt.Sprintf("not registered to %s: %s", st.Address, st.LastError)
			}
			out = append(out, c)
		}
		return out
	}
}

// withUpstream adds the upper platforms' state to the GB/T 28181 side of
// the API.
func (a *App) withUpstream(g *ui.GB28181) *ui.GB28181 {
	if g != nil && a.up != nil {
		g.Upstream = a.up.svc.Statuses
	}
	return g
}

// UpstreamStatuses is the state of each upper platform (nil without any).
func (a *App) UpstreamStatuses() []upstream.Status {
	if a.up == nil {
		return nil
	}
	return a.up.svc.Statuses()
}
