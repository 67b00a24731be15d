package media

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/vigil-vms/vigil/gb28181/ps"
	"github.com/vigil-vms/vigil/internal/testkit"
)

// TestHostilePeers: garbage datagrams, garbage TCP, huge RFC 4571 lengths,
// half-open and too many TCP connections, and RTP with a good SSRC but a
// garbage payload, all at once: nothing panics, the bad connections are
// closed within the handshake timeout, nothing leaks, and two good streams
// (UDP and tcp-passive) arriving meanwhile give exactly their units.
func TestHostilePeers(t *testing.T) {
	testkit.CheckLeaks(t)
	const handshake = 500 * time.Millisecond
	s := startServer(t, &Server{HandshakeTimeout: handshake, MaxPendingConns: 8})
	b := readTestdata(t, "gst_h264_aac.ps")
	want := direct(b)
	rng := rand.New(rand.NewPCG(1, 2))

	good := map[string]*collector{TransportUDP: {}, TransportTCPPassive: {}}
	rs := map[string]*Receiver{
		TransportUDP:        expect(t, s, 501, TransportUDP, good[TransportUDP]),
		TransportTCPPassive: expect(t, s, 502, TransportTCPPassive, good[TransportTCPPassive]),
	}
	victim := &collector{}
	rv := expect(t, s, 503, TransportUDP, victim)

	// Bad TCP peers: each connection must be closed by the server.
	var bad []net.Conn
	dial := func(first []byte) {
		c, err := net.Dial("tcp", s.tcp)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if first != nil {
			c.Write(first)
		}
		bad = append(bad, c)
	}
	dial(nil)                                                   // half-open: says nothing
	dial([]byte{0xFF, 0xFF, 0x80, 0x60, 0, 1})                  // huge frame, then silence
	dial(append([]byte{0, 40}, bytes.Repeat([]byte{7}, 40)...)) // a frame that is not RTP
	dial(randBytes(rng, 3000))                                  // noise
	unknown := rtp.Packet{Header: rtp.Header{Version: 2, SSRC: 999, PayloadType: 96}, Payload: []byte{1, 2, 3}}
	raw, _ := unknown.Marshal()
	dial(frame(t, [][]byte{raw, raw})) // an SSRC nobody expects, kept open
	for range 10 {                     // more than MaxPendingConns
		dial(nil)
	}

	// Garbage datagrams, RTP for nobody, and garbage PS for rv.
	var wg sync.WaitGroup
	wg.Go(func() {
		c, err := net.Dial("udp", s.udp)
		if err != nil {
			return
		}
		defer c.Close()
		r := rand.New(rand.NewPCG(3, 4))
		for i := range 2000 {
			switch i % 4 {
			case 0:
				c.Write(randBytes(r, r.IntN(1500)))
			case 1:
				c.Write([]byte{0x80})
			case 2:
				p := rtp.Packet{Header: rtp.Header{Version: 2, SSRC: r.Uint32(), SequenceNumber: uint16(i)}, Payload: randBytes(r, 100)}
				raw, _ := p.Marshal()
				c.Write(raw)
			case 3:
				p := rtp.Packet{Header: rtp.Header{Version: 2, SSRC: 503, SequenceNumber: uint16(i), Marker: i%8 == 3}, Payload: randBytes(r, 1200)}
				raw, _ := p.Marshal()
				c.Write(raw)
			}
			if i%64 == 0 {
				time.Sleep(time.Millisecond) // within the loopback socket's buffer
			}
		}
	})
	deviceSend(t, s, rs[TransportUDP], TransportUDP, rtpPackets(t, b, 501, 0))
	deviceSend(t, s, rs[TransportTCPPassive], TransportTCPPassive, rtpPackets(t, b, 502, 0))
	wg.Wait()

	for tr, c := range good {
		waitUnits(t, c, len(want))
		t.Run(tr, func(t *testing.T) { diff(t, c.snapshot(), want) })
	}
	// Every bad connection is closed by the server.
	for i, c := range bad {
		c.SetReadDeadline(time.Now().Add(handshake + 5*time.Second))
		if _, err := io.Copy(io.Discard, c); err != nil && !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("bad connection %d: not closed by the server: %v", i, err)
		}
	}
	testkit.WaitFor(t, 5*time.Second, "bad connections forgotten", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.conns) == 1 && len(s.pending) == 0 // the good tcp-passive stream
	})
	st := s.Stats()
	if st.Garbage == 0 || st.UnknownSSRC < 500 {
		t.Errorf("server stats %+v", st)
	}
	if vs := rv.Stats(); vs.Packets == 0 {
		t.Errorf("garbage PS receiver took no packets: %+v", vs)
	}
	if len(s.strangers) > maxStrangers {
		t.Errorf("%d strangers remembered", len(s.strangers))
	}
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// TestStrangersBounded: RTP from many addresses with unknown SSRCs is
// remembered for at most maxStrangers addresses.
func TestStrangersBounded(t *testing.T) {
	s := &Server{}
	s.init()
	var a [4]byte
	for i := range 3 * maxStrangers {
		binary.BigEndian.PutUint32(a[:], uint32(0x0A000000+i))
		s.noteStranger(netipFrom4(a), uint32(i), TransportUDP)
	}
	if len(s.strangers) != maxStrangers || s.Stats().UnknownSSRC != 3*maxStrangers {
		t.Errorf("%d strangers, %d counted", len(s.strangers), s.Stats().UnknownSSRC)
	}
}

// TestSlowConsumer: a receiver whose OnUnit blocks loses its own packets
// (counted as Dropped), and another stream on the same UDP socket is
// untouched.
func TestSlowConsumer(t *testing.T) {
	testkit.CheckLeaks(t)
	s := startServer(t, &Server{QueueSize: 64})
	b := readTestdata(t, "gst_h264_aac.ps")
	want := direct(b)
	release := make(chan struct{})
	slow, err := s.Expect(41, "127.0.0.1", TransportUDP)
	if err != nil {
		t.Fatal(err)
	}
	slow.OnUnit = func(*ps.Unit) { <-release }
	slow.Started()
	defer slow.Close()
	defer close(release)
	c := &collector{}
	r := expect(t, s, 42, TransportUDP, c)
	slowPkts := rtpPackets(t, b, 41, 0)
	for range 3 { // more than its queue holds, within the socket's buffer
		sendUDP(t, s.udp, nil, slowPkts)
		time.Sleep(5 * time.Millisecond)
	}
	sendUDP(t, s.udp, r, rtpPackets(t, b, 42, 0))
	waitUnits(t, c, len(want))
	diff(t, c.snapshot(), want)
	testkit.WaitFor(t, 5*time.Second, "drops counted", func() bool { return slow.Stats().Dropped > 0 })
}

// TestTCPReconnectAndIdle: a device that opens a new tcp-passive connection
// replaces the old one (closed by the server), and a connection silent for
// IdleTimeout is closed and reported.
func TestTCPReconnectAndIdle(t *testing.T) {
	testkit.CheckLeaks(t)
	s := startServer(t, &Server{IdleTimeout: 500 * time.Millisecond})
	b := readTestdata(t, "gst_h264_aac.ps")
	pkts := rtpPackets(t, b, 43, 0)
	c := &collector{}
	r := expect(t, s, 43, TransportTCPPassive, c)
	first, err := net.Dial("tcp", s.tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	first.Write(frame(t, pkts[:10]))
	testkit.WaitFor(t, 5*time.Second, "the first connection's packets", func() bool { return r.Stats().Packets == 10 })
	second, err := net.Dial("tcp", s.tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	second.Write(frame(t, pkts[10:]))
	testkit.WaitFor(t, 5*time.Second, "the second connection's packets", func() bool { return r.Stats().Packets == uint64(len(pkts)) })
	first.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, first); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("the replaced connection was not closed: %v", err)
	}
	select {
	case err := <-r.Err():
		var me *MediaError
		var ne net.Error
		if !errors.As(err, &me) || me.Kind != MediaClosed || !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("Err = %v, want MediaClosed by the idle timeout", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the silent connection was not reported")
	}
}

// TestTCPBackpressure: a receiver that cannot keep up holds at most
// MaxQueueBytes (and one frame) for its TCP connection, which waits, and
// loses nothing once it catches up.
func TestTCPBackpressure(t *testing.T) {
	testkit.CheckLeaks(t)
	const limit = 64 << 10
	s := startServer(t, &Server{MaxQueueBytes: limit})
	b := readTestdata(t, "gst_h264_aac.ps")
	var pkts [][]byte
	for range 5 {
		pkts = append(pkts, rtpPackets(t, b, 44, uint16(len(pkts)))...)
	}
	release := make(chan struct{})
	r, err := s.Expect(44, "127.0.0.1", TransportTCPPassive)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.OnUnit = func(*ps.Unit) { <-release }
	r.Started()
	c, err := net.Dial("tcp", s.tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go c.Write(frame(t, pkts)) // blocks while the server does not read
	testkit.WaitFor(t, 10*time.Second, "the queue to fill", func() bool { return r.queued.Load() > limit-2000 })
	for range 20 {
		if q := r.queued.Load(); q > limit+ps.MaxFrameSize {
			t.Fatalf("%d bytes queued, bound %d", q, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(release)
	testkit.WaitFor(t, 10*time.Second, "every packet", func() bool { return r.Stats().Packets == uint64(len(pkts)) })
	if st := r.Stats(); st.Lost != 0 || st.Dropped != 0 {
		t.Errorf("stats %+v", st)
	}
}

// flakyListener fails its first Accept calls as a process out of file
// descriptors does.
type flakyListener struct {
	net.Listener
	fails int
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if l.fails > 0 {
		l.fails--
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

// TestAcceptOutOfFiles: running out of file descriptors for a moment does
// not stop the media port.
func TestAcceptOutOfFiles(t *testing.T) {
	testkit.CheckLeaks(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Log: testkit.Log(t)}
	testkit.Run(t, func(ctx context.Context) error { return s.Serve(ctx, nil, &flakyListener{Listener: l, fails: 3}) })
	b := readTestdata(t, "gst_h264_aac.ps")
	c := &collector{}
	ts := &testServer{Server: s, tcp: l.Addr().String()}
	r := expect(t, ts, 47, TransportTCPPassive, c)
	deviceSend(t, ts, r, TransportTCPPassive, rtpPackets(t, b, 47, 0))
	want := direct(b)
	waitUnits(t, c, len(want))
	diff(t, c.snapshot(), want)
}
