package ui

import (
	"crypto/subtle"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/apierr"
	"github.com/vigil-vms/vigil/registry"
)

// SessionCookie is the name of the login cookie.
const SessionCookie = "vigil_session"

// CSRFHeader carries the CSRF token of a cookie session's state changes.
const CSRFHeader = "X-CSRF-Token"

// principal is who makes a request.
type principal struct {
	user      registry.User
	sessionID string // the cookie, when logged in through the web app
	csrf      string
	tokenID   string // when acting through an API token
	displayID string // when a display (a wall an admin signed in) makes it
}

// action is what a request does, for authorize.
type action int

const (
	actOpen      action = iota // no login needed
	actView                    // any login: camera list and status, departments, own session and tokens
	actLive                    // live view
	actPlayback                // recordings and playback
	actExport                  // evidence export
	actIncidents               // create and list incidents
	actReports                 // availability report
	actMetrics                 // Prometheus metrics
	actAdmin                   // cameras, audit, incident deletion
	actAccounts                // users and departments: who may see what
	actPTZ                     // pan, tilt and zoom a camera
)

var actionNames = map[action]string{
	actView: "view", actLive: "live view", actPlayback: "playback", actExport: "export",
	actIncidents: "incidents", actReports: "reports", actMetrics: "metrics", actAdmin: "administration",
	actAccounts: "managing users and departments", actPTZ: "PTZ control",
}

// roleActions is the role → allowed actions table of the contract.
var roleActions = map[string][]action{
	registry.RoleAdmin:     {actView, actLive, actPlayback, actExport, actIncidents, actReports, actMetrics, actAdmin, actAccounts, actPTZ},
	registry.RoleOperator:  {actView, actLive, actPlayback, actReports, actMetrics, actPTZ},
	registry.RoleResponder: {actView, actLive, actPlayback, actExport, actIncidents, actReports, actMetrics, actPTZ},
	registry.RoleViewer:    {actView, actLive, actMetrics},
	roleDisplay:            {actView, actLive},
}

// roleDisplay is the role of a display's requests: live view only. No user
// has it; a display is not a user.
const roleDisplay = "display"

// globalActions show data of every department at once, or decide who sees
// what (users and departments): a user limited to departments may not
// perform them — they see no other camera, anywhere, and an admin limited to
// departments could otherwise lift their own limit or make an unlimited admin.
var globalActions = []action{actMetrics, actAccounts}

// authorize is the one authorization decision of the API: may p perform
// act, on camera cam when it is not nil? No principal is 401; a role that
// does not allow the action is 403; a camera outside the user's
// departments is 404, exactly like a camera that does not exist.
func authorize(p *principal, act action, cam *ingest.Camera) error {
	if act == actOpen {
		return nil
	}
	if p == nil {
		return errUnauthenticated
	}
	if !slices.Contains(roleActions[p.user.Role], act) {
		return apierr.New(apierr.ErrForbidden, "the role %s does not allow %s", p.user.Role, actionNames[act])
	}
	if p.user.Scoped() && slices.Contains(globalActions, act) {
		return apierr.New(apierr.ErrForbidden, "%s covers every department; your account is limited to %s",
			actionNames[act], strings.Join(p.user.Departments, ", "))
	}
	if cam != nil && !p.user.InScope(cam.Department) {
		return cameraNotFound(cam.ID)
	}
	return nil
}

// cameraNotFound is the same error the registry gives for a missing camera.
func cameraNotFound(id string) error {
	return apierr.New(apierr.ErrNotFound, "camera %q does not exist", truncate(id, 64))
}

// authenticate finds the principal of a request: a bearer token (which must
// be valid) or the session cookie. It returns nil, nil without either.
func (s *Server) authenticate(r *http.Request) (*principal, error) {
	ctx := r.Context()
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, secret, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(secret) == "" {
			return nil, errStatus(http.StatusUnauthorized, "the Authorization header must be Bearer TOKEN")
		}
		u, id, err := s.reg.TokenUser(ctx, strings.TrimSpace(secret))
		if err != nil {
			if apierr.Status(err) == http.StatusNotFound {
				return nil, errStatus(http.StatusUnauthorized, "the token is unknown or was revoked")
			}
			return nil, err
		}
		return &principal{user: u, tokenID: id}, nil
	}
	ck, err := r.Cookie(SessionCookie)
	if err != nil || ck.Value == "" {
		return nil, nil
	}
	if strings.HasPrefix(ck.Value, registry.DisplaySecretPrefix) {
		return s.displayPrincipal(r, ck.Value)
	}
	sess, err := s.reg.Session(ctx, ck.Value)
	if err != nil {
		if apierr.Status(err) == http.StatusNotFound {
			return nil, nil // expired or logged out: as if no cookie
		}
		return nil, err
	}
	return &principal{user: sess.User, sessionID: ck.Value, csrf: sess.CSRF}, nil
}

// checkCSRF refuses a state change made with the session cookie without
// the session's CSRF token in the X-CSRF-Token header.
func checkCSRF(r *http.Request, p *principal) error {
	if p.sessionID == "" {
		return nil
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return nil
	}
	got := r.Header.Get(CSRFHeader)
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(p.csrf)) != 1 {
		return apierr.New(apierr.ErrForbidden, "missing or wrong %s header (GET /api/v1/session returns the token)", CSRFHeader)
	}
	return nil
}

// limiter counts failed logins in a sliding window, per client address
// and per user. An attempt is decided and reserved in one step (try), before
// the password is hashed, so that concurrent attempts cannot pass the limit
// together; a reservation counts as a failure until it is released.
//
// An address may fail max times in the window, whatever the users. A user
// who failed max times in the window (from any addresses) is locked only
// for the addresses that failed for them: from an address without such a
// failure the right password still logs in. So nobody can lock another
// person out, and guessing one user's password from many addresses costs
// one address per guess once the user is locked.
type limiter struct {
	mu     sync.Mutex
	max    int
	window time.Duration
	seq    uint64
	fails  map[string][]attempt
}

// attempt is one failed (or reserved) login.
type attempt struct {
	at time.Time
	id uint64 // of the reservation; 0 for a plain failure
}

// ticket is a reserved attempt, released by release when it did not fail.
type ticket struct {
	id   uint64
	keys [3]string
}

func newLimiter(max int, window time.Duration) *limiter {
	return &limiter{max: max, window: window, fails: map[string][]attempt{}}
}

func addrKey(addr string) string       { return "a:" + addr }
func userKey(user string) string       { return "u:" + strings.ToLower(user) }
func pairKey(user, addr string) string { return "p:" + addr + " " + strings.ToLower(user) }

// try reserves a login attempt of user from addr, or returns how long the
// client must wait (and no reservation).
func (l *limiter) try(user, addr string, now time.Time) (ticket, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	a, u, p := addrKey(addr), userKey(user), pairKey(user, addr)
	wait := l.wait(a, now)
	if pf := l.live(p, now); len(pf) > 0 && len(l.live(u, now)) >= l.max {
		wait = max(wait, min(l.wait(u, now), pf[len(pf)-1].at.Add(l.window).Sub(now)))
	}
	if wait > 0 {
		return ticket{}, wait
	}
	l.seq++
	t := ticket{id: l.seq, keys: [3]string{a, u, p}}
	for _, k := range t.keys {
		l.add(k, attempt{at: now, id: t.id}, now)
	}
	return t, 0
}

// release withdraws a reservation: the attempt did not fail (it succeeded,
// or could not be checked).
func (l *limiter) release(t ticket) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range t.keys {
		f := slices.DeleteFunc(l.fails[k], func(a attempt) bool { return a.id == t.id })
		if len(f) == 0 {
			delete(l.fails, k)
		} else {
			l.fails[k] = f
		}
	}
}

// refusal counts a refused attempt from addr and tells whether it is among
// the first max of the window: only those are audited, so that a flood of
// refused logins (which cost no hashing) cannot grow the audit log
// without bound.
func (l *limiter) refusal(addr string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := "r:" + addr
	if len(l.live(k, now)) >= l.max {
		return false
	}
	l.add(k, attempt{at: now}, now)
	return true
}

// forgive forgets the failures of user from addr, after a login that
// succeeded there.
func (l *limiter) forgive(user, addr string) { l.reset(pairKey(user, addr)) }

// blocked returns how long the key must wait, 0 when it may try.
func (l *limiter) blocked(key string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.wait(key, now)
}

func (l *limiter) wait(key string, now time.Time) time.Duration {
	f := l.live(key, now)
	if len(f) < l.max {
		return 0
	}
	return f[len(f)-l.max].at.Add(l.window).Sub(now)
}

func (l *limiter) live(key string, now time.Time) []attempt {
	f := l.fails[key]
	i := 0
	for i < len(f) && !f[i].at.Add(l.window).After(now) {
		i++
	}
	f = f[i:]
	if len(f) == 0 {
		delete(l.fails, key)
	} else {
		l.fails[key] = f
	}
	return f
}

// sweep drops expired keys when there are many.
func (l *limiter) sweep(now time.Time) {
	if len(l.fails) > 10000 {
		for k := range l.fails {
			l.live(k, now)
		}
	}
}

// add records a, keeping the newest max attempts of the key.
func (l *limiter) add(key string, a attempt, now time.Time) {
	f := append(l.live(key, now), a)
	if len(f) > l.max {
		f = f[len(f)-l.max:]
	}
	l.fails[key] = f
}

func (l *limiter) fail(key string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	l.add(key, attempt{at: now}, now)
}

func (l *limiter) reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.fails, key)
}

type loginBody struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

type sessionBody struct {
	Username    string   `json:"username"`
	Role        string   `json:"role"`
	Departments []string `json:"departments"`
	CSRFToken   string   `json:"csrfToken,omitempty"`
}

// login needs no CSRF token, even with a valid session cookie: the password
// authenticates it, and a cross-site page cannot send its JSON body (a
// form cannot set Content-Type: application/json; CORS is not offered).
func (s *Server) login(w http.ResponseWriter, r *http.Request, c *call) error {
	var in loginBody
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	in.Username = strings.TrimSpace(in.Username)
	if in.Username == "" || in.Password == "" {
		return apierr.New(apierr.ErrInvalid, "username and password are required")
	}
	c.audit.User = in.Username
	if len(c.audit.User) > 64 {
		c.audit.User = c.audit.User[:64]
	}
	// The attempt is counted before the password is hashed, so that
	// concurrent attempts cannot pass the limit together.
	addr := limitAddr(s.clientAddr(r))
	now := time.Now()
	tk, wait := s.limit.try(in.Username, addr, now)
	if wait > 0 {
		return s.tooManyLogins(c, addr, now, wait)
	}
	u, err := s.reg.Authenticate(r.Context(), in.Username, in.Password)
	if registry.IsBadCredentials(err) {
		return errStatus(http.StatusUnauthorized, "wrong username or password")
	}
	s.limit.release(tk)
	if err != nil {
		return err
	}
	s.limit.forgive(in.Username, addr)
	id, csrf, err := s.reg.StartSession(r.Context(), u.Username, s.opts.SessionTTL, s.opts.SessionMaxAge)
	if err != nil {
		return err
	}
	s.signIn(w, r, c, u, id, csrf, s.opts.SessionMaxAge)
	return nil
}

// tooManyLogins refuses a login attempt from addr for wait; a flood of
// refused attempts does not grow the audit log.
func (s *Server) tooManyLogins(c *call, addr string, now time.Time, wait time.Duration) error {
	if !s.limit.refusal(addr, now) {
		c.audit = nil
	}
	secs := strconv.Itoa(int((wait + time.Second - 1) / time.Second))
	return &httpError{status: http.StatusTooManyRequests, msg: "too many failed logins: try again in " + secs + " s",
		header: http.Header{"Retry-After": {secs}}}
}

// signIn gives the browser the session secret as a cookie kept for maxAge
// and answers with who it now is. Signing in again (as anyone) replaces the
// browser's old session.
func (s *Server) signIn(w http.ResponseWriter, r *http.Request, c *call, u registry.User, secret, csrf string, maxAge time.Duration) {
	s.replaceSession(r, c)
	s.setSessionCookie(w, secret, maxAge)
	writeJSON(w, http.StatusOK, sessionBody{Username: u.Username, Role: u.Role, Departments: u.Departments, CSRFToken: csrf})
}

// replaceSession ends the browser's old session (of a user or a display)
// when it logs in again, as anyone.
func (s *Server) replaceSession(r *http.Request, c *call) {
	if c.p == nil {
		return
	}
	var err error
	switch {
	case c.p.displayID != "":
		err = s.reg.SignOutDisplay(r.Context(), c.p.displayID)
	case c.p.sessionID != "":
		err = s.reg.DeleteSession(r.Context(), c.p.sessionID)
	}
	if err != nil {
		s.log.Warn("cannot end the session replaced by a login", "user", c.p.user.Username, "error", err)
	}
}

// setSessionCookie sets the login cookie for maxAge (the session's cap;
// the server ends it earlier when idle).
func (s *Server) setSessionCookie(w http.ResponseWriter, secret string, maxAge time.Duration) {
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: secret, Path: "/", HttpOnly: true,
		Secure: s.opts.Secure, SameSite: http.SameSiteStrictMode, MaxAge: int(maxAge / time.Second)})
}

func (s *Server) getSession(w http.ResponseWriter, r *http.Request, c *call) error {
	u := c.p.user
	writeJSON(w, http.StatusOK, sessionBody{Username: u.Username, Role: u.Role, Departments: u.Departments, CSRFToken: c.p.csrf})
	return nil
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, c *call) error {
	switch {
	case c.p.displayID != "":
		if err := s.reg.SignOutDisplay(r.Context(), c.p.displayID); err != nil {
			return err
		}
	case c.p.sessionID != "":
		if err := s.reg.DeleteSession(r.Context(), c.p.sessionID); err != nil {
			return err
		}
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", HttpOnly: true,
		Secure: s.opts.Secure, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type tokenBody struct {
	Name string `json:"name"`
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request, c *call) error {
	if c.p.displayID != "" {
		return apierr.New(apierr.ErrForbidden, "a display has no API tokens")
	}
	var in tokenBody
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	t, secret, err := s.reg.CreateToken(r.Context(), c.p.user.Username, in.Name)
	if err != nil {
		return err
	}
	c.audit.Detail = "token " + t.ID
	writeJSON(w, http.StatusCreated, struct {
		ID    string `json:"id"`
		Name  string `json:"name"`
		Token string `json:"token"`
	}{t.ID, t.Name, secret})
	return nil
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request, c *call) error {
	owner := tokenOwner(c.p)
	ts, err := s.reg.Tokens(r.Context(), owner)
	return writeOK(w, ts, err)
}

func (s *Server) deleteToken(w http.ResponseWriter, r *http.Request, c *call) error {
	owner := tokenOwner(c.p)
	id := r.PathValue("id")
	c.audit.Detail = "token " + truncate(id, 64)
	return writeNoContent(w, s.reg.DeleteToken(r.Context(), id, owner))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
