package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/vigil-vms/vigil/app"
	"github.com/vigil-vms/vigil/app/config"
	"github.com/vigil-vms/vigil/camsim"
	"github.com/vigil-vms/vigil/gb28181/gbsim"
	"github.com/vigil-vms/vigil/gb28181/manscdp"
	"github.com/vigil-vms/vigil/internal/testkit"
	"github.com/vigil-vms/vigil/internal/testkit/simcam"
)

// TestUpstreamPlaysGBDevice: a GB/T 28181 device registers to Vigil, and
// Vigil registers upward to an upper platform (SIPp): the upper platform
// finds the device's channel in Vigil's catalog under its own ID, plays it
// (PS over RTP that ffprobe reads) and moves it (the PTZ command reaches
// the device), the state is in the API and the health report, and the view
// and the PTZ are in the audit log under the upper platform's ID.
func TestUpstreamPlaysGBDevice(t *testing.T) {
	testkit.Tool(t, "sipp", "VIGIL_REQUIRE_SIPP")
	testkit.Tool(t, "ffprobe", "VIGIL_REQUIRE_FFMPEG")
	const (
		upper   = testUpperID
		device  = "44011300001320000001"
		channel = "44011300001310000101"
	)
	upperPort := freeUDPPort(t)
	cfg := sqliteConfig(t, t.TempDir(), gbSQLite)
	cfg.GB28181.Enabled = true
	cfg.GB28181.Listen = "127.0.0.1:0"
	cfg.GB28181.Password = "dev-pw"
	cfg.GB28181.Upstream = []config.Upstream{{ID: upper, Realm: "4401000000", Address: "127.0.0.1:" + strconv.Itoa(upperPort),
		Password: "up-pw", Keepalive: config.Duration(20 * time.Second), Departments: []string{"police"}}}
	a, _ := startApp(t, cfg)
	ctx := t.Context()
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

	ptz, _ := manscdp.NewPTZCmd(0.5, 0, 0)
	view := playAtUpper(t, upperPort, cfg.GB28181.ID, "up-pw", channel, ptz.String())

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

	probePS(t, view)

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

// playAtUpper runs SIPp as the upper platform on upperPort (the scenario of
// gb28181/upstream/testdata/upper.xml: lower registers with password, the
// catalog is asked, channel is played for 6 s over UDP and sent ptz, an
// unknown channel is refused) and returns the PS bytes received.
func playAtUpper(t *testing.T, upperPort int, lower, password, channel, ptz string) []byte {
	t.Helper()
	return playAtUpperAs(t, testUpperID, upperPort, lower, password, channel, ptz)
}

// playAtUpperAs is playAtUpper with the upper platform's ID upper.
func playAtUpperAs(t *testing.T, upper string, upperPort int, lower, password, channel, ptz string) []byte {
	t.Helper()
	sipp := testkit.Tool(t, "sipp", "VIGIL_REQUIRE_SIPP")
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
	dir := t.TempDir()
	sf, _ := filepath.Abs("../gb28181/upstream/testdata/upper.xml")
	done := filepath.Join(dir, "done")
	cmd := exec.Command(sipp, "-sf", sf, "-t", "u1", "-i", "127.0.0.1", "-p", strconv.Itoa(upperPort), "-nostdin", "-d", "6000",
		"-trace_err", "-key", "done", done, "-key", "upper", upper, "-key", "realm", "4401000000", "-key", "lower", lower,
		"-key", "password", password, "-key", "channel", channel, "-key", "hidden", "44011300001310009999",
		"-key", "rtpport", strconv.Itoa(media.LocalAddr().(*net.UDPAddr).Port), "-key", "proto", "RTP/AVP",
		"-key", "setup", "a=recvonly", "-key", "ssrc", "0113000001", "-key", "ptzcmd", ptz)
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	waitScenario(t, dir, done)
	mu.Lock()
	defer mu.Unlock()
	return bytes.Clone(ps.Bytes())
}

// probePS checks with ffprobe that ps is MPEG-PS with H.264 1280x720.
func probePS(t *testing.T, ps []byte) {
	t.Helper()
	ffprobe := testkit.Tool(t, "ffprobe", "VIGIL_REQUIRE_FFMPEG")
	file := filepath.Join(t.TempDir(), "view.ps")
	if err := os.WriteFile(file, ps, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(ffprobe, "-v", "error", "-f", "mpeg", "-show_entries", "stream=codec_name,width,height", "-select_streams", "v", "-of", "csv=p=0", file).Output()
	if err != nil || string(bytes.TrimSpace(out)) != "h264,1280,720" {
		t.Fatalf("ffprobe of what the upper platform received (%d bytes): %v %q", len(ps), err, out)
	}
	t.Logf("the upper platform received %d bytes of PS: %s", len(ps), bytes.TrimSpace(out))
}

// freeUDPPort is a UDP port free on 127.0.0.1 (for SIPp to take).
func freeUDPPort(t *testing.T) int {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port
}

const testUpperID = "44010000002000000001"

// TestThreeLevels: a camsim camera and a GB/T 28181 device (gbsim) on a
// town Vigil, the town registered upward to a district Vigil (where an
// admin added the town as a device), the district registered upward to a
// city platform (SIPp): the city plays the town's camera under the town's
// channel ID, and the device's channel under its own ID, through the
// district. (The second view is played by a second city platform entry,
// as SIPp's upper-platform scenario plays one channel per registration.)
func TestThreeLevels(t *testing.T) {
	testkit.Tool(t, "sipp", "VIGIL_REQUIRE_SIPP")
	testkit.Tool(t, "ffprobe", "VIGIL_REQUIRE_FFMPEG")
	const (
		districtID = "44011300002000000001"
		townID     = "44011300102000000001"
		city2ID    = "44010000002000000002"
		gbDevice   = "44011300101320000001"
		gbChannel  = "44011300101310000101"
	)
	cityPort, city2Port := freeUDPPort(t), freeUDPPort(t)

	// the district: devices (the town) register to it; it registers to the city
	dcfg := sqliteConfig(t, t.TempDir(), gbSQLite)
	dcfg.GB28181.Enabled = true
	dcfg.GB28181.Listen = "127.0.0.1:0"
	dcfg.GB28181.ID, dcfg.GB28181.Realm = districtID, "4401130000"
	dcfg.GB28181.Upstream = []config.Upstream{{ID: testUpperID, Realm: "4401000000", Address: "127.0.0.1:" + strconv.Itoa(cityPort),
		Password: "city-pw", Keepalive: config.Duration(20 * time.Second), Departments: []string{"police"}},
		{ID: city2ID, Realm: "4401000000", Address: "127.0.0.1:" + strconv.Itoa(city2Port),
			Password: "city-pw", Keepalive: config.Duration(20 * time.Second), Departments: []string{"police"}}}
	district, _ := startApp(t, dcfg)
	dc := login(t, district.URL(), "admin", adminPassword)
	if code, body := dc.do("POST", "/api/v1/gb28181/devices", map[string]string{"id": townID, "name": "Town", "department": "police", "password": "town-pw"}); code != http.StatusCreated {
		t.Fatalf("district: add the town: %d %s", code, body)
	}
	dUDP, _ := district.GB28181Addr()

	// the town: an RTSP camera, registered upward to the district
	sim := simcam.Start(t, camsim.Options{})
	tcfg := sqliteConfig(t, t.TempDir(), gbSQLite)
	tcfg.GB28181.Enabled = true
	tcfg.GB28181.Listen = "127.0.0.1:0"
	tcfg.GB28181.ID, tcfg.GB28181.Realm = townID, "4401130010"
	tcfg.GB28181.Password = "dev-pw"
	tcfg.GB28181.Upstream = []config.Upstream{{ID: districtID, Realm: "4401130000", Address: dUDP,
		Password: "town-pw", Keepalive: config.Duration(20 * time.Second), Departments: []string{"police"}}}
	town, _ := startApp(t, tcfg)
	tc := login(t, town.URL(), "admin", adminPassword)
	if code, body := tc.do("POST", "/api/v1/cameras", map[string]any{"id": "harbour", "name": "Harbour", "department": "police",
		"mainUrl": sim.URL(1, false), "transport": "tcp", "enabled": true}); code != http.StatusCreated {
		t.Fatalf("town: add camera: %d %s", code, body)
	}
	// (the town's camera is in its catalog from the next catalog query)

	// the town: a GB/T 28181 device registered to it
	if code, body := tc.do("POST", "/api/v1/gb28181/devices", map[string]string{"id": gbDevice, "name": "Town NVR", "department": "police"}); code != http.StatusCreated {
		t.Fatalf("town: add device: %d %s", code, body)
	}
	tUDP, _ := town.GB28181Addr()
	dev, err := gbsim.Start(t.Context(), gbsim.Config{ID: gbDevice, Password: "dev-pw", Server: tUDP, ServerID: townID,
		Channels: []gbsim.Channel{{ID: gbChannel, Name: "Ferry pier", PTZ: true}}, Log: testkit.Log(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dev.Close)
	testkit.WaitFor(t, 20*time.Second, "the device's channel at the town", func() bool {
		code, _ := tc.do("GET", "/api/v1/cameras/gb-"+gbChannel, nil)
		return code == http.StatusOK
	})

	// the district sees the town's camera as a GB/T 28181 camera
	var chanID string
	gbAtDistrict := false
	testkit.WaitFor(t, 60*time.Second, "the town's camera and device channel at the district", func() bool {
		code, body := dc.do("GET", "/api/v1/cameras", nil)
		if code != http.StatusOK {
			return false
		}
		var cams []struct {
			ID      string
			GB28181 *struct{ Device, Channel string }
		}
		if json.Unmarshal(body, &cams) != nil {
			var wrapped struct {
				Cameras []struct {
					ID      string
					GB28181 *struct{ Device, Channel string }
				}
			}
			json.Unmarshal(body, &wrapped)
			cams = wrapped.Cameras
		}
		for _, c := range cams {
			if c.GB28181 != nil && c.GB28181.Device == townID {
				if c.GB28181.Channel == gbChannel {
					gbAtDistrict = true
				} else {
					chanID = c.GB28181.Channel
				}
			}
		}
		return chanID != "" && gbAtDistrict
	})
	if chanID[:10] != "4401130010" || chanID[10:13] != "131" {
		t.Fatalf("the town's channel ID %s is not <town realm>131<serial>", chanID)
	}
	ptz, _ := manscdp.NewPTZCmd(0.5, 0, 0)
	view := playAtUpper(t, cityPort, districtID, "city-pw", chanID, ptz.String())
	probePS(t, view)
	// the town's GB/T 28181 device plays at the top too
	view = playAtUpperAs(t, city2ID, city2Port, districtID, "city-pw", gbChannel, ptz.String())
	probePS(t, view)

	// each level audited the view under the level above's ID
	for _, lv := range []struct {
		c           *client
		user, camID string
	}{{dc, testUpperID, "gb-" + chanID}, {tc, districtID, "harbour"}, {dc, city2ID, "gb-" + gbChannel}, {tc, districtID, "gb-" + gbChannel}} {
		var audit struct {
			Entries []struct{ User, Action, Camera, Result string }
		}
		_, body := lv.c.do("GET", "/api/v1/audit?action=live&user="+lv.user, nil)
		json.Unmarshal(body, &audit)
		ok := false
		for _, r := range audit.Entries {
			ok = ok || r.Camera == lv.camID && r.Result == "ok"
		}
		if !ok {
			t.Errorf("no live audit row by %s for %s: %s", lv.user, lv.camID, body)
		}
	}
}

// TestUpstreamOutage: the upper platform goes away and comes back; Vigil
// says so (state, health check, upstream.failing and upstream.recovered
// webhooks), registers again by itself, and its recording is untouched:
// one span across the outage.
func TestUpstreamOutage(t *testing.T) {
	sipp := testkit.Tool(t, "sipp", "VIGIL_REQUIRE_SIPP")
	hooks := newHookReceiver(t, "s3cret")
	sim := simcam.Start(t, camsim.Options{})
	upperPort := freeUDPPort(t)
	cfg := sqliteConfig(t, t.TempDir(), gbSQLite)
	cfg.Alerts.Webhooks = []config.Webhook{{URL: hooks.URL, Secret: "s3cret"}}
	cfg.GB28181.Enabled = true
	cfg.GB28181.Listen = "127.0.0.1:0"
	cfg.GB28181.Upstream = []config.Upstream{{ID: testUpperID, Realm: "4401000000", Address: "127.0.0.1:" + strconv.Itoa(upperPort),
		Password: "up-pw", Keepalive: config.Duration(time.Second), Departments: []string{"police"}}}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	// its log at info, shown when the test fails
	a, err := app.New(ctx, cfg, app.Options{AdminPassword: adminPassword,
		Log: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	done := runApp(ctx, a)
	t.Cleanup(func() { cancel(); <-done }) // the recorder's last writes, before the directory goes
	<-a.Ready()
	c := login(t, a.URL(), "admin", adminPassword)
	if code, body := c.do("POST", "/api/v1/cameras", map[string]any{"id": "police-1", "name": "Gate", "department": "police",
		"mainUrl": sim.URL(1, false), "transport": "tcp", "record": true, "enabled": true}); code != http.StatusCreated {
		t.Fatalf("add camera: %d %s", code, body)
	}
	upperUp := func() *exec.Cmd {
		dir := t.TempDir()
		sf, _ := filepath.Abs("../gb28181/upstream/testdata/upper.xml")
		cmd := exec.Command(sipp, "-sf", sf, "-t", "u1", "-i", "127.0.0.1", "-p", strconv.Itoa(upperPort), "-nostdin",
			"-key", "done", filepath.Join(dir, "done"), "-key", "upper", testUpperID, "-key", "realm", "4401000000",
			"-key", "lower", cfg.GB28181.ID, "-key", "password", "up-pw", "-key", "channel", "44011300001310000001",
			"-key", "hidden", "44011300001310009999", "-key", "rtpport", "9", "-key", "proto", "RTP/AVP",
			"-key", "setup", "a=recvonly", "-key", "ssrc", "0113000001", "-key", "ptzcmd", "x")
		cmd.Dir = dir
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd
	}
	state := func() string {
		var ups []struct{ State string }
		_, body := c.do("GET", "/api/v1/gb28181/upstream", nil)
		if json.Unmarshal(body, &ups) != nil || len(ups) != 1 {
			return ""
		}
		return ups[0].State
	}
	health := func() string {
		var rep struct {
			Checks []struct{ Name, Status string }
		}
		_, body := c.do("GET", "/api/v1/health", nil)
		json.Unmarshal(body, &rep)
		for _, ch := range rep.Checks {
			if ch.Name == "upstream/"+testUpperID {
				return ch.Status
			}
		}
		return ""
	}
	recording := func() bool {
		var st struct {
			State     string
			Recording bool
		}
		_, body := c.do("GET", "/api/v1/cameras/police-1/status", nil)
		return json.Unmarshal(body, &st) == nil && st.State == "online" && st.Recording
	}

	cmd := upperUp()
	testkit.WaitFor(t, 30*time.Second, "registered", func() bool { return state() == "registered" })
	testkit.WaitFor(t, 30*time.Second, "recording", recording)
	time.Sleep(5 * time.Second) // a segment before the outage
	before := time.Now()
	cmd.Process.Kill()
	cmd.Wait()
	ev := waitEvent(t, hooks, "upstream.failing", "", 30*time.Second)
	for ev.Time.Before(before) { // a failure at the start, before SIPp listened
		ev = waitEvent(t, hooks, "upstream.failing", "", 30*time.Second)
	}
	t.Logf("upstream.failing %v after the upper platform went away: %s", time.Since(before).Round(time.Millisecond), ev.Message)
	if state() != "failing" || health() != "failing" {
		t.Fatalf("while away: state %q, health %q", state(), health())
	}
	time.Sleep(5 * time.Second) // away for a while, re-registering with backoff
	if !recording() {
		t.Fatal("the camera stopped recording while the upper platform was away")
	}
	back := time.Now()
	upperUp()
	ev = waitEvent(t, hooks, "upstream.recovered", "", 60*time.Second)
	for ev.Time.Before(back) {
		ev = waitEvent(t, hooks, "upstream.recovered", "", 60*time.Second)
	}
	t.Logf("upstream.recovered %v after the upper platform came back", time.Since(back).Round(time.Millisecond))
	if state() != "registered" || health() != "ok" {
		t.Fatalf("back: state %q, health %q", state(), health())
	}
	// the recording has no gap across the outage (segments of 4 s: wait
	// for the one open at its end to be indexed)
	end := back
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		var rec struct {
			Spans []struct{ Start, End time.Time }
		}
		_, body := c.do("GET", "/api/v1/cameras/police-1/recordings?start="+before.UTC().Format(time.RFC3339)+
			"&end="+end.UTC().Format(time.RFC3339), nil)
		if json.Unmarshal(body, &rec) == nil && len(rec.Spans) == 1 && !rec.Spans[0].Start.After(before) && !rec.Spans[0].End.Before(end) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("recordings across the outage %s–%s: %s", before.Format(time.TimeOnly), end.Format(time.TimeOnly), body)
		}
	}
}

// testWriter writes log lines to the test's log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// waitScenario waits up to 90 s for a SIPp scenario run in dir to create
// done (its last step), logging SIPp's error logs if it does not.
func waitScenario(t *testing.T, dir, done string) {
	t.Helper()
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, err := os.Stat(done); err == nil {
			return
		}
		if time.Now().After(deadline) {
			logs, _ := filepath.Glob(filepath.Join(dir, "*_errors.log"))
			for _, l := range logs {
				b, _ := os.ReadFile(l)
				t.Logf("%s", b)
			}
			t.Fatal("the upper platform's scenario did not end")
		}
	}
}
