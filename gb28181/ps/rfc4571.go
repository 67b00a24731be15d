package ps

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// MaxFrameSize is the largest RTP packet RFC 4571 framing can carry.
const MaxFrameSize = 0xFFFF

// ErrFrameTooLarge is returned by AppendFrame for a packet over MaxFrameSize bytes.
var ErrFrameTooLarge = errors.New("rfc4571: packet over 65535 bytes")

// AppendFrame appends pkt with its RFC 4571 two-byte length prefix, the
// framing of RTP over TCP in GB/T 28181.
func AppendFrame(dst, pkt []byte) ([]byte, error) {
	if len(pkt) > MaxFrameSize {
		return dst, ErrFrameTooLarge
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(pkt)))
	return append(dst, pkt...), nil
}

// FrameReader reads RFC 4571 framed packets from a TCP stream.
type FrameReader struct {
	r   io.Reader
	buf []byte
	hdr [2]byte
}

// NewFrameReader returns a reader of framed packets from r. Wrap r in a
// bufio.Reader when it is a bare connection.
func NewFrameReader(r io.Reader) *FrameReader {
	return &FrameReader{r: r}
}

// ReadFrame returns the next packet, valid until the next call. It returns
// io.EOF at a clean end of stream, and an error wrapping
// io.ErrUnexpectedEOF when the stream ends inside a frame. Empty frames are
// skipped.
func (f *FrameReader) ReadFrame() ([]byte, error) {
	for {
		if _, err := io.ReadFull(f.r, f.hdr[:]); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, fmt.Errorf("rfc4571: stream ends inside a length prefix: %w", err)
			}
			return nil, err
		}
		n := int(binary.BigEndian.Uint16(f.hdr[:]))
		if n == 0 {
			continue
		}
		if cap(f.buf) < n {
			f.buf = make([]byte, n, max(n, 2048))
		}
		f.buf = f.buf[:n]
		if m, err := io.ReadFull(f.r, f.buf); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("rfc4571: frame of %d bytes cut after %d: %w", n, m, err)
		}
		return f.buf, nil
	}
}
