package app

import (
	"context"
	"fmt"
	"net"

	"github.com/vigil-vms/vigil/gb28181/device"
	"github.com/vigil-vms/vigil/gb28181/sip"
	"github.com/vigil-vms/vigil/ui"
)

// gbPart is the GB/T 28181 side: the device table and the SIP server,
// whose listeners New binds and Run serves.
type gbPart struct {
	devices *device.Store
	sip     *sip.Server
	udp     net.PacketConn
	tcp     net.Listener
}

func (g *gbPart) close() {
	if g.udp != nil {
		g.udp.Close()
	}
	if g.tcp != nil {
		g.tcp.Close()
	}
}

// buildGB28181 opens the device table (encrypting passwords with key, the
// camera passwords' key) and binds gb28181.listen over UDP and TCP, when
// gb28181.enabled.
func (a *App) buildGB28181(ctx context.Context, key []byte) error {
	c := a.cfg.GB28181
	if !c.Enabled {
		return nil
	}
	devices, err := device.Open(ctx, a.db, key)
	if err != nil {
		return err
	}
	g := &gbPart{devices: devices}
	a.gb = g
	g.sip = &sip.Server{
		Realm:    c.Realm,
		ID:       c.ID,
		Password: c.Password,
		Lookup: func(id string) (string, bool, error) {
			return devices.Password(context.Background(), id)
		},
		Log: a.log.With("part", "gb28181"),
	}
	if g.udp, err = net.ListenPacket("udp", c.Listen); err != nil {
		return fmt.Errorf("gb28181.listen %s: %w", c.Listen, err)
	}
	if g.tcp, err = net.Listen("tcp", c.Listen); err != nil {
		return fmt.Errorf("gb28181.listen %s: %w", c.Listen, err)
	}
	return nil
}

func (a *App) gbDeps() *ui.GB28181 {
	if a.gb == nil {
		return nil
	}
	return &ui.GB28181{Devices: a.gb.devices, SIP: a.gb.sip}
}

// GB28181Addr returns the bound SIP address (UDP; TCP is on the same
// port when gb28181.listen names one), or "" when GB/T 28181 is off.
func (a *App) GB28181Addr() (udp, tcp string) {
	if a.gb == nil {
		return "", ""
	}
	return a.gb.udp.LocalAddr().String(), a.gb.tcp.Addr().String()
}
