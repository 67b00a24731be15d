package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"

	"golang.org/x/sync/errgroup"

	"github.com/vigil-vms/vigil/dispatch"
	"github.com/vigil-vms/vigil/gb28181/alarm"
	"github.com/vigil-vms/vigil/gb28181/device"
	"github.com/vigil-vms/vigil/gb28181/gateway"
	"github.com/vigil-vms/vigil/gb28181/media"
	"github.com/vigil-vms/vigil/gb28181/sip"
	"github.com/vigil-vms/vigil/gb28181/watch"
	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/ui"
)

// gbPart is the GB/T 28181 side: the device table, the SIP server, the
// media server, the gateway that plays GB/T 28181 cameras for the ingest,
// the devices' alarms and their health. New binds the listeners; Run
// serves them.
type gbPart struct {
	devices *device.Store
	sip     *sip.Server
	media   *media.Server
	gateway *gateway.Gateway
	alarms  *alarm.Store
	watch   *watch.Watcher
	udp     net.PacketConn // SIP
	tcp     net.Listener
	mudp    net.PacketConn // media
	mtcp    net.Listener
}

func (g *gbPart) close() {
	if g.udp != nil {
		g.udp.Close()
	}
	if g.tcp != nil {
		g.tcp.Close()
	}
	if g.mudp != nil {
		g.mudp.Close()
	}
	if g.mtcp != nil {
		g.mtcp.Close()
	}
}

// gbSources is the ingest's sources of pushed cameras: the GB/T 28181
// gateway (filled in by buildGB28181) when gb28181.enabled.
func (a *App) gbSources() map[string]ingest.Source {
	if !a.cfg.GB28181.Enabled {
		return nil
	}
	a.gb = &gbPart{gateway: &gateway.Gateway{}}
	return map[string]ingest.Source{ingest.SourceGB28181: a.gb.gateway}
}

// buildGB28181 opens the device table (encrypting passwords with key, the
// camera passwords' key), binds gb28181.listen (SIP) and gb28181.mediaPort
// (media) over UDP and TCP, and wires the gateway, when gb28181.enabled.
func (a *App) buildGB28181(ctx context.Context, key []byte) error {
	c := a.cfg.GB28181
	if !c.Enabled || a.gb == nil {
		return nil
	}
	g := a.gb
	devices, err := device.Open(ctx, a.db, key)
	if err != nil {
		return err
	}
	g.devices = devices
	log := a.log.With("part", "gb28181")
	g.sip = &sip.Server{
		Realm:    c.Realm,
		ID:       c.ID,
		Password: c.Password,
		Lookup: func(id string) (string, bool, error) {
			return devices.Password(context.Background(), id)
		},
		Log: log,
	}
	if g.udp, err = net.ListenPacket("udp", c.Listen); err != nil {
		return fmt.Errorf("gb28181.listen %s: %w", c.Listen, err)
	}
	if g.tcp, err = net.Listen("tcp", c.Listen); err != nil {
		return fmt.Errorf("gb28181.listen %s: %w", c.Listen, err)
	}
	host, _, _ := net.SplitHostPort(c.Listen)
	if g.mudp, g.mtcp, err = listenMedia(host, c.MediaPort); err != nil {
		return err
	}
	g.media = &media.Server{Log: log.With("side", "media")}
	a.Cameras.SetGB(dispatch.GBOptions{Store: a.Registry, Log: log})
	gw := g.gateway
	gw.SIP, gw.Media, gw.Devices, gw.Cameras = g.sip, g.media, devices, a.Cameras
	gw.Realm, gw.MediaIP, gw.Log = c.Realm, c.MediaIP, log
	gw.MediaPort = g.mudp.LocalAddr().(*net.UDPAddr).Port
	if g.alarms, err = alarm.Open(ctx, a.db, alarm.Options{Cameras: a.Registry.Cameras, Alerts: a.Alerts,
		Log: log.With("side", "alarm")}); err != nil {
		return err
	}
	if g.watch, err = watch.New(ctx, a.db, watch.Options{Devices: devices, States: g.sip, Alerts: a.Alerts,
		OfflineAfter: a.cfg.Alerts.OfflineAfter.D(), Log: log.With("side", "watch")}); err != nil {
		return err
	}
	a.Health.AddSource(g.watch.Checks)
	g.sip.OnCatalog = gw.OnCatalog
	g.sip.OnAlarm = g.alarms.OnAlarm
	g.sip.OnState = func(id string, st sip.State) {
		gw.OnState(id, st)
		g.watch.OnState(id, st)
	}
	return nil
}

// listenMedia binds the media port over UDP and TCP (the same number on
// both: the SDP names one port). Port 0 picks a free one.
func listenMedia(host string, port int) (net.PacketConn, net.Listener, error) {
	var lastErr error
	for range 20 {
		addr := net.JoinHostPort(host, strconv.Itoa(port))
		u, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("gb28181.mediaPort %s (UDP): %w", addr, err)
		}
		p := u.LocalAddr().(*net.UDPAddr).Port
		t, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err == nil {
			return u, t, nil
		}
		u.Close()
		lastErr = err
		if port != 0 {
			break
		}
	}
	return nil, nil, fmt.Errorf("gb28181.mediaPort %d (TCP): %w", port, lastErr)
}

// run serves SIP, media and the gateway until ctx ends. App.Run stops it
// after the ingest, so that the ingest's sessions hang up over SIP.
func (g *gbPart) run(ctx context.Context) error {
	eg, ectx := errgroup.WithContext(ctx)
	eg.Go(func() error { return g.sip.Serve(ectx, g.udp, g.tcp) })
	eg.Go(func() error {
		err := g.media.Serve(ectx, g.mudp, g.mtcp)
		if errors.Is(err, context.Canceled) {
			return nil
		}
		return err
	})
	eg.Go(func() error { return g.gateway.Run(ectx) })
	eg.Go(func() error { return g.watch.Run(ectx) })
	return eg.Wait()
}

// gbState is the SIP server's state as the API reads it; deleting a device
// also disables its cameras.
type gbState struct {
	*sip.Server
	gw *gateway.Gateway
}

func (s gbState) Forget(id string) {
	s.Server.Forget(id)
	if err := s.gw.DeviceDeleted(context.Background(), id); err != nil {
		s.gw.Log.Warn("gb28181: disable the cameras of a deleted device", "device", id, "error", err)
	}
}

func (a *App) gbDeps() *ui.GB28181 {
	if a.gb == nil || a.gb.devices == nil {
		return nil
	}
	return &ui.GB28181{Devices: a.gb.devices, SIP: gbState{a.gb.sip, a.gb.gateway},
		PTZ: a.gb.gateway.PTZ, Alarms: a.gb.alarms.Events, Updated: a.gb.gateway.DeviceUpdated}
}

// GB28181Addr returns the bound SIP address (UDP; TCP is on the same
// port when gb28181.listen names one), or "" when GB/T 28181 is off.
func (a *App) GB28181Addr() (udp, tcp string) {
	if a.gb == nil || a.gb.udp == nil {
		return "", ""
	}
	return a.gb.udp.LocalAddr().String(), a.gb.tcp.Addr().String()
}

// GB28181MediaAddr returns the bound media address (UDP and TCP share its
// port), or "" when GB/T 28181 is off.
func (a *App) GB28181MediaAddr() string {
	if a.gb == nil || a.gb.mudp == nil {
		return ""
	}
	return a.gb.mudp.LocalAddr().String()
}

// GB28181Devices is the device table, or nil when GB/T 28181 is off (the
// demo adds its simulated device through it).
func (a *App) GB28181Devices() *device.Store {
	if a.gb == nil {
		return nil
	}
	return a.gb.devices
}
