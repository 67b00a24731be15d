package relay

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"
)

// TestUDPConnCorkKeepsPackets sends batches of packets of various sizes
// through a corked destination, with GSO and without, and checks that the
// receiver gets every packet, whole and in order.
func TestUDPConnCorkKeepsPackets(t *testing.T) {
	cases := []struct {
		name  string
		sizes []int
	}{
		{"one", []int{100}},
		{"picture", []int{60, 1240, 1240, 1240, 1240, 700}},
		{"equal", []int{1240, 1240, 1240}},
		{"growing", []int{100, 200, 300, 300, 50}},
		{"shorter ends a run", []int{1240, 1240, 500, 1240, 1240}},
		{"more than one send", func() []int {
			s := make([]int, 100)
			for i := range s {
				s[i] = 1240
			}
			return append(s, 17)
		}()},
	}
	for _, gso := range []bool{true, false} {
		for _, tc := range cases {
			t.Run(fmt.Sprintf("%s gso=%v", tc.name, gso), func(t *testing.T) {
				u, rx := udpPair(t)
				u.gso.Store(gso && gsoSupported)
				dst := rx.LocalAddr().(*net.UDPAddr).AddrPort()
				var want [][]byte
				u.cork(dst)
				for i, n := range tc.sizes {
					p := bytes.Repeat([]byte{byte(i)}, n)
					want = append(want, p)
					if got, err := u.WriteToAddrPort(p, dst); err != nil || got != n {
						t.Fatalf("write %d: %d, %v", i, got, err)
					}
					if i == 0 {
						// a packet to another destination is not held back
						_, other := udpPair(t)
						if _, err := u.WriteToAddrPort([]byte("x"), other.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
							t.Fatal(err)
						}
						readPackets(t, other, [][]byte{[]byte("x")})
					}
				}
				if err := u.flush(dst); err != nil {
					t.Fatal(err)
				}
				// after the flush, packets go straight through again
				tail := []byte("after")
				if _, err := u.WriteToAddrPort(tail, dst); err != nil {
					t.Fatal(err)
				}
				readPackets(t, rx, append(want, tail))
			})
		}
	}
}

func udpPair(t *testing.T) (*udpConn, *net.UDPConn) {
	t.Helper()
	listen := func() *net.UDPConn {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadBuffer(1 << 20)
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	return newUDPConn(listen()), listen()
}

func readPackets(t *testing.T, c *net.UDPConn, want [][]byte) {
	t.Helper()
	buf := make([]byte, 65536)
	for i, w := range want {
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("packet %d of %d: %v", i, len(want), err)
		}
		if !bytes.Equal(buf[:n], w) {
			t.Fatalf("packet %d: %d bytes starting %x, want %d bytes of %x", i, n, buf[:min(n, 4)], len(w), w[:min(len(w), 4)])
		}
	}
}

// TestUDPConnCorkConcurrent writes to a corked destination from several
// goroutines (as NACK resends and reports do) while the sender corks and
// flushes: every packet arrives (run with -race).
func TestUDPConnCorkConcurrent(t *testing.T) {
	u, rx := udpPair(t)
	dst := rx.LocalAddr().(*net.UDPAddr).AddrPort()
	const writers, each = 4, 50
	done := make(chan struct{})
	for w := range writers {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range each {
				if _, err := u.WriteToAddrPort([]byte{byte(w), byte(i)}, dst); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for range 50 {
		u.cork(dst)
		if _, err := u.WriteToAddrPort([]byte{0xff, 0xff, 0xff}, dst); err != nil {
			t.Fatal(err)
		}
		if err := u.flush(dst); err != nil {
			t.Fatal(err)
		}
	}
	for range writers {
		<-done
	}
	got := map[string]int{}
	buf := make([]byte, 100)
	for range writers*each + 50 {
		_ = rx.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, err := rx.Read(buf)
		if err != nil {
			t.Fatalf("after %d packets: %v", len(got), err)
		}
		got[string(buf[:n])]++
	}
	if got[string([]byte{0xff, 0xff, 0xff})] != 50 || len(got) != writers*each+1 {
		t.Fatalf("%d distinct packets, %d of the sender's", len(got), got[string([]byte{0xff, 0xff, 0xff})])
	}
}

func TestUDPConnKey(t *testing.T) {
	a := netip.MustParseAddrPort("127.0.0.1:5000")
	b := netip.AddrPortFrom(netip.AddrFrom16(a.Addr().As16()), 5000) // ::ffff:127.0.0.1
	if key(a) != key(b) {
		t.Fatalf("%v and %v are not the same destination", a, b)
	}
}

// TestUDPConnIgnoresWriteDeadlines: pion's UDP mux sets a write deadline of
// "now" on the shared socket to abort one closing connection's write; every
// other viewer's writes, corked or not, must go on.
func TestUDPConnIgnoresWriteDeadlines(t *testing.T) {
	u, rx := udpPair(t)
	dst := rx.LocalAddr().(*net.UDPAddr).AddrPort()
	past := time.Now().Add(-time.Second)
	if err := u.SetWriteDeadline(past); err != nil {
		t.Fatal(err)
	}
	if err := u.SetDeadline(past); err != nil {
		t.Fatal(err)
	}
	if _, err := u.WriteToAddrPort([]byte("one"), dst); err != nil {
		t.Fatalf("write after a write deadline in the past: %v", err)
	}
	u.cork(dst)
	for _, p := range []string{"two", "three"} {
		if _, err := u.WriteToAddrPort([]byte(p), dst); err != nil {
			t.Fatal(err)
		}
	}
	if err := u.flush(dst); err != nil {
		t.Fatalf("flush after a write deadline in the past: %v", err)
	}
	readPackets(t, rx, [][]byte{[]byte("one"), []byte("two"), []byte("three")})
	// the read deadline still applies
	if err := u.SetReadDeadline(time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := u.ReadFromAddrPort(make([]byte, 10)); err == nil {
		t.Fatal("read past its deadline succeeded")
	}
}

// TestUDPConnSendBatches collects the packets of several destinations (a
// group's round) and sends them together: each receiver gets its packets,
// whole and in order, with GSO and without, also past the messages of one
// system call.
func TestUDPConnSendBatches(t *testing.T) {
	for _, gso := range []bool{true, false} {
		t.Run(fmt.Sprintf("gso=%v", gso), func(t *testing.T) {
			u, _ := udpPair(t)
			u.gso.Store(gso && gsoSupported)
			var sc mmsgScratch
			const dsts = 5
			var rxs []*net.UDPConn
			var batches []*corkBatch
			want := make([][][]byte, dsts)
			for d := range dsts {
				_, rx := udpPair(t)
				_ = rx.SetReadBuffer(4 << 20)
				rxs = append(rxs, rx)
				dst := rx.LocalAddr().(*net.UDPAddr).AddrPort()
				u.cork(dst)
				sizes := []int{60, 1240, 1240, 700, 1240, 1240, 1240, 90}
				if d == dsts-1 {
					sizes = nil
					for i := range maxMmsgTest + 50 {
						sizes = append(sizes, 2+2*i) // growing: a message each, more than one system call takes
					}
				}
				for i, n := range sizes {
					p := bytes.Repeat([]byte{byte(d), byte(i)}, n/2)
					want[d] = append(want[d], p)
					if _, err := u.WriteToAddrPort(p, dst); err != nil {
						t.Fatal(err)
					}
				}
				b := u.uncork(dst)
				if gso && gsoSupported && b == nil {
					t.Fatal("nothing collected for a corked destination")
				}
				if b != nil {
					batches = append(batches, b)
				}
			}
			// read while sending: more than a socket buffer is sent
			got := make([][][]byte, dsts)
			done := make(chan struct{})
			for d, rx := range rxs {
				go func() {
					defer func() { done <- struct{}{} }()
					buf := make([]byte, 65536)
					for range want[d] {
						_ = rx.SetReadDeadline(time.Now().Add(2 * time.Second))
						n, err := rx.Read(buf)
						if err != nil {
							return
						}
						got[d] = append(got[d], bytes.Clone(buf[:n]))
					}
				}()
			}
			if err := u.sendBatches(batches, &sc); err != nil {
				t.Fatal(err)
			}
			for range rxs {
				<-done
			}
			for d := range rxs {
				if len(got[d]) != len(want[d]) {
					t.Fatalf("destination %d: %d packets of %d", d, len(got[d]), len(want[d]))
				}
				if len(want[d]) > maxMmsgTest && len(sc.hdrs) <= maxMmsgTest && gso && gsoSupported {
					t.Fatalf("%d messages: not more than one system call", len(sc.hdrs))
				}
				for i := range want[d] {
					if !bytes.Equal(got[d][i], want[d][i]) {
						t.Fatalf("destination %d, packet %d: %d bytes starting %x, want %d bytes", d, i, len(got[d][i]), got[d][i][:min(4, len(got[d][i]))], len(want[d][i]))
					}
				}
			}
		})
	}
}
