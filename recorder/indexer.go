package recorder

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-vms/vigil/cluster/lease"
	"github.com/vigil-vms/vigil/recorder/archive"
)

// maxIndexBatch bounds the rows written in one index transaction.
const maxIndexBatch = 256

// indexer writes the index rows of the stored segments. An uploader hands
// it a segment once the store has it and goes on with the next one; the
// indexer writes every row handed to it meanwhile in one transaction
// (Index.Add), then lets the spool remove their files. At a shutdown, when
// every camera closes its segment at once, the rows of hundreds of segments
// are written in a few transactions instead of one each. A segment stays in
// the spool, busy, until its row is written: a crash before that leaves its
// spool file to the next start's recovery, as a crash between put and row
// always did.
type indexer struct {
	r    *Recorder
	mu   sync.Mutex
	rows []*spoolItem
	kick chan struct{} // one pending wake-up

	txs     atomic.Int64 // transactions written, for tests and logs
	indexed atomic.Int64 // rows written
	// beforeTx, when set by a test, runs before each transaction with the
	// number of rows it will write.
	beforeTx func(rows int)
}

func newIndexer(r *Recorder) *indexer {
	return &indexer{r: r, kick: make(chan struct{}, 1)}
}

// add queues the row of a stored segment.
func (x *indexer) add(it *spoolItem) {
	x.mu.Lock()
	x.rows = append(x.rows, it)
	x.mu.Unlock()
	select {
	case x.kick <- struct{}{}:
	default:
	}
}

// run writes the queued rows until stop is closed, then writes the rest
// and returns. ctx bounds the transactions (the shutdown grace).
func (x *indexer) run(ctx context.Context, stop <-chan struct{}) {
	for {
		select {
		case <-x.kick:
			x.flush(ctx)
		case <-stop:
			x.flush(ctx)
			return
		}
	}
}

// flush writes the queued rows, maxIndexBatch at a time.
func (x *indexer) flush(ctx context.Context) {
	for {
		x.mu.Lock()
		n := min(len(x.rows), maxIndexBatch)
		batch := x.rows[:n:n]
		x.rows = x.rows[n:]
		if len(x.rows) == 0 {
			x.rows = nil
		}
		x.mu.Unlock()
		if n == 0 {
			return
		}
		x.write(ctx, batch)
	}
}

// write indexes a batch in one transaction; when that fails, row by row, so
// that each segment gets its own result (and a bad one cannot hold back the
// others).
func (x *indexer) write(ctx context.Context, batch []*spoolItem) {
	if x.beforeTx != nil {
		x.beforeTx(len(batch))
	}
	segs := make([]archive.Segment, len(batch))
	for i, it := range batch {
		segs[i] = *it.seg
	}
	x.txs.Add(1)
	err := x.r.opts.Index.Add(ctx, segs...)
	if err == nil || len(batch) == 1 {
		for _, it := range batch {
			x.done(it, err)
		}
		return
	}
	x.r.log.Warn("recorder: index batch failed, rows written one by one", "rows", len(batch), "err", err)
	for _, it := range batch {
		x.txs.Add(1)
		x.done(it, x.r.opts.Index.Add(ctx, *it.seg))
	}
}

func (x *indexer) done(it *spoolItem, err error) {
	if err != nil && errors.Is(err, lease.ErrFenced) {
		// refused by the index's fence: the object just stored goes too
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		derr := x.r.opts.Store.Delete(dctx, it.key)
		cancel()
		if derr != nil {
			x.r.log.Error("recorder: fenced segment stored but not indexed; delete it from the store", "segment", it.key, "err", derr)
		}
		err = &fencedError{err}
	}
	if err == nil {
		x.indexed.Add(1)
		x.r.stored.Add(it.size)
		x.r.log.Debug("recorder: segment stored", "camera", it.seg.Camera, "segment", it.key, "bytes", it.size)
	}
	x.r.spool.done(it, err)
}
