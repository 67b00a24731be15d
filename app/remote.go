package app

import (
	"context"

	"github.com/vigil-vms/vigil/cluster/remote"
	"github.com/vigil-vms/vigil/ui"
)

// buildRemote makes, in cluster mode, what lets this node serve every
// camera whichever node ingests it (cluster/remote): a live view of a camera
// owned elsewhere is answered by the owner's relay, and review sees the
// owner's spooled (not yet uploaded) segments — a.Review.Spool becomes the
// remote spool, which still includes this node's own. owners is the
// cluster (cluster.Cluster). The node-to-node requests are signed with the
// cluster's secret, made in the shared database by the first node.
//
// app.New calls it after a.Review is built, passes liveFor(n) as
// ui.Deps.Live, and serves n.Handler(srv.Handler()) (a nil n, on a single
// node, changes nothing).
func (a *App) buildRemote(ctx context.Context, owners remote.Owners) (*remote.Node, error) {
	secret, err := remote.LoadSecret(ctx, a.db)
	if err != nil {
		return nil, err
	}
	n, err := remote.New(remote.Options{
		Node:   a.cluster.Name(),
		Secret: secret,
		Owners: owners,
		Relay:  a.Relay,
		Spool:  a.Recorder,
		Log:    a.log.With("part", "remote"),
	})
	if err != nil {
		return nil, err
	}
	a.Review.Spool = n.Spool()
	return n, nil
}

// liveFor is the API's live view: the relay on a single node (n nil), the
// remote Live in front of it in a cluster.
func (a *App) liveFor(n *remote.Node) ui.Live {
	if n == nil {
		return a.Relay
	}
	return n.Live()
}
