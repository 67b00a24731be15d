package sdp

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

func lines(l ...string) string { return strings.Join(l, "\r\n") + "\r\n" }

func intp(n int) *int       { return &n }
func int64p(n int64) *int64 { return &n }

// cases feed TestParse, TestMarshal (round trips) and the seeds of
// FuzzParse. They include every SDP of the tests of the readers this
// package replaced (gb28181/sip's answers, gbsim's offers).
var cases = []struct {
	name, sdp string
	want      *Session // nil: only check that it parses
	err       string
}{
	{"platform live offer, udp", lines("v=0", "o=34020000002000000001 0 0 IN IP4 192.0.2.7", "s=Play", "c=IN IP4 192.0.2.7", "t=0 0",
		"m=video 10000 RTP/AVP 96 98 97", "a=recvonly", "a=rtpmap:96 PS/90000", "a=rtpmap:98 H264/90000", "a=rtpmap:97 MPEG4/90000", "y=0113000042"),
		&Session{Origin: Origin{"34020000002000000001", "0", "0", "IP4", "192.0.2.7"}, Name: Play, Address: "192.0.2.7",
			Media: []Media{{Kind: "video", Port: 10000, Proto: ProtoUDP, Payloads: []int{96, 98, 97}, Direction: "recvonly",
				RTPMaps: []RTPMap{{96, "PS", 90000, 0}, {98, "H264", 90000, 0}, {97, "MPEG4", 90000, 0}}}}, SSRC: "0113000042"}, ""},
	{"device answer, udp, f=", lines("v=0", "o=34020000001320000001 0 0 IN IP4 192.168.1.64", "s=Play", "c=IN IP4 192.168.1.64", "t=0 0",
		"m=video 15060 RTP/AVP 96", "a=sendonly", "a=rtpmap:96 PS/90000", "y=0113000001", "f="),
		&Session{Origin: Origin{"34020000001320000001", "0", "0", "IP4", "192.168.1.64"}, Name: Play, Address: "192.168.1.64",
			Media: []Media{{Kind: "video", Port: 15060, Proto: ProtoUDP, Payloads: []int{96}, Direction: "sendonly",
				RTPMaps: []RTPMap{{96, "PS", 90000, 0}}}}, SSRC: "0113000001", HasFormat: true}, ""},
	{"playback offer, tcp passive", lines("v=0", "o=34020000002000000001 0 0 IN IP4 10.0.0.1", "s=Playback", "u=34020000001320000001:0",
		"c=IN IP4 10.0.0.1", "t=1764144000 1764147600", "m=video 10000 TCP/RTP/AVP 96", "a=recvonly", "a=rtpmap:96 PS/90000",
		"a=setup:passive", "a=connection:new", "y=1100000001", "f=v/2/4/25/1/4000a/1/8/1"),
		&Session{Origin: Origin{"34020000002000000001", "0", "0", "IP4", "10.0.0.1"}, Name: Playback, URI: "34020000001320000001:0",
			Address: "10.0.0.1", Start: 1764144000, Stop: 1764147600,
			Media: []Media{{Kind: "video", Port: 10000, Proto: ProtoTCP, Payloads: []int{96}, Direction: "recvonly",
				RTPMaps: []RTPMap{{96, "PS", 90000, 0}}, Setup: "passive", Connection: "new"}},
			SSRC: "1100000001", Format: "v/2/4/25/1/4000a/1/8/1", HasFormat: true}, ""},
	{"download answer", lines("v=0", "o=x 0 0 IN IP4 10.0.0.9", "s=Download", "c=IN IP4 10.0.0.9", "t=1764144000 1764147600",
		"m=video 6000 RTP/AVP 96", "a=sendonly", "a=rtpmap:96 PS/90000", "a=downloadspeed:4", "a=filesize:123456789", "y=1100000002"),
		&Session{Origin: Origin{"x", "0", "0", "IP4", "10.0.0.9"}, Name: Download, Address: "10.0.0.9", Start: 1764144000, Stop: 1764147600,
			Media: []Media{{Kind: "video", Port: 6000, Proto: ProtoUDP, Payloads: []int{96}, Direction: "sendonly",
				RTPMaps: []RTPMap{{96, "PS", 90000, 0}}, DownloadSpeed: intp(4), FileSize: int64p(123456789)}}, SSRC: "1100000002"}, ""},
	{"talk, audio, sub stream, unknown attribute", lines("v=0", "o=x 0 0 IN IP4 10.0.0.9", "s=Talk", "c=IN IP4 10.0.0.9", "t=0 0",
		"m=audio 8000 RTP/AVP 8", "a=sendrecv", "a=rtpmap:8 PCMA/8000/1", "a=streamnumber:1", "a=username:34020000001320000001", "y=0100000003"),
		&Session{Origin: Origin{"x", "0", "0", "IP4", "10.0.0.9"}, Name: Talk, Address: "10.0.0.9",
			Media: []Media{{Kind: "audio", Port: 8000, Proto: ProtoUDP, Payloads: []int{8}, Direction: "sendrecv",
				RTPMaps: []RTPMap{{8, "PCMA", 8000, 1}}, StreamNumber: intp(1),
				Attributes: []Attribute{{"username", "34020000001320000001", true}}}}, SSRC: "0100000003"}, ""},
	{"LF only, media-level c=, RTP/AVP/TCP", "v=0\no=x 0 0 IN IP4 10.0.0.1\ns=Play\nt=0 0\nm=video 6000 RTP/AVP/TCP 96\nc=IN IP4 10.0.0.2\na=setup:PASSIVE\n",
		&Session{Origin: Origin{"x", "0", "0", "IP4", "10.0.0.1"}, Name: Play,
			Media: []Media{{Kind: "video", Port: 6000, Proto: ProtoTCP, Payloads: []int{96}, Address: "10.0.0.2", Setup: "passive"}}}, ""},
	{"ipv6", lines("v=0", "s=Play", "c=IN IP6 2001:db8::1", "t=0 0", "m=video 9000 RTP/AVP 96"),
		&Session{Name: Play, Address: "2001:db8::1", Media: []Media{{Kind: "video", Port: 9000, Proto: ProtoUDP, Payloads: []int{96}}}}, ""},
	{"audio before video", lines("v=0", "s=Play", "c=IN IP4 10.0.0.1", "t=0 0", "m=audio 8000 RTP/AVP 8", "m=video 9000 RTP/AVP 96", "a=rtpmap:96 PS/90000"), nil, ""},
	{"tcp active offer, port 0", "v=0\r\ns=Play\r\nc=IN IP4 10.0.0.1\r\nm=video 0 TCP/RTP/AVP 96\r\na=setup:active\r\n", nil, ""},
	{"no video (a caller's matter)", lines("v=0", "c=IN IP4 10.0.0.1", "m=audio 8000 RTP/AVP 8"), nil, ""},
	{"no c= (a caller's matter)", lines("v=0", "m=video 9000 RTP/AVP 96"), nil, ""},
	{"actpass (a caller's matter)", "v=0\r\nc=IN IP4 10.0.0.1\r\nm=video 10000 TCP/RTP/AVP 96\r\na=setup:actpass\r\n", nil, ""},
	{"other lines kept out", lines("v=0", "s=Play", "i=camera", "b=AS:4096", "c=IN IP4 10.0.0.1", "t=0 0", "m=video 9000 RTP/AVP 96", "b=AS:2048"), nil, ""},

	// gb28181/upstream's offers (v=0 added where they had none)
	{"upstream udp", "v=0\r\ns=Play\r\nc=IN IP4 10.0.0.9\r\nm=video 30000 RTP/AVP 96\r\na=recvonly\r\ny=0100000001\r\n",
		&Session{Name: Play, Address: "10.0.0.9", Media: []Media{{Kind: "video", Port: 30000, Proto: ProtoUDP, Payloads: []int{96}, Direction: "recvonly"}},
			SSRC: "0100000001"}, ""},
	{"upstream tcp, upper listens", "v=0\ns=Play\nc=IN IP4 10.0.0.9\nm=video 30000 TCP/RTP/AVP 96\na=setup:passive\na=connection:new\ny=0100000001\n", nil, ""},
	{"upstream tcp, upper connects", "v=0\ns=Play\nc=IN IP4 10.0.0.9\nm=video 9 TCP/RTP/AVP 96\na=setup:active\n", nil, ""},
	{"upstream playback", "v=0\ns=Playback\nc=IN IP4 10.0.0.9\nm=video 30000 RTP/AVP 96\n", nil, ""},
	{"the same direction twice (upstream's sipp scenario), LF", "v=0\ns=Play\nc=IN IP4 127.0.0.1\nt=0 0\nm=video 9 RTP/AVP 96\n" +
		"a=recvonly\na=rtpmap:96 PS/90000\na=recvonly\na=setup:active\na=setup:ACTIVE\ny=0100000001\n",
		&Session{Name: Play, Address: "127.0.0.1", Media: []Media{{Kind: "video", Port: 9, Proto: ProtoUDP, Payloads: []int{96}, Direction: "recvonly",
			RTPMaps: []RTPMap{{96, "PS", 90000, 0}}, Setup: "active"}}, SSRC: "0100000001"}, ""},
	{"upstream sipp offer", lines("v=0", "o=44011300002000000001 0 0 IN IP4 127.0.0.1", "s=Play", "c=IN IP4 127.0.0.1", "t=0 0",
		"m=video 20000 TCP/RTP/AVP 96 97 98", "a=recvonly", "a=rtpmap:96 PS/90000", "", "y=0100000001"), nil, ""},
	{"upstream bad address", "v=0\ns=Play\nc=IN IP4 host.example\nm=video 30000 RTP/AVP 96\n", nil, "no IP address"},
	{"upstream bad port", "v=0\ns=Play\nc=IN IP4 10.0.0.9\nm=video x RTP/AVP 96\n", nil, "no port"},
	{"upstream bad ssrc", "v=0\ns=Play\nc=IN IP4 10.0.0.9\nm=video 3000 RTP/AVP 96\ny=99999999999\n", nil, "not an SSRC"},

	{"empty", "", nil, "no SDP body"},
	{"not sdp", "hello world", nil, "is not <letter>=<value>"},
	{"not sdp after v=0", "v=0\r\nthis is not sdp\r\n", nil, "is not <letter>=<value>"},
	{"no v=0", lines("s=Play", "c=IN IP4 10.0.0.1", "m=video 9000 RTP/AVP 96"), nil, "want v=0"},
	{"v=1", lines("v=1", "s=Play"), nil, "want v=0"},
	{"only blank lines", "\r\n\n", nil, "no v=0"},
	{"bad port", lines("v=0", "c=IN IP4 10.0.0.1", "m=video 70000 RTP/AVP 96"), nil, "bad port: \"70000\" is not a port number"},
	{"negative port", lines("v=0", "m=video -0 RTP/AVP 96"), nil, "not a port number"},
	{"short m", lines("v=0", "c=IN IP4 10.0.0.1", "m=video 9000"), nil, "fewer than 4 fields"},
	{"bad payload", lines("v=0", "m=video 9000 RTP/AVP 200"), nil, "payload type \"200\""},
	{"host name", lines("v=0", "c=IN IP4 camera.local", "m=video 9000 RTP/AVP 96"), nil, "not an IP address"},
	{"bad connection", "v=0\r\nc=IN IP4\r\nm=video 10000 RTP/AVP 96\r\n", nil, "bad connection line"},
	{"c family mismatch", lines("v=0", "c=IN IP6 10.0.0.1", "m=video 9000 RTP/AVP 96"), nil, "does not match IP6"},
	{"two c= in a section", lines("v=0", "m=video 9000 RTP/AVP 96", "c=IN IP4 10.0.0.1", "c=IN IP4 10.0.0.2"), nil, "a second c= line"},
	{"unknown proto", lines("v=0", "c=IN IP4 10.0.0.1", "m=video 9000 RTP/SAVP 96"), nil, "media protocol \"RTP/SAVP\" is not RTP/AVP or TCP/RTP/AVP"},
	{"bad o", lines("v=0", "o=x 0 0 IN IP4"), nil, "o=x 0 0 IN IP4 is not"},
	{"bad t", lines("v=0", "t=now later"), nil, "t=now later is not"},
	{"one t value", lines("v=0", "t=1764144000"), nil, "is not \"<start> <stop>\""},
	{"two y", lines("v=0", "y=0100000001", "y=0100000002"), nil, "a second y= line"},
	{"bad y", lines("v=0", "c=IN IP4 10.0.0.1", "m=video 9000 RTP/AVP 96", "y=abc"), nil, `y= SSRC "abc"`},
	{"y too big", lines("v=0", "c=IN IP4 10.0.0.1", "m=video 9000 RTP/AVP 96", "y=9999999999"), nil, "at most 10 digits"},
	{"y 11 digits", "v=0\r\nc=IN IP4 10.0.0.1\r\nm=video 10000 RTP/AVP 96\r\ny=01000000011\r\n", nil, "decimal SSRC"},
	{"empty y", lines("v=0", "y="), nil, "y= SSRC \"\""},
	{"bad setup", lines("v=0", "m=video 9000 TCP/RTP/AVP 96", "a=setup:server"), nil, "a=setup:server is not"},
	{"bad connection attribute", lines("v=0", "m=video 9000 TCP/RTP/AVP 96", "a=connection:old"), nil, "a=connection:old is not"},
	{"bad rtpmap", lines("v=0", "m=video 9000 RTP/AVP 96", "a=rtpmap:96 PS"), nil, "a=rtpmap:96 PS is not"},
	{"bad downloadspeed", lines("v=0", "m=video 9000 RTP/AVP 96", "a=downloadspeed:0"), nil, "a=downloadspeed:0 is not a number"},
	{"bad filesize", lines("v=0", "m=video 9000 RTP/AVP 96", "a=filesize:-1"), nil, "a=filesize:-1 is not"},
	{"two directions", lines("v=0", "m=video 9000 RTP/AVP 96", "a=recvonly", "a=sendonly"), nil, "a=sendonly after a=recvonly"},
	{"two setup roles", lines("v=0", "m=video 9000 TCP/RTP/AVP 96", "a=setup:active", "a=setup:passive"), nil, "a=setup:passive after a=setup:active"},
	{"control char", "v=0\r\ns=Pl\x01ay\r\n", nil, "control character"},
	{"invalid utf-8", "v=0\r\ns=\xff\xfe\r\n", nil, "invalid UTF-8"},
	{"too big", "v=0\r\n" + strings.Repeat("a=x\r\n", MaxSize/5+1), nil, "more than 16384"},
}

func TestParse(t *testing.T) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse([]byte(tc.sdp))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.want != nil && !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// TestMarshal: a written session reads back the same, and the sessions
// the tests spell out in full (CRLF, with t=) are written back byte for
// byte.
func TestMarshal(t *testing.T) {
	for _, tc := range cases {
		if tc.err != "" {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse([]byte(tc.sdp))
			if err != nil {
				t.Fatal(err)
			}
			out := s.Marshal()
			again, err := Parse(out)
			if err != nil || !reflect.DeepEqual(again, s) {
				t.Fatalf("read back %+v, %v\nwant %+v\n%s", again, err, s, out)
			}
			// (LF-only and t=-less inputs are written in Marshal's form)
			if tc.want != nil && strings.HasSuffix(tc.sdp, "\r\n") && strings.Contains(tc.sdp, "\r\nt=") {
				if !bytes.Equal(out, []byte(tc.sdp)) {
					t.Fatalf("wrote\n%s\nwant\n%s", out, tc.sdp)
				}
			}
		})
	}
}

func TestHelpers(t *testing.T) {
	s, err := Parse([]byte(lines("v=0", "c=IN IP4 10.0.0.1", "t=0 0", "m=audio 8000 RTP/AVP 8",
		"m=video 9000 TCP/RTP/AVP 96 98", "c=IN IP4 10.0.0.2", "a=rtpmap:98 H264/90000", "a=rtpmap:96 mp2p/90000")))
	if err != nil {
		t.Fatal(err)
	}
	v, a := s.FirstMedia("video"), s.FirstMedia("audio")
	if v == nil || v.Port != 9000 || !v.TCP() || !v.HasPS() || s.AddressOf(v) != "10.0.0.2" {
		t.Fatalf("video %+v", v)
	}
	if a == nil || a.TCP() || a.HasPS() || s.AddressOf(a) != "10.0.0.1" || s.FirstMedia("application") != nil {
		t.Fatalf("audio %+v", a)
	}
	// IPv6 addresses are written as IP6
	w := (&Session{Address: "2001:db8::7", Media: []Media{{Kind: "video", Port: 1, Proto: ProtoUDP, Payloads: []int{96}}}}).Marshal()
	if want := lines("v=0", "c=IN IP6 2001:db8::7", "t=0 0", "m=video 1 RTP/AVP 96"); string(w) != want {
		t.Fatalf("wrote %q, want %q", w, want)
	}
}

// FuzzParse: any bytes give a session or an error without a line break,
// never a panic; an accepted session is written so that it reads back the
// same.
func FuzzParse(f *testing.F) {
	for _, tc := range cases {
		f.Add([]byte(tc.sdp))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Parse(b)
		if err != nil {
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Fatalf("error with a line break: %q", err)
			}
			return
		}
		out := s.Marshal()
		if len(out) > MaxSize {
			return // the lines Marshal adds (t=) may pass the bound
		}
		again, err := Parse(out)
		if err != nil || !reflect.DeepEqual(again, s) {
			t.Fatalf("read back %+v, %v\nwant %+v\n%q", again, err, s, out)
		}
	})
}
