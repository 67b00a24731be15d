package ui

import (
	"net/http"
	"slices"

	"github.com/vigil-vms/vigil/availability"
	"github.com/vigil-vms/vigil/internal/apierr"
)

// events answers GET /api/v1/cameras/{id}/events?start&end: what happened
// to the camera over the range (offline periods, and the alarms of a GB/T
// 28181 device), for the playback timeline, ordered by start. Who may see
// the camera's recordings may see them.
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
	if g := s.deps.GB28181; g != nil && g.Alarms != nil {
		alarms, err := g.Alarms(r.Context(), cam.ID, start, end)
		if err != nil {
			return err
		}
		evs = append(evs, alarms...)
		slices.SortStableFunc(evs, func(a, b availability.Event) int { return a.Start.Compare(b.Start) })
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": evs})
	return nil
}
