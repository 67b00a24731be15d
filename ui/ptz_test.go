package ui

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/registry"
)

// ptzCall is one command a ptzRecorder received.
type ptzCall struct {
	camera          string
	pan, tilt, zoom float64
	at              time.Time
}

// ptzRecorder is the device side of PTZ in the ui's tests (GB28181.PTZ):
// it records every command, tells each on calls, and fails the commands
// fail says to.
type ptzRecorder struct {
	mu    sync.Mutex
	log   []ptzCall
	calls chan ptzCall
	fail  func(ptzCall) error
}

func newPTZRecorder() *ptzRecorder { return &ptzRecorder{calls: make(chan ptzCall, 100)} }

func (p *ptzRecorder) send(ctx context.Context, cam ingest.Camera, pan, tilt, zoom float64) error {
	c := ptzCall{camera: cam.ID, pan: pan, tilt: tilt, zoom: zoom, at: time.Now()}
	p.mu.Lock()
	p.log = append(p.log, c)
	fail := p.fail
	p.mu.Unlock()
	select {
	case p.calls <- c:
	default: // nobody reads them: the log keeps every call
	}
	if fail != nil {
		return fail(c)
	}
	return nil
}

func (p *ptzRecorder) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.log)
}

// next waits for the next command.
func (p *ptzRecorder) next(t *testing.T, within time.Duration) ptzCall {
	t.Helper()
	select {
	case c := <-p.calls:
		return c
	case <-time.After(within):
		t.Fatalf("no PTZ command within %s", within)
		return ptzCall{}
	}
}

// none checks that no command comes for d.
func (p *ptzRecorder) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case c := <-p.calls:
		t.Fatalf("unexpected PTZ command %+v", c)
	case <-time.After(d):
	}
}

func TestPTZControlAutoStop(t *testing.T) {
	const hold = 150 * time.Millisecond
	pc := &ptzControl{hold: hold}
	rec := newPTZRecorder()
	cam := ingest.Camera{ID: "gb-1"}
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)

	start := time.Now()
	started, err := pc.command(ctx, cam, ptzMove{pan: 0.5}, rec.send, log)
	if err != nil || !started {
		t.Fatalf("move: started %v, %v", started, err)
	}
	if c := rec.next(t, time.Second); c.pan != 0.5 || c.tilt != 0 || c.zoom != 0 {
		t.Fatalf("sent %+v", c)
	}
	// Repeats of the movement under way extend it without a command.
	for range 4 {
		time.Sleep(hold / 2)
		started, err := pc.command(ctx, cam, ptzMove{pan: 0.5}, rec.send, log)
		if err != nil || started {
			t.Fatalf("repeat: started %v, %v", started, err)
		}
	}
	lastRepeat := time.Now()
	stop := rec.next(t, 10*hold)
	if stop.pan != 0 || stop.tilt != 0 || stop.zoom != 0 {
		t.Fatalf("the automatic stop is %+v", stop)
	}
	if d := stop.at.Sub(lastRepeat); d < hold*9/10 {
		t.Fatalf("stopped %s after the last repeat, before the hold of %s", d, hold)
	}
	if d := stop.at.Sub(start); d < 2*hold {
		t.Fatalf("stopped %s after the move although it was repeated", d)
	}
	rec.none(t, 3*hold)

	// After the stop, the same movement is a new one.
	if started, err := pc.command(ctx, cam, ptzMove{pan: 0.5}, rec.send, log); err != nil || !started {
		t.Fatalf("move again: started %v, %v", started, err)
	}
	rec.next(t, time.Second)
	// A change of direction is sent at once; a stop ends it with no automatic one.
	if started, err := pc.command(ctx, cam, ptzMove{tilt: -1, zoom: 0.25}, rec.send, log); err != nil || !started {
		t.Fatalf("turn: started %v, %v", started, err)
	}
	if c := rec.next(t, time.Second); c.tilt != -1 || c.zoom != 0.25 || c.pan != 0 {
		t.Fatalf("sent %+v", c)
	}
	if started, err := pc.command(ctx, cam, ptzMove{}, rec.send, log); err != nil || started {
		t.Fatalf("stop: started %v, %v", started, err)
	}
	rec.next(t, time.Second)
	rec.none(t, 3*hold)
}

// A client that goes away in the middle of a stop does not cancel it.
func TestPTZControlStopOutlivesClient(t *testing.T) {
	pc := &ptzControl{hold: time.Minute}
	cam := ingest.Camera{ID: "gb-1"}
	var gotErr error
	send := func(ctx context.Context, cam ingest.Camera, pan, tilt, zoom float64) error {
		gotErr = ctx.Err()
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := pc.command(ctx, cam, ptzMove{}, send, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if gotErr != nil {
		t.Fatalf("the stop was sent with a cancelled context: %v", gotErr)
	}
}

// An automatic stop that fails is tried again, and given up after
// ptzStopTries (logged).
func TestPTZControlStopRetried(t *testing.T) {
	const hold = 50 * time.Millisecond
	pc := &ptzControl{hold: hold}
	rec := newPTZRecorder()
	rec.fail = func(c ptzCall) error {
		if c.pan == 0 {
			return errors.New("device 44011300001320000001 is offline")
		}
		return nil
	}
	logs := &strings.Builder{}
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{&mu, logs}, nil))
	cam := ingest.Camera{ID: "gb-1"}
	if _, err := pc.command(context.Background(), cam, ptzMove{pan: 1}, rec.send, log); err != nil {
		t.Fatal(err)
	}
	rec.next(t, time.Second)
	for i := range ptzStopTries {
		if c := rec.next(t, time.Second); c.pan != 0 {
			t.Fatalf("try %d: %+v", i, c)
		}
	}
	rec.none(t, 4*hold)
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logs.String(), "the camera may still be moving") {
		t.Fatalf("the given-up stop is not logged: %s", logs)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *strings.Builder
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func TestPTZValidation(t *testing.T) {
	f := newFixture(t, Options{})
	rec := newPTZRecorder()
	f.srv.deps.GB28181.PTZ = rec.send
	for _, tc := range []struct {
		who, body string
		code      int
		want      string
	}{
		{pAdmin, `{"pan":1.5}`, bad, "pan must be a speed from -1 to 1"},
		{pOperator, `{"tilt":-2}`, bad, "tilt must be a speed"},
		{pResponder, `{"zoom":"in"}`, bad, "malformed JSON"},
		{pAdmin, `{"pan":0.5,"speed":1}`, bad, "malformed JSON"},
		{pAdmin, ``, bad, "body is empty"},
		{pAdmin, `{"pan":0.5}`, nf, "has no PTZ control"}, // an RTSP camera
		{pViewer, `{"pan":0.5}`, forb, "does not allow PTZ control"},
	} {
		r := f.do(req{method: "POST", path: "/api/v1/cameras/police-1/ptz", who: tc.who, ctype: "application/json", body: tc.body})
		if r.Code != tc.code || !strings.Contains(r.Body.String(), tc.want) {
			t.Errorf("%s %s: %d %s, want %d %q", tc.who, tc.body, r.Code, r.Body, tc.code, tc.want)
		}
	}
	r := f.do(req{method: "POST", path: "/api/v1/cameras/police-1/ptz", who: pAdmin, ctype: "application/json",
		body: `{"pan":1.5}`, header: map[string]string{"Accept-Language": "zh-CN"}})
	if !strings.Contains(r.Body.String(), "必须是 -1 到 1 之间的速度") {
		t.Errorf("zh-CN: %s", r.Body)
	}
	if rec.count() != 0 {
		t.Fatalf("a refused command reached the device: %d", rec.count())
	}
	if n := f.auditRows("ptz"); n != 8 {
		t.Fatalf("%d audit rows of refused commands, want 8 (each refusal)", n)
	}
}

// GB/T 28181 cameras of the fixture's devices: one that can move in each
// department, one that cannot.
const (
	gbPolicePTZ = "gb-44011300001310000001"
	gbFloodPTZ  = "gb-44011300001310000002"
	gbPoliceFix = "gb-44011300001310000003" // a fixed camera: no PTZ
)

// addGBCamera registers the GB/T 28181 camera id (gb-<channel>) of the
// fixture's device in dept, with or without PTZ.
func addGBCamera(t testing.TB, reg interface {
	CreateCamera(context.Context, ingest.Camera) (ingest.Camera, error)
}, id string, ptz bool) {
	t.Helper()
	dev, dept := gbPolice, "police"
	if id == gbFloodPTZ {
		dev, dept = gbFlood, "flood-control"
	}
	_, err := reg.CreateCamera(context.Background(), ingest.Camera{ID: id, Name: "Channel " + id[len(id)-1:], Department: dept,
		Source: ingest.SourceGB28181, GB28181: &ingest.GBChannel{Device: dev, Channel: strings.TrimPrefix(id, "gb-"), PTZ: ptz},
		Record: true, Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
}

// ptzAudit returns the details of the ptz audit rows, oldest first.
func (f *fixture) ptzAudit() []string {
	f.t.Helper()
	es, err := f.reg.AuditEntries(context.Background(), registry.AuditFilter{Limit: 1000})
	if err != nil {
		f.t.Fatal(err)
	}
	var out []string
	for i := len(es) - 1; i >= 0; i-- {
		if es[i].Action == "ptz" {
			out = append(out, es[i].Result+": "+es[i].Camera+" "+es[i].Detail)
		}
	}
	return out
}

func TestPTZ(t *testing.T) {
	f := newFixture(t, Options{})
	rec := newPTZRecorder()
	f.srv.deps.GB28181.PTZ = rec.send
	f.srv.ptz.hold = 300 * time.Millisecond
	addGBCamera(t, f.reg, gbPolicePTZ, true)
	addGBCamera(t, f.reg, gbPoliceFix, false)
	post := func(who, cam, body string) *httptest.ResponseRecorder {
		return f.do(req{method: "POST", path: "/api/v1/cameras/" + cam + "/ptz", who: who, ctype: "application/json", body: body})
	}

	if r := post(pOperator, gbPolicePTZ, `{"pan":0.5}`); r.Code != nc {
		t.Fatalf("move: %d %s", r.Code, r.Body)
	}
	if c := rec.next(t, time.Second); c.camera != gbPolicePTZ || c.pan != 0.5 || c.tilt != 0 || c.zoom != 0 {
		t.Fatalf("sent %+v", c)
	}
	for range 3 { // held: the web app repeats the move
		time.Sleep(100 * time.Millisecond)
		if r := post(pOperator, gbPolicePTZ, `{"pan":0.5}`); r.Code != nc {
			t.Fatalf("repeat: %d %s", r.Code, r.Body)
		}
	}
	// The client goes away: the server stops the camera.
	if c := rec.next(t, 5*time.Second); c.camera != gbPolicePTZ || c.pan != 0 || c.tilt != 0 || c.zoom != 0 {
		t.Fatalf("the automatic stop is %+v", c)
	}

	// A responder zooms out and stops: no automatic stop follows.
	if r := post(pResponder, gbPolicePTZ, `{"zoom":-1,"tilt":0.25}`); r.Code != nc {
		t.Fatalf("zoom: %d %s", r.Code, r.Body)
	}
	rec.next(t, time.Second)
	if r := post(pResponder, gbPolicePTZ, `{"pan":0,"tilt":0,"zoom":0}`); r.Code != nc {
		t.Fatalf("stop: %d %s", r.Code, r.Body)
	}
	if c := rec.next(t, time.Second); c.pan != 0 || c.tilt != 0 || c.zoom != 0 {
		t.Fatalf("stop sent as %+v", c)
	}
	rec.none(t, 3*f.srv.ptz.hold)

	// A fixed GB camera and an RTSP camera have no PTZ; a camera of another
	// department does not exist for a limited user.
	for _, tc := range []struct{ who, cam string }{{pAdmin, gbPoliceFix}, {pAdmin, "police-1"}, {pScoped, gbPolicePTZ}} {
		if r := post(tc.who, tc.cam, `{"pan":1}`); r.Code != nf {
			t.Errorf("%s on %s: %d %s, want 404", tc.who, tc.cam, r.Code, r.Body)
		}
	}
	// A device that does not take the command: 502 with its reason.
	rec.fail = func(ptzCall) error { return errors.New(`device "44011300001320000001" is not registered`) }
	if r := post(pAdmin, gbPolicePTZ, `{"pan":-1}`); r.Code != http.StatusBadGateway || !strings.Contains(r.Body.String(), "did not take the PTZ command") ||
		!strings.Contains(r.Body.String(), "is not registered") {
		t.Fatalf("failed command: %d %s", r.Code, r.Body)
	}
	if rec.count() != 5 {
		t.Fatalf("%d commands reached the device, want 5", rec.count())
	}

	// One row per movement started, none for repeats and stops; refusals
	// and failures always.
	want := [][2]string{
		{"ok: " + gbPolicePTZ, "pan 0.5 tilt 0 zoom 0"},
		{"ok: " + gbPolicePTZ, "pan 0 tilt 0.25 zoom -1"},
		{"denied: " + gbPoliceFix, "pan 1 tilt 0 zoom 0; camera \"" + gbPoliceFix + "\" has no PTZ control"},
		{"denied: police-1", "pan 1 tilt 0 zoom 0; camera \"police-1\" has no PTZ control"},
		{"denied: " + gbPolicePTZ, "does not exist"},
		{"failed: " + gbPolicePTZ, "pan -1 tilt 0 zoom 0; the device did not take the PTZ command: device \"44011300001320000001\" is not registered"},
	}
	got := f.ptzAudit()
	if len(got) != len(want) {
		t.Fatalf("audit rows:\n%s\nwant %d", strings.Join(got, "\n"), len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(got[i], w[0]+" ") || !strings.Contains(got[i], w[1]) {
			t.Errorf("audit row %d: %q, want %q … %q", i, got[i], w[0], w[1])
		}
	}

	// Without the gateway (GB/T 28181 off), a PTZ camera cannot move.
	f.srv.deps.GB28181.PTZ = nil
	if r := post(pAdmin, gbPolicePTZ, `{"pan":1}`); r.Code != http.StatusServiceUnavailable {
		t.Fatalf("without the gateway: %d %s", r.Code, r.Body)
	}
}
