package gbsim

import (
	"strings"
	"testing"
)

var offerCases = []struct {
	name, sdp string
	want      offer
	err       string
}{
	{"udp", "v=0\r\no=x 0 0 IN IP4 10.0.0.1\r\ns=Play\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=video 10000 RTP/AVP 96 98\r\na=recvonly\r\na=rtpmap:96 PS/90000\r\ny=0100000001\r\n",
		offer{Session: "Play", IP: "10.0.0.1", Port: 10000, Proto: "RTP/AVP", SSRC: "0100000001", Transport: TransportUDP}, ""},
	{"tcp passive, LF only", "v=0\ns=Play\nc=IN IP4 10.0.0.1\nm=video 10000 TCP/RTP/AVP 96\na=setup:passive\na=connection:new\ny=0100000002\n",
		offer{Session: "Play", IP: "10.0.0.1", Port: 10000, Proto: "TCP/RTP/AVP", Setup: "passive", SSRC: "0100000002", Transport: TransportTCPPassive}, ""},
	{"tcp active", "v=0\r\ns=Play\r\nc=IN IP4 10.0.0.1\r\nm=video 0 TCP/RTP/AVP 96\r\na=setup:active\r\n",
		offer{Session: "Play", IP: "10.0.0.1", Port: 0, Proto: "TCP/RTP/AVP", Setup: "active", Transport: TransportTCPActive}, ""},
	{"audio line first", "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 9 RTP/AVP 8\r\na=setup:active\r\nm=video 10000 RTP/AVP 96\r\n",
		offer{IP: "10.0.0.1", Port: 10000, Proto: "RTP/AVP", Transport: TransportUDP}, ""},
	{"no video", "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 9 RTP/AVP 8\r\n", offer{}, "no video media line"},
	{"no connection", "v=0\r\nm=video 10000 RTP/AVP 96\r\n", offer{}, "not an IP address"},
	{"bad connection", "v=0\r\nc=IN IP4\r\nm=video 10000 RTP/AVP 96\r\n", offer{}, "bad connection line"},
	{"host name", "v=0\r\nc=IN IP4 platform.example\r\nm=video 10000 RTP/AVP 96\r\n", offer{}, "not an IP address"},
	{"bad port", "v=0\r\nc=IN IP4 10.0.0.1\r\nm=video 70000 RTP/AVP 96\r\n", offer{}, "bad port"},
	{"udp port 0", "v=0\r\nc=IN IP4 10.0.0.1\r\nm=video 0 RTP/AVP 96\r\n", offer{}, "media port 0"},
	{"srtp", "v=0\r\nc=IN IP4 10.0.0.1\r\nm=video 10000 RTP/SAVP 96\r\n", offer{}, "media protocol"},
	{"bad setup", "v=0\r\nc=IN IP4 10.0.0.1\r\nm=video 10000 TCP/RTP/AVP 96\r\na=setup:actpass\r\n", offer{}, "a=setup:actpass"},
	{"bad ssrc", "v=0\r\nc=IN IP4 10.0.0.1\r\nm=video 10000 RTP/AVP 96\r\ny=01000000011\r\n", offer{}, "decimal SSRC"},
}

func TestParseOffer(t *testing.T) {
	for _, c := range offerCases {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseOffer([]byte(c.sdp))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err %v, want %q", err, c.err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("got %+v %v, want %+v", got, err, c.want)
			}
			// the answer echoes y= and takes the other TCP role
			flip := map[string]string{TransportUDP: TransportUDP, TransportTCPPassive: TransportTCPActive, TransportTCPActive: TransportTCPPassive}
			ans, err := parseOffer(answerSDP(testDevice, "127.0.0.1", 4000, got))
			if err != nil || ans.Transport != flip[got.Transport] || ans.SSRC != got.SSRC || ans.Port != 4000 {
				t.Fatalf("answer %+v %v", ans, err)
			}
		})
	}
}

func FuzzParseOffer(f *testing.F) {
	for _, c := range offerCases {
		f.Add([]byte(c.sdp))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := parseOffer(b)
		if err != nil {
			return
		}
		if o.Transport == "" || o.IP == "" {
			t.Fatalf("accepted without transport or address: %+v", o)
		}
		answerSDP(testDevice, "127.0.0.1", 4000, o)
	})
}
