package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/vigil-vms/vigil/app"
	"github.com/vigil-vms/vigil/app/config"
	"github.com/vigil-vms/vigil/camsim"
	"github.com/vigil-vms/vigil/internal/testkit"
	"github.com/vigil-vms/vigil/internal/testkit/simcam"
)

// TestUpstreamPlayback: a camera records; the upper platform (SIPp) plays
// a range of its recording (s=Playback, paused and resumed by INFO) and
// downloads it (s=Download) from Vigil's store; the PS it receives is
// H.264 1280x720 for ffprobe, and both are in the audit log under the
// upper platform's ID.
func TestUpstreamPlayback(t *testing.T) {
	testkit.SkipShort(t, "records a camera and plays it to SIPp")
	sipp := testkit.Tool(t, "sipp", "VIGIL_REQUIRE_SIPP")
	sim := simcam.Start(t, camsim.Options{})
	upperPort := freeUDPPort(t)
	cfg := sqliteConfig(t, t.TempDir(), gbSQLite)
	cfg.GB28181.Enabled = true
	cfg.GB28181.Listen = "127.0.0.1:0"
	cfg.GB28181.Upstream = []config.Upstream{{ID: testUpperID, Realm: "4401000000", Address: "127.0.0.1:" + strconv.Itoa(upperPort),
		Password: "up-pw", Keepalive: config.Duration(20 * time.Second), Departments: []string{"police"}}}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	a, err := app.New(ctx, cfg, app.Options{AdminPassword: adminPassword,
		Log: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	done := runApp(ctx, a)
	t.Cleanup(func() { cancel(); <-done })
	<-a.Ready()
	c := login(t, a.URL(), "admin", adminPassword)
	if code, body := c.do("POST", "/api/v1/cameras", map[string]any{"id": "police-1", "name": "Gate", "department": "police",
		"mainUrl": sim.URL(1, false), "transport": "tcp", "record": true, "enabled": true}); code != http.StatusCreated {
		t.Fatalf("add camera: %d %s", code, body)
	}
	// 8 s recorded and indexed
	began := time.Now().Add(-time.Minute)
	var span struct{ Start, End time.Time }
	testkit.WaitFor(t, 60*time.Second, "8 s recorded", func() bool {
		var rec struct {
			Spans []struct{ Start, End time.Time }
		}
		_, body := c.do("GET", "/api/v1/cameras/police-1/recordings?start="+url.QueryEscape(began.UTC().Format(time.RFC3339))+
			"&end="+url.QueryEscape(time.Now().UTC().Format(time.RFC3339)), nil)
		if json.Unmarshal(body, &rec) != nil || len(rec.Spans) == 0 {
			return false
		}
		span = rec.Spans[0]
		return span.End.Sub(span.Start) >= 8*time.Second
	})
	from := span.Start.Add(2 * time.Second).Truncate(time.Second).Add(time.Second)
	tRange := fmt.Sprintf("%d %d", from.Unix(), from.Add(4*time.Second).Unix())

	sinks := [2]struct {
		pc net.PacketConn
		mu sync.Mutex
		ps bytes.Buffer
	}{}
	for i := range sinks {
		s := &sinks[i]
		if s.pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		defer s.pc.Close()
		go func() {
			buf := make([]byte, 2048)
			for {
				n, _, err := s.pc.ReadFrom(buf)
				if err != nil {
					return
				}
				var p rtp.Packet
				if p.Unmarshal(buf[:n]) == nil {
					s.mu.Lock()
					s.ps.Write(p.Payload)
					s.mu.Unlock()
				}
			}
		}()
	}
	dir := t.TempDir()
	sf, _ := filepath.Abs("../gb28181/upstream/testdata/playback.xml")
	fin := filepath.Join(dir, "done")
	cmd := exec.Command(sipp, "-sf", sf, "-t", "u1", "-i", "127.0.0.1", "-p", strconv.Itoa(upperPort), "-nostdin", "-trace_err",
		"-key", "done", fin, "-key", "paused", filepath.Join(dir, "paused"), "-key", "resumed", filepath.Join(dir, "resumed"),
		"-key", "upper", testUpperID, "-key", "realm", "4401000000", "-key", "lower", cfg.GB28181.ID,
		"-key", "channel", "44011300001310000001", "-key", "hidden", "44011300001310009999",
		"-key", "range", tRange, "-key", "emptyrange", fmt.Sprintf("%d %d", began.Add(-time.Hour).Unix(), began.Add(-time.Hour+4*time.Second).Unix()),
		"-key", "rtpport", strconv.Itoa(sinks[0].pc.LocalAddr().(*net.UDPAddr).Port),
		"-key", "dlport", strconv.Itoa(sinks[1].pc.LocalAddr().(*net.UDPAddr).Port),
		"-key", "proto", "RTP/AVP", "-key", "setup", "a=recvonly", "-key", "ssrc", "1113000001", "-key", "dlssrc", "1113000002")
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	waitScenario(t, dir, fin)
	for i := range sinks {
		sinks[i].mu.Lock()
		probePS(t, bytes.Clone(sinks[i].ps.Bytes()))
		sinks[i].mu.Unlock()
	}

	var list struct {
		Entries []struct{ User, Action, Camera, Result string }
	}
	_, body := c.do("GET", "/api/v1/audit?user="+testUpperID, nil)
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatalf("audit: %v %s", err, body)
	}
	got := map[string]int{}
	for _, e := range list.Entries {
		got[e.Action+" "+e.Camera+" "+e.Result]++
	}
	want := map[string]int{"playback police-1 ok": 1, "export police-1 ok": 1, "playback  denied": 1, "playback police-1 failed": 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("audit of the upper platform: %v, want %v", got, want)
	}
}
