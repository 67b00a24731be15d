package gateway

import (
	"context"
	"fmt"

	"github.com/vigil-vms/vigil/gb28181/manscdp"
	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/apierr"
)

// PTZ moves a camera (ui.GB28181.PTZ): pan, tilt and zoom are speeds from
// -1 to 1 (all 0 stops), sent as a PTZCmd DeviceControl MESSAGE to the
// camera's channel. A camera without PTZ is not found (404); the SIP
// side's *sip.RequestError says why a device did not take the command
// (offline, no answer, refused with its code).
func (g *Gateway) PTZ(ctx context.Context, cam ingest.Camera, pan, tilt, zoom float64) error {
	if !cam.Pushed() || cam.GB28181 == nil || !cam.GB28181.PTZ {
		return apierr.New(apierr.ErrNotFound, "camera %q has no PTZ control", cam.ID)
	}
	cmd, err := manscdp.NewPTZCmd(pan, tilt, zoom)
	if err != nil {
		return fmt.Errorf("camera %s: %w", cam.ID, err)
	}
	return g.SIP.PTZ(ctx, cam.GB28181.Device, cam.GB28181.Channel, cmd)
}
