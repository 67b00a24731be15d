package upstream

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/vigil-vms/vigil/gb28181/manscdp"
)

// subscription is an upper platform's catalog subscription: Vigil sends
// a NOTIFY with the changes (cameras added to or removed from what the
// platform sees, cameras going offline or coming back) within
// Service.CatalogPoll of each.
type subscription struct {
	p        *platform
	callID   string
	ourTag   string
	theirTag string
	them     sip.Uri // their From
	target   sip.Uri // their Contact
	cs       manscdp.Charset
	cseq     atomic.Uint32
	cancel   context.CancelFunc
}

// maxSubscribe caps a subscription's lifetime.
const maxSubscribe = 24 * time.Hour

func (s *Service) onSubscribe(req *sip.Request, tx sip.ServerTransaction) {
	p := s.from(req)
	if p == nil {
		respond(req, tx, 403, "Forbidden")
		return
	}
	if ev := req.GetHeader("Event"); ev == nil || !strings.HasPrefix(strings.ToLower(strings.TrimSpace(ev.Value())), "catalog") {
		respond(req, tx, 489, "Bad Event")
		return
	}
	cs := manscdp.GB2312
	if len(req.Body()) > 0 {
		_, c, err := manscdp.DecodeCharset(req.Body())
		if err != nil {
			respond(req, tx, 400, "Bad Request")
			return
		}
		cs = c
	}
	expires := time.Hour
	if e := req.GetHeader("Expires"); e != nil {
		n, err := strconv.Atoi(strings.TrimSpace(e.Value()))
		if err != nil || n < 0 {
			respond(req, tx, 400, "Bad Expires")
			return
		}
		expires = min(time.Duration(n)*time.Second, maxSubscribe)
	}
	callID := req.CallID().Value()
	s.mu.Lock()
	old := s.subs[callID]
	s.mu.Unlock()
	sub := old
	if sub == nil {
		sub = &subscription{p: p, callID: callID, ourTag: sip.GenerateTagN(16), cs: cs}
		sub.them = req.From().Address
		sub.theirTag, _ = req.From().Params.Get("tag")
		sub.target = sub.them
		if c := req.Contact(); c != nil {
			sub.target = c.Address
		}
		sub.cseq.Store(1)
	}
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	if to := res.To(); to != nil {
		to.Params.Remove("tag")
		to.Params.Add("tag", sub.ourTag)
	}
	res.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(int(expires/time.Second))))
	res.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: p.cfg.LocalID, Host: s.localHost(p), Port: s.localPort(p)}})
	_ = tx.Respond(res)
	if old != nil {
		old.cancel() // a refresh (or an unsubscribe) replaces the watch
	}
	if expires == 0 {
		s.mu.Lock()
		delete(s.subs, callID)
		s.mu.Unlock()
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, expires)
	sub.cancel = cancel
	s.mu.Lock()
	s.subs[callID] = sub
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer cancel()
		s.watchCatalog(ctx, sub, old == nil)
		s.mu.Lock()
		if s.subs[callID] == sub && ctx.Err() == context.DeadlineExceeded {
			delete(s.subs, callID)
		}
		s.mu.Unlock()
	}()
}

// watchCatalog sends the changes of the platform's catalog as NOTIFYs
// until ctx ends.
func (s *Service) watchCatalog(ctx context.Context, sub *subscription, first bool) {
	known, err := s.snapshot(ctx, sub.p)
	if err != nil {
		s.Log.Error("gb28181 upstream: catalog subscription", "platform", sub.p.cfg.ID, "error", err)
		return
	}
	t := time.NewTicker(s.CatalogPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now, err := s.snapshot(ctx, sub.p)
		if err != nil {
			continue
		}
		items := s.changes(known, now)
		if len(items) == 0 {
			continue
		}
		if err := s.notify(ctx, sub, items); err != nil {
			s.Log.Info("gb28181 upstream: catalog notify not taken", "platform", sub.p.cfg.ID, "error", err)
			continue // sent again with the next change
		}
		known = now
	}
}

// snapshot is what the platform sees: each shared camera's item.
func (s *Service) snapshot(ctx context.Context, p *platform) (map[string]manscdp.Item, error) {
	chs, err := s.shared(ctx, p)
	if err != nil {
		return nil, err
	}
	bg := s.Channels.BusinessGroup()
	out := make(map[string]manscdp.Item, len(chs))
	for _, ch := range chs {
		org, err := s.Channels.Department(ctx, ch.Cam.Department)
		if err != nil {
			return nil, err
		}
		out[ch.ID] = s.cameraItem(ch, org, bg)
	}
	return out, nil
}

// changes lists the catalog notify items from before to now, in ID order.
func (s *Service) changes(before, now map[string]manscdp.Item) []manscdp.Item {
	var out []manscdp.Item
	for id, it := range now {
		old, ok := before[id]
		switch {
		case !ok:
			it.Event = manscdp.EventAdd
			out = append(out, it)
		case old.Status != it.Status:
			ev := manscdp.EventOn
			if it.Status == manscdp.StatusOff {
				ev = manscdp.EventOff
			}
			out = append(out, manscdp.Item{DeviceID: id, Event: ev})
		case old.Name != it.Name || old.ParentID != it.ParentID || old.Address != it.Address:
			it.Event = manscdp.EventUpdate
			out = append(out, it)
		}
	}
	for id := range before {
		if _, ok := now[id]; !ok {
			out = append(out, manscdp.Item{DeviceID: id, Event: manscdp.EventDel})
		}
	}
	slices.SortFunc(out, func(a, b manscdp.Item) int { return cmpStr(a.DeviceID, b.DeviceID) })
	return out
}

// notify sends the changes as catalog NOTIFYs in the subscription's
// dialog: one, or over UDP as many as it takes for each to fit a datagram
// (sipgo refuses larger ones; see maxUDPBody), each with its own SumNum.
func (s *Service) notify(ctx context.Context, sub *subscription, items []manscdp.Item) error {
	n := len(items)
	body, err := manscdp.Encoder{Charset: sub.cs, Fallback: true}.Marshal(&manscdp.Notify{
		Header: manscdp.Header{CmdType: manscdp.CmdCatalog, SN: s.nextSN(), DeviceID: sub.p.cfg.LocalID},
		SumNum: &n, DeviceList: &manscdp.DeviceList{Num: n, Items: items}})
	if err != nil {
		return err
	}
	p := sub.p
	// a NOTIFY's head is a MESSAGE's and its dialog's headers (From/To
	// tags, Event, Subscription-State): notifyHead bytes more
	const notifyHead = 200
	if n > 1 && s.transport(p) == "UDP" && len(body) > s.maxUDPBody(p)-notifyHead {
		if err := s.notify(ctx, sub, items[:n/2]); err != nil {
			return err
		}
		return s.notify(ctx, sub, items[n/2:])
	}
	req := s.newRequest(sip.NOTIFY, p, p.cfg.ID)
	req.Recipient = sub.target
	if sub.target.Host != "" && sub.target.Port != 0 {
		req.SetDestination(sub.target.HostPort())
	}
	req.RemoveHeader("From")
	req.RemoveHeader("To")
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: p.cfg.LocalID, Host: localRealm(p, s)}, Params: sip.NewParams()}
	from.Params.Add("tag", sub.ourTag)
	to := &sip.ToHeader{Address: sub.them, Params: sip.NewParams()}
	if sub.theirTag != "" {
		to.Params.Add("tag", sub.theirTag)
	}
	req.AppendHeader(from)
	req.AppendHeader(to)
	cid := sip.CallIDHeader(sub.callID)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: sub.cseq.Add(1), MethodName: sip.NOTIFY})
	req.AppendHeader(sip.NewHeader("Event", "Catalog"))
	req.AppendHeader(sip.NewHeader("Subscription-State", "active"))
	req.AppendHeader(sip.NewHeader("Content-Type", "Application/MANSCDP+xml"))
	req.SetBody(body)
	res, err := s.do(ctx, p, req)
	if err != nil {
		return err
	}
	if !res.IsSuccess() {
		return &RequestError{Platform: p.cfg.ID, Method: "NOTIFY", Code: res.StatusCode, Msg: res.Reason}
	}
	return nil
}
