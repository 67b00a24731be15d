package registry

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/vigil-vms/vigil/ingest"
)

// GB/T 28181 cameras are the channels of registered devices: their id is
// gb-<channel id>, they have no URL, and their device's catalog creates
// them (package dispatch, SyncChannels). What the device decides (the
// channel, its PTZ, its department, which is the device's) an admin cannot
// change; what Vigil decides (name, location, record, retention, enabled,
// tags) an admin can, and the catalog does not overwrite it.

// gbIDRE is the id of a GB/T 28181 camera: gb-<20-digit channel id>.
var gbIDRE = regexp.MustCompile(`^gb-[0-9]{20}$`)

// GBCameraID is the id of the camera that shows a GB/T 28181 channel.
func GBCameraID(channel string) string { return "gb-" + channel }

// validGBID tells a 20-digit GB/T 28181 code.
func validGBID(id string) bool {
	return len(id) == 20 && strings.Trim(id, "0123456789") == ""
}

// validateGB returns what is wrong with a camera whose source is gb28181.
func validateGB(c ingest.Camera) []FieldError {
	var errs []FieldError
	add := func(field, format string, a ...any) {
		errs = append(errs, FieldError{Field: field, Message: fmt.Sprintf(format, a...)})
	}
	if c.MainURL != "" {
		add("mainUrl", "must be empty for a gb28181 camera: its device sends the video")
	}
	if c.SubURL != "" {
		add("subUrl", "must be empty for a gb28181 camera: its device sends the video")
	}
	gb := c.GB28181
	if gb == nil {
		add("gb28181", "is required for a gb28181 camera: {\"device\",\"channel\"}")
		return errs
	}
	if !validGBID(gb.Device) {
		add("gb28181.device", "must be the device's 20-digit id")
	}
	if !validGBID(gb.Channel) {
		add("gb28181.channel", "must be the channel's 20-digit id")
	} else if c.ID != GBCameraID(gb.Channel) {
		add("id", "must be gb-<channel id> (%s) for a gb28181 camera", GBCameraID(gb.Channel))
	}
	return errs
}

// gbColumns is the gb28181 columns' values of c (zero for an RTSP camera).
func gbColumns(c ingest.Camera) ingest.GBChannel {
	if c.Source != ingest.SourceGB28181 || c.GB28181 == nil {
		return ingest.GBChannel{}
	}
	return *c.GB28181
}

// KeepGB applies an admin's edit c to the stored camera old as far as the
// source allows: a GB/T 28181 camera keeps its source, channel, PTZ flag,
// missing mark and department (c may omit source and gb28181, or repeat
// them); an RTSP camera cannot become a GB/T 28181 one. It returns a
// *ValidationError naming the fields that may not change.
func KeepGB(c *ingest.Camera, old ingest.Camera) error {
	src := c.Source
	if src == "" {
		src = ingest.SourceRTSP
		if old.Source == ingest.SourceGB28181 && c.GB28181 == nil {
			src = ingest.SourceGB28181 // omitted: kept
		}
	}
	var errs []FieldError
	if old.Source != ingest.SourceGB28181 {
		if src == ingest.SourceGB28181 {
			errs = append(errs, FieldError{Field: "source", Message: "an RTSP camera cannot become a gb28181 camera: those come from their device's catalog"})
		}
	} else {
		switch {
		case src != ingest.SourceGB28181:
			errs = append(errs, FieldError{Field: "source", Message: "the source of a gb28181 camera cannot change: it follows its device's catalog"})
		case c.GB28181 != nil && (c.GB28181.Device != old.GB28181.Device || c.GB28181.Channel != old.GB28181.Channel):
			errs = append(errs, FieldError{Field: "gb28181", Message: "the device and channel of a gb28181 camera cannot change: they follow its device's catalog"})
		}
		if c.Department != old.Department {
			errs = append(errs, FieldError{Field: "department", Message: "a gb28181 camera is in its device's department: change the device's department"})
		}
		if len(errs) == 0 {
			c.Source = ingest.SourceGB28181
			gb := *old.GB28181
			c.GB28181 = &gb
		}
	}
	if len(errs) > 0 {
		return &ValidationError{Errors: errs}
	}
	return nil
}

// DeviceCameras lists the cameras of one GB/T 28181 device's channels, by
// id, as stored.
func (r *Registry) DeviceCameras(ctx context.Context, device string) ([]ingest.Camera, error) {
	rows, err := r.db.Query(ctx, `SELECT `+cameraColumns+` FROM cameras WHERE gb_device = ? AND source = ? ORDER BY id`,
		device, ingest.SourceGB28181)
	if err != nil {
		return nil, fmt.Errorf("cameras of device %q: %w", device, err)
	}
	defer rows.Close()
	out := []ingest.Camera{}
	for rows.Next() {
		c, err := scanCamera(rows)
		if err != nil {
			return nil, fmt.Errorf("cameras of device %q: %w", device, err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cameras of device %q: %w", device, err)
	}
	return out, nil
}
