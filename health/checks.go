package health

import (
	"context"
	"fmt"

	"github.com/vigil-vms/vigil/dispatch"
	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/diskfree"
)

// Pinger is the database (*sql.DB).
type Pinger interface {
	PingContext(ctx context.Context) error
}

// Database checks that the database answers a ping: failing otherwise, since
// nothing can log in or change without it.
func Database(db Pinger) ProbeFunc {
	return func(ctx context.Context) (Status, string) {
		if err := db.PingContext(ctx); err != nil {
			return Failing, "the database does not answer: " + err.Error()
		}
		return OK, "the database answers"
	}
}

// Checker is an object store that can tell whether it works: reachable,
// credentials accepted, bucket present. Its error is a sentence an operator
// understands (the recorder's S3 store says, for example, "bad credentials:
// the S3 server … rejected the secret key (storage.s3.secretKey)").
type Checker interface {
	Check(ctx context.Context) error
}

// Store checks the object store. A store that fails is degraded, not failing:
// the recorder keeps the video in the spool until the store returns.
func Store(s Checker, where string) ProbeFunc {
	return func(ctx context.Context) (Status, string) {
		if err := s.Check(ctx); err != nil {
			return Degraded, err.Error() + "; recordings wait in the spool"
		}
		return OK, where + " accepts recordings"
	}
}

// SpoolOptions describe the spool for the Spool probe.
type SpoolOptions struct {
	// Dir is the spool directory.
	Dir string
	// MaxBytes is recording.spoolMaxBytes: past it the oldest waiting
	// segments are dropped.
	MaxBytes int64
	// Used returns the bytes in the spool now.
	Used func() int64
	// High is the share of MaxBytes from which the spool is degraded. It
	// defaults to 0.9.
	High float64
}

// Spool checks the spool: degraded when it is filled past High (the store
// does not keep up, or is down) or when its disk has less room than the spool
// may still take; failing when it is full (segments are being dropped) or its
// disk is nearly full.
func Spool(o SpoolOptions) ProbeFunc {
	if o.High <= 0 || o.High > 1 {
		o.High = 0.9
	}
	return func(ctx context.Context) (Status, string) {
		used := o.Used()
		fill := fmt.Sprintf("the spool holds %s of %s (%.0f %%)", Size(used), Size(o.MaxBytes), 100*float64(used)/float64(o.MaxBytes))
		space, _, err := diskfree.Space(o.Dir)
		free := int64(space)
		switch {
		case used >= o.MaxBytes:
			return Failing, fill + ": full, the oldest waiting segments are dropped"
		case float64(used) >= o.High*float64(o.MaxBytes):
			return Degraded, fill + ": the store does not keep up"
		case err != nil:
			return Degraded, fill + "; its disk cannot be measured: " + err.Error()
		case free < 64<<20:
			return Failing, fmt.Sprintf("%s; its disk has only %s free", fill, Size(free))
		case free < o.MaxBytes-used:
			return Degraded, fmt.Sprintf("%s; its disk has only %s free, less than the spool may still take (%s)", fill, Size(free), Size(o.MaxBytes-used))
		}
		return OK, fmt.Sprintf("%s; %s free on its disk", fill, Size(free))
	}
}

// Size writes a byte count for people: "1.5 GiB".
func Size(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// CameraStatuses is the dispatcher: a camera's status as the API shows it.
type CameraStatuses interface {
	Status(ingest.Camera) dispatch.Status
}

// Cameras is a source with a check for every enabled camera and one for its
// sub-stream, when it has one: ok while online, degraded otherwise with the
// camera's own error, since the ingest's state change.
func Cameras(list func(ctx context.Context) ([]ingest.Camera, error), statuses CameraStatuses) Source {
	return func(ctx context.Context) []Check {
		cams, err := list(ctx)
		if err != nil {
			return []Check{{Name: "cameras", Status: Failing, Message: "the camera list cannot be read: " + err.Error()}}
		}
		var out []Check
		for _, cam := range cams {
			if !cam.Enabled {
				continue
			}
			st := statuses.Status(cam)
			name := "camera/" + cam.ID
			out = append(out, streamCheck(name, cam, "", st.StreamStatus))
			if cam.SubURL != "" && st.Sub != nil {
				out = append(out, streamCheck(name+"/sub", cam, "sub-stream ", *st.Sub))
			}
		}
		return out
	}
}

func streamCheck(name string, cam ingest.Camera, what string, st ingest.StreamStatus) Check {
	c := Check{Name: name, Since: st.Since, Camera: cam.ID, Department: cam.Department, Status: OK}
	label := fmt.Sprintf("camera %s (%s) %s", cam.ID, cam.Name, what)
	switch st.State {
	case ingest.StateOnline:
		c.Message = label + "online"
	case ingest.StateIdle: // a stream pulled on demand that nothing needs now: not a failure
		if what != "" {
			c.Message = label + "idle (pulled while watched)"
		} else {
			c.Message = label + "idle (played when needed)"
		}
		return c
	case ingest.StateConnecting:
		c.Status, c.Message = Degraded, label+"connecting"
	default:
		c.Status, c.Message = Degraded, label+string(st.State)
	}
	if st.State != ingest.StateOnline && st.LastError != "" {
		c.Message += ": " + ingest.RedactURL(st.LastError)
	}
	return c
}
