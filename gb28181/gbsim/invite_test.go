package gbsim

import (
	"math"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/internal/testkit"
)

// TestInviteUDP: the device answers an INVITE over UDP with y= echoed and
// sends its channel's video as MPEG-PS over RTP, which ffprobe reads as
// H.264 1280x720 with one frame per PS unit at 25 fps; BYE stops it.
func TestInviteUDP(t *testing.T) {
	udp, _, _ := startRegistrar(t, time.Minute)
	d := startDevice(t, Config{Server: udp, Password: "secret1"})
	waitRegistered(t, d)
	p := newPlatform(t)
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
