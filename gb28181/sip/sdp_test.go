package sip

import (
	"strings"
	"testing"
)

func sdpLines(lines ...string) string { return strings.Join(lines, "\r\n") + "\r\n" }

// answerCases feed TestParseAnswer and the seeds of FuzzParseAnswer.
var answerCases = []struct {
	name, sdp, offer string
	want             Answer
	err              string
}{
	{"udp", sdpLines("v=0", "o=34020000001320000001 0 0 IN IP4 192.168.1.64", "s=Play", "c=IN IP4 192.168.1.64", "t=0 0",
		"m=video 15060 RTP/AVP 96", "a=sendonly", "a=rtpmap:96 PS/90000", "y=0113000001", "f="), TransportUDP,
		Answer{IP: "192.168.1.64", Port: 15060, Transport: TransportUDP, SSRC: "0113000001"}, ""},
	{"udp LF only, media-level c=, no y=", "v=0\no=x 0 0 IN IP4 10.0.0.1\ns=Play\nt=0 0\nm=video 9000 RTP/AVP 96\nc=IN IP4 10.0.0.2\na=rtpmap:96 PS/90000\n",
		TransportUDP, Answer{IP: "10.0.0.2", Port: 9000, Transport: TransportUDP}, ""},
	{"tcp passive offer, device active", sdpLines("v=0", "s=Play", "c=IN IP4 10.0.0.1", "t=0 0",
		"m=video 9 TCP/RTP/AVP 96", "a=setup:active", "a=connection:new", "a=rtpmap:96 PS/90000", "y=0113000001"),
		TransportTCPPassive, Answer{IP: "10.0.0.1", Port: 9, Transport: TransportTCPPassive, SSRC: "0113000001", Setup: "active"}, ""},
	{"tcp active offer, device passive", sdpLines("v=0", "s=Play", "c=IN IP4 10.0.0.1", "t=0 0",
		"m=video 6000 RTP/AVP/TCP 96", "a=setup:passive", "a=rtpmap:96 PS/90000"),
		TransportTCPActive, Answer{IP: "10.0.0.1", Port: 6000, Transport: TransportTCPActive, Setup: "passive"}, ""},
	{"audio before video", sdpLines("v=0", "s=Play", "c=IN IP4 10.0.0.1", "t=0 0", "m=audio 8000 RTP/AVP 8", "m=video 9000 RTP/AVP 96",
		"a=rtpmap:96 PS/90000"), TransportUDP, Answer{IP: "10.0.0.1", Port: 9000, Transport: TransportUDP}, ""},
	{"ipv6", sdpLines("v=0", "s=Play", "c=IN IP6 2001:db8::1", "t=0 0", "m=video 9000 RTP/AVP 96"), TransportUDP,
		Answer{IP: "2001:db8::1", Port: 9000, Transport: TransportUDP}, ""},

	{"empty", "", TransportUDP, Answer{}, "no SDP body"},
	{"not sdp", "hello world", TransportUDP, Answer{}, "is not <letter>=<value>"},
	{"no v=0", sdpLines("s=Play", "c=IN IP4 10.0.0.1", "m=video 9000 RTP/AVP 96"), TransportUDP, Answer{}, "want v=0"},
	{"no video", sdpLines("v=0", "s=Play", "c=IN IP4 10.0.0.1", "m=audio 8000 RTP/AVP 8"), TransportUDP, Answer{}, "no m=video"},
	{"declined", sdpLines("v=0", "c=IN IP4 10.0.0.1", "m=video 0 RTP/AVP 96"), TransportUDP, Answer{}, "declines the video stream"},
	{"bad port", sdpLines("v=0", "c=IN IP4 10.0.0.1", "m=video 70000 RTP/AVP 96"), TransportUDP, Answer{}, "not a port number"},
	{"short m", sdpLines("v=0", "c=IN IP4 10.0.0.1", "m=video 9000"), TransportUDP, Answer{}, "fewer than 4 fields"},
	{"no c", sdpLines("v=0", "m=video 9000 RTP/AVP 96"), TransportUDP, Answer{}, "no c= connection"},
	{"bad c", sdpLines("v=0", "c=IN IP4 camera.local", "m=video 9000 RTP/AVP 96"), TransportUDP, Answer{}, "not an IP address"},
	{"c family mismatch", sdpLines("v=0", "c=IN IP6 10.0.0.1", "m=video 9000 RTP/AVP 96"), TransportUDP, Answer{}, "does not match IP6"},
	{"tcp to udp", sdpLines("v=0", "c=IN IP4 10.0.0.1", "m=video 9000 TCP/RTP/AVP 96"), TransportUDP, Answer{}, "to an offer of RTP over UDP"},
	{"udp to tcp", sdpLines("v=0", "c=IN IP4 10.0.0.1", "m=video 9000 RTP/AVP 96"), TransportTCPPassive, Answer{}, "(UDP) to an offer of RTP over TCP"},
	{"unknown proto", sdpLines("v=0", "c=IN IP4 10.0.0.1", "m=video 9000 RTP/SAVP 96"), TransportUDP, Answer{}, "not RTP/AVP or TCP/RTP/AVP"},
	{"same setup role", sdpLines("v=0", "c=IN IP4 10.0.0.1", "m=video 9000 TCP/RTP/AVP 96", "a=setup:passive"), TransportTCPPassive,
		Answer{}, "a=setup:passive to an offer of tcp-passive (want a=setup:active)"},
	{"tcp active to nowhere", sdpLines("v=0", "c=IN IP4 0.0.0.0", "m=video 9000 TCP/RTP/AVP 96", "a=setup:passive"), TransportTCPActive,
		Answer{}, "unusable address 0.0.0.0"},
	{"no PS", sdpLines("v=0", "c=IN IP4 10.0.0.1", "m=video 9000 RTP/AVP 98", "a=rtpmap:98 H264/90000"), TransportUDP, Answer{}, "H264/90000 but no PS/90000"},
	{"bad y", sdpLines("v=0", "c=IN IP4 10.0.0.1", "m=video 9000 RTP/AVP 96", "y=abc"), TransportUDP, Answer{}, `y= SSRC "abc"`},
	{"y too big", sdpLines("v=0", "c=IN IP4 10.0.0.1", "m=video 9000 RTP/AVP 96", "y=9999999999"), TransportUDP, Answer{}, "at most 10 digits"},
	{"control char", "v=0\r\ns=Pl\x01ay\r\n", TransportUDP, Answer{}, "control character"},
	{"invalid utf-8", "v=0\r\ns=\xff\xfe\r\n", TransportUDP, Answer{}, "invalid UTF-8"},
	{"too big", "v=0\r\n" + strings.Repeat("a=x\r\n", maxSDP/5+1), TransportUDP, Answer{}, "more than 16384"},
}

func TestParseAnswer(t *testing.T) {
	for _, tc := range answerCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseAnswer([]byte(tc.sdp), tc.offer)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

// TestOfferParsesAsAnswer: our own offer, read back as an answer to the
// same transport, gives the address, port and SSRC we wrote (the offer and
// the parser agree on the format).
func TestOfferParsesAsAnswer(t *testing.T) {
	for _, tr := range []string{TransportUDP, TransportTCPPassive, TransportTCPActive} {
		r := InviteRequest{Device: testDevice, Channel: testDevice, SSRC: "0113000042", Transport: tr, MediaIP: "192.0.2.7", MediaPort: 10000}
		offer := offerSDP(testPlatform, r)
		// an offer's setup role is the opposite of the answer's
		if tr != TransportUDP {
			offer = []byte(strings.NewReplacer("a=setup:passive", "a=setup:active", "a=setup:active", "a=setup:passive").Replace(string(offer)))
		}
		a, err := parseAnswer(offer, tr)
		if err != nil || a.IP != "192.0.2.7" || a.Port != 10000 || a.SSRC != "0113000042" || a.Transport != tr {
			t.Fatalf("%s: %+v %v\n%s", tr, a, err, offer)
		}
	}
}

// FuzzParseAnswer: any bytes give an answer or an error, never a panic; an
// accepted answer has a port, a parseable IP and a transport of the offer's
// kind.
func FuzzParseAnswer(f *testing.F) {
	for _, tc := range answerCases {
		f.Add([]byte(tc.sdp), uint8(0))
		f.Add([]byte(tc.sdp), uint8(1))
	}
	offers := []string{TransportUDP, TransportTCPPassive, TransportTCPActive}
	f.Fuzz(func(t *testing.T, sdp []byte, which uint8) {
		offer := offers[int(which)%len(offers)]
		a, err := parseAnswer(sdp, offer)
		if err != nil {
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Fatalf("error with a line break: %q", err)
			}
			return
		}
		if a.Port <= 0 || a.Port > 65535 || a.IP == "" || a.Transport != offer {
			t.Fatalf("accepted %+v for %s", a, offer)
		}
	})
}
