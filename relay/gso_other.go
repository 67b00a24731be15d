//go:build !linux

package relay

const gsoSupported = false

const gsoControlLen = 0

func gsoControl([]byte, int) []byte { return nil }

// mmsgScratch is not used where there is no sendmmsg.
type mmsgScratch struct{}

func (u *udpConn) sendMany(bs []*corkBatch, _ *mmsgScratch) error {
	var firstErr error
	for _, b := range bs {
		if err := u.send(b.dst, b.buf, b.sizes); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

func gsoUnsupported(error) bool { return true }

const maxMmsgTest = 8
