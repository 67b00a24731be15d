package ui

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/vigil-vms/vigil/internal/apierr"
)

// thumbnailWindow is how long thumbnails of a camera requested by the same
// login count as one look at its recording in the audit log: see
// newThumbnailLook.
const thumbnailWindow = 5 * time.Minute

// thumbnail serves the recorded keyframe at or before t as a tiny fMP4
// (review.Thumbnail), for the timeline's previews; the browser decodes it.
// It needs playback permission. Auditing: a thumbnail shows the recording,
// so it is audited like a playback, but one row per look, not per image:
// hovering over a timeline asks for dozens a second. See newThumbnailLook.
func (s *Server) thumbnail(w http.ResponseWriter, r *http.Request, c *call) error {
	cam, err := s.camera(r, c, actPlayback)
	if err != nil {
		return err
	}
	at, err := parseTime(r, "t", true)
	if err != nil {
		return err
	}
	c.audit.Start = at
	if s.deps.Review == nil {
		return apierr.New(apierr.ErrUnavailable, "recordings are not available in this server")
	}
	th, err := s.deps.Review.Thumbnail(reviewContext(r, c), cam.ID, at)
	if errors.Is(err, apierr.ErrNotFound) {
		c.audit = nil // nothing recorded there: nothing was seen
	}
	if err != nil {
		return err
	}
	if !s.newThumbnailLook(c.p, cam.ID) {
		c.audit = nil
	}
	h := w.Header()
	h.Set("Content-Type", "video/mp4")
	h.Set("Content-Length", strconv.Itoa(len(th.MP4)))
	h.Set(StartHeader, th.Time.UTC().Format(time.RFC3339Nano))
	if th.Final {
		// The same moment always gives the same keyframe: the browser
		// keeps it (for this user only) while the timeline is open.
		h.Set("Cache-Control", "private, max-age=3600")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	w.WriteHeader(http.StatusOK)
	w.Write(th.MP4)
	return nil
}

// newThumbnailLook tells whether a thumbnail begins a new look at a
// camera's recording, to be written to the audit log (action "thumbnail",
// with the first moment asked for). The rule, like newLiveView's: one row
// per login (web app session or API token) and camera; further thumbnails
// within thumbnailWindow of the last one continue the look (scrubbing)
// and write no row. Refused requests are always written.
func (s *Server) newThumbnailLook(p *principal, camera string) bool {
	login := "user " + p.user.Username
	switch {
	case p.sessionID != "":
		login = "session " + p.sessionID
	case p.tokenID != "":
		login = "token " + p.tokenID
	}
	k := liveKey{login: login, camera: camera}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.thumbSeen == nil {
		s.thumbSeen = map[liveKey]time.Time{}
	}
	for key, t := range s.thumbSeen {
		if now.Sub(t) > thumbnailWindow {
			delete(s.thumbSeen, key)
		}
	}
	_, seen := s.thumbSeen[k]
	s.thumbSeen[k] = now
	return !seen
}
