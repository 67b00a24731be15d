package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/app"
	"github.com/vigil-vms/vigil/app/config"
	"github.com/vigil-vms/vigil/gb28181/gbsim"
	"github.com/vigil-vms/vigil/gb28181/manscdp"
	"github.com/vigil-vms/vigil/internal/testkit"
)

// logBuffer collects a server's JSON log lines for a test to search.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// records returns the log records whose msg is msg.
func (b *logBuffer) records(msg string) []map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(b.buf.String(), "\n") {
		var r map[string]any
		if json.Unmarshal([]byte(line), &r) == nil && r["msg"] == msg {
			out = append(out, r)
		}
	}
	return out
}

// gbApp runs a server with GB/T 28181 on 127.0.0.1 and logs in as admin.
func gbApp(t *testing.T) (*app.App, *client, *logBuffer, config.Config) {
	t.Helper()
	cfg := sqliteConfig(t, t.TempDir(), gbSQLite)
	cfg.GB28181.Enabled = true
	cfg.GB28181.Listen = "127.0.0.1:0"
	cfg.GB28181.MediaPort = 0
	cfg.GB28181.Password = "default-pw"
	logs := &logBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, cfg, app.Options{AdminPassword: adminPassword,
		Log: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := runApp(ctx, a)
	t.Cleanup(func() {
		if t.Failed() {
			logs.mu.Lock()
			t.Logf("server log:\n%s", logs.buf.String())
			logs.mu.Unlock()
		}
		cancel()
		testkit.Returned(t, done, 20*time.Second, "app.Run")
		a.Close()
	})
	<-a.Ready()
	return a, login(t, a.URL(), "admin", adminPassword), logs, cfg
}

// startDevice adds a device through the API and starts a simulated one
// with two channels that registers to the server. Each device has its own
// loopback address, 127.0.0.<last two digits of its id> (the media server
// tells a device's wrong SSRC by the address its packets come from).
func startDevice(t *testing.T, a *app.App, c *client, cfg config.Config, id, dept string, faults gbsim.Faults) []string {
	t.Helper()
	chans, _ := startSimDevice(t, a, c, cfg, id, dept, faults)
	return chans
}

// startSimDevice is startDevice that also returns the simulated device.
func startSimDevice(t *testing.T, a *app.App, c *client, cfg config.Config, id, dept string, faults gbsim.Faults) ([]string, *gbsim.Device) {
	t.Helper()
	code, body := c.do("POST", "/api/v1/gb28181/devices", map[string]string{"id": id, "name": "NVR " + id[16:], "department": dept})
	if code != http.StatusCreated {
		t.Fatalf("add device %s: %d %s", id, code, body)
	}
	chans := []string{id[:10] + "131" + id[13:], id[:10] + "132" + id[13:]}
	udp, _ := a.GB28181Addr()
	d, err := gbsim.Start(context.Background(), gbsim.Config{
		ID: id, Password: "default-pw", Server: udp, ServerID: cfg.GB28181.ID, LocalIP: "127.0.0." + strings.TrimLeft(id[18:], "0"),
		Channels:  []gbsim.Channel{{ID: chans[0], Name: "River gate", PTZ: true}, {ID: chans[1], Name: "Bridge"}},
		Keepalive: 5 * time.Second, Faults: faults, CatalogSubscribe: true,
		Log: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	select {
	case <-d.Registered():
	case <-time.After(20 * time.Second):
		t.Fatalf("device %s did not register", id)
	}
	return chans, d
}

type camStatus struct {
	State, LastError string
	Recording        bool
}

func statusOf(t *testing.T, c *client, cam string) camStatus {
	t.Helper()
	var st camStatus
	code, body := c.do("GET", "/api/v1/cameras/"+cam+"/status", nil)
	if code != http.StatusOK || json.Unmarshal(body, &st) != nil {
		return camStatus{State: fmt.Sprintf("status %d: %s", code, body)}
	}
	return st
}

// waitStatus waits until ok holds for the camera's status.
func waitStatus(t *testing.T, c *client, cam string, timeout time.Duration, what string, ok func(camStatus) bool) camStatus {
	t.Helper()
	var st camStatus
	deadline := time.Now().Add(timeout)
	for {
		if st = statusOf(t, c, cam); ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("camera %s: not %s after %v: %+v", cam, what, timeout, st)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func deviceTransport(t *testing.T, c *client, id string) string {
	t.Helper()
	var d struct{ Transport string }
	code, body := c.do("GET", "/api/v1/gb28181/devices/"+id, nil)
	if code != http.StatusOK || json.Unmarshal(body, &d) != nil {
		t.Fatalf("device %s: %d %s", id, code, body)
	}
	return d.Transport
}

// TestGB28181ChannelsRecord: a simulated device registers; its two
// channels appear as cameras gb-<channel> in its department (PTZ from the
// catalog), are invited because they record, and what they recorded plays
// back and exports as 1280x720 H.264 of the right duration.
func TestGB28181ChannelsRecord(t *testing.T) {
	testkit.SkipShort(t, "runs a server and a simulated device in real time")
	testkit.CheckLeaks(t)
	ffprobe := testkit.Tool(t, "ffprobe", "VIGIL_REQUIRE_FFMPEG")
	a, c, _, cfg := gbApp(t)
	const dev = "44011300001180000001"
	chans, sim := startSimDevice(t, a, c, cfg, dev, "flood-control", gbsim.Faults{})

	type cam struct {
		ID, Name, Department, Source, MainURL string
		Record, Enabled                       bool
		GB28181                               *struct {
			Device, Channel string
			PTZ             bool
		}
	}
	var cams []cam
	testkit.WaitFor(t, 20*time.Second, "the channels as cameras", func() bool {
		code, body := c.do("GET", "/api/v1/cameras", nil)
		cams = nil
		return code == http.StatusOK && json.Unmarshal(body, &cams) == nil && len(cams) == 2
	})
	for i, cm := range cams {
		want := "gb-" + chans[i]
		if cm.ID != want || cm.Source != "gb28181" || cm.Department != "flood-control" || cm.MainURL != "" ||
			!cm.Record || !cm.Enabled || cm.GB28181 == nil || cm.GB28181.Device != dev || cm.GB28181.Channel != chans[i] || cm.GB28181.PTZ != (i == 0) {
			t.Fatalf("camera %d: %+v %+v", i, cm, cm.GB28181)
		}
	}
	id := cams[0].ID
	waitStatus(t, c, id, 20*time.Second, "online and recording", func(s camStatus) bool { return s.State == "online" && s.Recording })
	start := time.Now()
	waitStatus(t, c, cams[1].ID, 20*time.Second, "online", func(s camStatus) bool { return s.State == "online" })
	if got := deviceTransport(t, c, dev); got != "udp" {
		t.Errorf("device transport %q, want udp", got)
	}
	time.Sleep(time.Until(start.Add(13 * time.Second)))

	from, to := start.Add(2*time.Second), start.Add(10*time.Second)
	q := url.Values{"start": {from.UTC().Format(time.RFC3339Nano)}, "end": {to.UTC().Format(time.RFC3339Nano)}}
	code, clip := c.do("GET", "/api/v1/cameras/"+id+"/export?"+q.Encode(), nil)
	if code != http.StatusOK {
		t.Fatalf("export: %d %s", code, clip)
	}
	f := filepath.Join(t.TempDir(), "export.mp4")
	if err := os.WriteFile(f, clip, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(ffprobe, "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=codec_name,width,height:format=duration", "-of", "default=nw=1", f).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe: %v: %s", err, out)
	}
	probe := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		k, v, _ := strings.Cut(l, "=")
		probe[k] = v
	}
	dur, _ := strconv.ParseFloat(probe["duration"], 64)
	// from the keyframe at or before the start (2 s GOP) to the end
	if probe["codec_name"] != "h264" || probe["width"] != "1280" || probe["height"] != "720" || dur < 7 || dur > 11 {
		t.Fatalf("export probes as %v", probe)
	}
	q = url.Values{"start": {from.UTC().Format(time.RFC3339Nano)}, "duration": {"6s"}}
	code, pb := c.do("GET", "/api/v1/cameras/"+id+"/playback?"+q.Encode(), nil)
	if code != http.StatusOK {
		t.Fatalf("playback: %d %s", code, pb)
	}
	if err := os.WriteFile(f, pb, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(ffprobe, "-v", "error", "-show_entries", "stream=codec_name,width,height", "-of", "csv=p=0", f).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "h264,1280,720") {
		t.Fatalf("playback probes as %v: %s", err, out)
	}
	t.Logf("export: %d bytes, %.1f s; playback %d bytes", len(clip), dur, len(pb))

	// PTZ reaches the device with the bytes of the standard, and a stop
	// follows by itself; a camera without PTZ is not found.
	if code, body := c.do("POST", "/api/v1/cameras/"+id+"/ptz", map[string]float64{"pan": 0.5, "tilt": 0, "zoom": 0}); code != http.StatusNoContent {
		t.Fatalf("ptz: %d %s", code, body)
	}
	move, _ := manscdp.NewPTZCmd(0.5, 0, 0)
	stop, _ := manscdp.NewPTZCmd(0, 0, 0)
	for i, w := range []manscdp.PTZCmd{move, stop} {
		select {
		case got := <-sim.PTZ():
			if got.Err != nil || got.Channel != chans[0] || got.Cmd != w || !strings.EqualFold(got.Raw, w.String()) {
				t.Fatalf("PTZ %d at the device: %+v, want %s", i, got, w)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("PTZ %d (%s) did not reach the device", i, w)
		}
	}
	if code, body := c.do("POST", "/api/v1/cameras/"+cams[1].ID+"/ptz", map[string]float64{"pan": 0.5}); code != http.StatusNotFound {
		t.Fatalf("ptz of a camera without PTZ: %d %s", code, body)
	}

	// The admin moves the device to another department: its cameras follow.
	if code, body := c.do("PUT", "/api/v1/gb28181/devices/"+dev, map[string]string{"name": "NVR", "department": "police"}); code != http.StatusOK {
		t.Fatalf("move device: %d %s", code, body)
	}
	var moved cam
	if code, body := c.do("GET", "/api/v1/cameras/"+cams[1].ID, nil); code != http.StatusOK || json.Unmarshal(body, &moved) != nil || moved.Department != "police" {
		t.Fatalf("camera of the moved device: %d %s", code, body)
	}
	// The admin deletes the device: its cameras are disabled, recordings stay.
	if code, body := c.do("DELETE", "/api/v1/gb28181/devices/"+dev, nil); code != http.StatusNoContent {
		t.Fatalf("delete device: %d %s", code, body)
	}
	var after cam
	code, body := c.do("GET", "/api/v1/cameras/"+id, nil)
	if code != http.StatusOK || json.Unmarshal(body, &after) != nil || after.Enabled {
		t.Fatalf("camera of the deleted device: %d %s", code, body)
	}
	if code, _ := c.do("GET", "/api/v1/cameras/"+id+"/export?"+url.Values{"start": {from.UTC().Format(time.RFC3339Nano)}, "end": {to.UTC().Format(time.RFC3339Nano)}}.Encode(), nil); code != http.StatusOK {
		t.Fatalf("export after the device was deleted: %d", code)
	}
}

// TestGB28181Transports: media over udp, tcp-passive and tcp-active; a
// device that answers but sends no RTP over UDP is named so within 5 s,
// then tcp-passive works and is remembered; a refused INVITE's code is in
// the camera's lastError.
func TestGB28181Transports(t *testing.T) {
	testkit.SkipShort(t, "runs a server and simulated devices in real time")
	a, c, logs, cfg := gbApp(t)
	const (
		silentUDP = "44011300001180000011"
		active    = "44011300001180000012"
		refused   = "44011300001180000013"
		wrongSSRC = "44011300001180000014"
		noPSM     = "44011300001180000015"
		noAnswer  = "44011300001180000016"
	)
	silent := startDevice(t, a, c, cfg, silentUDP, "police", gbsim.Faults{SilentTransports: []string{gbsim.TransportUDP}})
	act := startDevice(t, a, c, cfg, active, "police", gbsim.Faults{RefuseTransports: []string{gbsim.TransportUDP, gbsim.TransportTCPPassive}})
	ref := startDevice(t, a, c, cfg, refused, "police", gbsim.Faults{RefuseInvite: 486})
	wrong := startDevice(t, a, c, cfg, wrongSSRC, "police", gbsim.Faults{WrongSSRC: true})
	nopsm := startDevice(t, a, c, cfg, noPSM, "police", gbsim.Faults{NoPSM: true})
	silentSIP := startDevice(t, a, c, cfg, noAnswer, "police", gbsim.Faults{NoAnswer: true})

	waitStatus(t, c, "gb-"+silent[0], 40*time.Second, "online", func(s camStatus) bool { return s.State == "online" })
	if got := deviceTransport(t, c, silentUDP); got != "tcp-passive" {
		t.Errorf("silent-UDP device: transport %q, want tcp-passive", got)
	}
	udpAttempt(t, logs, "gb-"+silent[0], "no RTP", "no RTP over udp")

	waitStatus(t, c, "gb-"+act[0], 40*time.Second, "online", func(s camStatus) bool { return s.State == "online" })
	if got := deviceTransport(t, c, active); got != "tcp-active" {
		t.Errorf("tcp-active device: transport %q", got)
	}

	st := waitStatus(t, c, "gb-"+ref[0], 30*time.Second, "failing with the code", func(s camStatus) bool {
		return strings.Contains(s.LastError, "486")
	})
	for _, tr := range []string{"udp", "tcp-passive", "tcp-active"} {
		if !strings.Contains(st.LastError, tr+": ") {
			t.Errorf("lastError does not name the %s attempt: %s", tr, st.LastError)
		}
	}
	t.Logf("refused camera's lastError: %s", st.LastError)

	// A device that never answers the INVITE: each attempt ends within 5 s.
	st = waitStatus(t, c, "gb-"+silentSIP[0], 40*time.Second, "failing", func(s camStatus) bool { return s.LastError != "" })
	if n := strings.Count(st.LastError, "no answer to the INVITE"); n != 3 {
		t.Errorf("no-answer camera's lastError names %d unanswered INVITEs, want 3: %s", n, st.LastError)
	}
	udpAttempt(t, logs, "gb-"+silentSIP[0], "no answer", "no answer to the INVITE (udp)")

	// RTP with another SSRC over UDP is named so; over tcp-active the
	// connection is the stream's and its packets are taken.
	waitStatus(t, c, "gb-"+wrong[0], 40*time.Second, "online", func(s camStatus) bool { return s.State == "online" })
	udpAttempt(t, logs, "gb-"+wrong[0], "wrong SSRC", "but it was given SSRC")
	// PS without a PSM: the codec is inferred, the video flows.
	waitStatus(t, c, "gb-"+nopsm[0], 30*time.Second, "online", func(s camStatus) bool { return s.State == "online" })
	if got := deviceTransport(t, c, noPSM); got != "udp" {
		t.Errorf("no-PSM device: transport %q, want udp", got)
	}
}

// udpAttempt checks the log's record of the camera's failed udp attempt:
// its cause, a sentence with text, within 5 s.
func udpAttempt(t *testing.T, logs *logBuffer, camera, cause, text string) {
	t.Helper()
	for _, r := range logs.records("gb28181 INVITE attempt failed") {
		if r["camera"] != camera || r["transport"] != "udp" {
			continue
		}
		after := time.Duration(r["after"].(float64))
		if r["cause"] != cause || after > 5*time.Second || !strings.Contains(fmt.Sprint(r["error"]), text) {
			t.Errorf("%s: udp attempt: cause %v after %v: %v", camera, r["cause"], after, r["error"])
		}
		t.Logf("%s: udp attempt failed after %v: %s: %v", camera, after.Round(time.Millisecond), r["cause"], r["error"])
		return
	}
	t.Errorf("%s: the failed udp attempt is not in the log", camera)
}

// TestGB28181CatalogChanges: a device's catalog NOTIFYs keep its cameras in
// step (a channel removed is disabled and marked missing, and comes back;
// PTZ follows), and a device that hangs up a recorded channel is invited
// again.
func TestGB28181CatalogChanges(t *testing.T) {
	testkit.SkipShort(t, "runs a server and a simulated device in real time")
	testkit.CheckLeaks(t) // of the server's GB/T 28181 side and the device
	a, c, _, cfg := gbApp(t)
	const dev = "44011300001180000021"
	chans, sim := startSimDevice(t, a, c, cfg, dev, "police", gbsim.Faults{})
	type gbCam struct {
		Enabled bool
		GB28181 struct{ PTZ, Missing bool }
	}
	camOf := func(ch string) gbCam {
		var cm gbCam
		code, body := c.do("GET", "/api/v1/cameras/gb-"+ch, nil)
		if code != http.StatusOK || json.Unmarshal(body, &cm) != nil {
			return gbCam{}
		}
		return cm
	}
	testkit.WaitFor(t, 20*time.Second, "the catalog subscription", func() bool { return sim.Subscribed() && camOf(chans[1]).Enabled })

	ctx := context.Background()
	if err := sim.RemoveChannel(ctx, chans[1]); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "the removed channel's camera disabled", func() bool {
		cm := camOf(chans[1])
		return !cm.Enabled && cm.GB28181.Missing
	})
	if err := sim.SetChannel(ctx, gbsim.Channel{ID: chans[1], Name: "Bridge", PTZ: true}); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "the returned channel's camera enabled, with PTZ", func() bool {
		cm := camOf(chans[1])
		return cm.Enabled && !cm.GB28181.Missing && cm.GB28181.PTZ
	})
	if err := sim.SetChannel(ctx, gbsim.Channel{ID: chans[0], Name: "River gate"}); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "PTZ off after an UPDATE", func() bool { return !camOf(chans[0]).GB28181.PTZ })

	// the device hangs up a recorded channel: it is invited again
	waitStatus(t, c, "gb-"+chans[0], 20*time.Second, "online", func(s camStatus) bool { return s.State == "online" })
	ssrcOf := func() string {
		for _, s := range sim.Sessions() {
			if s.Channel == chans[0] {
				return s.SSRC
			}
		}
		return ""
	}
	first := ssrcOf()
	if first == "" {
		t.Fatal("no session on the recorded channel")
	}
	if err := sim.Hangup(ctx, chans[0]); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 20*time.Second, "a new INVITE after the device's BYE", func() bool {
		s := ssrcOf()
		return s != "" && s != first
	})
	waitStatus(t, c, "gb-"+chans[0], 20*time.Second, "online again", func(s camStatus) bool { return s.State == "online" })
}
