package ui

import (
	"net/http"

	"github.com/vigil-vms/vigil/dispatch"
	"github.com/vigil-vms/vigil/internal/apierr"
)

// requestLang is the language the request's Accept-Language asks for.
func requestLang(r *http.Request) string {
	return apierr.Lang(r.Header.Get("Accept-Language"))
}

// localizeStatus words a status's errors (a camera's pull error, its
// clock) in lang; the sub-stream's status is copied, not changed.
func localizeStatus(st dispatch.Status, lang string) dispatch.Status {
	st.LastError = apierr.Words(st.LastError, lang)
	if st.Sub != nil {
		sub := *st.Sub
		sub.LastError = apierr.Words(sub.LastError, lang)
		st.Sub = &sub
	}
	return st
}

// cameraStatus answers GET /api/v1/cameras/{id}/status.
func (s *Server) cameraStatus(w http.ResponseWriter, r *http.Request, c *call) error {
	cam, err := s.camera(r, c, actView)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, localizeStatus(s.status(cam), requestLang(r)))
	return nil
}
