package media

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/vigil-vms/vigil/gb28181/ps"
	"github.com/vigil-vms/vigil/internal/testkit"
)

// unitSum is what a test compares of a unit.
type unitSum struct {
	StreamID uint8
	Type     ps.StreamType
	PTS, DTS int64
	Keyframe bool
	Disc     bool
	Size     int
	Sum      [8]byte
}

func (u unitSum) String() string {
	return fmt.Sprintf("{0x%02X %v pts %d key %v disc %v %d bytes %x}", u.StreamID, u.Type, u.PTS, u.Keyframe, u.Disc, u.Size, u.Sum)
}

func summarize(u *ps.Unit) unitSum {
	h := sha256.Sum256(u.Payload)
	s := unitSum{StreamID: u.StreamID, Type: u.Type, PTS: u.PTS, DTS: u.DTS, Keyframe: u.Keyframe, Disc: u.Discontinuity, Size: len(u.Payload)}
	copy(s.Sum[:], h[:])
	return s
}

// collector gathers the units of a receiver, safe to read from the test.
type collector struct {
	mu    sync.Mutex
	units []unitSum
	es    map[uint8][]byte // elementary stream per stream id, when keepES
	keep  bool
}

func (c *collector) onUnit(u *ps.Unit) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.units = append(c.units, summarize(u))
	if c.keep {
		if c.es == nil {
			c.es = map[uint8][]byte{}
		}
		c.es[u.StreamID] = append(c.es[u.StreamID], u.Payload...)
	}
}

func (c *collector) snapshot() []unitSum {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]unitSum(nil), c.units...)
}

func (c *collector) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.units)
}

// direct demuxes b without a network, in RTP-sized pieces, flushing at the
// end: what a receiver must give for the same bytes.
func direct(b []byte) []unitSum {
	var out []unitSum
	d := &ps.Demuxer{OnUnit: func(u *ps.Unit) { out = append(out, summarize(u)) }}
	for _, p := range ps.Payloads(nil, b, payloadSize) {
		d.Write(p)
	}
	d.Flush()
	return out
}

const payloadSize = 1400

// rtpPackets cuts b into RTP packets with ssrc, sequence numbers from seq0,
// and the marker bit on the last.
func rtpPackets(t testing.TB, b []byte, ssrc uint32, seq0 uint16) [][]byte {
	t.Helper()
	pieces := ps.Payloads(nil, b, payloadSize)
	out := make([][]byte, 0, len(pieces))
	for i, p := range pieces {
		pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq0 + uint16(i),
			Timestamp: 90000, SSRC: ssrc, Marker: i == len(pieces)-1}, Payload: p}
		raw, err := pkt.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, raw)
	}
	return out
}

func frame(t testing.TB, pkts [][]byte) []byte {
	t.Helper()
	var b []byte
	for _, p := range pkts {
		var err error
		if b, err = ps.AppendFrame(b, p); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

type testServer struct {
	*Server
	udp, tcp string
}

func startServer(t *testing.T, s *Server) *testServer {
	t.Helper()
	if s.Log == nil {
		s.Log = testkit.Log(t)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{Server: s, udp: pc.LocalAddr().String(), tcp: l.Addr().String()}
	testkit.Run(t, func(ctx context.Context) error { return s.Serve(ctx, pc, l) })
	return ts
}

func expect(t *testing.T, s *testServer, ssrc uint32, transport string, c *collector) *Receiver {
	t.Helper()
	r, err := s.Expect(ssrc, "127.0.0.1", transport)
	if err != nil {
		t.Fatal(err)
	}
	r.OnUnit = c.onUnit
	r.Started() // the gateway calls WaitStart right after the INVITE
	t.Cleanup(r.Close)
	return r
}

// sendUDP sends pkts to the server, keeping at most 32 packets ahead of
// what r has taken so that neither the loopback socket's buffer nor the
// receiver's queue (at least 64) overflows.
func sendUDP(t *testing.T, addr string, r *Receiver, pkts [][]byte) {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i, p := range pkts {
		if r != nil {
			deadline := time.Now().Add(10 * time.Second)
			for st := r.Stats(); int(st.Packets+st.Duplicates+st.Lost) < i-32 && time.Now().Before(deadline); st = r.Stats() {
				time.Sleep(200 * time.Microsecond)
			}
		}
		if _, err := c.Write(p); err != nil {
			t.Fatal(err)
		}
	}
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "ps", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func diff(t *testing.T, got, want []unitSum) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%d units, want %d", len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			t.Errorf("unit %d: %v, want %v", i, got[i], want[i])
			return
		}
	}
}

func waitUnits(t *testing.T, c *collector, n int) {
	t.Helper()
	testkit.WaitFor(t, 20*time.Second, fmt.Sprintf("%d units", n), func() bool { return c.len() >= n })
}

func netipFrom4(a [4]byte) netip.Addr { return netip.AddrFrom4(a) }
