package relay

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph265"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/vigil-vms/vigil/ingest"
)

// maxCachedUnits bounds a packetCache whose camera sends no keyframe for
// long: beyond it, the older half is forgotten.
const maxCachedUnits = 2048

// payload is one RTP payload of a video unit; marker is set on the unit's last.
type payload struct {
	data   []byte // shared by every viewer of the stream: read only
	marker bool
}

// packetCache packetizes each video unit of one camera stream once and shares
// the RTP payloads between all the viewers of the stream: a viewer only stamps
// its own header (sequence number, timestamp, SSRC, payload type). The
// payloads do not depend on anything a viewer negotiated (packetization mode 1
// for H.264, payloads of at most maxPayload bytes).
//
// It keeps the units of the current and the previous GOP, which covers a new
// viewer's backlog and viewers a little behind the live edge; a unit older
// than that is not packetized (errTooOld): a viewer that far behind resumes
// at a newer keyframe. (Packetized again for each viewer that asked, such
// units made every late viewer hold its own copies of its last pictures:
// 1 GB at 1000 viewers of an overloaded relay.)
type packetCache struct {
	mu      sync.Mutex
	units   map[*ingest.Unit]*packetized
	lastKey uint64 // Seq of the newest keyframe seen
	keep    uint64 // units with a lower Seq are not kept (older than the previous GOP)
	newest  uint64
	refs    int // sessions using the cache (guarded by Relay.mu)

	encMu sync.Mutex // guards the encoders (packetizing happens once per unit)
	h264  *rtph264.Encoder
	h265  *rtph265.Encoder
}

// packetized is the payloads of one unit, made once by whoever asks first.
type packetized struct {
	once     sync.Once
	payloads []payload
	err      error
}

func newPacketCache() *packetCache {
	return &packetCache{units: map[*ingest.Unit]*packetized{}}
}

// errTooOld is the error of a unit older than the previous GOP.
var errTooOld = errors.New("unit older than the cached GOPs")

// get returns the RTP payloads of a video unit (shared: read only), or
// errTooOld.
func (c *packetCache) get(u *ingest.Unit) ([]payload, error) {
	c.mu.Lock()
	e := c.units[u]
	if e == nil {
		if u.Seq < c.keep {
			c.mu.Unlock()
			return nil, errTooOld
		}
		e = &packetized{}
		c.units[u] = e
		c.note(u)
	}
	c.mu.Unlock()
	e.once.Do(func() { e.payloads, e.err = c.packetize(u) })
	return e.payloads, e.err
}

// note moves the window of kept units on a new keyframe (c.mu held).
func (c *packetCache) note(u *ingest.Unit) {
	if u.Seq > c.newest {
		c.newest = u.Seq
	}
	switch {
	case u.Keyframe && u.Seq > c.lastKey:
		c.keep, c.lastKey = c.lastKey, u.Seq
	case len(c.units) > maxCachedUnits:
		c.keep = c.newest - maxCachedUnits/2
	default:
		return
	}
	for k := range c.units {
		if k.Seq < c.keep {
			delete(c.units, k)
		}
	}
}

func (c *packetCache) packetize(u *ingest.Unit) ([]payload, error) {
	if u.Track == nil {
		return nil, fmt.Errorf("unit without a track")
	}
	c.encMu.Lock()
	defer c.encMu.Unlock()
	var pkts []*rtp.Packet
	var err error
	switch u.Track.Codec {
	case ingest.CodecH264:
		if c.h264 == nil {
			e := &rtph264.Encoder{PayloadMaxSize: maxPayload, PacketizationMode: 1, SSRC: new(uint32), InitialSequenceNumber: new(uint16)}
			if err := e.Init(); err != nil {
				return nil, fmt.Errorf("h264 packetizer: %w", err)
			}
			c.h264 = e
		}
		pkts, err = c.h264.Encode(u.Data)
	case ingest.CodecH265:
		if c.h265 == nil {
			e := &rtph265.Encoder{PayloadMaxSize: maxPayload, SSRC: new(uint32), InitialSequenceNumber: new(uint16)}
			if err := e.Init(); err != nil {
				return nil, fmt.Errorf("h265 packetizer: %w", err)
			}
			c.h265 = e
		}
		pkts, err = c.h265.Encode(u.Data)
	default:
		return nil, fmt.Errorf("no packetizer for %s", u.Track.Codec)
	}
	if err != nil {
		return nil, err
	}
	out := make([]payload, len(pkts))
	for i, p := range pkts {
		out[i] = payload{data: p.Payload, marker: p.Marker}
	}
	return out, nil
}

// rtpTrack is a local track of one viewer's peer connection that writes RTP
// packets as they are given: unlike webrtc.TrackLocalStaticRTP it copies
// nothing: the header is marshalled during the write (the caller may reuse
// it), the payload must be one that nobody modifies (the viewer's NACK
// history keeps it for resending).
type rtpTrack struct {
	codec webrtc.RTPCodecParameters // what the plan chose
	id    string

	mu    sync.RWMutex
	bound bool
	ssrc  uint32
	pt    uint8
	out   webrtc.TrackLocalWriter
}

var _ webrtc.TrackLocal = (*rtpTrack)(nil)

func newRTPTrack(c webrtc.RTPCodecParameters, id string) *rtpTrack {
	return &rtpTrack{codec: c, id: id}
}

// Bind takes the codec negotiated for the track: the plan's payload type when
// the answer kept it, otherwise the first with the plan's MIME type.
func (t *rtpTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	var chosen *webrtc.RTPCodecParameters
	params := ctx.CodecParameters()
	for i, c := range params {
		if !strings.EqualFold(c.MimeType, t.codec.MimeType) {
			continue
		}
		if c.PayloadType == t.codec.PayloadType {
			chosen = &params[i]
			break
		}
		if chosen == nil {
			chosen = &params[i]
		}
	}
	if chosen == nil {
		return webrtc.RTPCodecParameters{}, webrtc.ErrUnsupportedCodec
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.bound, t.ssrc, t.pt, t.out = true, uint32(ctx.SSRC()), uint8(chosen.PayloadType), ctx.WriteStream()
	return *chosen, nil
}

// Unbind stops the writes.
func (t *rtpTrack) Unbind(webrtc.TrackLocalContext) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.bound, t.out = false, nil
	return nil
}

func (t *rtpTrack) ID() string       { return t.id }
func (t *rtpTrack) RID() string      { return "" }
func (t *rtpTrack) StreamID() string { return "vigil" }

func (t *rtpTrack) Kind() webrtc.RTPCodecType {
	if strings.HasPrefix(t.codec.MimeType, "video/") {
		return webrtc.RTPCodecTypeVideo
	}
	return webrtc.RTPCodecTypeAudio
}

// hasSSRC tells whether the track was bound with that SSRC.
func (t *rtpTrack) hasSSRC(ssrc uint32) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.bound && t.ssrc == ssrc
}

// boundSSRC returns the track's SSRC once it is bound.
func (t *rtpTrack) boundSSRC() (uint32, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.ssrc, t.bound
}

// writeRTP sets the header's SSRC and payload type and sends the packet; it
// is dropped silently before the track is bound (as pion's tracks do).
func (t *rtpTrack) writeRTP(h *rtp.Header, data []byte) error {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if !t.bound {
		return nil
	}
	h.SSRC, h.PayloadType = t.ssrc, t.pt
	_, err := t.out.WriteRTP(h, data)
	return err
}
