package ui

import (
	"net/http"

	"github.com/vigil-vms/vigil/gb28181/upstream"
)

// listGBUpstream answers GET /api/v1/gb28181/upstream: each upper platform
// Vigil registers to, with its state (registered|failing), since,
// lastError and live viewers.
func (s *Server) listGBUpstream(w http.ResponseWriter, r *http.Request, c *call) error {
	g, err := s.gb()
	if err != nil {
		return err
	}
	out := []upstream.Status{}
	if g.Upstream != nil {
		out = append(out, g.Upstream()...)
	}
	return writeOK(w, out, nil)
}
