package ui

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/vigil-vms/vigil/internal/apierr"
	"github.com/vigil-vms/vigil/registry"
)

// incidentUpdate is the body of PUT /api/v1/incidents/{id}: every field is
// optional, an absent one keeps its value. The fields a GET answers that
// cannot be set (id, createdBy, notes, …) are accepted and ignored, so
// that a client may send back what it read.
type incidentUpdate struct {
	Title   *string    `json:"title"`
	Cameras []string   `json:"cameras"`
	Start   *time.Time `json:"start"`
	End     *time.Time `json:"end"`
	Note    *string    `json:"note"`
	Status  *string    `json:"status"`

	ID          json.RawMessage `json:"id"`
	PastCameras json.RawMessage `json:"pastCameras"`
	CreatedBy   json.RawMessage `json:"createdBy"`
	Created     json.RawMessage `json:"created"`
	Updated     json.RawMessage `json:"updated"`
	Notes       json.RawMessage `json:"notes"`
}

// editableIncident reads the path's incident for a change by c: one with
// a camera c may not see is changed only by a user who sees all of them
// (c does not see its title, notes and other cameras).
func (s *Server) editableIncident(r *http.Request, c *call) (registry.Incident, error) {
	in, err := s.pathIncident(r)
	if err != nil {
		return in, err
	}
	if vis := s.visibleIncidents(r, c, []registry.Incident{in}); len(vis) == 0 {
		return in, apierr.New(apierr.ErrNotFound, "incident %d does not exist", in.ID)
	} else if len(vis[0].Cameras) < len(in.Cameras)+len(in.PastCameras) {
		return in, apierr.New(apierr.ErrForbidden, "incident %d also covers cameras outside your departments: only a user of every department can change it", in.ID)
	}
	if len(in.Cameras) == 1 {
		c.audit.Camera = in.Cameras[0]
	}
	c.audit.Start, c.audit.End = in.Start, in.End
	return in, nil
}

// checkIncidentCameras refuses more cameras than an incident holds, and a
// camera that is unknown or that the caller may not put in an incident.
func (s *Server) checkIncidentCameras(r *http.Request, c *call, ids []string) error {
	if len(ids) > registry.MaxIncidentCameras {
		return apierr.New(apierr.ErrInvalid, "incident: more than %d cameras", registry.MaxIncidentCameras)
	}
	for _, id := range ids {
		cam, err := s.reg.Camera(r.Context(), id)
		if err != nil {
			return err
		}
		if err := authorize(c.p, actIncidents, &cam); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) updateIncident(w http.ResponseWriter, r *http.Request, c *call) error {
	c.audit.Detail = "incident " + truncate(r.PathValue("id"), 64)
	var body incidentUpdate
	if err := decodeJSON(w, r, &body); err != nil {
		return err
	}
	old, err := s.editableIncident(r, c)
	if err != nil {
		return err
	}
	in := old
	if body.Title != nil {
		in.Title = *body.Title
	}
	if body.Note != nil {
		in.Note = *body.Note
	}
	if body.Status != nil {
		in.Status = *body.Status
	}
	if body.Start != nil {
		in.Start = *body.Start
	}
	if body.End != nil {
		in.End = *body.End
	}
	if body.Cameras != nil {
		if err := s.checkIncidentCameras(r, c, body.Cameras); err != nil {
			return err
		}
		in.Cameras = body.Cameras
	}
	out, err := s.reg.UpdateIncident(r.Context(), in)
	if err != nil {
		return err
	}
	c.audit.Start, c.audit.End = out.Start, out.End
	c.audit.Detail = fmt.Sprintf("incident %d cameras %s status %s", out.ID, strings.Join(out.Cameras, ","), out.Status)
	if out.Status != old.Status {
		c.audit.Detail += " (was " + old.Status + ")"
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

type noteBody struct {
	Text string `json:"text"`
}

func (s *Server) addIncidentNote(w http.ResponseWriter, r *http.Request, c *call) error {
	c.audit.Detail = "incident " + truncate(r.PathValue("id"), 64)
	var body noteBody
	if err := decodeJSON(w, r, &body); err != nil {
		return err
	}
	in, err := s.editableIncident(r, c)
	if err != nil {
		return err
	}
	out, err := s.reg.AddIncidentNote(r.Context(), in.ID, registry.IncidentNote{Author: c.p.user.Username, Text: body.Text})
	if err != nil {
		return err
	}
	c.audit.Detail = fmt.Sprintf("incident %d note %d", out.ID, len(out.Notes))
	writeJSON(w, http.StatusCreated, out)
	return nil
}
