package app_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/vigil-vms/vigil/app/config"
	"github.com/vigil-vms/vigil/gb28181/gbsim"
	"github.com/vigil-vms/vigil/gb28181/manscdp"
	"github.com/vigil-vms/vigil/internal/testkit"
)

// TestUpstreamPlaysGBDevice: a GB/T 28181 device registers to Vigil, and
// Vigil registers upward to an upper platform (SIPp): the upper platform
// finds the device's channel in Vigil's catalog under its own ID, plays it
// (PS over RTP that ffprobe reads) and moves it (the PTZ command reaches
// the device), the state is in the API and the health report, and the view
// and the PTZ are in the audit log under the upper platform's ID.
func TestUpstreamPlaysGBDevice(t *testing.T) {
	sipp := testkit.Tool(t, "sipp", "VIGIL_REQUIRE_SIPP")
	ffprobe := testkit.Tool(t, "ffprobe", "VIGIL_REQUIRE_FFMPEG")
	const (
		upper   = "44010000002000000001"
		device  = "44011300001320000001"
		channel = "44011300001310000101"
	)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	upperPort := pc.LocalAddr().(*net.UDPAddr).Port
	pc.Close()
	cfg := testConfig(t.TempDir())
	cfg.GB28181.Enabled = true
	cfg.GB28181.Listen = "127.0.0.1:0"
	cfg.GB28181.Password = "dev-pw"
	cfg.GB28181.Upstream = []config.Upstream{{ID: upper, Realm: "4401000000", Address: "127.0.0.1:" + strconv.Itoa(upperPort),
		Password: "up-pw", Keepalive: config.Duration(20 * time.Second), Departments: []string{"police"}}}
	a, ctx, _ := newApp(t, cfg)
	runApp(ctx, a)
	<-a.Ready()
	c := login(t, a.URL(), "admin", adminPassword)
	if code, body := c.do("POST", "/api/v1/gb28181/devices", map[string]string{"id": device, "name": "River NVR", "department": "police"}); code != http.StatusCreated {
		t.Fatalf("add device: %d %s", code, body)
	}
	udp, _ := a.GB28181Addr()
	d, err := gbsim.Start(ctx, gbsim.Config{ID: device, Password: "dev-pw", Server: udp, ServerID: cfg.GB28181.ID,
		Channels: []gbsim.Channel{{ID: channel, Name: "Sluice gate", PTZ: true}}, Log: testkit.Log(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	testkit.WaitFor(t, 20*time.Second, "the channel's camera", func() bool {
		code, _ := c.do("GET", "/api/v1/cameras/gb-"+channel, nil)
		return code == http.StatusOK
	})

	// the upper platform's media port
	media, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer media.Close()
	var mu sync.Mutex
	var ps bytes.Buffer
	go func() {
		buf := make([]byte, 2048)
		for {
			n, _, err := media.ReadFrom(buf)
			if err != nil {
				return
			}
			var p rtp.Packet
			if p.Unmarshal(buf[:n]) == nil {
				mu.Lock()
				ps.Write(p.Payload)
				mu.Unlock()
			}
		}
	}()
	ptz, _ := manscdp.NewPTZCmd(0.5, 0, 0)
	dir := t.TempDir()
	sf, _ := filepath.Abs("../gb28181/upstream/testdata/upper.xml")
	done := filepath.Join(dir, "done")
	cmd := exec.Command(sipp, "-sf", sf, "-t", "u1", "-i", "127.0.0.1", "-p", strconv.Itoa(upperPort), "-nostdin", "-d", "6000",
		"-trace_err", "-key", "done", done, "-key", "upper", upper, "-key", "realm", "4401000000", "-key", "lower", cfg.GB28181.ID,
		"-key", "password", "up-pw", "-key", "channel", channel, "-key", "hidden", "44011300001310009999",
		"-key", "rtpport", strconv.Itoa(media.LocalAddr().(*net.UDPAddr).Port), "-key", "proto", "RTP/AVP",
		"-key", "setup", "a=recvonly", "-key", "ssrc", "0113000001", "-key", "ptzcmd", ptz.String())
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(done); err == nil {
			break
		}
		if time.Now().After(deadline) {
			logs, _ := filepath.Glob(filepath.Join(dir, "*_errors.log"))
			for _, l := range logs {
				b, _ := os.ReadFile(l)
				t.Logf("%s", b)
			}
			_, body := c.do("GET", "/api/v1/gb28181/upstream", nil)
			t.Fatalf("the upper platform's scenario did not end; upstream: %s", body)
		}
		time.Sleep(100 * time.Millisecond)
	}

	var ups []struct {
		ID, State string
		Viewers   int
	}
	if code, body := c.do("GET", "/api/v1/gb28181/upstream", nil); code != http.StatusOK || json.Unmarshal(body, &ups) != nil ||
		len(ups) != 1 || ups[0].ID != upper || ups[0].State != "registered" || ups[0].Viewers != 0 {
		t.Fatalf("upstream: %d %s", code, body)
	}
	var rep struct {
		Checks []struct{ Name, Status string }
	}
	_, body := c.do("GET", "/api/v1/health", nil)
	if err := json.Unmarshal(body, &rep); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ch := range rep.Checks {
		if ch.Name == "upstream/"+upper {
			found = ch.Status == "ok"
		}
	}
	if !found {
		t.Errorf("health: no ok upstream/%s check: %s", upper, body)
	}

	mu.Lock()
	file := filepath.Join(dir, "view.ps")
	err = os.WriteFile(file, ps.Bytes(), 0o600)
	mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(ffprobe, "-v", "error", "-f", "mpeg", "-show_entries", "stream=codec_name,width,height", "-select_streams", "v", "-of", "csv=p=0", file).Output()
	if err != nil || !bytes.HasPrefix(out, []byte("h264,")) {
		t.Fatalf("ffprobe of what the upper platform received: %v %q", err, out)
	}
	t.Logf("the upper platform received %s of PS: %s", strconv.Itoa(ps.Len()), bytes.TrimSpace(out))

	// the upper platform's PTZ command reached the device
	select {
	case r := <-d.PTZ():
		if r.Channel != channel || r.Raw != ptz.String() {
			t.Fatalf("the device received PTZ %+v, the upper platform sent %s", r, ptz)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the upper platform's PTZ did not reach the device")
	}
	var audit struct {
		Entries []struct{ User, Action, Camera, Result string }
	}
	_, body = c.do("GET", "/api/v1/audit?user="+upper, nil)
	if err := json.Unmarshal(body, &audit); err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, r := range audit.Entries {
		count[r.Action+" "+r.Camera+" "+r.Result]++
	}
	// the view and the PTZ, and the hidden channel's refusals
	want := map[string]int{"live gb-" + channel + " ok": 1, "ptz gb-" + channel + " ok": 1, "live  denied": 1, "ptz  denied": 1}
	if fmt.Sprint(count) != fmt.Sprint(want) {
		t.Fatalf("audit rows of the upper platform: %v, want %v", count, want)
	}
}
