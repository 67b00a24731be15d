package relay

import (
	"encoding/binary"
	"errors"
	"syscall"
	"unsafe"
)

// Linux UDP generic segmentation offload (since 4.18): a control message
// SOL_UDP/UDP_SEGMENT with the segment size.
const (
	gsoSupported = true
	solUDP       = 17  // SOL_UDP
	udpSegment   = 103 // UDP_SEGMENT
)

// gsoControl is the control message that makes one send carry packets of seg bytes.
func gsoControl(seg int) []byte {
	b := make([]byte, syscall.CmsgSpace(2))
	h := (*syscall.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = solUDP, udpSegment
	h.SetLen(syscall.CmsgLen(2))
	binary.NativeEndian.PutUint16(b[syscall.CmsgLen(0):], uint16(seg))
	return b
}

// gsoUnsupported tells the errors of a kernel or device without UDP GSO.
func gsoUnsupported(err error) bool {
	return errors.Is(err, syscall.EIO) || errors.Is(err, syscall.EINVAL) ||
		errors.Is(err, syscall.ENOPROTOOPT) || errors.Is(err, syscall.EOPNOTSUPP)
}
