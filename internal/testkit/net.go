package testkit

import (
	"net"
	"testing"
)

// ListenUDPTCP opens a UDP socket and a TCP listener on 127.0.0.1, each on
// a free port, for a server that serves both (SIP, GB/T 28181 media). Both
// are closed when the test ends, if the server has not closed them.
func ListenUDPTCP(t testing.TB) (net.PacketConn, net.Listener) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return pc, ln
}
