package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-vms/vigil/gb28181/media"
	"github.com/vigil-vms/vigil/gb28181/ps"
	"github.com/vigil-vms/vigil/gb28181/sip"
	"github.com/vigil-vms/vigil/ingest"
)

// byeTimeout bounds the BYE at the end of a session.
const byeTimeout = 3 * time.Second

// session is one invited stream.
type session struct {
	cam     ingest.Camera
	call    *sip.Call
	rcv     *media.Receiver
	release func()
	w       *unitWriter
	ctx     context.Context
	cancel  context.CancelCauseFunc
}

// Play runs one session of a GB/T 28181 camera's stream (ingest.Source):
// it invites the channel, trying the transports in turn (see the package
// doc), writes the video into sink until ctx ends (then it hangs up and
// returns nil), the device hangs up or goes offline, or the stream fails.
func (g *Gateway) Play(ctx context.Context, cam ingest.Camera, kind ingest.StreamKind, sink *ingest.Sink) error {
	if kind != ingest.Main {
		return fmt.Errorf("a gb28181 camera has one stream; %s has no %s stream", cam.ID, kind)
	}
	if cam.GB28181 == nil {
		return fmt.Errorf("camera %s is not a gb28181 camera", cam.ID)
	}
	dev, err := g.Devices.Get(ctx, cam.GB28181.Device)
	if err != nil {
		return fmt.Errorf("gb28181 device %s of camera %s: %w", cam.GB28181.Device, cam.ID, err)
	}
	w := &unitWriter{sink: sink, cam: cam.ID, g: g}
	perr := &PlayError{Camera: cam.ID}
	for _, transport := range order(dev.Transport) {
		start := time.Now()
		s, err := g.attempt(ctx, cam, transport, w)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			ae := classify(transport, err)
			perr.Attempts = append(perr.Attempts, ae)
			g.log().Warn("gb28181 INVITE attempt failed", "camera", cam.ID, "device", cam.GB28181.Device,
				"transport", transport, "cause", string(ae.Cause), "code", ae.Code, "after", time.Since(start), "error", err)
			if ae.Cause == CauseOffline {
				break // no other transport reaches an unregistered device
			}
			continue
		}
		if transport != dev.Transport {
			if err := g.Devices.SetTransport(context.WithoutCancel(ctx), dev.ID, transport); err != nil {
				g.log().Warn("gb28181: remember the media transport", "device", dev.ID, "error", err)
			}
		}
		if len(perr.Attempts) > 0 {
			g.log().Info("gb28181 stream started after falling back", "camera", cam.ID, "transport", transport, "failed", perr.Error())
		}
		return g.run(ctx, s)
	}
	return perr
}

// attempt invites the camera's channel over one transport and waits for
// its first video unit, within AttemptTimeout.
func (g *Gateway) attempt(ctx context.Context, cam ingest.Camera, transport string, w *unitWriter) (_ *session, err error) {
	actx, cancel := context.WithTimeout(ctx, g.attemptTimeout())
	defer cancel()
	ch := cam.GB28181
	host := g.SIP.DeviceHost(ch.Device)
	ssrcText, ssrc, release, err := g.allocSSRC()
	if err != nil {
		return nil, err
	}
	w.reset()
	rcv, err := g.Media.ExpectUnits(ssrc, host, transport, w.unit)
	if err != nil {
		release()
		return nil, err
	}
	var call *sip.Call
	defer func() {
		if err != nil {
			if call != nil {
				g.byeLater(call, cam.ID)
			}
			rcv.Close()
			release()
		}
	}()
	call, err = g.SIP.Invite(actx, sip.InviteRequest{Device: ch.Device, Channel: ch.Channel, SSRC: ssrcText,
		Transport: transport, MediaIP: g.mediaIP(host), MediaPort: g.MediaPort})
	if err != nil {
		return nil, err
	}
	if other := g.answerSSRC(call, ssrcText, host, transport, cam.ID, w.unit); other != nil {
		rcv.Close()
		rcv = other
	}
	if transport == media.TransportTCPActive {
		ans := call.Answer()
		addr := net.JoinHostPort(ans.IP, strconv.Itoa(ans.Port))
		if err := rcv.Dial(actx, addr); err != nil {
			return nil, fmt.Errorf("%w: the device answered the INVITE, but %w", errConnect, err)
		}
	}
	if err := rcv.WaitStart(actx); err != nil {
		return nil, err
	}
	// first RTP: ask for a key frame so that the first picture comes fast
	g.bg.Go(func() {
		kctx, kcancel := context.WithTimeout(context.WithoutCancel(ctx), byeTimeout)
		defer kcancel()
		if err := g.SIP.KeyFrame(kctx, ch.Device, ch.Channel); err != nil {
			g.log().Debug("gb28181 key frame request", "camera", cam.ID, "error", err)
		}
	})
	if err := g.waitVideo(actx, rcv, w); err != nil {
		return nil, err
	}
	sctx, scancel := context.WithCancelCause(ctx)
	s := &session{cam: cam, call: call, rcv: rcv, release: release, w: w, ctx: sctx, cancel: scancel}
	g.track(s, true)
	return s, nil
}

// answerSSRC returns a receiver for the SSRC the device's answer names
// when it is not the one offered (some devices send with an SSRC of their
// own and say so in the answer's y=), or nil to keep the offered one.
func (g *Gateway) answerSSRC(call *sip.Call, offered, host, transport, camera string, onUnit func(*ps.Unit)) *media.Receiver {
	ans := call.Answer().SSRC
	if ans == "" || ans == offered {
		return nil
	}
	n, err := strconv.ParseUint(ans, 10, 32)
	if err != nil {
		return nil
	}
	rcv, err := g.Media.ExpectUnits(uint32(n), host, transport, onUnit)
	if err != nil {
		g.log().Info("gb28181: the device answered with another SSRC, which cannot be used", "camera", camera, "offered", offered, "answered", ans, "error", err)
		return nil
	}
	g.log().Info("gb28181: the device answered with its own SSRC; using it", "camera", camera, "offered", offered, "answered", ans)
	return rcv
}

// waitVideo waits for the first video unit after the first RTP packet; a
// demuxer's complaint (no PSM, unknown codec) names the cause when none
// comes in time.
func (g *Gateway) waitVideo(ctx context.Context, rcv *media.Receiver, w *unitWriter) error {
	var last error
	for {
		select {
		case <-w.videoCh:
			return nil
		case err := <-rcv.Err():
			var me *media.MediaError
			if errors.As(err, &me) && (me.Kind == media.MediaClosed || me.Kind == media.MediaStopped) {
				return err
			}
			last = err
		case <-ctx.Done():
			if last != nil {
				return last
			}
			return fmt.Errorf("%w: RTP arrived over %s, but no video could be read from it in %v (%d packets, %d bytes)",
				errNoVideo, rcv.Transport(), g.attemptTimeout(), rcv.Stats().Packets, rcv.Stats().Bytes)
		}
	}
}

// run forwards the session's stream until it ends.
func (g *Gateway) run(ctx context.Context, s *session) error {
	defer func() {
		g.track(s, false)
		s.rcv.Close()
		s.release()
	}()
	for {
		select {
		case <-s.ctx.Done():
			cause := context.Cause(s.ctx)
			g.bye(s.call, s.cam.ID)
			if ctx.Err() != nil {
				return nil // the ingest needs the stream no more
			}
			return cause // the device went offline
		case <-s.call.Done():
			if s.call.HungUp() {
				return fmt.Errorf("gb28181 device %s ended the stream of channel %s (BYE)", s.cam.GB28181.Device, s.cam.GB28181.Channel)
			}
			return errors.New("the GB/T 28181 SIP server stopped")
		case err := <-s.rcv.Err():
			var me *media.MediaError
			if errors.As(err, &me) && (me.Kind == media.MediaNoPSM || me.Kind == media.MediaUnknownCodec) {
				var unk *ps.UnknownStreamTypeError
				if !errors.As(err, &unk) || unk.StreamID < 0xE0 || unk.StreamID > 0xEF {
					// a warning (an inferred codec, an audio codec dropped): video flows
					g.log().Warn("gb28181 media", "camera", s.cam.ID, "error", err)
					continue
				}
			}
			g.bye(s.call, s.cam.ID)
			return err
		}
	}
}

func (g *Gateway) track(s *session, add bool) {
	g.sessMu.Lock()
	defer g.sessMu.Unlock()
	dev := s.cam.GB28181.Device
	if add {
		if g.sessions == nil {
			g.sessions = map[string]map[*session]struct{}{}
		}
		if g.sessions[dev] == nil {
			g.sessions[dev] = map[*session]struct{}{}
		}
		g.sessions[dev][s] = struct{}{}
		return
	}
	delete(g.sessions[dev], s)
	if len(g.sessions[dev]) == 0 {
		delete(g.sessions, dev)
	}
}

// bye hangs up, bounded by byeTimeout.
func (g *Gateway) bye(call *sip.Call, camera string) {
	ctx, cancel := context.WithTimeout(context.Background(), byeTimeout)
	defer cancel()
	if err := call.Bye(ctx); err != nil {
		g.log().Info("gb28181 BYE", "camera", camera, "error", err)
	}
}

// byeLater hangs up a failed attempt's call in the background, so that
// the attempt ends at once.
func (g *Gateway) byeLater(call *sip.Call, camera string) {
	g.bg.Go(func() { g.bye(call, camera) })
}

// unitWriter writes a receiver's access units into the ingest's sink. Its
// unit method runs on the receiver's goroutine.
type unitWriter struct {
	sink *ingest.Sink
	cam  string
	g    *Gateway

	videoCh   chan struct{} // closed at the first video unit of an attempt
	videoOnce *sync.Once
	errs      atomic.Int64
	lastLog   time.Time
}

func (w *unitWriter) reset() {
	w.videoCh = make(chan struct{})
	w.videoOnce = &sync.Once{}
}

func (w *unitWriter) unit(u *ps.Unit) {
	var err error
	switch u.Type {
	case ps.TypeH264:
		err = w.sink.WriteVideo(ingest.CodecH264, u.PTS, u.Payload, u.Keyframe)
	case ps.TypeH265:
		err = w.sink.WriteVideo(ingest.CodecH265, u.PTS, u.Payload, u.Keyframe)
	case ps.TypeAAC:
		err = w.sink.WriteAudio(ingest.CodecAAC, u.PTS, u.Payload)
	case ps.TypeG711A:
		err = w.sink.WriteAudio(ingest.CodecPCMA, u.PTS, u.Payload)
	case ps.TypeG711U:
		err = w.sink.WriteAudio(ingest.CodecPCMU, u.PTS, u.Payload)
	default:
		return
	}
	if u.Type.IsVideo() && err == nil {
		w.videoOnce.Do(func() { close(w.videoCh) })
	}
	if err == nil || errors.Is(err, ingest.ErrSinkClosed) {
		return
	}
	// a unit the ingest cannot take (a broken unit): counted, logged now and then
	w.errs.Add(1)
	if now := time.Now(); now.Sub(w.lastLog) > time.Minute {
		w.lastLog = now
		w.g.log().Warn("gb28181 unit refused by the ingest", "camera", w.cam, "error", err, "refused", w.errs.Load())
	}
}
