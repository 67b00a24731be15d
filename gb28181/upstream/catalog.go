package upstream

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/vigil-vms/vigil/gb28181/manscdp"
	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/registry"
)

// channel is one camera as an upper platform sees it.
type channel struct {
	ID  string // 20-digit channel ID
	Cam ingest.Camera
}

// shared returns the cameras a platform sees (enabled cameras of its
// departments), with their channel IDs, in department then camera order.
func (s *Service) shared(ctx context.Context, p *platform) ([]channel, error) {
	cams, err := s.Cameras(ctx)
	if err != nil {
		return nil, err
	}
	var out []channel
	for _, c := range cams {
		if !c.Enabled || !slices.Contains(p.cfg.Departments, c.Department) {
			continue
		}
		id, err := s.channelID(ctx, c)
		if err != nil {
			return nil, err
		}
		out = append(out, channel{ID: id, Cam: c})
	}
	slices.SortFunc(out, func(a, b channel) int {
		if a.Cam.Department != b.Cam.Department {
			return cmpStr(a.Cam.Department, b.Cam.Department)
		}
		return cmpStr(a.Cam.ID, b.Cam.ID)
	})
	return out, nil
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// channelID is a GB/T 28181 camera's own channel ID, or the one Channels
// keeps for the camera.
func (s *Service) channelID(ctx context.Context, c ingest.Camera) (string, error) {
	if c.Source == ingest.SourceGB28181 && c.GB28181 != nil && len(c.GB28181.Channel) == 20 {
		return c.GB28181.Channel, nil
	}
	return s.Channels.Camera(ctx, c.ID)
}

// find returns the shared camera with channel ID id.
func (s *Service) find(ctx context.Context, p *platform, id string) (channel, bool, error) {
	chs, err := s.shared(ctx, p)
	if err != nil {
		return channel{}, false, err
	}
	for _, ch := range chs {
		if ch.ID == id {
			return ch, true, nil
		}
	}
	return channel{}, false, nil
}

// civilCode is the 6-digit administrative division code the realm starts with.
func (s *Service) civilCode() string {
	if len(s.Realm) >= 6 {
		return s.Realm[:6]
	}
	return s.Realm
}

func (s *Service) online(id string) bool {
	return s.Online == nil || s.Online(id)
}

// catalog is the platform's catalog: the business group, one virtual
// organisation per shared department, and the cameras under them.
func (s *Service) catalog(ctx context.Context, p *platform) ([]manscdp.Item, error) {
	chs, err := s.shared(ctx, p)
	if err != nil {
		return nil, err
	}
	bg := s.Channels.BusinessGroup()
	root, err := manscdp.BusinessGroupItem(bg, "Vigil "+s.ID)
	if err != nil {
		return nil, err
	}
	root.CivilCode = s.civilCode()
	items := []manscdp.Item{root}
	orgs := map[string]string{}
	for _, d := range p.cfg.Departments {
		id, err := s.Channels.Department(ctx, d)
		if err != nil {
			return nil, err
		}
		name := d
		if s.DepartmentName != nil {
			name = s.DepartmentName(ctx, d)
		}
		it, err := manscdp.VirtualOrgItem(id, name, bg, bg)
		if err != nil {
			return nil, err
		}
		it.CivilCode = s.civilCode()
		items = append(items, it)
		orgs[d] = id
	}
	for _, ch := range chs {
		items = append(items, s.cameraItem(ch, orgs[ch.Cam.Department], bg))
	}
	return items, nil
}

func (s *Service) cameraItem(ch channel, org, bg string) manscdp.Item {
	zero, one := 0, 1
	ptzType := 3 // fixed
	if ch.Cam.GB28181 != nil && ch.Cam.GB28181.PTZ {
		ptzType = 1
	}
	status := manscdp.StatusOn
	if !s.online(ch.Cam.ID) {
		status = manscdp.StatusOff
	}
	return manscdp.Item{
		DeviceID: ch.ID, Name: ch.Cam.Name, Manufacturer: "Vigil", Model: "Camera", Owner: "Owner",
		CivilCode: s.civilCode(), Address: ch.Cam.Location.Address, Parental: &zero,
		ParentID: org, BusinessGroupID: bg, SafetyWay: &zero, RegisterWay: &one, Secrecy: &zero,
		Status: status, Longitude: ch.Cam.Location.Lng, Latitude: ch.Cam.Location.Lat,
		Info: &manscdp.Info{PTZType: &ptzType},
	}
}

// answerCatalog sends the catalog as paged Response MESSAGEs, in the
// charset of the query.
func (s *Service) answerCatalog(ctx context.Context, p *platform, q *manscdp.Query, cs manscdp.Charset) {
	items, err := s.catalog(ctx, p)
	if err != nil {
		s.Log.Error("gb28181 upstream: catalog", "platform", p.cfg.ID, "error", err)
		return
	}
	maxBytes := 0
	if s.transport(p) == "UDP" {
		maxBytes = s.maxUDPBody(p)
	}
	pages, err := manscdp.Encoder{Charset: cs, Fallback: true}.CatalogPages(q.SN, p.cfg.LocalID, items, 0, maxBytes)
	if err != nil {
		s.Log.Error("gb28181 upstream: catalog", "platform", p.cfg.ID, "error", err)
		return
	}
	for i, b := range pages {
		if err := s.message(ctx, p, b); err != nil {
			s.Log.Warn("gb28181 upstream: catalog page not taken", "platform", p.cfg.ID, "page", i+1, "pages", len(pages), "error", err)
			return
		}
	}
	s.Log.Debug("gb28181 upstream: catalog sent", "platform", p.cfg.ID, "items", len(items), "pages", len(pages))
}

// maxUDPBody is the largest body a MESSAGE over UDP may carry: sipgo
// refuses datagrams over sip.UDPMTUSize-200 bytes (RFC 3261 18.1.1 would
// switch to TCP), so a catalog over UDP is paged to fit (GB/T 28181 allows
// any page size: SumNum tells the total).
func (s *Service) maxUDPBody(p *platform) int {
	req := s.newRequest(sip.MESSAGE, p, p.cfg.ID)
	cid := sip.CallIDHeader(sip.GenerateTagN(36))
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: 1 << 30, MethodName: sip.MESSAGE})
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	req.AppendHeader(sip.NewHeader("Content-Type", "Application/MANSCDP+xml"))
	req.AppendHeader(sip.NewHeader("User-Agent", "Vigil"))
	head := len(req.String()) + 32 // Content-Length, received/rport added on the way
	return min(manscdp.MaxUDPBody, sip.UDPMTUSize-200-head)
}

func (s *Service) answerDeviceInfo(ctx context.Context, p *platform, q *manscdp.Query, cs manscdp.Charset) {
	chs, err := s.shared(ctx, p)
	if err != nil {
		s.Log.Error("gb28181 upstream: device info", "platform", p.cfg.ID, "error", err)
		return
	}
	n := len(chs)
	r := &manscdp.Response{Header: manscdp.Header{CmdType: manscdp.CmdDeviceInfo, SN: q.SN, DeviceID: p.cfg.LocalID},
		Result: manscdp.ResultOK, DeviceName: "Vigil", Manufacturer: "Vigil", Model: "Vigil", Firmware: "vigil", Channel: &n}
	s.send(ctx, p, r, cs)
}

func (s *Service) answerDeviceStatus(ctx context.Context, p *platform, q *manscdp.Query, cs manscdp.Charset) {
	r := &manscdp.Response{Header: manscdp.Header{CmdType: manscdp.CmdDeviceStatus, SN: q.SN, DeviceID: p.cfg.LocalID},
		Result: manscdp.ResultOK, Online: "ONLINE", Status: manscdp.ResultOK}
	s.send(ctx, p, r, cs)
}

func (s *Service) send(ctx context.Context, p *platform, m manscdp.Message, cs manscdp.Charset) {
	b, err := manscdp.Encoder{Charset: cs, Fallback: true}.Marshal(m)
	if err == nil {
		err = s.message(ctx, p, b)
	}
	if err != nil {
		s.Log.Warn("gb28181 upstream: answer not taken", "platform", p.cfg.ID, "cmd", m.Head().CmdType, "error", err)
	}
}

// onMessage serves the MESSAGEs of upper platforms: queries are answered
// 200 at once, then with their Response MESSAGEs.
func (s *Service) onMessage(req *sip.Request, tx sip.ServerTransaction) {
	p := s.from(req)
	if p == nil {
		respond(req, tx, 403, "Forbidden")
		return
	}
	m, cs, err := manscdp.DecodeCharset(req.Body())
	if err != nil {
		respond(req, tx, 400, "Bad Request")
		s.Log.Info("gb28181 upstream: unreadable MESSAGE", "platform", p.cfg.ID, "error", err)
		return
	}
	if c, ok := m.(*manscdp.Control); ok && c.CmdType == manscdp.CmdDeviceControl && c.PTZCmd != nil {
		s.onPTZ(req, tx, p, c)
		return
	}
	respond(req, tx, 200, "OK")
	q, ok := m.(*manscdp.Query)
	if !ok {
		return
	}
	var answer func(context.Context, *platform, *manscdp.Query, manscdp.Charset)
	switch q.CmdType {
	case manscdp.CmdCatalog:
		answer = s.answerCatalog
	case manscdp.CmdDeviceInfo:
		answer = s.answerDeviceInfo
	case manscdp.CmdDeviceStatus:
		answer = s.answerDeviceStatus
	default:
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		answer(s.ctx, p, q, cs)
	}()
}

// onPTZ moves a shared camera as an upper platform's DeviceControl asks
// (answered 200 at once; 404 for a channel not shared with it), audited
// as "ptz" with the platform's ID as the user.
func (s *Service) onPTZ(req *sip.Request, tx sip.ServerTransaction, p *platform, c *manscdp.Control) {
	pan, tilt, zoom, err := c.PTZCmd.Speeds()
	if err != nil {
		respond(req, tx, 400, "Bad PTZCmd")
		return
	}
	ch, ok, err := s.find(s.ctx, p, c.DeviceID)
	if err != nil {
		respond(req, tx, 500, "Server Internal Error")
		return
	}
	if !ok || s.PTZ == nil {
		s.audit(registry.AuditEntry{User: p.cfg.ID, Address: req.Source(), Action: "ptz", Camera: ch.Cam.ID, Result: "denied",
			Detail: "GB/T 28181 upper platform; channel " + c.DeviceID + " is not shared with it or has no PTZ"})
		respond(req, tx, 404, "Not Found")
		return
	}
	respond(req, tx, 200, "OK")
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
		defer cancel()
		e := registry.AuditEntry{User: p.cfg.ID, Address: req.Source(), Action: "ptz", Camera: ch.Cam.ID, Result: "ok",
			Detail: fmt.Sprintf("GB/T 28181 upper platform; channel %s; pan %.2f tilt %.2f zoom %.2f", ch.ID, pan, tilt, zoom)}
		if err := s.PTZ(ctx, ch.Cam, pan, tilt, zoom); err != nil {
			e.Result, e.Detail = "failed", e.Detail+": "+err.Error()
			s.Log.Info("gb28181 upstream: PTZ", "platform", p.cfg.ID, "camera", ch.Cam.ID, "error", err)
		}
		s.audit(e)
	}()
}

// from is the platform that sent req (by the From user), or nil.
func (s *Service) from(req *sip.Request) *platform {
	f := req.From()
	if f == nil {
		return nil
	}
	return s.platform(f.Address.User)
}

func respond(req *sip.Request, tx sip.ServerTransaction, code int, reason string) {
	_ = tx.Respond(sip.NewResponseFromRequest(req, code, reason, nil))
}
