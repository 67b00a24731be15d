package ui

import (
	"net/http"

	"github.com/vigil-vms/vigil/internal/apierr"
)

// events answers GET /api/v1/cameras/{id}/events?start&end: what happened
// to the camera over the range (offline periods; device alarms later), for
// the playback timeline. Who may see the camera's recordings may see them.
func (s *Server) events(w http.ResponseWriter, r *http.Request, c *call) error {
	cam, start, end, err := s.cameraRange(r, c, actPlayback)
	if err != nil {
		return err
	}
	if !end.After(start) {
		return apierr.New(apierr.ErrInvalid, "end must be after start")
	}
	if s.deps.Events == nil {
		return apierr.New(apierr.ErrUnavailable, "camera events are not available in this server")
	}
	evs, err := s.deps.Events(r.Context(), cam.ID, start, end)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": evs})
	return nil
}
