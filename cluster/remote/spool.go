package remote

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/vigil-vms/vigil/recorder/archive"
)

// keyTTL is how long the node that listed a spooled segment is remembered
// for reading and pinning it.
const keyTTL = time.Hour

// Spool is the spooled part of every camera's recording for review: this
// node's spool joined with the spool of the camera's owner. It implements
// review.Spooled.
type Spool struct {
	n *Node

	mu     sync.Mutex
	keys   map[string]keyOwner  // segment key → the other node that listed it
	warned map[string]time.Time // node → last warning that it cannot be reached
	wg     sync.WaitGroup       // unpins under way
}

type keyOwner struct {
	peer peer
	seen time.Time
}

// segmentsBody is the answer of /internal/v1/spool/segments/{camera}.
type segmentsBody struct {
	Segments []archive.Segment `json:"segments"`
}

// Spooled returns the camera's spooled segments overlapping [start, end),
// oldest first: those of this node's spool (a camera that moved away may
// still have segments waiting here), and those its owner lists. An owner
// that cannot be reached lists none: that is logged, not an error.
func (s *Spool) Spooled(camera string, start, end time.Time) []archive.Segment {
	var out []archive.Segment
	if s.n.opts.Spool != nil {
		out = s.n.opts.Spool.Spooled(camera, start, end)
	}
	p, local, err := s.n.owner(camera)
	if err != nil || local {
		return out
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.n.opts.Timeout)
	defer cancel()
	q := url.Values{"start": {start.UTC().Format(time.RFC3339Nano)}, "end": {end.UTC().Format(time.RFC3339Nano)}}
	_, b, err := s.n.call(ctx, p, http.MethodGet, "/internal/v1/spool/segments/"+url.PathEscape(camera), q, nil, "", http.StatusOK)
	var body segmentsBody
	if err == nil {
		err = json.Unmarshal(b, &body)
	}
	if err != nil {
		s.warn(p, "cannot list the spooled segments of a camera on its owner: playback shows the uploaded part only", "camera", camera, "error", err)
		return out
	}
	have := make(map[string]bool, len(out))
	for _, seg := range out {
		have[seg.Key] = true
	}
	now := time.Now()
	s.mu.Lock()
	for k, o := range s.keys {
		if now.Sub(o.seen) > keyTTL {
			delete(s.keys, k)
		}
	}
	for _, seg := range body.Segments {
		if have[seg.Key] || seg.Camera != camera || !seg.Start.Before(end) || !seg.End.After(start) {
			continue
		}
		s.keys[seg.Key] = keyOwner{peer: p, seen: now}
		out = append(out, seg)
	}
	s.mu.Unlock()
	sort.SliceStable(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}

// warn logs a failure to reach p at most once a minute per node.
func (s *Spool) warn(p peer, msg string, args ...any) {
	now := time.Now()
	s.mu.Lock()
	if s.warned == nil {
		s.warned = map[string]time.Time{}
	}
	quiet := now.Sub(s.warned[p.name]) < time.Minute
	if !quiet {
		s.warned[p.name] = now
	}
	s.mu.Unlock()
	if !quiet {
		s.n.log.Warn(msg, append([]any{"node", p.name}, args...)...)
	}
}

// lookup returns the other node that listed key.
func (s *Spool) lookup(key string) (peer, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.keys[key]
	return o.peer, ok
}

// pinBody is the answer of POST /internal/v1/spool/pins.
type pinBody struct {
	Pin string `json:"pin"`
}

// Pin keeps a spooled segment's file until unpin is called: on the node
// that listed it (which ends the pin by itself after Options.PinTTL should
// this node not call unpin), or here.
func (s *Spool) Pin(key string) (unpin func()) {
	p, ok := s.lookup(key)
	if !ok {
		if s.n.opts.Spool == nil {
			return func() {}
		}
		return s.n.opts.Spool.Pin(key)
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.n.opts.Timeout)
	defer cancel()
	_, b, err := s.n.call(ctx, p, http.MethodPost, "/internal/v1/spool/pins", url.Values{"key": {key}}, nil, "", http.StatusOK)
	var body pinBody
	if err == nil {
		err = json.Unmarshal(b, &body)
	}
	if err != nil {
		// Not fatal: an unpinned file that goes is read from the store.
		s.warn(p, "cannot pin a spooled segment on its owner", "segment", key, "error", err)
		return func() {}
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			s.wg.Add(1)
			go func() { // the reader goes on at once; the owner drops the pin by itself if this fails
				defer s.wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), s.n.opts.Timeout)
				defer cancel()
				if _, _, err := s.n.call(ctx, p, http.MethodDelete, "/internal/v1/spool/pins/"+url.PathEscape(body.Pin), nil, nil, "", http.StatusOK); err != nil {
					s.warn(p, "cannot unpin a spooled segment on its owner", "segment", key, "error", err)
				}
			}()
		})
	}
}

// readTimeout bounds reading one part of a spooled segment from another
// node.
const readTimeout = 2 * time.Minute

// ReadSpooled reads length bytes at off of a spooled segment: from the node
// that listed it, or from this node's spool. ok is false when the spool no
// longer holds it, and also when its node cannot be reached (logged): the
// reader then reads the store, which has it if it was uploaded.
func (s *Spool) ReadSpooled(key string, off, length int64) (io.ReadCloser, bool, error) {
	p, ok := s.lookup(key)
	if !ok {
		if s.n.opts.Spool == nil {
			return nil, false, nil
		}
		return s.n.opts.Spool.ReadSpooled(key, off, length)
	}
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	q := url.Values{"key": {key}, "off": {strconv.FormatInt(off, 10)}, "len": {strconv.FormatInt(length, 10)}}
	resp, err := s.n.do(ctx, p, http.MethodGet, "/internal/v1/spool/read", q, nil, "")
	if err != nil {
		cancel()
		s.warn(p, "cannot read a spooled segment on its owner: reading the store instead", "segment", key, "error", err)
		return nil, false, nil
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		return &cancelBody{ReadCloser: resp.Body, cancel: cancel}, true, nil
	case resp.StatusCode == http.StatusNotFound && resp.Header.Get(headerSpool) == "gone":
		resp.Body.Close()
		cancel()
		return nil, false, nil
	}
	err = readError(p.name, resp)
	resp.Body.Close()
	cancel()
	return nil, false, err
}

// cancelBody ends a read's context when it is closed.
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}
