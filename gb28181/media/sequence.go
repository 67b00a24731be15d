package media

// sequencer puts RTP packets back in sequence-number order. It holds up to
// window-1 packets that arrived early while one is missing; when the window
// fills (or the receiver's gap timer fires, see flush) it gives up on the
// missing ones. Duplicates and packets that come after their successors were
// handed on are dropped. A window of 1 holds nothing (TCP).
type sequencer struct {
	next  uint16
	have  bool
	slots []slot // len a power of two; a held seq s sits at s % len
	held  int

	deliver func(b *[]byte, reordered bool)
	lost    func(n int)
	drop    func(b *[]byte)
}

type slot struct {
	b   *[]byte
	seq uint16
	ok  bool
}

// A packet maxLate or more behind, or maxJump or more ahead, is taken for a
// restarted sequence (a device that restarted its stream), counted as one
// loss.
const (
	maxLate = 512
	maxJump = 3000
)

func newSequencer(window int) *sequencer {
	n := 1
	for n < min(max(window, 1), 64) {
		n <<= 1
	}
	return &sequencer{slots: make([]slot, n)}
}

func (q *sequencer) push(seq uint16, b *[]byte) {
	if !q.have {
		q.have, q.next = true, seq
	}
	d := int16(seq - q.next)
	switch {
	case d == 0:
		q.deliver(b, false)
		q.next++
		q.drain()
	case d < 0 && d > -maxLate:
		q.drop(b)
	case d < 0 || int(d) >= len(q.slots):
		// A gap wider than the window, or a restarted sequence.
		q.flush()
		n := int(uint16(seq - q.next))
		if d < 0 || n >= maxJump {
			n = 1
		}
		if n > 0 {
			q.lost(n)
		}
		q.next = seq + 1
		q.deliver(b, false)
	default:
		sl := &q.slots[int(seq)%len(q.slots)]
		if sl.ok {
			q.drop(b)
			return
		}
		*sl = slot{b: b, seq: seq, ok: true}
		q.held++
		if q.held >= len(q.slots)-1 {
			q.skip()
		}
	}
}

// drain hands on the held packets that follow without a gap.
func (q *sequencer) drain() {
	for q.held > 0 {
		sl := &q.slots[int(q.next)%len(q.slots)]
		if !sl.ok || sl.seq != q.next {
			return
		}
		b := sl.b
		*sl = slot{}
		q.held--
		q.next++
		q.deliver(b, true)
	}
}

// skip gives up on the packets missing before the first held one.
func (q *sequencer) skip() {
	best := -1
	for i, sl := range q.slots {
		if sl.ok && (best < 0 || uint16(sl.seq-q.next) < uint16(q.slots[best].seq-q.next)) {
			best = i
		}
	}
	if best < 0 {
		return
	}
	q.lost(int(uint16(q.slots[best].seq - q.next)))
	q.next = q.slots[best].seq
	q.drain()
}

// flush hands on every held packet, giving up on the gaps between them.
func (q *sequencer) flush() {
	for q.held > 0 {
		q.skip()
	}
}
