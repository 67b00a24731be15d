package gbsim

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/vigil-vms/vigil/gb28181/manscdp"
)

// subscription is an accepted catalog SUBSCRIBE: the dialog NOTIFYs are sent in.
type subscription struct {
	callID  string
	from    sip.FromHeader // the device's side (To of the SUBSCRIBE, with our tag)
	to      sip.ToHeader   // the platform's side (From of the SUBSCRIBE)
	target  sip.Uri        // the platform's Contact
	dest    string         // where the SUBSCRIBE came from
	expires time.Time
	cseq    uint32
}

// onMessage answers MANSCDP requests: queries get a 200 and then their
// response MESSAGE(s); controls get a 200 (PTZ, IFameCmd) and, for the
// controls the standard answers, a Response MESSAGE.
func (d *Device) onMessage(req *sip.Request, tx sip.ServerTransaction) {
	body := req.Body()
	msg, err := manscdp.Decode(body)
	if err != nil {
		if raw, ok := rawPTZCmd(body); ok {
			d.recordPTZ(PTZReceived{Raw: raw, Err: err})
		}
		d.log.Info("gbsim: bad MANSCDP body", "error", err)
		d.respond(req, tx, 400, "Bad Request")
		return
	}
	switch m := msg.(type) {
	case *manscdp.Query:
		switch m.CmdType {
		case manscdp.CmdCatalog, manscdp.CmdDeviceInfo, manscdp.CmdDeviceStatus:
			d.respond(req, tx, 200, "OK")
			d.spawn(func() { d.answerQuery(m) })
		default:
			d.respond(req, tx, 200, "OK")
		}
	case *manscdp.Control:
		d.respond(req, tx, 200, "OK")
		d.control(m, body)
	default:
		// responses to the device's alarms, notifications: acknowledged
		d.respond(req, tx, 200, "OK")
	}
}

// spawn runs f on a goroutine the device waits for on Close; once Close
// has begun waiting, f is not run and spawn returns false.
func (d *Device) spawn(f func()) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closing {
		return false
	}
	d.wg.Add(1)
	go func() { defer d.wg.Done(); f() }()
	return true
}

func (d *Device) answerQuery(q *manscdp.Query) {
	ctx, cancel := context.WithTimeout(d.ctx, 10*time.Second)
	defer cancel()
	var bodies [][]byte
	var err error
	enc := manscdp.Encoder{Fallback: true}
	switch q.CmdType {
	case manscdp.CmdCatalog:
		maxBytes := 0
		if d.transport == "UDP" {
			maxBytes = d.maxUDPBody()
		}
		bodies, err = enc.CatalogPages(q.SN, d.cfg.ID, d.catalogItems(""), d.cfg.CatalogPageItems, maxBytes)
	case manscdp.CmdDeviceInfo:
		n := len(d.Channels())
		var b []byte
		b, err = enc.Marshal(&manscdp.Response{
			Header:     manscdp.Header{CmdType: manscdp.CmdDeviceInfo, SN: q.SN, DeviceID: d.cfg.ID},
			Result:     manscdp.ResultOK,
			DeviceName: d.cfg.Name, Manufacturer: d.cfg.Manufacturer, Model: d.cfg.Model,
			Firmware: d.cfg.Firmware, Channel: &n,
		})
		bodies = [][]byte{b}
	case manscdp.CmdDeviceStatus:
		var b []byte
		b, err = enc.Marshal(&manscdp.Response{
			Header: manscdp.Header{CmdType: manscdp.CmdDeviceStatus, SN: q.SN, DeviceID: d.cfg.ID},
			Result: manscdp.ResultOK, Online: "ONLINE", Status: manscdp.ResultOK,
		})
		bodies = [][]byte{b}
	}
	if err != nil {
		d.log.Error("gbsim: encode response", "cmd", q.CmdType, "error", err)
		return
	}
	for _, b := range bodies {
		if err := d.message(ctx, b); err != nil {
			d.log.Info("gbsim: send response", "cmd", q.CmdType, "error", err)
			return
		}
	}
}

// catalogItems lists the channels as catalog items; with event set, each
// carries it (a catalog NOTIFY).
func (d *Device) catalogItems(event manscdp.Event) []manscdp.Item {
	chs := d.Channels()
	items := make([]manscdp.Item, len(chs))
	for i, ch := range chs {
		items[i] = d.item(ch, event)
	}
	return items
}

func (d *Device) item(ch Channel, event manscdp.Event) manscdp.Item {
	zero, one := 0, 1
	ptzType := 3
	if ch.PTZ {
		ptzType = 1
	}
	st := manscdp.StatusOn
	if ch.Off {
		st = manscdp.StatusOff
	}
	return manscdp.Item{
		DeviceID: ch.ID, Event: event, Name: ch.Name,
		Manufacturer: d.cfg.Manufacturer, Model: d.cfg.Model, Owner: "Owner",
		CivilCode: d.cfg.ID[:6], Address: "Address", Parental: &zero, ParentID: d.cfg.ID,
		SafetyWay: &zero, RegisterWay: &one, Secrecy: &zero, Status: st,
		Info: &manscdp.Info{PTZType: &ptzType},
	}
}

// control handles a DeviceControl already answered 200.
func (d *Device) control(m *manscdp.Control, body []byte) {
	if m.PTZCmd != nil {
		raw, _ := rawPTZCmd(body)
		r := PTZReceived{Channel: m.DeviceID, Raw: raw, Cmd: *m.PTZCmd}
		r.Pan, r.Tilt, r.Zoom, r.Err = m.PTZCmd.Speeds()
		d.recordPTZ(r)
	}
	if m.IFameCmd == "Send" {
		d.keyframe(m.DeviceID)
	}
	if m.TeleBoot != "" || m.RecordCmd != "" || m.GuardCmd != "" {
		// these controls are answered with a Response (A.2.6.2)
		sn, id := m.SN, m.DeviceID
		d.spawn(func() {
			b, err := manscdp.Encoder{}.Marshal(manscdp.ResultResponse(manscdp.CmdDeviceControl, sn, id, manscdp.ResultOK))
			if err != nil {
				d.log.Error("gbsim: encode control response", "error", err)
				return
			}
			ctx, cancel := context.WithTimeout(d.ctx, 10*time.Second)
			defer cancel()
			if err := d.message(ctx, b); err != nil {
				d.log.Info("gbsim: send control response", "error", err)
			}
		})
	}
}

func (d *Device) recordPTZ(r PTZReceived) {
	select {
	case d.ptz <- r:
	default:
		d.log.Info("gbsim: PTZ command dropped: nobody reads Device.PTZ", "raw", r.Raw)
	}
}

// rawPTZCmd returns the text of <PTZCmd> as received.
func rawPTZCmd(body []byte) (string, bool) {
	i := bytes.Index(body, []byte("<PTZCmd>"))
	if i < 0 {
		return "", false
	}
	rest := body[i+len("<PTZCmd>"):]
	j := bytes.Index(rest, []byte("</PTZCmd>"))
	if j < 0 || j > 64 {
		return "", false
	}
	return string(rest[:j]), true
}

// onSubscribe accepts (Config.CatalogSubscribe) or refuses a catalog subscription.
func (d *Device) onSubscribe(req *sip.Request, tx sip.ServerTransaction) {
	ev := req.GetHeader("Event")
	if !d.cfg.CatalogSubscribe || ev == nil || !strings.EqualFold(strings.TrimSpace(strings.SplitN(ev.Value(), ";", 2)[0]), "Catalog") {
		d.respond(req, tx, 489, "Bad Event")
		return
	}
	expires := 3600
	if h := req.GetHeader("Expires"); h != nil {
		n, err := strconv.Atoi(strings.TrimSpace(h.Value()))
		if err != nil || n < 0 {
			d.respond(req, tx, 400, "Bad Expires")
			return
		}
		expires = n
	}
	from, to := req.From(), req.To()
	if from == nil || to == nil || req.CallID() == nil {
		d.respond(req, tx, 400, "Bad Request")
		return
	}
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	rto := res.To()
	if _, ok := rto.Params.Get("tag"); !ok {
		if rto.Params == nil {
			rto.Params = sip.NewParams()
		}
		rto.Params.Add("tag", sip.GenerateTagN(16))
	}
	res.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(expires)))
	contact := d.contact()
	res.AppendHeader(&contact)
	var sub *subscription
	if expires > 0 {
		sub = &subscription{
			callID:  req.CallID().Value(),
			from:    rto.AsFrom(),
			to:      from.AsTo(),
			target:  from.Address,
			dest:    req.Source(),
			expires: time.Now().Add(time.Duration(expires) * time.Second),
			cseq:    1,
		}
		if c := req.Contact(); c != nil {
			sub.target = c.Address
		}
	}
	d.mu.Lock()
	d.sub = sub
	d.mu.Unlock()
	if err := tx.Respond(res); err != nil {
		d.log.Debug("gbsim respond to SUBSCRIBE", "error", err)
	}
}

// Subscribed reports whether a catalog subscription is active.
func (d *Device) Subscribed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.sub != nil && time.Now().Before(d.sub.expires)
}

// SetChannel adds a channel or changes an existing one (by ID) and, when a
// catalog subscription is active, NOTIFYs the change (ADD, ON, OFF or UPDATE).
func (d *Device) SetChannel(ctx context.Context, ch Channel) error {
	if !isCode(ch.ID) {
		return fmt.Errorf("gbsim: channel id %q is not 20 digits", ch.ID)
	}
	d.mu.Lock()
	event := manscdp.EventAdd
	found := false
	for i, old := range d.channels {
		if old.ID != ch.ID {
			continue
		}
		found = true
		if ch.Name == "" {
			ch.Name = old.Name
		}
		switch {
		case old.Off && !ch.Off:
			event = manscdp.EventOn
		case !old.Off && ch.Off:
			event = manscdp.EventOff
		default:
			event = manscdp.EventUpdate
		}
		d.channels[i] = ch
	}
	if !found {
		if ch.Name == "" {
			ch.Name = "Channel " + strconv.Itoa(len(d.channels)+1)
		}
		d.channels = append(d.channels, ch)
	}
	d.mu.Unlock()
	return d.notifyCatalog(ctx, d.item(ch, event))
}

// RemoveChannel removes a channel and NOTIFYs DEL to a subscriber.
func (d *Device) RemoveChannel(ctx context.Context, id string) error {
	d.mu.Lock()
	var gone *Channel
	for i, ch := range d.channels {
		if ch.ID == id {
			gone = &ch
			d.channels = append(d.channels[:i:i], d.channels[i+1:]...)
			break
		}
	}
	d.mu.Unlock()
	if gone == nil {
		return fmt.Errorf("gbsim: no channel %s", id)
	}
	return d.notifyCatalog(ctx, d.item(*gone, manscdp.EventDel))
}

func (d *Device) notifyCatalog(ctx context.Context, it manscdp.Item) error {
	d.mu.Lock()
	sub := d.sub
	if sub == nil || time.Now().After(sub.expires) {
		d.mu.Unlock()
		return nil
	}
	sub.cseq++
	seq := sub.cseq
	d.mu.Unlock()
	one := 1
	body, err := manscdp.Encoder{Fallback: true}.Marshal(&manscdp.Notify{
		Header:     manscdp.Header{CmdType: manscdp.CmdCatalog, SN: d.nextSN(), DeviceID: d.cfg.ID},
		SumNum:     &one,
		DeviceList: &manscdp.DeviceList{Num: 1, Items: []manscdp.Item{it}},
	})
	if err != nil {
		return err
	}
	req := sip.NewRequest(sip.NOTIFY, sub.target)
	from, to := sub.from, sub.to
	callID := sip.CallIDHeader(sub.callID)
	req.AppendHeader(&from)
	req.AppendHeader(&to)
	req.AppendHeader(&callID)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: seq, MethodName: sip.NOTIFY})
	req.AppendHeader(sip.NewHeader("Event", "Catalog"))
	left := int(time.Until(sub.expires) / time.Second)
	req.AppendHeader(sip.NewHeader("Subscription-State", "active;expires="+strconv.Itoa(max(left, 0))))
	req.AppendHeader(sip.NewHeader("Content-Type", "Application/MANSCDP+xml"))
	req.SetBody(body)
	req.SetTransport(d.transport)
	req.SetDestination(sub.dest)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, err := d.cli.Do(ctx, req)
	if err != nil {
		return fmt.Errorf("gbsim: catalog NOTIFY: %w", err)
	}
	if res.StatusCode != 200 {
		return &StatusError{Method: "NOTIFY", Code: int(res.StatusCode), Reason: res.Reason}
	}
	return nil
}

// SendAlarm sends an Alarm notification for channel (priority 1–4, method
// 1–7 as in GB/T 28181 A.2.5.3) stamped with the device's clock, and waits
// for the platform's 200.
func (d *Device) SendAlarm(ctx context.Context, channel string, priority, method int, desc string) error {
	if !isCode(channel) {
		return fmt.Errorf("gbsim: alarm channel %q is not 20 digits", channel)
	}
	if priority < 1 || priority > 4 {
		return fmt.Errorf("gbsim: alarm priority %d: want 1–4", priority)
	}
	if method < 1 || method > 7 {
		return fmt.Errorf("gbsim: alarm method %d: want 1–7", method)
	}
	at := manscdp.Time{Time: d.now()}
	body, err := manscdp.Encoder{Fallback: true}.Marshal(&manscdp.Notify{
		Header:           manscdp.Header{CmdType: manscdp.CmdAlarm, SN: d.nextSN(), DeviceID: channel},
		AlarmPriority:    strconv.Itoa(priority),
		AlarmMethod:      strconv.Itoa(method),
		AlarmTime:        &at,
		AlarmDescription: desc,
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return d.message(ctx, body)
}
