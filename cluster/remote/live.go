package remote

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/apierr"
)

// sessionTTL is how long a remote session is remembered at most (ui
// remembers a session's owner as long).
const sessionTTL = 24 * time.Hour

// Live sends each WHEP request to the relay of the camera's owner: this
// node's relay, or another node's through its internal endpoints. It
// implements ui.Live.
type Live struct {
	n *Node

	mu         sync.Mutex
	sessions   map[string]*session  // sessions on other nodes, by id
	refreshing map[string]bool      // nodes being asked about their sessions
	warned     map[string]time.Time // node → last warning that it cannot be reached
}

// session is a WHEP session on another node.
type session struct {
	peer    peer
	created time.Time
	alive   bool
	checked time.Time // last answer of the owner about it
}

// Offer answers the offer with the relay of the camera's owner. An owner
// that does not have the camera (it moved meanwhile: the lease changed
// hands) is asked again once, when the cluster names another owner now.
func (l *Live) Offer(ctx context.Context, camera string, kind ingest.StreamKind, offerSDP string) (string, string, error) {
	if err := l.waitOwner(ctx, camera); err != nil {
		return "", "", err
	}
	for attempt := 0; ; attempt++ {
		p, local, err := l.n.owner(camera)
		if err != nil {
			return "", "", err
		}
		id, answer, err := l.offerTo(ctx, p, local, camera, kind, offerSDP)
		if err != nil && attempt == 0 && errors.Is(err, apierr.ErrNotFound) {
			if now, _, _, ok := l.n.opts.Owners.Owner(camera); ok && now != p.name {
				continue
			}
		}
		return id, answer, err
	}
}

func (l *Live) offerTo(ctx context.Context, p peer, local bool, camera string, kind ingest.StreamKind, offerSDP string) (string, string, error) {
	if local {
		return l.offerHere(ctx, camera, kind, offerSDP)
	}
	ctx, cancel := context.WithTimeout(ctx, l.n.opts.OfferTimeout)
	defer cancel()
	resp, answer, err := l.n.call(ctx, p, http.MethodPost, "/internal/v1/live/offer/"+url.PathEscape(camera),
		url.Values{"stream": {string(kind)}}, strings.NewReader(offerSDP), "application/sdp", http.StatusCreated)
	if err != nil {
		return "", "", err
	}
	id := resp.Header.Get(headerSession)
	if id == "" {
		return "", "", apierr.New(apierr.ErrUnavailable, "node %s answered an offer without a session", p.name)
	}
	now := time.Now()
	l.mu.Lock()
	for k, s := range l.sessions {
		if now.Sub(s.created) > sessionTTL {
			delete(l.sessions, k)
		}
	}
	l.sessions[id] = &session{peer: p, created: now, alive: true, checked: now}
	l.mu.Unlock()
	return id, string(answer), nil
}

// startWait bounds how long an offer for a camera this node has just
// acquired waits for the camera to start here: the lease is this node's a
// moment before the dispatcher has read the camera and started its streams.
var startWait = 3 * time.Second

// waitOwner waits up to startWait for a node to hold camera's lease: a
// camera created a moment ago is taken by a node within milliseconds. A
// camera being taken over from a node that died waits longer (up to the
// lease TTL); its offer is refused as unavailable, to be tried again.
func (l *Live) waitOwner(ctx context.Context, camera string) error {
	deadline := time.Now().Add(startWait)
	for {
		if _, _, _, ok := l.n.opts.Owners.Owner(camera); ok || time.Now().After(deadline) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// offerHere answers the offer with this node's relay.
func (l *Live) offerHere(ctx context.Context, camera string, kind ingest.StreamKind, offerSDP string) (string, string, error) {
	deadline := time.Now().Add(startWait)
	for {
		id, answer, err := l.n.opts.Relay.Offer(ctx, camera, kind, offerSDP)
		if !errors.Is(err, apierr.ErrNotFound) || time.Now().After(deadline) {
			return id, answer, err
		}
		if _, _, local, _ := l.n.opts.Owners.Owner(camera); !local {
			return id, answer, err
		}
		select {
		case <-ctx.Done():
			return id, answer, err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// remote returns the session's owner when it is on another node.
func (l *Live) remote(id string) (peer, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s, ok := l.sessions[id]
	if !ok {
		return peer{}, false
	}
	return s.peer, true
}

// Patch passes trickle-ICE candidates to the session's relay.
func (l *Live) Patch(ctx context.Context, id, frag string) error {
	p, ok := l.remote(id)
	if !ok {
		return l.n.opts.Relay.Patch(ctx, id, frag)
	}
	ctx, cancel := context.WithTimeout(ctx, l.n.opts.Timeout)
	defer cancel()
	_, _, err := l.n.call(ctx, p, http.MethodPatch, "/internal/v1/live/sessions/"+url.PathEscape(id), nil,
		strings.NewReader(frag), "application/trickle-ice-sdpfrag", http.StatusNoContent)
	return err
}

// Delete ends the session on its relay; a session on another node is
// forgotten here whatever the owner answers.
func (l *Live) Delete(id string) error {
	p, ok := l.remote(id)
	if !ok {
		return l.n.opts.Relay.Delete(id)
	}
	l.mu.Lock()
	delete(l.sessions, id)
	l.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), l.n.opts.Timeout)
	defer cancel()
	_, _, err := l.n.call(ctx, p, http.MethodDelete, "/internal/v1/live/sessions/"+url.PathEscape(id), nil, nil, "", http.StatusOK)
	return err
}

// aliveGrace is how long a session on a node that cannot be reached counts
// as alive from the owner's last answer.
const aliveGrace = 30 * time.Second

// Alive tells whether a session exists. For one on another node it answers
// at once from the owner's last answer (ui asks while holding its lock),
// and asks the owner again, in the background, when that answer is older
// than Options.AliveFor: a session that ended on its owner is seen dead
// within about AliveFor.
func (l *Live) Alive(id string) bool {
	l.mu.Lock()
	s, ok := l.sessions[id]
	if !ok {
		l.mu.Unlock()
		return l.n.opts.Relay.Alive(id)
	}
	alive := s.alive
	if time.Since(s.checked) > l.n.opts.AliveFor && !l.refreshing[s.peer.name] {
		l.refreshing[s.peer.name] = true
		go l.refresh(s.peer)
	}
	l.mu.Unlock()
	return alive
}

// aliveBody is the request and answer of /internal/v1/live/alive.
type aliveBody struct {
	Sessions []string `json:"sessions"`
}

// refresh asks p which of its sessions (this node's viewers') still exist,
// in one request, and forgets those that do not.
func (l *Live) refresh(p peer) {
	defer func() {
		l.mu.Lock()
		delete(l.refreshing, p.name)
		l.mu.Unlock()
	}()
	var ids []string
	l.mu.Lock()
	for id, s := range l.sessions {
		if s.peer.name == p.name {
			ids = append(ids, id)
		}
	}
	l.mu.Unlock()
	if len(ids) == 0 {
		return
	}
	b, _ := json.Marshal(aliveBody{Sessions: ids})
	ctx, cancel := context.WithTimeout(context.Background(), l.n.opts.Timeout)
	defer cancel()
	_, body, err := l.n.call(ctx, p, http.MethodPost, "/internal/v1/live/alive", nil, bytes.NewReader(b), "application/json", http.StatusOK)
	var ans aliveBody
	if err == nil {
		err = json.Unmarshal(body, &ans)
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		if now.Sub(l.warned[p.name]) > time.Minute {
			l.warned[p.name] = now
			l.n.log.Warn("cannot ask a node about its live sessions", "node", p.name, "sessions", len(ids), "error", err)
		}
		for _, id := range ids {
			if s := l.sessions[id]; s != nil && now.Sub(s.checked) > aliveGrace {
				delete(l.sessions, id) // its owner has been out of reach too long
			}
		}
		return
	}
	alive := make(map[string]bool, len(ans.Sessions))
	for _, id := range ans.Sessions {
		alive[id] = true
	}
	for _, id := range ids {
		s := l.sessions[id]
		if s == nil {
			continue
		}
		if !alive[id] {
			delete(l.sessions, id) // ended on its owner: Alive now asks the local relay, which has no such session
			continue
		}
		s.alive, s.checked = true, now
	}
}

// Remote returns how many sessions this node serves through other nodes
// (for tests and metrics).
func (l *Live) Remote() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.sessions)
}
