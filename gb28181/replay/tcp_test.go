package replay

import (
	"bufio"
	"context"
	"net"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/vigil-vms/vigil/gb28181/ps"
	"github.com/vigil-vms/vigil/internal/testkit"
)

// TestDownloadOverTCP sends a download as the upstream package does over
// TCP (RFC 4571 framing on a loopback connection) and judges what the far
// end reads with ffprobe.
func TestDownloadOverTCP(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	segs := f.record(t, "cam-tcp", t0, ffmpegSegments(t, 20, 4)[:2])
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []byte, 1)
	go func() { // the upper platform: read framed RTP until the connection closes
		var out []byte
		defer func() { got <- out }()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		fr := ps.NewFrameReader(bufio.NewReader(c))
		for {
			b, err := fr.ReadFrame()
			if err != nil {
				return
			}
			var p rtp.Packet
			if p.Unmarshal(b) != nil || p.SSRC != testSSRC {
				return
			}
			out = append(out, p.Payload...)
		}
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	var buf []byte
	s, err := f.p.NewSession(context.Background(), SessionConfig{Camera: "cam-tcp", Start: t0, End: segs[1].End,
		Download: true, SSRC: testSSRC, Write: func(pkt []byte) error {
			var err error
			if buf, err = ps.AppendFrame(buf[:0], pkt); err != nil {
				return err
			}
			_, err = conn.Write(buf)
			return err
		}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background()) }()
	testkit.Returned(t, done, 30*time.Second, "download")
	conn.Close()
	var b []byte
	select {
	case b = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("the reader did not finish")
	}
	p := ffprobe(t, b)
	want := segs[1].End.Sub(t0)
	if p.codec != "h264" || !p.firstKey || (p.duration-want).Abs() > 2*time.Second/fixFPS {
		t.Errorf("over TCP: %+v, want h264 of %s", p, want)
	}
}
