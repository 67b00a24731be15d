package upstream

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/vigil-vms/vigil/gb28181/manscdp"
	"github.com/vigil-vms/vigil/gb28181/replay"
	"github.com/vigil-vms/vigil/internal/apierr"
	"github.com/vigil-vms/vigil/recorder/archive"
	"github.com/vigil-vms/vigil/registry"
)

// The s= of an INVITE for recorded video.
const (
	sessPlayback = "Playback"
	sessDownload = "Download"
)

// replayAction is the audit action of a recorded-video INVITE: the same as
// the web app's playback and export.
func replayAction(o offer) string {
	if o.Session == sessDownload {
		return "export"
	}
	return "playback"
}

// onReplayInvite answers an INVITE s=Playback or s=Download for a shared
// channel with a replay session sent to the offer's address and transport
// like a live view; a channel not shared is answered 404 as for live.
func (s *Service) onReplayInvite(req *sip.Request, tx sip.ServerTransaction, p *platform, o offer) {
	action := replayAction(o)
	chID := req.Recipient.User
	ch, ok, err := s.find(s.ctx, p, chID)
	if err != nil {
		s.Log.Error("gb28181 upstream: INVITE", "platform", p.cfg.ID, "error", err)
		respond(req, tx, 500, "Server Internal Error")
		return
	}
	if !ok {
		s.audit(registry.AuditEntry{User: p.cfg.ID, Address: req.Source(), Action: action,
			Result: "denied", Detail: "GB/T 28181 upper platform; channel " + chID + " is not shared with it"})
		respond(req, tx, 404, "Not Found")
		return
	}
	if s.Replay == nil {
		respond(req, tx, 488, "Recorded video is not served")
		return
	}
	fail := func(code int, reason string, cause error) {
		s.audit(registry.AuditEntry{User: p.cfg.ID, Address: req.Source(), Action: action, Camera: ch.Cam.ID,
			Result: "failed", Detail: fmt.Sprintf("GB/T 28181 upper platform; channel %s: %v", ch.ID, cause)})
		respond(req, tx, code, reason)
	}
	start, end, err := replay.ParseTimeRange(o.Range)
	if err != nil {
		fail(400, "Bad t= range", err)
		return
	}
	if o.SSRC == "" {
		o.SSRC = fmt.Sprintf("1%09d", rand.N(1_000_000_000)) // 1: a recorded stream
	}
	ssrc, _ := strconv.ParseUint(o.SSRC, 10, 32)
	l := &live{p: p, ch: ch, o: o, acked: make(chan struct{}), started: time.Now()}
	speed := 0.0
	if o.Session == sessDownload {
		speed = min(o.DownloadSpeed, replay.MaxDownloadSpeed)
	}
	// the recordings made while the camera was in a shared department
	ctx, cancel := context.WithTimeout(archive.WithDepartments(s.ctx, p.cfg.Departments), 10*time.Second)
	rs, err := s.Replay.NewSession(ctx, replay.SessionConfig{
		Camera: ch.Cam.ID, Start: start, End: end, SSRC: uint32(ssrc),
		Download: o.Session == sessDownload, DownloadSpeed: speed, MaxPayload: maxRTPPayload,
		Write: func(pkt []byte) error { return l.w.WritePacket(pkt) },
		OnEnd: func() { s.mediaEnded(l) },
	})
	cancel()
	if err != nil {
		switch {
		case errors.Is(err, apierr.ErrNotFound):
			fail(404, "Nothing recorded in the range", err)
		case errors.Is(err, apierr.ErrInvalid):
			fail(400, "Bad range", err)
		case errors.Is(err, apierr.ErrUnsupported):
			fail(488, "Recording not carried in PS", err)
		default:
			s.Log.Error("gb28181 upstream: INVITE", "platform", p.cfg.ID, "camera", ch.Cam.ID, "error", err)
			fail(500, "Server Internal Error", err)
		}
		return
	}
	l.rs = rs
	dlg, err := s.dialogs.ReadInvite(req, tx)
	if err != nil {
		rs.Close()
		respond(req, tx, 400, "Bad Request")
		return
	}
	l.dlg = dlg
	if _, err := s.startMedia(req, dlg, l, nil); err != nil {
		rs.Close()
		s.Log.Warn("gb28181 upstream: INVITE", "platform", p.cfg.ID, "camera", ch.Cam.ID, "error", err)
		return
	}
	detail := fmt.Sprintf("GB/T 28181 upper platform; channel %s over %s to %s:%d", ch.ID, o.Transport, o.IP, o.Port)
	if o.Session == sessDownload && o.DownloadSpeed > 0 {
		detail += fmt.Sprintf(" at %g× speed", o.DownloadSpeed)
	}
	s.audit(registry.AuditEntry{User: p.cfg.ID, Address: req.Source(), Action: action, Camera: ch.Cam.ID,
		Start: start, End: end, Result: "ok", Detail: detail})
}

// serveReplay sends l's recorded range over w until its end (then Vigil
// hangs up), the platform's BYE or TEARDOWN, or an error.
func (s *Service) serveReplay(l *live, w packetWriter) error {
	l.w = w
	s.Log.Info("gb28181 upstream: "+replayAction(l.o)+" started", "platform", l.p.cfg.ID, "camera", l.ch.Cam.ID,
		"transport", l.o.Transport, "from", l.rs.Start())
	if err := l.rs.Run(l.ctx); err != nil {
		return fmt.Errorf("sending the recording over %s: %w", l.o.Transport, err)
	}
	return nil
}

// mediaEnded tells the platform that l's range has been sent (MediaStatus,
// NotifyType 121); serveLive then hangs up.
func (s *Service) mediaEnded(l *live) {
	body, err := manscdp.Encoder{}.Marshal(manscdp.MediaStatusNotify(s.nextSN(), l.ch.ID))
	if err == nil {
		err = s.message(l.ctx, l.p, body)
	}
	if err != nil {
		s.Log.Warn("gb28181 upstream: MediaStatus not taken", "platform", l.p.cfg.ID, "camera", l.ch.Cam.ID, "error", err)
	}
}

// onInfo steers a playback with the MANSRTSP body of an INFO in its
// dialog: 200 when applied, 400 with the cause for a body that cannot be.
func (s *Service) onInfo(req *sip.Request, tx sip.ServerTransaction) {
	s.mu.Lock()
	l := s.lives[req.CallID().Value()]
	s.mu.Unlock()
	if l == nil || l.rs == nil {
		respond(req, tx, 481, "Call/Transaction Does Not Exist")
		return
	}
	if ct := req.ContentType(); ct == nil || !strings.EqualFold(strings.TrimSpace(ct.Value()), "Application/MANSRTSP") {
		respond(req, tx, 415, "Unsupported Media Type")
		return
	}
	c, err := replay.ParseControl(req.Body())
	if err == nil {
		err = l.rs.Apply(c)
	}
	if err != nil {
		s.Log.Info("gb28181 upstream: MANSRTSP refused", "platform", l.p.cfg.ID, "camera", l.ch.Cam.ID, "error", err)
		respond(req, tx, 400, reasonText(err.Error()))
		return
	}
	res := sip.NewResponseFromRequest(req, 200, "OK", fmt.Appendf(nil, "RTSP/1.0 200 OK\r\nCSeq: %d\r\n\r\n", c.CSeq))
	res.AppendHeader(sip.NewHeader("Content-Type", "Application/MANSRTSP"))
	_ = tx.Respond(res)
}

// reasonText makes msg fit a SIP reason phrase: one line, bounded.
func reasonText(msg string) string {
	msg = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, msg)
	if r := []rune(msg); len(r) > 200 {
		msg = string(r[:200])
	}
	return msg
}
