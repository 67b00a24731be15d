package relay

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// gsoMaxSegments and gsoMaxBytes bound one segmented send (the kernel
	// takes at most 64 segments and 64 kB).
	gsoMaxSegments = 32
	gsoMaxBytes    = 60000
)

// udpConn is the relay's UDP socket under the ICE mux. A viewer's sender
// corks its destination while it writes a picture; the packets written to a
// corked destination are collected and sent when it flushes, runs of
// equal-sized packets in one system call with UDP generic segmentation
// offload (GSO) where the kernel has it. Packet order is kept; writes to
// other destinations go straight through.
type udpConn struct {
	conn   *net.UDPConn
	gso    atomic.Bool
	mu     sync.RWMutex
	corked map[netip.AddrPort]*corkBatch // (a map reuses its slots: a sync.Map allocated an entry a cork)
	// onGSOOff is called once when segmented sends fail and are turned off.
	onGSOOff func(error)
	offOnce  sync.Once
}

var _ net.PacketConn = (*udpConn)(nil)

func newUDPConn(c *net.UDPConn) *udpConn {
	u := &udpConn{conn: c, corked: map[netip.AddrPort]*corkBatch{}}
	u.gso.Store(gsoSupported)
	return u
}

// corkBatch holds the packets written to one corked destination.
type corkBatch struct {
	mu     sync.Mutex
	closed bool
	dst    netip.AddrPort
	buf    []byte // the packets back to back
	sizes  []int
}

var batchPool = sync.Pool{New: func() any { return &corkBatch{} }}

// cork starts collecting the packets to dst; flush sends them. One cork per
// destination at a time (a destination is one viewer's ICE pair).
func (u *udpConn) cork(dst netip.AddrPort) {
	if !u.gso.Load() {
		return
	}
	dst = key(dst)
	b := batchPool.Get().(*corkBatch)
	b.closed, b.dst = false, dst
	u.mu.Lock()
	if _, corked := u.corked[dst]; corked {
		u.mu.Unlock()
		batchPool.Put(b) // corked already: the first flush sends
		return
	}
	u.corked[dst] = b
	u.mu.Unlock()
}

func key(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}

// flush sends what was collected for dst and stops collecting.
func (u *udpConn) flush(dst netip.AddrPort) error {
	b := u.uncork(dst)
	if b == nil {
		return nil
	}
	err := u.send(b.dst, b.buf, b.sizes)
	putBatch(b)
	return err
}

// uncork stops collecting the packets to dst and returns what was
// collected (nil when dst was not corked), to be sent with sendBatches.
func (u *udpConn) uncork(dst netip.AddrPort) *corkBatch {
	dst = key(dst)
	u.mu.Lock()
	b := u.corked[dst]
	delete(u.corked, dst)
	u.mu.Unlock()
	if b == nil {
		return nil
	}
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	return b
}

func putBatch(b *corkBatch) {
	b.buf, b.sizes = b.buf[:0], b.sizes[:0]
	batchPool.Put(b)
}

// size is the bytes of the packets collected.
func (b *corkBatch) size() int { return len(b.buf) }

// nextRun returns the end (exclusive) and the bytes of the run of packets
// from i that one segmented send carries: equal sizes, the last of a run
// may be shorter.
func nextRun(sizes []int, i int) (j, total int) {
	seg := sizes[i]
	j, total = i+1, seg
	for j < len(sizes) && j-i < gsoMaxSegments && total+sizes[j] <= gsoMaxBytes && sizes[j] <= seg {
		total += sizes[j]
		j++
		if sizes[j-1] < seg {
			break // a shorter packet ends a run
		}
	}
	return j, total
}

// gsoOff turns segmented sends off after err said the kernel has none.
func (u *udpConn) gsoOff(err error) {
	u.gso.Store(false)
	u.offOnce.Do(func() {
		if u.onGSOOff != nil {
			u.onGSOOff(err)
		}
	})
}

// sendBatches sends the batches taken with uncork and gives them back: as
// few system calls as it can (all of them in one where the kernel has
// sendmmsg), each run of a destination one segmented message.
func (u *udpConn) sendBatches(bs []*corkBatch, sc *mmsgScratch) error {
	var firstErr error
	if u.gso.Load() {
		firstErr = u.sendMany(bs, sc)
	} else {
		for _, b := range bs {
			if err := u.send(b.dst, b.buf, b.sizes); err != nil && firstErr == nil {
				firstErr = err
			}
		}
	}
	for _, b := range bs {
		putBatch(b)
	}
	return firstErr
}

// send writes the packets, each run of equal sizes (the last of a run may be
// shorter) in one segmented send.
func (u *udpConn) send(dst netip.AddrPort, buf []byte, sizes []int) error {
	var firstErr error
	note := func(err error) {
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	off := 0
	for i := 0; i < len(sizes); {
		seg := sizes[i]
		j, total := nextRun(sizes, i)
		if j-i == 1 || !u.gso.Load() {
			for k := i; k < j; k++ {
				_, err := u.conn.WriteToUDPAddrPort(buf[off:off+sizes[k]], dst)
				note(err)
				off += sizes[k]
			}
		} else {
			var oob [gsoControlLen]byte
			_, _, err := u.conn.WriteMsgUDPAddrPort(buf[off:off+total], gsoControl(oob[:], seg), dst)
			if err != nil && gsoUnsupported(err) {
				u.gsoOff(err)
				for k := i; k < j; k++ {
					_, err := u.conn.WriteToUDPAddrPort(buf[off:off+sizes[k]], dst)
					note(err)
					off += sizes[k]
				}
			} else {
				note(err)
				off += total
			}
		}
		i = j
	}
	return firstErr
}

// WriteToAddrPort is how the ICE mux writes.
func (u *udpConn) WriteToAddrPort(p []byte, dst netip.AddrPort) (int, error) {
	u.mu.RLock()
	b := u.corked[key(dst)]
	u.mu.RUnlock()
	if b != nil {
		b.mu.Lock()
		if !b.closed {
			b.buf = append(b.buf, p...)
			b.sizes = append(b.sizes, len(p))
			b.mu.Unlock()
			return len(p), nil
		}
		b.mu.Unlock()
	}
	return u.conn.WriteToUDPAddrPort(p, dst)
}

func (u *udpConn) ReadFromAddrPort(p []byte) (int, netip.AddrPort, error) {
	return u.conn.ReadFromUDPAddrPort(p)
}

func (u *udpConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if a, ok := addr.(*net.UDPAddr); ok {
		return u.WriteToAddrPort(p, a.AddrPort())
	}
	return u.conn.WriteTo(p, addr)
}

func (u *udpConn) ReadFrom(p []byte) (int, net.Addr, error) { return u.conn.ReadFrom(p) }
func (u *udpConn) Close() error                             { return u.conn.Close() }
func (u *udpConn) LocalAddr() net.Addr                      { return u.conn.LocalAddr() }
func (u *udpConn) SetReadDeadline(t time.Time) error        { return u.conn.SetReadDeadline(t) }

// SetDeadline sets the read deadline only: see SetWriteDeadline.
func (u *udpConn) SetDeadline(t time.Time) error { return u.conn.SetReadDeadline(t) }

// SetWriteDeadline does nothing. The socket is every viewer's: pion's ICE
// UDP mux sets a write deadline of "now" on it to abort the write of one
// closing connection that took long (on a CPU-starved host, any write), and
// that failed the writes of every other viewer meanwhile, whose sessions
// then ended: hundreds at once. A UDP write does not block for long (a full
// send buffer drains in microseconds), and closing the socket ends it.
func (u *udpConn) SetWriteDeadline(time.Time) error { return nil }
