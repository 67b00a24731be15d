package manscdp

import (
	"bytes"
	"encoding/xml"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The *.gb2312.xml and *.gbk.xml files in testdata are produced from the
// UTF-8 sources in testdata/src with
//
//	iconv -f UTF-8 -t GB2312 src/NAME.gb2312.xml > NAME.gb2312.xml
//	iconv -f UTF-8 -t GBK    src/NAME.gbk.xml    > NAME.gbk.xml
//
// so they hold real GB bytes, not UTF-8.

func ip(v int) *int { return &v }

func tm(s string) *Time {
	t, err := time.Parse(TimeLayout, s)
	if err != nil {
		panic(err)
	}
	return &Time{t}
}

func mustPTZ(s string) *PTZCmd {
	c, err := ParsePTZCmd(s)
	if err != nil {
		panic(err)
	}
	return &c
}

// bodyCases is the one table of real-looking bodies: it feeds TestDecode,
// TestRoundTrip and the FuzzDecode seeds.
var bodyCases = []struct {
	file    string
	charset Charset // as read, and written back in the round trip
	want    Message
}{
	{"catalog_query.xml", UTF8, &Query{
		XMLName: xml.Name{Local: "Query"},
		Header:  Header{CmdType: CmdCatalog, SN: 17430, DeviceID: "34020000001320000001"},
	}},
	{"deviceinfo_query.xml", GB2312, &Query{
		XMLName: xml.Name{Local: "Query"},
		Header:  Header{CmdType: CmdDeviceInfo, SN: 4, DeviceID: "34020000001110000001"},
	}},
	{"recordinfo_query.utf8.xml", UTF8, &Query{
		XMLName:   xml.Name{Local: "Query"},
		Header:    Header{CmdType: CmdRecordInfo, SN: 20, DeviceID: "34020000001310000001"},
		StartTime: tm("2026-11-29T00:00:00"), EndTime: tm("2026-11-29T23:59:59"),
		Secrecy: ip(0), Type: "all",
	}},
	{"catalog_response.gb2312.xml", GB2312, &Response{
		XMLName: xml.Name{Local: "Response"},
		Header:  Header{CmdType: CmdCatalog, SN: 17430, DeviceID: "34020000001320000001"},
		SumNum:  3,
		DeviceList: &DeviceList{Num: 2, Items: []Item{{
			DeviceID: "34020000001310000001", Name: "公安监控-东门卡口", Manufacturer: "Hikvision",
			Model: "DS-2DE4425IW", Owner: "Owner", CivilCode: "340200", Address: "水利三防指挥中心东门",
			Parental: ip(0), ParentID: "34020000001320000001", RegisterWay: ip(1), Secrecy: ip(0),
			Status: StatusOn, Longitude: 117.2272, Latitude: 31.8206, Info: &Info{PTZType: ip(1)},
		}, {
			DeviceID: "34020000001310000002", Name: "水利三防-泵站二号", Manufacturer: "Dahua",
			Model: "IPC-HFW2431", Owner: "Owner", CivilCode: "340200", Address: "泵站",
			Parental: ip(0), ParentID: "34020000001320000001", RegisterWay: ip(1), Secrecy: ip(0),
			Status: StatusOff, Info: &Info{PTZType: ip(3)},
		}}},
	}},
	// No declaration: GB2312 by default; "online" normalises to ON.
	{"catalog_response_nodecl.gb2312.xml", GB2312, &Response{
		XMLName: xml.Name{Local: "Response"},
		Header:  Header{CmdType: CmdCatalog, SN: 9, DeviceID: "44010200492000000001"},
		SumNum:  1,
		DeviceList: &DeviceList{Num: 1, Items: []Item{{
			DeviceID: "44010200491320000017", Name: "公安监控", Status: StatusOn,
		}}},
	}},
	// Declared gb2312 but holding 镕, which only GBK has.
	{"deviceinfo_response.gbk.xml", GBK, &Response{
		XMLName: xml.Name{Local: "Response"},
		Header:  Header{CmdType: CmdDeviceInfo, SN: 5, DeviceID: "34020000001110000001"},
		Result:  ResultOK, DeviceName: "朱镕基路NVR", Manufacturer: "Hikvision",
		Model: "DS-7808N-K1", Firmware: "V4.30.085", Channel: ip(8),
	}},
	{"deviceinfo_response.utf8.xml", UTF8, &Response{
		XMLName: xml.Name{Local: "Response"},
		Header:  Header{CmdType: CmdDeviceInfo, SN: 6, DeviceID: "34020000001110000002"},
		Result:  ResultOK, DeviceName: "水利三防 NVR 😀", Manufacturer: "Uniview",
		Model: "NVR301", Firmware: "B3220", Channel: ip(4),
	}},
	{"devicestatus_response.xml", GB2312, &Response{
		XMLName: xml.Name{Local: "Response"},
		Header:  Header{CmdType: CmdDeviceStatus, SN: 7, DeviceID: "34020000001110000001"},
		Result:  ResultOK, Online: "ONLINE", Status: ResultOK,
	}},
	{"recordinfo_response.gb2312.xml", GB2312, &Response{
		XMLName: xml.Name{Local: "Response"},
		Header:  Header{CmdType: CmdRecordInfo, SN: 21, DeviceID: "34020000001310000001"},
		Name:    "公安监控-东门卡口", SumNum: 2,
		RecordList: &RecordList{Num: 2, Items: []RecordItem{{
			DeviceID: "34020000001310000001", Name: "公安监控-东门卡口", FilePath: "/rec/0001",
			Address: "水利三防指挥中心", StartTime: tm("2026-11-29T00:00:00"), EndTime: tm("2026-11-29T00:30:00"),
			Secrecy: ip(0), Type: "time", FileSize: 734003200,
		}, {
			DeviceID: "34020000001310000001", Name: "公安监控-东门卡口",
			StartTime: tm("2026-11-29T00:30:00"), EndTime: tm("2026-11-29T01:00:00"),
			Secrecy: ip(0), Type: "alarm",
		}}},
	}},
	{"devicecontrol_response.xml", GB2312, &Response{
		XMLName: xml.Name{Local: "Response"},
		Header:  Header{CmdType: CmdDeviceControl, SN: 11, DeviceID: "34020000001310000001"},
		Result:  ResultOK,
	}},
	{"keepalive_notify.xml", GB2312, &Notify{
		XMLName: xml.Name{Local: "Notify"},
		Header:  Header{CmdType: CmdKeepalive, SN: 1043, DeviceID: "34020000001110000001"},
		Status:  ResultOK,
	}},
	{"alarm_notify.gb2312.xml", GB2312, &Notify{
		XMLName:       xml.Name{Local: "Notify"},
		Header:        Header{CmdType: CmdAlarm, SN: 88, DeviceID: "34020000001340000001"},
		AlarmPriority: "1", AlarmMethod: "5", AlarmTime: tm("2026-11-29T08:15:03"),
		AlarmDescription: "公安监控 区域入侵", Longitude: 117.2272, Latitude: 31.8206,
		AlarmInfo: &AlarmInfo{AlarmType: "2"},
	}},
	{"catalog_notify.gbk.xml", GBK, &Notify{
		XMLName: xml.Name{Local: "Notify"},
		Header:  Header{CmdType: CmdCatalog, SN: 302, DeviceID: "34020000001110000001"},
		SumNum:  ip(2),
		DeviceList: &DeviceList{Num: 2, Items: []Item{
			{DeviceID: "34020000001310000009", Event: EventAdd, Name: "水利三防-闸门", Status: StatusOn},
			{DeviceID: "34020000001310000002", Event: EventDel},
		}},
	}},
	{"devicecontrol_ptz.xml", GB2312, &Control{
		XMLName: xml.Name{Local: "Control"},
		Header:  Header{CmdType: CmdDeviceControl, SN: 11, DeviceID: "34020000001310000001"},
		PTZCmd:  mustPTZ("A50F0119804050DE"),
		Info:    &ControlInfo{ControlPriority: ip(5)},
	}},
	{"devicecontrol_record.xml", GB2312, &Control{
		XMLName:   xml.Name{Local: "Control"},
		Header:    Header{CmdType: CmdDeviceControl, SN: 12, DeviceID: "34020000001310000001"},
		RecordCmd: "Record", GuardCmd: "SetGuard", IFameCmd: "Send",
	}},
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecode(t *testing.T) {
	for _, c := range bodyCases {
		t.Run(c.file, func(t *testing.T) {
			body := readTestdata(t, c.file)
			if strings.Contains(c.file, ".gb") && bytes.Contains(body, []byte("公")) {
				t.Fatalf("%s holds UTF-8 text; regenerate it with iconv", c.file)
			}
			got, err := Decode(body)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("Decode(%s) =\n%#v\nwant\n%#v", c.file, got, c.want)
			}
		})
	}
}

// TestRoundTrip writes every decoded body back in its own charset and reads
// it again.
func TestRoundTrip(t *testing.T) {
	for _, c := range bodyCases {
		t.Run(c.file, func(t *testing.T) {
			body, err := Encoder{Charset: c.charset}.Marshal(c.want)
			if err != nil {
				t.Fatal(err)
			}
			decl := `<?xml version="1.0" encoding="` + string(c.charset) + `"?>`
			if !bytes.HasPrefix(body, []byte(decl)) {
				t.Fatalf("body starts %q, want %q", body[:min(len(body), 60)], decl)
			}
			got, err := Decode(body)
			if err != nil {
				t.Fatalf("Decode(Marshal()): %v\n%s", err, body)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("round trip =\n%#v\nwant\n%#v\nbody:\n%s", got, c.want, body)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	const id = "34020000001320000001"
	gbBad := append([]byte("<?xml version=\"1.0\" encoding=\"GB2312\"?>\n<Response><CmdType>Catalog</CmdType><SN>1</SN><DeviceID>"+id+"</DeviceID><SumNum>1</SumNum><DeviceList Num=\"1\"><Item><DeviceID>"+id+"</DeviceID><Name>\xB9\xAB"), // 公
		0xFF, 0xFF)
	gbBad = append(gbBad, "</Name></Item></DeviceList></Response>"...)
	cases := []struct {
		name string
		body string
		want string // substring of the error
		as   any    // pointer to the error type errors.As must find
	}{
		{"empty", "", "no XML element", nil},
		{"not xml", "hello", "no XML element", nil},
		{"unknown root", `<Foo><CmdType>Catalog</CmdType></Foo>`, "root element <Foo> is not Query", new(*UnsupportedError)},
		{"unknown cmdtype", `<Query><CmdType>Broadcast</CmdType><SN>1</SN><DeviceID>` + id + `</DeviceID></Query>`,
			`Query with CmdType "Broadcast" is not supported`, new(*UnsupportedError)},
		{"keepalive as query", `<Query><CmdType>Keepalive</CmdType><SN>1</SN><DeviceID>` + id + `</DeviceID></Query>`,
			"not supported", new(*UnsupportedError)},
		{"no cmdtype", `<Query><SN>1</SN><DeviceID>` + id + `</DeviceID></Query>`, "<CmdType> is missing", new(*FieldError)},
		{"no sn", `<Query><CmdType>Catalog</CmdType><DeviceID>` + id + `</DeviceID></Query>`, "Query Catalog: <SN> is missing", new(*FieldError)},
		{"sn not a number", `<Query><CmdType>Catalog</CmdType><SN>x1</SN><DeviceID>` + id + `</DeviceID></Query>`, `<SN> "x1" is not an integer in 0…2147483647`, new(*FieldError)},
		{"no device id", `<Query><CmdType>Catalog</CmdType><SN>1</SN></Query>`, "<DeviceID> is missing", new(*FieldError)},
		{"short device id", `<Query><CmdType>Catalog</CmdType><SN>1</SN><DeviceID>3402000000132000</DeviceID></Query>`,
			`"3402000000132000" has 16 characters, want 20 digits`, new(*FieldError)},
		{"letter in device id", `<Query><CmdType>Catalog</CmdType><SN>1</SN><DeviceID>3402000000132000000A</DeviceID></Query>`,
			"non-digit at position 20", new(*FieldError)},
		{"unknown encoding", `<?xml version="1.0" encoding="Big5"?><Query/>`, `encoding "Big5"; want GB2312`, new(*CharsetError)},
		{"invalid gb2312", string(gbBad), "not valid GB2312 at byte", new(*CharsetError)},
		{"invalid utf-8", "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Query><CmdType>Catalog\xC3</CmdType></Query>", "not valid UTF-8 at byte", new(*CharsetError)},
		{"truncated", `<Query><CmdType>Catalog</CmdType><SN>1</SN>`, "malformed XML", nil},
		{"two roots", `<Query><CmdType>Catalog</CmdType><SN>1</SN><DeviceID>` + id + `</DeviceID></Query><Query/>`, "more than one root element", nil},
		{"text after root", `<Query><CmdType>Catalog</CmdType><SN>1</SN><DeviceID>` + id + `</DeviceID></Query>junk`, "after the root element", nil},
		{"catalog without sumnum", `<Response><CmdType>Catalog</CmdType><SN>1</SN><DeviceID>` + id + `</DeviceID><DeviceList Num="0"></DeviceList></Response>`,
			"<SumNum> is missing", new(*FieldError)},
		{"item bad id", `<Response><CmdType>Catalog</CmdType><SN>1</SN><DeviceID>` + id + `</DeviceID><SumNum>2</SumNum><DeviceList Num="2"><Item><DeviceID>` + id + `</DeviceID></Item><Item><DeviceID>12</DeviceID></Item></DeviceList></Response>`,
			"<DeviceList/Item[2]/DeviceID>", new(*FieldError)},
		{"item bad status", `<Response><CmdType>Catalog</CmdType><SN>1</SN><DeviceID>` + id + `</DeviceID><SumNum>1</SumNum><DeviceList Num="1"><Item><DeviceID>` + id + `</DeviceID><Status>MAYBE</Status></Item></DeviceList></Response>`,
			`status "MAYBE" is not ON or OFF`, nil},
		{"catalog notify without event", `<Notify><CmdType>Catalog</CmdType><SN>1</SN><DeviceID>` + id + `</DeviceID><SumNum>1</SumNum><DeviceList Num="1"><Item><DeviceID>` + id + `</DeviceID></Item></DeviceList></Notify>`,
			"<DeviceList/Item[1]/Event> is missing", new(*FieldError)},
		{"alarm response without result", `<Response><CmdType>Alarm</CmdType><SN>1</SN><DeviceID>` + id + `</DeviceID></Response>`, `<Result> "" is not OK or ERROR`, new(*FieldError)},
		{"keepalive without status", `<Notify><CmdType>Keepalive</CmdType><SN>1</SN><DeviceID>` + id + `</DeviceID></Notify>`, `<Status> "" is not OK or ERROR`, new(*FieldError)},
		{"alarm without time", `<Notify><CmdType>Alarm</CmdType><SN>1</SN><DeviceID>` + id + `</DeviceID><AlarmPriority>1</AlarmPriority><AlarmMethod>2</AlarmMethod></Notify>`,
			"<AlarmTime> is missing", new(*FieldError)},
		{"alarm bad time", `<Notify><CmdType>Alarm</CmdType><SN>1</SN><DeviceID>` + id + `</DeviceID><AlarmPriority>1</AlarmPriority><AlarmMethod>2</AlarmMethod><AlarmTime>yesterday</AlarmTime></Notify>`,
			`time "yesterday" is not YYYY-MM-DDThh:mm:ss`, nil},
		{"recordinfo without start", `<Query><CmdType>RecordInfo</CmdType><SN>1</SN><DeviceID>` + id + `</DeviceID><EndTime>2026-11-29T00:00:00</EndTime></Query>`,
			"<StartTime> is missing", new(*FieldError)},
		{"recordinfo end before start", `<Query><CmdType>RecordInfo</CmdType><SN>1</SN><DeviceID>` + id + `</DeviceID><StartTime>2026-11-29T10:00:00</StartTime><EndTime>2026-11-29T09:00:00</EndTime></Query>`,
			"is before StartTime", new(*FieldError)},
		{"ptz bad checksum", `<Control><CmdType>DeviceControl</CmdType><SN>1</SN><DeviceID>` + id + `</DeviceID><PTZCmd>A50F0100000000B6</PTZCmd></Control>`,
			"checksum 0xB6, want 0xB5", nil},
		{"control without command", `<Control><CmdType>DeviceControl</CmdType><SN>1</SN><DeviceID>` + id + `</DeviceID></Control>`,
			"<PTZCmd> is missing", new(*FieldError)},
		{"control bad guard", `<Control><CmdType>DeviceControl</CmdType><SN>1</SN><DeviceID>` + id + `</DeviceID><GuardCmd>Arm</GuardCmd></Control>`,
			`"Arm" is not SetGuard or ResetGuard`, new(*FieldError)},
		{"response control without result", `<Response><CmdType>DeviceControl</CmdType><SN>1</SN><DeviceID>` + id + `</DeviceID></Response>`,
			"<Result>", new(*FieldError)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := Decode([]byte(c.body))
			if err == nil {
				t.Fatalf("Decode succeeded with %#v, want an error containing %q", m, c.want)
			}
			if !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "manscdp: ") {
				t.Fatalf("error %q, want it to start with manscdp: and contain %q", err, c.want)
			}
			if c.as != nil && !errors.As(err, c.as) {
				t.Fatalf("error %q (%T) is not a %T", err, err, c.as)
			}
		})
	}
}

func TestDecodeTooLarge(t *testing.T) {
	body := readTestdata(t, "catalog_query.xml")
	big := append(bytes.Clone(body), bytes.Repeat([]byte(" "), MaxBodySize)...)
	if _, err := Decode(big); !errors.Is(err, ErrBodyTooLarge) {
		t.Fatalf("Decode of %d bytes: %v, want ErrBodyTooLarge", len(big), err)
	}
	// At the limit it is still read (trailing whitespace is allowed).
	if _, err := Decode(big[:MaxBodySize]); err != nil {
		t.Fatalf("Decode of exactly MaxBodySize bytes: %v", err)
	}
}

func TestInvalidGBOffset(t *testing.T) {
	body := []byte("<Query><CmdType>Catalog</CmdType><SN>1</SN><DeviceID>34020000001320000001</DeviceID><Name>\xB9\xAB\xB0\xB2\xFF</Name></Query>")
	_, err := Decode(body)
	var ce *CharsetError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v, want *CharsetError", err)
	}
	if want := bytes.IndexByte(body, 0xFF); ce.Offset != want || !strings.HasSuffix(ce.Context, "<Name>公安") {
		t.Fatalf("offset %d context %q, want offset %d after %q", ce.Offset, ce.Context, want, "<Name>公安")
	}
}

// A device that declares GB2312 but sends UTF-8: with an odd number of
// UTF-8 bytes (five 3-byte characters) the last lead byte meets '<', so
// GB decoding finds an invalid pair and the error says the body is UTF-8.
// (An even count decodes to wrong characters without any error; a caller
// that knows the device sends UTF-8 uses DecodeAs, which reads it right.)
func TestMisdeclaredUTF8(t *testing.T) {
	body := []byte(`<?xml version="1.0" encoding="GB2312"?>
<Notify><CmdType>Alarm</CmdType><SN>1</SN><DeviceID>34020000001340000001</DeviceID><AlarmPriority>1</AlarmPriority><AlarmMethod>5</AlarmMethod><AlarmTime>2026-11-29T08:15:03</AlarmTime><AlarmDescription>水利三防站</AlarmDescription></Notify>`)
	_, err := Decode(body)
	var ce *CharsetError
	if !errors.As(err, &ce) || !ce.UTF8 || !strings.Contains(err.Error(), `must declare encoding="UTF-8"`) {
		t.Fatalf("Decode: %v, want a *CharsetError naming UTF-8", err)
	}
	m, err := DecodeAs(body, UTF8)
	if err != nil {
		t.Fatal(err)
	}
	if d := m.(*Notify).AlarmDescription; d != "水利三防站" {
		t.Fatalf("AlarmDescription = %q", d)
	}
	if _, err := DecodeAs(body, "Big5"); err == nil {
		t.Fatal("DecodeAs Big5 succeeded")
	}
}

func TestDecodeCharset(t *testing.T) {
	for _, c := range bodyCases {
		_, cs, err := DecodeCharset(readTestdata(t, c.file))
		if err != nil {
			t.Fatal(err)
		}
		// The GBK file declares gb2312, and one UTF-8 file is ASCII with a
		// declaration that names no encoding (read as GB2312).
		want := c.charset
		switch c.file {
		case "deviceinfo_response.gbk.xml", "catalog_query.xml":
			want = GB2312
		}
		if cs != want {
			t.Errorf("%s read as %s, want %s", c.file, cs, want)
		}
	}
}
