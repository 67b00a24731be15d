package ui

import (
	"context"
	"net/http"
	"slices"

	"github.com/vigil-vms/vigil/cluster"
	"github.com/vigil-vms/vigil/internal/apierr"
)

// Cluster is the cluster this node belongs to (cluster.Cluster); nil on a
// single node.
type Cluster interface {
	Nodes(ctx context.Context) ([]cluster.NodeInfo, error)
}

// clusterNodes answers GET /api/v1/cluster: the nodes of the cluster
// (admin and operator), none on a single node.
func (s *Server) clusterNodes(w http.ResponseWriter, r *http.Request, c *call) error {
	if role := c.p.user.Role; !slices.Contains(healthRoles, role) {
		return apierr.New(apierr.ErrForbidden, "the role %s does not allow the list of nodes (admin and operator do)", role)
	}
	nodes := []cluster.NodeInfo{}
	if s.deps.Cluster != nil {
		var err error
		if nodes, err = s.deps.Cluster.Nodes(r.Context()); err != nil {
			return err
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"nodes": nodes})
	return nil
}
