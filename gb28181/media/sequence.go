package media

// sequencer puts RTP packets back in sequence-number order. It holds up to
// window-1 packets that arrived early while one is missing; when the window
// fills (or the receiver's gap timer fires, see flush) it gives up on the
// missing ones. Duplicates and packets that come after their successors were
// handed on are dropped. A window of 1 holds nothing (TCP).
//
// The first packets are held too (priming) until the window fills or the
// gap timer fires, so that a packet sent before the first one to arrive
// still comes first: a stream starts with a pack header and, after the
// INVITE's keyframe request, a keyframe, which should not be lost to
// reordering.
type sequencer struct {
	next    uint16
	have    bool
	priming bool
	slots   []slot // len a power of two; a held seq s sits at s % len
	held    int

	deliver func(b *[]byte, reordered bool)
	lost    func(n int)
	drop    func(b *[]byte)
}

type slot struct {
	b     *[]byte
	seq   uint16
	ok    bool
	early bool // held because one before it was missing (not priming)
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
	return &sequencer{slots: make([]slot, n), priming: n > 1}
}

func (q *sequencer) push(seq uint16, b *[]byte) {
	if !q.have {
		q.have, q.next = true, seq
	}
	d := int16(seq - q.next)
	if q.priming && d < 0 && q.fits(seq) {
		q.next, d = seq, 0 // sent before the first packet that arrived
	}
	if q.priming && int(d) >= len(q.slots) {
		q.endPriming() // hand on what is in order; the window moves on
		d = int16(seq - q.next)
	}
	switch {
	case d == 0 && !q.priming:
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
	default: // 0 < d < window, or 0 ≤ d while priming
		sl := &q.slots[int(seq)%len(q.slots)]
		if sl.ok {
			q.drop(b)
			return
		}
		*sl = slot{b: b, seq: seq, ok: true, early: !q.priming}
		q.held++
		if q.held >= len(q.slots)-1 {
			q.endPriming()
			if q.held >= len(q.slots)-1 {
				q.skip()
			}
		}
	}
}

// fits reports whether seq, before next, can become next with every held
// packet still within the window.
func (q *sequencer) fits(seq uint16) bool {
	for _, sl := range q.slots {
		if sl.ok && int(uint16(sl.seq-seq)) >= len(q.slots) {
			return false
		}
	}
	return int(uint16(q.next-seq)) < len(q.slots)
}

func (q *sequencer) endPriming() {
	if q.priming {
		q.priming = false
		q.drain()
	}
}

// drain hands on the held packets that follow without a gap.
func (q *sequencer) drain() {
	for q.held > 0 {
		sl := &q.slots[int(q.next)%len(q.slots)]
		if !sl.ok || sl.seq != q.next {
			return
		}
		b, early := sl.b, sl.early
		*sl = slot{}
		q.held--
		q.next++
		q.deliver(b, early)
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
	q.endPriming()
	for q.held > 0 {
		q.skip()
	}
}
