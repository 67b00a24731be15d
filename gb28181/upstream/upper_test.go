package upstream

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/vigil-vms/vigil/camsim"
	"github.com/vigil-vms/vigil/gb28181/manscdp"
	"github.com/vigil-vms/vigil/gb28181/ps"
	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/testkit"
	"github.com/vigil-vms/vigil/internal/testkit/simcam"
	"github.com/vigil-vms/vigil/internal/testkit/testdb"
	"github.com/vigil-vms/vigil/registry"
)

// testPTZ is the upper platform's PTZ command: pan right at half speed.
var testPTZ, _ = manscdp.NewPTZCmd(0.5, 0, 0)

const (
	testUpper    = "44010000002000000001"
	testUpRealm  = "4401000000"
	testLocal    = "44011300002000000001"
	testRealm    = "4401130000"
	testPassword = "up-secret"
	testSSRC     = "0113000042"
)

// upper is SIPp playing an upper platform (testdata/upper.xml).
type upper struct {
	addr string // its SIP address
	dir  string
	done string // made when the scenario's main call ends
	cmd  *exec.Cmd
	out  *testkit.SyncBuffer
}

// freePort returns a port free on 127.0.0.1 for network ("udp" or "tcp").
func freePort(t *testing.T, network string) int {
	t.Helper()
	if network == "udp" {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		return pc.LocalAddr().(*net.UDPAddr).Port
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startUpper starts SIPp as the upper platform on port (0: a free one).
func startUpper(t *testing.T, transport string, port int, keys map[string]string) *upper {
	t.Helper()
	bin := testkit.Tool(t, "sipp", "VIGIL_REQUIRE_SIPP") // Debian package sip-tester
	sf, err := filepath.Abs(filepath.Join("testdata", "upper.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if port == 0 {
		port = freePort(t, transport)
	}
	u := &upper{addr: "127.0.0.1:" + strconv.Itoa(port), dir: t.TempDir(), out: &testkit.SyncBuffer{}}
	u.done = filepath.Join(u.dir, "done")
	mode := "u1"
	if transport == "tcp" {
		mode = "t1"
	}
	args := []string{"-sf", sf, "-t", mode, "-i", "127.0.0.1", "-p", strconv.Itoa(port), "-nostdin",
		"-trace_msg", "-trace_err", "-key", "done", u.done, "-d", cmp.Or(keys["duration"], "3000")}
	for k, v := range keys {
		args = append(args, "-key", k, v)
	}
	u.cmd = exec.Command(bin, args...)
	u.cmd.Dir = u.dir
	u.cmd.Stdout, u.cmd.Stderr = u.out, u.out
	if err := u.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(u.stop)
	return u
}

func (u *upper) stop() {
	if u.cmd.ProcessState == nil {
		u.cmd.Process.Kill()
		u.cmd.Wait()
	}
}

// messages is SIPp's message trace.
func (u *upper) messages(t *testing.T) []byte {
	t.Helper()
	logs, _ := filepath.Glob(filepath.Join(u.dir, "*_messages.log"))
	var all []byte
	for _, l := range logs {
		b, err := os.ReadFile(l)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}

// errors is SIPp's error log, without its overload warnings (a loaded
// machine) and headings.
func (u *upper) errors() string {
	logs, _ := filepath.Glob(filepath.Join(u.dir, "*_errors.log"))
	var out []string
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		for _, line := range strings.Split(string(b), "\n") {
			if strings.TrimSpace(line) == "" || strings.Contains(line, "watchdog") || strings.Contains(line, "The following events occurred") {
				continue
			}
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

var responseBody = regexp.MustCompile(`(?s)<\?xml[^>]*\?>\s*<Response>.*?</Response>`)

// catalogPages decodes the catalog Response MESSAGEs in SIPp's trace.
func catalogPages(t *testing.T, trace []byte) []*manscdp.Response {
	t.Helper()
	return responses(t, trace, manscdp.CmdCatalog)
}

// responses decodes the Response MESSAGEs of a command in SIPp's trace.
func responses(t *testing.T, trace []byte, cmd manscdp.CmdType) []*manscdp.Response {
	t.Helper()
	var out []*manscdp.Response
	for _, b := range responseBody.FindAll(trace, -1) {
		m, err := manscdp.Decode(bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n")))
		if err != nil {
			t.Fatalf("a Response Vigil sent does not decode: %v\n%s", err, b)
		}
		if r, ok := m.(*manscdp.Response); ok && r.CmdType == cmd {
			out = append(out, r)
		}
	}
	return out
}

// env is Vigil's upstream side over two cameras of camsim: one in the
// shared department (police), one in another (fire).
type env struct {
	svc      *Service
	fleet    *ingest.Fleet
	channels *Channels
	cams     []ingest.Camera
	shared   string // channel ID of the police camera
	hidden   string // channel ID of the fire camera
	sipAddr  string // Vigil's upstream SIP address (UDP)

	mu    sync.Mutex
	audit []registry.AuditEntry
	event []Event
	ptz   []string // camera and speeds of each PTZ call
}

func newEnv(t *testing.T, upperAddr, transport string, keepalive time.Duration, tune ...func(*Service)) *env {
	t.Helper()
	sim := simcam.Start(t, camsim.Options{Count: 2})
	fleet := ingest.NewFleet(ingest.FleetOptions{Log: testkit.Log(t), BackoffMin: 100 * time.Millisecond, BackoffMax: 500 * time.Millisecond})
	e := &env{fleet: fleet, cams: []ingest.Camera{
		{ID: "police-1", Name: "Station Rd / 站前路", Department: "police", MainURL: sim.URL(1, false), Transport: "tcp", Enabled: true},
		{ID: "fire-1", Name: "Depot", Department: "fire", MainURL: sim.URL(2, false), Transport: "tcp", Enabled: true},
	}}
	for _, c := range e.cams {
		fleet.Set(c)
	}
	ctx := context.Background()
	db := testdb.OpenDB(t)
	var err error
	if e.channels, err = OpenChannels(ctx, db, testRealm); err != nil {
		t.Fatal(err)
	}
	if e.shared, err = e.channels.Camera(ctx, "police-1"); err != nil {
		t.Fatal(err)
	}
	if e.hidden, err = e.channels.Camera(ctx, "fire-1"); err != nil {
		t.Fatal(err)
	}
	e.svc = &Service{
		ID: testLocal, Realm: testRealm,
		Platforms: []Config{{ID: testUpper, Realm: testUpRealm, Address: upperAddr, Transport: transport,
			Password: testPassword, Keepalive: keepalive, Departments: []string{"police"}}},
		Channels: e.channels,
		Cameras: func(context.Context) ([]ingest.Camera, error) {
			e.mu.Lock()
			defer e.mu.Unlock()
			return append([]ingest.Camera(nil), e.cams...), nil
		},
		Online: func(id string) bool {
			st, ok := fleet.Status(id)
			return ok && st.State == ingest.StateOnline
		},
		Stream: func(id string) *ingest.Stream { return fleet.Stream(id, ingest.Main) },
		Audit: func(_ context.Context, a registry.AuditEntry) error {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.audit = append(e.audit, a)
			return nil
		},
		OnEvent: func(ev Event) {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.event = append(e.event, ev)
		},
		Recordings: func(_ context.Context, cam string, depts []string, start, end time.Time) ([]Recording, error) {
			at := func(h, m int) time.Time { return time.Date(2026, 11, 29, h, m, 0, 0, time.Local) }
			if cam != "police-1" || fmt.Sprint(depts) != "[police]" || !start.Equal(at(8, 0)) || !end.Equal(at(9, 0)) {
				return nil, fmt.Errorf("recordings of %s %v %v–%v", cam, depts, start, end)
			}
			return []Recording{{at(8, 0), at(8, 1), 100}, {at(8, 1), at(8, 2), 100}, {at(8, 30), at(8, 31), 50}}, nil
		},
		PTZ: func(_ context.Context, c ingest.Camera, pan, tilt, zoom float64) error {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.ptz = append(e.ptz, fmt.Sprintf("%s %.1f %.1f %.1f", c.ID, pan, tilt, zoom))
			return nil
		},
		RetryMin: 200 * time.Millisecond, RetryMax: time.Second,
		Log: testkit.Log(t),
	}
	for _, f := range tune {
		f(e.svc)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.sipAddr = pc.LocalAddr().String()
	testkit.Run(t, fleet.Run)
	testkit.Run(t, func(ctx context.Context) error { return e.svc.Serve(ctx, pc, ln) })
	testkit.WaitFor(t, 20*time.Second, "camera online", func() bool { return e.svc.online("police-1") })
	return e
}

func (e *env) status() Status { return e.svc.Statuses()[0] }

func (e *env) audits() []registry.AuditEntry {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]registry.AuditEntry(nil), e.audit...)
}

func (e *env) events() []Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Event(nil), e.event...)
}

// rtpSink receives RTP over UDP or TCP (RFC 4571) and keeps the payloads.
type rtpSink struct {
	port int
	mu   sync.Mutex
	pkts []rtp.Packet
	ps   bytes.Buffer
	// arrived is when each packet came.
	arrived []time.Time
}

func (r *rtpSink) add(b []byte) {
	var p rtp.Packet
	if p.Unmarshal(b) != nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pkts = append(r.pkts, p)
	r.arrived = append(r.arrived, time.Now())
	r.ps.Write(p.Payload)
}

func (r *rtpSink) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pkts)
}

// dialAnswer connects to the media port Vigil answered with (the view's
// Listen) and reads RTP over TCP from it (a tcp-passive view). It runs in
// its own goroutine and reports nothing: the test judges what arrived.
func (r *rtpSink) dialAnswer(svc *Service) {
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		vs := svc.Views()
		if len(vs) == 0 || vs[0].Listen == "" {
			continue
		}
		c, err := net.Dial("tcp", vs[0].Listen)
		if err != nil {
			return
		}
		defer c.Close()
		fr := ps.NewFrameReader(c)
		for {
			b, err := fr.ReadFrame()
			if err != nil {
				return
			}
			r.add(b)
		}
	}
}

func listenRTP(t *testing.T, transport string) *rtpSink {
	t.Helper()
	r := &rtpSink{}
	if transport == "udp" {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pc.Close() })
		r.port = pc.LocalAddr().(*net.UDPAddr).Port
		go func() {
			buf := make([]byte, 2048)
			for {
				n, _, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				r.add(buf[:n])
			}
		}()
		return r
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	r.port = ln.Addr().(*net.TCPAddr).Port
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		fr := ps.NewFrameReader(c)
		for {
			b, err := fr.ReadFrame()
			if err != nil {
				return
			}
			r.add(b)
		}
	}()
	return r
}

type probe struct {
	Streams []struct {
		CodecName string `json:"codec_name"`
		Width     int    `json:"width"`
		Height    int    `json:"height"`
	} `json:"streams"`
}

// ffprobeVideo runs ffprobe on a PS file and returns its video stream.
func ffprobeVideo(t *testing.T, file string) (codec string, w, h int) {
	t.Helper()
	bin := testkit.Tool(t, "ffprobe", "VIGIL_REQUIRE_FFMPEG")
	out, err := exec.Command(bin, "-v", "error", "-f", "mpeg", "-show_streams", "-select_streams", "v", "-of", "json", file).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", file, err)
	}
	var p probe
	if err := json.Unmarshal(out, &p); err != nil || len(p.Streams) == 0 {
		t.Fatalf("ffprobe %s: %v %s", file, err, out)
	}
	return p.Streams[0].CodecName, p.Streams[0].Width, p.Streams[0].Height
}

func TestUpperPlatformSipp(t *testing.T) {
	for _, tc := range []struct{ transport, media, proto, setup string }{
		{"udp", "udp", "RTP/AVP", "a=recvonly"},
		{"udp", "tcp", "TCP/RTP/AVP", "a=setup:passive"}, // the upper listens: Vigil connects (tcp-active)
		{"tcp", "udp", "RTP/AVP", "a=recvonly"},
		{"udp", "tcp-passive", "TCP/RTP/AVP", "a=setup:active"}, // the upper connects to Vigil's port in the answer
	} {
		t.Run(tc.transport+"-"+tc.media, func(t *testing.T) {
			var sink *rtpSink
			if tc.media == "tcp-passive" {
				sink = &rtpSink{port: 9}
			} else {
				sink = listenRTP(t, tc.media)
			}
			port := freePort(t, tc.transport)
			e := newEnv(t, "127.0.0.1:"+strconv.Itoa(port), tc.transport, 20*time.Second)
			u := startUpper(t, tc.transport, port, map[string]string{
				"upper": testUpper, "realm": testUpRealm, "lower": testLocal, "password": testPassword,
				"channel": e.shared, "hidden": e.hidden, "rtpport": strconv.Itoa(sink.port),
				"proto": tc.proto, "setup": tc.setup, "ssrc": testSSRC, "ptzcmd": testPTZ.String(),
			})
			testkit.WaitFor(t, 15*time.Second, "registered", func() bool { return e.status().State == StateRegistered })
			if tc.media == "tcp-passive" {
				go sink.dialAnswer(e.svc)
			}
			var first time.Duration
			testkit.WaitFor(t, 20*time.Second, "RTP from the view", func() bool {
				for _, v := range e.svc.Views() {
					if v.FirstRTP > 0 {
						first = v.FirstRTP
					}
				}
				return sink.count() > 0 && first > 0
			})
			if st := e.status(); st.Viewers != 1 {
				t.Errorf("viewers during the view = %d, want 1", st.Viewers)
			}
			t.Logf("ACK to first RTP packet: %v", first)
			testkit.WaitFor(t, 20*time.Second, "scenario end", func() bool {
				_, err := os.Stat(u.done)
				return err == nil
			})
			u.stop()
			if st := e.status(); st.Viewers != 0 {
				t.Errorf("viewers after BYE = %d", st.Viewers)
			}
			if errs := u.errors(); errs != "" {
				t.Errorf("SIPp errors:\n%s", errs)
			}

			// the catalog: the business group, the police department, its camera only
			pages := catalogPages(t, u.messages(t))
			if len(pages) == 0 {
				t.Fatal("no catalog response reached the upper platform")
			}
			var items []manscdp.Item
			for _, p := range pages {
				if p.SN != 17 || p.SumNum != 3 {
					t.Errorf("page SN %d SumNum %d, want 17 and 3", p.SN, p.SumNum)
				}
				items = append(items, p.DeviceList.Items...)
			}
			if len(items) != 3 {
				t.Fatalf("catalog has %d items, want 3: %+v", len(items), items)
			}
			bg, org, cam := items[0], items[1], items[2]
			if manscdp.TypeCode(bg.DeviceID) != 215 || manscdp.TypeCode(org.DeviceID) != 216 || org.ParentID != bg.DeviceID || org.CivilCode != "440113" {
				t.Errorf("groups: %+v %+v", bg, org)
			}
			if cam.DeviceID != e.shared || cam.ParentID != org.DeviceID || cam.Name != "Station Rd / 站前路" || cam.Status != manscdp.StatusOn {
				t.Errorf("camera item: %+v", cam)
			}
			if cam.DeviceID[10:13] != "131" || cam.DeviceID[:10] != testRealm {
				t.Errorf("channel ID %s is not <realm>131<serial>", cam.DeviceID)
			}

			// the recordings: two stretches (the first of two contiguous segments)
			var recs []string
			for _, p := range responses(t, u.messages(t), manscdp.CmdRecordInfo) {
				if p.SN != 23 || p.SumNum != 2 || p.DeviceID != e.shared {
					t.Errorf("RecordInfo page: SN %d SumNum %d DeviceID %s", p.SN, p.SumNum, p.DeviceID)
				}
				for _, it := range p.RecordList.Items {
					recs = append(recs, it.StartTime.Format("15:04")+"-"+it.EndTime.Format("15:04")+" "+strconv.FormatInt(it.FileSize, 10))
				}
			}
			if fmt.Sprint(recs) != "[08:00-08:02 200 08:30-08:31 50]" {
				t.Errorf("RecordInfo: %v", recs)
			}

			// the video: PS over RTP with the offer's SSRC, H.264 1280x720
			sink.mu.Lock()
			ssrc := sink.pkts[0].SSRC
			file := filepath.Join(t.TempDir(), "view.ps")
			err := os.WriteFile(file, sink.ps.Bytes(), 0o600)
			n := len(sink.pkts)
			sink.mu.Unlock()
			if err != nil {
				t.Fatal(err)
			}
			if want, _ := strconv.ParseUint(testSSRC, 10, 32); ssrc != uint32(want) {
				t.Errorf("SSRC %d, want %s", ssrc, testSSRC)
			}
			codec, w, h := ffprobeVideo(t, file)
			if codec != "h264" || w != 1280 || h != 720 {
				t.Errorf("received PS: %s %dx%d, want h264 1280x720", codec, w, h)
			}
			t.Logf("%d RTP packets received over %s", n, tc.media)

			// PTZ from above reached the shared camera only
			e.mu.Lock()
			ptz := fmt.Sprint(e.ptz)
			e.mu.Unlock()
			if ptz != "[police-1 0.5 0.0 0.0]" {
				t.Errorf("PTZ calls %s", ptz)
			}

			// the audit: the view, the PTZ, and the refused hidden channel, by the upper platform
			count := map[string]int{}
			for _, a := range e.audits() {
				if a.User != testUpper || a.Camera != "police-1" && a.Camera != "" {
					t.Errorf("audit row %+v", a)
				}
				count[a.Action+" "+a.Camera+" "+a.Result]++
			}
			if want := map[string]int{"live police-1 ok": 1, "live  denied": 1, "ptz police-1 ok": 1, "ptz  denied": 1}; fmt.Sprint(count) != fmt.Sprint(want) {
				t.Errorf("audit: %v, want %v: %+v", count, want, e.audits())
			}
		})
	}
}

// TestUpperGoesAway: the upper platform stops answering keepalives; Vigil
// reports it failing (one event), registers again by itself when it is
// back, and reports the recovery.
func TestUpperGoesAway(t *testing.T) {
	port := freePort(t, "udp")
	addr := "127.0.0.1:" + strconv.Itoa(port)
	e := newEnv(t, addr, "udp", time.Second)
	keys := map[string]string{
		"upper": testUpper, "realm": testUpRealm, "lower": testLocal, "password": testPassword,
		"channel": e.shared, "hidden": e.hidden, "rtpport": "9", "proto": "RTP/AVP", "setup": "a=recvonly",
		"ssrc": testSSRC, "ptzcmd": testPTZ.String(),
	}
	u := startUpper(t, "udp", port, keys)
	testkit.WaitFor(t, 15*time.Second, "registered", func() bool { return e.status().State == StateRegistered })
	// (Vigil may have tried before SIPp listened: a failure and a recovery)
	n := len(e.events())
	if n > 0 && e.events()[n-1].Failing {
		t.Fatalf("registered, but the last event is a failure: %+v", e.events())
	}
	away := time.Now()
	u.stop()
	testkit.WaitFor(t, 30*time.Second, "failing", func() bool { return e.status().State == StateFailing })
	st := e.status()
	t.Logf("failing %v after the upper platform went away: %s", time.Since(away).Round(time.Millisecond), st.LastError)
	if ev := e.events()[n:]; len(ev) != 1 || !ev[0].Failing || !strings.Contains(ev[0].Message, "3 keepalives unanswered") {
		t.Fatalf("events while away: %+v", ev)
	}
	time.Sleep(3 * time.Second) // several attempts while nobody answers: still one event
	if st := e.status(); st.State != StateFailing || !e.svc.online("police-1") {
		t.Fatalf("while away: %+v, camera online %v", st, e.svc.online("police-1"))
	}
	back := time.Now()
	startUpper(t, "udp", port, keys)
	testkit.WaitFor(t, 15*time.Second, "registered again", func() bool { return e.status().State == StateRegistered })
	t.Logf("registered again %v after the upper platform came back", time.Since(back).Round(time.Millisecond))
	if ev := e.events()[n:]; len(ev) != 2 || ev[1].Failing {
		t.Fatalf("events after the return: %+v", ev)
	}
}

// TestWrongPassword: the upper platform refuses the digest; the platform is
// failing with a cause that names the password.
func TestWrongPassword(t *testing.T) {
	port := freePort(t, "udp")
	e := newEnv(t, "127.0.0.1:"+strconv.Itoa(port), "udp", 20*time.Second, func(s *Service) { s.Platforms[0].Password = "wrong" })
	startUpper(t, "udp", port, map[string]string{
		"upper": testUpper, "realm": testUpRealm, "lower": testLocal, "password": testPassword,
		"channel": e.shared, "hidden": e.hidden, "rtpport": "9", "proto": "RTP/AVP", "setup": "a=recvonly",
		"ssrc": testSSRC, "ptzcmd": testPTZ.String(),
	})
	testkit.WaitFor(t, 15*time.Second, "refused", func() bool {
		return e.status().LastError != "" && e.status().LastError != "not registered yet"
	})
	if st := e.status(); st.State != StateFailing || !regexp.MustCompile(`403.*password`).MatchString(st.LastError) {
		t.Fatalf("status %+v", st)
	}
}

var notifyBody = regexp.MustCompile(`(?s)<\?xml[^>]*\?>\s*<Notify>.*?</Notify>`)

// TestCatalogSubscription: an upper platform (SIPp) subscribes to the
// catalog; a camera added to a shared department is notified (ADD), and
// one moved to a department not shared is notified removed (DEL).
func TestCatalogSubscription(t *testing.T) {
	bin := testkit.Tool(t, "sipp", "VIGIL_REQUIRE_SIPP")
	e := newEnv(t, "127.0.0.1:9", "udp", 20*time.Second, func(s *Service) { s.CatalogPoll = 200 * time.Millisecond })
	dir := t.TempDir()
	subscribed := filepath.Join(dir, "subscribed")
	sf, _ := filepath.Abs(filepath.Join("testdata", "subscribe.xml"))
	cmd := exec.Command(bin, e.sipAddr, "-sf", sf, "-m", "1", "-t", "u1", "-i", "127.0.0.1", "-p", "0", "-nostdin",
		"-timeout", "40s", "-timeout_error", "-trace_msg", "-trace_err",
		"-key", "upper", testUpper, "-key", "realm", testUpRealm, "-key", "lower", testLocal, "-key", "subscribed", subscribed)
	cmd.Dir = dir
	out := &testkit.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill(); <-done })
	testkit.WaitFor(t, 20*time.Second, "subscription accepted", func() bool {
		_, err := os.Stat(subscribed)
		return err == nil
	})
	time.Sleep(3 * e.svc.CatalogPoll) // the subscription's first look at the catalog

	added := ingest.Camera{ID: "police-2", Name: "Pier", Department: "police", MainURL: "rtsp://127.0.0.1:9/none", Enabled: true}
	e.mu.Lock()
	e.cams = append(e.cams, added)
	e.mu.Unlock()
	police2, err := e.channels.Camera(context.Background(), "police-2")
	if err != nil {
		t.Fatal(err)
	}
	trace := func() []byte {
		logs, _ := filepath.Glob(filepath.Join(dir, "*_messages.log"))
		var all []byte
		for _, l := range logs {
			b, _ := os.ReadFile(l)
			all = append(all, b...)
		}
		return all
	}
	testkit.WaitFor(t, 10*time.Second, "first NOTIFY", func() bool { return len(notifyBody.FindAll(trace(), -1)) >= 1 })
	e.mu.Lock()
	e.cams[0].Department = "fire" // police-1 leaves the shared department
	e.mu.Unlock()
	select {
	case err := <-done:
		done <- err
		if err != nil {
			t.Fatalf("sipp: %v\n%s", err, out)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("no second NOTIFY\n%s", out)
	}
	var got []string
	for _, b := range notifyBody.FindAll(trace(), -1) {
		m, err := manscdp.Decode(bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n")))
		if err != nil {
			t.Fatalf("NOTIFY body: %v\n%s", err, b)
		}
		n := m.(*manscdp.Notify)
		for _, it := range n.DeviceList.Items {
			got = append(got, string(it.Event)+" "+it.DeviceID)
		}
	}
	want := []string{"ADD " + police2, "DEL " + e.shared}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("notified %v, want %v", got, want)
	}
}

var alarmNotify = regexp.MustCompile(`(?s)<\?xml[^>]*\?>\s*<Notify>\s*<CmdType>Alarm</CmdType>.*?</Notify>`)

// TestAlarmForwarded: a GB/T 28181 camera's alarm reaches the upper platform
// that sees the camera, naming the channel; an alarm of a camera it does
// not see does not.
func TestAlarmForwarded(t *testing.T) {
	port := freePort(t, "udp")
	e := newEnv(t, "127.0.0.1:"+strconv.Itoa(port), "udp", 20*time.Second)
	const device, shown, hidden = "44011300001320000001", "44011300001310000201", "44011300001310000202"
	e.mu.Lock()
	e.cams = append(e.cams,
		ingest.Camera{ID: "gb-" + shown, Department: "police", Source: ingest.SourceGB28181, Enabled: true,
			GB28181: &ingest.GBChannel{Device: device, Channel: shown}},
		ingest.Camera{ID: "gb-" + hidden, Department: "fire", Source: ingest.SourceGB28181, Enabled: true,
			GB28181: &ingest.GBChannel{Device: device, Channel: hidden}})
	e.mu.Unlock()
	u := startUpper(t, "udp", port, map[string]string{
		"upper": testUpper, "realm": testUpRealm, "lower": testLocal, "password": testPassword,
		"channel": e.shared, "hidden": e.hidden, "rtpport": "9", "proto": "RTP/AVP", "setup": "a=recvonly",
		"ssrc": testSSRC, "ptzcmd": testPTZ.String(),
	})
	testkit.WaitFor(t, 15*time.Second, "registered", func() bool { return e.status().State == StateRegistered })
	at := manscdp.Time{Time: time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC)}
	for _, ch := range []string{hidden, shown} {
		e.svc.ForwardAlarm(device, &manscdp.Notify{Header: manscdp.Header{CmdType: manscdp.CmdAlarm, SN: 5, DeviceID: ch},
			AlarmPriority: "1", AlarmMethod: "5", AlarmTime: &at, AlarmDescription: "tripwire"})
	}
	var got []string
	testkit.WaitFor(t, 10*time.Second, "the alarm at the upper platform", func() bool {
		got = got[:0]
		for _, b := range alarmNotify.FindAll(u.messages(t), -1) {
			m, err := manscdp.Decode(bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n")))
			if err != nil {
				t.Fatalf("alarm body: %v\n%s", err, b)
			}
			n := m.(*manscdp.Notify)
			got = append(got, n.DeviceID+" "+n.AlarmDescription)
		}
		return len(got) > 0
	})
	time.Sleep(time.Second) // the hidden one would have come by now
	got = got[:0]
	for _, b := range alarmNotify.FindAll(u.messages(t), -1) {
		m, _ := manscdp.Decode(bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n")))
		n := m.(*manscdp.Notify)
		got = append(got, n.DeviceID+" "+n.AlarmDescription)
	}
	if fmt.Sprint(got) != "["+shown+" tripwire]" {
		t.Fatalf("alarms at the upper platform: %v", got)
	}
}
