package app

import (
	"context"

	"github.com/vigil-vms/vigil/gb28181/alarm"
	"github.com/vigil-vms/vigil/gb28181/manscdp"
	"github.com/vigil-vms/vigil/gb28181/sip"
	"github.com/vigil-vms/vigil/gb28181/watch"
	"github.com/vigil-vms/vigil/ui"
)

// gbEvents is what the GB/T 28181 side tells the people who run Vigil:
// device alarms (on the cameras' timelines and as `alarm` alerts) and the
// device watch (a health check per device, device.offline/device.online).
type gbEvents struct {
	alarms *alarm.Store
	watch  *watch.Watcher
}

// buildGBEvents opens the alarm store and the device watch over the device
// table and the SIP server, when GB/T 28181 is on. It runs after
// buildGB28181 and adds its hooks after those already set on the SIP
// server (the gateway's), calling both.
func (a *App) buildGBEvents(ctx context.Context) error {
	if a.gb == nil || a.gb.sip == nil || a.gb.devices == nil {
		return nil
	}
	log := a.log.With("part", "gb28181")
	alarms, err := alarm.Open(ctx, a.db, alarm.Options{Cameras: a.Registry.Cameras, Alerts: a.Alerts, Log: log})
	if err != nil {
		return err
	}
	w, err := watch.New(ctx, a.db, watch.Options{Devices: a.gb.devices, States: a.gb.sip, Alerts: a.Alerts,
		OfflineAfter: a.cfg.Alerts.OfflineAfter.D(), Log: log})
	if err != nil {
		return err
	}
	a.gbEvents = &gbEvents{alarms: alarms, watch: w}
	s := a.gb.sip
	prevState, prevAlarm := s.OnState, s.OnAlarm
	s.OnState = func(id string, st sip.State) {
		if prevState != nil {
			prevState(id, st)
		}
		w.OnState(id, st)
	}
	s.OnAlarm = func(id string, n *manscdp.Notify) {
		if prevAlarm != nil {
			prevAlarm(id, n)
		}
		alarms.OnAlarm(id, n)
	}
	a.Health.AddSource(w.Checks)
	return nil
}

// gbUI adds the alarms to the UI's GB/T 28181 side (nil when it is off).
func (a *App) gbUI(g *ui.GB28181) *ui.GB28181 {
	if g != nil && a.gbEvents != nil {
		g.Alarms = a.gbEvents.alarms.Events
	}
	return g
}

// runGBEvents sends the device alerts until ctx ends.
func (a *App) runGBEvents(ctx context.Context) error {
	if a.gbEvents == nil {
		<-ctx.Done()
		return nil
	}
	return a.gbEvents.watch.Run(ctx)
}
