package gbsim

import (
	"math"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/vigil-vms/vigil/gb28181/manscdp"
	"github.com/vigil-vms/vigil/internal/testkit"
)

// platformDevice starts a device registered to a testPlatform whose Date is
// 8 hours ahead of the machine's clock.
func platformDevice(t *testing.T, cfg Config) (*Device, *testPlatform) {
	t.Helper()
	p := newPlatform(t, time.Now().Add(8*time.Hour))
	cfg.Server = p.addr
	d := startDevice(t, cfg)
	waitRegistered(t, d)
	return d, p
}

// TestClockFromDate: the device takes the platform's Date as its clock and
// stamps alarms with it; the platform gets the Alarm NOTIFY MESSAGE.
func TestClockFromDate(t *testing.T) {
	d, p := platformDevice(t, Config{})
	off, ok := d.ClockOffset()
	if !ok || math.Abs((off-8*time.Hour).Seconds()) > 5 {
		t.Fatalf("clock offset %v (%v), want about 8h from Date %q", off, ok, d.DateHeader())
	}
	if err := d.SendAlarm(t.Context(), testChan1, 1, 5, "motion"); err != nil {
		t.Fatal(err)
	}
	for {
		m := p.next(t)
		n, ok := m.(*manscdp.Notify)
		if !ok || n.CmdType != manscdp.CmdAlarm {
			continue
		}
		if n.DeviceID != testChan1 || n.AlarmPriority != "1" || n.AlarmMethod != "5" || n.AlarmDescription != "motion" {
			t.Fatalf("alarm %+v", n)
		}
		want := time.Now().Add(8 * time.Hour)
		// manscdp decodes the wall clock as UTC; compare wall clocks
		got := time.Date(n.AlarmTime.Year(), n.AlarmTime.Month(), n.AlarmTime.Day(), n.AlarmTime.Hour(), n.AlarmTime.Minute(), n.AlarmTime.Second(), 0, time.Local)
		if d := got.Sub(want); d < -5*time.Second || d > 5*time.Second {
			t.Fatalf("AlarmTime %v, want about %v", got, want)
		}
		return
	}
}

// TestCatalogPaged: 25 channels are answered in pages of 10, 10 and 5, each
// with SumNum 25; DeviceInfo names the device and its channel count.
func TestCatalogPaged(t *testing.T) {
	var chs []Channel
	for i := range 25 {
		chs = append(chs, Channel{ID: "4401130000131" + pad7(i+1), PTZ: i == 0})
	}
	d, p := platformDevice(t, Config{Channels: chs, CatalogPageItems: 10})
	if code := p.request(t, d.SIPAddr(), sip.MESSAGE, manscdp.CatalogQuery(7, testDevice)); code != 200 {
		t.Fatalf("catalog query answered %d", code)
	}
	seen := map[string]bool{}
	var nums []int
	for len(seen) < 25 {
		r, ok := p.next(t).(*manscdp.Response)
		if !ok || r.CmdType != manscdp.CmdCatalog {
			continue
		}
		if r.SN != 7 || r.SumNum != 25 || r.DeviceID != testDevice || r.DeviceList == nil {
			t.Fatalf("catalog page %+v", r)
		}
		nums = append(nums, r.DeviceList.Num)
		for _, it := range r.DeviceList.Items {
			if it.ParentID != testDevice || it.Status != manscdp.StatusOn {
				t.Fatalf("item %+v", it)
			}
			if ptz := *it.Info.PTZType; (it.DeviceID == chs[0].ID) != (ptz == 1) {
				t.Fatalf("item %s PTZType %d", it.DeviceID, ptz)
			}
			seen[it.DeviceID] = true
		}
	}
	// over UDP a page also has to fit sipgo's datagram limit
	if len(nums) < 3 || slices.Max(nums) > 10 {
		t.Fatalf("pages of %v items, want at least 3 pages of at most 10", nums)
	}

	if code := p.request(t, d.SIPAddr(), sip.MESSAGE, manscdp.DeviceInfoQuery(8, testDevice)); code != 200 {
		t.Fatalf("device info query answered %d", code)
	}
	for {
		r, ok := p.next(t).(*manscdp.Response)
		if !ok || r.CmdType != manscdp.CmdDeviceInfo {
			continue
		}
		if r.SN != 8 || r.Result != manscdp.ResultOK || r.Manufacturer != "Vigil" || r.Channel == nil || *r.Channel != 25 {
			t.Fatalf("device info %+v", r)
		}
		break
	}
}

func pad7(n int) string {
	s := strconv.Itoa(n)
	for len(s) < 7 {
		s = "0" + s
	}
	return s
}

// TestPTZ: a DeviceControl PTZCmd is recorded raw and parsed, answered 200.
func TestPTZ(t *testing.T) {
	d, p := platformDevice(t, Config{})
	cmd, err := manscdp.NewPTZCmd(0.5, -1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if code := p.request(t, d.SIPAddr(), sip.MESSAGE, manscdp.PTZControl(3, testChan1, cmd)); code != 200 {
		t.Fatalf("PTZ control answered %d", code)
	}
	select {
	case r := <-d.PTZ():
		if r.Channel != testChan1 || r.Raw != cmd.String() || r.Cmd != cmd || r.Err != nil {
			t.Fatalf("PTZ received %+v, want %s", r, cmd)
		}
		if math.Abs(r.Pan-0.5) > 0.01 || r.Tilt != -1 || r.Zoom != 0 {
			t.Fatalf("PTZ speeds %v %v %v", r.Pan, r.Tilt, r.Zoom)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no PTZ recorded")
	}
	// a body that is not MANSCDP is refused with 400
	if code := p.request(t, d.SIPAddr(), sip.MESSAGE, nil); code != 400 {
		t.Fatalf("empty MESSAGE answered %d, want 400", code)
	}
}

// TestCatalogSubscribe: an accepting device answers SUBSCRIBE 200 and
// NOTIFYs a channel going off; a refusing one answers 489.
func TestCatalogSubscribe(t *testing.T) {
	ev := sip.NewHeader("Event", "Catalog")
	exp := sip.NewHeader("Expires", "3600")
	q := manscdp.CatalogQuery(9, testDevice)

	refusing, p1 := platformDevice(t, Config{})
	if code := p1.request(t, refusing.SIPAddr(), sip.SUBSCRIBE, q, ev, exp); code != 489 {
		t.Fatalf("SUBSCRIBE to a refusing device answered %d, want 489", code)
	}

	d, p := platformDevice(t, Config{CatalogSubscribe: true})
	if code := p.request(t, d.SIPAddr(), sip.SUBSCRIBE, q, ev, exp); code != 200 {
		t.Fatalf("SUBSCRIBE answered %d", code)
	}
	if !d.Subscribed() {
		t.Fatal("not subscribed after 200")
	}
	if err := d.SetChannel(t.Context(), Channel{ID: testChan2, Off: true}); err != nil {
		t.Fatal(err)
	}
	for {
		n, ok := p.next(t).(*manscdp.Notify)
		if !ok || n.CmdType != manscdp.CmdCatalog {
			continue
		}
		if n.DeviceList == nil || len(n.DeviceList.Items) != 1 || n.DeviceList.Items[0].DeviceID != testChan2 || n.DeviceList.Items[0].Event != manscdp.EventOff {
			t.Fatalf("catalog notify %+v", n)
		}
		break
	}
	testkit.WaitFor(t, time.Second, "channel off", func() bool { return d.Channels()[1].Off })
}
