package gbsim

import (
	"bytes"
	"math"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/camsim"
	"github.com/vigil-vms/vigil/gb28181/ps"
	"github.com/vigil-vms/vigil/internal/testkit"
)

// TestInviteUDP: the device answers an INVITE over UDP with y= echoed and
// sends its channel's video as MPEG-PS over RTP, which ffprobe reads as
// H.264 1280x720 with one frame per PS unit at 25 fps; BYE stops it.
func TestInviteUDP(t *testing.T) {
	udp, _, _ := startRegistrar(t, time.Minute)
	d := startDevice(t, Config{Server: udp, Password: "secret1"})
	waitRegistered(t, d)
	p := newPlatform(t, time.Time{})
	pc, next := udpReceiver(t)
	port := pc.LocalAddr().(*net.UDPAddr).Port
	s, code, err := p.invite(t, d.SIPAddr(), testChan1, offerSDP(TransportUDP, "127.0.0.1", port, "0100000001"))
	if err != nil || code != 200 {
		t.Fatalf("invite: %d %v", code, err)
	}
	ans, err := parseOffer(s.InviteResponse.Body())
	if err != nil {
		t.Fatalf("answer sdp: %v\n%s", err, s.InviteResponse.Body())
	}
	if ans.SSRC != "0100000001" || ans.Transport != TransportUDP || ans.Port == 0 {
		t.Fatalf("answer %+v", ans)
	}
	c := readRTP(t, next, 2*time.Second)
	if len(c.ssrcs) != 1 || c.ssrcs[100000001] == 0 {
		t.Fatalf("ssrcs %v, want only 100000001", c.ssrcs)
	}
	if c.maxLen > MaxRTPPayload {
		t.Fatalf("payload of %d bytes, over %d", c.maxLen, MaxRTPPayload)
	}
	pr := ffprobe(t, c.ps)
	codec, w, h, frames := pr.video(t)
	if codec != "h264" || w != 1280 || h != 720 {
		t.Fatalf("ffprobe: %s %dx%d", codec, w, h)
	}
	if frames != c.units {
		t.Fatalf("ffprobe counted %d frames, the device sent %d units", frames, c.units)
	}
	dur, _ := strconv.ParseFloat(pr.Format.Duration, 64)
	if want := float64(c.units-1) / 25; math.Abs(dur-want) > 0.1 {
		t.Fatalf("ffprobe duration %.3f s, want %.3f for %d frames at 25 fps", dur, want, c.units)
	}
	// the platform's BYE ends the session and the media
	if err := s.Bye(t.Context()); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 5*time.Second, "session gone", func() bool { return len(d.Sessions()) == 0 })
}

// TestInviteTCP: RTP over TCP (RFC 4571) with the device connecting
// (tcp-passive: the platform listens) and listening (tcp-active: the
// platform connects to the port in the answer).
func TestInviteTCP(t *testing.T) {
	udp, _, _ := startRegistrar(t, time.Minute)
	d := startDevice(t, Config{Server: udp, Password: "secret1"})
	waitRegistered(t, d)
	p := newPlatform(t, time.Time{})
	for _, tr := range []string{TransportTCPPassive, TransportTCPActive} {
		t.Run(tr, func(t *testing.T) {
			var ln net.Listener
			port := 9
			if tr == TransportTCPPassive {
				var err error
				ln, err = net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
				port = ln.Addr().(*net.TCPAddr).Port
			}
			s, code, err := p.invite(t, d.SIPAddr(), testChan2, offerSDP(tr, "127.0.0.1", port, "0100000002"))
			if err != nil || code != 200 {
				t.Fatalf("invite: %d %v", code, err)
			}
			ans, err := parseOffer(s.InviteResponse.Body())
			if err != nil {
				t.Fatalf("answer sdp: %v\n%s", err, s.InviteResponse.Body())
			}
			var conn net.Conn
			if tr == TransportTCPPassive {
				if ans.Setup != "active" {
					t.Fatalf("answer setup %q, want active", ans.Setup)
				}
				ln.(*net.TCPListener).SetDeadline(time.Now().Add(5 * time.Second))
				conn, err = ln.Accept()
			} else {
				if ans.Setup != "passive" || ans.Port == 0 {
					t.Fatalf("answer setup %q port %d, want passive and a port", ans.Setup, ans.Port)
				}
				conn, err = net.DialTimeout("tcp", net.JoinHostPort(ans.IP, strconv.Itoa(ans.Port)), 5*time.Second)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			c := readRTP(t, tcpReader(t, conn), 1500*time.Millisecond)
			if len(c.ssrcs) != 1 || c.ssrcs[100000002] == 0 {
				t.Fatalf("ssrcs %v, want only 100000002", c.ssrcs)
			}
			codec, w, h, frames := ffprobe(t, c.ps).video(t)
			if codec != "h264" || w != 1280 || h != 720 || frames != c.units {
				t.Fatalf("ffprobe: %s %dx%d %d frames, sent %d units", codec, w, h, frames, c.units)
			}
			if err := s.Bye(t.Context()); err != nil {
				t.Fatal(err)
			}
			testkit.WaitFor(t, 5*time.Second, "session gone", func() bool { return len(d.Sessions()) == 0 })
		})
	}
}

// TestDeviceBye: Hangup sends a BYE from the device, and a platform that
// closes the TCP connection gets a BYE too.
func TestDeviceBye(t *testing.T) {
	udp, _, _ := startRegistrar(t, time.Minute)
	d := startDevice(t, Config{Server: udp, Password: "secret1"})
	waitRegistered(t, d)
	p := newPlatform(t, time.Time{})
	pc, next := udpReceiver(t)
	if _, code, err := p.invite(t, d.SIPAddr(), testChan1, offerSDP(TransportUDP, "127.0.0.1", pc.LocalAddr().(*net.UDPAddr).Port, "0100000003")); err != nil || code != 200 {
		t.Fatalf("invite: %d %v", code, err)
	}
	readRTP(t, next, 200*time.Millisecond)
	if err := d.Hangup(t.Context(), testChan1); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.byeSig:
	case <-time.After(5 * time.Second):
		t.Fatal("no BYE from the device")
	}

	// tcp-active: the platform connects, reads a little, and goes away
	_, code, err := p.invite(t, d.SIPAddr(), testChan2, offerSDP(TransportTCPActive, "127.0.0.1", 9, "0100000004"))
	if err != nil || code != 200 {
		t.Fatalf("invite: %d %v", code, err)
	}
	info := d.Sessions()
	if len(info) != 1 {
		t.Fatalf("sessions %+v", info)
	}
	conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(info[0].LocalPort)), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	readRTP(t, tcpReader(t, conn), 200*time.Millisecond)
	conn.Close()
	select {
	case <-p.byeSig:
	case <-time.After(10 * time.Second):
		t.Fatal("no BYE from the device after the platform closed the media connection")
	}
}

// TestInviteH265Audio: an H.265 device with AAC audio: ffprobe finds hevc
// 1280x720 with one frame per video unit, and AAC at 48 kHz.
func TestInviteH265Audio(t *testing.T) {
	d, p := platformDevice(t, Config{Codec: "h265", Audio: true})
	code, next, _ := inviteUDP(t, d, p)
	if code != 200 {
		t.Fatalf("INVITE answered %d", code)
	}
	c := readRTP(t, next, 1500*time.Millisecond)
	video := videoUnits(t, c.ps)
	if video == 0 || video == c.units {
		t.Fatalf("%d units, %d of them video: want video and audio", c.units, video)
	}
	pr := ffprobe(t, c.ps)
	codec, w, h, frames := pr.video(t)
	if codec != "hevc" || w != 1280 || h != 720 || frames != video {
		t.Fatalf("ffprobe video: %s %dx%d %d frames, sent %d video units", codec, w, h, frames, video)
	}
	audio := false
	for _, s := range pr.Streams {
		if s.CodecType == "audio" {
			audio = s.CodecName == "aac" && s.SampleRate == "48000" && s.NbReadFrames == strconv.Itoa(c.units-video)
		}
	}
	if !audio {
		t.Fatalf("ffprobe found no AAC at 48 kHz with %d frames: %+v", c.units-video, pr.Streams)
	}
}

// TestInviteRefusals: an INVITE for an unknown channel gets 404, an offer
// that is not usable 488.
func TestInviteRefusals(t *testing.T) {
	d, p := platformDevice(t, Config{})
	if _, code, err := p.invite(t, d.SIPAddr(), "44011300001310009999", offerSDP(TransportUDP, "127.0.0.1", 9000, "0100000001")); err != nil || code != 404 {
		t.Fatalf("unknown channel: %d %v", code, err)
	}
	bad := []byte("v=0\r\no=x 0 0 IN IP4 127.0.0.1\r\ns=Play\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=video 9000 RTP/SAVP 96\r\ny=0100000001\r\n")
	if _, code, err := p.invite(t, d.SIPAddr(), testChan1, bad); err != nil || code != 488 {
		t.Fatalf("bad offer: %d %v", code, err)
	}
}

// TestRefresh: the device registers again before the granted lifetime ends.
func TestRefresh(t *testing.T) {
	d, _ := platformDevice(t, Config{Expires: 2 * time.Second})
	testkit.WaitFor(t, 10*time.Second, "a refresh", func() bool { return d.Registrations() >= 2 })
}

// TestInviteG711: G.711 audio (stream types 0x90, 0x91) beside H.264, as
// Vigil's demuxer reads it: 20 ms units of 160 bytes, the tone camsim makes.
// (Debian's ffprobe 5.1 cannot judge it: it takes stream 0xC0 as MPEG audio
// whatever the PSM says.)
func TestInviteG711(t *testing.T) {
	for _, c := range []struct {
		codec string
		typ   ps.StreamType
	}{{AudioPCMA, ps.TypeG711A}, {AudioPCMU, ps.TypeG711U}} {
		t.Run(c.codec, func(t *testing.T) {
			tone, err := camsim.G711Frames(c.codec == AudioPCMA)
			if err != nil {
				t.Fatal(err)
			}
			d, p := platformDevice(t, Config{Audio: true, AudioCodec: c.codec})
			code, next, _ := inviteUDP(t, d, p)
			if code != 200 {
				t.Fatalf("INVITE answered %d", code)
			}
			cp := readRTP(t, next, 1200*time.Millisecond)
			audio, first := 0, int64(-1)
			dm := ps.Demuxer{OnUnit: func(u *ps.Unit) {
				if u.Type != c.typ {
					return
				}
				if first < 0 {
					first = u.PTS
				}
				i := int((u.PTS-first)/1800) % len(tone.Frames)
				if (u.PTS-first)%1800 != 0 || !bytes.Equal(u.Payload, tone.Frames[i].Audio) {
					t.Errorf("audio unit at +%d: %d bytes, not tone frame %d", u.PTS-first, len(u.Payload), i)
				}
				audio++
			}}
			dm.Write(cp.ps)
			dm.Flush()
			if video := videoUnits(t, cp.ps); audio < 40 || audio+video != cp.units {
				t.Fatalf("%d units: %d video, %d %v", cp.units, video, audio, c.typ)
			}
		})
	}
}
