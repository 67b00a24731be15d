package sip

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
)

// maxBody bounds the MANSCDP body we parse.
const maxBody = 64 << 10

// message is the minimum of a MANSCDP body this package needs. It is the
// one place to switch to package gb28181/manscdp once that lands.
type message struct {
	CmdType  string `xml:"CmdType"`
	SN       string `xml:"SN"`
	DeviceID string `xml:"DeviceID"`
	Status   string `xml:"Status"`
}

// parseMessage reads a MANSCDP body (<Notify>, <Query>, <Response>, …).
// The fields read are ASCII in every charset GB/T 28181 allows (GB2312,
// GBK, GB18030, UTF-8), so bytes past ASCII (a name in GB2312 elsewhere in
// the body) are read as '?' instead of being decoded.
func parseMessage(body []byte) (message, error) {
	var m message
	if len(body) == 0 {
		return m, errors.New("manscdp: empty body")
	}
	if len(body) > maxBody {
		return m, fmt.Errorf("manscdp: body of %d bytes exceeds %d", len(body), maxBody)
	}
	ascii := make([]byte, len(body))
	for i, b := range body {
		if b >= 0x80 {
			b = '?'
		}
		ascii[i] = b
	}
	dec := xml.NewDecoder(bytes.NewReader(ascii))
	dec.CharsetReader = func(_ string, r io.Reader) (io.Reader, error) { return r, nil }
	if err := dec.Decode(&m); err != nil {
		return m, fmt.Errorf("manscdp: %w", err)
	}
	if m.CmdType == "" {
		return m, errors.New("manscdp: no CmdType")
	}
	return m, nil
}
