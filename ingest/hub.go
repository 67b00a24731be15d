package ingest

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// Codec names as they appear in status and in Track.Codec.
const (
	CodecH264 = "H264"
	CodecH265 = "H265"
	CodecAAC  = "AAC"
	CodecOpus = "Opus"
	CodecPCMU = "PCMU" // G.711 µ-law
	CodecPCMA = "PCMA" // G.711 A-law
)

// Track describes one elementary stream of a camera stream.
// A Track is immutable once published through Stream.SetTracks.
type Track struct {
	Index     int    // position in Media.Tracks
	Video     bool   // video or audio
	Codec     string // one of the Codec* constants
	ClockRate int    // RTP clock rate of the camera's track

	// Video: the parameter sets the camera announced (SDP or first keyframe).
	// Keyframe units carry their own current parameter sets in front; these are
	// only the ones known when the track was published.
	VPS, SPS, PPS []byte
	Width, Height int

	// Audio.
	SampleRate   int
	ChannelCount int
	AACConfig    []byte // AudioSpecificConfig, for AAC
}

// Media is the set of tracks of one session of a camera stream. When the camera
// reconnects with the same tracks, the Stream keeps the same *Media, so that
// subscribers can continue without renegotiation; when they differ, a new
// *Media with a higher Generation is published.
type Media struct {
	Generation int
	Tracks     []*Track
}

// Video returns the first video track, or nil.
func (m *Media) Video() *Track {
	for _, t := range m.Tracks {
		if t.Video {
			return t
		}
	}
	return nil
}

// Audio returns the first audio track, or nil.
func (m *Media) Audio() *Track {
	for _, t := range m.Tracks {
		if !t.Video {
			return t
		}
	}
	return nil
}

// Unit is one access unit: a video picture (its NAL units) or one audio frame.
// Units are immutable and shared by pointer between all subscribers: never modify one.
type Unit struct {
	Media *Media
	Track *Track
	// PTS is the presentation time on the camera's clock, continuous and
	// increasing for the whole life of the Stream, also across reconnects.
	PTS time.Duration
	// Time is the wall-clock time at which the unit was captured, on the
	// server's clock: the arrival of the session's first unit, advanced by the
	// camera's timestamps and kept near the arrival times (see wallClock). The
	// camera's own clock is never used, as it is often wrong.
	Time time.Time
	// Data holds the NAL units of a video access unit (without start codes), or
	// the single frame of an audio unit in Data[0].
	Data [][]byte
	// Keyframe marks an IDR/IRAP picture. A keyframe unit always starts with its
	// parameter sets (VPS, SPS, PPS), so that it decodes on its own.
	Keyframe bool
	// Seq numbers the units of a Stream, starting at 1.
	Seq uint64
}

// Size is the number of payload bytes of the unit.
func (u *Unit) Size() int {
	n := 0
	for _, d := range u.Data {
		n += len(d)
	}
	return n
}

// ErrStreamClosed is returned by Subscription.Next when the stream was removed.
var ErrStreamClosed = errors.New("stream closed")

// SubscriberKind labels a subscription, for counting viewers.
type SubscriberKind int

// Subscriber kinds.
const (
	Viewer SubscriberKind = iota
	Recorder
	Other
)

// SubscribeOptions configure a subscription.
type SubscribeOptions struct {
	// Kind labels the subscriber (viewers are counted in status).
	Kind SubscriberKind
	// QueueLen bounds the units waiting for the subscriber. It defaults to 256.
	// The queue's ring starts small and grows up to it while units wait, so
	// that a deep bound (the recorder's) costs memory only while used.
	QueueLen int
	// FromGOP starts the subscription with the cached current GOP (from the
	// last keyframe), so a picture can be shown without waiting for the next
	// keyframe. Without it the subscription starts at the next keyframe.
	FromGOP bool
}

// Stream is the hub of one camera stream: one writer (the puller), any number
// of subscribers. Write never blocks. Subscribers and Want calls are its
// demand: a pushed stream (Camera.Pushed) is played only while demanded.
type Stream struct {
	name string

	mu    sync.Mutex
	media *Media
	// published is closed by the first SetTracks (see Published)
	published chan struct{}
	gop       []*Unit // units since the last video keyframe (all tracks)
	gopBytes  int
	subs      map[*Subscription]struct{}
	closed    bool
	seq       uint64
	online    bool
	// demand: wants counts Want calls not yet released; together with the
	// subscribers it says whether anything needs the stream. demandCh is
	// closed and replaced when that changes.
	wants    int
	demandCh chan struct{}

	// statistics, measured over the last window
	stats    statWindow
	dropped  atomic.Uint64
	lastUnit atomic.Int64 // unix nanos of last write
}

// Limits of the GOP cache: a camera that never sends a keyframe must not grow it forever.
const (
	maxGOPUnits = 1500
	maxGOPBytes = 32 << 20
)

// NewStream returns an empty stream. name is used in logs ("police-007/main").
func NewStream(name string) *Stream {
	return &Stream{name: name, subs: map[*Subscription]struct{}{}, published: make(chan struct{}),
		demandCh: make(chan struct{})}
}

// Want says that something needs the stream without subscribing to it (a
// viewer about to subscribe, an upper platform): a pushed stream is played
// while it is wanted or has subscribers, and stopped a while after neither
// is left (FleetOptions.PushLinger). Call release when the need ends; it is
// safe to call more than once.
func (s *Stream) Want() (release func()) {
	s.mu.Lock()
	was := s.demandedLocked()
	s.wants++
	s.demandChangedLocked(was)
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			was := s.demandedLocked()
			s.wants--
			s.demandChangedLocked(was)
			s.mu.Unlock()
		})
	}
}

// demand reports whether anything needs the stream (a subscriber or a Want),
// and a channel that is closed when that changes.
func (s *Stream) demand() (bool, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.demandedLocked(), s.demandCh
}

func (s *Stream) demandedLocked() bool { return s.wants > 0 || len(s.subs) > 0 }

// demandChangedLocked wakes the waiters of demand when it changed from was.
func (s *Stream) demandChangedLocked(was bool) {
	if s.demandedLocked() != was {
		close(s.demandCh)
		s.demandCh = make(chan struct{})
	}
}

// Name returns the stream's name.
func (s *Stream) Name() string { return s.name }

// Media returns the current tracks, or nil before the first session.
func (s *Stream) Media() *Media {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.media
}

// Published is closed once the first tracks are published: from then on
// Media is never nil. A consumer waits on it instead of polling Media.
func (s *Stream) Published() <-chan struct{} { return s.published }

// SetTracks publishes the tracks of a new session of the source. When they
// equal the current ones (same codecs and parameters), the current *Media is
// kept and returned; otherwise a new generation is published, and the GOP cache
// is cleared.
func (s *Stream) SetTracks(tracks []*Track) *Media {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.online = true
	if s.media != nil && sameTracks(s.media.Tracks, tracks) {
		return s.media
	}
	gen := 1
	if s.media != nil {
		gen = s.media.Generation + 1
	} else {
		close(s.published)
	}
	for i, t := range tracks {
		t.Index = i
	}
	s.media = &Media{Generation: gen, Tracks: tracks}
	s.gop = nil
	s.gopBytes = 0
	return s.media
}

// idle marks the source as stopped because nothing needs it: the cached GOP
// is forgotten, so that the next subscriber does not see a stale picture.
func (s *Stream) idle() {
	s.mu.Lock()
	s.online = false
	s.gop = nil
	s.gopBytes = 0
	s.mu.Unlock()
}

// SetOffline marks the source as gone (the subscribers stay and wait for it).
func (s *Stream) SetOffline() {
	s.mu.Lock()
	s.online = false
	s.mu.Unlock()
}

func sameTracks(a, b []*Track) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.Video != y.Video || x.Codec != y.Codec || x.ClockRate != y.ClockRate ||
			x.Width != y.Width || x.Height != y.Height || x.SampleRate != y.SampleRate ||
			x.ChannelCount != y.ChannelCount || !bytes.Equal(x.AACConfig, y.AACConfig) ||
			!bytes.Equal(x.SPS, y.SPS) || !bytes.Equal(x.PPS, y.PPS) || !bytes.Equal(x.VPS, y.VPS) {
			return false
		}
	}
	return true
}

// Write publishes a unit to every subscriber. It never blocks: a subscriber
// whose queue is full loses units until the next keyframe. u.Seq is assigned here.
func (s *Stream) Write(u *Unit) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.seq++
	u.Seq = s.seq
	now := time.Now()
	s.lastUnit.Store(now.UnixNano())
	key := u.Keyframe && u.Track != nil && u.Track.Video
	if u.Track != nil && u.Track.Video {
		s.stats.add(now, u.Size())
		if key {
			s.gop = s.gop[:0:0]
			s.gopBytes = 0
		}
	}
	if len(s.gop) > 0 || key {
		if len(s.gop) < maxGOPUnits && s.gopBytes < maxGOPBytes {
			s.gop = append(s.gop, u)
			s.gopBytes += u.Size()
		} else {
			// a partial GOP would replay with a hole in it: forget it, new
			// subscribers then wait for the next keyframe
			s.gop = s.gop[:0:0]
			s.gopBytes = 0
		}
	}
	for sub := range s.subs {
		if n := sub.push(u); n > 0 {
			s.dropped.Add(uint64(n))
		}
	}
}

// Subscribe registers a subscriber. Close the subscription when done.
func (s *Stream) Subscribe(opts SubscribeOptions) *Subscription {
	if opts.QueueLen <= 0 {
		opts.QueueLen = 256
	}
	sub := &Subscription{
		stream: s,
		kind:   opts.Kind,
		queue:  make([]*Unit, min(opts.QueueLen, queueStart)),
		max:    opts.QueueLen,
		notify: make(chan struct{}, 1),
		done:   make(chan struct{}),
		// wait for a keyframe unless the GOP is replayed
		waitKey: true,
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		sub.closeLocked()
		return sub
	}
	if opts.FromGOP && len(s.gop) <= opts.QueueLen {
		// (a GOP longer than the queue would overflow at once: wait for the next keyframe)
		for _, u := range s.gop {
			sub.push(u)
		}
	}
	was := s.demandedLocked()
	s.subs[sub] = struct{}{}
	s.demandChangedLocked(was)
	return sub
}

// Close removes the stream: every subscription's Next returns ErrStreamClosed.
func (s *Stream) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	was := s.demandedLocked()
	for sub := range s.subs {
		sub.closeLocked()
	}
	s.subs = nil
	s.gop = nil
	s.demandChangedLocked(was)
}

// StreamStats are measured figures of a stream.
type StreamStats struct {
	Online      bool
	FPS         float64
	BitrateKbps int
	Viewers     int
	Subscribers int
	Dropped     uint64    // units lost by slow subscribers
	LastUnit    time.Time // zero before the first unit
}

// Stats returns the stream's current figures.
func (s *Stream) Stats() StreamStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := StreamStats{Online: s.online, Subscribers: len(s.subs), Dropped: s.dropped.Load()}
	for sub := range s.subs {
		if sub.kind == Viewer {
			st.Viewers++
		}
	}
	st.FPS, st.BitrateKbps = s.stats.rates(time.Now())
	if n := s.lastUnit.Load(); n != 0 {
		st.LastUnit = time.Unix(0, n)
	}
	return st
}

// LastUnit returns when the last unit was written (zero before the first).
func (s *Stream) LastUnit() time.Time {
	if n := s.lastUnit.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// queueStart is the initial length of a subscription's ring.
const queueStart = 64

// Subscription is one reader of a Stream with its own bounded queue.
// Next must be called from one goroutine at a time.
type Subscription struct {
	stream *Stream
	kind   SubscriberKind

	mu      sync.Mutex
	queue   []*Unit // ring buffer, grown up to max as units wait
	max     int
	head, n int
	waitKey bool // dropping until the next video keyframe
	resync  bool // waitKey because of an overflow: the units skipped are lost
	gap     bool // a gap happened; reported with the next unit
	closed  bool
	dropped uint64
	notify  chan struct{}
	done    chan struct{}
}

// push enqueues u and returns how many units the subscriber lost because of
// it (0 normally). Called with the stream locked.
func (sub *Subscription) push(u *Unit) int {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if sub.closed {
		return 0
	}
	key := u.Keyframe && u.Track != nil && u.Track.Video
	if sub.waitKey {
		if !key {
			if sub.resync {
				// skipped after an overflow: lost
				sub.dropped++
				return 1
			}
			// before the first keyframe a decoder has no picture yet: not a loss
			return 0
		}
		sub.waitKey, sub.resync = false, false
	}
	if sub.n == sub.max {
		// overflow: forget the queue, resume at the next keyframe
		lost := sub.n
		sub.head, sub.n = 0, 0
		sub.queue = make([]*Unit, min(sub.max, queueStart))
		sub.gap = true
		if key {
			sub.enqueue(u)
		} else {
			lost++
			sub.waitKey, sub.resync = true, true
		}
		sub.dropped += uint64(lost)
		return lost
	}
	sub.enqueue(u)
	return 0
}

func (sub *Subscription) enqueue(u *Unit) {
	if sub.n == len(sub.queue) {
		// full, below max: grow the ring, the waiting units first
		q := make([]*Unit, min(2*len(sub.queue), sub.max))
		for i := range sub.n {
			q[i] = sub.queue[(sub.head+i)%len(sub.queue)]
		}
		sub.queue, sub.head = q, 0
	}
	sub.queue[(sub.head+sub.n)%len(sub.queue)] = u
	sub.n++
	select {
	case sub.notify <- struct{}{}:
	default:
	}
}

// Next returns the next unit, waiting for one. gap is true when units were
// lost before this one (the subscriber was too slow): the returned unit is then
// a video keyframe. It fails with ErrStreamClosed after the stream is closed,
// and with ctx.Err() when ctx ends.
func (sub *Subscription) Next(ctx context.Context) (u *Unit, gap bool, err error) {
	for {
		sub.mu.Lock()
		if sub.n > 0 {
			u = sub.queue[sub.head]
			sub.queue[sub.head] = nil
			sub.head = (sub.head + 1) % len(sub.queue)
			sub.n--
			if sub.n == 0 && len(sub.queue) > 4*queueStart {
				// a backlog drained: give back the grown ring
				sub.queue, sub.head = make([]*Unit, queueStart), 0
			}
			gap = sub.gap
			sub.gap = false
			sub.mu.Unlock()
			return u, gap, nil
		}
		if sub.closed {
			sub.mu.Unlock()
			return nil, false, ErrStreamClosed
		}
		sub.mu.Unlock()
		select {
		case <-sub.notify:
		case <-sub.done:
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
}

// Drain reads and drops units until the stream closes (ErrStreamClosed) or
// ctx ends (its error): a load on the stream that uses nothing of it, for
// benchmarks and tests.
func (sub *Subscription) Drain(ctx context.Context) error {
	for {
		if _, _, err := sub.Next(ctx); err != nil {
			return err
		}
	}
}

// Backlog is how far the subscriber is behind the live edge: the span of
// presentation time from the oldest unit waiting in its queue to the
// newest (0 when at most one waits). It measures the subscriber's own delay,
// not that of the camera or the network before the hub.
func (sub *Subscription) Backlog() time.Duration {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if sub.n < 2 {
		return 0
	}
	oldest := sub.queue[sub.head]
	newest := sub.queue[(sub.head+sub.n-1)%len(sub.queue)]
	return max(newest.PTS-oldest.PTS, 0)
}

// Dropped returns how many units this subscriber lost.
func (sub *Subscription) Dropped() uint64 {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	return sub.dropped
}

// Stream returns the stream subscribed to.
func (sub *Subscription) Stream() *Stream { return sub.stream }

// Close unsubscribes. Safe to call more than once and concurrently with Next.
func (sub *Subscription) Close() {
	s := sub.stream
	s.mu.Lock()
	if s.subs != nil {
		was := s.demandedLocked()
		delete(s.subs, sub)
		s.demandChangedLocked(was)
	}
	s.mu.Unlock()
	sub.mu.Lock()
	sub.closeLocked0()
	sub.mu.Unlock()
}

// closeLocked closes the subscription; the stream's lock is held.
func (sub *Subscription) closeLocked() {
	sub.mu.Lock()
	sub.closeLocked0()
	sub.mu.Unlock()
}

func (sub *Subscription) closeLocked0() {
	if !sub.closed {
		sub.closed = true
		close(sub.done)
	}
}

// statWindow measures frame rate and bitrate over the last few seconds.
type statWindow struct {
	buckets [8]statBucket // one per second
	first   int64         // second of the first unit, 0 before
}

type statBucket struct {
	sec    int64
	frames int
	bytes  int
}

func (w *statWindow) add(now time.Time, size int) {
	sec := now.Unix()
	if w.first == 0 {
		w.first = sec
	}
	b := &w.buckets[sec%int64(len(w.buckets))]
	if b.sec != sec {
		*b = statBucket{sec: sec}
	}
	b.frames++
	b.bytes += size
}

// rates averages over the complete seconds of the window (the current one excluded).
func (w *statWindow) rates(now time.Time) (fps float64, kbps int) {
	cur := now.Unix()
	frames, bytes, secs := 0, 0, 0
	for i := int64(1); i < int64(len(w.buckets))-1; i++ {
		if w.first == 0 || cur-i <= w.first {
			break // before the first complete second of the stream: not averaged
		}
		b := w.buckets[(cur-i)%int64(len(w.buckets))]
		secs++
		if b.sec == cur-i {
			frames += b.frames
			bytes += b.bytes
		}
	}
	if secs == 0 {
		return 0, 0
	}
	return float64(frames) / float64(secs), bytes * 8 / 1000 / secs
}
