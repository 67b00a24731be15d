package manscdp

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
)

// Encoder writes bodies. The zero value writes GB2312 and reports
// characters outside it.
type Encoder struct {
	// Charset is the character set of the bodies written, named in the XML
	// declaration. It defaults to GB2312, which every device reads.
	Charset Charset
	// Fallback, when true, writes a body whose text is not representable in
	// Charset in GB18030 instead (and declares GB18030). When false, Marshal
	// returns an *UnencodableError. It defaults to false.
	Fallback bool
}

// Marshal writes m as a body: the XML declaration naming the charset, then
// the indented element, in that charset. It checks the header as Decode
// does (CmdType set, DeviceID 20 digits) so Vigil never sends what it
// would reject.
func (e Encoder) Marshal(m Message) ([]byte, error) {
	cs := e.Charset
	if cs == "" {
		cs = GB2312
	}
	if _, ok := parseCharset(string(cs)); !ok {
		return nil, fmt.Errorf("manscdp: unknown charset %q; want GB2312, GBK, GB18030 or UTF-8", string(cs))
	}
	h := m.Head()
	if h.CmdType == "" {
		return nil, &FieldError{Root: m.root(), Field: "CmdType", Reason: "is empty"}
	}
	if why := checkID(h.DeviceID); why != "" {
		return nil, &FieldError{Root: m.root(), CmdType: h.CmdType, Field: "DeviceID", Reason: why}
	}
	if h.SN < 0 {
		return nil, &FieldError{Root: m.root(), CmdType: h.CmdType, Field: "SN", Reason: fmt.Sprintf("%d is negative", h.SN)}
	}
	text, err := xml.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("manscdp: marshal %s %s: %w", m.root(), h.CmdType, err)
	}
	out, err := encodeCharset(string(text), cs)
	var ue *UnencodableError
	if errors.As(err, &ue) && e.Fallback {
		cs = GB18030
		out, err = encodeCharset(string(text), cs)
	}
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.Grow(len(out) + 48)
	fmt.Fprintf(&b, "<?xml version=\"1.0\" encoding=\"%s\"?>\r\n", cs)
	b.Write(out)
	b.WriteString("\r\n")
	return b.Bytes(), nil
}

// CatalogQuery asks a device or lower platform for its catalog.
func CatalogQuery(sn int, deviceID string) *Query {
	return &Query{Header: Header{CmdType: CmdCatalog, SN: sn, DeviceID: deviceID}}
}

// DeviceInfoQuery asks a device for its name, maker, model and firmware.
func DeviceInfoQuery(sn int, deviceID string) *Query {
	return &Query{Header: Header{CmdType: CmdDeviceInfo, SN: sn, DeviceID: deviceID}}
}

// RecordInfoQuery asks a channel for its recordings between start and end
// (device wall clock; see Time). recType is time, alarm, manual or all.
func RecordInfoQuery(sn int, channelID string, start, end Time, recType string) *Query {
	return &Query{
		Header:    Header{CmdType: CmdRecordInfo, SN: sn, DeviceID: channelID},
		StartTime: &start, EndTime: &end, Type: recType,
	}
}

// KeepaliveNotify is the heartbeat a registered device or platform sends.
func KeepaliveNotify(sn int, deviceID string) *Notify {
	return &Notify{Header: Header{CmdType: CmdKeepalive, SN: sn, DeviceID: deviceID}, Status: ResultOK}
}

// MediaStatusNotify tells the platform that the playback or download of
// channelID has reached its end (NotifyType 121).
func MediaStatusNotify(sn int, channelID string) *Notify {
	return &Notify{Header: Header{CmdType: CmdMediaStatus, SN: sn, DeviceID: channelID}, NotifyType: NotifyTypeMediaEnd}
}

// PTZControl moves a channel's camera.
func PTZControl(sn int, channelID string, cmd PTZCmd) *Control {
	return &Control{Header: Header{CmdType: CmdDeviceControl, SN: sn, DeviceID: channelID}, PTZCmd: &cmd}
}

// ResultResponse answers a control or other request with OK or ERROR.
func ResultResponse(cmd CmdType, sn int, deviceID string, r Result) *Response {
	return &Response{Header: Header{CmdType: cmd, SN: sn, DeviceID: deviceID}, Result: r}
}

// AlarmResponse is the platform's answer to a device's Alarm notify
// (GB/T 28181-2016 9.4.2: the platform confirms each alarm it received).
func AlarmResponse(sn int, deviceID string) *Response {
	return ResultResponse(CmdAlarm, sn, deviceID, ResultOK)
}

// Catalog item type codes (digits 11–13 of a 20-digit code, GB/T 28181-2016
// Annex D) that a platform uses for its own tree.
const (
	TypeBusinessGroup = 215
	TypeVirtualOrg    = 216
)

// TypeCode returns digits 11–13 of a 20-digit code (e.g. 131 camera, 132
// IPC, 200 platform, 215 business group, 216 virtual organisation), or −1.
func TypeCode(id string) int {
	if checkID(id) != "" {
		return -1
	}
	return int(id[10]-'0')*100 + int(id[11]-'0')*10 + int(id[12]-'0')
}

// BusinessGroupItem is a catalog item for a business group (type 215), the
// root of a platform's own tree under its civil code.
func BusinessGroupItem(id, name string) (Item, error) {
	if TypeCode(id) != TypeBusinessGroup {
		return Item{}, fmt.Errorf("manscdp: business group ID %q is not a 20-digit code with type 215", id)
	}
	one := 1
	return Item{DeviceID: id, Name: name, Parental: &one, Status: StatusOn}, nil
}

// VirtualOrgItem is a catalog item for a virtual organisation (type 216),
// a department: parentID is its business group or a parent organisation.
func VirtualOrgItem(id, name, parentID, businessGroupID string) (Item, error) {
	if TypeCode(id) != TypeVirtualOrg {
		return Item{}, fmt.Errorf("manscdp: virtual organisation ID %q is not a 20-digit code with type 216", id)
	}
	if t := TypeCode(parentID); t != TypeBusinessGroup && t != TypeVirtualOrg {
		return Item{}, fmt.Errorf("manscdp: virtual organisation %q: parent %q is not a business group (215) or virtual organisation (216)", id, parentID)
	}
	if TypeCode(businessGroupID) != TypeBusinessGroup {
		return Item{}, fmt.Errorf("manscdp: virtual organisation %q: business group %q does not have type 215", id, businessGroupID)
	}
	one := 1
	return Item{DeviceID: id, Name: name, Parental: &one, ParentID: parentID, BusinessGroupID: businessGroupID, Status: StatusOn}, nil
}

// Paging limits for catalog responses.
const (
	// DefaultPageItems is how many items a catalog page carries at most;
	// platforms commonly send 1–20.
	DefaultPageItems = 10
	// MaxUDPBody bounds a body sent over SIP/UDP: 8 KiB is the practical
	// datagram size platforms accept without trouble, less ~1.5 KiB for the
	// SIP request line and headers (Via, From, To, Call-ID, CSeq, Contact,
	// Content-Type, Content-Length, User-Agent with branch and tags), so
	// 6 KiB of body.
	MaxUDPBody = 6 << 10
)

// CatalogPages answers a Catalog query with items: as many Response bodies
// as needed, each with the same SumNum (len(items)) and at most maxItems
// items (DefaultPageItems when 0), and — when maxBytes > 0 — each at most
// maxBytes long, splitting a page further when it would be larger. An item
// that alone exceeds maxBytes is an error. An empty catalog is one body with
// SumNum 0.
func (e Encoder) CatalogPages(sn int, deviceID string, items []Item, maxItems, maxBytes int) ([][]byte, error) {
	return e.pages(len(items), maxItems, maxBytes, func(lo, hi int) ([]byte, error) {
		return e.Marshal(&Response{
			Header:     Header{CmdType: CmdCatalog, SN: sn, DeviceID: deviceID},
			SumNum:     len(items),
			DeviceList: &DeviceList{Num: hi - lo, Items: items[lo:hi:hi]},
		})
	}, func(i int) string { return items[i].DeviceID })
}

// RecordInfoPages answers a RecordInfo query for channelID (named name) with
// records, paged as CatalogPages pages items.
func (e Encoder) RecordInfoPages(sn int, channelID, name string, records []RecordItem, maxItems, maxBytes int) ([][]byte, error) {
	return e.pages(len(records), maxItems, maxBytes, func(lo, hi int) ([]byte, error) {
		return e.Marshal(&Response{
			Header:     Header{CmdType: CmdRecordInfo, SN: sn, DeviceID: channelID},
			Name:       name,
			SumNum:     len(records),
			RecordList: &RecordList{Num: hi - lo, Items: records[lo:hi:hi]},
		})
	}, func(i int) string { return records[i].DeviceID })
}

// pages splits n items into bodies built by page(lo, hi), at most maxItems
// each and, when maxBytes > 0, at most maxBytes long.
func (e Encoder) pages(n, maxItems, maxBytes int, page func(lo, hi int) ([]byte, error), name func(int) string) ([][]byte, error) {
	if maxItems <= 0 {
		maxItems = DefaultPageItems
	}
	if n == 0 {
		b, err := page(0, 0)
		if err != nil {
			return nil, err
		}
		return [][]byte{b}, nil
	}
	var out [][]byte
	for start := 0; start < n; {
		k := min(maxItems, n-start)
		for {
			b, err := page(start, start+k)
			if err != nil {
				return nil, err
			}
			if maxBytes <= 0 || len(b) <= maxBytes {
				out = append(out, b)
				break
			}
			if k == 1 {
				return nil, fmt.Errorf("manscdp: item %q alone makes a %d-byte body, over the %d-byte limit", name(start), len(b), maxBytes)
			}
			k--
		}
		start += k
	}
	return out, nil
}
