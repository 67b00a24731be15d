package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pion/rtp"

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
