package ui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/apierr"
	"github.com/vigil-vms/vigil/registry"
)

// Body limits.
const (
	maxJSONBody = 1 << 20
	maxCSVBody  = 8 << 20
	maxSDPBody  = 64 << 10
)

// httpError is an error with its own status, for what the apierr kinds do
// not cover (401, 413, 415, 429).
type httpError struct {
	status int
	format string // the key of its wording in apierr's catalog
	args   []any
	msg    string
	header http.Header
}

func (e *httpError) Error() string { return e.msg }

func errStatus(status int, format string, a ...any) error {
	return &httpError{status: status, format: format, args: a, msg: fmt.Sprintf(format, a...)}
}

var errUnauthenticated = errStatus(http.StatusUnauthorized, "log in first (session cookie or Authorization: Bearer token)")

// statusOf maps an error to its HTTP status.
func statusOf(err error) int {
	var he *httpError
	if errors.As(err, &he) {
		return he.status
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return http.StatusRequestEntityTooLarge
	}
	return apierr.Status(err)
}

// errorBody is the JSON of every error; Errors lists a validation's fields.
// Code is stable (apierr's catalog); the texts are in the language of the
// request's Accept-Language.
type errorBody struct {
	Error  string       `json:"error"`
	Code   string       `json:"code"`
	Errors []fieldError `json:"errors,omitempty"`
}

// fieldError is a registry.FieldError with its code, worded for the caller.
type fieldError struct {
	Row     int    `json:"row,omitempty"`
	Field   string `json:"field"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// writeError answers err as JSON. Messages of 5xx errors stay in the log.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status := statusOf(err)
	lang := requestLang(r)
	var body errorBody
	body.Code, body.Error = localize(err, status, lang)
	var ve *registry.ValidationError
	if errors.As(err, &ve) {
		// The code is the first field's (camera.invalid_url); each field's
		// own is in errors.
		body.Code = "validation"
		for i, fe := range ve.Errors {
			code, msg, ok := apierr.Translate(fe.Message, lang)
			if !ok {
				code = "invalid"
			}
			if i == 0 {
				body.Code = code
			}
			body.Errors = append(body.Errors, fieldError{Row: fe.Row, Field: fe.Field, Code: code, Message: ingest.RedactURL(msg)})
		}
		if lang == apierr.Chinese {
			body.Error = validationSummary(body.Errors)
		}
	}
	var he *httpError
	if errors.As(err, &he) {
		for k, v := range he.header {
			w.Header()[k] = v
		}
	}
	switch {
	case status >= 500 && errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// the client went away (a tab closed, the page left) and the
		// database gave up its query: no one reads the answer, and the
		// server did not fail
		s.log.Debug("request failed: the client went away", "method", r.Method, "path", r.URL.Path, "error", ingest.RedactURL(err.Error()))
	case status >= 500:
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "error", ingest.RedactURL(err.Error()))
	}
	if status == http.StatusInternalServerError {
		body.Code, body.Error, _ = apierr.Format(lang, "internal error: see the server log")
	}
	body.Error = ingest.RedactURL(body.Error)
	writeJSON(w, status, body)
}

// localize returns err's code and text in lang.
func localize(err error, status int, lang string) (code, text string) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		code, text, _ = apierr.Format(lang, "the request body is larger than %d bytes", mbe.Limit)
		return code, text
	}
	var he *httpError
	if errors.As(err, &he) && he.msg == err.Error() {
		if code, text, ok := apierr.Format(lang, he.format, he.args...); ok {
			return code, text
		}
		return statusCode(status), err.Error()
	}
	code, text = apierr.Localize(err, lang)
	if code == "internal" && status != http.StatusInternalServerError {
		code = statusCode(status)
	}
	return code, text
}

// statusCode is the code of an error the catalog does not name.
func statusCode(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return "unauthorized"
	case http.StatusRequestEntityTooLarge:
		return "too_large"
	case http.StatusUnsupportedMediaType:
		return "unsupported_media_type"
	case http.StatusTooManyRequests:
		return "too_many_requests"
	case http.StatusBadGateway:
		return "bad_gateway"
	case http.StatusNotFound:
		return "not_found"
	}
	if status < 500 {
		return "invalid"
	}
	return "internal"
}

// validationSummary is the Chinese "error" of a validation: its fields'
// messages ("invalid camera: ..." in English).
func validationSummary(errs []fieldError) string {
	parts := make([]string, 0, len(errs))
	for _, fe := range errs {
		p := fe.Field + "：" + fe.Message
		if fe.Row > 0 {
			p = fmt.Sprintf("第 %d 行：", fe.Row) + p
		}
		parts = append(parts, p)
	}
	if len(parts) > 20 {
		parts = append(parts[:20], fmt.Sprintf("另有 %d 项", len(parts)-20))
	}
	return "摄像机无效：" + strings.Join(parts, "；")
}

// writeOK answers 200 with v, or returns err when the look-up that made v
// failed.
func writeOK[T any](w http.ResponseWriter, v T, err error) error {
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// writeNoContent answers 204 No Content, or returns err when the change
// failed.
func writeNoContent(w http.ResponseWriter, err error) error {
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"internal error: cannot encode the answer","code":"internal"}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// mediaType returns the request's media type without parameters.
func mediaType(r *http.Request) string {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return ""
	}
	return mt
}

// readBody reads the whole body up to limit bytes. The server's
// ReadTimeout (NewHTTPServer) bounds the time: the deadline is not cleared
// here, so that what net/http drains after the handler is bounded too.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, err
		}
		return nil, apierr.New(apierr.ErrInvalid, "cannot read the request body: %v", err)
	}
	return b, nil
}

// decodeJSON decodes exactly one JSON value of the request into v,
// refusing unknown fields, other media types and bodies over 1 MiB.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	if mt := mediaType(r); mt != "application/json" {
		return errStatus(http.StatusUnsupportedMediaType, "send JSON with Content-Type: application/json")
	}
	b, err := readBody(w, r, maxJSONBody)
	if err != nil {
		return err
	}
	return unmarshalStrict(b, v)
}

func unmarshalStrict(b []byte, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return apierr.New(apierr.ErrInvalid, "the request body is empty: send a JSON object")
		}
		// The decoder quotes what it could not take (a field name, a
		// value), which may be as long as the body.
		return apierr.New(apierr.ErrInvalid, "malformed JSON: %s", truncate(strings.TrimPrefix(err.Error(), "json: "), 200))
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		return apierr.New(apierr.ErrInvalid, "malformed JSON: send one JSON value only")
	}
	return nil
}

// limitAddr is the address the login limiter counts: an IPv4 address, or
// the /64 network of an IPv6 one (a client usually has a whole /64).
func limitAddr(addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil || !a.Is6() || a.Is4In6() {
		return addr
	}
	p, _ := a.Prefix(64)
	return p.String()
}

// clientAddr is the address of the client. X-Forwarded-For is believed only
// from Options.TrustedProxies: walking it from the right (the address the
// nearest proxy saw), trusted proxies are skipped and the first other
// address is the client. Without trusted proxies it is ignored (anyone can
// send it), and behind a proxy every client has the proxy's address.
func (s *Server) clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if len(s.opts.TrustedProxies) == 0 || !s.trusted(host) {
		return host
	}
	hops := r.Header.Values("X-Forwarded-For")
	var all []string
	for _, h := range hops {
		all = append(all, strings.Split(h, ",")...)
	}
	for i := len(all) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(all[i]))
		if err != nil {
			return host // a hop we cannot read: stop at the last address we trust
		}
		if !s.trusted(a.String()) {
			return a.Unmap().String()
		}
		host = a.Unmap().String()
	}
	return host
}

// trusted tells an address of Options.TrustedProxies.
func (s *Server) trusted(addr string) bool {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range s.opts.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// call is one request's context: who makes it and what it will audit.
type call struct {
	p *principal
	// audit is the row this request writes (nil: not audited); handlers
	// fill Camera, Start, End and Detail, the wrapper the rest.
	audit *registry.AuditEntry
}

type handlerFunc func(w http.ResponseWriter, r *http.Request, c *call) error

// route registers a handler behind the one authorization path: it finds
// the principal (401 without one unless act is actOpen), checks the CSRF
// token of a cookie session's state change (except on actOpen routes, which
// the cookie does not authorize), asks authorize whether the role
// may act, runs the handler, answers its error as JSON, and writes the
// request's audit row when auditAction is not empty.
func (s *Server) route(pattern string, act action, auditAction string, h handlerFunc) {
	cameraRoute := strings.Contains(pattern, "/api/v1/cameras/{id}")
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		c := &call{}
		if auditAction != "" {
			c.audit = &registry.AuditEntry{Action: auditAction, Address: s.clientAddr(r)}
			if cameraRoute {
				// Known before authorization, so that a refused attempt names it.
				c.audit.Camera = truncate(r.PathValue("id"), 64)
			}
		}
		err := s.serve(w, r, act, c, h)
		if err != nil && !isWritten(w) {
			s.writeError(w, r, err)
		} else if err != nil {
			s.log.Warn("request ended early", "method", r.Method, "path", r.URL.Path, "error", ingest.RedactURL(err.Error()))
		}
		if c.audit != nil && (c.p != nil || c.audit.User != "") {
			s.writeAudit(r, c, err)
		}
	})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, act action, c *call, h handlerFunc) error {
	p, err := s.authenticate(r)
	if err != nil {
		return err
	}
	if p == nil && act != actOpen {
		return errUnauthenticated
	}
	c.p = p
	if p != nil {
		if c.audit != nil {
			c.audit.User = p.user.Username
		}
		// An open route (logging in) grants nothing through the cookie, so
		// a login made while an old session is still valid needs no token.
		if act != actOpen {
			if err := checkCSRF(r, p); err != nil {
				return err
			}
		}
	}
	if act != actOpen {
		if err := authorize(p, act, nil); err != nil {
			return err
		}
	}
	return h(w, r, c)
}

func (s *Server) writeAudit(r *http.Request, c *call, err error) {
	e := *c.audit
	if c.p != nil && c.p.tokenID != "" {
		e.Detail = joinDetail("via token "+c.p.tokenID, e.Detail)
	}
	switch {
	case e.Result != "":
		// set by the handler (resultEnded)
	case err == nil:
		e.Result = "ok"
	case statusOf(err) == http.StatusForbidden || statusOf(err) == http.StatusNotFound && e.Camera != "":
		e.Result = "denied"
		e.Detail = joinDetail(e.Detail, ingest.RedactURL(err.Error()))
	default:
		e.Result = "failed"
		e.Detail = joinDetail(e.Detail, ingest.RedactURL(err.Error()))
	}
	// The audit row must be written even when the client went away.
	ctx := context.WithoutCancel(r.Context())
	if aerr := s.reg.Audit(ctx, e); aerr != nil {
		s.log.Error("cannot write the audit log", "action", e.Action, "user", e.User, "error", aerr)
	}
}

// resultEnded is the audit result of a playback the client ended.
const resultEnded = "ended"

func joinDetail(a, b string) string {
	if a == "" {
		return b
	}
	if b == "" {
		return a
	}
	return a + "; " + b
}

// trackWriter remembers whether the response has begun.
type trackWriter struct {
	http.ResponseWriter
	written bool
}

func (t *trackWriter) WriteHeader(code int) {
	t.written = true
	t.ResponseWriter.WriteHeader(code)
}

func (t *trackWriter) Write(b []byte) (int, error) {
	t.written = true
	return t.ResponseWriter.Write(b)
}

func (t *trackWriter) Unwrap() http.ResponseWriter { return t.ResponseWriter }

func isWritten(w http.ResponseWriter) bool {
	t, ok := w.(*trackWriter)
	return ok && t.written
}
