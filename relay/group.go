package relay

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/vigil-vms/vigil/ingest"
)

const (
	// groupSize bounds the viewers of a stream that one goroutine serves: a
	// stream with more has several groups, which the two cores of a small
	// host run side by side.
	groupSize = 128
	// slowServe and slowServes judge a viewer too slow for its group (its
	// writes block: a full TCP connection): served slowServes times in a
	// row for longer than slowServe, it gets its own goroutine, so that it
	// delays nobody. Writing a picture takes some tens of microseconds.
	slowServe  = 50 * time.Millisecond
	slowServes = 3
	// flushBytes is how many bytes of its viewers' packets a group collects
	// before it sends them (in one system call where it can): some tens of
	// messages a call, and few viewers' buffers held at once.
	flushBytes = 64 << 10
)

// noWait is a cancelled context: Subscription.Next returns what is queued
// without waiting.
var noWait = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

// groups are the fan-out goroutines of the relay: a viewer that plays over
// UDP on the relay's socket is served by a group of its stream's viewers
// (one goroutine woken once a unit for up to groupSize viewers) instead of a
// goroutine of its own woken for every unit. Each viewer keeps its own
// subscription, queue and state (backlog, step-down, picture loss), so a
// group changes only which goroutine writes; a viewer whose writes block
// (see slowServe) leaves its group for a goroutine of its own.
type groups struct {
	r  *Relay
	mu sync.Mutex
	by map[*ingest.Stream][]*group
}

// group is one fan-out goroutine: it waits for the stream's units on a
// subscription of its own (the clock), then serves each member what its
// subscription holds.
type group struct {
	st      *ingest.Stream
	clock   *ingest.Subscription
	ctx     context.Context
	cancel  context.CancelFunc
	members []*session // guarded by groups.mu

	// the group's goroutine only:
	round   []*session   // the members of the current round
	pending []*corkBatch // packets collected, not sent yet
	bytes   int          // in pending
	collect func(*corkBatch)
	scratch mmsgScratch
	r       *Relay
	conn    *udpConn // the relay's socket
}

// serve hands s to a group of its stream until the session ends (its
// context's error, or the error that ended its writes) or the group gives
// it back (back: a slow viewer, which the caller then serves itself).
func (gs *groups) serve(s *session) (back bool, err error) {
	g := gs.join(s)
	defer gs.leave(s, g)
	select {
	case <-s.ctx.Done():
		s.serveMu.Lock()
		s.grp = nil // the group no longer touches it
		s.serveMu.Unlock()
		return false, s.ctx.Err()
	case err := <-s.ejected:
		return err == nil, err
	}
}

func (gs *groups) join(s *session) *group {
	gs.mu.Lock()
	defer gs.mu.Unlock()
	var g *group
	for _, c := range gs.by[s.stream] {
		if len(c.members) < groupSize {
			g = c
			break
		}
	}
	if g == nil {
		ctx, cancel := context.WithCancel(context.Background())
		g = &group{
			st: s.stream, ctx: ctx, cancel: cancel, r: gs.r, conn: s.out.conn,
			clock: s.stream.Subscribe(ingest.SubscribeOptions{Kind: ingest.Other, QueueLen: queueLen, FromGOP: true}),
		}
		g.collect = g.add
		gs.by[s.stream] = append(gs.by[s.stream], g)
		gs.r.wg.Add(1)
		go func() {
			defer gs.r.wg.Done()
			g.run(gs)
		}()
	}
	s.serveMu.Lock()
	s.grp = g
	s.serveMu.Unlock()
	g.members = append(g.members, s)
	return g
}

func (gs *groups) leave(s *session, g *group) {
	gs.mu.Lock()
	defer gs.mu.Unlock()
	if i := slices.Index(g.members, s); i >= 0 {
		g.members = slices.Delete(g.members, i, i+1) // (zeroes the freed slot)
	}
	if len(g.members) > 0 {
		return
	}
	g.cancel()
	g.clock.Close() // now: the stream counts no subscriber of the group once its last viewer is gone
	list := gs.by[g.st]
	if i := slices.Index(list, g); i >= 0 {
		list = slices.Delete(list, i, i+1)
	}
	if len(list) == 0 {
		delete(gs.by, g.st)
	} else {
		gs.by[g.st] = list
	}
}

// run serves a round of the members for each unit of the stream until the
// last member leaves.
func (g *group) run(gs *groups) {
	defer g.clock.Close()
	for {
		_, _, err := g.clock.Next(g.ctx)
		switch {
		case err == nil:
			// the units that came meanwhile are served in this round too
			for {
				if _, _, err := g.clock.Next(noWait); err != nil {
					break
				}
			}
		case errors.Is(err, ingest.ErrStreamClosed):
			// the round gives every member its end; one that joins later
			// gets it at the next
			select {
			case <-g.ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
		default:
			return // the last member left
		}
		g.serve(gs)
	}
}

// serve gives each member what its subscription holds.
func (g *group) serve(gs *groups) {
	gs.mu.Lock()
	g.round = append(g.round[:0], g.members...)
	gs.mu.Unlock()
	for _, s := range g.round {
		s.serveMu.Lock()
		if s.grp != g {
			s.serveMu.Unlock()
			continue
		}
		t0 := time.Now()
		s.out.collect = g.collect
		err := s.drain(t0)
		s.out.collect = nil
		if time.Since(t0) > slowServe {
			s.slowServes++
		} else {
			s.slowServes = 0
		}
		if err != nil || s.slowServes >= slowServes {
			if err == nil {
				s.log.Info("viewer writes slowly: served on its own, apart from the other viewers")
			}
			s.grp = nil
			s.ejected <- err // once a join: the channel has room
		}
		s.serveMu.Unlock()
	}
	g.flush()
	clear(g.round)
}

// add takes a viewer's packets of a picture; they leave with the others'
// at the end of the round, or once flushBytes wait.
func (g *group) add(b *corkBatch) {
	g.pending = append(g.pending, b)
	if g.bytes += b.size(); g.bytes >= flushBytes {
		g.flush()
	}
}

func (g *group) flush() {
	if len(g.pending) == 0 {
		return
	}
	if err := g.conn.sendBatches(g.pending, &g.scratch); err != nil {
		g.r.writeErrors.Add(1)
		g.r.warnings.log(slog.LevelWarn, "write", "packets to viewers lost: could not send them", "err", err)
	}
	clear(g.pending)
	g.pending, g.bytes = g.pending[:0], 0
}
