package manscdp

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestMarshalUnencodable(t *testing.T) {
	m := &Response{Header: Header{CmdType: CmdDeviceInfo, SN: 1, DeviceID: "34020000001110000001"}, DeviceName: "朱镕基路NVR"}
	_, err := Encoder{}.Marshal(m)
	var ue *UnencodableError
	if !errors.As(err, &ue) || ue.Rune != '镕' || ue.Charset != GB2312 {
		t.Fatalf("Marshal in GB2312: %v, want *UnencodableError for 镕", err)
	}
	body, err := Encoder{Fallback: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(body, []byte(`<?xml version="1.0" encoding="GB18030"?>`)) {
		t.Fatalf("fallback body starts %q, want a GB18030 declaration", body[:45])
	}
	got, err := Decode(body)
	if err != nil {
		t.Fatal(err)
	}
	if name := got.(*Response).DeviceName; name != m.DeviceName {
		t.Fatalf("DeviceName after fallback = %q, want %q", name, m.DeviceName)
	}
	// GBK has 镕 but no emoji; GB18030 and UTF-8 have both.
	m.DeviceName = "水利三防 😀"
	if _, err := (Encoder{Charset: GBK}).Marshal(m); !errors.As(err, &ue) || ue.Rune != '😀' {
		t.Fatalf("Marshal in GBK: %v, want *UnencodableError for 😀", err)
	}
	for _, cs := range []Charset{GB18030, UTF8} {
		body, err := Encoder{Charset: cs}.Marshal(m)
		if err != nil {
			t.Fatalf("Marshal in %s: %v", cs, err)
		}
		got, err := Decode(body)
		if err != nil || got.(*Response).DeviceName != m.DeviceName {
			t.Fatalf("Decode of %s body: %v, %#v", cs, err, got)
		}
	}
	if _, err := (Encoder{Charset: "Big5"}).Marshal(m); err == nil || !strings.Contains(err.Error(), `unknown charset "Big5"`) {
		t.Fatalf("Marshal in Big5: %v, want unknown charset", err)
	}
}

func TestMarshalChecksHeader(t *testing.T) {
	for _, m := range []Message{
		CatalogQuery(1, "3402000000132000000"),
		&Query{Header: Header{SN: 1, DeviceID: "34020000001320000001"}},
		CatalogQuery(-1, "34020000001320000001"),
	} {
		var fe *FieldError
		if _, err := (Encoder{}).Marshal(m); !errors.As(err, &fe) {
			t.Errorf("Marshal(%#v): %v, want *FieldError", m, err)
		}
	}
}

// TestMarshalExact pins what Vigil sends, byte for byte (UTF-8 for
// readability; the GB2312 form differs only in the declaration here).
func TestMarshalExact(t *testing.T) {
	start := Time{time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC)}
	end := Time{time.Date(2026, 11, 29, 9, 30, 0, 0, time.UTC)}
	ptz, err := NewPTZCmd(0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	const id = "34020000001310000001"
	cases := []struct {
		m    Message
		want string
	}{
		{CatalogQuery(1, "34020000001320000001"), "<Query>\n  <CmdType>Catalog</CmdType>\n  <SN>1</SN>\n  <DeviceID>34020000001320000001</DeviceID>\n</Query>"},
		{DeviceInfoQuery(2, id), "<Query>\n  <CmdType>DeviceInfo</CmdType>\n  <SN>2</SN>\n  <DeviceID>" + id + "</DeviceID>\n</Query>"},
		{RecordInfoQuery(3, id, start, end, "all"), "<Query>\n  <CmdType>RecordInfo</CmdType>\n  <SN>3</SN>\n  <DeviceID>" + id +
			"</DeviceID>\n  <StartTime>2026-11-29T08:00:00</StartTime>\n  <EndTime>2026-11-29T09:30:00</EndTime>\n  <Type>all</Type>\n</Query>"},
		{KeepaliveNotify(4, id), "<Notify>\n  <CmdType>Keepalive</CmdType>\n  <SN>4</SN>\n  <DeviceID>" + id + "</DeviceID>\n  <Status>OK</Status>\n</Notify>"},
		{PTZControl(5, id, ptz), "<Control>\n  <CmdType>DeviceControl</CmdType>\n  <SN>5</SN>\n  <DeviceID>" + id + "</DeviceID>\n  <PTZCmd>A50F0100000000B5</PTZCmd>\n</Control>"},
		{ResultResponse(CmdDeviceControl, 5, id, ResultError), "<Response>\n  <CmdType>DeviceControl</CmdType>\n  <SN>5</SN>\n  <DeviceID>" + id + "</DeviceID>\n  <Result>ERROR</Result>\n</Response>"},
		// The platform confirms an alarm (GB/T 28181-2016 9.4.2).
		{AlarmResponse(7, id), "<Response>\n  <CmdType>Alarm</CmdType>\n  <SN>7</SN>\n  <DeviceID>" + id + "</DeviceID>\n  <Result>OK</Result>\n</Response>"},
		// An empty catalog still says SumNum 0.
		{&Response{Header: Header{CmdType: CmdCatalog, SN: 6, DeviceID: id}, DeviceList: &DeviceList{}}, "<Response>\n  <CmdType>Catalog</CmdType>\n  <SN>6</SN>\n  <DeviceID>" + id + "</DeviceID>\n  <SumNum>0</SumNum>\n  <DeviceList Num=\"0\"></DeviceList>\n</Response>"},
	}
	for _, c := range cases {
		body, err := Encoder{Charset: UTF8}.Marshal(c.m)
		if err != nil {
			t.Fatal(err)
		}
		want := "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n" + c.want + "\r\n"
		if string(body) != want {
			t.Errorf("Marshal(%T %s) =\n%s\nwant\n%s", c.m, c.m.Head().CmdType, body, want)
		}
		if _, err := Decode(body); err != nil {
			t.Errorf("Decode(Marshal(%T %s)): %v", c.m, c.m.Head().CmdType, err)
		}
	}
}

// platformTree is what Vigil answers an upper platform with: one business
// group, departments as virtual organisations, and n cameras spread over
// them.
func platformTree(t *testing.T, n int) []Item {
	t.Helper()
	const bg = "34020000002150000001"
	group, err := BusinessGroupItem(bg, "公安监控")
	if err != nil {
		t.Fatal(err)
	}
	items := []Item{group}
	orgs := []string{"34020000002160000001", "34020000002160000002", "34020000002160000003"}
	for i, id := range orgs {
		parent := bg
		if i == 2 {
			parent = orgs[1] // a sub-department
		}
		org, err := VirtualOrgItem(id, fmt.Sprintf("水利三防指挥部第%d分队", i+1), parent, bg)
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, org)
	}
	for i := range n {
		items = append(items, Item{
			DeviceID: fmt.Sprintf("3402000000132%07d", i+1), Name: fmt.Sprintf("公安监控-水利三防泵站摄像机%04d号", i+1),
			Manufacturer: "Hikvision", Model: "DS-2CD3T47", Owner: "Owner", CivilCode: "340200",
			Address: "安徽省合肥市蜀山区水利三防指挥中心东门外广场北侧", Parental: ip(0),
			ParentID: orgs[i%len(orgs)], BusinessGroupID: bg, RegisterWay: ip(1), Secrecy: ip(0),
			Status: StatusOn, Longitude: 117.2272, Latitude: 31.8206, Info: &Info{PTZType: ip(3)},
		})
	}
	return items
}

func TestCatalogPages(t *testing.T) {
	const platform = "34020000002000000001"
	for _, c := range []struct {
		name      string
		cameras   int
		maxItems  int
		maxBytes  int
		wantPages int // 0: only check bounds
	}{
		{"empty", -4, 10, MaxUDPBody, 1},
		{"one page", 5, 10, MaxUDPBody, 1},
		{"by count", 200, 10, 0, 21},
		// Real items are ~600 bytes each in GB2312, so 10 of them do not
		// fit a UDP body: the byte limit splits further.
		{"udp", 200, 10, MaxUDPBody, 0},
		{"default count", 26, 0, 0, 3},
		{"by size", 50, 20, 2500, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			items := []Item{}
			if c.cameras >= 0 {
				items = platformTree(t, c.cameras)
			}
			bodies, err := Encoder{}.CatalogPages(77, platform, items, c.maxItems, c.maxBytes)
			if err != nil {
				t.Fatal(err)
			}
			if c.wantPages > 0 && len(bodies) != c.wantPages {
				t.Fatalf("%d pages, want %d", len(bodies), c.wantPages)
			}
			maxItems := c.maxItems
			if maxItems == 0 {
				maxItems = DefaultPageItems
			}
			var got []Item
			for i, b := range bodies {
				if c.maxBytes > 0 && len(b) > c.maxBytes {
					t.Fatalf("page %d is %d bytes, over %d", i, len(b), c.maxBytes)
				}
				m, err := Decode(b)
				if err != nil {
					t.Fatalf("page %d: %v", i, err)
				}
				r := m.(*Response)
				if r.SumNum != len(items) || r.SN != 77 || r.DeviceID != platform || r.CmdType != CmdCatalog {
					t.Fatalf("page %d header %+v SumNum %d, want SN 77, %s, SumNum %d", i, r.Header, r.SumNum, platform, len(items))
				}
				if n := len(r.DeviceList.Items); n != r.DeviceList.Num || n > maxItems || (n == 0 && len(items) > 0) {
					t.Fatalf("page %d has %d items, Num %d, max %d", i, n, r.DeviceList.Num, maxItems)
				}
				got = append(got, r.DeviceList.Items...)
			}
			if len(got) == 0 && len(items) == 0 {
				return
			}
			if !reflect.DeepEqual(got, items) {
				t.Fatalf("pages carry %d items, not the %d given in order", len(got), len(items))
			}
			if c.maxBytes > 0 && c.wantPages == 0 && len(bodies) <= (len(items)+c.maxItems-1)/c.maxItems {
				t.Fatalf("%d pages: the byte limit did not split any page", len(bodies))
			}
		})
	}
}

func TestCatalogPagesItemTooLarge(t *testing.T) {
	items := platformTree(t, 1)
	_, err := Encoder{}.CatalogPages(1, "34020000002000000001", items, 10, 300)
	if err == nil || !strings.Contains(err.Error(), "alone makes a") {
		t.Fatalf("CatalogPages with a 300-byte limit: %v, want an item-too-large error", err)
	}
}

func TestGroupItems(t *testing.T) {
	const bg, org = "34020000002150000001", "34020000002160000001"
	if TypeCode(bg) != TypeBusinessGroup || TypeCode(org) != TypeVirtualOrg || TypeCode("x") != -1 {
		t.Fatalf("TypeCode: %d %d %d", TypeCode(bg), TypeCode(org), TypeCode("x"))
	}
	if _, err := BusinessGroupItem(org, "x"); err == nil {
		t.Error("BusinessGroupItem accepted a 216 code")
	}
	if _, err := VirtualOrgItem(bg, "x", bg, bg); err == nil {
		t.Error("VirtualOrgItem accepted a 215 code as its own ID")
	}
	if _, err := VirtualOrgItem(org, "x", "34020000001320000001", bg); err == nil {
		t.Error("VirtualOrgItem accepted a camera as parent")
	}
	if _, err := VirtualOrgItem(org, "x", bg, org); err == nil {
		t.Error("VirtualOrgItem accepted a 216 code as business group")
	}
	it, err := VirtualOrgItem(org, "水利三防", bg, bg)
	if err != nil || it.ParentID != bg || it.BusinessGroupID != bg || it.Parental == nil || *it.Parental != 1 {
		t.Fatalf("VirtualOrgItem = %+v, %v", it, err)
	}
}

func TestRecordInfoPages(t *testing.T) {
	const ch = "34020000001310000001"
	var recs []RecordItem
	day := time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)
	for i := range 48 {
		s, e := Time{day.Add(time.Duration(i) * 30 * time.Minute)}, Time{day.Add(time.Duration(i+1) * 30 * time.Minute)}
		recs = append(recs, RecordItem{DeviceID: ch, Name: "公安监控-东门卡口", FilePath: fmt.Sprintf("/rec/%04d", i), Address: "水利三防指挥中心", StartTime: &s, EndTime: &e, Secrecy: ip(0), Type: "time"})
	}
	bodies, err := Encoder{}.RecordInfoPages(9, ch, "公安监控-东门卡口", recs, 20, MaxUDPBody)
	if err != nil {
		t.Fatal(err)
	}
	var got []RecordItem
	for i, b := range bodies {
		if len(b) > MaxUDPBody {
			t.Fatalf("page %d is %d bytes", i, len(b))
		}
		m, err := Decode(b)
		if err != nil {
			t.Fatalf("page %d: %v", i, err)
		}
		r := m.(*Response)
		if r.CmdType != CmdRecordInfo || r.SumNum != len(recs) || r.Name != "公安监控-东门卡口" || r.RecordList.Num != len(r.RecordList.Items) {
			t.Fatalf("page %d: %+v SumNum %d Name %q Num %d", i, r.Header, r.SumNum, r.Name, r.RecordList.Num)
		}
		got = append(got, r.RecordList.Items...)
	}
	if !reflect.DeepEqual(got, recs) {
		t.Fatalf("pages carry %d records, not the %d given in order", len(got), len(recs))
	}
	if len(bodies) < 3 {
		t.Fatalf("%d pages for 48 records of at most 20", len(bodies))
	}
}
