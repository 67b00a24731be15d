package remote

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-vms/vigil/ingest"
)

// Headers of the internal answers.
const (
	headerSession = "X-Vigil-Session" // the id of the session an offer made
	headerSpool   = "X-Vigil-Spool"   // "gone": the spool no longer holds the segment
)

// Prefix is the path of every internal endpoint.
const Prefix = "/internal/v1/"

// Limits of the internal endpoints.
const (
	maxSDP        = 64 << 10
	maxAliveBody  = 1 << 20
	maxRead       = 256 << 20 // one read of a spooled segment
	handlerWrites = 2 * time.Minute
)

// Handler returns next with the internal endpoints (Prefix) in front: the
// requests other nodes sign with the cluster's secret, answered from this
// node's relay and spool. They bypass user authentication; a request that
// is not signed with the secret gets 401. A nil Node returns next.
func (n *Node) Handler(next http.Handler) http.Handler {
	if n == nil {
		return next
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /internal/v1/live/offer/{camera}", n.offer)
	mux.HandleFunc("PATCH /internal/v1/live/sessions/{id}", n.patch)
	mux.HandleFunc("DELETE /internal/v1/live/sessions/{id}", n.delete)
	mux.HandleFunc("POST /internal/v1/live/alive", n.alive)
	mux.HandleFunc("GET /internal/v1/spool/segments/{camera}", n.segments)
	mux.HandleFunc("GET /internal/v1/spool/read", n.read)
	mux.HandleFunc("POST /internal/v1/spool/pins", n.pin)
	mux.HandleFunc("DELETE /internal/v1/spool/pins/{id}", n.unpin)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, errors.New("no such internal endpoint: "+r.Method+" "+r.URL.Path), "not_found")
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, Prefix) {
			next.ServeHTTP(w, r)
			return
		}
		// The server has no write timeout (playback streams): bound these.
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(handlerWrites))
		w.Header().Set("Cache-Control", "no-store")
		node, err := verify(r, n.opts.Secret, time.Now())
		if err != nil {
			if n.refusals.Add(1) == 1 || time.Since(n.lastRefusal()) > 10*time.Second { // anyone can knock: at most one line in 10 s
				n.noteRefusal()
				n.log.Warn("internal request refused", "method", r.Method, "path", r.URL.Path, "from", r.RemoteAddr, "node", node,
					"refusedSoFar", n.refusals.Load(), "error", err)
			}
			writeError(w, http.StatusUnauthorized, errors.New("cluster request refused: "+err.Error()), "unauthorized")
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func (n *Node) offer(w http.ResponseWriter, r *http.Request) {
	offer, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSDP))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, err, "invalid")
		return
	}
	kind := ingest.StreamKind(r.URL.Query().Get("stream"))
	if kind == "" {
		kind = ingest.Main
	}
	id, answer, err := n.live.offerHere(r.Context(), r.PathValue("camera"), kind, string(offer))
	if err != nil {
		writeKindError(w, err)
		return
	}
	w.Header().Set(headerSession, id)
	w.Header().Set("Content-Type", "application/sdp")
	w.WriteHeader(http.StatusCreated)
	io.WriteString(w, answer)
}

func (n *Node) patch(w http.ResponseWriter, r *http.Request) {
	frag, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSDP))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, err, "invalid")
		return
	}
	if err := n.opts.Relay.Patch(r.Context(), r.PathValue("id"), string(frag)); err != nil {
		writeKindError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (n *Node) delete(w http.ResponseWriter, r *http.Request) {
	if err := n.opts.Relay.Delete(r.PathValue("id")); err != nil {
		writeKindError(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (n *Node) alive(w http.ResponseWriter, r *http.Request) {
	var req aliveBody
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAliveBody)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, err, "invalid")
		return
	}
	ans := aliveBody{Sessions: []string{}}
	for _, id := range req.Sessions {
		if n.opts.Relay.Alive(id) {
			ans.Sessions = append(ans.Sessions, id)
		}
	}
	writeJSON(w, ans)
}

func (n *Node) segments(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	start, err1 := time.Parse(time.RFC3339Nano, q.Get("start"))
	end, err2 := time.Parse(time.RFC3339Nano, q.Get("end"))
	if err := errors.Join(err1, err2); err != nil {
		writeError(w, http.StatusBadRequest, err, "invalid")
		return
	}
	body := segmentsBody{}
	if n.opts.Spool != nil {
		// This node's own spool only: never asks further.
		body.Segments = n.opts.Spool.Spooled(r.PathValue("camera"), start, end)
	}
	writeJSON(w, body)
}

func (n *Node) read(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	key := q.Get("key")
	off, err1 := strconv.ParseInt(q.Get("off"), 10, 64)
	length, err2 := strconv.ParseInt(q.Get("len"), 10, 64)
	if err := errors.Join(err1, err2); err != nil || key == "" || off < 0 || length < 0 || length > maxRead {
		writeError(w, http.StatusBadRequest, errors.New("key, off and len (at most 256 MiB) are required"), "invalid")
		return
	}
	if n.opts.Spool == nil {
		w.Header().Set(headerSpool, "gone")
		writeError(w, http.StatusNotFound, errors.New("this node records nothing"), "not_found")
		return
	}
	rc, ok, err := n.opts.Spool.ReadSpooled(key, off, length)
	switch {
	case err != nil:
		writeKindError(w, err)
		return
	case !ok:
		w.Header().Set(headerSpool, "gone")
		writeError(w, http.StatusNotFound, errors.New("the spool no longer holds "+key), "not_found")
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.WriteHeader(http.StatusOK)
	if _, err := io.Copy(w, rc); err != nil {
		// The answer is cut short: the reader sees a truncated body.
		n.log.Warn("reading a spooled segment for another node failed", "segment", key, "error", err)
		panic(http.ErrAbortHandler)
	}
}

// pin is a pin another node holds on a segment of this node's spool.
type pin struct {
	unpin func()
	timer *time.Timer
}

func (n *Node) pin(w http.ResponseWriter, r *http.Request) {
	key := r.URL.Query().Get("key")
	if key == "" || n.opts.Spool == nil {
		writeError(w, http.StatusBadRequest, errors.New("key is required, and this node must record"), "invalid")
		return
	}
	unpin := n.opts.Spool.Pin(key)
	n.pinMu.Lock()
	n.pinSeq++
	id := strconv.FormatUint(n.pinSeq, 10)
	p := &pin{unpin: unpin}
	p.timer = time.AfterFunc(n.opts.PinTTL, func() { n.dropPin(id) })
	n.pins[id] = p
	n.pinMu.Unlock()
	writeJSON(w, pinBody{Pin: id})
}

func (n *Node) unpin(w http.ResponseWriter, r *http.Request) {
	if !n.dropPin(r.PathValue("id")) {
		writeError(w, http.StatusNotFound, errors.New("no such pin"), "not_found")
		return
	}
	w.WriteHeader(http.StatusOK)
}

// dropPin ends a pin; false when there is none of that id.
func (n *Node) dropPin(id string) bool {
	n.pinMu.Lock()
	p, ok := n.pins[id]
	delete(n.pins, id)
	n.pinMu.Unlock()
	if ok {
		p.timer.Stop()
		p.unpin()
	}
	return ok
}

// Pins returns how many pins other nodes hold here (tests).
func (n *Node) Pins() int {
	n.pinMu.Lock()
	defer n.pinMu.Unlock()
	return len(n.pins)
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err, "internal")
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	w.Write(append(b, '\n'))
}

func (n *Node) lastRefusal() time.Time {
	n.pinMu.Lock()
	defer n.pinMu.Unlock()
	return n.refusedAt
}

func (n *Node) noteRefusal() {
	n.pinMu.Lock()
	n.refusedAt = time.Now()
	n.pinMu.Unlock()
}
