package manscdp

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// MaxBodySize is the largest body Decode accepts. A full SIP message over
// UDP is at most 64 KiB, and a catalog page over TCP is a few KiB; 1 MiB
// leaves room for a large RecordInfo page and bounds the work per message.
const MaxBodySize = 1 << 20

// ErrBodyTooLarge is returned (wrapped) for bodies over MaxBodySize.
var ErrBodyTooLarge = errors.New("manscdp: body larger than 1 MiB")

// UnsupportedError is returned for a root element or CmdType this package
// does not handle, so a caller can answer "not supported" instead of
// treating the device as broken.
type UnsupportedError struct {
	Root    string
	CmdType string // empty when the root itself is unknown
}

func (e *UnsupportedError) Error() string {
	if e.CmdType == "" {
		return fmt.Sprintf("manscdp: root element <%s> is not Query, Response, Notify or Control", e.Root)
	}
	return fmt.Sprintf("manscdp: %s with CmdType %q is not supported", e.Root, e.CmdType)
}

// FieldError is returned when a required field is missing or malformed.
type FieldError struct {
	Root    string
	CmdType CmdType
	Field   string // element path, e.g. "DeviceList/Item[3]/DeviceID"
	Reason  string
}

func (e *FieldError) Error() string {
	if e.CmdType == "" {
		return fmt.Sprintf("manscdp: %s: <%s> %s", e.Root, e.Field, e.Reason)
	}
	return fmt.Sprintf("manscdp: %s %s: <%s> %s", e.Root, e.CmdType, e.Field, e.Reason)
}

var supported = map[string][]CmdType{
	"Query":    {CmdCatalog, CmdDeviceInfo, CmdDeviceStatus, CmdRecordInfo},
	"Response": {CmdCatalog, CmdDeviceInfo, CmdDeviceStatus, CmdRecordInfo, CmdDeviceControl, CmdAlarm},
	"Notify":   {CmdKeepalive, CmdAlarm, CmdCatalog, CmdMediaStatus},
	"Control":  {CmdDeviceControl},
}

// probe reads the fields whose presence decides what the body is.
type probe struct {
	XMLName  xml.Name
	CmdType  *string `xml:"CmdType"`
	SN       *string `xml:"SN"`
	DeviceID *string `xml:"DeviceID"`
	SumNum   *string `xml:"SumNum"`
}

// Decode reads one MANSCDP body: it picks the character set from the XML
// declaration (GB2312 when there is none), converts to UTF-8, checks the
// root, CmdType, SN and DeviceID and the fields the command requires, and
// returns a *Query, *Response, *Notify or *Control. Errors are
// *CharsetError, *UnsupportedError, *FieldError, ErrBodyTooLarge or an XML
// syntax error, each with the manscdp prefix and a sentence naming what to
// fix.
func Decode(body []byte) (Message, error) {
	m, _, err := DecodeCharset(body)
	return m, err
}

// DecodeCharset is Decode that also returns the charset the body was read
// in (GB2312 when it had no declaration), so an answer can be written in
// the same one.
func DecodeCharset(body []byte) (Message, Charset, error) {
	return decode(body, "")
}

// DecodeAs is Decode reading the body in cs whatever its declaration says,
// for a device configured as sending one charset while declaring another
// (typically UTF-8 declared as GB2312, which GB decoding turns into wrong
// characters without any invalid byte to notice).
func DecodeAs(body []byte, cs Charset) (Message, error) {
	m, _, err := decode(body, cs)
	return m, err
}

func decode(body []byte, override Charset) (Message, Charset, error) {
	if len(body) > MaxBodySize {
		return nil, "", fmt.Errorf("%w (%d bytes)", ErrBodyTooLarge, len(body))
	}
	text, cs, err := toUTF8(body, override)
	if err != nil {
		return nil, cs, err
	}
	m, err := decodeText(text)
	if err != nil {
		return nil, cs, err
	}
	return m, cs, nil
}

func decodeText(text []byte) (Message, error) {
	var p probe
	if err := unmarshalStrict(text, &p); err != nil {
		return nil, err
	}
	root := p.XMLName.Local
	cmds, ok := supported[root]
	if !ok {
		return nil, &UnsupportedError{Root: root}
	}
	if p.CmdType == nil || strings.TrimSpace(*p.CmdType) == "" {
		return nil, &FieldError{Root: root, Field: "CmdType", Reason: "is missing"}
	}
	cmd := CmdType(strings.TrimSpace(*p.CmdType))
	known := false
	for _, c := range cmds {
		known = known || c == cmd
	}
	if !known {
		return nil, &UnsupportedError{Root: root, CmdType: string(cmd)}
	}
	ferr := func(field, format string, a ...any) error {
		return &FieldError{Root: root, CmdType: cmd, Field: field, Reason: fmt.Sprintf(format, a...)}
	}
	if p.SN == nil {
		return nil, ferr("SN", "is missing")
	}
	if _, err := strconv.ParseUint(strings.TrimSpace(*p.SN), 10, 31); err != nil {
		return nil, ferr("SN", "%q is not an integer in 0…2147483647", *p.SN)
	}
	if p.DeviceID == nil {
		return nil, ferr("DeviceID", "is missing")
	}
	if err := checkID(strings.TrimSpace(*p.DeviceID)); err != "" {
		return nil, ferr("DeviceID", "%s", err)
	}
	var m Message
	switch root {
	case "Query":
		m = &Query{}
	case "Response":
		m = &Response{}
	case "Notify":
		m = &Notify{}
	default:
		m = &Control{}
	}
	if err := unmarshalStrict(text, m); err != nil {
		return nil, fmt.Errorf("manscdp: %s %s: %w", root, cmd, err)
	}
	if err := validate(m, p.SumNum != nil, ferr); err != nil {
		return nil, err
	}
	return m, nil
}

// unmarshalStrict decodes the one root element of text into v and rejects
// anything but whitespace, comments and processing instructions after it.
func unmarshalStrict(text []byte, v any) error {
	d := xml.NewDecoder(bytes.NewReader(text))
	if err := d.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return errors.New("manscdp: body has no XML element")
		}
		var se *xml.SyntaxError
		if errors.As(err, &se) {
			return fmt.Errorf("manscdp: malformed XML: %w", err)
		}
		return err
	}
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("manscdp: malformed XML after the root element: %w", err)
		}
		switch t := tok.(type) {
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return fmt.Errorf("manscdp: text %q after the root element", tail(string(t)))
			}
		case xml.Comment, xml.ProcInst:
		default:
			return errors.New("manscdp: more than one root element")
		}
	}
}

// checkID returns why id is not a 20-digit GB/T 28181 code, or "".
func checkID(id string) string {
	if len(id) != 20 {
		return fmt.Sprintf("%q has %d characters, want 20 digits", id, len(id))
	}
	for i := 0; i < len(id); i++ {
		if id[i] < '0' || id[i] > '9' {
			return fmt.Sprintf("%q has a non-digit at position %d, want 20 digits", id, i+1)
		}
	}
	return ""
}

// validate checks the fields each command requires (GB/T 28181-2016 A.2).
func validate(m Message, hasSumNum bool, ferr func(field, format string, a ...any) error) error {
	switch m := m.(type) {
	case *Query:
		m.DeviceID = strings.TrimSpace(m.DeviceID)
		if m.CmdType == CmdRecordInfo {
			if m.StartTime == nil {
				return ferr("StartTime", "is missing")
			}
			if m.EndTime == nil {
				return ferr("EndTime", "is missing")
			}
			if m.EndTime.Before(m.StartTime.Time) {
				return ferr("EndTime", "%s is before StartTime %s", m.EndTime.Format(TimeLayout), m.StartTime.Format(TimeLayout))
			}
		}
	case *Response:
		m.DeviceID = strings.TrimSpace(m.DeviceID)
		switch m.CmdType {
		case CmdCatalog, CmdRecordInfo:
			if !hasSumNum {
				return ferr("SumNum", "is missing")
			}
			if m.SumNum < 0 {
				return ferr("SumNum", "%d is negative", m.SumNum)
			}
		case CmdDeviceControl, CmdAlarm:
			if m.Result != ResultOK && m.Result != ResultError {
				return ferr("Result", "%q is not OK or ERROR", string(m.Result))
			}
		}
		if m.DeviceList != nil {
			if err := checkItems(m.DeviceList.Items, false, ferr); err != nil {
				return err
			}
		}
		if m.RecordList != nil {
			for i, it := range m.RecordList.Items {
				if why := checkID(strings.TrimSpace(it.DeviceID)); why != "" {
					return ferr(fmt.Sprintf("RecordList/Item[%d]/DeviceID", i+1), "%s", why)
				}
			}
		}
	case *Notify:
		m.DeviceID = strings.TrimSpace(m.DeviceID)
		switch m.CmdType {
		case CmdKeepalive:
			if m.Status != ResultOK && m.Status != ResultError {
				return ferr("Status", "%q is not OK or ERROR", string(m.Status))
			}
		case CmdAlarm:
			if m.AlarmPriority == "" {
				return ferr("AlarmPriority", "is missing")
			}
			if m.AlarmMethod == "" {
				return ferr("AlarmMethod", "is missing")
			}
			if m.AlarmTime == nil {
				return ferr("AlarmTime", "is missing")
			}
		case CmdMediaStatus:
			m.NotifyType = strings.TrimSpace(m.NotifyType)
			if m.NotifyType == "" {
				return ferr("NotifyType", "is missing")
			}
		case CmdCatalog:
			if !hasSumNum {
				return ferr("SumNum", "is missing")
			}
			if m.DeviceList == nil {
				return ferr("DeviceList", "is missing")
			}
			if err := checkItems(m.DeviceList.Items, true, ferr); err != nil {
				return err
			}
		}
	case *Control:
		m.DeviceID = strings.TrimSpace(m.DeviceID)
		if m.PTZCmd == nil && m.TeleBoot == "" && m.RecordCmd == "" && m.GuardCmd == "" && m.IFameCmd == "" {
			return ferr("PTZCmd", "is missing (and no TeleBoot, RecordCmd, GuardCmd or IFameCmd either)")
		}
		if v := m.RecordCmd; v != "" && v != "Record" && v != "StopRecord" {
			return ferr("RecordCmd", "%q is not Record or StopRecord", v)
		}
		if v := m.GuardCmd; v != "" && v != "SetGuard" && v != "ResetGuard" {
			return ferr("GuardCmd", "%q is not SetGuard or ResetGuard", v)
		}
		if v := m.IFameCmd; v != "" && v != "Send" {
			return ferr("IFameCmd", "%q is not Send", v)
		}
	}
	return nil
}

func checkItems(items []Item, needEvent bool, ferr func(field, format string, a ...any) error) error {
	for i := range items {
		it := &items[i]
		it.DeviceID = strings.TrimSpace(it.DeviceID)
		if why := checkID(it.DeviceID); why != "" {
			return ferr(fmt.Sprintf("DeviceList/Item[%d]/DeviceID", i+1), "%s", why)
		}
		if needEvent && it.Event == "" {
			return ferr(fmt.Sprintf("DeviceList/Item[%d]/Event", i+1), "is missing")
		}
	}
	return nil
}
