package ui

import (
	"fmt"
	"net/http"

	"github.com/vigil-vms/vigil/internal/apierr"
	"github.com/vigil-vms/vigil/registry"
)

// Layouts and tours of the live wall. Who sees, changes and deletes which
// layout is the registry's decision (registry.Layout); a display (a wall
// an admin signed in) opens the layouts shared with its departments and
// changes none.

func (s *Server) listLayouts(w http.ResponseWriter, r *http.Request, c *call) error {
	ls, err := s.reg.Layouts(r.Context(), c.p.user)
	return writeOK(w, ls, err)
}

func (s *Server) getLayout(w http.ResponseWriter, r *http.Request, c *call) error {
	l, err := s.reg.Layout(r.Context(), c.p.user, r.PathValue("id"))
	return writeOK(w, l, err)
}

// layoutInput reads a layout from the body; its id, owner and updated
// (as a GET answers them) are ignored.
func (s *Server) layoutInput(w http.ResponseWriter, r *http.Request, c *call) (registry.Layout, error) {
	if c.p.displayID != "" {
		return registry.Layout{}, apierr.New(apierr.ErrForbidden, "a display cannot change layouts")
	}
	var in registry.Layout
	if err := decodeJSON(w, r, &in); err != nil {
		return in, err
	}
	return in, nil
}

func (s *Server) createLayout(w http.ResponseWriter, r *http.Request, c *call) error {
	in, err := s.layoutInput(w, r, c)
	if err != nil {
		return err
	}
	c.audit.Detail = fmt.Sprintf("layout %q", truncate(in.Name, 100))
	l, err := s.reg.CreateLayout(r.Context(), c.p.user, in)
	if err != nil {
		return err
	}
	c.audit.Detail = layoutDetail(l)
	w.Header().Set("Location", "/api/v1/layouts/"+l.ID)
	writeJSON(w, http.StatusCreated, l)
	return nil
}

func (s *Server) updateLayout(w http.ResponseWriter, r *http.Request, c *call) error {
	id := r.PathValue("id")
	c.audit.Detail = "layout " + truncate(id, 64)
	in, err := s.layoutInput(w, r, c)
	if err != nil {
		return err
	}
	in.ID = id
	l, err := s.reg.UpdateLayout(r.Context(), c.p.user, in)
	if err != nil {
		return err
	}
	c.audit.Detail = layoutDetail(l)
	writeJSON(w, http.StatusOK, l)
	return nil
}

func (s *Server) deleteLayout(w http.ResponseWriter, r *http.Request, c *call) error {
	id := r.PathValue("id")
	c.audit.Detail = "layout " + truncate(id, 64)
	if c.p.displayID != "" {
		return apierr.New(apierr.ErrForbidden, "a display cannot change layouts")
	}
	l, err := s.reg.DeleteLayout(r.Context(), c.p.user, id)
	if err != nil {
		return err
	}
	c.audit.Detail = layoutDetail(l)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// layoutDetail describes a layout in the audit log.
func layoutDetail(l registry.Layout) string {
	shared := "private"
	if l.Shared != nil {
		shared = "shared with " + *l.Shared
	}
	d := fmt.Sprintf("layout %s %q owner %s grid %d %s", l.ID, truncate(l.Name, 100), l.Owner, l.Grid, shared)
	if l.Tour != nil {
		d += fmt.Sprintf(" tour of %d layouts every %s", len(l.Tour.Layouts), l.Tour.Dwell)
	}
	return d
}
