package alarm

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/alerts"
	"github.com/vigil-vms/vigil/gb28181/manscdp"
	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/testkit"
	"github.com/vigil-vms/vigil/internal/testkit/hookrecv"
	"github.com/vigil-vms/vigil/internal/testkit/testdb"
	"golang.org/x/text/encoding/simplifiedchinese"
)

const (
	nvr  = "44011300001180000001"
	ch1  = "44011300001310000001"
	ch2  = "44011300001310000002"
	ipc  = "44011300001320000009"
	gbCh = "gb-" + ch1
)

var fleet = []ingest.Camera{
	{ID: gbCh, Name: "Gate", Department: "police", Source: ingest.SourceGB28181, Enabled: true,
		GB28181: &ingest.GBChannel{Device: nvr, Channel: ch1}},
	{ID: "gb-" + ch2, Name: "Yard", Department: "police", Source: ingest.SourceGB28181, Enabled: true,
		GB28181: &ingest.GBChannel{Device: nvr, Channel: ch2}},
	{ID: "police-1", Name: "Station Rd", Department: "police", MainURL: "rtsp://10.0.0.1/x", Enabled: true},
}

func listFleet(context.Context) ([]ingest.Camera, error) { return fleet, nil }

// notify parses an Alarm NOTIFY as a device sends it (GB2312 XML).
func notify(t *testing.T, channel, priority, method, when, desc string) *manscdp.Notify {
	t.Helper()
	body, err := simplifiedchinese.GBK.NewEncoder().String(`<?xml version="1.0" encoding="GB2312"?>
<Notify><CmdType>Alarm</CmdType><SN>17</SN><DeviceID>` + channel + `</DeviceID>
<AlarmPriority>` + priority + `</AlarmPriority><AlarmMethod>` + method + `</AlarmMethod>
<AlarmTime>` + when + `</AlarmTime><AlarmDescription>` + desc + `</AlarmDescription>
<Info><AlarmType>2</AlarmType></Info></Notify>`)
	if err != nil {
		t.Fatal(err)
	}
	m, err := manscdp.Decode([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	n, ok := m.(*manscdp.Notify)
	if !ok {
		t.Fatalf("decoded %T", m)
	}
	return n
}

func open(t *testing.T, opts Options) *Store {
	t.Helper()
	if opts.Cameras == nil {
		opts.Cameras = listFleet
	}
	opts.Log = testkit.Log(t)
	s, err := Open(context.Background(), testdb.Open(t, ""), opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAlarmOnTimelineAndAlert(t *testing.T) {
	ctx := context.Background()
	hooks := hookrecv.New[alerts.Event](t, func(r *http.Request, body []byte) bool {
		return r.Header.Get("X-Vigil-Signature") == alerts.Sign("s3cret", body)
	})
	n, err := alerts.New(ctx, testdb.OpenSQLite(t, ""), alerts.Options{Webhooks: []alerts.Webhook{{URL: hooks.URL, Secret: "s3cret"}}})
	if err != nil {
		t.Fatal(err)
	}
	testkit.Run(t, n.Run)
	now := time.Date(2026, 11, 29, 10, 0, 0, 0, time.Local)
	s := open(t, Options{Alerts: n, Now: func() time.Time { return now }})

	s.OnAlarm(nvr, notify(t, ch1, "1", "5", "2026-11-29T09:59:58", "区域入侵 Intrusion at the gate"))
	s.OnAlarm(nvr, notify(t, ch1, "4", "2", "2026-11-29T09:59:59.500", "tamper"))

	at := time.Date(2026, 11, 29, 9, 59, 58, 0, time.Local)
	evs, err := s.Events(ctx, gbCh, at.Add(-time.Minute), at.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 {
		t.Fatalf("events %+v", evs)
	}
	e := evs[0]
	if e.Type != EventAlarm || !e.Start.Equal(at) || e.End == nil || !e.End.Equal(at) {
		t.Fatalf("event %+v", e)
	}
	for _, want := range []string{"区域入侵 Intrusion at the gate", "priority 1", "video analysis alarm", "type 2", "from device " + nvr} {
		if !strings.Contains(e.Message, want) {
			t.Errorf("message %q lacks %q", e.Message, want)
		}
	}
	if !evs[1].Start.Equal(at.Add(1500 * time.Millisecond)) {
		t.Errorf("second alarm at %s", evs[1].Start)
	}
	// Outside the range, and of the other channel: none.
	if evs, _ := s.Events(ctx, gbCh, at.Add(time.Second), at.Add(time.Second+time.Millisecond)); len(evs) != 0 {
		t.Errorf("events between the alarms: %+v", evs)
	}
	if evs, _ := s.Events(ctx, "gb-"+ch2, at.Add(-time.Hour), at.Add(time.Hour)); len(evs) != 0 {
		t.Errorf("the other channel has %+v", evs)
	}

	for i, want := range []struct{ severity, text string }{{alerts.Critical, "Intrusion at the gate"}, {alerts.Warning, "tamper"}} {
		select {
		case got := <-hooks.Events:
			if got.Event != alerts.Alarm || got.Camera != gbCh || got.Department != "police" || got.Severity != want.severity ||
				!strings.Contains(got.Message, want.text) || !strings.Contains(got.Message, "Gate") || got.ID == "" {
				t.Errorf("alert %d: %+v", i, got)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("alert %d did not arrive", i)
		}
	}
}

// An alarm the device raises for itself is on every camera of the device;
// one of an unknown channel is on none.
func TestAlarmOfDeviceAndUnknownChannel(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	s := open(t, Options{Now: func() time.Time { return now }})
	s.OnAlarm(nvr, notify(t, nvr, "2", "6", now.Format("2006-01-02T15:04:05"), "disk full"))
	s.OnAlarm(nvr, notify(t, "44011300001310000077", "2", "6", now.Format("2006-01-02T15:04:05"), "unknown"))
	for _, cam := range []string{gbCh, "gb-" + ch2} {
		evs, err := s.Events(ctx, cam, now.Add(-time.Minute), now.Add(time.Minute))
		if err != nil || len(evs) != 1 || !strings.Contains(evs[0].Message, "disk full") || !strings.Contains(evs[0].Message, "device fault alarm") {
			t.Errorf("%s: %+v %v", cam, evs, err)
		}
	}
	if evs, _ := s.Events(ctx, "police-1", now.Add(-time.Minute), now.Add(time.Minute)); len(evs) != 0 {
		t.Errorf("an RTSP camera got %+v", evs)
	}
	// Record names the camera itself; an unregistered one is an error.
	if err := s.Record(ctx, Alarm{Camera: "gb-nope", Time: now}); err == nil || !strings.Contains(err.Error(), "not registered") {
		t.Errorf("record of an unknown camera: %v", err)
	}
	if err := s.Record(ctx, Alarm{Camera: "police-1", Time: now, Description: "door"}); err != nil {
		t.Fatal(err)
	}
	if evs, _ := s.Events(ctx, "police-1", now.Add(-time.Minute), now.Add(time.Minute)); len(evs) != 1 || evs[0].Message != "door" {
		t.Errorf("recorded %+v", evs)
	}
}

func TestFromNotify(t *testing.T) {
	now := time.Date(2026, 11, 29, 10, 0, 0, 0, time.Local)
	for _, tc := range []struct {
		name                     string
		priority, method, when   string
		desc                     string
		wantTime                 time.Time
		wantPriority, wantMethod int
		wantDesc                 string
	}{
		{"plain", "3", "2", "2026-11-29T09:00:00", "motion", time.Date(2026, 11, 29, 9, 0, 0, 0, time.Local), 3, 2, "motion"},
		{"clock never set", "1", "1", "1970-01-01T08:00:00", "x", now, 1, 1, "x"},
		{"in the future", "1", "1", "2027-01-01T00:00:00", "x", now, 1, 1, "x"},
		{"out of range", "9", "-1", "2026-11-29T09:00:00", "x", time.Date(2026, 11, 29, 9, 0, 0, 0, time.Local), 0, 0, "x"},
		{"not numbers", "high", "x", "2026-11-29T09:00:00", "  spaced  ", time.Date(2026, 11, 29, 9, 0, 0, 0, time.Local), 0, 0, "spaced"},
		{"long", "1", "1", "2026-11-29T09:00:00", strings.Repeat("警", 300), time.Date(2026, 11, 29, 9, 0, 0, 0, time.Local), 1, 1, strings.Repeat("警", maxDescription)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := FromNotify(nvr, notify(t, ch1, tc.priority, tc.method, tc.when, tc.desc), now)
			if !a.Time.Equal(tc.wantTime) || a.Priority != tc.wantPriority || a.Method != tc.wantMethod || a.Description != tc.wantDesc || a.Device != nvr || a.Type != "2" {
				t.Errorf("got %+v", a)
			}
		})
	}
	// Without AlarmTime: when Vigil heard of it.
	a := FromNotify(nvr, &manscdp.Notify{Header: manscdp.Header{CmdType: manscdp.CmdAlarm, DeviceID: ch1}}, now)
	if !a.Time.Equal(now) || a.Text() != "alarm (from device "+nvr+")" {
		t.Errorf("bare alarm %+v %q", a, a.Text())
	}
}

// A device that floods alarms fills at most Burst a minute per camera.
func TestAlarmBurst(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	s := open(t, Options{Burst: 3, Now: func() time.Time { return now }})
	stamp := now.Format("2006-01-02T15:04:05")
	for range 5 {
		s.OnAlarm(nvr, notify(t, ch1, "1", "5", stamp, "flood"))
	}
	s.OnAlarm(nvr, notify(t, ch2, "1", "5", stamp, "other camera"))
	if evs, _ := s.Events(ctx, gbCh, now.Add(-time.Minute), now.Add(time.Minute)); len(evs) != 3 {
		t.Fatalf("%d alarms stored, want 3", len(evs))
	}
	if evs, _ := s.Events(ctx, "gb-"+ch2, now.Add(-time.Minute), now.Add(time.Minute)); len(evs) != 1 {
		t.Fatalf("the other camera's alarm: %+v", evs)
	}
	if s.Dropped() != 2 {
		t.Fatalf("dropped %d", s.Dropped())
	}
	now = now.Add(time.Minute)
	s.OnAlarm(nvr, notify(t, ch1, "1", "5", now.Format("2006-01-02T15:04:05"), "a minute later"))
	if evs, _ := s.Events(ctx, gbCh, now.Add(-2*time.Minute), now.Add(time.Minute)); len(evs) != 4 {
		t.Fatalf("a minute later: %d alarms", len(evs))
	}
}

// Alarms older than Retention go.
func TestAlarmRetention(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	s := open(t, Options{Retention: 48 * time.Hour, Now: func() time.Time { return now }})
	if err := s.Record(ctx, Alarm{Camera: gbCh, Time: now.Add(-72 * time.Hour), Description: "old"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Record(ctx, Alarm{Camera: gbCh, Time: now.Add(-time.Hour), Description: "recent"}); err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Hour) // the next record prunes
	if err := s.Record(ctx, Alarm{Camera: gbCh, Time: now, Description: "new"}); err != nil {
		t.Fatal(err)
	}
	evs, err := s.Events(ctx, gbCh, now.Add(-100*time.Hour), now.Add(time.Minute))
	if err != nil || len(evs) != 2 || evs[0].Message != "recent" {
		t.Fatalf("%+v %v", evs, err)
	}
}
