package sip

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/vigil-vms/vigil/gb28181/manscdp"
	"github.com/vigil-vms/vigil/internal/testkit"
)

// hooks records what the server reports through OnState, OnCatalog and
// OnAlarm.
type hooks struct {
	mu       sync.Mutex
	states   []string // "device state"
	catalogs [][]manscdp.Item
	alarms   []*manscdp.Notify
}

func (h *hooks) install(s *Server) {
	s.OnState = func(id string, st State) {
		h.mu.Lock()
		h.states = append(h.states, id+" "+st.State)
		h.mu.Unlock()
	}
	s.OnCatalog = func(id string, items []manscdp.Item) {
		h.mu.Lock()
		h.catalogs = append(h.catalogs, items)
		h.mu.Unlock()
	}
	s.OnAlarm = func(id string, a *manscdp.Notify) {
		h.mu.Lock()
		h.alarms = append(h.alarms, a)
		h.mu.Unlock()
	}
}

func (h *hooks) snapshot() (states []string, catalogs [][]manscdp.Item, alarms []*manscdp.Notify) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.states...), append([][]manscdp.Item(nil), h.catalogs...), append([]*manscdp.Notify(nil), h.alarms...)
}

func channels(n int) []manscdp.Item {
	var items []manscdp.Item
	for i := range n {
		id := "4401130000131000" + strings.Repeat("0", 3) + string(rune('1'+i))
		items = append(items, manscdp.Item{DeviceID: id, Name: "通道" + string(rune('1'+i)), ParentID: testDevice, Status: manscdp.StatusOn})
	}
	return items
}

func ctx5(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// registered starts a server and a peer device registered to it.
func registered(t *testing.T, transport string, h *hooks, opts ...func(*Server)) (*testServer, *peer) {
	t.Helper()
	opts = append(opts, func(s *Server) {
		if h != nil {
			h.install(s)
		}
	})
	ts := startServer(t, time.Minute, opts...)
	p := newPeer(t, testDevice, ts.on(transport), transport)
	p.channels = channels(5)
	if code := p.register("secret1"); code != 200 {
		t.Fatalf("register: %d", code)
	}
	return ts, p
}

// TestAutomaticCatalog: a device that comes online is asked for its
// catalog (5 items in 3 pages, each sent twice) and subscribed to; OnState
// and OnCatalog report it; the requests reach the device on the socket it
// registered from (UDP) or its own connection (TCP).
func TestAutomaticCatalog(t *testing.T) {
	for _, tr := range []string{"udp", "tcp"} {
		t.Run(tr, func(t *testing.T) {
			h := &hooks{}
			ts := startServer(t, time.Minute, h.install)
			p := newPeer(t, testDevice, ts.on(tr), tr)
			p.channels, p.dupPages = channels(5), true
			if code := p.register("secret1"); code != 200 {
				t.Fatalf("register: %d", code)
			}
			testkit.WaitFor(t, 10*time.Second, "catalog and subscription", func() bool {
				_, cats, _ := h.snapshot()
				return len(cats) > 0 && ts.DeviceState(testDevice).Subscription == SubscriptionActive
			})
			states, cats, _ := h.snapshot()
			if len(states) != 1 || states[0] != testDevice+" online" {
				t.Fatalf("OnState calls %v", states)
			}
			if len(cats[0]) != 5 || CatalogChange(cats[0]) || cats[0][4].Name != "通道5" {
				t.Fatalf("catalog %+v", cats[0])
			}
			if st := ts.DeviceState(testDevice); !strings.Contains(st.SubscriptionNote, "renewed every 45m0s") {
				t.Fatalf("subscription note %q", st.SubscriptionNote)
			}
			if host := ts.DeviceHost(testDevice); host != "127.0.0.1" {
				t.Fatalf("DeviceHost = %q", host)
			}
			// unregistering reports offline
			if code := p.registerFor("secret1", 0); code != 200 {
				t.Fatalf("unregister: %d", code)
			}
			testkit.WaitFor(t, 5*time.Second, "offline reported", func() bool {
				states, _, _ := h.snapshot()
				return len(states) == 2 && states[1] == testDevice+" offline"
			})
		})
	}
}

// TestCatalogQuery: Catalog assembles pages and drops duplicates; missing
// pages end in a RequestIncomplete error within CatalogTimeout, with the
// items received.
func TestCatalogQuery(t *testing.T) {
	ts, p := registered(t, "udp", nil, func(s *Server) { s.CatalogRefresh = -1; s.CatalogTimeout = time.Second })
	p.set(func(p *peer) { p.dupPages = true })
	items, err := ts.Catalog(ctx5(t), testDevice)
	if err != nil || len(items) != 5 {
		t.Fatalf("catalog: %d items, %v", len(items), err)
	}
	p.set(func(p *peer) { p.dupPages, p.dropPages = false, 1 })
	start := time.Now()
	items, err = ts.Catalog(ctx5(t), testDevice)
	var re *RequestError
	if !errors.As(err, &re) || re.Kind != RequestIncomplete || len(items) != 4 {
		t.Fatalf("catalog with a page missing: %d items, %v", len(items), err)
	}
	if !strings.Contains(err.Error(), "sent 4 of 5 catalog items within 1s") || time.Since(start) > 5*time.Second {
		t.Fatalf("error %q after %v", err, time.Since(start))
	}
	// an empty catalog is an answer
	p.set(func(p *peer) { p.channels, p.dropPages = nil, 0 })
	items, err = ts.Catalog(ctx5(t), testDevice)
	if err != nil || len(items) != 0 {
		t.Fatalf("empty catalog: %v %v", items, err)
	}
}

// TestSubscribeRefused: a device answering 501 to the catalog SUBSCRIBE is
// queried periodically instead, and the state says so.
func TestSubscribeRefused(t *testing.T) {
	ts := startServer(t, time.Minute, func(s *Server) { s.CatalogRefresh = 300 * time.Millisecond })
	p := newPeer(t, testDevice, ts.udp, "udp")
	p.channels, p.subscribeCode = channels(2), 501
	if code := p.register("secret1"); code != 200 {
		t.Fatal(code)
	}
	testkit.WaitFor(t, 10*time.Second, "subscription refused", func() bool {
		return ts.DeviceState(testDevice).Subscription == SubscriptionRefused
	})
	note := ts.DeviceState(testDevice).SubscriptionNote
	if !strings.Contains(note, "501 Not Implemented") || !strings.Contains(note, "queried every 300ms") {
		t.Fatalf("note %q", note)
	}
}

// TestSubscribeGranted: a device granting a shorter subscription than asked
// is renewed within what it granted.
func TestSubscribeGranted(t *testing.T) {
	ts := startServer(t, time.Minute)
	p := newPeer(t, testDevice, ts.udp, "udp")
	p.channels, p.subscribeFor = channels(1), 60
	if code := p.register("secret1"); code != 200 {
		t.Fatal(code)
	}
	testkit.WaitFor(t, 10*time.Second, "subscription active", func() bool {
		return ts.DeviceState(testDevice).Subscription == SubscriptionActive
	})
	if note := ts.DeviceState(testDevice).SubscriptionNote; !strings.Contains(note, "renewed every 45s") {
		t.Fatalf("note %q", note)
	}
}

func TestDeviceInfoPTZKeyFrame(t *testing.T) {
	ts, p := registered(t, "udp", nil, func(s *Server) { s.CatalogRefresh = -1 })
	info, err := ts.DeviceInfo(ctx5(t), testDevice)
	if err != nil || info.DeviceName != "河边摄像机" || info.Model != "T1" {
		t.Fatalf("device info %+v %v", info, err)
	}
	ch := p.channels[1].DeviceID
	cmd, _ := manscdp.NewPTZCmd(0.5, -1, 0)
	if err := ts.PTZ(ctx5(t), testDevice, ch, cmd); err != nil {
		t.Fatal(err)
	}
	if err := ts.KeyFrame(ctx5(t), testDevice, ch); err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.controls) != 2 || p.controls[0].PTZCmd == nil || *p.controls[0].PTZCmd != cmd || p.controls[0].DeviceID != ch ||
		p.controls[1].IFameCmd != "Send" || p.controls[1].DeviceID != ch {
		t.Fatalf("controls %+v", p.controls)
	}
}

func TestRequestOffline(t *testing.T) {
	ts := startServer(t, time.Minute)
	_, err := ts.Catalog(ctx5(t), testDevice)
	var re *RequestError
	if !errors.As(err, &re) || re.Kind != RequestOffline || !strings.Contains(err.Error(), testDevice) {
		t.Fatalf("catalog of an offline device: %v", err)
	}
	if err := ts.PTZ(ctx5(t), testDevice, testDevice, manscdp.PTZCmd{}); !errors.As(err, &re) || re.Kind != RequestOffline {
		t.Fatalf("PTZ of an offline device: %v", err)
	}
}

// TestAlarm: an alarm MESSAGE is answered 200, confirmed with an Alarm
// Response and reported; a catalog notify is reported as changes.
func TestAlarmAndCatalogNotify(t *testing.T) {
	h := &hooks{}
	_, p := registered(t, "udp", h, func(s *Server) { s.CatalogRefresh = -1 })
	at := manscdp.Time{Time: time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC)}
	alarm := &manscdp.Notify{Header: manscdp.Header{CmdType: manscdp.CmdAlarm, SN: 77, DeviceID: p.channels[0].DeviceID},
		AlarmPriority: "1", AlarmMethod: "5", AlarmTime: &at, AlarmDescription: "越线"}
	if code := p.send(alarm); code != 200 {
		t.Fatalf("alarm: %d", code)
	}
	testkit.WaitFor(t, 5*time.Second, "alarm response", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return len(p.responses) == 1
	})
	p.mu.Lock()
	r := p.responses[0]
	p.mu.Unlock()
	if r.CmdType != manscdp.CmdAlarm || r.SN != 77 || r.Result != manscdp.ResultOK || r.DeviceID != alarm.DeviceID {
		t.Fatalf("alarm response %+v", r)
	}
	testkit.WaitFor(t, 5*time.Second, "OnAlarm", func() bool {
		_, _, alarms := h.snapshot()
		return len(alarms) == 1
	})
	_, _, alarms := h.snapshot()
	if alarms[0].AlarmDescription != "越线" {
		t.Fatalf("alarms %+v", alarms)
	}

	one := 1
	change := &manscdp.Notify{Header: manscdp.Header{CmdType: manscdp.CmdCatalog, SN: 5, DeviceID: testDevice}, SumNum: &one,
		DeviceList: &manscdp.DeviceList{Num: 1, Items: []manscdp.Item{{DeviceID: p.channels[0].DeviceID, Event: manscdp.EventOff}}}}
	body, _ := manscdp.Encoder{}.Marshal(change)
	req := p.request("NOTIFY", string(body))
	req.AppendHeader(sip.NewHeader("Event", "Catalog"))
	req.AppendHeader(sip.NewHeader("Subscription-State", "active"))
	if code := p.do(req); code != 200 {
		t.Fatalf("catalog NOTIFY: %d", code)
	}
	// OnCatalog runs after the 200
	testkit.WaitFor(t, 5*time.Second, "OnCatalog", func() bool {
		_, cats, _ := h.snapshot()
		return len(cats) == 1
	})
	_, cats, _ := h.snapshot()
	if !CatalogChange(cats[0]) || cats[0][0].Event != manscdp.EventOff {
		t.Fatalf("catalog changes %+v", cats)
	}
}

// TestOnStateKeepalive: a registration refresh reports nothing new; three
// missed keepalives report offline once.
func TestOnStateKeepalive(t *testing.T) {
	h := &hooks{}
	ts := startServer(t, 200*time.Millisecond, h.install, func(s *Server) { s.CatalogRefresh = -1 })
	p := newPeer(t, testDevice, ts.udp, "udp")
	for range 2 {
		if code := p.register("secret1"); code != 200 {
			t.Fatal(code)
		}
	}
	testkit.WaitFor(t, 5*time.Second, "offline after missed keepalives", func() bool {
		states, _, _ := h.snapshot()
		return len(states) == 2
	})
	time.Sleep(300 * time.Millisecond) // nothing more is reported
	states, _, _ := h.snapshot()
	if len(states) != 2 || states[0] != testDevice+" online" || states[1] != testDevice+" offline" {
		t.Fatalf("OnState calls %v", states)
	}
	if st := ts.DeviceState(testDevice); st.LastError != "3 keepalives missed" {
		t.Fatalf("state %+v", st)
	}
}
