package camsim

import (
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// maxLateness is how far behind schedule a frame may be and still be sent. A pacer that
// falls further behind (a starved CPU, a suspended machine) skips frames instead of
// sending a burst.
const maxLateness = time.Second

// stream is one camera stream (main or sub): a gortsplib ServerStream fed by one pacing
// goroutine that loops the stream's clips.
type stream struct {
	s      *Server
	path   string
	ss     *gortsplib.ServerStream
	tracks []*track
	// silent is a stream with the same medias that never carries a packet, for UDP
	// readers under Options.SilentUDP; nil otherwise.
	silent *gortsplib.ServerStream
	// newGOP asks the pacer to make the next video frame a keyframe (Options.KeyframeOnPlay).
	newGOP atomic.Bool
}

// track is the looping state of one media of a stream. Only the pacing goroutine
// touches it after newStream.
type track struct {
	media *description.Media
	clip  *clip
	pt    uint8

	lastSR time.Time // when Options.SenderReportEvery last sent a sender report
	shift  int64     // ticks added to the position by restartGOP
	next   int       // index of the next frame in clip.frames
	loop   int64     // completed loops
	tsBase uint32
	seq    uint16
	pkt    rtp.Packet // reused for every packet: gortsplib marshals it before returning
}

func newStream(s *Server, path string, video, audio *clip) (*stream, error) {
	st := &stream{s: s, path: path}
	desc := &description.Session{Title: "camsim " + path}
	add := func(typ description.MediaType, c *clip) {
		m := &description.Media{Type: typ, Formats: []format.Format{c.format}}
		desc.Medias = append(desc.Medias, m)
		st.tracks = append(st.tracks, &track{
			media:  m,
			clip:   c,
			pt:     c.format.PayloadType(),
			tsBase: rand.Uint32(),
			seq:    uint16(rand.Uint32()),
		})
	}
	add(description.MediaTypeVideo, video)
	if audio != nil {
		add(description.MediaTypeAudio, audio)
	}
	st.ss = &gortsplib.ServerStream{Server: s.rtsp, Desc: desc}
	if err := st.ss.Initialize(); err != nil {
		return nil, fmt.Errorf("initialize rtsp stream: %w", err)
	}
	if s.opts.SilentUDP {
		silentDesc := &description.Session{Title: desc.Title}
		for _, m := range desc.Medias {
			silentDesc.Medias = append(silentDesc.Medias, &description.Media{Type: m.Type, Formats: m.Formats})
		}
		st.silent = &gortsplib.ServerStream{Server: s.rtsp, Desc: silentDesc}
		if err := st.silent.Initialize(); err != nil {
			st.ss.Close()
			return nil, fmt.Errorf("initialize silent rtsp stream: %w", err)
		}
	}
	return st, nil
}

// close closes the stream's readers; the pacing goroutine must have ended.
func (st *stream) close() {
	st.ss.Close()
	if st.silent != nil {
		st.silent.Close()
	}
}

// ticksToDuration converts clock-rate ticks to a duration without overflowing for any
// realistic run time.
func ticksToDuration(ticks int64, clockRate int) time.Duration {
	cr := int64(clockRate)
	return time.Duration(ticks/cr)*time.Second + time.Duration(ticks%cr)*time.Second/time.Duration(cr)
}

// position returns the time of the track's next frame since the start, in clock ticks.
func (t *track) position() int64 {
	return t.shift + t.loop*t.clip.duration + t.clip.frames[t.next].pts
}

// restartGOP makes the next frame the next keyframe of the clip, skipping the rest of
// the current GOP, at the same position: timestamps go on without a jump.
func (t *track) restartGOP() {
	if t.clip.frames[t.next].key {
		return
	}
	at := t.position()
	for {
		t.advance()
		if t.clip.frames[t.next].key {
			break
		}
	}
	t.shift += at - t.position()
}

// advance moves to the next frame, wrapping to the next loop at the end of the clip.
func (t *track) advance() {
	t.next++
	if t.next == len(t.clip.frames) {
		t.next = 0
		t.loop++
	}
}

// rtpTimestamp is the RTP timestamp of the track's next frame. It keeps increasing
// across loops (modulo 2^32, as RTP timestamps do).
func (t *track) rtpTimestamp() uint32 {
	return t.tsBase + uint32(t.position())
}

// run paces the stream in real time from start until done is closed.
func (st *stream) run(done <-chan struct{}, start time.Time) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if st.newGOP.Swap(false) {
			st.tracks[0].restartGOP()
		}
		// the track whose next frame is due first
		var tr *track
		var due time.Time
		for _, t := range st.tracks {
			at := start.Add(ticksToDuration(t.position(), t.clip.clockRate))
			if tr == nil || at.Before(due) {
				tr, due = t, at
			}
		}
		if wait := time.Until(due) + st.s.arrivalJitter(); wait > 0 {
			timer.Reset(wait)
			select {
			case <-done:
				return
			case <-timer.C:
			}
		} else {
			select {
			case <-done:
				return
			default:
			}
		}
		if time.Since(due) <= maxLateness {
			st.send(tr, due)
		}
		tr.advance()
	}
}

// send writes the track's next frame to every reader, unless a fault holds it back.
// Frames held back consume no sequence numbers.
func (st *stream) send(t *track, at time.Time) {
	f := &t.clip.frames[t.next]
	if st.s.stall.Load() || (f.key && st.s.withholding(at)) {
		return
	}
	ts := t.rtpTimestamp()
	ntp := st.s.cameraClock(at)
	for _, p := range f.payloads {
		t.pkt.Header = rtp.Header{
			Version:        2,
			Marker:         p.marker,
			PayloadType:    t.pt,
			SequenceNumber: t.seq,
			Timestamp:      ts,
		}
		t.pkt.Payload = p.data
		t.seq++
		if err := st.ss.WritePacketRTPWithNTP(t.media, &t.pkt, ntp); err != nil {
			// only after the stream was closed, which happens after this goroutine ends
			st.s.log.Warn("camsim write rtp", "camera", st.path, "error", err)
			return
		}
	}
	if every := st.s.opts.SenderReportEvery; every > 0 && t == st.tracks[0] && at.Sub(t.lastSR) >= every {
		t.lastSR = at
		// gortsplib set the packet's SSRC to the stream's
		sr := &rtcp.SenderReport{SSRC: t.pkt.SSRC, NTPTime: ntpTime(ntp), RTPTime: ts}
		if err := st.ss.WritePacketRTCP(t.media, sr); err != nil {
			st.s.log.Warn("camsim write rtcp", "camera", st.path, "error", err)
		}
	}
}

// cameraClock is the time that the camera's clock shows at real time at: off by
// Options.ClockOffset, and by a random amount within ±Options.Jitter.
func (s *Server) cameraClock(at time.Time) time.Time {
	t := at.Add(s.opts.ClockOffset)
	if j := s.opts.Jitter; j > 0 {
		t = t.Add(time.Duration(rand.Int64N(int64(2*j)+1)) - j)
	}
	return t
}

// maxArrivalJitter caps how late Options.Jitter makes a frame.
const maxArrivalJitter = 100 * time.Millisecond

// arrivalJitter is how late to send the next frame: up to Options.Jitter/20.
func (s *Server) arrivalJitter() time.Duration {
	j := min(s.opts.Jitter/20, maxArrivalJitter)
	if j <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(j) + 1))
}

// ntpTime converts a time to the 64-bit NTP format of RTCP (seconds since 1900, and
// the fraction).
func ntpTime(t time.Time) uint64 {
	const epochOffset = 2208988800 // seconds from 1900 to 1970
	ns := t.UnixNano()
	sec := uint64(ns/1e9 + epochOffset)
	frac := uint64(ns%1e9) << 32 / 1e9
	return sec<<32 | frac
}
