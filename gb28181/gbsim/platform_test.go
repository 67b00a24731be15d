package gbsim

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"

	"github.com/vigil-vms/vigil/gb28181/manscdp"
	"github.com/vigil-vms/vigil/gb28181/ps"
	"github.com/vigil-vms/vigil/internal/testkit"
)

// testPlatform is the platform side of an INVITE for the device tests: a
// sipgo user agent on UDP that invites, ACKs and BYEs, and answers the
// device's BYE.
type testPlatform struct {
	cli    *sipgo.Client
	addr   string
	dc     *sipgo.DialogClientCache
	byeMu  sync.Mutex
	byes   int
	byeSig chan struct{}
	// msgs receives the MANSCDP bodies of MESSAGEs and NOTIFYs from the device.
	msgs chan manscdp.Message
	// date is the Date header of the 200 to a REGISTER (zero: none).
	date time.Time
}

// date is the Date the platform answers REGISTERs with (zero: none).
func newPlatform(t *testing.T, date time.Time) *testPlatform {
	t.Helper()
	testkit.CheckLeaks(t)
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("platform"), sipgo.WithUserAgentHostname("4401130000"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &testPlatform{addr: pc.LocalAddr().String(), byeSig: make(chan struct{}, 16), msgs: make(chan manscdp.Message, 64), date: date}
	p.cli, err = sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"), sipgo.WithClientConnectionAddr(p.addr))
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := sip.ParseAddr(p.addr)
	p.dc = sipgo.NewDialogClientCache(p.cli, sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "44011300002000000001", Host: host, Port: port}})
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		if err := p.dc.ReadBye(req, tx); err != nil {
			tx.Respond(sip.NewResponseFromRequest(req, 481, "No dialog", nil))
			return
		}
		p.byeMu.Lock()
		p.byes++
		p.byeMu.Unlock()
		p.byeSig <- struct{}{}
	})
	srv.OnRegister(func(req *sip.Request, tx sip.ServerTransaction) {
		res := sip.NewResponseFromRequest(req, 200, "OK", nil)
		if !p.date.IsZero() {
			res.AppendHeader(sip.NewHeader("Date", p.date.Format(DateFormat)))
		}
		if h := req.GetHeader("Expires"); h != nil {
			res.AppendHeader(sip.NewHeader("Expires", h.Value()))
		}
		tx.Respond(res)
	})
	onBody := func(req *sip.Request, tx sip.ServerTransaction) {
		m, err := manscdp.Decode(req.Body())
		if err != nil {
			t.Errorf("device sent a bad body: %v\n%s", err, req.Body())
			tx.Respond(sip.NewResponseFromRequest(req, 400, "Bad Request", nil))
			return
		}
		tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
		select {
		case p.msgs <- m:
		default:
		}
	}
	srv.OnMessage(onBody)
	srv.OnNotify(onBody)
	done := make(chan struct{})
	go func() { defer close(done); srv.ServeUDP(pc) }()
	if err := waitListening(ua, p.addr); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pc.Close()
		srv.Close()
		ua.Close()
		<-done
	})
	return p
}

// offerSDP is an INVITE offer as Vigil's gateway writes it.
func offerSDP(transport, ip string, port int, ssrc string) []byte {
	proto, setup := "RTP/AVP", ""
	switch transport {
	case TransportTCPPassive:
		proto, setup = "TCP/RTP/AVP", "a=setup:passive\r\na=connection:new\r\n"
	case TransportTCPActive:
		proto, setup = "TCP/RTP/AVP", "a=setup:active\r\na=connection:new\r\n"
	}
	return []byte(fmt.Sprintf("v=0\r\no=44011300002000000001 0 0 IN IP4 %s\r\ns=Play\r\nc=IN IP4 %s\r\nt=0 0\r\n"+
		"m=video %d %s 96\r\na=recvonly\r\na=rtpmap:96 PS/90000\r\n%sy=%s\r\n", ip, ip, port, proto, setup, ssrc))
}

// invite sends an INVITE for channel to the device at addr and, on a 2xx,
// ACKs it. It returns the session (nil when refused) and the final status.
func (p *testPlatform) invite(t *testing.T, addr, channel string, sdp []byte) (*sipgo.DialogClientSession, int, error) {
	t.Helper()
	host, port, _ := sip.ParseAddr(addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := p.dc.Invite(ctx, sip.Uri{Scheme: "sip", User: channel, Host: host, Port: port}, sdp,
		sip.NewHeader("Content-Type", "application/sdp"),
		sip.NewHeader("Subject", channel+":"+"0100000001,44011300002000000001:0"))
	if err != nil {
		return nil, 0, err
	}
	err = s.WaitAnswer(ctx, sipgo.AnswerOptions{})
	var de *sipgo.ErrDialogResponse
	if errors.As(err, &de) {
		return nil, int(de.Res.StatusCode), nil
	}
	if err != nil {
		return nil, 0, err
	}
	if err := s.Ack(ctx); err != nil {
		return nil, 0, err
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		s.Bye(ctx)
		s.Close()
	})
	return s, int(s.InviteResponse.StatusCode), nil
}

// capture is what a receiver got: the PS bytes of whole units, in order.
type capture struct {
	ssrcs   map[uint32]int
	units   int // RTP packets with the marker bit: PS units
	packets int
	maxLen  int
	ps      []byte
}

// readRTP reads RTP packets from next until at least d has passed and a unit
// is complete (marker bit), or until the deadline end.
func readRTP(t *testing.T, next func() ([]byte, error), d time.Duration) *capture {
	t.Helper()
	c := &capture{ssrcs: map[uint32]int{}}
	start := time.Now()
	var pending []byte
	for time.Since(start) < d+10*time.Second {
		b, err := next()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				break
			}
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatalf("read rtp: %v", err)
		}
		var p rtp.Packet
		if err := p.Unmarshal(b); err != nil {
			t.Fatalf("bad rtp packet: %v", err)
		}
		if p.PayloadType != 96 {
			t.Fatalf("payload type %d, want 96", p.PayloadType)
		}
		c.packets++
		c.ssrcs[p.SSRC]++
		c.maxLen = max(c.maxLen, len(p.Payload))
		pending = append(pending, p.Payload...)
		if p.Marker {
			c.units++
			c.ps = append(c.ps, pending...)
			pending = pending[:0]
			if time.Since(start) >= d {
				break
			}
		}
	}
	return c
}

func udpReceiver(t *testing.T) (net.PacketConn, func() ([]byte, error)) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	buf := make([]byte, 65536)
	return pc, func() ([]byte, error) {
		pc.SetReadDeadline(time.Now().Add(3 * time.Second))
		n, _, err := pc.ReadFrom(buf)
		return buf[:n], err
	}
}

func tcpReader(t *testing.T, c net.Conn) func() ([]byte, error) {
	fr := ps.NewFrameReader(bufio.NewReader(c))
	return func() ([]byte, error) {
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		return fr.ReadFrame()
	}
}

// probe is what ffprobe says about a PS file.
type probe struct {
	Streams []struct {
		CodecName    string `json:"codec_name"`
		CodecType    string `json:"codec_type"`
		Width        int    `json:"width"`
		Height       int    `json:"height"`
		NbReadFrames string `json:"nb_read_frames"`
		SampleRate   string `json:"sample_rate"`
	} `json:"streams"`
	Format struct {
		FormatName string `json:"format_name"`
		Duration   string `json:"duration"`
	} `json:"format"`
}

// ffprobe judges PS bytes with an independent demuxer and decoder.
func ffprobe(t *testing.T, data []byte) probe {
	t.Helper()
	bin := testkit.Tool(t, "ffprobe", "VIGIL_REQUIRE_FFMPEG")
	f := filepath.Join(t.TempDir(), "capture.ps")
	if err := os.WriteFile(f, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "-v", "error", "-f", "mpeg", "-count_frames", "-show_streams", "-show_format", "-of", "json", f).Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	var p probe
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("ffprobe output: %v\n%s", err, out)
	}
	return p
}

func (p probe) video(t *testing.T) (codec string, w, h, frames int) {
	t.Helper()
	for _, s := range p.Streams {
		if s.CodecType == "video" {
			n, _ := strconv.Atoi(s.NbReadFrames)
			return s.CodecName, s.Width, s.Height, n
		}
	}
	t.Fatalf("ffprobe found no video stream: %+v", p)
	return
}

// request sends a request with a MANSCDP body (or none) to the device and
// returns the final status.
func (p *testPlatform) request(t *testing.T, addr string, method sip.RequestMethod, m manscdp.Message, hdrs ...sip.Header) int {
	t.Helper()
	host, port, _ := sip.ParseAddr(addr)
	req := sip.NewRequest(method, sip.Uri{Scheme: "sip", User: testDevice, Host: host, Port: port})
	for _, h := range hdrs {
		req.AppendHeader(h)
	}
	if m != nil {
		body, err := manscdp.Encoder{}.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		req.AppendHeader(sip.NewHeader("Content-Type", "Application/MANSCDP+xml"))
		req.SetBody(body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := p.cli.Do(ctx, req)
	if err != nil {
		t.Fatalf("%s to the device: %v", method, err)
	}
	return int(res.StatusCode)
}

// next returns the next body the device sent.
func (p *testPlatform) next(t *testing.T) manscdp.Message {
	t.Helper()
	select {
	case m := <-p.msgs:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no MESSAGE from the device in 10s")
		return nil
	}
}

// videoUnits counts the video units in PS bytes with Vigil's demuxer.
func videoUnits(t *testing.T, b []byte) int {
	t.Helper()
	n := 0
	d := ps.Demuxer{OnUnit: func(u *ps.Unit) {
		if u.Type.IsVideo() {
			n++
		}
	}}
	d.Write(b)
	d.Flush()
	return n
}
