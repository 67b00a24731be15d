package ui

import (
	"context"
	"mime"
	"net/http"
	"strconv"
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
	if kind == ingest.Sub && cam.SubURL == "" {
		kind = ingest.Main // the contract: sub falls back to main
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
	s.log.Info("live view", "camera", cam.ID, "session", id, "user", c.p.user.Username, "stream", string(kind))
	w.Header().Set("Location", "/api/v1/whep/"+id)
	w.Header().Set("Content-Type", "application/sdp")
	w.WriteHeader(http.StatusCreated)
	w.Write([]byte(answer))
	return nil
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
	if err := s.deps.Live.Patch(r.Context(), id, string(frag)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
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
// error before it still answers JSON, and flushes every write.
type mp4Writer struct {
	w  http.ResponseWriter
	rc *http.ResponseController
	n  int64
}

func (m *mp4Writer) Write(b []byte) (int, error) {
	if m.n == 0 {
		m.w.Header().Set("Content-Type", "video/mp4")
		m.w.WriteHeader(http.StatusOK)
	}
	n, err := m.w.Write(b)
	m.n += int64(n)
	if err == nil {
		m.rc.Flush()
	}
	return n, err
}

// StartHeader names, in a playback response, the wall-clock time
// (RFC 3339 with nanoseconds) of the clip's first frame, which its timeline
// places at 0: the keyframe at or before the start asked for.
const StartHeader = "X-Vigil-Start"

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
	if s.deps.Review == nil {
		return apierr.New(apierr.ErrUnavailable, "export is not available in this server")
	}
	ex, err := s.deps.Review.Export(review.WithUser(reviewContext(r, c), c.p.user.Username), cam.ID, start, end)
	if err != nil {
		return err
	}
	defer ex.File.Close()
	c.audit.Detail = "sha256 " + ex.SHA256 + " bytes " + strconv.FormatInt(ex.Size, 10)
	h := w.Header()
	h.Set("Content-Type", "video/mp4")
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": ex.Name}))
	h.Set("X-Content-SHA256", ex.SHA256)
	s.log.Info("export", "camera", cam.ID, "user", c.p.user.Username, "bytes", ex.Size, "sha256", ex.SHA256)
	http.ServeContent(w, r, ex.Name, time.Time{}, ex.File)
	return nil
}
