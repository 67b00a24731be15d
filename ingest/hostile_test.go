package ingest

import (
	"bufio"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/vigil-vms/vigil/internal/testkit"
	"go.uber.org/goleak"
)

// hostileServer is a raw TCP listener that plays a misbehaving camera.
type hostileServer struct {
	ln     net.Listener
	handle func(c *hostileConn)
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed chan struct{}
}

type hostileConn struct {
	net.Conn
	r    *bufio.Reader
	srv  *hostileServer
	addr string
}

// request is an RTSP request as the hostile server sees it.
type request struct {
	method string
	cseq   string
}

// readRequest reads one request's header (the client sends no bodies here).
func (c *hostileConn) readRequest() (request, error) {
	var req request
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			return req, err
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			if req.method == "" {
				continue
			}
			return req, nil
		}
		if req.method == "" {
			req.method, _, _ = strings.Cut(line, " ")
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, "CSeq") {
			req.cseq = strings.TrimSpace(v)
		}
	}
}

func (c *hostileConn) reply(req request, status string, headers string, body string) error {
	s := "RTSP/1.0 " + status + "\r\nCSeq: " + req.cseq + "\r\n" + headers
	if body != "" {
		s += fmt.Sprintf("Content-Length: %d\r\n", len(body))
	}
	s += "\r\n" + body
	_, err := io.WriteString(c, s)
	return err
}

// stopped reports whether the server is closing.
func (c *hostileConn) stopped() bool {
	select {
	case <-c.srv.closed:
		return true
	default:
		return false
	}
}

func startHostile(t *testing.T, handle func(c *hostileConn)) *hostileServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &hostileServer{ln: ln, handle: handle, conns: map[net.Conn]struct{}{}, closed: make(chan struct{})}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			h.mu.Lock()
			h.conns[nc] = struct{}{}
			h.mu.Unlock()
			h.wg.Add(1)
			go func() {
				defer h.wg.Done()
				defer func() {
					nc.Close()
					h.mu.Lock()
					delete(h.conns, nc)
					h.mu.Unlock()
				}()
				handle(&hostileConn{Conn: nc, r: bufio.NewReader(nc), srv: h, addr: ln.Addr().String()})
			}()
		}
	}()
	return h
}

func (h *hostileServer) url() string { return "rtsp://admin:hunter2@" + h.ln.Addr().String() + "/cam" }

func (h *hostileServer) Close() {
	close(h.closed)
	h.ln.Close()
	h.mu.Lock()
	for c := range h.conns {
		c.Close()
	}
	h.mu.Unlock()
	h.wg.Wait()
}

// sdpH264 is a session description with one H.264 track.
func sdpH264(sps, pps []byte) string {
	return "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=hostile\r\nt=0 0\r\n" +
		"m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n" +
		"a=fmtp:96 packetization-mode=1; sprop-parameter-sets=" +
		base64.StdEncoding.EncodeToString(sps) + "," + base64.StdEncoding.EncodeToString(pps) + "\r\n" +
		"a=control:trackID=0\r\n"
}

// replyAll answers every request with answer until the connection ends.
func (c *hostileConn) replyAll(answer func(req request)) {
	for {
		req, err := c.readRequest()
		if err != nil {
			return
		}
		answer(req)
	}
}

// handshake answers OPTIONS, DESCRIBE (with sdp), SETUP (TCP interleaved) and
// PLAY, then returns for the caller to send media.
func (c *hostileConn) handshake(sdp string) bool {
	for {
		req, err := c.readRequest()
		if err != nil {
			return false
		}
		switch req.method {
		case "OPTIONS":
			c.reply(req, "200 OK", "Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN\r\n", "")
		case "DESCRIBE":
			c.reply(req, "200 OK", "Content-Type: application/sdp\r\nContent-Base: rtsp://"+c.addr+"/cam/\r\n", sdp)
		case "SETUP":
			c.reply(req, "200 OK", "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\nSession: 12345678;timeout=60\r\n", "")
		case "PLAY":
			c.reply(req, "200 OK", "Session: 12345678\r\n", "")
			// read (and ignore) keepalives and TEARDOWN meanwhile
			go io.Copy(io.Discard, c.r)
			return true
		default:
			c.reply(req, "405 Method Not Allowed", "", "")
		}
	}
}

// sendRTP sends interleaved RTP packets at 25 per second until the connection or server ends.
func (c *hostileConn) sendRTP(payload func(i int) []byte) {
	for i := 0; !c.stopped(); i++ {
		pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: uint16(i),
			Timestamp: uint32(i * 3600), SSRC: 1234, Marker: true}, Payload: payload(i)}
		b, err := pkt.Marshal()
		if err != nil {
			return
		}
		frame := make([]byte, 4+len(b))
		frame[0] = '$'
		binary.BigEndian.PutUint16(frame[2:], uint16(len(b)))
		copy(frame[4:], b)
		c.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := c.Write(frame); err != nil {
			return
		}
		select {
		case <-c.srv.closed:
			return
		case <-time.After(40 * time.Millisecond):
		}
	}
}

// hostileCases is the table of misbehaving cameras; it also seeds FuzzRTSPReplies.
var hostileCases = []struct {
	name   string
	handle func(c *hostileConn)
	kind   error
	want   string // in lastError
}{
	{
		name: "garbage reply",
		handle: func(c *hostileConn) {
			c.readRequest()
			io.WriteString(c, "HTTP/1.1 418 I'm a teapot\r\n\r\n\x00\x01\x02garbage")
			c.r.ReadByte()
		},
		kind: ErrBadReply, want: "not RTSP",
	},
	{
		name: "truncated header",
		handle: func(c *hostileConn) {
			c.readRequest()
			io.WriteString(c, "RTSP/1.0 200 OK\r\nCSeq: 1\r\nContent-Le")
		},
		kind: ErrBadReply, want: "could not be understood",
	},
	{
		name: "huge header",
		handle: func(c *hostileConn) {
			req, _ := c.readRequest()
			var b strings.Builder
			for i := range 300 {
				fmt.Fprintf(&b, "X-Junk-%d: %s\r\n", i, strings.Repeat("a", 1000))
			}
			c.reply(req, "200 OK", b.String(), "")
			c.r.ReadByte()
		},
		kind: ErrBadReply, want: "could not be understood",
	},
	{
		name: "wrong CSeq",
		handle: func(c *hostileConn) {
			c.replyAll(func(req request) {
				req.cseq = "999"
				c.reply(req, "200 OK", "Public: OPTIONS, DESCRIBE\r\n", "")
			})
		},
		kind: ErrTimeout, want: "did not answer in time",
	},
	{
		name: "endless 401",
		handle: func(c *hostileConn) {
			c.replyAll(func(req request) {
				c.reply(req, "401 Unauthorized", "WWW-Authenticate: Basic realm=\"cam\"\r\n", "")
			})
		},
		kind: ErrUnauthorized, want: "refused the user name or password",
	},
	{
		name: "RTP with bad payloads",
		handle: func(c *hostileConn) {
			if c.handshake(sdpH264(testSPS720, testPPS)) {
				// STAP-A starting with an IDR but with a NAL unit size past the end
				c.sendRTP(func(int) []byte { return []byte{24, 0, 2, 0x65, 0x88, 0xff, 0xff, 0x41} })
			}
		},
		kind: ErrBadMedia, want: "cannot be decoded",
	},
	{
		name: "garbage SPS in SDP",
		handle: func(c *hostileConn) {
			if c.handshake(sdpH264([]byte{0x67, 0xff, 0xff, 0xff, 0xff, 0xff}, testPPS)) {
				c.sendRTP(func(int) []byte { return fakeSlice(0x65, 500) })
			}
		},
		kind: ErrBadMedia, want: "parameter sets",
	},
	{
		name: "never a keyframe",
		handle: func(c *hostileConn) {
			if c.handshake(sdpH264(testSPS720, testPPS)) {
				c.sendRTP(func(int) []byte { return fakeSlice(0x41, 500) })
			}
		},
		kind: ErrNoKeyframe, want: "no keyframe",
	},
	{
		name: "accepts and never answers",
		handle: func(c *hostileConn) {
			io.Copy(io.Discard, c)
		},
		kind: ErrTimeout, want: "did not answer in time",
	},
	{
		name: "no video track",
		handle: func(c *hostileConn) {
			sdp := "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\na=control:trackID=0\r\n"
			if c.handshake(sdp) {
				c.sendRTP(func(int) []byte { return make([]byte, 160) })
			}
		},
		kind: ErrUnsupportedCodec, want: "no H.264 or H.265 video",
	},
}

func TestHostileServers(t *testing.T) {
	for _, tc := range hostileCases {
		t.Run(tc.name, func(t *testing.T) {
			defer goleak.VerifyNone(t)
			h := startHostile(t, tc.handle)
			defer h.Close()
			opts := fastOptions(t)
			// the stall check (1 s) must come before the RTSP read timeout,
			// or a slow moment under -race turns "no keyframe" into a timeout
			opts.StallTimeout = time.Second
			opts.ReadTimeout = 2 * time.Second
			m, stop := startFleet(t, opts, Camera{ID: "evil", MainURL: h.url(), Transport: "tcp", Enabled: true})
			defer stop()
			testkit.WaitFor(t, 15*time.Second, "two retries", func() bool {
				st, _ := m.Status("evil")
				return st.Reconnects >= 2 && st.State == StateOffline
			})
			st, _ := m.Status("evil")
			t.Logf("lastError: %s", st.LastError)
			if !errors.Is(st.Err, tc.kind) {
				t.Errorf("error kind: %v, want %v", st.Err, tc.kind)
			}
			if !strings.Contains(st.LastError, tc.want) {
				t.Errorf("lastError %q does not say %q", st.LastError, tc.want)
			}
			if strings.Contains(st.LastError, "hunter2") {
				t.Errorf("lastError shows the password: %q", st.LastError)
			}
			stop()
			m.Remove("evil")
		})
	}
}

func TestConnectionRefused(t *testing.T) {
	defer goleak.VerifyNone(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	m, stop := startFleet(t, fastOptions(t), Camera{ID: "off", MainURL: "rtsp://u:pw@" + addr + "/x", Transport: "auto", Enabled: true})
	defer stop()
	testkit.WaitFor(t, 5*time.Second, "refused", func() bool {
		st, _ := m.Status("off")
		return errors.Is(st.Err, ErrRefused) && st.Reconnects >= 1
	})
	st, _ := m.Status("off")
	if !strings.Contains(st.LastError, "connection refused") {
		t.Errorf("lastError %q", st.LastError)
	}
	stop()
	m.Remove("off")
}
