package ui

import (
	"context"
	"errors"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/apierr"
	"github.com/vigil-vms/vigil/recorder/archive"
	"github.com/vigil-vms/vigil/recorder/review"
	"github.com/vigil-vms/vigil/registry"
)

// whepTTL is how long the owner of a WHEP session is remembered.
const whepTTL = 24 * time.Hour

func (s *Server) whepOffer(w http.ResponseWriter, r *http.Request, c *call) error {
	cam, kind, err := s.cameraStream(r, c, actLive)
	if err != nil {
		return err
	}
	c.audit.Detail = "stream " + string(kind)
	if s.deps.Live == nil {
		return apierr.New(apierr.ErrUnavailable, "live view is not available in this server")
	}
	if mediaType(r) != "application/sdp" {
		return errStatus(http.StatusUnsupportedMediaType, "send the SDP offer with Content-Type: application/sdp")
	}
	offer, err := readBody(w, r, maxSDPBody)
	if err != nil {
		return err
	}
	if !cam.Enabled {
		return apierr.New(apierr.ErrUnavailable, "camera %q is disabled", cam.ID)
	}
	asked := kind
	kind = s.servedStream(cam, kind)
	if kind != asked {
		c.audit.Detail += " (served main: " + fallbackReason(cam) + ")"
	}
	user := c.p.user.Username
	if err := s.reserveLive(user); err != nil {
		return err
	}
	id, answer, err := s.deps.Live.Offer(r.Context(), cam.ID, kind, string(offer))
	s.mu.Lock()
	s.whepOffers[user]--
	if s.whepOffers[user] <= 0 {
		delete(s.whepOffers, user)
	}
	if err == nil {
		s.whep[id] = whepOwner{user: user, camera: cam.ID, created: time.Now()}
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	c.audit.Detail += " session " + id
	if !s.newLiveView(c.p, cam.ID, asked) {
		c.audit = nil // the same viewer again: see newLiveView
	}
	s.log.Info("live view", "camera", cam.ID, "session", id, "user", c.p.user.Username, "stream", string(kind))
	w.Header().Set("Location", "/api/v1/whep/"+id)
	w.Header().Set(StreamHeader, string(kind))
	w.Header().Set("Content-Type", "application/sdp")
	w.WriteHeader(http.StatusCreated)
	w.Write([]byte(answer))
	return nil
}

// StreamHeader names, in a WHEP answer, the stream served: main when sub
// was asked for but the camera has no sub-stream or its sub-stream is
// failing.
const StreamHeader = "X-Vigil-Stream"

// servedStream is the stream a WHEP offer for kind gets: the contract's
// fallback from sub to main when the camera has no sub-stream, and also
// when its sub-stream is failing (offline: the last attempt failed) while
// the main stream is not, so that every client shows a picture. A sub-stream
// still connecting is served: its first attempt may yet succeed, and a
// viewer that gets no frames offers again.
func (s *Server) servedStream(cam ingest.Camera, kind ingest.StreamKind) ingest.StreamKind {
	if kind != ingest.Sub {
		return kind
	}
	if cam.SubURL == "" {
		return ingest.Main
	}
	st := s.status(cam)
	if st.Sub != nil && st.Sub.State == ingest.StateOffline && st.State != ingest.StateOffline {
		return ingest.Main
	}
	return kind
}

func fallbackReason(cam ingest.Camera) string {
	if cam.SubURL == "" {
		return "no sub-stream"
	}
	return "sub-stream failing"
}

// liveViewWindow is how long a live view of a camera by the same login
// counts as one: see newLiveView.
const liveViewWindow = 5 * time.Minute

// liveKey is one login's view of one stream of a camera.
type liveKey struct {
	login, camera string
	stream        ingest.StreamKind
}

// newLiveView tells whether an offer begins a new live view, to be written
// to the audit log. The rule: one row per login (web app session, or API
// token), camera and stream asked for; another offer of the same within
// liveViewWindow of the last one continues that view (a wall re-offering its
// tiles after a layout change, a player reconnecting) and writes no row.
// Every offer extends the window. Refused offers are always written.
func (s *Server) newLiveView(p *principal, camera string, kind ingest.StreamKind) bool {
	login := "user " + p.user.Username
	switch {
	case p.sessionID != "":
		login = "session " + p.sessionID
	case p.tokenID != "":
		login = "token " + p.tokenID
	}
	k := liveKey{login: login, camera: camera, stream: kind}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for key, t := range s.liveSeen {
		if now.Sub(t) > liveViewWindow {
			delete(s.liveSeen, key)
		}
	}
	_, seen := s.liveSeen[k]
	s.liveSeen[k] = now
	return !seen
}

// reserveLive counts an offer of user against Options.LivePerUser: the
// user's sessions that still exist plus the offers being negotiated. It
// forgets the sessions that ended on their own (a viewer that never
// connected, or went away).
func (s *Server) reserveLive(user string) error {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.whepOffers[user]
	for k, o := range s.whep {
		switch {
		case now.Sub(o.created) > whepTTL || (o.user == user && !s.deps.Live.Alive(k)):
			delete(s.whep, k)
		case o.user == user:
			n++
		}
	}
	if n >= s.opts.LivePerUser {
		return errStatus(http.StatusTooManyRequests, "you have %d live views open, the most one user may: close one first", s.opts.LivePerUser)
	}
	s.whepOffers[user]++
	return nil
}

// whepSession returns the session id of the path if p owns it (or is an
// admin); another user's session is not found.
func (s *Server) whepSession(r *http.Request, c *call) (string, error) {
	id := r.PathValue("session")
	s.mu.Lock()
	o, ok := s.whep[id]
	s.mu.Unlock()
	// An admin may end another user's session, of a camera they manage.
	mine := ok && o.user == c.p.user.Username
	managed := ok && c.p.user.Role == registry.RoleAdmin && (!c.p.user.Scoped() || s.inScopeID(r, c, o.camera))
	if !mine && !managed {
		return "", apierr.New(apierr.ErrNotFound, "live session %q does not exist", truncate(id, 64))
	}
	return id, nil
}

// endLive ends the live sessions whose owner record matches: when a user
// or a camera changes so that a viewer may no longer be allowed to watch.
// A viewer who still may watch reconnects (the web app does) and is
// authorized again.
func (s *Server) endLive(why string, match func(whepOwner) bool) {
	var ids []string
	s.mu.Lock()
	for id, o := range s.whep {
		if match(o) {
			ids = append(ids, id)
			delete(s.whep, id)
		}
	}
	s.mu.Unlock()
	if s.deps.Live == nil {
		return
	}
	for _, id := range ids {
		err := s.deps.Live.Delete(id)
		if err != nil && apierr.Status(err) != http.StatusNotFound {
			s.log.Warn("cannot end a live session", "session", id, "reason", why, "error", err)
			continue
		}
		if err == nil {
			s.log.Info("live session ended", "session", id, "reason", why)
		}
	}
}

func (s *Server) whepPatch(w http.ResponseWriter, r *http.Request, c *call) error {
	id, err := s.whepSession(r, c)
	if err != nil {
		return err
	}
	if mediaType(r) != "application/trickle-ice-sdpfrag" {
		return errStatus(http.StatusUnsupportedMediaType, "send ICE candidates with Content-Type: application/trickle-ice-sdpfrag")
	}
	frag, err := readBody(w, r, maxSDPBody)
	if err != nil {
		return err
	}
	if s.deps.Live == nil {
		return apierr.New(apierr.ErrUnavailable, "live view is not available in this server")
	}
	return writeNoContent(w, s.deps.Live.Patch(r.Context(), id, string(frag)))
}

func (s *Server) whepDelete(w http.ResponseWriter, r *http.Request, c *call) error {
	id, err := s.whepSession(r, c)
	if err != nil {
		return err
	}
	if s.deps.Live == nil {
		return apierr.New(apierr.ErrUnavailable, "live view is not available in this server")
	}
	s.mu.Lock()
	delete(s.whep, id)
	s.mu.Unlock()
	if err := s.deps.Live.Delete(id); err != nil && apierr.Status(err) != http.StatusNotFound {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// timeline is the recordings of a camera with the incidents over them.
type timeline struct {
	review.Recordings
	Incidents []registry.Incident `json:"incidents"`
}

// cameraRange is the camera of the path (allowed for act) and the
// required start and end of the query.
func (s *Server) cameraRange(r *http.Request, c *call, act action) (cam ingest.Camera, start, end time.Time, err error) {
	if cam, err = s.camera(r, c, act); err != nil {
		return
	}
	if start, err = parseTime(r, "start", true); err != nil {
		return
	}
	end, err = parseTime(r, "end", true)
	return
}

// reviewContext is the context of a review request (recordings, playback,
// export): a user limited to departments sees only what a camera recorded
// while it belonged to one of them, not what it recorded in another
// department before it moved to theirs (archive.WithDepartments).
func reviewContext(r *http.Request, c *call) context.Context {
	if c.p.user.Scoped() {
		return archive.WithDepartments(r.Context(), c.p.user.Departments)
	}
	return r.Context()
}

func (s *Server) recordings(w http.ResponseWriter, r *http.Request, c *call) error {
	cam, start, end, err := s.cameraRange(r, c, actPlayback)
	if err != nil {
		return err
	}
	if s.deps.Review == nil {
		return apierr.New(apierr.ErrUnavailable, "recordings are not available in this server")
	}
	recs, err := s.deps.Review.Recordings(reviewContext(r, c), cam.ID, start, end)
	if err != nil {
		return err
	}
	ins, err := s.reg.Incidents(r.Context(), cam.ID, start, end)
	if err != nil {
		return err
	}
	if recs.Spans == nil {
		recs.Spans = []review.Span{}
	}
	if recs.Segments == nil {
		recs.Segments = []review.SegmentInfo{}
	}
	writeJSON(w, http.StatusOK, timeline{Recordings: recs, Incidents: s.visibleIncidents(r, c, ins)})
	return nil
}

// mp4Writer starts the playback response at its first byte, so that an
// error before it still answers JSON, and flushes every write. werr is the
// first error writing to the client.
type mp4Writer struct {
	w    http.ResponseWriter
	rc   *http.ResponseController
	n    int64
	werr error
}

func (m *mp4Writer) Write(b []byte) (int, error) {
	if m.n == 0 {
		m.w.Header().Set("Content-Type", "video/mp4")
		m.w.WriteHeader(http.StatusOK)
	}
	n, err := m.w.Write(b)
	m.n += int64(n)
	if err == nil {
		if ferr := m.rc.Flush(); !errors.Is(ferr, http.ErrNotSupported) {
			err = ferr
		}
	}
	if err != nil && m.werr == nil {
		m.werr = err
	}
	return n, err
}

// StartHeader names, in a playback response, the wall-clock time
// (RFC 3339 with nanoseconds) of the clip's first frame, which its timeline
// places at 0: the keyframe at or before the start asked for.
const StartHeader = "X-Vigil-Start"

// Headers that say, before the first byte, where a playback stops and what
// an export holds.
const (
	// EndHeader names, in a playback response, the wall-clock time (RFC 3339)
	// at which the stream stops, and StopsHeader why: "end" (the end asked
	// for), "gap" (the recording pauses there; ResumeHeader names where it
	// resumes) or "recording-end" (nothing recorded after it yet). Both are
	// absent when the index was not read that far ahead. A change of codec or
	// resolution can still stop the stream earlier.
	EndHeader    = "X-Vigil-End"
	StopsHeader  = "X-Vigil-Stops"
	ResumeHeader = "X-Vigil-Resume"
	// GapsHeader lists, in an export response, the stretches of the range
	// asked for that the clip does not hold, as RFC 3339 intervals
	// (start/end) separated by ", "; the clip's timeline goes on across them.
	// RecordedHeader gives the seconds of recording the clip holds.
	GapsHeader     = "X-Vigil-Gaps"
	RecordedHeader = "X-Vigil-Recorded-Seconds"
)

// formatGaps is the value of GapsHeader.
func formatGaps(gaps []review.Gap) string {
	parts := make([]string, len(gaps))
	for i, g := range gaps {
		parts[i] = g.Start.UTC().Format(time.RFC3339Nano) + "/" + g.End.UTC().Format(time.RFC3339Nano)
	}
	return strings.Join(parts, ", ")
}

func (s *Server) playback(w http.ResponseWriter, r *http.Request, c *call) error {
	cam, err := s.camera(r, c, actPlayback)
	if err != nil {
		return err
	}
	start, err := parseTime(r, "start", true)
	if err != nil {
		return err
	}
	dur := time.Duration(0)
	if v := r.URL.Query().Get("duration"); v != "" {
		if dur, err = parseDuration(v); err != nil {
			return err
		}
	}
	c.audit.Start = start
	if dur > 0 {
		c.audit.End = start.Add(dur)
	}
	if s.deps.Review == nil {
		return apierr.New(apierr.ErrUnavailable, "playback is not available in this server")
	}
	pb, err := s.deps.Review.Open(reviewContext(r, c), cam.ID, start, dur)
	if err != nil {
		return err
	}
	w.Header().Set(StartHeader, pb.Start.UTC().Format(time.RFC3339Nano))
	if pb.Stops != "" {
		w.Header().Set(EndHeader, pb.End.UTC().Format(time.RFC3339Nano))
		w.Header().Set(StopsHeader, pb.Stops)
		if !pb.Resume.IsZero() {
			w.Header().Set(ResumeHeader, pb.Resume.UTC().Format(time.RFC3339Nano))
		}
	}
	if r.Method == http.MethodHead {
		// The web app asks where a playback will begin before it loads it
		// into a <video>, which cannot read headers: answer from the index
		// without reading the recording. The GET that follows is audited.
		c.audit = nil
		w.Header().Set("Content-Type", "video/mp4")
		w.WriteHeader(http.StatusOK)
		return nil
	}
	mw := &mp4Writer{w: w, rc: http.NewResponseController(w)}
	_, err = pb.WriteTo(mw)
	if err != nil && (mw.werr != nil || r.Context().Err() != nil) {
		// The client ended the playback (a seek, leaving the page): not a
		// failure of the server's.
		c.audit.Result = resultEnded
		c.audit.Detail = "ended by the client after " + strconv.FormatInt(mw.n, 10) + " bytes"
		s.log.Debug("playback ended by the client", "camera", cam.ID, "user", c.p.user.Username, "bytes", mw.n)
		return nil
	}
	if err != nil && mw.n > 0 {
		c.audit.Detail = "stopped after " + strconv.FormatInt(mw.n, 10) + " bytes"
	}
	return err
}

func (s *Server) export(w http.ResponseWriter, r *http.Request, c *call) error {
	cam, start, end, err := s.cameraRange(r, c, actExport)
	if err != nil {
		return err
	}
	c.audit.Start, c.audit.End = start, end
	if pkg, err := exportFormat(r); err != nil || pkg {
		if err != nil {
			return err
		}
		return s.writePackage(w, r, c, packageRequest{cams: []ingest.Camera{cam}, start: start, end: end,
			name: packageName(cam.ID, start, end)})
	}
	if s.deps.Review == nil {
		return apierr.New(apierr.ErrUnavailable, "export is not available in this server")
	}
	ex, err := s.deps.Review.Export(review.WithUser(reviewContext(r, c), c.p.user.Username), cam.ID, start, end)
	if err != nil {
		return err
	}
	defer ex.File.Close()
	c.audit.Detail = "sha256 " + ex.SHA256 + " bytes " + strconv.FormatInt(ex.Size, 10) +
		" recorded " + strconv.FormatFloat(ex.Recorded.Seconds(), 'f', 3, 64) + "s gaps " + strconv.Itoa(len(ex.Gaps))
	h := w.Header()
	h.Set("Content-Type", "video/mp4")
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": ex.Name}))
	h.Set("X-Content-SHA256", ex.SHA256)
	h.Set(RecordedHeader, strconv.FormatFloat(ex.Recorded.Seconds(), 'f', 3, 64))
	if len(ex.Gaps) > 0 {
		h.Set(GapsHeader, formatGaps(ex.Gaps))
	}
	s.log.Info("export", "camera", cam.ID, "user", c.p.user.Username, "bytes", ex.Size, "sha256", ex.SHA256,
		"recorded", ex.Recorded, "gaps", len(ex.Gaps))
	http.ServeContent(w, r, ex.Name, time.Time{}, ex.File)
	return nil
}
