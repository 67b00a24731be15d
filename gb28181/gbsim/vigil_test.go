package gbsim

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/gb28181/manscdp"
	"github.com/vigil-vms/vigil/gb28181/media"
	"github.com/vigil-vms/vigil/gb28181/ps"
	gbsip "github.com/vigil-vms/vigil/gb28181/sip"
	"github.com/vigil-vms/vigil/internal/testkit"
)

// vigilSide is Vigil's own platform side: gb28181/sip and gb28181/media.
type vigilSide struct {
	sip       *gbsip.Server
	sipAddr   string // UDP
	sipTCP    string
	media     *media.Server
	mediaPort int
	catalogs  chan []manscdp.Item
	alarms    chan *manscdp.Notify
}

func startVigil(t *testing.T) *vigilSide {
	t.Helper()
	testkit.CheckLeaks(t)
	v := &vigilSide{catalogs: make(chan []manscdp.Item, 16), alarms: make(chan *manscdp.Notify, 16)}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	v.sip = &gbsip.Server{
		Realm: testRealm, ID: "44011300002000000001", Password: "secret1",
		Lookup:         func(id string) (string, bool, error) { return "", id == testDevice, nil },
		CatalogRefresh: -1,
		Log:            quiet,
		OnCatalog:      func(_ string, items []manscdp.Item) { v.catalogs <- items },
		OnAlarm:        func(_ string, a *manscdp.Notify) { v.alarms <- a },
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	v.sipAddr, v.sipTCP = pc.LocalAddr().String(), ln.Addr().String()
	testkit.Run(t, func(ctx context.Context) error { return v.sip.Serve(ctx, pc, ln) })

	// one media port number for UDP and TCP
	var mpc net.PacketConn
	var mln net.Listener
	for range 20 {
		mln, err = net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		v.mediaPort = mln.Addr().(*net.TCPAddr).Port
		if mpc, err = net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(v.mediaPort))); err == nil {
			break
		}
		mln.Close()
	}
	if mpc == nil {
		t.Fatal("no port free for both UDP and TCP")
	}
	v.media = &media.Server{Log: quiet}
	testkit.Run(t, func(ctx context.Context) error { return v.media.Serve(ctx, mpc, mln) })
	return v
}

// TestVigilPlatform: the device against Vigil's platform side — catalog,
// device info, PTZ, alarm, catalog subscription, and live video over UDP,
// TCP passive and TCP active received and demuxed by gb28181/media, with a
// keyframe on request.
func TestVigilPlatform(t *testing.T) {
	v := startVigil(t)
	d := startDevice(t, Config{Server: v.sipAddr, Password: "secret1", CatalogSubscribe: true,
		Channels: []Channel{{ID: testChan1, Name: "河道闸门", PTZ: true}, {ID: testChan2, Name: "大桥"}}})
	waitRegistered(t, d)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	items, err := v.sip.Catalog(ctx, testDevice)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 2 || items[0].DeviceID != testChan1 || items[1].DeviceID != testChan2 || items[0].Name != "河道闸门" {
		t.Fatalf("catalog %+v", items)
	}
	info, err := v.sip.DeviceInfo(ctx, testDevice)
	if err != nil || info.Channel == nil || *info.Channel != 2 {
		t.Fatalf("device info %+v %v", info, err)
	}
	cmd, _ := manscdp.NewPTZCmd(0, 0.5, 1)
	if err := v.sip.PTZ(ctx, testDevice, testChan1, cmd); err != nil {
		t.Fatal(err)
	}
	if r := <-d.PTZ(); r.Raw != cmd.String() || r.Channel != testChan1 {
		t.Fatalf("PTZ received %+v, sent %s", r, cmd)
	}
	if err := d.SendAlarm(ctx, testChan2, 2, 5, "tripwire"); err != nil {
		t.Fatal(err)
	}
	if a := <-v.alarms; a.DeviceID != testChan2 || a.AlarmDescription != "tripwire" {
		t.Fatalf("alarm %+v", a)
	}
	if _, err := v.sip.SubscribeCatalog(ctx, testDevice); err != nil {
		t.Fatal(err)
	}
	drain(v.catalogs)
	if err := d.SetChannel(ctx, Channel{ID: "44011300001310000003", Name: "Gate"}); err != nil {
		t.Fatal(err)
	}
	for {
		items := <-v.catalogs
		if gbsip.CatalogChange(items) {
			if items[0].DeviceID != "44011300001310000003" || items[0].Event != manscdp.EventAdd {
				t.Fatalf("catalog change %+v", items)
			}
			break
		}
	}

	for i, tr := range []string{TransportUDP, TransportTCPPassive, TransportTCPActive} {
		t.Run(tr, func(t *testing.T) {
			ssrc := "010000010" + strconv.Itoa(i)
			n, _ := strconv.ParseUint(ssrc, 10, 32)
			var units, keys atomic.Int64
			keyAfter := make(chan struct{})
			var once sync.Once
			var asked atomic.Bool
			rcv, err := v.media.Expect(uint32(n), "127.0.0.1", tr)
			if err != nil {
				t.Fatal(err)
			}
			defer rcv.Close()
			rcv.OnUnit = func(u *ps.Unit) {
				if u.Type != ps.TypeH264 {
					return
				}
				units.Add(1)
				if u.Keyframe {
					keys.Add(1)
					if asked.Load() {
						once.Do(func() { close(keyAfter) })
					}
				}
			}
			call, err := v.sip.Invite(ctx, gbsip.InviteRequest{Device: testDevice, Channel: testChan1, SSRC: ssrc, Transport: tr, MediaIP: "127.0.0.1", MediaPort: v.mediaPort})
			if err != nil {
				t.Fatal(err)
			}
			if tr == TransportTCPActive {
				a := call.Answer()
				if err := rcv.Dial(ctx, net.JoinHostPort(a.IP, strconv.Itoa(a.Port))); err != nil {
					t.Fatal(err)
				}
			}
			wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
			defer wcancel()
			if err := rcv.WaitStart(wctx); err != nil {
				t.Fatal(err)
			}
			testkit.WaitFor(t, 10*time.Second, "10 video units", func() bool { return units.Load() >= 10 })
			asked.Store(true)
			if err := v.sip.KeyFrame(ctx, testDevice, testChan1); err != nil {
				t.Fatal(err)
			}
			select {
			case <-keyAfter:
			case <-time.After(time.Second): // the clip's own keyframes are 2 s apart
				t.Fatal("no keyframe within 1 s of the IFameCmd")
			}
			if err := call.Bye(ctx); err != nil {
				t.Fatal(err)
			}
			testkit.WaitFor(t, 5*time.Second, "the device's session to end", func() bool { return len(d.Sessions()) == 0 })
		})
	}
}

func drain[T any](c chan T) {
	for {
		select {
		case <-c:
		default:
			return
		}
	}
}

// TestVigilPlatformFaults: Vigil's side names each fault of the device.
func TestVigilPlatformFaults(t *testing.T) {
	for _, c := range []struct {
		name   string
		faults Faults
		check  func(t *testing.T, rcv *media.Receiver, invErr, startErr error)
	}{
		{"RefuseInvite", Faults{RefuseInvite: 486}, func(t *testing.T, _ *media.Receiver, err, _ error) {
			var ie *gbsip.InviteError
			if !errors.As(err, &ie) || ie.Kind != gbsip.InviteRefused || ie.Code != 486 {
				t.Fatalf("invite error %v", err)
			}
		}},
		{"NoAnswer", Faults{NoAnswer: true}, func(t *testing.T, _ *media.Receiver, err, _ error) {
			var ie *gbsip.InviteError
			if !errors.As(err, &ie) || ie.Kind != gbsip.InviteNoAnswer {
				t.Fatalf("invite error %v", err)
			}
		}},
		{"BadSDP", Faults{BadSDP: true}, func(t *testing.T, _ *media.Receiver, err, _ error) {
			var ie *gbsip.InviteError
			if !errors.As(err, &ie) || ie.Kind != gbsip.InviteBadSDP {
				t.Fatalf("invite error %v", err)
			}
		}},
		{"NoRTP", Faults{NoRTP: true}, func(t *testing.T, _ *media.Receiver, err, start error) {
			var me *media.MediaError
			if err != nil || !errors.As(start, &me) || me.Kind != media.MediaNoRTP {
				t.Fatalf("invite %v, start %v", err, start)
			}
		}},
		{"WrongSSRC", Faults{WrongSSRC: true}, func(t *testing.T, _ *media.Receiver, err, start error) {
			var me *media.MediaError
			if err != nil || !errors.As(start, &me) || me.Kind != media.MediaWrongSSRC {
				t.Fatalf("invite %v, start %v", err, start)
			}
		}},
		{"NoPSM", Faults{NoPSM: true}, func(t *testing.T, rcv *media.Receiver, err, start error) {
			if err != nil || start != nil {
				t.Fatalf("invite %v, start %v", err, start)
			}
			select {
			case e := <-rcv.Err():
				if !errors.Is(e, ps.ErrNoPSM) {
					t.Fatalf("receiver error %v, want no PSM", e)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the receiver reported no missing PSM")
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := startVigil(t)
			d := startDevice(t, Config{Server: v.sipAddr, Password: "secret1", Faults: c.faults})
			waitRegistered(t, d)
			rcv, err := v.media.Expect(100000200, "127.0.0.1", TransportUDP)
			if err != nil {
				t.Fatal(err)
			}
			defer rcv.Close()
			rcv.OnUnit = func(*ps.Unit) {}
			call, invErr := v.sip.Invite(t.Context(), gbsip.InviteRequest{Device: testDevice, Channel: testChan1, SSRC: "0100000200", Transport: TransportUDP, MediaIP: "127.0.0.1", MediaPort: v.mediaPort})
			var startErr error
			if invErr == nil {
				ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
				startErr = rcv.WaitStart(ctx)
				cancel()
				defer call.Bye(context.Background())
			}
			c.check(t, rcv, invErr, startErr)
		})
	}
}

// TestVigilPlatformSIPOverTCP: with SIP over TCP, Vigil's requests and the
// device's BYE travel on the connection the device opened.
func TestVigilPlatformSIPOverTCP(t *testing.T) {
	v := startVigil(t)
	d := startDevice(t, Config{Server: v.sipTCP, Transport: "tcp", Password: "secret1"})
	waitRegistered(t, d)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if st := v.sip.DeviceState(testDevice); st.Transport != "tcp" {
		t.Fatalf("registrar state %+v", st)
	}
	items, err := v.sip.Catalog(ctx, testDevice)
	if err != nil || len(items) != 2 {
		t.Fatalf("catalog %+v %v", items, err)
	}
	var units atomic.Int64
	rcv, err := v.media.Expect(100000300, "127.0.0.1", TransportTCPPassive)
	if err != nil {
		t.Fatal(err)
	}
	defer rcv.Close()
	rcv.OnUnit = func(*ps.Unit) { units.Add(1) }
	call, err := v.sip.Invite(ctx, gbsip.InviteRequest{Device: testDevice, Channel: testChan2, SSRC: "0100000300", Transport: TransportTCPPassive, MediaIP: "127.0.0.1", MediaPort: v.mediaPort})
	if err != nil {
		t.Fatal(err)
	}
	if err := rcv.WaitStart(ctx); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "units", func() bool { return units.Load() >= 5 })
	if err := d.Hangup(ctx, testChan2); err != nil {
		t.Fatal(err)
	}
	select {
	case <-call.Done():
		if !call.HungUp() {
			t.Fatal("the call ended but not by the device")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Vigil did not see the device's BYE")
	}
}

// TestMidGOP: with MidGOP a stream starts between keyframes, as a real
// camera's does, and Vigil's IFameCmd gets a keyframe at once.
func TestMidGOP(t *testing.T) {
	v := startVigil(t)
	d := startDevice(t, Config{Server: v.sipAddr, Password: "secret1", MidGOP: true})
	waitRegistered(t, d)
	// invite about half a second into a GOP (keyframes every 2 s from d.started)
	if phase := time.Since(d.started) % (2 * time.Second); phase < 300*time.Millisecond || phase > 700*time.Millisecond {
		time.Sleep((2*time.Second - phase + 500*time.Millisecond) % (2 * time.Second))
	}
	var mu sync.Mutex
	var keys []bool
	rcv, err := v.media.Expect(100000400, "127.0.0.1", TransportUDP)
	if err != nil {
		t.Fatal(err)
	}
	defer rcv.Close()
	rcv.OnUnit = func(u *ps.Unit) {
		if u.Type.IsVideo() {
			mu.Lock()
			keys = append(keys, u.Keyframe)
			mu.Unlock()
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	call, err := v.sip.Invite(ctx, gbsip.InviteRequest{Device: testDevice, Channel: testChan1, SSRC: "0100000400", Transport: TransportUDP, MediaIP: "127.0.0.1", MediaPort: v.mediaPort})
	if err != nil {
		t.Fatal(err)
	}
	defer call.Bye(context.Background())
	if err := rcv.WaitStart(ctx); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 5*time.Second, "3 video units", func() bool { mu.Lock(); defer mu.Unlock(); return len(keys) >= 3 })
	mu.Lock()
	first := keys[0]
	mu.Unlock()
	if first {
		t.Fatal("the stream started with a keyframe")
	}
	if err := v.sip.KeyFrame(ctx, testDevice, testChan1); err != nil {
		t.Fatal(err)
	}
	asked := time.Now()
	testkit.WaitFor(t, 5*time.Second, "a keyframe", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Contains(keys, true)
	})
	// the clip's own next keyframe is about 1.4 s or more after the request
	if waited := time.Since(asked); waited > 1200*time.Millisecond {
		t.Fatalf("the keyframe came %v after the IFameCmd", waited)
	}
}
