package sip

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// benchDevice is one simulated device on its own UDP socket, speaking raw
// SIP (prepared datagrams, so that the device side costs next to nothing
// next to the server).
type benchDevice struct {
	id   string
	conn *net.UDPConn
	n    int
	buf  []byte
}

func (d *benchDevice) roundTrip(msg string) (string, error) {
	if _, err := d.conn.Write([]byte(msg)); err != nil {
		return "", err
	}
	d.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		n, err := d.conn.Read(d.buf)
		if err != nil {
			return "", err
		}
		res := string(d.buf[:n])
		if strings.HasPrefix(res, "SIP/2.0 1") { // provisional
			continue
		}
		return res, nil
	}
}

func (d *benchDevice) request(method, server, extra, body string) string {
	d.n++
	local := d.conn.LocalAddr().String()
	return fmt.Sprintf("%s sip:%s@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;rport;branch=z9hG4bK%s%d\r\n"+
		"From: <sip:%s@%s>;tag=%d\r\nTo: <sip:%s@%s>\r\nCall-ID: %s-%d@bench\r\nCSeq: %d %s\r\nMax-Forwards: 70\r\n%s"+
		"Content-Length: %d\r\n\r\n%s",
		method, testPlatform, server, local, d.id, d.n, d.id, testRealm, d.n, d.id, testRealm, d.id, d.n, d.n, method, extra, len(body), body)
}

func (d *benchDevice) register(server string) error {
	res, err := d.roundTrip(d.request("REGISTER", server, "Expires: 3600\r\n", ""))
	if err != nil {
		return err
	}
	var chal string
	for _, l := range strings.Split(res, "\r\n") {
		if v, ok := strings.CutPrefix(l, "WWW-Authenticate: "); ok {
			chal = v
		}
	}
	c, err := digest.ParseChallenge(chal)
	if err != nil {
		return fmt.Errorf("challenge %q: %w", chal, err)
	}
	cred, err := digest.Digest(c, digest.Options{Method: "REGISTER", URI: "sip:" + server, Username: d.id, Password: "pw"})
	if err != nil {
		return err
	}
	res, err = d.roundTrip(d.request("REGISTER", server, "Expires: 3600\r\nAuthorization: "+cred.String()+"\r\n", ""))
	if err != nil {
		return err
	}
	if !strings.HasPrefix(res, "SIP/2.0 200") {
		return fmt.Errorf("register: %.40s", res)
	}
	return nil
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func heap() uint64 {
	var m runtime.MemStats
	for range 2 {
		runtime.GC()
	}
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// benchRegister starts a server and registers n devices to it; it returns
// the server's address, the devices and the heap the registrations added
// per device, measured settle after the last one.
func benchRegister(b *testing.B, n int, settle time.Duration) (*Server, string, []*benchDevice, float64) {
	s := &Server{Realm: testRealm, ID: testPlatform, Password: "pw", CatalogRefresh: -1,
		Lookup: func(id string) (string, bool, error) { return "", true, nil },
		Log:    slog.New(slog.NewTextHandler(io.Discard, nil))}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	server := pc.LocalAddr().String()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, pc, ln) }()
	b.Cleanup(func() { cancel(); <-served })

	devs := make([]*benchDevice, n)
	for i := range devs {
		c, err := net.DialUDP("udp", nil, pc.LocalAddr().(*net.UDPAddr))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		devs[i] = &benchDevice{id: fmt.Sprintf("440113000013200%05d", i), conn: c, buf: make([]byte, 4096)}
	}
	before := heap()
	parallel(b, devs, 16, func(d *benchDevice) error { return d.register(server) })
	time.Sleep(settle)
	after := heap()
	for _, d := range devs {
		if st := s.DeviceState(d.id); st.State != StateOnline {
			b.Fatalf("%s: %+v", d.id, st)
		}
	}
	return s, server, devs, float64(int64(after)-int64(before)) / float64(n)
}

// BenchmarkKeepalive1000 registers 1000 devices (digest, each from its own
// UDP socket on loopback) and then sends b.N keepalive MESSAGEs, spread
// over the devices, at a compressed interval (as fast as 8 senders get
// answers). It reports the process CPU time per keepalive (server plus the
// raw-socket senders, whose share is two system calls) and the heap the
// server holds per registered device (device sockets are opened before the
// first measurement; sipgo keeps each server transaction 32 s after its
// answer, Timer J, so the figure includes the two REGISTER transactions
// of each device; BenchmarkRegistered1000Steady measures without them).
//
//	go test -run '^$' -bench Keepalive1000 -benchtime 50000x ./gb28181/sip/
func BenchmarkKeepalive1000(b *testing.B) {
	const devices = 1000
	_, server, devs, perDevice := benchRegister(b, devices, 0)
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	var sent int
	for sent < b.N {
		n := min(devices, b.N-sent)
		parallel(b, devs[:n], 8, func(d *benchDevice) error {
			body := `<?xml version="1.0" encoding="GB2312"?>` + "\r\n<Notify>\r\n<CmdType>Keepalive</CmdType>\r\n<SN>" +
				fmt.Sprint(d.n) + "</SN>\r\n<DeviceID>" + d.id + "</DeviceID>\r\n<Status>OK</Status>\r\n</Notify>\r\n"
			res, err := d.roundTrip(d.request("MESSAGE", server, "Content-Type: Application/MANSCDP+xml\r\n", body))
			if err == nil && !strings.HasPrefix(res, "SIP/2.0 200") {
				err = fmt.Errorf("keepalive: %.60s", res)
			}
			return err
		})
		sent += n
	}
	cpu := cpuTime() - cpu0
	wall := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/keepalive")
	b.ReportMetric(float64(b.N)/wall.Seconds(), "keepalives/s")
	b.ReportMetric(perDevice, "heap-B/device")
	b.ReportMetric(float64(runtime.NumGoroutine()), "goroutines")
}

// parallel runs f for every device on workers goroutines.
func parallel(b *testing.B, devs []*benchDevice, workers int, f func(*benchDevice) error) {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  = make(chan *benchDevice)
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range next {
				if err := f(d); err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("%s: %w", d.id, err)
					}
					mu.Unlock()
				}
			}
		}()
	}
	for _, d := range devs {
		next <- d
	}
	close(next)
	wg.Wait()
	if first != nil {
		b.Fatal(first)
	}
}

// BenchmarkRegistered1000Steady reports the heap per registered device once
// sipgo has dropped the finished REGISTER transactions (which it keeps for
// Timer J after answering): the SIP timers are shortened for the run (T1
// 10 ms, so Timer J is 640 ms), 1000 devices register, and the heap is
// measured a second later.
//
//	go test -run '^$' -bench Registered1000Steady -benchtime 1x ./gb28181/sip/
func BenchmarkRegistered1000Steady(b *testing.B) {
	t1, t2, t4 := sip.T1, sip.T2, sip.T4
	sip.SetTimers(10*time.Millisecond, t2, t4)
	defer sip.SetTimers(t1, t2, t4)
	var perDevice float64
	for range b.N {
		_, _, _, perDevice = benchRegister(b, 1000, time.Second)
	}
	b.ReportMetric(perDevice, "heap-B/device")
}
