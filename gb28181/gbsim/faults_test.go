package gbsim

import (
	"bytes"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/gb28181/manscdp"
	"github.com/vigil-vms/vigil/gb28181/ps"
)

// inviteUDP invites testChan1 over UDP with y=0100000009 and returns the
// status and a reader of what arrives at the offered port.
func inviteUDP(t *testing.T, d *Device, p *testPlatform) (int, func() ([]byte, error), []byte) {
	t.Helper()
	pc, next := udpReceiver(t)
	s, code, err := p.invite(t, d.SIPAddr(), testChan1, offerSDP(TransportUDP, "127.0.0.1", pc.LocalAddr().(*net.UDPAddr).Port, "0100000009"))
	if err != nil {
		t.Fatal(err)
	}
	var answer []byte
	if s != nil {
		answer = s.InviteResponse.Body()
	}
	return code, next, answer
}

// nothingArrives fails when a packet arrives within 1.5 s.
func nothingArrives(t *testing.T, next func() ([]byte, error)) {
	t.Helper()
	c := readRTP(t, func() ([]byte, error) {
		b, err := next()
		return b, err
	}, 0)
	if c.packets != 0 {
		t.Fatalf("%d RTP packets arrived, want none", c.packets)
	}
}

func TestFaults(t *testing.T) {
	t.Run("NoRTP", func(t *testing.T) {
		d, p := platformDevice(t, Config{Faults: Faults{NoRTP: true}})
		code, next, answer := inviteUDP(t, d, p)
		if code != 200 {
			t.Fatalf("INVITE answered %d", code)
		}
		if _, err := parseOffer(answer); err != nil {
			t.Fatalf("answer SDP: %v", err)
		}
		nothingArrives(t, next)
	})
	t.Run("WrongSSRC", func(t *testing.T) {
		d, p := platformDevice(t, Config{Faults: Faults{WrongSSRC: true}})
		code, next, answer := inviteUDP(t, d, p)
		if code != 200 {
			t.Fatalf("INVITE answered %d", code)
		}
		if o, _ := parseOffer(answer); o.SSRC != "0100000009" {
			t.Fatalf("answer y=%s, want the offered 0100000009 echoed", o.SSRC)
		}
		c := readRTP(t, next, 300*time.Millisecond)
		if c.packets == 0 || c.ssrcs[100000009] != 0 {
			t.Fatalf("ssrcs %v: want packets, none with the offered SSRC", c.ssrcs)
		}
	})
	t.Run("NoPSM", func(t *testing.T) {
		d, p := platformDevice(t, Config{Faults: Faults{NoPSM: true}})
		code, next, _ := inviteUDP(t, d, p)
		if code != 200 {
			t.Fatalf("INVITE answered %d", code)
		}
		c := readRTP(t, next, 2500*time.Millisecond) // past the keyframe at 2 s
		if bytes.Contains(c.ps, []byte{0, 0, 1, 0xBC}) {
			t.Fatal("a program stream map was sent")
		}
		var noPSM *ps.NoPSMError
		units := 0
		dm := ps.Demuxer{
			OnUnit: func(u *ps.Unit) { units++ },
			OnError: func(err error) {
				if errors.As(err, &noPSM) {
					return
				}
				t.Errorf("demux: %v", err)
			},
		}
		dm.Write(c.ps)
		dm.Flush()
		if noPSM == nil || noPSM.Inferred != ps.TypeH264 || units == 0 {
			t.Fatalf("demuxer: no-PSM error %v, %d units", noPSM, units)
		}
	})
	t.Run("RefuseInvite", func(t *testing.T) {
		d, p := platformDevice(t, Config{Faults: Faults{RefuseInvite: 486}})
		if code, _, _ := inviteUDP(t, d, p); code != 486 {
			t.Fatalf("INVITE answered %d, want 486", code)
		}
	})
	t.Run("BadSDP", func(t *testing.T) {
		d, p := platformDevice(t, Config{Faults: Faults{BadSDP: true}})
		code, next, answer := inviteUDP(t, d, p)
		if code != 200 {
			t.Fatalf("INVITE answered %d", code)
		}
		if _, err := parseOffer(answer); err == nil {
			t.Fatalf("answer SDP parses:\n%s", answer)
		}
		nothingArrives(t, next)
	})
	t.Run("RefuseTransports", func(t *testing.T) {
		d, p := platformDevice(t, Config{Faults: Faults{RefuseTransports: []string{TransportUDP}}})
		if code, _, _ := inviteUDP(t, d, p); code != 488 {
			t.Fatalf("UDP INVITE answered %d, want 488", code)
		}
		// TCP is still served
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		_, code, err := p.invite(t, d.SIPAddr(), testChan1, offerSDP(TransportTCPPassive, "127.0.0.1", ln.Addr().(*net.TCPAddr).Port, "0100000010"))
		if err != nil || code != 200 {
			t.Fatalf("tcp-passive INVITE: %d %v", code, err)
		}
		ln.(*net.TCPListener).SetDeadline(time.Now().Add(5 * time.Second))
		conn, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if c := readRTP(t, tcpReader(t, conn), 200*time.Millisecond); c.ssrcs[100000010] == 0 {
			t.Fatalf("tcp ssrcs %v", c.ssrcs)
		}
	})
	t.Run("SilentTransports", func(t *testing.T) {
		d, p := platformDevice(t, Config{Faults: Faults{SilentTransports: []string{TransportUDP}}})
		code, next, _ := inviteUDP(t, d, p)
		if code != 200 {
			t.Fatalf("INVITE answered %d", code)
		}
		nothingArrives(t, next)
	})
}

// TestKeyFrame: after an IFameCmd the next video unit is a keyframe, long
// before the clip's own next one (every 2 s).
func TestKeyFrame(t *testing.T) {
	d, p := platformDevice(t, Config{})
	code, next, _ := inviteUDP(t, d, p)
	if code != 200 {
		t.Fatalf("INVITE answered %d", code)
	}
	readRTP(t, next, 400*time.Millisecond) // past the first keyframe
	if code := p.request(t, d.SIPAddr(), "MESSAGE", keyFrameControl()); code != 200 {
		t.Fatalf("IFameCmd answered %d", code)
	}
	// Units sent before the control arrived may still be on their way: the
	// keyframe must come within the next few (the clip's own is 2 s away).
	for i := 0; i < 6; i++ {
		c := readRTP(t, next, 0)
		if c.units != 1 {
			t.Fatalf("read %d units", c.units)
		}
		if bytes.Contains(c.ps, []byte{0, 0, 1, 0xBC}) { // the muxer's PSM precedes keyframes
			return
		}
	}
	t.Fatal("no keyframe within 6 units of the IFameCmd")
}

func keyFrameControl() *manscdp.Control {
	return &manscdp.Control{Header: manscdp.Header{CmdType: manscdp.CmdDeviceControl, SN: 11, DeviceID: testChan1}, IFameCmd: "Send"}
}

// TestSetFaults: faults change on a running device.
func TestSetFaults(t *testing.T) {
	d, p := platformDevice(t, Config{})
	if err := d.SetFaults(Faults{RefuseInvite: 603}); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := inviteUDP(t, d, p); code != 603 {
		t.Fatalf("INVITE answered %d, want 603", code)
	}
	if err := d.SetFaults(Faults{RefuseInvite: 200}); err == nil {
		t.Fatal("RefuseInvite 200 accepted")
	}
	if err := d.SetFaults(Faults{}); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := inviteUDP(t, d, p); code != 200 {
		t.Fatalf("INVITE answered %d after the faults were cleared", code)
	}
}

func TestConfigErrors(t *testing.T) {
	ok := Config{ID: testDevice, Server: "127.0.0.1:5060", Channels: []Channel{{ID: testChan1}}}
	for _, c := range []struct {
		change func(*Config)
		err    string
	}{
		{func(c *Config) { c.ID = "123" }, `device id "123" is not 20 digits`},
		{func(c *Config) { c.Server = "nowhere" }, `server "nowhere" is not host:port`},
		{func(c *Config) { c.ServerID = "x" }, `server id "x"`},
		{func(c *Config) { c.Transport = "sctp" }, `SIP transport "sctp"`},
		{func(c *Config) { c.Channels = nil }, "at least one channel"},
		{func(c *Config) { c.Channels = []Channel{{ID: "1"}} }, `channel id "1"`},
		{func(c *Config) { c.Channels = []Channel{{ID: testChan1}, {ID: testChan1}} }, "appears twice"},
		{func(c *Config) { c.Codec = "mjpeg" }, `codec "mjpeg"`},
		{func(c *Config) { c.Codec, c.Bitrate = "h265", "high" }, "H.264 only"},
		{func(c *Config) { c.Audio, c.AudioCodec = true, "opus" }, `audio codec "opus"`},
		{func(c *Config) { c.Faults.RefuseInvite = 180 }, "RefuseInvite 180"},
		{func(c *Config) { c.Faults.SilentTransports = []string{"quic"} }, `fault transport "quic"`},
	} {
		cfg := ok
		c.change(&cfg)
		if _, err := Start(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("err %v, want %q", err, c.err)
		}
	}
}
