package ingest

import (
	"context"
	"io"
	"log/slog"
	"sort"
	"sync"
	"time"
)

// FleetOptions configure a Fleet. The zero value works.
type FleetOptions struct {
	// Log receives state changes of the camera streams. It defaults to a logger that discards.
	Log *slog.Logger
	// StallTimeout is how long a stream may send no video (or, after PLAY, no
	// usable keyframe) before it is reconnected. A pushed stream's Source
	// has three times as long to deliver its first unit, and the keyframe
	// is awaited from there. It defaults to 10 seconds.
	StallTimeout time.Duration
	// ReadTimeout bounds each RTSP request and the TCP connect. It defaults to 10 seconds.
	ReadTimeout time.Duration
	// BackoffMin is the first wait after a failure. It defaults to 1 second.
	BackoffMin time.Duration
	// BackoffMax caps the wait between attempts. It defaults to 30 seconds.
	BackoffMax time.Duration
	// LogEvery limits the logging of a changed error while a stream stays
	// offline. It defaults to 1 minute.
	LogEvery time.Duration
	// Sources maps a Camera.Source to what plays the streams of such pushed
	// cameras (Camera.Pushed): a pushed camera is run by Sources[cam.Source]
	// instead of the RTSP puller. A pushed camera whose Source is missing
	// here stays offline, saying so.
	Sources map[string]Source
	// PushLinger is how long a pushed stream keeps playing after nothing
	// needs it any more (no subscriber, no Stream.Want), so that a viewer who
	// comes back, or a recorder that reconnects, finds it playing. It
	// defaults to 10 seconds.
	PushLinger time.Duration
	// SubLinger, when positive, has the cameras' sub-streams pulled on
	// demand: while something needs one (a live viewer: the wall's tiles
	// play sub-streams) and SubLinger after, so that a wall that comes back
	// finds its tiles playing. A sub-stream whose last session failed is
	// retried with backoff as an always-pulled stream is (its failure shows
	// as offline, and viewers get the main stream meanwhile) until a session
	// succeeds. 0 pulls every sub-stream all the time.
	SubLinger time.Duration

	// dial replaces the RTSP client in tests; nil means gortsplib.
	dial dialFunc
}

// Fleet pulls the streams of every registered camera into hub Streams; the
// streams of pushed cameras (Camera.Pushed) are played by their Source while
// something needs them.
type Fleet struct {
	opts FleetOptions

	mu      sync.Mutex
	ctx     context.Context // set while Run runs
	cameras map[string]*camEntry
	changed chan struct{} // closed and replaced when a stream is added or removed
	wg      sync.WaitGroup
}

type camEntry struct {
	cam     Camera
	streams map[StreamKind]*streamEntry
}

type streamEntry struct {
	stream *Stream
	url    string // the RTSP URL, or for a pushed stream what identifies its source (streamSource)
	trans  string
	puller *puller
	cancel context.CancelFunc
	done   chan struct{}
}

// NewFleet returns a Fleet; it pulls nothing before Run.
func NewFleet(opts FleetOptions) *Fleet {
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.StallTimeout <= 0 {
		opts.StallTimeout = 10 * time.Second
	}
	if opts.ReadTimeout <= 0 {
		opts.ReadTimeout = 10 * time.Second
	}
	if opts.BackoffMin <= 0 {
		opts.BackoffMin = time.Second
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = 30 * time.Second
	}
	if opts.BackoffMax < opts.BackoffMin {
		opts.BackoffMax = opts.BackoffMin
	}
	if opts.LogEvery <= 0 {
		opts.LogEvery = time.Minute
	}
	if opts.PushLinger <= 0 {
		opts.PushLinger = 10 * time.Second
	}
	if opts.dial == nil {
		opts.dial = dialGortsplib
	}
	return &Fleet{opts: opts, cameras: map[string]*camEntry{}, changed: make(chan struct{})}
}

// Run pulls the cameras until ctx ends, then stops every puller and returns
// ctx's error once they all stopped. Streams stay open (Remove closes them).
func (m *Fleet) Run(ctx context.Context) error {
	m.mu.Lock()
	m.ctx = ctx
	for _, ce := range m.cameras {
		m.syncLocked(ce)
	}
	m.mu.Unlock()

	<-ctx.Done()

	// the pullers' contexts derive from ctx: they are all stopping; no new one starts
	m.mu.Lock()
	m.ctx = nil
	m.mu.Unlock()
	m.wg.Wait()
	m.mu.Lock()
	for _, ce := range m.cameras {
		for _, se := range ce.streams {
			m.stopLocked(se, nil) // already done
		}
	}
	m.mu.Unlock()
	return ctx.Err()
}

// Set adds or updates a camera: its streams are pulled while it is enabled. A
// changed URL or transport reconnects; the Streams (and their subscribers) stay.
// Safe before and during Run.
func (m *Fleet) Set(c Camera) {
	c.Tags = append([]string(nil), c.Tags...)
	m.mu.Lock()
	ce := m.cameras[c.ID]
	if ce == nil {
		ce = &camEntry{streams: map[StreamKind]*streamEntry{}}
		m.cameras[c.ID] = ce
	}
	ce.cam = c
	stopped := m.syncLocked(ce)
	m.mu.Unlock()
	waitAll(stopped)
}

// waitAll waits for stopped pullers, outside m.mu: closing an RTSP session
// may take up to the write timeout with a camera that does not read.
func waitAll(done []chan struct{}) {
	for _, d := range done {
		<-d
	}
}

// syncLocked makes the pullers of a camera match its configuration. It
// returns the done channels of the pullers it stopped.
func (m *Fleet) syncLocked(ce *camEntry) (stopped []chan struct{}) {
	for _, kind := range []StreamKind{Main, Sub} {
		url, trans := ce.cam.URL(kind), ce.cam.Transport
		if ce.cam.Pushed() {
			url, trans = streamSource(&ce.cam, kind), ""
		}
		se := ce.streams[kind]
		if url == "" {
			if se != nil {
				stopped = m.stopLocked(se, stopped)
				se.stream.Close()
				delete(ce.streams, kind)
				m.streamsChangedLocked()
			}
			continue
		}
		if se == nil {
			se = &streamEntry{stream: NewStream(ce.cam.ID + "/" + string(kind))}
			ce.streams[kind] = se
			m.streamsChangedLocked()
		}
		changed := se.url != url || se.trans != trans
		if se.cancel != nil && (changed || !ce.cam.Enabled) {
			stopped = m.stopLocked(se, stopped)
		}
		se.url, se.trans = url, trans
		if se.puller != nil {
			se.puller.setCamera(ce.cam)
		}
		if se.cancel == nil && ce.cam.Enabled && m.ctx != nil {
			m.startLocked(ce.cam, kind, se)
		}
		if se.puller == nil {
			// status before Run: connecting (idle for a stream pulled on demand)
			se.puller = newPuller(m.pullerConfig(ce.cam, kind, se))
		}
	}
	return stopped
}

// streamSource identifies what plays a pushed camera's stream: a change
// restarts it. A pushed camera has a main stream only.
func streamSource(c *Camera, kind StreamKind) string {
	if kind != Main {
		return ""
	}
	src := c.Source + ":"
	if c.GB28181 != nil {
		src += c.GB28181.Device + "/" + c.GB28181.Channel
	}
	return src
}

func (m *Fleet) pullerConfig(cam Camera, kind StreamKind, se *streamEntry) pullerConfig {
	cfg := pullerConfig{
		camera: cam.ID, kind: kind, url: se.url, transport: se.trans, stream: se.stream,
		log: m.opts.Log, dial: m.opts.dial, stall: m.opts.StallTimeout, readTimeout: m.opts.ReadTimeout,
		backoffMin: m.opts.BackoffMin, backoffMax: m.opts.BackoffMax,
		logEvery: m.opts.LogEvery,
	}
	switch {
	case cam.Pushed():
		cfg.pushed, cfg.source, cfg.cam = true, m.opts.Sources[cam.Source], cam
		cfg.onDemand, cfg.linger = true, m.opts.PushLinger
	case kind == Sub && m.opts.SubLinger > 0:
		cfg.onDemand, cfg.linger = true, m.opts.SubLinger
	}
	return cfg
}

func (m *Fleet) startLocked(cam Camera, kind StreamKind, se *streamEntry) {
	p := newPuller(m.pullerConfig(cam, kind, se))
	if se.puller != nil {
		// a reconfigured stream keeps counting its reconnects, and its PTS goes on
		p.reconnects = se.puller.status().Reconnects
		p.inherit(se.puller)
	}
	ctx, cancel := context.WithCancel(m.ctx)
	se.puller, se.cancel, se.done = p, cancel, make(chan struct{})
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer close(se.done)
		p.run(ctx)
	}()
}

// stopLocked cancels a puller and appends its done channel to stopped; the
// caller waits on it after releasing m.mu. A cancelled puller writes no more
// units, so a new one may start on the same Stream at once.
func (m *Fleet) stopLocked(se *streamEntry, stopped []chan struct{}) []chan struct{} {
	if se.cancel == nil {
		return stopped
	}
	se.cancel()
	stopped = append(stopped, se.done)
	se.cancel, se.done = nil, nil
	return stopped
}

// Remove stops pulling a camera and closes its Streams: their subscribers'
// Next returns ErrStreamClosed.
func (m *Fleet) Remove(id string) {
	m.mu.Lock()
	ce := m.cameras[id]
	if ce == nil {
		m.mu.Unlock()
		return
	}
	var stopped []chan struct{}
	for _, se := range ce.streams {
		stopped = m.stopLocked(se, stopped)
		se.stream.Close()
	}
	delete(m.cameras, id)
	if len(ce.streams) > 0 {
		m.streamsChangedLocked()
	}
	m.mu.Unlock()
	waitAll(stopped)
}

// StreamsChanged returns a channel that is closed the next time a stream is
// added or removed (a camera added or removed, or its main or sub URL set or
// cleared): a subscriber that found no stream, or a closed one, asks for the
// channel, then Stream, and waits on the channel if it still has none.
func (m *Fleet) StreamsChanged() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.changed
}

func (m *Fleet) streamsChangedLocked() {
	close(m.changed)
	m.changed = make(chan struct{})
}

// Stream returns a camera's stream, nil when the camera or the stream does not exist.
func (m *Fleet) Stream(id string, kind StreamKind) *Stream {
	m.mu.Lock()
	defer m.mu.Unlock()
	ce := m.cameras[id]
	if ce == nil {
		return nil
	}
	se := ce.streams[kind]
	if se == nil {
		return nil
	}
	return se.stream
}

// Status is the state of a camera's streams (the API adds whether it is
// recorded: dispatch.Status).
type Status struct {
	ID string `json:"id"`
	StreamStatus
	// Viewers counts the live viewers of both streams.
	Viewers int `json:"viewers"`
	// Dropped counts the units lost by slow subscribers of both streams.
	Dropped uint64 `json:"dropped"`
	// Sub is the sub-stream's status, nil when the camera has none.
	Sub *StreamStatus `json:"sub,omitempty"`
}

// Status returns a camera's status.
func (m *Fleet) Status(id string) (Status, bool) {
	m.mu.Lock()
	ce := m.cameras[id]
	if ce == nil {
		m.mu.Unlock()
		return Status{}, false
	}
	enabled := ce.cam.Enabled
	type pair struct {
		p *puller
		s *Stream
	}
	var main, sub *pair
	if se := ce.streams[Main]; se != nil {
		main = &pair{se.puller, se.stream}
	}
	if se := ce.streams[Sub]; se != nil {
		sub = &pair{se.puller, se.stream}
	}
	m.mu.Unlock()

	st := Status{ID: id}
	one := func(pr *pair) StreamStatus {
		ss := pr.p.status()
		if !enabled {
			ss = StreamStatus{State: StateDisabled, Since: ss.Since}
		}
		stats := pr.s.Stats()
		st.Viewers += stats.Viewers
		st.Dropped += stats.Dropped
		return ss
	}
	if main != nil {
		st.StreamStatus = one(main)
	} else {
		st.StreamStatus = StreamStatus{State: StateOffline, LastError: "the camera has no main stream URL"}
		if !enabled {
			st.StreamStatus.State = StateDisabled
		}
	}
	if sub != nil {
		ss := one(sub)
		st.Sub = &ss
	}
	return st, true
}

// Statuses returns the status of every camera, sorted by id.
func (m *Fleet) Statuses() []Status {
	m.mu.Lock()
	ids := make([]string, 0, len(m.cameras))
	for id := range m.cameras {
		ids = append(ids, id)
	}
	m.mu.Unlock()
	sort.Strings(ids)
	out := make([]Status, 0, len(ids))
	for _, id := range ids {
		if st, ok := m.Status(id); ok {
			out = append(out, st)
		}
	}
	return out
}
