package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
)

// Source plays the streams of pushed cameras (Camera.Pushed: GB/T 28181
// channels), whose video a device sends when asked rather than Vigil pulling
// it. FleetOptions.Sources maps a Camera.Source to its Source.
type Source interface {
	// Play runs one session of the camera's stream, writing what the device
	// sends into sink, until ctx ends (return nil) or the session fails (return an
	// error a person can act on; it becomes the stream's lastError). ingest calls Play
	// only while something needs the stream (a subscriber: recorder, viewer, upper
	// platform, or Stream.Want), cancels ctx PushLinger after nothing does, and retries
	// with backoff after an error.
	//
	// Play must return soon after ctx ends (Fleet.Remove and Set wait for
	// it). Until its first unit reaches the sink it has three times
	// FleetOptions.StallTimeout: it should time its own start and name the
	// cause; from the first unit on, ingest watches for keyframes and stalls.
	Play(ctx context.Context, cam Camera, kind StreamKind, sink *Sink) error
}

// ptsClock is the clock rate of the timestamps given to a Sink (MPEG-PS: 90 kHz).
const ptsClock = 90000

// ErrSinkClosed is returned by a Sink's writes after its session ended: the
// Source's Play should return.
var ErrSinkClosed = errors.New("ingest: the session of this sink has ended")

// Sink receives the media of one session of a pushed stream and writes it to
// the camera's hub Stream, as a puller does with RTSP: units from the first
// keyframe with parameter sets on, tracks published there, PTS continuous
// across sessions and Time on the server's clock. Its methods must be called
// from one goroutine at a time (the Source's receiver).
//
// An error of a write concerns that unit only (it was dropped), and the
// session can go on; a Source may log it at a limited rate. Two errors are
// different: ErrSinkClosed (the session ended: Play should return) and a
// change of video codec within the session, which the Source should return
// from Play, so that the next session starts with the new codec. Units that
// never make a picture show in the stream's lastError all the same (no
// keyframe, no parameter sets, no media, a stall).
//
// Tracks: the video track and the audio seen so far are published at the
// first keyframe. A stream whose earlier session had audio publishes that
// audio track with the first keyframe already (the audio usually trails the
// first keyframe by a few milliseconds), so that a new session does not
// change the stream's Media. Audio that first appears later, or differs from
// the track published, is published with the next keyframe (a new Media
// generation, which starts at a keyframe as every generation does, so a
// recorder loses no video); that audio is dropped until then.
type Sink struct {
	w            *sessionWriter
	video, audio *trackReader
	// republish: the audio track changed after the tracks were published;
	// they are published again with the next keyframe, the new audio
	// dropped until then
	republish bool

	// PTS unwrapping: the 33-bit PTS of MPEG-PS, extended from the first one
	// of the session (any track)
	started bool
	lastPTS int64 // the last PTS as given
	ext     int64 // the last PTS extended, relative to the first
}

// WriteVideo writes one video access unit: codec is CodecH264 or CodecH265,
// pts the presentation time in 90 kHz ticks (33-bit wrap-around allowed),
// annexB the NAL units with start codes. key is the caller's view; the NAL
// unit types decide what is a keyframe. The bytes are copied.
func (s *Sink) WriteVideo(codec string, pts int64, annexB []byte, key bool) error {
	if codec != CodecH264 && codec != CodecH265 {
		return fmt.Errorf("ingest: unsupported video codec %q (want %s or %s)", codec, CodecH264, CodecH265)
	}
	if s.video != nil && s.video.proto.Codec != codec {
		return fmt.Errorf("ingest: the video codec changed from %s to %s within a session", s.video.proto.Codec, codec)
	}
	var au h264.AnnexB // the same Annex-B framing for H.265
	splitErr := au.Unmarshal(bytes.Clone(annexB))
	if s.video == nil {
		s.video = &trackReader{
			params: newParamSets(codec, nil, nil, nil),
			proto:  Track{Video: true, Codec: codec, ClockRate: ptsClock},
		}
		if last := s.w.p.previousAudio(); s.audio == nil && last != nil {
			s.audio = newPushedAudio(*last)
		}
	}
	var frames [][]byte
	var isKey bool
	if splitErr == nil {
		frames, isKey = s.video.params.accessUnit(au)
	}
	now := time.Now()

	w := s.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ctx.Err() != nil {
		return ErrSinkClosed
	}
	w.arrived(now)
	if splitErr != nil {
		w.decodeErrs++
		w.lastDecodeErr = splitErr
		return fmt.Errorf("ingest: video unit: %w", splitErr)
	}
	s.setReaders()
	if s.republish && isKey && w.media != nil {
		w.setTracks()
		s.republish = false
	}
	w.accept(s.video, s.ticks(pts), ptsClock, frames, isKey, now)
	return nil
}

// WriteAudio writes the audio of one PES packet: CodecAAC as ADTS frames (one
// or more), CodecPCMA or CodecPCMU as G.711 bytes (8 kHz mono). pts is the
// first frame's presentation time in 90 kHz ticks. The bytes are copied.
func (s *Sink) WriteAudio(codec string, pts int64, frame []byte) error {
	var proto Track
	var frames [][]byte
	switch codec {
	case CodecAAC:
		var pkts mpeg4audio.ADTSPackets
		if err := pkts.Unmarshal(bytes.Clone(frame)); err != nil {
			return fmt.Errorf("ingest: AAC audio is not valid ADTS: %w", err)
		}
		p0 := pkts[0]
		cfg, err := mpeg4audio.AudioSpecificConfig{Type: p0.Type, SampleRate: p0.SampleRate, ChannelCount: p0.ChannelCount}.Marshal()
		if err != nil {
			return fmt.Errorf("ingest: AAC audio config: %w", err)
		}
		proto = Track{Codec: CodecAAC, ClockRate: p0.SampleRate, SampleRate: p0.SampleRate, ChannelCount: p0.ChannelCount, AACConfig: cfg}
		for _, p := range pkts {
			frames = append(frames, p.AU)
		}
	case CodecPCMA, CodecPCMU:
		if len(frame) == 0 {
			return errors.New("ingest: empty G.711 audio")
		}
		proto = Track{Codec: codec, ClockRate: 8000, SampleRate: 8000, ChannelCount: 1}
		frames = [][]byte{bytes.Clone(frame)}
	default:
		return fmt.Errorf("ingest: unsupported audio codec %q (want %s, %s or %s)", codec, CodecAAC, CodecPCMA, CodecPCMU)
	}
	changed := s.audio == nil || !sameTracks([]*Track{&s.audio.proto}, []*Track{&proto})
	if changed {
		s.audio = newPushedAudio(proto)
		s.w.p.setPreviousAudio(&proto)
	}
	now := time.Now()

	w := s.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ctx.Err() != nil {
		return ErrSinkClosed
	}
	w.arrived(now)
	s.setReaders()
	if changed && w.media != nil {
		s.republish = true // audio after the first keyframe, or a new audio format
	}
	rel := s.ticks(pts)
	if s.republish {
		return nil // published with the next keyframe
	}
	w.accept(s.audio, rel, ptsClock, frames, false, now)
	return nil
}

// newPushedAudio returns the reader of a pushed stream's audio track.
func newPushedAudio(proto Track) *trackReader {
	tr := &trackReader{proto: proto}
	if proto.Codec == CodecAAC {
		// the frames of one PES packet follow each other, in 90 kHz ticks
		tr.frameSamples = mpeg4audio.SamplesPerAccessUnit * ptsClock / proto.SampleRate
	}
	return tr
}

// arrived counts a unit of a pushed session; the first one starts the
// session's clock for the keyframe and stall checks. Called with w.mu held.
func (w *sessionWriter) arrived(now time.Time) {
	if w.packets == 0 {
		w.start = now
	}
	w.packets++
}

// setReaders lists the session's tracks, video first; called with w.mu held.
func (s *Sink) setReaders() {
	if s.video == nil {
		return
	}
	r := s.w.readers[:0]
	r = append(r, s.video)
	if s.audio != nil {
		r = append(r, s.audio)
	}
	s.w.readers = r
}

// ticks returns pts as ticks since the session's first PTS, unwrapping the
// 33-bit timestamps of MPEG-PS (and accepting ones unwrapped already).
func (s *Sink) ticks(pts int64) int64 {
	if !s.started {
		s.started, s.lastPTS = true, pts
		return 0
	}
	const wrap = 1 << 33
	d := (pts - s.lastPTS) & (wrap - 1)
	if d >= wrap/2 {
		d -= wrap // a step back (B-frames, audio interleaved with video)
	}
	s.lastPTS = pts
	s.ext += d
	return s.ext
}

// pushSession runs one session of a pushed stream: the Source's Play, watched
// for stalls like an RTSP session.
func (p *puller) pushSession(ctx context.Context) (time.Time, error) {
	cam := p.camera()
	if p.cfg.source == nil {
		return time.Time{}, &PullError{Kind: ErrSource,
			Msg: fmt.Sprintf("nothing plays %q cameras: the %s service is not enabled", cam.Source, cam.Source)}
	}
	p.leaveIdle()
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := &sessionWriter{p: p, ctx: pctx, pushed: true, start: time.Now()}
	sink := &Sink{w: w}
	waitErr := make(chan error, 1)
	played := make(chan struct{})
	go func() {
		defer close(played)
		waitErr <- p.play(pctx, cam, sink)
	}()
	online, err := p.watch(ctx, w, waitErr)
	// ended by the Source, by ctx, or stalled: the Source's session ends too
	cancel()
	<-played
	if err == nil && ctx.Err() == nil {
		err = &PullError{Kind: ErrClosedByCamera, Msg: "the device ended the stream"}
	}
	return online, err
}

// play calls the Source's Play; a panic in it becomes the session's error.
func (p *puller) play(ctx context.Context, cam Camera, sink *Sink) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("the %s source failed: %v", cam.Source, r)
		}
	}()
	return p.cfg.source.Play(ctx, cam, p.cfg.kind, sink)
}

func (p *puller) previousAudio() *Track {
	p.clockMu.Lock()
	defer p.clockMu.Unlock()
	return p.lastAudio
}

func (p *puller) setPreviousAudio(t *Track) {
	p.clockMu.Lock()
	p.lastAudio = t
	p.clockMu.Unlock()
}

func (p *puller) camera() Camera {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cam
}

// setCamera updates the camera a pushed stream's next session plays.
func (p *puller) setCamera(c Camera) {
	p.mu.Lock()
	p.cam = c
	p.mu.Unlock()
}

// awaitDemand waits until something needs the stream, idle meanwhile. It
// returns false when ctx ended first.
func (p *puller) awaitDemand(ctx context.Context) bool {
	for {
		ok, changed := p.cfg.stream.demand()
		if ok {
			return true
		}
		p.setIdle()
		select {
		case <-ctx.Done():
			return false
		case <-changed:
		}
	}
}

// whileDemanded returns a context that ends linger after nothing needs the
// stream any more (unless something needs it again before), idled telling
// whether it ended so. stop releases it; call it when the session ended.
// checking (a sub-stream's first session, or the next after a failure):
// the session proves the stream works; it goes on until it is online, then
// ends at once if nothing has needed it (linger after, if something has).
func (p *puller) whileDemanded(ctx context.Context, checking bool) (sctx context.Context, idled func() bool, stop func()) {
	sctx, cancel := context.WithCancel(ctx)
	var online <-chan struct{}
	if checking {
		ch := make(chan struct{})
		p.mu.Lock()
		p.wentOnline = ch
		p.mu.Unlock()
		online = ch
	}
	var gone atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		var timer *time.Timer
		var fire <-chan time.Time
		defer func() {
			if timer != nil {
				timer.Stop()
			}
		}()
		// a check that nothing needed ends once online; something that
		// needed the stream meanwhile has it linger as always
		linger := p.cfg.linger
		if checking {
			linger = 0
		}
		for {
			ok, changed := p.cfg.stream.demand()
			if ok {
				linger = p.cfg.linger
			}
			switch {
			case ok && timer != nil:
				timer.Stop()
				timer, fire = nil, nil
			case !ok && timer == nil && online == nil:
				timer = time.NewTimer(linger)
				fire = timer.C
			}
			select {
			case <-sctx.Done():
				return
			case <-changed:
			case <-online:
				online = nil // checked: from now on, as demand says
			case <-fire:
				gone.Store(true)
				cancel()
				return
			}
		}
	}()
	return sctx, gone.Load, func() {
		cancel()
		<-done
		p.mu.Lock()
		p.wentOnline = nil
		p.mu.Unlock()
	}
}

// leaveIdle marks an idle stream connecting: a session starts.
func (p *puller) leaveIdle() {
	p.mu.Lock()
	if p.state == StateIdle {
		p.state, p.since = StateConnecting, time.Now()
	}
	p.mu.Unlock()
}

// setIdle records that nothing needs the stream. The last error stays, for
// whoever looks why the last session failed.
func (p *puller) setIdle() {
	p.cfg.stream.idle()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state == StateIdle {
		return
	}
	p.state, p.since = StateIdle, time.Now()
	p.video, p.audio = nil, nil
	p.logger().Info("camera stream idle: nothing needs it")
}
