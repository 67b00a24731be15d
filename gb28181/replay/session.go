package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/pion/rtp"
	"github.com/vigil-vms/vigil/gb28181/ps"
	"github.com/vigil-vms/vigil/internal/apierr"
	"github.com/vigil-vms/vigil/recorder/review"
)

// Session defaults.
const (
	// DefaultPayloadType is the RTP payload type of PS in GB/T 28181 (96).
	DefaultPayloadType = 96
	// DefaultMaxPayload is the RTP payload size packets are cut to.
	DefaultMaxPayload = 1400
	// KeyframesOnlyAbove is the scale above which only keyframes are sent.
	KeyframesOnlyAbove = 2
	// MaxDownloadSpeed bounds SessionConfig.DownloadSpeed.
	MaxDownloadSpeed = 32
	// ptsOrigin is the PS timestamp (90 kHz) of the first frame.
	ptsOrigin = 90000
	// defaultFrame is the frame duration assumed before two frames are seen.
	defaultFrame = 40 * time.Millisecond
)

// SessionConfig says what a Session sends and where.
type SessionConfig struct {
	// Camera and the recorded range [Start, End) asked for (the INVITE's t=).
	Camera     string
	Start, End time.Time
	// Download sends as fast as Write takes (s=Download) instead of in real
	// time (s=Playback); PLAY, PAUSE and seeks do not apply.
	Download bool
	// MaxBytesPerSecond caps a download's rate (RTP payload bytes). It
	// defaults to 0: no cap.
	MaxBytesPerSecond int64
	// DownloadSpeed paces a download at that many times real time (the
	// offer's a=downloadspeed:, 1 to 32; over UDP an unpaced download only
	// loses packets at the receiver). It defaults to 0: as fast as Write
	// returns (and MaxBytesPerSecond allows).
	DownloadSpeed float64
	// SSRC is the RTP SSRC (the y= of the INVITE as a number).
	SSRC uint32
	// PayloadType defaults to DefaultPayloadType (96).
	PayloadType uint8
	// MaxPayload is the largest RTP payload. It defaults to
	// DefaultMaxPayload (1400 bytes).
	MaxPayload int
	// Write sends one RTP packet (the upstream package frames it for UDP or
	// RFC 4571 TCP). The slice is valid only during the call. An error ends
	// the session (Run returns it).
	Write func(pkt []byte) error
	// OnEnd is called once, from Run's goroutine, when the range has been
	// sent to its end (or where the recording ends before it), before Run
	// returns nil: send MediaStatus 121 and BYE. It is not called when Run
	// ends for ctx, Close or an error.
	OnEnd func()
}

// Stats are what a session sent.
type Stats struct {
	Packets, Bytes int64 // RTP packets and their bytes
	Frames         int64 // access units sent (video and audio)
	// Position is the recorded time of the last frame sent.
	Position time.Time
}

// Session sends one playback or download of a recorded range as MPEG-PS
// over RTP. Create it with Player.NewSession, run it with Run, and steer it
// with Play, Pause and Seek (from MANSRTSP INFO, see Apply) from any
// goroutine.
//
// Timeline. The PS PTS/DTS and the RTP timestamp (90 kHz, the same clock)
// start at 90000 and advance with the recording; gaps in recording are
// skipped and the timeline stays continuous across them (the next frame is
// one frame duration after the last), as are seeks: ffprobe and the upper
// platforms' players (which pace by timestamp and stall or drop on a jump)
// see one continuous stream whose length is the recorded time sent. The
// recorded wall-clock time of what is being sent is in Stats().Position.
//
// Scale. At scale s the frames are sent s times faster than recorded, with
// the timestamps of the recording (not divided by s). Above
// KeyframesOnlyAbove only video keyframes are sent (no audio).
type Session struct {
	cfg    SessionConfig
	player *Player
	ctx    context.Context // the reading's: outlives the INVITE
	cancel context.CancelFunc
	reader *Reader
	mux    ps.Muxer

	mu      sync.Mutex
	scale   float64
	paused  bool
	seekTo  time.Time // zero: no seek pending
	changed chan struct{}
	stats   Stats
	running bool // Run was called: it closes the reader
	closed  bool // Close was called before Run: the reader is closed

	// Run's state.
	seq       uint16
	base      time.Time // recorded DTS at output position 0
	mapped    bool
	lastDTS   time.Time // recorded DTS of the last frame sent (any track)
	lastPos   time.Duration
	frameDur  time.Duration
	lastVideo time.Time
	anchorPos time.Duration // pacing: output position sent at anchorAt
	anchorAt  time.Time
	anchored  bool
	needKey   bool // frames were left out: send video from the next keyframe
	sentBytes int64
	dlStart   time.Time
	buf       []byte
	pkt       []byte
	payloads  [][]byte
}

// NewSession opens the recorded range for a playback or download. It fails
// before anything is sent (answer the INVITE with an error): review's
// apierr.ErrInvalid for a bad range, apierr.ErrNotFound when nothing was
// recorded there, apierr.ErrUnsupported for a recording without H.264 or
// H.265 video.
// ctx bounds the opening only; the session reads under its own context,
// which Run's ctx and Close end.
func (p *Player) NewSession(ctx context.Context, cfg SessionConfig) (*Session, error) {
	if cfg.Write == nil {
		return nil, errors.New("replay: SessionConfig.Write is required")
	}
	if cfg.PayloadType == 0 {
		cfg.PayloadType = DefaultPayloadType
	}
	if cfg.DownloadSpeed < 0 || cfg.DownloadSpeed > MaxDownloadSpeed {
		return nil, apierr.New(apierr.ErrInvalid, "download speed %g is outside 1 to %d", cfg.DownloadSpeed, MaxDownloadSpeed)
	}
	if cfg.MaxPayload <= 0 {
		cfg.MaxPayload = DefaultMaxPayload
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	if err := ctx.Err(); err != nil {
		cancel()
		return nil, err
	}
	r, err := p.Open(sctx, cfg.Camera, cfg.Start, cfg.End)
	if err != nil {
		cancel()
		return nil, err
	}
	s := &Session{cfg: cfg, player: p, ctx: sctx, cancel: cancel, reader: r, scale: 1,
		changed: make(chan struct{}, 1), frameDur: defaultFrame}
	s.mux = ps.Muxer{VideoType: r.VideoType(), AudioType: r.AudioType()}
	return s, nil
}

// Start is the recorded time of the first frame (the keyframe at or before
// the start asked for).
func (s *Session) Start() time.Time { return s.reader.Start() }

// Stats returns what was sent so far.
func (s *Session) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Play resumes a paused playback, and sets the speed when scale is not 0
// (MinScale to MaxScale). It applies from the next frame.
func (s *Session) Play(scale float64) error {
	if scale != 0 && (scale < MinScale || scale > MaxScale) {
		return apierr.New(apierr.ErrInvalid, "scale %g is outside %g to %g", scale, float64(MinScale), float64(MaxScale))
	}
	s.mu.Lock()
	if scale != 0 {
		s.scale = scale
	}
	s.paused = false
	s.mu.Unlock()
	s.signal()
	return nil
}

// Pause stops sending until Play or Seek.
func (s *Session) Pause() {
	s.mu.Lock()
	s.paused = true
	s.mu.Unlock()
	s.signal()
}

// Seek continues the playback from the keyframe at or before t (or the
// first recorded after t, when t falls in a gap), which must lie in
// [Start, End) of the range asked for; it resumes a paused playback. When
// nothing is recorded from t to End, the playback ends (OnEnd).
func (s *Session) Seek(t time.Time) error {
	if t.Before(s.cfg.Start) || !t.Before(s.cfg.End) {
		return apierr.New(apierr.ErrInvalid, "seek to %s is outside the playback's range %s to %s",
			t.Format(time.RFC3339), s.cfg.Start.Format(time.RFC3339), s.cfg.End.Format(time.RFC3339))
	}
	s.mu.Lock()
	s.seekTo, s.paused = t, false
	s.mu.Unlock()
	s.signal()
	return nil
}

// Apply carries out a parsed MANSRTSP request: PLAY (Range: a seek to that
// many seconds after the range's start; Scale: the speed; resumes), PAUSE,
// TEARDOWN (ends the session like Close). Answer the INFO with 200 when it
// returns nil, 400 otherwise.
func (s *Session) Apply(c *Control) error {
	switch c.Method {
	case MethodPause:
		s.Pause()
	case MethodTeardown:
		s.Close()
	case MethodPlay:
		if c.HasRange {
			if err := s.Seek(s.cfg.Start.Add(c.Range)); err != nil {
				return err
			}
		}
		return s.Play(c.Scale)
	default:
		return fmt.Errorf("MANSRTSP method %q is not PLAY, PAUSE or TEARDOWN", c.Method)
	}
	return nil
}

// Close ends the session: Run returns soon after. A session that was
// never run must be closed (it holds the open recording). More than once is
// harmless.
func (s *Session) Close() {
	s.cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running && !s.closed {
		s.closed = true
		s.reader.Close()
	}
}

func (s *Session) signal() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// Run sends the range until its end (then OnEnd is called and Run returns
// nil), until ctx ends or Close is called (nil), or until Write or the
// reading fails (that error). Call it once; Run of a closed session
// returns an error.
func (s *Session) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.running || s.closed {
		s.mu.Unlock()
		return errors.New("replay: Run called on a session that ran or was closed")
	}
	s.running = true
	s.mu.Unlock()
	defer s.cancel()
	stop := context.AfterFunc(ctx, s.cancel)
	defer stop()
	defer func() { s.reader.Close() }()
	for {
		f, err := Frame{}, s.control()
		if err == nil {
			f, err = s.reader.Next()
		}
		if err == io.EOF {
			if s.ctx.Err() != nil {
				return nil
			}
			if s.cfg.OnEnd != nil {
				s.cfg.OnEnd()
			}
			return nil
		}
		if err != nil {
			return s.quiet(err)
		}
		scale, _, _ := s.state()
		if !s.cfg.Download && scale > KeyframesOnlyAbove && !f.Key {
			s.advance(f) // keep the timeline, send nothing
			s.needKey = true
			continue
		}
		if s.needKey && f.Video && !f.Key {
			s.advance(f) // back from keyframes only: a P-frame now would not decode
			continue
		}
		if f.Key {
			s.needKey = false
		}
		if err := s.send(f); err != nil {
			return s.quiet(err)
		}
	}
}

// quiet turns the error of a session that was ended into nil.
func (s *Session) quiet(err error) error {
	if s.ctx.Err() != nil {
		return nil
	}
	return err
}

func (s *Session) state() (scale float64, paused bool, seek time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.scale, s.paused, s.seekTo
}

// control waits while paused and carries out a pending seek.
func (s *Session) control() error {
	for {
		_, paused, seek := s.state()
		if !seek.IsZero() {
			s.mu.Lock()
			s.seekTo = time.Time{}
			s.mu.Unlock()
			r, err := s.player.Open(s.ctx, s.cfg.Camera, seek, s.cfg.End)
			if errors.Is(err, apierr.ErrNotFound) && s.ctx.Err() == nil {
				return io.EOF // nothing recorded from there to the end: the playback is over
			}
			if err != nil {
				return fmt.Errorf("seek to %s: %w", seek.Format(time.RFC3339), err)
			}
			s.reader.Close()
			s.reader = r
			s.mapped, s.anchored = false, false
			continue
		}
		if !paused || s.cfg.Download {
			return nil
		}
		s.anchored = false
		select {
		case <-s.changed:
		case <-s.ctx.Done():
			return s.ctx.Err()
		}
	}
}

// position maps a frame onto the output timeline: continuous across gaps
// and seeks.
func (s *Session) position(f Frame) time.Duration {
	if !s.mapped {
		next := time.Duration(0)
		if !s.lastDTS.IsZero() {
			next = s.lastPos + s.frameDur
		}
		s.base, s.mapped = f.DTS.Add(-next), true
	} else if d := f.DTS.Sub(s.lastDTS); d > review.MaxGap {
		// A gap in recording: close it up.
		s.base = s.base.Add(d - s.frameDur)
		s.anchored = false
	}
	return f.DTS.Sub(s.base)
}

// advance moves the timeline past a frame that is not sent.
func (s *Session) advance(f Frame) {
	pos := s.position(f)
	s.note(f, pos)
}

func (s *Session) note(f Frame, pos time.Duration) {
	if f.Video && !s.lastVideo.IsZero() {
		if d := f.DTS.Sub(s.lastVideo); d > 0 && d < time.Second {
			s.frameDur = d
		}
	}
	if f.Video {
		s.lastVideo = f.DTS
	}
	s.lastDTS, s.lastPos = f.DTS, max(s.lastPos, pos)
}

// send waits until the frame is due, then muxes and sends it.
func (s *Session) send(f Frame) error {
	pos := s.position(f)
	if err := s.wait(pos); err != nil {
		return err
	}
	s.note(f, pos)
	dts := ptsOrigin + int64(pos)*9/100000
	pts := dts + int64(f.Time.Sub(f.DTS))*9/100000
	var err error
	s.buf, err = s.mux.AppendUnit(s.buf[:0], &ps.Unit{Type: f.Type, PTS: pts, DTS: dts, Keyframe: f.Key, Payload: f.Payload})
	if err != nil {
		return err
	}
	s.payloads = ps.Payloads(s.payloads[:0], s.buf, s.cfg.MaxPayload)
	var n int64
	for i, pl := range s.payloads {
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: s.cfg.PayloadType, SequenceNumber: s.seq,
			Timestamp: uint32(dts), SSRC: s.cfg.SSRC, Marker: i == len(s.payloads)-1}, Payload: pl}
		s.seq++
		size := p.MarshalSize()
		if cap(s.pkt) < size {
			s.pkt = make([]byte, size)
		}
		b := s.pkt[:size]
		if _, err := p.MarshalTo(b); err != nil {
			return err
		}
		if err := s.cfg.Write(b); err != nil {
			return fmt.Errorf("send RTP: %w", err)
		}
		n += int64(size)
	}
	s.sentBytes += int64(len(s.buf))
	s.mu.Lock()
	s.stats.Packets += int64(len(s.payloads))
	s.stats.Bytes += n
	s.stats.Frames++
	s.stats.Position = f.Time
	s.mu.Unlock()
	return nil
}

// wait blocks until output position pos is due: in real time divided by
// the scale for a playback, by the byte-rate cap for a download. A control
// arriving meanwhile is carried out by the next call of control, and the
// pacing anchored again.
func (s *Session) wait(pos time.Duration) error {
	now := time.Now()
	var due time.Time
	if s.cfg.Download {
		if s.dlStart.IsZero() {
			s.dlStart = now
		}
		if s.cfg.MaxBytesPerSecond > 0 {
			due = s.dlStart.Add(time.Duration(float64(s.sentBytes) / float64(s.cfg.MaxBytesPerSecond) * float64(time.Second)))
		}
		if s.cfg.DownloadSpeed > 0 {
			if !s.anchored {
				s.anchorPos, s.anchorAt, s.anchored = pos, now, true
			}
			due = maxTime(due, s.anchorAt.Add(time.Duration(float64(pos-s.anchorPos)/s.cfg.DownloadSpeed)))
		}
		if due.IsZero() {
			return s.ctx.Err()
		}
	} else {
		scale, _, _ := s.state()
		if !s.anchored {
			s.anchorPos, s.anchorAt, s.anchored = pos, now, true
		}
		due = s.anchorAt.Add(time.Duration(float64(pos-s.anchorPos) / scale))
	}
	for {
		d := time.Until(due)
		if d <= 0 {
			return s.ctx.Err()
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
			return s.ctx.Err()
		case <-s.ctx.Done():
			t.Stop()
			return s.ctx.Err()
		case <-s.changed:
			t.Stop()
			if s.cfg.Download {
				continue
			}
			// Re-anchor at the new speed; a pause or seek is taken at the next frame.
			scale, paused, seek := s.state()
			if paused || !seek.IsZero() {
				s.signal() // let control see it
				return nil
			}
			s.anchorPos, s.anchorAt = s.lastPos, time.Now()
			due = s.anchorAt.Add(time.Duration(float64(pos-s.anchorPos) / scale))
		}
	}
}
