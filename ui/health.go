package ui

import (
	"context"
	"net/http"
	"slices"

	"github.com/vigil-vms/vigil/alerts"
	"github.com/vigil-vms/vigil/health"
	"github.com/vigil-vms/vigil/internal/apierr"
	"github.com/vigil-vms/vigil/registry"
)

// Health reports how every part is (health.Monitor).
type Health interface {
	Report(ctx context.Context) health.Report
}

// Alerts sends alert events to the webhooks (alerts.Notifier).
type Alerts interface {
	SendTest(ctx context.Context, by string) []alerts.TestResult
}

// healthRoles may read the health report: the people who run the system.
var healthRoles = []string{registry.RoleAdmin, registry.RoleOperator}

// health answers GET /api/v1/health. A user limited to departments sees the
// checks of the whole system and of their own cameras and GB/T 28181
// devices (a check with a department) only.
func (s *Server) health(w http.ResponseWriter, r *http.Request, c *call) error {
	if role := c.p.user.Role; !slices.Contains(healthRoles, role) {
		return apierr.New(apierr.ErrForbidden, "the role %s does not allow the health report (admin and operator do)", role)
	}
	if s.deps.Health == nil {
		return apierr.New(apierr.ErrUnavailable, "health checks are not enabled")
	}
	rep := s.deps.Health.Report(r.Context())
	if c.p.user.Scoped() {
		rep = rep.Filter(func(ch health.Check) bool {
			return ch.Camera == "" && ch.Department == "" || c.p.user.InScope(ch.Department)
		})
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}

// alertsTest answers POST /api/v1/alerts/test: a test event to every webhook,
// and for each whether it was delivered.
func (s *Server) alertsTest(w http.ResponseWriter, r *http.Request, c *call) error {
	if s.deps.Alerts == nil {
		return apierr.New(apierr.ErrUnavailable, "alerts are not enabled")
	}
	res := s.deps.Alerts.SendTest(r.Context(), c.p.user.Username)
	if res == nil {
		res = []alerts.TestResult{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"webhooks": res})
	return nil
}
