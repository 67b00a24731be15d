// Package apierr gives errors a kind that the HTTP layer maps to a status,
// so that services (relay, recorder, registry) never speak HTTP themselves.
// It also words them in the caller's language (see catalog.go).
package apierr

import (
	"errors"
	"fmt"
	"net/http"
)

// Kinds of failure. Wrap them with %w, or build errors with New.
var (
	ErrInvalid     = errors.New("invalid")     // 400: the request is malformed
	ErrNotFound    = errors.New("not found")   // 404
	ErrConflict    = errors.New("conflict")    // 409: clashes with what exists
	ErrUnsupported = errors.New("unsupported") // 415/422: well-formed but cannot be served
	ErrUnavailable = errors.New("unavailable") // 503: try again later
	ErrForbidden   = errors.New("forbidden")   // 403
	// ErrTooMany is the caller's own limit of concurrent requests (429). It
	// is a kind of ErrUnavailable: errors.Is(err, ErrUnavailable) holds too.
	ErrTooMany = fmt.Errorf("too many requests: %w", ErrUnavailable)
)

type kindError struct {
	kind   error
	format string
	args   []any
	msg    string
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

// New returns an error of the kind whose message (shown to users) is the
// formatted text. The format is also the key of the message's code and
// translations in catalog.tsv: keep it a literal.
func New(kind error, format string, a ...any) error {
	return &kindError{kind: kind, format: format, args: a, msg: fmt.Sprintf(format, a...)}
}

// Status maps an error to an HTTP status code (500 for errors of no kind).
func Status(err error) int {
	switch {
	case errors.Is(err, ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrConflict):
		return http.StatusConflict
	case errors.Is(err, ErrUnsupported):
		return http.StatusUnprocessableEntity
	case errors.Is(err, ErrTooMany):
		return http.StatusTooManyRequests
	case errors.Is(err, ErrUnavailable):
		return http.StatusServiceUnavailable
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden
	}
	return http.StatusInternalServerError
}

// KindCode is the code of an error that the catalog does not name: its
// kind (invalid, not_found, ...), "internal" for errors of no kind.
func KindCode(err error) string {
	switch {
	case errors.Is(err, ErrTooMany):
		return "too_many_requests"
	case errors.Is(err, ErrInvalid):
		return "invalid"
	case errors.Is(err, ErrNotFound):
		return "not_found"
	case errors.Is(err, ErrConflict):
		return "conflict"
	case errors.Is(err, ErrUnsupported):
		return "unsupported"
	case errors.Is(err, ErrUnavailable):
		return "unavailable"
	case errors.Is(err, ErrForbidden):
		return "forbidden"
	}
	return "internal"
}
