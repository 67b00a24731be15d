// Package remote lets every node of a cluster serve every camera, whichever
// node ingests it (CLUSTER-SEAM §4). The node a user talks to authorizes and
// audits the request as always (package ui); what only the camera's owner
// can do — answer a WHEP offer from its relay, list and read the segments
// still in its spool — it asks the owner over internal HTTP endpoints
// (/internal/v1/…), signed with the cluster's secret (LoadSecret):
//
//   - Live is a ui.Live: a camera owned here goes to the local relay; the
//     offer of a camera owned elsewhere goes to the owner, whose relay
//     answers; the session is remembered with its owner for PATCH, DELETE
//     and Alive. Media then flows from the owner's WebRTC port straight to
//     the browser: video is packetized once, by the node that ingests it.
//   - Spool is a review.Spooled: the spooled (not yet uploaded) part of a
//     camera's recording is asked of its owner; an owner that cannot be
//     reached shows no spooled segments (logged), playback goes on from the
//     shared bucket and index.
//
// Errors of the owner keep their kind across the hop (apierr), so a user
// sees the same status and message as on the owner (404, 503 overloaded, …);
// an owner that cannot be reached is 503.
//
// What a deployment needs: every node's cluster.advertise reachable from the
// other nodes (plain HTTP on a trusted network, or https with a certificate
// the system trusts: the signature authenticates a request, it does not
// encrypt or cover its body), and every node's WebRTC port (webrtc.udpPort,
// webrtc.publicIPs) reachable from the browsers, since the answer a browser
// gets names the owner's candidates.
package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/apierr"
	"github.com/vigil-vms/vigil/recorder/review"
)

// Owners tells which node carries a camera (cluster.Cluster): its name and
// advertise URL, whether it is this node, and ok false when no node holds
// it now.
type Owners interface {
	Owner(camera string) (node, advertise string, local bool, ok bool)
}

// Relay is this node's live relay (relay.Relay); the same methods as
// ui.Live.
type Relay interface {
	Offer(ctx context.Context, cameraID string, kind ingest.StreamKind, offerSDP string) (sessionID, answerSDP string, err error)
	Patch(ctx context.Context, sessionID, sdpFragment string) error
	Delete(sessionID string) error
	Alive(sessionID string) bool
}

// Options configure a Node.
type Options struct {
	// Node is this node's name (cluster.node), sent with every request.
	Node string
	// Secret is the cluster's secret (LoadSecret). Required.
	Secret []byte
	// Owners finds a camera's owner. Required.
	Owners Owners
	// Relay is this node's live relay. Required.
	Relay Relay
	// Spool is this node's recorder (its spooled segments); nil: none.
	Spool review.Spooled
	// Timeout bounds a request to another node other than an offer or a
	// spool read. It defaults to 5 seconds.
	Timeout time.Duration
	// OfferTimeout bounds an offer sent to the owner (whose relay may wait
	// for a camera that is connecting). It defaults to 20 seconds.
	OfferTimeout time.Duration
	// AliveFor is how long the owner's answer about a session's life is
	// believed. It defaults to 2 seconds.
	AliveFor time.Duration
	// PinTTL ends a pin another node holds on a spooled segment here that
	// it did not release (it died meanwhile). It defaults to 10 minutes.
	PinTTL time.Duration
	// Log receives warnings (an owner that cannot be reached, a refused
	// request). It defaults to discarding.
	Log *slog.Logger
}

// Node is this node's side of the node-to-node traffic: the client (Live,
// Spool) and the internal endpoints the other nodes call (Handler).
type Node struct {
	opts   Options
	log    *slog.Logger
	client *http.Client
	live   *Live
	spool  *Spool

	pinMu     sync.Mutex      // guards pins, pinSeq and refusedAt
	pins      map[string]*pin // pins other nodes hold here, by id
	pinSeq    uint64
	refusedAt time.Time // last refused internal request logged

	refusals atomic.Int64 // internal requests refused (bad or no signature)
}

// New checks the options; it starts nothing.
func New(opts Options) (*Node, error) {
	switch {
	case len(opts.Secret) < 16:
		return nil, errors.New("remote: the cluster secret is missing or shorter than 16 bytes")
	case opts.Owners == nil:
		return nil, errors.New("remote: Owners is required")
	case opts.Relay == nil:
		return nil, errors.New("remote: Relay is required")
	case opts.Node == "":
		return nil, errors.New("remote: Node (this node's name) is required")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.OfferTimeout <= 0 {
		opts.OfferTimeout = 20 * time.Second
	}
	if opts.AliveFor <= 0 {
		opts.AliveFor = 2 * time.Second
	}
	if opts.PinTTL <= 0 {
		opts.PinTTL = 10 * time.Minute
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	tr := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 3 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: opts.OfferTimeout + 5*time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
	}
	n := &Node{opts: opts, log: opts.Log, client: &http.Client{Transport: tr}, pins: map[string]*pin{}}
	n.live = &Live{n: n, sessions: map[string]*session{}, refreshing: map[string]bool{}, warned: map[string]time.Time{}}
	n.spool = &Spool{n: n, keys: map[string]keyOwner{}}
	return n, nil
}

// Live is the ui.Live of this node: see the package comment.
func (n *Node) Live() *Live { return n.live }

// Spool is the review.Spooled of this node: see the package comment.
func (n *Node) Spool() *Spool { return n.spool }

// Close drops the idle connections to other nodes and the pins other nodes
// hold here.
func (n *Node) Close() {
	n.spool.wg.Wait()
	n.client.CloseIdleConnections()
	n.pinMu.Lock()
	for id, p := range n.pins {
		p.timer.Stop()
		p.unpin()
		delete(n.pins, id)
	}
	n.pinMu.Unlock()
}

// peer is another node.
type peer struct {
	name, advertise string
}

// owner finds the camera's owner: local true for this node.
func (n *Node) owner(camera string) (p peer, local bool, err error) {
	name, adv, local, ok := n.opts.Owners.Owner(camera)
	switch {
	case !ok:
		return peer{}, false, apierr.New(apierr.ErrUnavailable, "no node carries camera %q at the moment: try again in a few seconds", camera)
	case local:
		return peer{name: name}, true, nil
	case adv == "":
		return peer{}, false, apierr.New(apierr.ErrUnavailable, "node %s, which carries camera %q, has no advertise address (cluster.advertise)", name, camera)
	}
	return peer{name: name, advertise: strings.TrimRight(adv, "/")}, false, nil
}

// do sends a signed request to p and returns its answer whatever its status;
// a node that cannot be reached is an ErrUnavailable.
func (n *Node) do(ctx context.Context, p peer, method, path string, query url.Values, body io.Reader, ctype string) (*http.Response, error) {
	u := p.advertise + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var b []byte // signed with the request
	if body != nil {
		var err error
		if b, err = io.ReadAll(io.LimitReader(body, maxSignedBody+1)); err != nil || len(b) > maxSignedBody {
			return nil, fmt.Errorf("remote: the body of a request to node %s: over %d bytes or unreadable (%v)", p.name, maxSignedBody, err)
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(b))
	if err != nil {
		return nil, apierr.New(apierr.ErrUnavailable, "node %s cannot be reached: %v", p.name, err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	sign(req, n.opts.Secret, n.opts.Node, time.Now(), b)
	resp, err := n.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is in the message already as the node's name
		}
		return nil, apierr.New(apierr.ErrUnavailable, "node %s cannot be reached: %v", p.name, err)
	}
	return resp, nil
}

// call is do for a request whose answer is small: it fails with the
// owner's error when the status is not want, and returns the body.
func (n *Node) call(ctx context.Context, p peer, method, path string, query url.Values, body io.Reader, ctype string, want int) (*http.Response, []byte, error) {
	resp, err := n.do(ctx, p, method, path, query, body, ctype)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		return resp, nil, readError(p.name, resp)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return resp, nil, apierr.New(apierr.ErrUnavailable, "node %s cannot be reached: %v", p.name, err)
	}
	return resp, b, nil
}

// Refused returns how many internal requests were refused (no or a bad
// signature, a time off the clock).
func (n *Node) Refused() int64 { return n.refusals.Load() }

func (n *Node) String() string { return fmt.Sprintf("remote.Node(%s)", n.opts.Node) }
