package media

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/gb28181/ps"
	"github.com/vigil-vms/vigil/internal/testkit"
)

// deviceSend sends pkts over transport to the receiver r the way a device does.
func deviceSend(t *testing.T, s *testServer, r *Receiver, transport string, pkts [][]byte) {
	t.Helper()
	switch transport {
	case TransportUDP:
		sendUDP(t, s.udp, r, pkts)
	case TransportTCPPassive:
		c, err := net.Dial("tcp", s.tcp)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := c.Write(frame(t, pkts)); err != nil {
			t.Fatal(err)
		}
	case TransportTCPActive:
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := r.Dial(ctx, l.Addr().String()); err != nil {
			t.Fatal(err)
		}
		c, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := c.Write(frame(t, pkts)); err != nil {
			t.Fatal(err)
		}
	}
}

var transports = []string{TransportUDP, TransportTCPPassive, TransportTCPActive}

// TestTransports: the PS of an independent muxer (GStreamer's mpegpsmux,
// H.264 + AAC) sent over each transport gives the units that demuxing the
// file directly gives.
func TestTransports(t *testing.T) {
	testkit.CheckLeaks(t)
	s := startServer(t, &Server{})
	b := readTestdata(t, "gst_h264_aac.ps")
	want := direct(b)
	for i, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			ssrc := uint32(100000001 + i)
			c := &collector{}
			r := expect(t, s, ssrc, tr, c)
			select {
			case <-r.Started():
				t.Fatal("started before any packet")
			default:
			}
			deviceSend(t, s, r, tr, rtpPackets(t, b, ssrc, 65500)) // the sequence wraps
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := r.WaitStart(ctx); err != nil {
				t.Fatal(err)
			}
			waitUnits(t, c, len(want))
			diff(t, c.snapshot(), want)
			st := r.Stats()
			if st.Lost != 0 || st.Duplicates != 0 || st.Dropped != 0 || int(st.Units) != len(want) || st.Bytes != uint64(len(b)) {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// TestNoRTP: a receiver nobody sends to names the transport and our address.
func TestNoRTP(t *testing.T) {
	testkit.CheckLeaks(t)
	s := startServer(t, &Server{})
	for i, tr := range []string{TransportUDP, TransportTCPPassive} {
		r := expect(t, s, uint32(200+i), tr, &collector{})
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		err := r.WaitStart(ctx)
		cancel()
		var me *MediaError
		if !errors.As(err, &me) || me.Kind != MediaNoRTP || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%s: WaitStart = %v, want MediaNoRTP", tr, err)
		}
		addr := s.udp
		if tr != TransportUDP {
			addr = s.tcp
		}
		if msg := err.Error(); !strings.Contains(msg, "no RTP over "+tr+" to "+addr) {
			t.Errorf("%s: message %q", tr, msg)
		}
	}
}

// TestWrongSSRC: packets from the device's address with another SSRC make
// WaitStart say so, naming both, over UDP and tcp-passive.
func TestWrongSSRC(t *testing.T) {
	testkit.CheckLeaks(t)
	s := startServer(t, &Server{HandshakeTimeout: 300 * time.Millisecond})
	b := readTestdata(t, "gst_h264_aac.ps")
	for i, tr := range []string{TransportUDP, TransportTCPPassive} {
		t.Run(tr, func(t *testing.T) {
			want := uint32(1000 + i)
			r := expect(t, s, want, tr, &collector{})
			deviceSend(t, s, nil, tr, rtpPackets(t, b, 4242, 0)[:3])
			testkit.WaitFor(t, 5*time.Second, "the stranger counted", func() bool {
				_, ok := s.strangerSince(r.from, tr, r.created)
				return ok
			})
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			err := r.WaitStart(ctx)
			var me *MediaError
			if !errors.As(err, &me) || me.Kind != MediaWrongSSRC || me.Got != 4242 || me.Expected != want {
				t.Fatalf("WaitStart = %#v", err)
			}
			if msg := err.Error(); !strings.Contains(msg, "SSRC 0000004242") || !strings.Contains(msg, "given SSRC 00000010") {
				t.Errorf("message %q", msg)
			}
		})
	}
}

// TestTCPActiveClosedBeforeStart: a device that accepts our connection and
// closes it ends WaitStart at once with MediaClosed.
func TestTCPActiveClosedBeforeStart(t *testing.T) {
	testkit.CheckLeaks(t)
	s := startServer(t, &Server{})
	r := expect(t, s, 7, TransportTCPActive, &collector{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Dial(ctx, l.Addr().String()); err != nil {
		t.Fatal(err)
	}
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	err = r.WaitStart(ctx)
	var me *MediaError
	if !errors.As(err, &me) || me.Kind != MediaClosed || ctx.Err() != nil {
		t.Fatalf("WaitStart = %v", err)
	}
	if !strings.Contains(err.Error(), l.Addr().String()) {
		t.Errorf("message %q does not name the device's address", err)
	}
}

// TestTCPClosedAfterStart: the end of a started TCP stream is reported on Err.
func TestTCPClosedAfterStart(t *testing.T) {
	testkit.CheckLeaks(t)
	s := startServer(t, &Server{})
	b := readTestdata(t, "gst_h264_aac.ps")
	r := expect(t, s, 8, TransportTCPPassive, &collector{})
	c, err := net.Dial("tcp", s.tcp)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(frame(t, rtpPackets(t, b, 8, 0)[:5])); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.WaitStart(ctx); err != nil {
		t.Fatal(err)
	}
	c.Close()
	select {
	case err := <-r.Err():
		var me *MediaError
		if !errors.As(err, &me) || me.Kind != MediaClosed {
			t.Fatalf("Err = %v", err)
		}
	case <-ctx.Done():
		t.Fatal("no error after the connection closed")
	}
}

// TestNoPSMReported: ffmpeg's vob muxer writes no PSM; the receiver says so
// on Err as a MediaNoPSM wrapping the demuxer's *ps.NoPSMError, and units flow.
func TestNoPSMReported(t *testing.T) {
	testkit.CheckLeaks(t)
	s := startServer(t, &Server{})
	b := readTestdata(t, "ff_h265.ps")
	c := &collector{}
	r := expect(t, s, 9, TransportUDP, c)
	deviceSend(t, s, r, TransportUDP, rtpPackets(t, b, 9, 0))
	waitUnits(t, c, 50)
	select {
	case err := <-r.Err():
		var me *MediaError
		var nopsm *ps.NoPSMError
		if !errors.As(err, &me) || me.Kind != MediaNoPSM || !errors.As(err, &nopsm) || nopsm.Inferred != ps.TypeH265 {
			t.Fatalf("Err = %v", err)
		}
	default:
		t.Fatal("no MediaNoPSM")
	}
}

func TestExpectErrors(t *testing.T) {
	testkit.CheckLeaks(t)
	s := &Server{}
	if _, err := s.Expect(1, "", "sctp"); err == nil {
		t.Error("unknown transport accepted")
	}
	r, err := s.Expect(1, "", TransportUDP)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Expect(1, "", TransportTCPPassive); err == nil {
		t.Error("the same SSRC expected twice")
	}
	if err := r.Dial(context.Background(), "127.0.0.1:1"); err == nil {
		t.Error("Dial on a udp receiver")
	}
	r.Close()
	r.Close()
	if _, err := s.Expect(1, "", TransportUDP); err != nil {
		t.Errorf("SSRC not free after Close: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Serve(ctx, nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Expect(2, "", TransportUDP); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Expect after Serve returned: %v", err)
	}
}

// TestPacketsBeforeWaitStart: packets that arrive between ExpectUnits and
// the first WaitStart wait in the receiver's queue and are demuxed with its
// OnUnit (the gateway's order: ExpectUnits, INVITE, WaitStart).
func TestPacketsBeforeWaitStart(t *testing.T) {
	testkit.CheckLeaks(t)
	s := startServer(t, &Server{})
	b := readTestdata(t, "gst_h264_aac.ps")
	want := direct(b)
	c := &collector{}
	r, err := s.ExpectUnits(77, "127.0.0.1", TransportUDP, c.onUnit)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	sendUDP(t, s.udp, nil, rtpPackets(t, b, 77, 0))
	testkit.WaitFor(t, 10*time.Second, "packets queued", func() bool { return len(r.queue) == len(ps.Payloads(nil, b, payloadSize)) })
	if c.len() != 0 {
		t.Fatal("units before WaitStart")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.WaitStart(ctx); err != nil {
		t.Fatal(err)
	}
	waitUnits(t, c, len(want))
	diff(t, c.snapshot(), want)
}

// TestTCPActiveOtherSSRC: on our own tcp-active connection a device's
// packets are taken whatever their SSRC (the connection is the stream's
// alone), and counted.
func TestTCPActiveOtherSSRC(t *testing.T) {
	testkit.CheckLeaks(t)
	s := startServer(t, &Server{})
	b := readTestdata(t, "gst_h264_aac.ps")
	want := direct(b)
	c := &collector{}
	r := expect(t, s, 45, TransportTCPActive, c)
	pkts := rtpPackets(t, b, 9999, 0)
	deviceSend(t, s, r, TransportTCPActive, pkts)
	waitUnits(t, c, len(want))
	diff(t, c.snapshot(), want)
	if st := r.Stats(); st.WrongSSRC != uint64(len(pkts)) {
		t.Errorf("stats %+v, want %d packets with another SSRC", st, len(pkts))
	}
}

// TestDialRefused: a device that does not listen on the port it answered
// makes Dial fail naming the address.
func TestDialRefused(t *testing.T) {
	testkit.CheckLeaks(t)
	s := startServer(t, &Server{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	r := expect(t, s, 46, TransportTCPActive, &collector{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = r.Dial(ctx, addr)
	if err == nil || !strings.Contains(err.Error(), "connect to the device's media port "+addr) {
		t.Fatalf("Dial = %v", err)
	}
}
