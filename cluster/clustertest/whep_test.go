package clustertest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
)

// whepFirstFrame opens a live view (WHEP) of cam through the node at base
// with the API token, and returns how long the first video packet took
// from the offer: the node may not own the camera, and then forwards the
// offer to the owner, whose relay sends the media (cluster/remote).
func whepFirstFrame(base, token, cam string, timeout time.Duration) (time.Duration, error) {
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		return 0, err
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return 0, err
	}
	defer pc.Close()
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo,
		webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		return 0, err
	}
	first := make(chan struct{})
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		if tr.Kind() != webrtc.RTPCodecTypeVideo {
			return
		}
		if _, _, err := tr.ReadRTP(); err == nil {
			close(first)
		}
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return 0, err
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return 0, err
	}
	<-gathered
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "POST", base+"/api/v1/cameras/"+cam+"/whep", strings.NewReader(pc.LocalDescription().SDP))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/sdp")
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	answer, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		return 0, fmt.Errorf("POST whep: %s: %s", res.Status, answer)
	}
	if loc := res.Header.Get("Location"); loc != "" {
		defer func() {
			if !strings.HasPrefix(loc, "http") {
				loc = base + loc
			}
			del, _ := http.NewRequest("DELETE", loc, nil)
			del.Header.Set("Authorization", "Bearer "+token)
			if res, err := http.DefaultClient.Do(del); err == nil {
				res.Body.Close()
			}
		}()
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(answer)}); err != nil {
		return 0, err
	}
	select {
	case <-first:
		return time.Since(start), nil
	case <-ctx.Done():
		return 0, fmt.Errorf("no video within %v (ICE %s)", timeout, pc.ICEConnectionState())
	}
}
