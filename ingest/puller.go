package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/vigil-vms/vigil/internal/ctxwait"
)

// State is the state of a camera stream in status.
type State string

// States of a camera stream.
const (
	StateConnecting State = "connecting" // first attempt in progress
	StateOnline     State = "online"     // media flowing
	StateOffline    State = "offline"    // failed, retrying with backoff
	StateDisabled   State = "disabled"   // not pulled (camera disabled)
	// StateIdle: a stream pulled on demand (a pushed camera's, or a
	// sub-stream with FleetOptions.SubLinger) that nothing needs, so it is
	// not played; it starts when something subscribes or wants it. Not a failure.
	StateIdle State = "idle"
)

// pullerConfig is what a puller needs; the Fleet fills it from its options.
type pullerConfig struct {
	camera      string
	kind        StreamKind
	url         string
	transport   string
	stream      *Stream
	log         *slog.Logger
	dial        dialFunc
	stall       time.Duration
	readTimeout time.Duration
	backoffMin  time.Duration
	backoffMax  time.Duration
	logEvery    time.Duration
	onOnline    func() // called when media starts to flow, may be nil
	// pushed: the stream is played by source (nil: none is configured for
	// the camera's Source)
	pushed bool
	source Source
	cam    Camera
	// onDemand: the stream is played (pushed) or pulled (a sub-stream,
	// FleetOptions.SubLinger) while it is demanded, and stopped linger
	// after it no longer is
	onDemand bool
	linger   time.Duration
	// onDescribe, when set, sees the planned tracks; returning true ends the session there
	onDescribe func([]*trackReader) bool
}

// puller pulls one camera stream into its hub Stream, reconnecting forever
// until its context ends.
type puller struct {
	cfg pullerConfig

	mu         sync.Mutex
	state      State
	since      time.Time
	err        *PullError
	reconnects int
	video      *VideoStatus
	audio      *AudioStatus
	lastLog    time.Time
	skew       time.Duration // the camera's clock minus the server's, from its sender reports
	cam        Camera        // the camera a pushed stream's Source plays (kept current by the Fleet)
	wentOnline chan struct{} // closed when the session being checked goes online (see whileDemanded)

	// clock continuity across sessions
	clockMu  sync.Mutex
	lastPTS  time.Duration
	lastWall time.Time
	// lastAudio is the audio track of a pushed stream's previous session:
	// published with the next session's first keyframe, before the audio
	// itself arrives
	lastAudio *Track
}

func newPuller(cfg pullerConfig) *puller {
	p := &puller{cfg: cfg, state: StateConnecting, since: time.Now(), cam: cfg.cam}
	if cfg.onDemand {
		p.state = StateIdle
	}
	return p
}

// run pulls until ctx ends. A stream pulled on demand (a pushed stream, a
// sub-stream with FleetOptions.SubLinger) runs only while demanded (see
// awaitDemand and whileDemanded). A sub-stream is checked all the same:
// its first session, and each after a failure, runs demanded or not until
// it is online, so that a wrong URL or a camera that stopped serving it
// shows (offline, with its error) before anyone watches, and is retried
// with backoff until the camera serves it again.
func (p *puller) run(ctx context.Context) {
	failures := 0
	checking := p.cfg.onDemand && !p.cfg.pushed
	for {
		sctx, idled, stop := ctx, func() bool { return false }, func() {}
		if p.cfg.onDemand {
			if !checking && !p.awaitDemand(ctx) {
				return
			}
			sctx, idled, stop = p.whileDemanded(ctx, checking)
		}
		began := time.Now()
		online, err := p.session(sctx)
		stop()
		if ctx.Err() != nil {
			return
		}
		if idled() {
			// nothing needed it any more: not a failure
			p.setIdle()
			failures, checking = 0, false
			continue
		}
		checking = p.cfg.onDemand && !p.cfg.pushed
		if err == nil {
			err = &PullError{Kind: ErrClosedByCamera, Msg: "the camera ended the session"}
		}
		if p.cfg.pushed {
			p.setOffline(sourceError(err))
		} else {
			p.setOffline(classify(err, hostOf(p.cfg.url)))
		}
		var wait time.Duration
		wait, failures = retryWait(failures, !online.IsZero(), time.Since(began), p.cfg.backoffMin, p.cfg.backoffMax)
		if !ctxwait.Sleep(ctx, wait) {
			return
		}
		p.mu.Lock()
		p.reconnects++
		p.mu.Unlock()
	}
}

// retryWait returns the wait before the next attempt after a session that
// lasted lasted, and the new count of consecutive failures. A session that
// delivered video is no failure: the next attempt starts at once, only never
// sooner than lo (the least backoff) after the previous attempt began (a camera that ends every
// session at once is not hammered). A session that delivered nothing is a
// failure, and waits grow with consecutive failures.
func retryWait(failures int, streamed bool, lasted, lo, hi time.Duration) (time.Duration, int) {
	if streamed {
		return max(0, lo-lasted), 0
	}
	failures++
	return backoff(failures, lo, hi), failures
}

// backoff returns the wait before attempt n+1 after n consecutive failures:
// min doubled per failure, capped at max, with ±20 % jitter.
func backoff(failures int, min, max time.Duration) time.Duration {
	d := min
	for i := 1; i < failures && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

func hostOf(raw string) string {
	u, err := base.ParseURL(raw)
	if err != nil {
		return "the camera"
	}
	return u.Host
}

// session runs one session of the stream: RTSP, or the Source's Play for a
// pushed stream. online is when media started to flow (zero if it never did).
func (p *puller) session(ctx context.Context) (online time.Time, err error) {
	if p.cfg.pushed {
		return p.pushSession(ctx)
	}
	return p.rtspSession(ctx)
}

// rtspSession runs one RTSP session.
func (p *puller) rtspSession(ctx context.Context) (online time.Time, err error) {
	p.leaveIdle()
	u, err := parseRTSPURL(p.cfg.url)
	if err != nil {
		return time.Time{}, err
	}
	c, err := p.cfg.dial(u, p.cfg.transport, p.cfg.readTimeout, p.cfg.log)
	if err != nil {
		return time.Time{}, err
	}
	stop := closeOnDone(ctx, c)
	defer stop()
	defer c.Close()
	if fb, ok := c.(interface{ firstBytes() []byte }); ok {
		defer func() {
			if pe := notRTSP(fb.firstBytes()); pe != nil && err != nil && ctx.Err() == nil {
				err = pe
			}
		}()
	}

	desc, _, err := c.Describe(u)
	if err != nil {
		return time.Time{}, fmt.Errorf("describe: %w", err)
	}
	readers, err := planTracks(desc)
	if err != nil {
		return time.Time{}, err
	}
	if p.cfg.onDescribe != nil && p.cfg.onDescribe(readers) {
		return time.Time{}, nil
	}
	for _, tr := range readers {
		if _, err := c.Setup(desc.BaseURL, tr.media, 0, 0); err != nil {
			return time.Time{}, fmt.Errorf("setup: %w", err)
		}
	}
	w := &sessionWriter{p: p, c: c, readers: readers, ctx: ctx}
	if p.cfg.transport == "" || p.cfg.transport == "auto" {
		// the first media may come after the switch from UDP to TCP
		w.grace = udpFallbackAfter
	}
	for _, tr := range readers {
		c.OnPacketRTP(tr.media, tr.format, func(pkt *rtp.Packet) { w.packet(tr, pkt) })
		c.OnPacketRTCP(tr.media, func(pkt rtcp.Packet) { w.senderReport(tr, pkt) })
	}
	w.start = time.Now()
	if _, err := c.Play(nil); err != nil {
		return time.Time{}, fmt.Errorf("play: %w", err)
	}

	waitErr := make(chan error, 1)
	go func() { waitErr <- c.Wait() }()
	return p.watch(ctx, w, waitErr)
}

// watch waits for the end of a session: an error (or nil) from the source on
// waitErr, the end of ctx, or a stall that w.check detects.
func (p *puller) watch(ctx context.Context, w *sessionWriter, waitErr <-chan error) (time.Time, error) {
	period := p.cfg.stall / 5
	if period < 10*time.Millisecond {
		period = 10 * time.Millisecond
	}
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		select {
		case err := <-waitErr:
			return w.onlineSince(), err
		case <-ctx.Done():
			return w.onlineSince(), ctx.Err()
		case now := <-tick.C:
			if err := w.check(now); err != nil {
				return w.onlineSince(), err
			}
		}
	}
}

// nextOffset returns the PTS offset of a new session: the last PTS written
// plus the wall time elapsed since, so that PTS keeps increasing.
func (p *puller) nextOffset(now time.Time) time.Duration {
	p.clockMu.Lock()
	defer p.clockMu.Unlock()
	if p.lastWall.IsZero() {
		return 0
	}
	gap := now.Sub(p.lastWall)
	if gap < time.Millisecond {
		gap = time.Millisecond
	}
	return p.lastPTS + gap
}

func (p *puller) wrote(pts time.Duration, now time.Time) {
	p.clockMu.Lock()
	if pts > p.lastPTS {
		p.lastPTS = pts
	}
	p.lastWall = now
	p.clockMu.Unlock()
}

func (p *puller) logger() *slog.Logger {
	return p.cfg.log.With("camera", p.cfg.camera, "stream", string(p.cfg.kind))
}

func (p *puller) setOnline(video *VideoStatus, audio *AudioStatus) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.video, p.audio = video, audio
	if p.state == StateOnline {
		return
	}
	p.state, p.since, p.err = StateOnline, time.Now(), nil
	p.lastLog = p.since
	if p.wentOnline != nil {
		close(p.wentOnline)
		p.wentOnline = nil
	}
	if p.cfg.onOnline != nil {
		p.cfg.onOnline()
	}
	p.logger().Info("camera stream online", "codec", video.Codec, "width", video.Width, "height", video.Height,
		"reconnects", p.reconnects)
}

// setSkew records how far the camera's clock is off; it logs when that
// crosses clockSkewWarn.
func (p *puller) setSkew(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	was := skewOff(p.skew)
	p.skew = d
	if skewOff(d) && !was { // called per video frame: the sentence only when logged
		p.logger().Warn("camera clock is off", "skew", d.Round(time.Second).String(), "hint", skewText(d))
	}
}

func (p *puller) setVideoSize(w, h int) {
	p.mu.Lock()
	if p.video != nil && (p.video.Width != w || p.video.Height != h) {
		v := *p.video
		v.Width, v.Height = w, h
		p.video = &v
	}
	p.mu.Unlock()
}

// setOffline records a failure. It logs on a change of state, and on a change
// of error at most once per logEvery.
func (p *puller) setOffline(pe *PullError) {
	p.cfg.stream.SetOffline()
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	changedState := p.state != StateOffline
	changedErr := p.err == nil || p.err.Error() != pe.Error()
	if changedState {
		p.state, p.since = StateOffline, now
	}
	p.err = pe
	if changedState || (changedErr && now.Sub(p.lastLog) >= p.cfg.logEvery) {
		p.lastLog = now
		p.logger().Warn("camera stream offline", "error", pe.Error(), "reconnects", p.reconnects)
	}
}

// StreamStatus is the state of one of a camera's streams.
type StreamStatus struct {
	State      State        `json:"state"`
	Since      time.Time    `json:"since"`
	LastError  string       `json:"lastError"`
	Video      *VideoStatus `json:"video"`
	Audio      *AudioStatus `json:"audio"`
	Reconnects int          `json:"reconnects"`
	// ClockSkew is how many seconds the camera's clock is ahead of the server's
	// (behind when negative), from its RTCP sender reports; it is set only when
	// off by clockSkewWarn or more. The video is filed by the server's clock all
	// the same; LastError says so while the stream is online.
	ClockSkew float64 `json:"clockSkew,omitempty"`
	// Err is the last error, to be matched with errors.Is against the Err* kinds; nil when online.
	Err error `json:"-"`
}

// VideoStatus describes the video of a stream: codec and size from the SPS,
// frame rate and bitrate measured over the last seconds.
type VideoStatus struct {
	Codec       string  `json:"codec"`
	Width       int     `json:"width"`
	Height      int     `json:"height"`
	FPS         float64 `json:"fps"`
	BitrateKbps int     `json:"bitrateKbps"`
}

// AudioStatus describes the audio of a stream.
type AudioStatus struct {
	Codec      string `json:"codec"`
	SampleRate int    `json:"sampleRate"`
	Channels   int    `json:"channels"`
}

func (p *puller) status() StreamStatus {
	st := p.cfg.stream.Stats()
	p.mu.Lock()
	defer p.mu.Unlock()
	s := StreamStatus{State: p.state, Since: p.since, Reconnects: p.reconnects}
	if p.err != nil {
		s.LastError = p.err.Error()
		s.Err = p.err
	}
	if txt := skewText(p.skew); txt != "" {
		s.ClockSkew = float64(p.skew.Round(100*time.Millisecond)) / float64(time.Second)
		if s.LastError == "" {
			s.LastError = txt
		}
	}
	if p.video != nil {
		v := *p.video
		v.FPS = float64(int(st.FPS*10+0.5)) / 10
		v.BitrateKbps = st.BitrateKbps
		s.Video = &v
	}
	if p.audio != nil {
		a := *p.audio
		s.Audio = &a
	}
	return s
}

// sessionWriter turns the packets of one session into hub units.
type sessionWriter struct {
	p       *puller
	c       rtspClient
	ctx     context.Context // the puller's: once done, nothing more is written
	readers []*trackReader
	pushed  bool          // a pushed stream's session (the words of its errors)
	start   time.Time     // when PLAY was sent (pushed: Play called, then the first unit arrived)
	grace   time.Duration // added to the stall timeout before the first media

	mu            sync.Mutex
	media         *Media // nil until the first keyframe published the tracks
	onlineAt      time.Time
	anchored      bool
	offset        time.Duration // added to the session's PTS
	skew          skewMeter     // the camera's clock against clock
	reports       map[*trackReader]senderReport
	lastVideo     time.Time // when the last video unit was written
	packets       int
	decodeErrs    int
	lastDecodeErr error
	paramErr      error
}

func (w *sessionWriter) onlineSince() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.onlineAt
}

// packet handles one RTP packet; it runs in gortsplib's reading goroutines.
func (w *sessionWriter) packet(tr *trackReader, pkt *rtp.Packet) {
	var frames [][]byte
	var key bool
	var err error
	if tr.params != nil {
		frames, err = tr.video.Decode(pkt)
		if err == nil {
			frames, key = tr.params.accessUnit(frames)
		}
	} else {
		frames, err = tr.audio(pkt)
	}
	// gortsplib starts the clock of a video track at its first keyframe
	ticks, ok := w.c.PacketPTS2(tr.media, pkt)
	now := time.Now()

	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ctx != nil && w.ctx.Err() != nil {
		return // stopped: a new puller may own the stream already
	}
	w.packets++
	if err != nil {
		if !errNeedMore(err) {
			w.decodeErrs++
			w.lastDecodeErr = err
		}
		return
	}
	if !ok {
		return
	}
	cr := tr.format.ClockRate()
	t, wrote := w.accept(tr, ticks, cr, frames, key, now)
	if !wrote || tr.params == nil {
		return
	}
	if sr, ok := w.reports[tr]; ok {
		// the camera's clock, only to compare it with the server's
		w.skew.add(sr.at(pkt.Timestamp, cr), t)
		w.p.setSkew(w.skew.avg)
	}
}

// accept writes the frames of one packet of track tr (a video access unit, or
// audio frames of tr.frameSamples ticks each) at ticks of clock rate cr, since
// the session's start; called with w.mu held. Until the first video keyframe
// with its parameter sets, nothing is written; that keyframe publishes the
// tracks. It returns the unit's wall-clock time and whether a unit was written.
func (w *sessionWriter) accept(tr *trackReader, ticks int64, cr int, frames [][]byte, key bool, now time.Time) (time.Time, bool) {
	if len(frames) == 0 {
		return time.Time{}, false
	}
	if !w.anchored {
		w.anchored = true
		w.offset = w.p.nextOffset(now)
	}
	if w.media == nil {
		if tr.params == nil {
			return time.Time{}, false // audio before the first keyframe
		}
		if !key {
			if !tr.params.ready() {
				w.paramErr = tr.params.errNoParams()
			}
			return time.Time{}, false
		}
		w.publish()
	}
	if tr.params != nil {
		w.lastVideo = now
		if key && (tr.params.width != tr.track.Width || tr.params.height != tr.track.Height) {
			w.p.setVideoSize(tr.params.width, tr.params.height)
		}
		return w.write(tr, ticks, cr, frames, key, now), true
	}
	var t time.Time
	for i, f := range frames {
		t = w.write(tr, ticks+int64(i*tr.frameSamples), cr, [][]byte{f}, false, now)
	}
	return t, true
}

// senderReport is the last RTCP sender report of a track: the camera's clock
// at an RTP timestamp.
type senderReport struct {
	ntp time.Time
	rtp uint32
}

// at returns the camera's clock at RTP timestamp ts.
func (sr senderReport) at(ts uint32, clockRate int) time.Time {
	return sr.ntp.Add(ticksToDuration(int64(int32(ts-sr.rtp)), clockRate))
}

// senderReport records a track's sender report; it runs in gortsplib's reading goroutines.
func (w *sessionWriter) senderReport(tr *trackReader, pkt rtcp.Packet) {
	sr, ok := pkt.(*rtcp.SenderReport)
	if !ok {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.reports == nil {
		w.reports = make(map[*trackReader]senderReport)
	}
	w.reports[tr] = senderReport{ntp: ntpToTime(sr.NTPTime), rtp: sr.RTPTime}
}

// write writes one unit to the stream and returns its wall-clock time.
func (w *sessionWriter) write(tr *trackReader, ticks int64, cr int, data [][]byte, key bool, now time.Time) time.Time {
	rel := ticksToDuration(ticks, cr)
	t, jumped := tr.clock.at(rel, now)
	if jumped {
		// the camera's timestamps jumped: the track's PTS goes on by the server's clock
		tr.ptsShift = w.p.nextOffset(now) - w.offset - rel
	}
	pts := w.offset + rel + tr.ptsShift
	w.p.cfg.stream.Write(&Unit{Media: w.media, Track: tr.track, PTS: pts, Time: t, Data: data, Keyframe: key})
	w.p.wrote(pts, now)
	return t
}

// publish sets the tracks of the session on the stream; called with w.mu held
// at the first keyframe.
func (w *sessionWriter) publish() {
	w.onlineAt = time.Now()
	w.lastVideo = w.onlineAt
	w.setTracks()
}

// setTracks publishes the readers' tracks (again, when a pushed stream's
// audio appears after its first keyframe); called with w.mu held.
func (w *sessionWriter) setTracks() {
	tracks := make([]*Track, len(w.readers))
	for i, tr := range w.readers {
		tracks[i] = tr.publishTrack()
	}
	w.media = w.p.cfg.stream.SetTracks(tracks)
	for i, tr := range w.readers {
		tr.track = w.media.Tracks[i]
	}
	vt := w.media.Tracks[0]
	video := &VideoStatus{Codec: vt.Codec, Width: vt.Width, Height: vt.Height}
	var audio *AudioStatus
	if len(w.media.Tracks) > 1 {
		at := w.media.Tracks[1]
		audio = &AudioStatus{Codec: at.Codec, SampleRate: at.SampleRate, Channels: at.ChannelCount}
	}
	w.p.setOnline(video, audio)
}

// pushStartWait is how many stall timeouts a pushed stream's Source may
// take to deliver its first unit.
const pushStartWait = 3

// check detects a stall: no video for the stall timeout, or no usable
// keyframe that long after PLAY.
func (w *sessionWriter) check(now time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	stall := w.p.cfg.stall
	if w.media != nil {
		if d := now.Sub(w.lastVideo); d > stall {
			return &PullError{Kind: ErrStalled, Msg: fmt.Sprintf("the camera stopped sending video (nothing for %s)", d.Round(time.Millisecond))}
		}
		return nil
	}
	if w.pushed && w.packets == 0 {
		// the Source times its own start (a GB/T 28181 gateway tries each
		// transport for a few seconds, and names the cause); this only
		// bounds a Source that waits for ever
		if d := now.Sub(w.start); d > pushStartWait*stall {
			return &PullError{Kind: ErrStalled, Msg: fmt.Sprintf("the device's stream did not start in %s", d.Round(time.Second))}
		}
		return nil
	}
	if now.Sub(w.start) <= stall+w.grace {
		return nil
	}
	switch {
	case w.paramErr != nil:
		return &PullError{Kind: ErrBadMedia, Msg: "the camera's video cannot be decoded: its parameter sets (SPS/PPS) are missing or invalid", Err: w.paramErr}
	case w.decodeErrs > 0 && !w.anchored && w.pushed:
		return &PullError{Kind: ErrBadMedia, Msg: fmt.Sprintf("the device sends video that cannot be split into NAL units (%d bad units)", w.decodeErrs), Err: w.lastDecodeErr}
	case w.decodeErrs > 0 && !w.anchored:
		return &PullError{Kind: ErrBadMedia, Msg: fmt.Sprintf("the camera sends RTP packets that cannot be decoded (%d bad packets)", w.decodeErrs), Err: w.lastDecodeErr}
	case w.packets == 0:
		return &PullError{Kind: ErrStalled, Msg: fmt.Sprintf("the camera accepted PLAY but sent no media in %s", stall+w.grace)}
	}
	return &PullError{Kind: ErrNoKeyframe, Msg: fmt.Sprintf("the camera sent video but no keyframe in %s", stall+w.grace)}
}

// inherit continues the clock of the stream's previous puller (stopped, or
// never started), so that the Stream's PTS keeps increasing.
func (p *puller) inherit(prev *puller) {
	prev.clockMu.Lock()
	pts, wall, audio := prev.lastPTS, prev.lastWall, prev.lastAudio
	prev.clockMu.Unlock()
	p.clockMu.Lock()
	p.lastPTS, p.lastWall, p.lastAudio = pts, wall, audio
	p.clockMu.Unlock()
}
