package gbsim

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/vigil-vms/vigil/gb28181/manscdp"
)

// DateFormat is the GB/T 28181 form of the Date header in the 200 to a
// REGISTER: local time with milliseconds and no zone. RFC 1123 dates are
// accepted too.
const DateFormat = "2006-01-02T15:04:05.000"

// StatusError is a final SIP response other than the one expected.
type StatusError struct {
	Method string
	Code   int
	Reason string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s answered %d %s", e.Method, e.Code, e.Reason)
}

// maxBackoff caps the wait between failed registrations.
const maxBackoff = 30 * time.Second

// run registers, keeps the registration alive with keepalives and refreshes,
// and registers again when the platform forgets the device.
func (d *Device) run() {
	backoff := time.Second
	for {
		granted, err := d.register(d.ctx, d.cfg.Expires)
		if d.ctx.Err() != nil {
			return
		}
		if err != nil {
			d.log.Warn("gbsim register failed", "server", d.cfg.Server, "error", err)
			if !d.sleep(backoff) {
				return
			}
			backoff = min(backoff*2, maxBackoff)
			continue
		}
		backoff = time.Second
		d.regOnce.Do(func() { close(d.registered) })
		if !d.keepAlive(granted) {
			return
		}
	}
}

func (d *Device) sleep(t time.Duration) bool {
	tm := time.NewTimer(t)
	defer tm.Stop()
	select {
	case <-d.ctx.Done():
		return false
	case <-tm.C:
		return true
	}
}

// keepAlive sends keepalives until the registration is due for refresh (80 %
// of granted) or three keepalives in a row failed; it returns false when the
// device is closing.
func (d *Device) keepAlive(granted time.Duration) bool {
	refresh := time.NewTimer(max(granted*8/10, time.Second))
	defer refresh.Stop()
	tick := time.NewTicker(d.cfg.Keepalive)
	defer tick.Stop()
	failed := 0
	for {
		select {
		case <-d.ctx.Done():
			return false
		case <-refresh.C:
			return true
		case <-tick.C:
			if d.Faults().NoKeepalive {
				continue
			}
			err := d.keepalive(d.ctx)
			if err == nil {
				failed = 0
				continue
			}
			if d.ctx.Err() != nil {
				return false
			}
			failed++
			d.log.Info("gbsim keepalive failed", "error", err, "failed", failed)
			var se *StatusError
			if failed >= 3 || errors.As(err, &se) && se.Code == 403 {
				return true // register again
			}
		}
	}
}

func (d *Device) keepalive(ctx context.Context) error {
	body, err := manscdp.Encoder{}.Marshal(manscdp.KeepaliveNotify(d.nextSN(), d.cfg.ID))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := d.message(ctx, body); err != nil {
		return err
	}
	d.mu.Lock()
	d.keepalives++
	d.mu.Unlock()
	return nil
}

// register sends a REGISTER asking for expires (0 unregisters), answers a 401
// challenge with MD5 digest (qop=auth when offered), and returns the lifetime
// the platform granted.
func (d *Device) register(ctx context.Context, expires time.Duration) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	d.mu.Lock()
	d.regCSeq++
	seq := d.regCSeq
	d.mu.Unlock()

	req := sip.NewRequest(sip.REGISTER, d.recipient)
	from := &sip.FromHeader{Address: d.selfURI(), Params: sip.NewParams()}
	from.Params.Add("tag", d.fromTag)
	to := &sip.ToHeader{Address: d.selfURI()}
	callID := sip.CallIDHeader(d.regCallID)
	contact := d.contact()
	req.AppendHeader(from)
	req.AppendHeader(to)
	req.AppendHeader(&callID)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: seq, MethodName: sip.REGISTER})
	req.AppendHeader(&contact)
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(int(expires/time.Second))))
	req.SetTransport(d.transport)
	req.SetDestination(d.cfg.Server)

	res, err := d.cli.Do(ctx, req)
	if err != nil {
		return 0, fmt.Errorf("register to %s: %w", d.cfg.Server, err)
	}
	if res.StatusCode == 401 || res.StatusCode == 407 {
		res, err = d.cli.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: d.cfg.ID, Password: d.cfg.Password})
		if err != nil {
			return 0, fmt.Errorf("register to %s with digest: %w", d.cfg.Server, err)
		}
		d.mu.Lock()
		d.regCSeq = max(d.regCSeq, req.CSeq().SeqNo)
		d.mu.Unlock()
	}
	if res.StatusCode != 200 {
		return 0, &StatusError{Method: "REGISTER", Code: int(res.StatusCode), Reason: res.Reason}
	}
	granted := expires
	if h := res.GetHeader("Expires"); h != nil {
		if n, err := strconv.Atoi(strings.TrimSpace(h.Value())); err == nil && n >= 0 {
			granted = time.Duration(n) * time.Second
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if h := res.GetHeader("Date"); h != nil {
		d.dateHeader = h.Value()
		if t, ok := parseDate(h.Value()); ok {
			d.offset = time.Until(t)
			d.haveOffset = true
		}
	}
	if expires == 0 {
		d.isRegistered = false
		return 0, nil
	}
	d.isRegistered = true
	d.regCount++
	return granted, nil
}

// parseDate reads a GB/T 28181 Date (local time, DateFormat, optionally
// without milliseconds) or an RFC 1123 one.
func parseDate(v string) (time.Time, bool) {
	v = strings.TrimSpace(v)
	for _, layout := range []string{DateFormat, manscdp.TimeLayout} {
		if t, err := time.ParseInLocation(layout, v, time.Local); err == nil {
			return t, true
		}
	}
	if t, err := http.ParseTime(v); err == nil {
		return t, true
	}
	return time.Time{}, false
}

func (d *Device) selfURI() sip.Uri {
	return sip.Uri{Scheme: "sip", User: d.cfg.ID, Host: d.cfg.Realm}
}

// maxUDPBody is the largest MESSAGE body sipgo sends over UDP: it refuses a
// datagram over sip.UDPMTUSize−200 bytes, so a catalog page over UDP holds
// what fits beside the request's headers (Via, tags and Call-ID included).
func (d *Device) maxUDPBody() int {
	req := d.messageRequest(nil)
	req.AppendHeader(sip.NewHeader("Via", "SIP/2.0/UDP "+d.sipAddr+";rport;branch=z9hG4bK.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"))
	req.AppendHeader(sip.NewHeader("Call-ID", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"))
	req.AppendHeader(sip.NewHeader("CSeq", "2147483647 MESSAGE"))
	req.AppendHeader(sip.NewHeader("Max-Forwards", "70"))
	req.AppendHeader(sip.NewHeader("Content-Length", "65535"))
	return sip.UDPMTUSize - 200 - len(req.String()) - 64
}

// message sends a MANSCDP MESSAGE to the platform and waits for its 200.
func (d *Device) message(ctx context.Context, body []byte) error {
	req := d.messageRequest(body)
	res, err := d.cli.Do(ctx, req)
	if err != nil {
		return fmt.Errorf("MESSAGE to %s: %w", d.cfg.Server, err)
	}
	if res.StatusCode != 200 {
		return &StatusError{Method: "MESSAGE", Code: int(res.StatusCode), Reason: res.Reason}
	}
	return nil
}

func (d *Device) messageRequest(body []byte) *sip.Request {
	req := sip.NewRequest(sip.MESSAGE, d.recipient)
	from := &sip.FromHeader{Address: d.selfURI(), Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	to := &sip.ToHeader{Address: d.recipient}
	req.AppendHeader(from)
	req.AppendHeader(to)
	req.AppendHeader(sip.NewHeader("Content-Type", "Application/MANSCDP+xml"))
	req.SetBody(body)
	req.SetTransport(d.transport)
	req.SetDestination(d.cfg.Server)
	return req
}
