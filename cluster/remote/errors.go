package remote

import (
	"encoding/json"
	"io"
	"net/http"

	"github.com/vigil-vms/vigil/internal/apierr"
)

// errorBody is the answer of an internal endpoint that failed: the error's
// English text and its kind (apierr.KindCode), so that the node the user
// talks to answers as if the error were its own (same status, same code and
// wording in the user's language: apierr finds the catalog entry from the
// text).
type errorBody struct {
	Error string `json:"error"`
	Kind  string `json:"kind"`
}

// kinds maps apierr.KindCode back to the kind.
var kinds = map[string]error{
	"invalid":           apierr.ErrInvalid,
	"not_found":         apierr.ErrNotFound,
	"conflict":          apierr.ErrConflict,
	"unsupported":       apierr.ErrUnsupported,
	"unavailable":       apierr.ErrUnavailable,
	"forbidden":         apierr.ErrForbidden,
	"too_many_requests": apierr.ErrTooMany,
}

// ownerError is an error the owner answered, with its kind kept.
type ownerError struct {
	kind error // nil: of no kind (an internal error of the owner)
	msg  string
}

func (e *ownerError) Error() string { return e.msg }
func (e *ownerError) Unwrap() error { return e.kind }

// writeError answers err with its status and kind.
func writeError(w http.ResponseWriter, status int, err error, kind string) {
	b, _ := json.Marshal(errorBody{Error: err.Error(), Kind: kind})
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// writeKindError answers an error of the local relay or spool.
func writeKindError(w http.ResponseWriter, err error) {
	writeError(w, apierr.Status(err), err, apierr.KindCode(err))
}

// readError turns a failed answer of node into an error of the same kind.
func readError(node string, resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var body errorBody
	if json.Unmarshal(b, &body) != nil || body.Error == "" {
		return apierr.New(apierr.ErrUnavailable, "node %s answered %s", node, resp.Status)
	}
	if resp.StatusCode == http.StatusUnauthorized {
		// A configuration fault between the nodes, not the user's.
		return apierr.New(apierr.ErrUnavailable, "node %s refused this node's request: %s", node, body.Error)
	}
	return &ownerError{kind: kinds[body.Kind], msg: body.Error}
}
