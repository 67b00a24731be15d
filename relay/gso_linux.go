package relay

import (
	"encoding/binary"
	"errors"
	"runtime"
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

// gsoControlLen is room for the control message of gsoControl
// (syscall.CmsgSpace(2) is 24 bytes or less on every architecture).
const gsoControlLen = 24

// gsoControl writes into b (gsoControlLen bytes) the control message that
// makes one send carry packets of seg bytes, and returns it.
func gsoControl(b []byte, seg int) []byte {
	b = b[:syscall.CmsgSpace(2)]
	clear(b)
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

// sysSendmmsg is the number of the sendmmsg system call (0: not known for
// this architecture: batches are sent one destination at a time).
var sysSendmmsg = map[string]uintptr{"amd64": 307, "arm64": 269, "arm": 374, "386": 345, "riscv64": 269, "loong64": 269}[runtime.GOARCH]

// mmsghdr is struct mmsghdr of sendmmsg(2).
type mmsghdr struct {
	hdr syscall.Msghdr
	n   uint32
}

// mmsgScratch is the memory of batched sends, reused by one goroutine.
type mmsgScratch struct {
	hdrs  []mmsghdr
	iovs  []syscall.Iovec
	names []syscall.RawSockaddrInet4
	oob   []byte
	runs  []mmsgRun
}

// mmsgRun is one message: a run of packets of one batch.
type mmsgRun struct {
	b          *corkBatch
	off, total int
	first, end int // the run's packets in b.sizes
}

// maxMmsg bounds the messages of one sendmmsg (UIO_MAXIOV).
const maxMmsg = 1024

func (u *udpConn) sendMany(bs []*corkBatch, sc *mmsgScratch) error {
	var firstErr error
	note := func(err error) {
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	sc.runs = sc.runs[:0]
	for _, b := range bs {
		if !b.dst.Addr().Is4() || sysSendmmsg == 0 {
			note(u.send(b.dst, b.buf, b.sizes))
			continue
		}
		off := 0
		for i := 0; i < len(b.sizes); {
			j, total := nextRun(b.sizes, i)
			sc.runs = append(sc.runs, mmsgRun{b: b, off: off, total: total, first: i, end: j})
			off += total
			i = j
		}
	}
	if len(sc.runs) == 0 {
		return firstErr
	}
	n := len(sc.runs)
	sc.hdrs = slicesGrow(sc.hdrs, n)
	sc.iovs = slicesGrow(sc.iovs, n)
	sc.names = slicesGrow(sc.names, n)
	sc.oob = slicesGrow(sc.oob, n*gsoControlLen)
	for k, r := range sc.runs {
		name := &sc.names[k]
		*name = syscall.RawSockaddrInet4{Family: syscall.AF_INET, Addr: r.b.dst.Addr().As4()}
		p := (*[2]byte)(unsafe.Pointer(&name.Port))
		p[0], p[1] = byte(r.b.dst.Port()>>8), byte(r.b.dst.Port())
		iov := &sc.iovs[k]
		iov.Base = &r.b.buf[r.off]
		iov.SetLen(r.total)
		h := &sc.hdrs[k]
		*h = mmsghdr{}
		h.hdr.Name = (*byte)(unsafe.Pointer(name))
		h.hdr.Namelen = syscall.SizeofSockaddrInet4
		h.hdr.Iov = iov
		*(*uintptr)(unsafe.Pointer(&h.hdr.Iovlen)) = 1 // (its type differs between architectures: the size of a pointer)
		if r.end-r.first > 1 {
			oob := gsoControl(sc.oob[k*gsoControlLen:], r.b.sizes[r.first])
			h.hdr.Control = &oob[0]
			h.hdr.SetControllen(len(oob))
		}
	}
	rc, err := u.conn.SyscallConn()
	if err != nil {
		return err
	}
	for done := 0; done < n; {
		var sent int
		var errno syscall.Errno
		werr := rc.Write(func(fd uintptr) bool {
			cnt := min(n-done, maxMmsg)
			r, _, e := syscall.Syscall6(sysSendmmsg, fd, uintptr(unsafe.Pointer(&sc.hdrs[done])), uintptr(cnt), 0, 0, 0)
			if e == syscall.EAGAIN {
				return false // wait until the socket can take more
			}
			sent, errno = int(r), e
			return true
		})
		if werr != nil {
			note(werr)
			break
		}
		if errno == 0 {
			done += sent
			continue
		}
		// the message at done failed: send its packets one by one, go on after it
		r := sc.runs[done]
		if r.end-r.first > 1 && gsoUnsupported(errno) {
			u.gsoOff(errno)
		}
		if r.end-r.first > 1 {
			off := r.off
			for k := r.first; k < r.end; k++ {
				_, err := u.conn.WriteToUDPAddrPort(r.b.buf[off:off+r.b.sizes[k]], r.b.dst)
				note(err)
				off += r.b.sizes[k]
			}
		} else {
			note(errno)
		}
		done++
	}
	runtime.KeepAlive(sc)
	clear(sc.runs) // no batch kept
	return firstErr
}

// slicesGrow returns s with length n, its contents not kept.
func slicesGrow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n, n+n/4)
	}
	return s[:n]
}

// maxMmsgTest is how many messages a test sends to pass maxMmsg.
const maxMmsgTest = maxMmsg
