package app_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/app"
	"github.com/vigil-vms/vigil/camsim"
	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/testkit/simcam"
)

// browserOffer is a WHEP offer for H.264 video, as a browser makes it.
const browserOffer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n" +
	"m=video 9 UDP/TLS/RTP/SAVPF 102\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=recvonly\r\na=rtcp-mux\r\n" +
	"a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n" +
	"a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\n" +
	"a=setup:actpass\r\na=rtpmap:102 H264/90000\r\na=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n"

// A WHEP request that arrives the moment the server starts (it is already
// waiting on the listening socket when Run begins) is served by a running
// relay, not refused with 503: the server serves only once its parts are
// ready.
func TestWHEPRightAfterStart(t *testing.T) {
	sim := simcam.Start(t, camsim.Options{Count: 1, Codec: "h264"})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := app.New(ctx, testConfig(t, t.TempDir()), app.Options{AdminPassword: adminPassword})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	cam := ingest.Camera{ID: "cam-1", Name: "Camera 1", Department: "police", MainURL: sim.URL(1, false),
		Transport: "tcp", Enabled: true}
	if _, err := a.Registry.CreateCamera(ctx, cam); err != nil {
		t.Fatal(err)
	}
	_, secret, err := a.Registry.CreateToken(ctx, "admin", "test")
	if err != nil {
		t.Fatal(err)
	}

	// the request is on the wire before Run starts
	conn, err := net.Dial("tcp", a.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /api/v1/cameras/cam-1/whep HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/sdp\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		a.Addr(), secret, len(browserOffer), browserOffer)

	runDone := make(chan error, 1)
	go func() { runDone <- a.Run(ctx) }()
	select {
	case <-a.Ready():
	case err := <-runDone:
		t.Fatalf("Run ended before ready: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("not ready within 20 s")
	}
	select {
	case <-a.Relay.Ready():
	default:
		t.Fatal("the app says ready before the relay is")
	}

	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || !strings.HasPrefix(string(body), "v=0") {
		t.Fatalf("WHEP right after start: %d %s", resp.StatusCode, body)
	}

	cancel()
	if err := <-runDone; err != nil {
		t.Fatalf("run: %v", err)
	}
}
