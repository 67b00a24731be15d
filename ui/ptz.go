package ui

import (
	"context"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/apierr"
)

// PTZ (POST /api/v1/cameras/{id}/ptz {"pan","tilt","zoom"}, each a speed in
// −1…1, all 0 stops) moves a GB/T 28181 camera whose catalog says it can.
//
// A move is a speed, not a position: the device keeps moving until it is
// told to stop. So that a camera does not turn for ever when the client that
// moves it goes away (a closed tab, a lost network, a crashed script), a
// move holds for PTZHold only: a client keeps a movement going by repeating
// it (the web app repeats it every 400 ms while a key or button is held, and
// sends a stop on release), and when no command for the camera came within
// PTZHold after a move, Vigil sends the stop itself (per camera, whoever
// moved it). A repeat of the movement under way is not sent to the device
// again; it only extends the hold.
//
// Commands of one camera go to the device one at a time, in the order they
// came, so that a stop never overtakes the move it ends. The audit log gets
// one row per movement started or changed (with its speeds); repeats and
// stops that succeed write none, a refused or failed command always does.

// PTZHold is how long a camera keeps a movement without a new command.
const PTZHold = time.Second

// ptzSendTimeout bounds one command to the device.
const ptzSendTimeout = 5 * time.Second

// ptzStopTries is how often the automatic stop is tried before Vigil gives
// up (and logs it), PTZHold apart.
const ptzStopTries = 3

// ptzMove is a movement: speeds in −1…1; the zero value is "stopped".
type ptzMove struct{ pan, tilt, zoom float64 }

func (m ptzMove) moving() bool { return m != ptzMove{} }

func (m ptzMove) String() string {
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', 3, 64) }
	return "pan " + f(m.pan) + " tilt " + f(m.tilt) + " zoom " + f(m.zoom)
}

// ptzSend sends one command to a camera's device (GB28181.PTZ).
type ptzSend func(ctx context.Context, cam ingest.Camera, pan, tilt, zoom float64) error

// ptzControl is the movements under way, per camera. Its zero value is
// ready; hold defaults to PTZHold.
type ptzControl struct {
	hold time.Duration

	mu   sync.Mutex
	cams map[string]*ptzCamera
}

// ptzCamera is one camera's movement. turn is held (one element in it)
// while a command is decided and sent; the fields below are guarded by it.
type ptzCamera struct {
	turn  chan struct{}
	move  ptzMove     // what the device was last told, zero when stopped
	seq   uint64      // counts commands, so that a stale automatic stop does nothing
	timer *time.Timer // the automatic stop of the current movement
}

func (pc *ptzControl) camera(id string) *ptzCamera {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.cams == nil {
		pc.cams = map[string]*ptzCamera{}
	}
	c := pc.cams[id]
	if c == nil {
		c = &ptzCamera{turn: make(chan struct{}, 1)}
		pc.cams[id] = c
	}
	return c
}

func (pc *ptzControl) holdTime() time.Duration {
	if pc.hold > 0 {
		return pc.hold
	}
	return PTZHold
}

// command sends m to cam's device unless it is the movement under way, and
// (re)arms the automatic stop of a movement. It tells whether m started or
// changed a movement (for the audit log).
func (pc *ptzControl) command(ctx context.Context, cam ingest.Camera, m ptzMove, send ptzSend, log *slog.Logger) (started bool, err error) {
	if !m.moving() {
		// A stop is sent even when the client goes away meanwhile (every
		// send is bounded: the wait for the turn is too).
		ctx = context.WithoutCancel(ctx)
	}
	c := pc.camera(cam.ID)
	select {
	case c.turn <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	defer func() { <-c.turn }()
	c.seq++
	if c.timer != nil {
		c.timer.Stop()
	}
	if m.moving() && m == c.move {
		pc.arm(c, cam, send, log, 1)
		return false, nil
	}
	sctx, cancel := context.WithTimeout(ctx, ptzSendTimeout)
	defer cancel()
	if err := send(sctx, cam, m.pan, m.tilt, m.zoom); err != nil {
		// What the device does now is not known: a movement it may still
		// make stops as it would have.
		if c.move.moving() {
			pc.arm(c, cam, send, log, 1)
		}
		return false, err
	}
	c.move = m
	if m.moving() {
		pc.arm(c, cam, send, log, 1)
	}
	return m.moving(), nil
}

// arm starts the automatic stop of c's movement, try being its attempt.
// The caller holds c.turn.
func (pc *ptzControl) arm(c *ptzCamera, cam ingest.Camera, send ptzSend, log *slog.Logger, try int) {
	seq := c.seq
	c.timer = time.AfterFunc(pc.holdTime(), func() { pc.expire(c, cam, send, log, seq, try) })
}

// expire stops c's movement when no command came since the one numbered seq.
func (pc *ptzControl) expire(c *ptzCamera, cam ingest.Camera, send ptzSend, log *slog.Logger, seq uint64, try int) {
	c.turn <- struct{}{}
	defer func() { <-c.turn }()
	if c.seq != seq || !c.move.moving() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), ptzSendTimeout)
	defer cancel()
	if err := send(ctx, cam, 0, 0, 0); err != nil {
		if try < ptzStopTries {
			log.Warn("ptz: the automatic stop failed; trying again", "camera", cam.ID, "try", try, "error", err)
			pc.arm(c, cam, send, log, try+1)
			return
		}
		log.Error("ptz: the automatic stop failed; the camera may still be moving", "camera", cam.ID, "tries", try, "error", err)
		c.move = ptzMove{}
		return
	}
	log.Info("ptz: stopped, no command came in time", "camera", cam.ID, "hold", pc.holdTime())
	c.move = ptzMove{}
}

type ptzBody struct {
	Pan  float64 `json:"pan"`
	Tilt float64 `json:"tilt"`
	Zoom float64 `json:"zoom"`
}

// ptzCommand answers POST /api/v1/cameras/{id}/ptz: 204 once the device
// took the command.
func (s *Server) ptzCommand(w http.ResponseWriter, r *http.Request, c *call) error {
	cam, err := s.camera(r, c, actPTZ)
	if err != nil {
		return err
	}
	var in ptzBody
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	for _, v := range []struct {
		name  string
		speed float64
	}{{"pan", in.Pan}, {"tilt", in.Tilt}, {"zoom", in.Zoom}} {
		if math.IsNaN(v.speed) || v.speed < -1 || v.speed > 1 {
			return apierr.New(apierr.ErrInvalid, "%s must be a speed from -1 to 1 (0 stops), not %v", v.name, v.speed)
		}
	}
	m := ptzMove{pan: in.Pan, tilt: in.Tilt, zoom: in.Zoom}
	c.audit.Detail = m.String()
	if !cam.Pushed() || cam.GB28181 == nil || !cam.GB28181.PTZ {
		return apierr.New(apierr.ErrNotFound, "camera %q has no PTZ control", cam.ID)
	}
	if s.deps.GB28181 == nil || s.deps.GB28181.PTZ == nil {
		return apierr.New(apierr.ErrUnavailable, "PTZ control is not available in this server")
	}
	started, err := s.ptz.command(r.Context(), cam, m, s.deps.GB28181.PTZ, s.log)
	if err != nil {
		if statusOf(err) != http.StatusInternalServerError {
			return err
		}
		return errStatus(http.StatusBadGateway, "the device did not take the PTZ command: %s", err.Error())
	}
	if !started {
		c.audit = nil // a stop, or a repeat of the movement under way
	}
	return writeNoContent(w, nil)
}
