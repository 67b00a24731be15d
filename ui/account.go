package ui

import (
	"net/http"
	"time"

	"github.com/vigil-vms/vigil/internal/apierr"
	"github.com/vigil-vms/vigil/registry"
)

type passwordBody struct {
	CurrentPassword string `json:"currentPassword"`
	NewPassword     string `json:"newPassword"`
}

// changePassword lets any logged-in user change their own password with
// the current one. Guessing the current password counts as failed logins
// (the login limiter applies). Every session and API token of the user
// ends, the live views too; a web app caller gets a fresh session (a new
// cookie and CSRF token) in the answer, so that only this browser stays
// logged in.
func (s *Server) changePassword(w http.ResponseWriter, r *http.Request, c *call) error {
	if c.p.displayID != "" {
		return apierr.New(apierr.ErrForbidden, "a display has no password")
	}
	var in passwordBody
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	if in.CurrentPassword == "" || in.NewPassword == "" {
		return apierr.New(apierr.ErrInvalid, "currentPassword and newPassword are required")
	}
	if err := registry.ValidatePassword(in.NewPassword); err != nil {
		return err
	}
	name := c.p.user.Username
	addr := limitAddr(s.clientAddr(r))
	now := time.Now()
	tk, wait := s.limit.try(name, addr, now)
	if wait > 0 {
		return s.tooManyLogins(c, addr, now, wait)
	}
	_, err := s.reg.Authenticate(r.Context(), name, in.CurrentPassword)
	if registry.IsBadCredentials(err) {
		return apierr.New(apierr.ErrForbidden, "the current password is wrong")
	}
	s.limit.release(tk)
	if err != nil {
		return err
	}
	s.limit.forgive(name, addr)
	if in.NewPassword == in.CurrentPassword {
		return apierr.New(apierr.ErrInvalid, "the new password must differ from the current one")
	}
	if err := s.reg.SetPassword(r.Context(), name, in.NewPassword); err != nil {
		return err
	}
	s.endLive("password changed", func(o whepOwner) bool { return o.user == name })
	c.audit.Detail = "own password changed; sessions and tokens ended"
	csrf := ""
	if c.p.sessionID != "" {
		secret, token, err := s.reg.StartSession(r.Context(), name, s.opts.SessionTTL, s.opts.SessionMaxAge)
		if err != nil {
			return err
		}
		s.setSessionCookie(w, secret, s.opts.SessionMaxAge)
		csrf = token
	}
	u := c.p.user
	writeJSON(w, http.StatusOK, sessionBody{Username: u.Username, Role: u.Role, Departments: u.Departments, CSRFToken: csrf})
	return nil
}
