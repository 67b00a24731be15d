package manscdp

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"strings"
	"time"
)

// CmdType is the <CmdType> of a message.
type CmdType string

// Command types this package reads and writes.
const (
	CmdCatalog       CmdType = "Catalog"
	CmdDeviceInfo    CmdType = "DeviceInfo"
	CmdDeviceStatus  CmdType = "DeviceStatus"
	CmdRecordInfo    CmdType = "RecordInfo"
	CmdKeepalive     CmdType = "Keepalive"
	CmdAlarm         CmdType = "Alarm"
	CmdDeviceControl CmdType = "DeviceControl"
	// CmdMediaStatus is a lower platform's Notify that a playback or
	// download has reached its end (NotifyType 121).
	CmdMediaStatus CmdType = "MediaStatus"
)

// NotifyTypeMediaEnd is the <NotifyType> of a MediaStatus Notify at the end
// of a playback or download (GB/T 28181-2016 A.2.5).
const NotifyTypeMediaEnd = "121"

// Result is the <Result> of a response, and the <Status> of a keepalive.
type Result string

// Results.
const (
	ResultOK    Result = "OK"
	ResultError Result = "ERROR"
)

// Status is a catalog item's <Status>.
type Status string

// Item states. Decoding also accepts ONLINE/OFFLINE and any letter case,
// which devices send, and normalises them.
const (
	StatusOn  Status = "ON"
	StatusOff Status = "OFF"
)

// UnmarshalText implements encoding.TextUnmarshaler; an empty status stays
// empty (groups carry none), anything other than ON/OFF/ONLINE/OFFLINE is an
// error.
func (s *Status) UnmarshalText(b []byte) error {
	switch v := strings.ToUpper(string(trimSpace(b))); v {
	case "":
		*s = ""
	case "ON", "ONLINE":
		*s = StatusOn
	case "OFF", "OFFLINE":
		*s = StatusOff
	default:
		return fmt.Errorf("status %q is not ON or OFF", string(b))
	}
	return nil
}

// Event is a catalog notify item's <Event>.
type Event string

// Catalog notify events, GB/T 28181-2016 A.2.5.
const (
	EventAdd    Event = "ADD"
	EventDel    Event = "DEL"
	EventOn     Event = "ON"
	EventOff    Event = "OFF"
	EventUpdate Event = "UPDATE"
	EventVLost  Event = "VLOST"
	EventDefect Event = "DEFECT"
)

// UnmarshalText implements encoding.TextUnmarshaler; unknown events are errors.
func (e *Event) UnmarshalText(b []byte) error {
	v := Event(strings.ToUpper(string(trimSpace(b))))
	switch v {
	case "", EventAdd, EventDel, EventOn, EventOff, EventUpdate, EventVLost, EventDefect:
		*e = v
		return nil
	}
	return fmt.Errorf("event %q is not ADD, DEL, ON, OFF, UPDATE, VLOST or DEFECT", string(b))
}

// TimeLayout is the MANSCDP date-time form, a wall clock without a zone.
const TimeLayout = "2006-01-02T15:04:05"

// Time is a MANSCDP date-time. The standard carries no zone: decoding yields
// the device's wall clock labelled UTC, and encoding writes the wall clock of
// the value's own location, so callers convert with In(deviceZone) first.
type Time struct{ time.Time }

// MarshalText implements encoding.TextMarshaler.
func (t Time) MarshalText() ([]byte, error) { return []byte(t.Format(TimeLayout)), nil }

// UnmarshalText implements encoding.TextUnmarshaler. It also accepts a space
// instead of the T and fractional seconds, which some recorders send.
func (t *Time) UnmarshalText(b []byte) error {
	s := strings.Replace(string(trimSpace(b)), " ", "T", 1)
	v, err := time.Parse("2006-01-02T15:04:05.999999999", s)
	if err != nil {
		return fmt.Errorf("time %q is not YYYY-MM-DDThh:mm:ss", string(b))
	}
	t.Time = v
	return nil
}

// Header holds the fields every message has.
type Header struct {
	CmdType  CmdType `xml:"CmdType"`
	SN       int     `xml:"SN"`       // sequence number chosen by the sender
	DeviceID string  `xml:"DeviceID"` // 20-digit GB/T 28181 code
}

// Message is one of *Query, *Response, *Notify and *Control.
type Message interface {
	// Head returns the CmdType, SN and DeviceID.
	Head() Header
	root() string
}

// Query is a <Query> body (GB/T 28181-2016 A.2.4).
type Query struct {
	XMLName xml.Name `xml:"Query"`
	Header
	// RecordInfo only.
	StartTime  *Time  `xml:"StartTime,omitempty"`
	EndTime    *Time  `xml:"EndTime,omitempty"`
	FilePath   string `xml:"FilePath,omitempty"`
	Address    string `xml:"Address,omitempty"`
	Secrecy    *int   `xml:"Secrecy,omitempty"`
	Type       string `xml:"Type,omitempty"` // time, alarm, manual or all
	RecorderID string `xml:"RecorderID,omitempty"`
}

// Response is a <Response> body (A.2.6). Which fields are set depends on
// CmdType: Catalog has SumNum and DeviceList; RecordInfo has Name, SumNum and
// RecordList; DeviceInfo has the device fields; DeviceControl has Result.
type Response struct {
	XMLName xml.Name `xml:"Response"`
	Header
	Result Result `xml:"Result,omitempty"`
	// SumNum is the total over all pages (Catalog, RecordInfo). It is written
	// only for those command types, so 0 is kept.
	SumNum int `xml:"SumNum"`
	// DeviceInfo.
	DeviceName   string `xml:"DeviceName,omitempty"`
	Manufacturer string `xml:"Manufacturer,omitempty"`
	Model        string `xml:"Model,omitempty"`
	Firmware     string `xml:"Firmware,omitempty"`
	Channel      *int   `xml:"Channel,omitempty"`
	// DeviceStatus.
	Online string `xml:"Online,omitempty"` // ONLINE or OFFLINE
	Status Result `xml:"Status,omitempty"`
	// RecordInfo.
	Name       string      `xml:"Name,omitempty"`
	DeviceList *DeviceList `xml:"DeviceList,omitempty"`
	RecordList *RecordList `xml:"RecordList,omitempty"`
}

// DeviceList is a catalog page; Num is the number of items in this page.
type DeviceList struct {
	Num   int    `xml:"Num,attr"`
	Items []Item `xml:"Item"`
}

// Item is one catalog entry (A.2.6.4): a device, a channel, a civil-code
// region, a business group (type 215) or a virtual organisation (type 216).
type Item struct {
	DeviceID        string  `xml:"DeviceID"`
	Event           Event   `xml:"Event,omitempty"` // catalog notify only
	Name            string  `xml:"Name,omitempty"`
	Manufacturer    string  `xml:"Manufacturer,omitempty"`
	Model           string  `xml:"Model,omitempty"`
	Owner           string  `xml:"Owner,omitempty"`
	CivilCode       string  `xml:"CivilCode,omitempty"`
	Block           string  `xml:"Block,omitempty"`
	Address         string  `xml:"Address,omitempty"`
	Parental        *int    `xml:"Parental,omitempty"` // 1 when the item has children
	ParentID        string  `xml:"ParentID,omitempty"`
	BusinessGroupID string  `xml:"BusinessGroupID,omitempty"`
	SafetyWay       *int    `xml:"SafetyWay,omitempty"`
	RegisterWay     *int    `xml:"RegisterWay,omitempty"`
	Secrecy         *int    `xml:"Secrecy,omitempty"`
	IPAddress       string  `xml:"IPAddress,omitempty"`
	Port            *int    `xml:"Port,omitempty"`
	Status          Status  `xml:"Status,omitempty"`
	Longitude       float64 `xml:"Longitude,omitempty"`
	Latitude        float64 `xml:"Latitude,omitempty"`
	Info            *Info   `xml:"Info,omitempty"`
}

// Info is an item's extension block.
type Info struct {
	// PTZType: 1 dome, 2 hemisphere, 3 fixed box, 4 fixed remote-controlled.
	PTZType *int `xml:"PTZType,omitempty"`
}

// RecordList is a RecordInfo page.
type RecordList struct {
	Num   int          `xml:"Num,attr"`
	Items []RecordItem `xml:"Item"`
}

// RecordItem is one recording in a RecordInfo response (A.2.6.6).
type RecordItem struct {
	DeviceID   string `xml:"DeviceID"`
	Name       string `xml:"Name,omitempty"`
	FilePath   string `xml:"FilePath,omitempty"`
	Address    string `xml:"Address,omitempty"`
	StartTime  *Time  `xml:"StartTime,omitempty"`
	EndTime    *Time  `xml:"EndTime,omitempty"`
	Secrecy    *int   `xml:"Secrecy,omitempty"`
	Type       string `xml:"Type,omitempty"`
	RecorderID string `xml:"RecorderID,omitempty"`
	FileSize   int64  `xml:"FileSize,omitempty"`
}

// Notify is a <Notify> body (A.2.5): Keepalive, Alarm, Catalog or MediaStatus.
type Notify struct {
	XMLName xml.Name `xml:"Notify"`
	Header
	// Keepalive.
	Status Result `xml:"Status,omitempty"`
	// Alarm.
	AlarmPriority    string     `xml:"AlarmPriority,omitempty"` // 1 (highest) … 4
	AlarmMethod      string     `xml:"AlarmMethod,omitempty"`   // 1 phone … 7 other
	AlarmTime        *Time      `xml:"AlarmTime,omitempty"`
	AlarmDescription string     `xml:"AlarmDescription,omitempty"`
	Longitude        float64    `xml:"Longitude,omitempty"`
	Latitude         float64    `xml:"Latitude,omitempty"`
	AlarmInfo        *AlarmInfo `xml:"Info,omitempty"`
	// Catalog notify; each item carries its Event.
	SumNum     *int        `xml:"SumNum,omitempty"`
	DeviceList *DeviceList `xml:"DeviceList,omitempty"`
	// MediaStatus: NotifyTypeMediaEnd.
	NotifyType string `xml:"NotifyType,omitempty"`
}

// AlarmInfo is an alarm's extension block.
type AlarmInfo struct {
	AlarmType string `xml:"AlarmType,omitempty"`
}

// Control is a <Control> body (A.2.3): DeviceControl.
type Control struct {
	XMLName xml.Name `xml:"Control"`
	Header
	PTZCmd    *PTZCmd `xml:"PTZCmd,omitempty"`
	TeleBoot  string  `xml:"TeleBoot,omitempty"`  // Boot
	RecordCmd string  `xml:"RecordCmd,omitempty"` // Record or StopRecord
	GuardCmd  string  `xml:"GuardCmd,omitempty"`  // SetGuard or ResetGuard
	// IFameCmd is spelled as in the standard (sic): Send asks for a key frame.
	IFameCmd string       `xml:"IFameCmd,omitempty"`
	Info     *ControlInfo `xml:"Info,omitempty"`
}

// ControlInfo is a control's extension block.
type ControlInfo struct {
	ControlPriority *int `xml:"ControlPriority,omitempty"`
}

// Head implements Message.
func (m *Query) Head() Header { return m.Header }

// Head implements Message.
func (m *Response) Head() Header { return m.Header }

// Head implements Message.
func (m *Notify) Head() Header { return m.Header }

// Head implements Message.
func (m *Control) Head() Header { return m.Header }

func (*Query) root() string    { return "Query" }
func (*Response) root() string { return "Response" }
func (*Notify) root() string   { return "Notify" }
func (*Control) root() string  { return "Control" }

// MarshalXML implements xml.Marshaler: SumNum is written only for Catalog
// and RecordInfo responses, where 0 is a real answer.
func (m *Response) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	type wire struct {
		XMLName xml.Name `xml:"Response"`
		Header
		Result       Result      `xml:"Result,omitempty"`
		DeviceName   string      `xml:"DeviceName,omitempty"`
		Manufacturer string      `xml:"Manufacturer,omitempty"`
		Model        string      `xml:"Model,omitempty"`
		Firmware     string      `xml:"Firmware,omitempty"`
		Channel      *int        `xml:"Channel,omitempty"`
		Online       string      `xml:"Online,omitempty"`
		Status       Result      `xml:"Status,omitempty"`
		Name         string      `xml:"Name,omitempty"`
		SumNum       *int        `xml:"SumNum,omitempty"`
		DeviceList   *DeviceList `xml:"DeviceList,omitempty"`
		RecordList   *RecordList `xml:"RecordList,omitempty"`
	}
	w := wire{
		Header: m.Header, Result: m.Result, DeviceName: m.DeviceName,
		Manufacturer: m.Manufacturer, Model: m.Model, Firmware: m.Firmware,
		Channel: m.Channel, Online: m.Online, Status: m.Status, Name: m.Name,
		DeviceList: m.DeviceList, RecordList: m.RecordList,
	}
	if m.CmdType == CmdCatalog || m.CmdType == CmdRecordInfo {
		n := m.SumNum
		w.SumNum = &n
	}
	return e.Encode(w)
}

func trimSpace(b []byte) []byte { return bytes.TrimSpace(b) }
