package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/apierr"
)

const (
	// queueLen bounds a viewer's subscription: it holds a GOP of a few seconds
	// with its audio; a viewer that falls further behind resumes at the next keyframe.
	queueLen = 512
	// pliMinInterval limits how often a browser's picture loss indication
	// restarts the viewer from the cached GOP.
	pliMinInterval = time.Second
	// pliGrace ignores a PLI for this long after a keyframe was sent: the
	// browser may not have received it yet.
	pliGrace = 200 * time.Millisecond
)

// session is one viewer: a peer connection fed by its own subscription and goroutine.
type session struct {
	r      *Relay
	id     string
	camera string
	log    *slog.Logger
	stream *ingest.Stream
	media  *ingest.Media
	plan   *plan

	pc      *webrtc.PeerConnection
	senders []*webrtc.RTPSender
	packets *packetCache // nil until acquired; released by closePeer
	out     *sender

	ctx         context.Context
	cancel      context.CancelFunc
	connected   chan struct{}
	connOnce    sync.Once
	wasConn     atomic.Bool // run saw the viewer connect (its pending slot is given back)
	done        chan struct{}
	pli         atomic.Bool
	dst         atomic.Pointer[netip.AddrPort] // the viewer\'s UDP address on the relay\'s socket (nil: not known, or TCP)
	rtcpWG      sync.WaitGroup
	releaseOnce sync.Once

	// The sending state, used by whoever serves the session: its own
	// goroutine, or its group's while it is in one (under serveMu).
	sub         *ingest.Subscription
	step        stepDown
	lastRestart time.Time // when the viewer was last restarted from the cached GOP
	serveMu     sync.Mutex
	grp         *group     // the group serving the session (nil: none)
	slowServes  int        // rounds in a row the group served it slowly
	ejected     chan error // the group gives the session back (nil: it goes on alone)
}

// newSession negotiates the peer connection and returns the session (not yet
// running) and the SDP answer with its candidates gathered.
func newSession(ctx context.Context, r *Relay, api *webrtc.API, id, camera string, st *ingest.Stream,
	media *ingest.Media, p *plan, offerSDP string) (*session, string, error) {
	log := r.log.With("session", id, "camera", camera, "stream", st.Name())
	pc, err := api.NewPeerConnection(webrtc.Configuration{ICEServers: r.iceServers})
	if err != nil {
		return nil, "", fmt.Errorf("new peer connection: %w", err)
	}
	sctx, cancel := context.WithCancel(context.Background())
	s := &session{
		r: r, id: id, camera: camera, log: log, stream: st, media: media, plan: p, pc: pc,
		ctx: sctx, cancel: cancel, connected: make(chan struct{}), done: make(chan struct{}),
		ejected: make(chan error, 1),
	}
	fail := func(err error) (*session, string, error) {
		s.closePeer()
		return nil, "", err
	}
	video := newRTPTrack(p.Video, "video")
	if err := s.addTrack(video, p.Video); err != nil {
		return fail(err)
	}
	var audio *rtpTrack
	if p.Audio != nil {
		audio = newRTPTrack(*p.Audio, "audio")
		if err := s.addTrack(audio, *p.Audio); err != nil {
			return fail(err)
		}
	} else if p.AudioSkipped != "" {
		log.Debug("audio not sent", "reason", p.AudioSkipped)
	}
	s.packets = r.acquirePackets(st)
	s.out, err = newSender(p, s.packets, video, audio)
	if err != nil {
		return fail(err)
	}
	s.out.conn = r.udpConn()
	s.out.dst = &s.dst
	s.out.onReorder = func() {
		r.warnings.log(slog.LevelWarn, "b-frames\x00"+st.Name(), "camera sends B-frames (pictures out of order), which WebRTC cannot carry: sending keyframes only",
			"camera", camera, "stream", st.Name())
	}
	pc.SCTP().Transport().ICETransport().OnSelectedCandidatePairChange(s.notePair)
	pc.OnConnectionStateChange(func(state webrtc.PeerConnectionState) {
		switch state {
		case webrtc.PeerConnectionStateConnected:
			s.connOnce.Do(func() { close(s.connected) })
		case webrtc.PeerConnectionStateFailed:
			log.Info("viewer connection failed")
			s.cancel()
		case webrtc.PeerConnectionStateClosed:
			s.cancel()
		}
	})
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offerSDP}); err != nil {
		return fail(apierr.New(apierr.ErrInvalid, "the SDP offer was refused: %v", err))
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return fail(apierr.New(apierr.ErrInvalid, "cannot answer the SDP offer: %v", err))
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		return fail(fmt.Errorf("set local description: %w", err))
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return fail(ctx.Err())
	}
	return s, pc.LocalDescription().SDP, nil
}

func (s *session) addTrack(t *rtpTrack, c webrtc.RTPCodecParameters) error {
	tr, err := s.pc.AddTransceiverFromTrack(t, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		return fmt.Errorf("add %s transceiver: %w", t.Kind(), err)
	}
	if err := tr.SetCodecPreferences([]webrtc.RTPCodecParameters{c}); err != nil {
		return fmt.Errorf("%s codec preferences: %w", t.Kind(), err)
	}
	s.senders = append(s.senders, tr.Sender())
	return nil
}

// notePair keeps the viewer's address when the selected ICE pair is UDP on
// the relay's socket, so that the sender can batch its packets (udpConn.cork).
func (s *session) notePair(pair *webrtc.ICECandidatePair) {
	if pair == nil || pair.Remote == nil || pair.Local == nil ||
		pair.Remote.Protocol != webrtc.ICEProtocolUDP || pair.Local.Typ == webrtc.ICECandidateTypeRelay {
		s.dst.Store(nil)
		return
	}
	ip, err := netip.ParseAddr(pair.Remote.Address)
	if err != nil {
		s.dst.Store(nil)
		return
	}
	dst := netip.AddrPortFrom(ip.Unmap(), pair.Remote.Port)
	s.dst.Store(&dst)
}

// readRTCP reads the viewer's RTCP (which also drives the NACK and report
// interceptors) and notes picture loss indications.
func (s *session) readRTCP(snd *webrtc.RTPSender) {
	defer s.rtcpWG.Done()
	for {
		pkts, _, err := snd.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			switch p := p.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				s.pli.Store(true)
			case *rtcp.TransportLayerNack:
				for _, n := range p.Nacks {
					s.r.nacked.Add(int64(len(n.PacketList())))
				}
				// an overloaded relay resends nothing: its viewers get keyframes only
				if s.out.video.hasSSRC(p.MediaSSRC) && !s.r.load.keyframesOnly(time.Now()) {
					if _, err := s.out.resend(p); err != nil {
						s.log.Debug("resend", "err", err)
					}
				}
			}
		}
	}
}

// stop asks the session to end; run returns soon after.
func (s *session) stop() { s.cancel() }

// closePeer closes the peer connection and waits for the RTCP readers.
func (s *session) closePeer() {
	s.cancel()
	if err := s.pc.Close(); err != nil {
		s.log.Debug("close peer connection", "err", err)
	}
	s.rtcpWG.Wait()
	s.releaseOnce.Do(func() {
		if s.packets != nil {
			s.r.releasePackets(s.stream)
		}
	})
}

// run waits for the viewer to connect, sends the stream until the session
// ends, and frees everything.
func (s *session) run() {
	defer close(s.done)
	defer s.closePeer()
	timeout := time.NewTimer(s.r.opts.SessionTimeout)
	defer timeout.Stop()
	select {
	case <-s.connected:
		s.wasConn.Store(true)
		s.r.connectedSlot()
		timeout.Stop()
		// A viewer's RTCP matters once it connects: a pending session runs
		// no reader of its own.
		for _, snd := range s.senders {
			s.rtcpWG.Add(1)
			go s.readRTCP(snd)
		}
	case <-timeout.C:
		s.log.Info("viewer session ended: ICE not connected in time", "timeout", s.r.opts.SessionTimeout)
		return
	case <-s.ctx.Done():
		s.log.Debug("viewer session ended before connecting")
		return
	}
	if pair, err := s.pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair(); err == nil {
		s.notePair(pair)
	}
	s.log.Info("viewer connected", "video", s.plan.Video.MimeType)
	err := s.send()
	switch {
	case err == nil || errors.Is(err, context.Canceled):
		// a viewer leaving is routine: one debug line (issue 13 item 8)
		s.log.Debug("viewer session ended")
	case errors.Is(err, ingest.ErrStreamClosed):
		s.log.Info("viewer session ended: camera removed")
	default:
		s.log.Warn("viewer session ended", "err", err)
	}
}

func (s *session) subscribe() *ingest.Subscription {
	return s.stream.Subscribe(ingest.SubscribeOptions{Kind: ingest.Viewer, QueueLen: queueLen, FromGOP: true})
}

// send forwards the stream: first the cached GOP at once (backlog), then
// live, from a group of the stream's viewers when it can (see groups).
func (s *session) send() error {
	s.sub = s.subscribe()
	defer func() { s.sub.Close() }()
	defer func() {
		if s.step.counted {
			s.r.load.setLate(false)
		}
	}()
	if err := s.sendBacklog(s.sub); err != nil {
		return err
	}
	s.lastRestart = time.Now()
	if s.out.conn != nil && s.dst.Load() != nil {
		// UDP on the relay's socket: writes do not block
		if back, err := s.r.groups.serve(s); !back {
			return err
		}
	}
	for {
		if err := s.restartOnPLI(time.Now()); err != nil {
			return err
		}
		u, _, err := s.sub.Next(s.ctx)
		if err != nil {
			return err
		}
		if err := s.handle(u, time.Now()); err != nil {
			return err
		}
	}
}

// drain sends what the subscription holds, without waiting (a group's
// round), or what it can in slowServe.
func (s *session) drain(now time.Time) error {
	if err := s.restartOnPLI(now); err != nil {
		return err
	}
	for n := 0; ; n++ {
		if n > 0 && time.Since(now) > slowServe {
			return nil // the rest at the next round
		}
		u, _, err := s.sub.Next(noWait)
		if errors.Is(err, context.Canceled) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := s.handle(u, now); err != nil {
			return err
		}
	}
}

// restartOnPLI answers a picture loss from the cache: it restarts the
// viewer from the cached GOP.
func (s *session) restartOnPLI(now time.Time) error {
	if now.Sub(s.lastRestart) < pliMinInterval || now.Sub(s.out.lastKeyframe) < pliGrace || !s.pli.Swap(false) {
		return nil
	}
	s.sub.Close()
	s.sub = s.subscribe()
	if err := s.sendBacklog(s.sub); err != nil {
		return err
	}
	s.lastRestart = now
	return nil
}

// handle sends one unit taken from the subscription at now, unless the
// viewer is stepped down and skips it, and the sender reports when due.
func (s *session) handle(u *ingest.Unit, now time.Time) error {
	backlog := s.sub.Backlog()
	if late := s.step.late(now, backlog, s.r.load.lag); late != s.step.counted {
		s.step.counted = late
		s.r.load.setLate(late)
	}
	if s.step.counted {
		s.r.load.note(now, s.r.Playing(), backlog)
	}
	if s.step.skip(s.r.load, now, u) {
		return nil
	}
	if err := s.write(u, now); err != nil {
		return err
	}
	if u.Keyframe && u.Track != nil && u.Track.Video {
		s.pli.Store(false) // the camera's own keyframe answers a pending PLI
	}
	if rs := s.out.reports(now); rs != nil {
		if err := s.pc.WriteRTCP(rs); err != nil {
			s.log.Debug("sender reports", "err", err)
		}
	}
	return nil
}

// sendBacklog sends what the subscription holds right now (the cached GOP)
// without waiting: see sender.writeBacklog for the timestamps.
func (s *session) sendBacklog(sub *ingest.Subscription) error {
	var backlog []*ingest.Unit
	for {
		u, _, err := sub.Next(noWait)
		if err != nil {
			if errors.Is(err, ingest.ErrStreamClosed) {
				return err
			}
			break
		}
		if u.Media != s.media {
			if err := s.follow(u.Media); err != nil {
				return err
			}
		}
		backlog = append(backlog, u)
	}
	return s.sent(s.out.writeBacklog(backlog))
}

// sent judges the error of a write to the viewer: the session goes on after
// a lost packet (a full socket buffer, an error of the viewer's network),
// as it would after a loss on the way, and ends only when the viewer does
// (its connection fails or closes, which cancels the session's context).
// Ending sessions on write errors closed hundreds at once on a starved host.
func (s *session) sent(err error) error {
	if err == nil {
		return nil
	}
	if cerr := s.ctx.Err(); cerr != nil {
		return cerr
	}
	s.r.writeErrors.Add(1)
	s.r.warnings.log(slog.LevelWarn, "write", "packets to a viewer lost: could not send them", "err", err)
	return nil
}

func (s *session) write(u *ingest.Unit, now time.Time) error {
	if u.Media != s.media {
		if err := s.follow(u.Media); err != nil {
			return err
		}
	}
	if s.r.slowWrite != nil {
		s.r.slowWrite(s.id)
	}
	return s.sent(s.out.writeLiveAt(u, now))
}

// follow switches to a new generation of the camera's tracks (the camera
// reconnected with other parameters) when the negotiated codec can carry it.
func (s *session) follow(m *ingest.Media) error {
	vt := m.Video()
	if vt == nil || vt.Codec != s.plan.VideoTrack.Codec {
		got := "no video"
		if vt != nil {
			got = codecLabel(vt.Codec)
		}
		return fmt.Errorf("camera changed its video from %s to %s: the viewer must reconnect",
			codecLabel(s.plan.VideoTrack.Codec), got)
	}
	if n := reorderFrames(vt); n > 0 {
		return fmt.Errorf("camera now sends B-frames, which WebRTC cannot carry")
	}
	s.media = m
	s.out.follow(m)
	s.log.Info("camera parameters changed; continuing", "generation", m.Generation)
	return nil
}

// wasConnected tells whether the viewer connected (after run returned).
func (s *session) wasConnected() bool { return s.wasConn.Load() }

// addCandidates adds the peer's trickled ICE candidates. An ICE restart (new
// credentials) is not supported: the viewer makes a new session instead.
func (s *session) addCandidates(f *sdpFragment) error {
	if f.Ufrag != "" {
		if rd := s.pc.RemoteDescription(); rd != nil && remoteUfrag(rd.SDP) != f.Ufrag {
			return apierr.New(apierr.ErrUnsupported, "ICE restart is not supported: start a new WHEP session")
		}
	}
	for _, c := range f.Candidates {
		init := webrtc.ICECandidateInit{Candidate: c.Candidate}
		if c.Mid != "" {
			mid := c.Mid
			init.SDPMid = &mid
		}
		if err := s.pc.AddICECandidate(init); err != nil {
			return apierr.New(apierr.ErrInvalid, "ICE candidate refused: %v", err)
		}
	}
	return nil
}

// remoteUfrag returns the first a=ice-ufrag value of an SDP.
func remoteUfrag(sdp string) string {
	for line := range strings.SplitSeq(sdp, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimRight(line, "\r"), "a=ice-ufrag:"); ok {
			return v
		}
	}
	return ""
}
