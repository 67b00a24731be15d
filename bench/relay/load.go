package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/logging"
	"github.com/pion/webrtc/v4"
)

// loadStats is what the load client counted in the measuring window.
type loadStats struct {
	Packets, Frames          int64
	MinPackets, MaxPackets   int64
	MinFrames, MaxFrames     int64
	Viewers, Failed, Refused int
}

func (s loadStats) avg(wall time.Duration) float64 {
	return float64(s.Packets) / float64(max(s.Viewers, 1)) / wall.Seconds()
}

// viewer is one WHEP viewer of the load client.
type viewer struct {
	pc      *webrtc.PeerConnection
	packets atomic.Int64
	frames  atomic.Int64
	failed  atomic.Bool
	up      chan struct{} // closed when connected
	upOnce  sync.Once
}

// runLoad is the load process: -load BASE N USERS PASSWORD [light]. It connects N
// viewers of cam1 (perUser on each user's login), prints "ready CONNECTED
// REFUSED" (REFUSED: the 503 answers, each retried after 2 s), counts RTP packets and frames (marker bits) between the lines
// "start" and "stop" on its stdin, and prints "stats {json}".
func runLoad() error {
	if len(os.Args) != 6 && (len(os.Args) != 7 || os.Args[6] != "light") {
		return fmt.Errorf("usage: -load BASE N USERS PASSWORD [light]")
	}
	base, users, password := os.Args[2], strings.Split(os.Args[4], ","), os.Args[5]
	n, err := strconv.Atoi(os.Args[3])
	if err != nil {
		return err
	}
	ctx := context.Background()
	light := len(os.Args) == 7
	api, err := loadAPI(nil)
	if err != nil {
		return err
	}
	clients := make([]*apiClient, len(users))
	for i, u := range users {
		if clients[i], err = login(ctx, base, u, password); err != nil {
			return err
		}
	}
	viewers := make([]*viewer, n)
	var refused atomic.Int64
	var firstErr error
	var errOnce sync.Once
	// a few viewers connecting at a time: the server caps the sessions not
	// yet connected, and a loaded machine fails handshakes begun all at once
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			// a refused viewer (503: the relay is overloaded) tries again
			// a little later, as the web app does, for at most 90 s
			var v *viewer
			var status int
			var err error
			for giveUp := time.Now().Add(90 * time.Second); ; {
				v, status, err = connect(ctx, api, clients[i/perUser], base, light)
				if status != http.StatusServiceUnavailable && status != http.StatusTooManyRequests {
					break
				}
				refused.Add(1)
				if time.Now().After(giveUp) {
					return
				}
				time.Sleep(2 * time.Second)
			}
			if err != nil {
				errOnce.Do(func() { firstErr = err })
				return
			}
			viewers[i] = v
			select {
			case <-v.up:
			case <-time.After(30 * time.Second):
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		fmt.Println("first error:", firstErr)
	}
	var live []*viewer
	for _, v := range viewers {
		if v != nil {
			live = append(live, v)
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		c := 0
		for _, v := range live {
			if v.pc.ConnectionState() == webrtc.PeerConnectionStateConnected {
				c++
			}
		}
		if c == len(live) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	connected := 0
	for _, v := range live {
		if v.pc.ConnectionState() == webrtc.PeerConnectionStateConnected {
			connected++
		}
	}
	fmt.Printf("ready %d %d\n", connected, refused.Load())
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() && in.Text() != "start" {
	}
	p0 := make([]int64, len(live))
	f0 := make([]int64, len(live))
	for i, v := range live {
		p0[i], f0[i] = v.packets.Load(), v.frames.Load()
	}
	for in.Scan() && in.Text() != "stop" {
	}
	st := loadStats{Viewers: len(live), Refused: int(refused.Load()), MinPackets: -1, MinFrames: -1}
	for i, v := range live {
		p, f := v.packets.Load()-p0[i], v.frames.Load()-f0[i]
		st.Packets += p
		st.Frames += f
		if st.MinPackets < 0 || p < st.MinPackets {
			st.MinPackets = p
		}
		if st.MinFrames < 0 || f < st.MinFrames {
			st.MinFrames = f
		}
		st.MaxPackets, st.MaxFrames = max(st.MaxPackets, p), max(st.MaxFrames, f)
		if v.failed.Load() || v.pc.ConnectionState() != webrtc.PeerConnectionStateConnected {
			st.Failed++
		}
	}
	b, _ := json.Marshal(st)
	fmt.Println("stats " + string(b))
	_, _ = io.Copy(io.Discard, os.Stdin)
	return nil
}

// loadAPI is the receiving peer: H.264 only, pion's default interceptors
// (receiver reports and NACKs for lost packets, as a browser sends), loopback
// ICE over UDP.
//
// With light (-light), each viewer's UDP socket counts the RTP packets and
// frames by their clear headers and drops them before pion would decrypt
// them: the client then costs little more than a system call a packet and
// holds 1000 viewers. The relay's work is the same; its viewers send no
// NACKs and no picture loss indications.
func loadAPI(light *countingConn) (*webrtc.API, error) {
	me := &webrtc.MediaEngine{}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine:  "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
		RTCPFeedback: []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}},
	}, PayloadType: 102}, webrtc.RTPCodecTypeVideo); err != nil {
		return nil, err
	}
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelError
	se := webrtc.SettingEngine{LoggerFactory: lf}
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetICETimeouts(10*time.Second, 30*time.Second, 2*time.Second)
	if light != nil {
		se.SetICEUDPMux(webrtc.NewICEUDPMux(lf.NewLogger("ice-udp"), light))
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se)), nil
}

// connect makes one viewer: offer, WHEP POST, answer.
func connect(ctx context.Context, api *webrtc.API, c *apiClient, base string, light bool) (*viewer, int, error) {
	v := &viewer{up: make(chan struct{})}
	var cc *countingConn
	if light {
		var err error
		if cc, err = newCountingConn(v); err != nil {
			return nil, 0, err
		}
		if api, err = loadAPI(cc); err != nil {
			_ = cc.Close()
			return nil, 0, err
		}
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, 0, err
	}
	v.pc = pc
	fail := func(status int, err error) (*viewer, int, error) {
		_ = pc.Close()
		if cc != nil {
			_ = cc.Close()
		}
		return nil, status, err
	}
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo,
		webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		return fail(0, err)
	}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		buf := make([]byte, 1500)
		for {
			n, _, err := tr.Read(buf)
			if err != nil {
				return
			}
			v.packets.Add(1)
			if n > 1 && buf[1]&0x80 != 0 {
				v.frames.Add(1)
			}
		}
	})
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			v.upOnce.Do(func() { close(v.up) })
		}
		if s == webrtc.PeerConnectionStateFailed || s == webrtc.PeerConnectionStateClosed {
			v.failed.Store(true)
		}
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return fail(0, err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return fail(0, err)
	}
	<-gathered
	req, err := http.NewRequestWithContext(ctx, "POST", base+"/api/v1/cameras/cam1/whep?stream=main",
		strings.NewReader(pc.LocalDescription().SDP))
	if err != nil {
		return fail(0, err)
	}
	req.Header.Set("Content-Type", "application/sdp")
	req.Header.Set("X-CSRF-Token", c.csrf)
	resp, err := c.http.Do(req)
	if err != nil {
		return fail(0, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return fail(resp.StatusCode, fmt.Errorf("WHEP offer: %d %s", resp.StatusCode, strings.TrimSpace(string(body))))
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(body)}); err != nil {
		return fail(0, err)
	}
	return v, resp.StatusCode, nil
}

// countingConn is a light viewer's socket (see loadAPI): it counts and
// drops RTP packets and passes the rest (ICE, DTLS, RTCP) to pion.
type countingConn struct {
	*net.UDPConn
	v *viewer
}

func newCountingConn(v *viewer) (*countingConn, error) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	return &countingConn{UDPConn: c, v: v}, nil
}

// rtp counts p when it is an RTP packet (RFC 7983: first byte 128-191;
// RTCP has payload types 192-223) and tells whether it was.
func (c *countingConn) rtp(p []byte) bool {
	if len(p) < 12 || p[0]>>6 != 2 || (p[1] >= 192 && p[1] <= 223) {
		return false
	}
	c.v.packets.Add(1)
	if p[1]&0x80 != 0 {
		c.v.frames.Add(1)
	}
	return true
}

func (c *countingConn) ReadFromAddrPort(p []byte) (int, netip.AddrPort, error) {
	for {
		n, a, err := c.UDPConn.ReadFromUDPAddrPort(p)
		if err != nil || !c.rtp(p[:n]) {
			return n, a, err
		}
	}
}

func (c *countingConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, a, err := c.ReadFromAddrPort(p)
	if err != nil {
		return n, nil, err
	}
	return n, net.UDPAddrFromAddrPort(a), nil
}

func (c *countingConn) WriteToAddrPort(p []byte, a netip.AddrPort) (int, error) {
	return c.UDPConn.WriteToUDPAddrPort(p, a)
}
