package sip

import (
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/internal/testkit"
)

const testSSRC = "0113000001"

func inviteReq(p *peer, transport string) InviteRequest {
	return InviteRequest{Device: testDevice, Channel: p.channels[0].DeviceID, SSRC: testSSRC,
		Transport: transport, MediaIP: "127.0.0.1", MediaPort: 10000}
}

// TestInvite: over SIP UDP and TCP, for each media transport, the offer
// carries what GB/T 28181 asks, the answer is parsed, ACK and BYE reach the
// device; a device's BYE closes Done.
func TestInvite(t *testing.T) {
	for _, sipTr := range []string{"udp", "tcp"} {
		for _, media := range []string{TransportUDP, TransportTCPPassive, TransportTCPActive} {
			t.Run(sipTr+"/"+media, func(t *testing.T) {
				ts, p := registered(t, sipTr, nil, func(s *Server) { s.CatalogRefresh = -1 })
				addr := ts.DeviceState(testDevice).Address
				p.set(func(p *peer) { p.invite = func(offer string) (int, string) { return 200, sdpAnswer(offer) } })
				call, err := ts.Invite(ctx5(t), inviteReq(p, media))
				if err != nil {
					t.Fatal(err)
				}
				want := Answer{IP: "127.0.0.1", Port: 30000, Transport: media, SSRC: testSSRC}
				switch media {
				case TransportTCPPassive:
					want.Setup = "active"
				case TransportTCPActive:
					want.Setup = "passive"
				}
				if got := call.Answer(); got != want {
					t.Fatalf("answer %+v, want %+v", got, want)
				}
				p.mu.Lock()
				offer := string(p.offers[0].Body())
				subject := p.subjects[0]
				p.mu.Unlock()
				for _, l := range []string{"s=Play", "c=IN IP4 127.0.0.1", "a=recvonly", "a=rtpmap:96 PS/90000", "y=" + testSSRC} {
					if !strings.Contains(offer, l+"\r\n") {
						t.Errorf("offer lacks %q:\n%s", l, offer)
					}
				}
				wantM := map[string]string{TransportUDP: "m=video 10000 RTP/AVP 96", TransportTCPPassive: "m=video 10000 TCP/RTP/AVP 96",
					TransportTCPActive: "m=video 10000 TCP/RTP/AVP 96"}[media]
				if !strings.Contains(offer, wantM) {
					t.Errorf("offer lacks %q:\n%s", wantM, offer)
				}
				if media != TransportUDP && !strings.Contains(offer, "a=connection:new") {
					t.Errorf("TCP offer lacks a=connection:new")
				}
				if subject != p.channels[0].DeviceID+":"+testSSRC+","+testPlatform+":0" {
					t.Errorf("Subject %q", subject)
				}
				testkit.WaitFor(t, 5*time.Second, "ACK", func() bool {
					p.mu.Lock()
					defer p.mu.Unlock()
					return p.acks == 1
				})
				if err := call.Bye(ctx5(t)); err != nil {
					t.Fatal(err)
				}
				select {
				case <-call.Done():
				default:
					t.Fatal("Done open after Bye")
				}
				p.mu.Lock()
				byes := p.byes
				p.mu.Unlock()
				if byes != 1 || call.HungUp() {
					t.Fatalf("device saw %d BYE; HungUp %v", byes, call.HungUp())
				}

				// the device hangs up the next call
				call, err = ts.Invite(ctx5(t), inviteReq(p, media))
				if err != nil {
					t.Fatal(err)
				}
				testkit.WaitFor(t, 5*time.Second, "second ACK", func() bool {
					p.mu.Lock()
					defer p.mu.Unlock()
					return p.acks == 2
				})
				if err := p.hangUp(); err != nil {
					t.Fatalf("device BYE: %v", err)
				}
				select {
				case <-call.Done():
				case <-time.After(5 * time.Second):
					t.Fatal("Done not closed by the device's BYE")
				}
				if !call.HungUp() {
					t.Fatal("HungUp false after the device's BYE")
				}
				// the device is still where it was: its connection (TCP) was not closed
				if code := p.send(keepaliveOf(testDevice)); code != 200 || ts.DeviceState(testDevice).Address != addr {
					t.Fatalf("keepalive after the calls: %d, address %s, was %s", code, ts.DeviceState(testDevice).Address, addr)
				}
			})
		}
	}
}

// TestInviteFailures: every failure ends within the INVITE timeout with a
// typed cause naming device and channel; a second device is unaffected.
func TestInviteFailures(t *testing.T) {
	ts, p := registered(t, "udp", nil, func(s *Server) { s.CatalogRefresh = -1; s.InviteTimeout = 1500 * time.Millisecond })
	other := newPeer(t, "44011300001320000002", ts.udp, "udp")
	other.channels = channels(1)
	if code := other.register("default1"); code != 200 {
		t.Fatal(code)
	}
	for _, tc := range []struct {
		name   string
		answer func(string) (int, string)
		kind   InviteErrorKind
		code   int
		text   string
	}{
		{"refused", func(string) (int, string) { return 486, "" }, InviteRefused, 486, "refused the INVITE (udp) with 486 Busy Here"},
		{"bad sdp", func(o string) (int, string) { return 200, "v=0\r\nthis is not sdp\r\n" }, InviteBadSDP, 200, "unusable SDP"},
		{"declined stream", func(o string) (int, string) { return 200, strings.Replace(sdpAnswer(o), "30000", "0", 1) }, InviteBadSDP, 200, "m=video port 0"},
		{"tcp answer to udp", func(o string) (int, string) {
			return 200, strings.Replace(sdpAnswer(o), "RTP/AVP", "TCP/RTP/AVP", 1)
		}, InviteBadSDP, 200, "answered TCP/RTP/AVP to an offer of RTP over UDP"},
		{"no answer", nil, InviteNoAnswer, 0, "no answer to the INVITE (udp) within 1.5s"},
		{"ringing only", func(string) (int, string) { return 180, "" }, InviteNoAnswer, 0, "no answer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p.mu.Lock()
			p.invite, p.acks, p.byes = tc.answer, 0, 0
			p.mu.Unlock()
			start := time.Now()
			call, err := ts.Invite(ctx5(t), inviteReq(p, TransportUDP))
			took := time.Since(start)
			var ie *InviteError
			if !errors.As(err, &ie) || call != nil {
				t.Fatalf("got %v, %v", call, err)
			}
			if ie.Kind != tc.kind || ie.Code != tc.code || !strings.Contains(err.Error(), tc.text) ||
				!strings.Contains(err.Error(), testDevice) || !strings.Contains(err.Error(), p.channels[0].DeviceID) {
				t.Fatalf("error %#v: %q", ie, err)
			}
			if took > 1500*time.Millisecond+2500*time.Millisecond { // generous: a loaded machine
				t.Fatalf("INVITE took %v", took)
			}
			if tc.kind == InviteBadSDP {
				// the 2xx was ACKed and the call hung up
				testkit.WaitFor(t, 5*time.Second, "ACK and BYE", func() bool {
					p.mu.Lock()
					defer p.mu.Unlock()
					return p.acks == 1 && p.byes == 1
				})
			}
			// the other device is unaffected
			if code := other.send(keepaliveOf(other.id)); code != 200 {
				t.Fatalf("other device's keepalive: %d", code)
			}
			if _, err := ts.Catalog(ctx5(t), other.id); err != nil {
				t.Fatalf("other device's catalog: %v", err)
			}
		})
	}
	// offline
	_, err := ts.Invite(ctx5(t), InviteRequest{Device: "44011300001320000009", Channel: "44011300001310000009",
		SSRC: testSSRC, Transport: TransportUDP, MediaIP: "127.0.0.1", MediaPort: 10000})
	var ie *InviteError
	if !errors.As(err, &ie) || ie.Kind != InviteOffline || !strings.Contains(err.Error(), "not registered") {
		t.Fatalf("offline: %v", err)
	}
	// a malformed request is refused before anything is sent
	bad := inviteReq(p, "quic")
	if _, err := ts.Invite(ctx5(t), bad); err == nil || errors.As(err, &ie) {
		t.Fatalf("bad transport: %v", err)
	}
}

// TestNoGoroutineGrowth: while the server runs, failed and successful
// INVITEs, catalog queries and hang-ups leave no goroutines behind (the
// count settles back to where it was), so a device that keeps failing
// cannot make the server grow.
func TestNoGoroutineGrowth(t *testing.T) {
	ts, p := registered(t, "udp", nil, func(s *Server) { s.CatalogRefresh = -1; s.InviteTimeout = 300 * time.Millisecond })
	round := func() {
		for _, answer := range []func(string) (int, string){
			func(string) (int, string) { return 486, "" },
			func(string) (int, string) { return 200, "v=0\r\nnot sdp\r\n" },
			nil, // no answer
			func(o string) (int, string) { return 200, sdpAnswer(o) },
		} {
			p.set(func(p *peer) { p.invite = answer })
			call, err := ts.Invite(ctx5(t), inviteReq(p, TransportUDP))
			if err == nil {
				call.Bye(ctx5(t))
			}
		}
		if _, err := ts.Catalog(ctx5(t), testDevice); err != nil {
			t.Fatal(err)
		}
	}
	round()
	settle := func() int {
		// sipgo keeps finished transactions on timers, not goroutines;
		// what is left are handlers finishing
		time.Sleep(200 * time.Millisecond)
		return runtime.NumGoroutine()
	}
	base := settle()
	for range 10 {
		round()
	}
	var n int
	defer func() {
		if t.Failed() {
			buf := make([]byte, 1<<20)
			t.Logf("base %d, now %d\n%s", base, n, buf[:runtime.Stack(buf, true)])
		}
	}()
	testkit.WaitFor(t, 10*time.Second, "goroutines back to the baseline", func() bool {
		n = settle()
		return n <= base+2
	})
	if t.Failed() {
		return
	}
	t.Logf("goroutines: %d after one round, %d after ten more", base, n)
}

// TestInviteLateAnswer: a device that answers 200 after the INVITE timeout
// (Invite has reported InviteNoAnswer) is ACKed and hung up, so it does not
// stream to nobody or refuse the next INVITE as busy.
func TestInviteLateAnswer(t *testing.T) {
	ts, p := registered(t, "udp", nil, func(s *Server) { s.CatalogRefresh = -1; s.InviteTimeout = 500 * time.Millisecond })
	p.set(func(p *peer) {
		p.invite = func(o string) (int, string) { return 200, sdpAnswer(o) }
		p.inviteDelay = 900 * time.Millisecond
	})
	_, err := ts.Invite(ctx5(t), inviteReq(p, TransportUDP))
	var ie *InviteError
	if !errors.As(err, &ie) || ie.Kind != InviteNoAnswer {
		t.Fatalf("invite: %v", err)
	}
	testkit.WaitFor(t, 10*time.Second, "the late 200 ACKed and hung up", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.acks >= 1 && p.byes == 1
	})
}
