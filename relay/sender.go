package relay

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/vigil-vms/vigil/ingest"
)

const (
	// maxPayload bounds RTP payloads so that packets fit in any path MTU
	// after SRTP and TURN overheads.
	maxPayload = 1200
	// backlogStep is the presentation-time distance between the cached
	// pictures sent at once to a new viewer: small, so that the browser shows
	// them all at once and then plays live, distinct so each is its own frame.
	backlogStep = 100 * time.Microsecond
)

// sender writes one viewer's units as RTP, mapping the camera's PTS to a
// presentation timeline P that starts with the cached GOP compressed into a
// few milliseconds and then runs at the camera's pace:
//
//	cached pictures: P = base, base+step, base+2·step, …  (all due at once: the
//	                 browser decodes them and shows the newest, the live edge)
//	live units:      P = PTS + offset, with offset chosen so that the live edge
//	                 continues right after the last cached picture
//
// so the first frame is shown immediately and the viewer plays live without
// keeping the GOP's age as latency. RTP timestamps are P × clock rate, plus a
// random base per track; they only ever increase.
type sender struct {
	plan    *plan
	video   *rtpTrack
	audio   *rtpTrack    // nil: no audio
	packets *packetCache // the stream's payloads, shared with its other viewers
	conn    *udpConn     // nil: no batching (tests)
	// collect, when set (by the group serving the viewer), takes the
	// picture's packets to send them with other viewers' (udpConn.sendBatches)
	collect func(*corkBatch)
	dst     *atomic.Pointer[netip.AddrPort] // the viewer's UDP address when known
	vbase   uint32
	abase   uint32
	vseq    uint16
	aseq    uint16

	videoIndex int // track index of the video in the current Media
	audioIndex int // -1: audio not sent (none, or its codec changed)

	started       bool
	offset        time.Duration // live: P = PTS + offset
	lastP         time.Duration // P of the last video picture sent
	lastPTS       time.Duration // PTS of the last video picture seen
	lastAudioP    time.Duration
	audioStarted  bool
	keyframesOnly bool // the stream turned out to reorder pictures (B-frames)
	behind        bool // a picture was older than the cached GOPs: skip to a newer keyframe
	lastKeyframe  time.Time
	onReorder     func()

	// vhdr and ahdr are the headers of the packets being written, reused:
	// nothing keeps a header after the write (the history below keeps what
	// a resend needs).
	vhdr, ahdr rtp.Header
	history    history

	// now is the time of the unit being written (set by writeLiveAt):
	// one clock reading a unit
	now        time.Time
	vrep, arep trackReport
	lastReport time.Time // when the sender reports were last sent
}

// trackReport is what a sender report tells of a track (RFC 3550 6.4.1):
// the sender makes them itself, so that a viewer needs no goroutine and
// ticker of an interceptor, and a packet no lock.
type trackReport struct {
	packets, octets uint32
	lastTS          uint32    // RTP timestamp of the last picture or frame sent
	lastAt          time.Time // when it was sent
}

func (r *trackReport) sent(ts uint32, now time.Time, packets, octets int) {
	if r.packets == 0 || ts != r.lastTS {
		r.lastTS, r.lastAt = ts, now
	}
	r.packets += uint32(packets)
	r.octets += uint32(octets)
}

// report returns the track's sender report at now, nil before its first packet.
func (r *trackReport) report(ssrc uint32, clock uint32, now time.Time) *rtcp.SenderReport {
	if r.packets == 0 {
		return nil
	}
	return &rtcp.SenderReport{
		SSRC:        ssrc,
		NTPTime:     ntpTime(now),
		RTPTime:     r.lastTS + uint32(now.Sub(r.lastAt).Seconds()*float64(clock)),
		PacketCount: r.packets,
		OctetCount:  r.octets,
	}
}

// ntpTime is t in the NTP format: seconds since 1900 in the high 32 bits,
// the fraction in the low ones.
func ntpTime(t time.Time) uint64 {
	const unixToNTP = 2208988800
	ns := uint64(t.UnixNano())
	sec := ns/1e9 + unixToNTP
	frac := (ns % 1e9) << 32 / 1e9
	return sec<<32 | frac
}

// reportInterval is how often a viewer gets sender reports.
const reportInterval = time.Second

// reports returns the sender reports due at now (nil when none is due).
func (s *sender) reports(now time.Time) []rtcp.Packet {
	if now.Sub(s.lastReport) < reportInterval {
		return nil
	}
	s.lastReport = now
	var out []rtcp.Packet
	if ssrc, ok := s.video.boundSSRC(); ok {
		if r := s.vrep.report(ssrc, 90000, now); r != nil {
			out = append(out, r)
		}
	}
	if s.audio != nil {
		if ssrc, ok := s.audio.boundSSRC(); ok {
			if r := s.arep.report(ssrc, s.plan.Audio.ClockRate, now); r != nil {
				out = append(out, r)
			}
		}
	}
	return out
}

// sentUnit is a video unit kept for resending its packets (NACK): the
// headers are made again from it (its packets have consecutive sequence
// numbers from seq, one timestamp) and the payloads are the shared,
// immutable ones.
type sentUnit struct {
	payloads []payload
	ts       uint32
	seq      uint16
}

// history is the viewer's NACK responder: the last nackUnits video units it
// was sent, 32 bytes each (a packet-by-packet ring kept 16 KB a viewer).
type history struct {
	mu   sync.Mutex
	ring []sentUnit // nil until the first unit
	next int
	// tokens and filled are the resend budget (see resendRate)
	tokens float64
	filled time.Time
}

// resendRate and resendBurst bound the packets a viewer is sent again, per
// second and at once: a viewer that loses much (its network, or a relay
// too slow for its viewers) must not multiply the load with its NACKs.
const (
	resendRate  = 100
	resendBurst = 100
)

// budget takes up to n packets from the resend budget at now and returns
// how many it may send.
func (h *history) budget(n int, now time.Time) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.filled.IsZero() {
		h.tokens = resendBurst
	} else {
		h.tokens = min(resendBurst, h.tokens+now.Sub(h.filled).Seconds()*resendRate)
	}
	h.filled = now
	n = min(n, int(h.tokens))
	h.tokens -= float64(n)
	return n
}

func (h *history) add(seq uint16, ts uint32, payloads []payload) {
	h.mu.Lock()
	if h.ring == nil {
		h.ring = make([]sentUnit, nackUnits)
	}
	h.ring[h.next] = sentUnit{payloads: payloads, ts: ts, seq: seq}
	h.next = (h.next + 1) % nackUnits
	h.mu.Unlock()
}

// lookup appends the kept packets among seqs to out.
func (h *history) lookup(seqs []uint16, out []sentPacket) []sentPacket {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, seq := range seqs {
		// newest first: a sequence number that wrapped is the recent packet
		for i := range h.ring {
			e := &h.ring[(h.next-1-i+2*nackUnits)%nackUnits]
			if k := int(seq - e.seq); k < len(e.payloads) {
				pl := e.payloads[k]
				out = append(out, sentPacket{data: pl.data, ts: e.ts, seq: seq, marker: pl.marker})
				break
			}
		}
	}
	return out
}

// sentPacket is a packet found in the history.
type sentPacket struct {
	data   []byte
	ts     uint32
	seq    uint16
	marker bool
}

func newSender(p *plan, packets *packetCache, video, audio *rtpTrack) (*sender, error) {
	s := &sender{plan: p, video: video, audio: audio, packets: packets, videoIndex: p.VideoTrack.Index, audioIndex: -1}
	if audio != nil {
		s.audioIndex = p.AudioTrack.Index
	}
	switch p.VideoTrack.Codec {
	case ingest.CodecH264, ingest.CodecH265:
	default:
		return nil, fmt.Errorf("no packetizer for %s", p.VideoTrack.Codec)
	}
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("random timestamps: %w", err)
	}
	s.vbase = binary.BigEndian.Uint32(b[0:4])
	s.abase = binary.BigEndian.Uint32(b[4:8])
	s.vseq = binary.BigEndian.Uint16(b[8:10])
	s.aseq = binary.BigEndian.Uint16(b[10:12])
	return s, nil
}

// follow adopts a new generation of the camera's tracks (same video codec).
func (s *sender) follow(m *ingest.Media) {
	s.videoIndex = m.Video().Index
	s.audioIndex = -1
	if s.audio != nil {
		if at := m.Audio(); at != nil && at.Codec == s.plan.AudioTrack.Codec {
			s.audioIndex = at.Index
		}
	}
}

// ticks converts a presentation time to RTP clock ticks without overflow.
func ticks(p time.Duration, clock uint32) uint32 {
	sec := int64(p / time.Second)
	rem := int64(p % time.Second)
	return uint32(sec*int64(clock) + rem*int64(clock)/int64(time.Second))
}

func (s *sender) isVideo(u *ingest.Unit) bool {
	return u.Track != nil && u.Track.Video && u.Track.Index == s.videoIndex
}

// writeBacklog sends the cached GOP at once (see sender). Audio of the past is
// not sent: it would only add latency to the browser's audio buffer.
func (s *sender) writeBacklog(units []*ingest.Unit) error {
	s.now = time.Now()
	var pics []*ingest.Unit
	for _, u := range units {
		if !s.isVideo(u) {
			continue
		}
		if len(pics) == 0 && !u.Keyframe {
			continue
		}
		pics = append(pics, u)
	}
	if len(pics) == 0 {
		return nil
	}
	base := time.Duration(0)
	if s.started {
		base = s.lastP + backlogStep
	}
	s.lastPTS = pics[0].PTS
	p := base
	for _, u := range pics {
		if s.checkReorder(u) {
			continue
		}
		if err := s.writeVideo(u, p); err != nil {
			return err
		}
		if s.behind {
			break // the rest at a newer keyframe
		}
		s.lastP = p
		s.offset = p - u.PTS
		p += backlogStep
	}
	s.started = true
	return nil
}

// checkReorder notes a picture whose PTS goes backwards (a B-frame) and
// switches to keyframes only; it reports whether u must be skipped.
func (s *sender) checkReorder(u *ingest.Unit) bool {
	if u.PTS < s.lastPTS && !s.keyframesOnly {
		s.keyframesOnly = true
		if s.onReorder != nil {
			s.onReorder()
		}
	}
	if u.PTS > s.lastPTS {
		s.lastPTS = u.PTS
	}
	return s.keyframesOnly && !u.Keyframe
}

// writeLive sends one live unit.
func (s *sender) writeLive(u *ingest.Unit) error { return s.writeLiveAt(u, time.Now()) }

// writeLiveAt sends one live unit at now.
func (s *sender) writeLiveAt(u *ingest.Unit, now time.Time) error {
	s.now = now
	if u.Track == nil {
		return nil
	}
	if s.behind {
		if !s.isVideo(u) || !u.Keyframe {
			return nil
		}
		s.behind = false
	}
	if s.isVideo(u) {
		if !s.started {
			if !u.Keyframe {
				return nil
			}
			s.offset = -u.PTS
			s.lastPTS = u.PTS
			s.lastP = -backlogStep
			s.started = true
		}
		if s.checkReorder(u) {
			return nil
		}
		p := u.PTS + s.offset
		if p <= s.lastP {
			return nil
		}
		if err := s.writeVideo(u, p); err != nil {
			return err
		}
		if !s.behind {
			s.lastP = p
		}
		return nil
	}
	if s.audio == nil || u.Track.Index != s.audioIndex || !s.started || len(u.Data) == 0 {
		return nil
	}
	p := u.PTS + s.offset
	if p < 0 || (s.audioStarted && p <= s.lastAudioP) {
		return nil
	}
	if err := s.writeAudio(u.Data[0], p); err != nil {
		return err
	}
	s.lastAudioP = p
	s.audioStarted = true
	return nil
}

func (s *sender) writeVideo(u *ingest.Unit, p time.Duration) (err error) {
	payloads, err := s.packets.get(u)
	if errors.Is(err, errTooOld) {
		s.behind = true
		return nil
	}
	if err != nil {
		return fmt.Errorf("packetize video: %w", err)
	}
	if s.conn != nil && s.dst != nil {
		if d := s.dst.Load(); d != nil {
			// the picture's packets leave in as few system calls as possible
			s.conn.cork(*d)
			defer func() {
				if s.collect != nil {
					if b := s.conn.uncork(*d); b != nil {
						s.collect(b)
					}
				} else if ferr := s.conn.flush(*d); ferr != nil && err == nil {
					err = fmt.Errorf("write video: %w", ferr)
				}
			}()
		}
	}
	ts := s.vbase + ticks(p, 90000)
	h := &s.vhdr
	s.history.add(s.vseq, ts, payloads)
	octets := 0
	for _, pl := range payloads {
		*h = rtp.Header{Version: 2, SequenceNumber: s.vseq, Timestamp: ts, Marker: pl.marker}
		s.vseq++
		octets += len(pl.data)
		if err := s.video.writeRTP(h, pl.data); err != nil {
			return fmt.Errorf("write video: %w", err)
		}
	}
	s.vrep.sent(ts, s.now, len(payloads), octets)
	if u.Keyframe {
		s.lastKeyframe = s.now
	}
	return nil
}

// writeAudio sends one audio frame: Opus as one packet, G.711 split into
// packets of at most maxPayload samples.
func (s *sender) writeAudio(frame []byte, p time.Duration) error {
	clock := s.plan.Audio.ClockRate
	ts := s.abase + ticks(p, clock)
	chunk := len(frame)
	if s.plan.AudioTrack.Codec != ingest.CodecOpus && chunk > maxPayload {
		chunk = maxPayload
	}
	for off := 0; off < len(frame); off += chunk {
		end := min(off+chunk, len(frame))
		h := &s.ahdr
		*h = rtp.Header{
			Version: 2, SequenceNumber: s.aseq, Timestamp: ts + uint32(off), // G.711: one byte per sample
		}
		s.aseq++
		if err := s.audio.writeRTP(h, frame[off:end]); err != nil {
			return fmt.Errorf("write audio: %w", err)
		}
		s.arep.sent(h.Timestamp, s.now, 1, end-off)
	}
	return nil
}

// resend sends again the video packets a viewer's NACK asks for, those
// still in its history; it may run beside the sending goroutine. It returns
// how many it sent.
func (s *sender) resend(n *rtcp.TransportLayerNack) (int, error) {
	var seqs []uint16
	for _, pair := range n.Nacks {
		seqs = append(seqs, pair.PacketList()...)
	}
	var buf [17]sentPacket
	kept := s.history.lookup(seqs, buf[:0])
	kept = kept[:s.history.budget(len(kept), time.Now())]
	for _, p := range kept {
		h := &rtp.Header{Version: 2, SequenceNumber: p.seq, Timestamp: p.ts, Marker: p.marker}
		if err := s.video.writeRTP(h, p.data); err != nil {
			return 0, fmt.Errorf("resend video: %w", err)
		}
	}
	return len(kept), nil
}
