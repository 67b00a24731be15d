package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/vigil-vms/vigil/app"
	"github.com/vigil-vms/vigil/app/config"
	"github.com/vigil-vms/vigil/gb28181/device"
	"github.com/vigil-vms/vigil/gb28181/gbsim"
	"github.com/vigil-vms/vigil/internal/apierr"
	"github.com/vigil-vms/vigil/registry"
)

// The demo's simulated GB/T 28181 device: an NVR with two channels in a
// department of its own, registered with digest to the demo's SIP port.
const (
	demoGBDepartment = "gb28181-demo"
	demoGBDevice     = "44011300001180000001"
	demoGBPassword   = "demo-gb28181"
)

var demoGBChannels = []gbsim.Channel{
	{ID: "44011300001310000001", Name: "Demo PTZ dome (GB/T 28181)", PTZ: true},
	{ID: "44011300001310000002", Name: "Demo box camera (GB/T 28181)"},
}

// demoGB28181 turns GB/T 28181 on for the demo when the configuration has
// it off: SIP and media on free ports of 127.0.0.1.
func demoGB28181(cfg *config.Config) {
	if cfg.GB28181.Enabled {
		return
	}
	cfg.GB28181.Enabled = true
	cfg.GB28181.Listen = "127.0.0.1:0"
	cfg.GB28181.MediaPort = 0
}

// registerDemoDevice adds (or keeps) the demo department and device.
func registerDemoDevice(ctx context.Context, a *app.App) error {
	err := a.Registry.CreateDepartment(ctx, registry.Department{ID: demoGBDepartment,
		Name: registry.DepartmentName{ZH: "国标接入演示", EN: "GB/T 28181 demo"}})
	if err != nil && !errors.Is(err, apierr.ErrConflict) {
		return fmt.Errorf("demo department: %w", err)
	}
	devices := a.GB28181Devices()
	pw := demoGBPassword
	in := device.Input{ID: demoGBDevice, Name: "Demo NVR (simulated)", Department: demoGBDepartment, Password: &pw}
	if _, err := devices.Get(ctx, demoGBDevice); err == nil {
		_, err = devices.Update(ctx, in)
		return err
	}
	_, err = devices.Create(ctx, in)
	return err
}

// startDemoDevice starts the simulated device, registering to the demo's
// SIP port, and waits (at most demoGBWait) until its channels are cameras,
// so that the wall is complete when the demo prints its URL. The device
// stops when ctx ends.
func startDemoDevice(ctx context.Context, a *app.App, cfg config.Config, log *slog.Logger) error {
	udp, _ := a.GB28181Addr()
	d, err := gbsim.Start(ctx, gbsim.Config{
		ID: demoGBDevice, Password: demoGBPassword, Server: udp, ServerID: cfg.GB28181.ID,
		LocalIP: "127.0.0.1", Channels: demoGBChannels, Log: log,
	})
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, demoGBWait)
	defer cancel()
	select {
	case <-d.Registered():
	case <-wctx.Done():
		log.Warn("the demo's GB/T 28181 device has not registered yet", "after", demoGBWait)
		return nil
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		cams, err := a.Registry.DeviceCameras(wctx, demoGBDevice)
		if err == nil && len(cams) >= len(demoGBChannels) {
			return nil
		}
		select {
		case <-tick.C:
		case <-wctx.Done():
			log.Warn("the demo's GB/T 28181 channels are not cameras yet", "after", demoGBWait)
			return nil
		}
	}
}

// demoGBWait bounds the wait for the demo device's cameras at start.
const demoGBWait = 20 * time.Second
