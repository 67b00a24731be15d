package media

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"

	"github.com/vigil-vms/vigil/gb28181/ps"
)

// reorderDelay is how long a UDP receiver holds early packets waiting for a
// missing one before it gives up on it.
const reorderDelay = 80 * time.Millisecond

// ErrReceiverClosed is returned by WaitStart and Dial after Close.
var ErrReceiverClosed = errors.New("gb28181 media: receiver closed")

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1500); return &b }}

func getBuf(p []byte) *[]byte {
	b := bufPool.Get().(*[]byte)
	*b = append((*b)[:0], p...)
	return b
}

func putBuf(b *[]byte) {
	if cap(*b) <= ps.MaxFrameSize+2 {
		bufPool.Put(b)
	}
}

// Receiver is one expected stream: the RTP packets with its SSRC, in
// order, demuxed from MPEG-PS into access units.
type Receiver struct {
	// OnUnit receives each access unit. Set it before the first call of
	// WaitStart, Started, Err or Dial: the receiver starts demuxing then
	// (packets that arrive earlier wait in its queue), with the OnUnit of
	// that moment, so that setting the field races with nothing. It is
	// called from one goroutine at a time; the *ps.Unit and its Payload are
	// valid only during the call.
	OnUnit func(u *ps.Unit)

	s         *Server
	ssrc      uint32
	from      netip.Addr
	transport string
	created   time.Time

	queue     chan *[]byte
	queued    atomic.Int64  // bytes in queue
	maxQueued int64         // bound of queued
	space     chan struct{} // a TCP reader waiting for room is told of some
	waiting   atomic.Bool
	done      chan struct{}
	started   chan struct{}
	startOnce sync.Once
	failed    chan struct{} // closed when the stream failed before it started
	failOnce  sync.Once
	failErr   error
	errs      chan error
	wg        sync.WaitGroup
	armOnce   sync.Once
	onUnit    func(u *ps.Unit) // OnUnit when armed

	mu     sync.Mutex
	closed bool
	conn   net.Conn
	dialed string

	packets, bytes, lost, dups, reordered, dropped, wrongSSRC, units atomic.Uint64
	last                                                             atomic.Int64

	// owned by run
	demux   *ps.Demuxer
	seq     *sequencer
	pkt     rtp.Packet
	stopped bool
}

// ReceiverStats counts a receiver's packets.
type ReceiverStats struct {
	// Packets and Bytes count the RTP packets, and their payload bytes,
	// given to the demuxer.
	Packets, Bytes uint64
	// Lost counts packets missing from the sequence.
	Lost uint64
	// Duplicates counts duplicate packets, and packets that came too late, dropped.
	Duplicates uint64
	// Reordered counts packets that arrived early and were put back in order.
	Reordered uint64
	// Dropped counts packets dropped because the receiver's queue was full.
	Dropped uint64
	// WrongSSRC counts packets on the stream's TCP connection with another SSRC.
	WrongSSRC uint64
	// Units counts the access units given to OnUnit.
	Units uint64
}

func newReceiver(s *Server, ssrc uint32, from, transport string) *Receiver {
	r := &Receiver{
		s:         s,
		ssrc:      ssrc,
		transport: transport,
		created:   time.Now(),
		queue:     make(chan *[]byte, orDefault(s.QueueSize, DefaultQueueSize)),
		maxQueued: int64(orDefault(s.MaxQueueBytes, DefaultMaxQueueBytes)),
		space:     make(chan struct{}, 1),
		done:      make(chan struct{}),
		started:   make(chan struct{}),
		failed:    make(chan struct{}),
		errs:      make(chan error, 8),
	}
	if a, err := netip.ParseAddr(from); err == nil {
		r.from = a.Unmap()
	}
	window := orDefault(s.ReorderWindow, DefaultReorderWindow)
	if transport != TransportUDP {
		window = 1
	}
	r.seq = newSequencer(window)
	r.seq.deliver, r.seq.lost, r.seq.drop = r.deliver, r.lose, r.dropDup
	r.demux = &ps.Demuxer{OnUnit: r.unit, OnError: r.demuxError}
	return r
}

// SSRC returns the SSRC the receiver expects.
func (r *Receiver) SSRC() uint32 { return r.ssrc }

// Transport returns the receiver's transport.
func (r *Receiver) Transport() string { return r.transport }

// Started is closed when the first RTP packet of the stream arrives.
func (r *Receiver) Started() <-chan struct{} {
	r.arm()
	return r.started
}

// arm starts the receiver's goroutine with the OnUnit set now.
func (r *Receiver) arm() {
	r.armOnce.Do(func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if !r.closed {
			r.onUnit = r.OnUnit
			r.wg.Go(r.run)
		}
	})
}

// Err delivers problems after the start, each once: *MediaError of kind
// MediaNoPSM (a warning: the codec was inferred and video flows),
// MediaUnknownCodec, MediaClosed (the TCP connection ended) and
// MediaStopped (nothing for IdleTimeout). Errors that find the channel full
// are logged and dropped.
func (r *Receiver) Err() <-chan error {
	r.arm()
	return r.errs
}

// Stats returns the receiver's counters.
func (r *Receiver) Stats() ReceiverStats {
	return ReceiverStats{
		Packets: r.packets.Load(), Bytes: r.bytes.Load(), Lost: r.lost.Load(),
		Duplicates: r.dups.Load(), Reordered: r.reordered.Load(), Dropped: r.dropped.Load(),
		WrongSSRC: r.wrongSSRC.Load(), Units: r.units.Load(),
	}
}

// WaitStart waits for the first RTP packet of the stream. When ctx ends
// first it returns a *MediaError: MediaWrongSSRC when packets came from the
// device's address with another SSRC, MediaNoRTP otherwise (its Err is the
// context's error). A tcp-active connection that ends before any packet
// ends the wait at once with MediaClosed.
func (r *Receiver) WaitStart(ctx context.Context) error {
	r.arm()
	select {
	case <-r.started:
		return nil
	case <-r.failed:
		return r.failErr
	case <-r.done:
		return ErrReceiverClosed
	case <-ctx.Done():
	}
	select {
	case <-r.started:
		return nil
	default:
	}
	e := &MediaError{Kind: MediaNoRTP, Transport: r.transport, Addr: r.addr(),
		Waited: time.Since(r.created), Expected: r.ssrc, Err: ctx.Err()}
	if r.from.IsValid() && r.transport != TransportTCPActive {
		if st, ok := r.s.strangerSince(r.from, r.transport, r.created); ok {
			e.Kind, e.Got, e.From = MediaWrongSSRC, st.ssrc, r.from.String()
		}
	}
	return e
}

func (r *Receiver) addr() string {
	if r.transport == TransportTCPActive {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.dialed == "" {
			return "the device (not connected)"
		}
		return r.dialed
	}
	return r.s.localAddr(r.transport)
}

// Close stops the receiver: its SSRC is free again, its TCP connection is
// closed, and OnUnit is not called after Close returns (so OnUnit must not
// call Close).
func (r *Receiver) Close() {
	r.mu.Lock()
	if !r.closed {
		r.closed = true
		close(r.done)
		if r.conn != nil {
			r.conn.Close()
		}
	}
	r.mu.Unlock()
	r.s.remove(r)
	r.wg.Wait()
}

// Dial connects to the device's media port addr (host:port from the
// INVITE's answer) for tcp-active and reads the stream from the connection
// until Close. The device may use another SSRC on this connection than the
// one it was given: the connection is the stream's alone, so its packets
// are taken (and counted in WrongSSRC).
func (r *Receiver) Dial(ctx context.Context, addr string) error {
	if r.transport != TransportTCPActive {
		return fmt.Errorf("gb28181 media: Dial on a %s receiver (want tcp-active)", r.transport)
	}
	r.arm()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("connect to the device's media port %s for tcp-active: %w", addr, err)
	}
	r.mu.Lock()
	r.dialed = addr
	r.mu.Unlock()
	if !r.s.track(c) {
		c.Close()
		return ErrServerClosed
	}
	go func() {
		defer r.s.wg.Done()
		defer r.s.untrack(c)
		r.readConn(c, ps.NewFrameReader(bufio.NewReaderSize(c, 8<<10)), nil)
	}()
	return nil
}

// readConn reads the RFC 4571 framed RTP of the stream's TCP connection;
// first is the packet that routed a tcp-passive connection here.
func (r *Receiver) readConn(c net.Conn, fr *ps.FrameReader, first []byte) {
	if !r.attach(c) {
		return
	}
	err := r.readFrames(c, fr, first)
	r.detach(c, err)
}

func (r *Receiver) readFrames(c net.Conn, fr *ps.FrameReader, first []byte) error {
	idle := orDefault(r.s.IdleTimeout, DefaultIdleTimeout)
	if first != nil && !r.pushTCP(first) {
		return nil
	}
	for {
		c.SetReadDeadline(time.Now().Add(idle))
		pkt, err := fr.ReadFrame()
		if err != nil {
			return err
		}
		if r.acceptFrame(pkt) && !r.pushTCP(pkt) {
			return nil
		}
	}
}

// acceptFrame checks a packet of the stream's TCP connection: RTP, with
// the stream's SSRC (or any on our own tcp-active connection).
func (r *Receiver) acceptFrame(pkt []byte) bool {
	ssrc, ok := rtpSSRC(pkt)
	if !ok {
		r.s.garbage.Add(1)
		return false
	}
	if ssrc != r.ssrc {
		r.wrongSSRC.Add(1)
		return r.transport == TransportTCPActive
	}
	return true
}

// rtpSSRC returns the SSRC of an RTP packet; false when b is not one.
func rtpSSRC(b []byte) (uint32, bool) {
	if len(b) < 12 || b[0]>>6 != 2 {
		return 0, false
	}
	return binary.BigEndian.Uint32(b[8:12]), true
}

func (r *Receiver) attach(c net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	if r.conn != nil {
		r.s.log().Info("gb28181 media: the device opened a new connection; closing the old one", "ssrc", r.ssrc, "transport", r.transport)
		r.conn.Close()
	}
	r.conn = c
	return true
}

func (r *Receiver) detach(c net.Conn, err error) {
	r.mu.Lock()
	mine := r.conn == c && !r.closed
	if mine {
		r.conn = nil
	}
	addr := r.dialed
	r.mu.Unlock()
	if !mine {
		return
	}
	if errors.Is(err, io.EOF) {
		err = nil
	}
	if addr == "" {
		addr = c.RemoteAddr().String()
	}
	e := &MediaError{Kind: MediaClosed, Transport: r.transport, Addr: addr, Expected: r.ssrc, Err: err}
	select {
	case <-r.started:
		r.report(e)
	default:
		r.failOnce.Do(func() { r.failErr = e; close(r.failed) })
	}
}

func (r *Receiver) report(err error) {
	select {
	case r.errs <- err:
	default:
		r.s.log().Warn("gb28181 media: error channel full, dropping", "ssrc", r.ssrc, "error", err)
	}
}

func (r *Receiver) pushUDP(p []byte) {
	select {
	case <-r.done:
		return
	default:
	}
	if r.queued.Load()+int64(len(p)) > r.maxQueued {
		r.dropped.Add(1)
		return
	}
	b := getBuf(p)
	select {
	case r.queue <- b:
		r.queued.Add(int64(len(p)))
		r.startOnce.Do(func() { close(r.started) })
	default:
		r.dropped.Add(1)
		putBuf(b)
	}
}

func (r *Receiver) pushTCP(p []byte) bool {
	// Wait for room: the device's connection waits, no one else does.
	for full := func() bool { q := r.queued.Load(); return q > 0 && q+int64(len(p)) > r.maxQueued }; full(); {
		r.waiting.Store(true)
		if !full() { // the queue emptied before run could see waiting
			break
		}
		select {
		case <-r.space:
		case <-r.done:
			return false
		}
	}
	r.waiting.Store(false)
	b := getBuf(p)
	select {
	case r.queue <- b:
		r.queued.Add(int64(len(p)))
		r.startOnce.Do(func() { close(r.started) })
		return true
	case <-r.done:
		putBuf(b)
		return false
	}
}

// run is the receiver's goroutine: it orders packets and runs the demuxer.
func (r *Receiver) run() {
	idle := orDefault(r.s.IdleTimeout, DefaultIdleTimeout)
	idleTimer := time.NewTimer(idle)
	defer idleTimer.Stop()
	gap := time.NewTimer(time.Hour)
	gap.Stop()
	defer gap.Stop()
	gapArmed := false
	for {
		select {
		case <-r.done:
			r.drainQueue()
			return
		case b := <-r.queue:
			r.dequeued(b)
			r.take(b)
			if r.seq.held > 0 && !gapArmed {
				gap.Reset(reorderDelay)
				gapArmed = true
			} else if r.seq.held == 0 && gapArmed {
				gap.Stop()
				gapArmed = false
			}
		case <-gap.C:
			gapArmed = false
			r.seq.flush()
		case <-idleTimer.C:
			r.checkIdle(idleTimer, idle)
		}
	}
}

// dequeued accounts for a packet taken from the queue.
func (r *Receiver) dequeued(b *[]byte) {
	r.queued.Add(-int64(len(*b)))
	if r.waiting.Load() {
		select {
		case r.space <- struct{}{}:
		default:
		}
	}
}

// take puts a queued packet in sequence.
func (r *Receiver) take(b *[]byte) {
	if len(*b) < 12 {
		putBuf(b)
		return
	}
	r.seq.push(binary.BigEndian.Uint16((*b)[2:4]), b)
}

func (r *Receiver) drainQueue() {
	for {
		select {
		case b := <-r.queue:
			r.dequeued(b)
			putBuf(b)
		default:
			return
		}
	}
}

func (r *Receiver) checkIdle(t *time.Timer, idle time.Duration) {
	select {
	case <-r.started:
	default:
		t.Reset(idle)
		return
	}
	since := time.Since(time.Unix(0, r.last.Load()))
	if since < idle {
		t.Reset(idle - since)
		return
	}
	if !r.stopped && r.transport == TransportUDP {
		r.stopped = true
		r.report(&MediaError{Kind: MediaStopped, Transport: r.transport, Waited: since, Expected: r.ssrc})
	}
	t.Reset(idle)
}

func (r *Receiver) deliver(b *[]byte, reordered bool) {
	defer putBuf(b)
	if err := r.pkt.Unmarshal(*b); err != nil {
		r.s.garbage.Add(1)
		return
	}
	r.packets.Add(1)
	r.bytes.Add(uint64(len(r.pkt.Payload)))
	if reordered {
		r.reordered.Add(1)
	}
	r.last.Store(time.Now().UnixNano())
	r.stopped = false
	r.demux.Write(r.pkt.Payload)
	if r.pkt.Marker && !r.demux.MidPacket() { // some devices mark every packet
		r.demux.Flush()
	}
}

func (r *Receiver) lose(n int) {
	r.lost.Add(uint64(n))
	r.demux.Lost()
}

func (r *Receiver) dropDup(b *[]byte) {
	r.dups.Add(1)
	putBuf(b)
}

func (r *Receiver) unit(u *ps.Unit) {
	r.units.Add(1)
	if f := r.onUnit; f != nil {
		f(u)
	}
}

func (r *Receiver) demuxError(err error) {
	var nopsm *ps.NoPSMError
	var unknown *ps.UnknownStreamTypeError
	switch {
	case errors.As(err, &nopsm):
		r.s.log().Warn("gb28181 media: "+err.Error(), "ssrc", r.ssrc)
		r.report(&MediaError{Kind: MediaNoPSM, Transport: r.transport, Expected: r.ssrc, Err: err})
	case errors.As(err, &unknown):
		r.s.log().Warn("gb28181 media: "+err.Error(), "ssrc", r.ssrc)
		r.report(&MediaError{Kind: MediaUnknownCodec, Transport: r.transport, Expected: r.ssrc, Err: err})
	default:
		r.s.log().Debug("gb28181 media: "+err.Error(), "ssrc", r.ssrc)
	}
}
