package upstream

import (
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/vigil-vms/vigil/internal/testkit"
)

// TestRTCPSilenceEndsView: an upper platform (SIPp for the signalling, a
// Go peer for the media) plays a channel over UDP and sends RTCP receiver
// reports to Vigil's RTP socket, then stops; Vigil ends the view itself
// (viewer count drops) long before the upper platform's own BYE.
func TestRTCPSilenceEndsView(t *testing.T) {
	e, media, from := rtcpView(t)
	to := from()
	rr, err := (&rtcp.ReceiverReport{SSRC: 0x1234}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	// receiver reports every 300 ms for 3 s, then silence
	var stopped time.Time
	for range 10 {
		time.Sleep(300 * time.Millisecond)
		if _, err := media.WriteTo(rr, to); err != nil {
			t.Fatal(err)
		}
		stopped = time.Now()
	}
	if st := e.status(); st.Viewers != 1 {
		t.Fatalf("viewers while RTCP came = %d, want 1", st.Viewers)
	}
	testkit.WaitFor(t, 20*time.Second, "the view ended by RTCP silence", func() bool {
		return e.status().Viewers == 0 && len(e.svc.Views()) == 0
	})
	if d := time.Since(stopped); d < rtcpSilenceMin {
		t.Fatalf("the view ended %s after the RTCP stopped, before the %s bound", d, rtcpSilenceMin)
	}
	t.Logf("the view ended %s after the last RTCP", time.Since(stopped).Round(100*time.Millisecond))
}

// TestNoRTCPViewLasts: an upper platform that never sends RTCP keeps its
// view past the silence bound.
func TestNoRTCPViewLasts(t *testing.T) {
	e, _, _ := rtcpView(t)
	time.Sleep(rtcpSilenceMin + 3*time.Second)
	if st := e.status(); st.Viewers != 1 || len(e.svc.Views()) != 1 {
		t.Fatalf("viewers %d after %s without RTCP, want 1", st.Viewers, rtcpSilenceMin+3*time.Second)
	}
}

// rtcpView starts a UDP view of an upper platform (SIPp, its BYE after a
// minute) with a 2 s RTCP silence bound, and returns its media socket and
// where the view's RTP comes from, once it comes.
func rtcpView(t *testing.T) (*env, net.PacketConn, func() net.Addr) {
	t.Helper()
	old := rtcpSilenceMin
	rtcpSilenceMin = 2 * time.Second
	t.Cleanup(func() { rtcpSilenceMin = old })

	media, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { media.Close() })
	var (
		mu      sync.Mutex
		rtpFrom net.Addr
		got     int
	)
	go func() {
		buf := make([]byte, 2048)
		for {
			_, from, err := media.ReadFrom(buf)
			if err != nil {
				return
			}
			mu.Lock()
			rtpFrom, got = from, got+1
			mu.Unlock()
		}
	}()
	port := freePort(t, "udp")
	e := newEnv(t, "127.0.0.1:"+strconv.Itoa(port), "udp", 20*time.Second)
	startUpper(t, "udp", port, map[string]string{
		"upper": testUpper, "realm": testUpRealm, "lower": testLocal, "password": testPassword,
		"channel": e.shared, "hidden": e.hidden, "rtpport": strconv.Itoa(media.LocalAddr().(*net.UDPAddr).Port),
		"proto": "RTP/AVP", "setup": "a=recvonly", "ssrc": testSSRC, "ptzcmd": testPTZ.String(),
		"duration": "60000", // the upper platform's own BYE would come after a minute
	})
	testkit.WaitFor(t, 15*time.Second, "registered", func() bool { return e.status().State == StateRegistered })
	testkit.WaitFor(t, 20*time.Second, "RTP from the view", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return got > 0
	})
	if st := e.status(); st.Viewers != 1 {
		t.Fatalf("viewers during the view = %d, want 1", st.Viewers)
	}
	return e, media, func() net.Addr {
		mu.Lock()
		defer mu.Unlock()
		return rtpFrom
	}
}
