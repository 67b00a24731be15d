package ui

import (
	"net/http"
	"strings"
	"time"

	"github.com/vigil-vms/vigil/internal/apierr"
	"github.com/vigil-vms/vigil/registry"
)

// displayUser is who a display's requests act as: role display (live view
// only), limited to the display's departments. Its name, "display:NAME",
// is what the audit log shows.
func displayUser(d registry.Display) registry.User {
	return registry.User{Username: "display:" + d.Name, Role: roleDisplay, Departments: d.Departments}
}

// displayPrincipal finds the display signed in with a session cookie; a
// revoked one is as if no cookie.
func (s *Server) displayPrincipal(r *http.Request, secret string) (*principal, error) {
	d, err := s.reg.DisplaySession(r.Context(), secret)
	if err != nil {
		if apierr.Status(err) == http.StatusNotFound {
			return nil, nil
		}
		return nil, err
	}
	return &principal{user: displayUser(d), sessionID: secret, csrf: d.CSRF, displayID: d.ID}, nil
}

type displayBody struct {
	Name        string   `json:"name"`
	Departments []string `json:"departments"`
}

// createDisplay registers a display and answers it with its one-time
// sign-in code and the path that signs a browser in with it.
func (s *Server) createDisplay(w http.ResponseWriter, r *http.Request, c *call) error {
	var in displayBody
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	d, code, err := s.reg.CreateDisplay(r.Context(), in.Name, in.Departments, c.p.user.Username)
	if err != nil {
		return err
	}
	c.audit.Detail = "display " + d.ID + " " + truncate(d.Name, 100)
	writeJSON(w, http.StatusCreated, struct {
		registry.Display
		Code string `json:"code"`
		Path string `json:"path"`
	}{d, code, "/#/display?code=" + code})
	return nil
}

func (s *Server) listDisplays(w http.ResponseWriter, r *http.Request, c *call) error {
	ds, err := s.reg.Displays(r.Context())
	return writeOK(w, ds, err)
}

func (s *Server) getDisplay(w http.ResponseWriter, r *http.Request, c *call) error {
	d, err := s.reg.Display(r.Context(), r.PathValue("id"))
	return writeOK(w, d, err)
}

// deleteDisplay revokes a display: its wall is signed out at its next
// request (within one status poll) and shows the login page.
func (s *Server) deleteDisplay(w http.ResponseWriter, r *http.Request, c *call) error {
	id := r.PathValue("id")
	c.audit.Detail = "display " + truncate(id, 64)
	return writeNoContent(w, s.reg.DeleteDisplay(r.Context(), id))
}

type displaySignInBody struct {
	Code string `json:"code"`
}

// signInDisplay trades a display's one-time code for its session cookie,
// which never idles out. Failures count against the login limiter of the
// client address, like wrong passwords.
func (s *Server) signInDisplay(w http.ResponseWriter, r *http.Request, c *call) error {
	var in displaySignInBody
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	in.Code = strings.TrimSpace(in.Code)
	if in.Code == "" {
		return apierr.New(apierr.ErrInvalid, "%s is required", "code")
	}
	c.audit.User = "display"
	addr := limitAddr(s.clientAddr(r))
	now := time.Now()
	if wait := s.limit.blocked(addrKey(addr), now); wait > 0 {
		return s.tooManyLogins(c, addr, now, wait)
	}
	d, secret, err := s.reg.SignInDisplay(r.Context(), in.Code)
	if apierr.Status(err) == http.StatusNotFound {
		s.limit.fail(addrKey(addr), now)
		return errStatus(http.StatusUnauthorized, "the display code is unknown, used or expired")
	}
	if err != nil {
		return err
	}
	u := displayUser(d)
	c.audit.User = u.Username
	c.audit.Detail = "display " + d.ID
	// The browser keeps the cookie for a year and then some: the display
	// ends when an admin revokes it.
	s.signIn(w, r, c, u, secret, d.CSRF, 400*24*time.Hour)
	return nil
}
