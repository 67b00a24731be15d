package upstream

import (
	"slices"

	"github.com/vigil-vms/vigil/gb28181/manscdp"
	"github.com/vigil-vms/vigil/ingest"
)

// ForwardAlarm sends a GB/T 28181 device's alarm (as the devices' SIP
// server received it) to every registered upper platform that sees the
// alarmed channel's camera, as an Alarm Notify MESSAGE naming the channel.
// It returns at once; the MESSAGEs go from goroutines of the service.
func (s *Service) ForwardAlarm(deviceID string, n *manscdp.Notify) {
	s.mu.Lock()
	ctx := s.ctx
	s.mu.Unlock()
	if ctx == nil || ctx.Err() != nil || n == nil {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		cams, err := s.Cameras(ctx)
		if err != nil {
			s.Log.Error("gb28181 upstream: alarm", "device", deviceID, "error", err)
			return
		}
		i := slices.IndexFunc(cams, func(c ingest.Camera) bool {
			return c.Source == ingest.SourceGB28181 && c.GB28181 != nil && c.GB28181.Device == deviceID && c.GB28181.Channel == n.DeviceID
		})
		if i < 0 {
			return // the device's own alarm, or a channel without a camera
		}
		cam := cams[i]
		s.mu.Lock()
		var to []*platform
		for _, p := range s.plats {
			if p.registered && slices.Contains(p.cfg.Departments, cam.Department) && cam.Enabled {
				to = append(to, p)
			}
		}
		s.mu.Unlock()
		for _, p := range to {
			m := *n
			m.SN = s.nextSN()
			s.send(ctx, p, &m, manscdp.GB2312)
			s.Log.Info("gb28181 upstream: alarm forwarded", "platform", p.cfg.ID, "camera", cam.ID, "channel", n.DeviceID)
		}
	}()
}
