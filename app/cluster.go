package app

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/vigil-vms/vigil/app/config"
	"github.com/vigil-vms/vigil/cluster"
	"github.com/vigil-vms/vigil/dispatch"
	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/ui"
)

// openCluster joins the cluster when database.url is set (issue 16): the
// node takes camera leases, and a.cluster is set. On a single node it does
// nothing.
func (a *App) openCluster(ctx context.Context) error {
	if !a.cfg.Clustered() {
		return nil
	}
	if err := clusterConfigError(a.cfg); err != nil {
		return err
	}
	hostname, _ := os.Hostname()
	name := cmp.Or(a.cfg.Cluster.Node, hostname)
	if name == "" {
		return errors.New("cluster.node is empty and the host name is unknown: set cluster.node")
	}
	advertise := a.cfg.Cluster.Advertise
	if advertise == "" {
		advertise = defaultAdvertise(hostname, a.cfg.HTTP.Listen, a.cfg.HTTP.TLS.Cert != "")
	}
	c, err := cluster.Open(ctx, a.db, cluster.Options{
		Node:      name,
		Advertise: advertise,
		TTL:       a.cfg.Cluster.LeaseTTL.D(),
		Log:       a.log.With("part", "cluster", "node", name),
		// beside the segments it judges (hidden: the recorder leaves it alone)
		StateFile: filepath.Join(a.cfg.Recording.SpoolDir, ".cluster-provisional.json"),
	})
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	a.cluster = c
	return nil
}

// clusterConfigError refuses what does not run in a cluster yet: GB/T
// 28181 (its devices register to one node, and its media comes to that
// node's port).
func clusterConfigError(cfg config.Config) error {
	if cfg.Clustered() && cfg.GB28181.Enabled {
		return errors.New("config: gb28181.enabled with database.url: GB/T 28181 does not run in a cluster yet " +
			"(its devices register to one node); run it on a single node (database.url empty) or turn it off")
	}
	return nil
}

// defaultAdvertise is this node's URL when cluster.advertise is empty: the
// address http.listen binds when it names one, else the host name, with
// the HTTP port.
func defaultAdvertise(hostname, listen string, tls bool) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		port = "8080"
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = hostname
	}
	scheme := "http"
	if tls {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// clusterDispatch makes the dispatcher run only the cameras this node
// holds, and the cluster tell it which; after dispatch.New.
func (a *App) clusterDispatch() {
	if a.cluster == nil {
		return
	}
	a.Cameras.SetCluster(dispatch.ClusterOptions{Cluster: a.cluster, Lookup: a.Registry.Camera, Log: a.log.With("part", "dispatch")})
	a.cluster.SetTarget(a.Cameras)
}

// recorderFence is the recorder's upload fence; nil on a single node.
func (a *App) recorderFence() func(ctx context.Context, camera string, start, end time.Time) error {
	if a.cluster == nil {
		return nil
	}
	return a.cluster.Fence
}

// nodeName is this node's name in the cluster, "" on a single node.
func (a *App) nodeName() string {
	if a.cluster == nil {
		return ""
	}
	return a.cluster.Name()
}

// once is the RunsHere of a job done once per cluster (retention,
// availability roll-ups, alert housekeeping, incident jobs); nil (every
// pass runs) on a single node.
func (a *App) once(job string) func() bool {
	if a.cluster == nil {
		return nil
	}
	return a.cluster.Once(job)
}

// cameraStatuses is every camera's status for the availability sampler:
// on a single node the fleet's; in a cluster this node's from its fleet
// and the other nodes' as their owners shared them (one node samples for
// the cluster).
func (a *App) cameraStatuses() func() []ingest.Status {
	if a.cluster == nil {
		return a.Fleet.Statuses
	}
	return func() []ingest.Status {
		out := a.Fleet.Statuses()
		have := make(map[string]bool, len(out))
		for _, st := range out {
			have[st.ID] = true
		}
		for cam, b := range a.cluster.SharedStatuses() {
			var st dispatch.Status
			if have[cam] || json.Unmarshal(b, &st) != nil {
				continue
			}
			st.Status.ID = cam
			out = append(out, st.Status)
		}
		slices.SortFunc(out, func(x, y ingest.Status) int { return strings.Compare(x.ID, y.ID) })
		return out
	}
}

// clusterDeps is the ui's view of the cluster; nil on a single node.
func (a *App) clusterDeps() ui.Cluster {
	if a.cluster == nil {
		return nil
	}
	return a.cluster
}

// runCluster runs the node in the cluster until ctx ends (it then releases
// every lease at once). done is closed when it has returned; err is why it
// stopped, other than ctx.
func (a *App) runCluster(ctx context.Context) (done <-chan struct{}, err *error) {
	ch := make(chan struct{})
	var runErr error
	if a.cluster == nil {
		close(ch)
		return ch, &runErr
	}
	if a.cfg.Cluster.Advertise == "" && a.ln != nil {
		// the port bound (http.listen may say port 0)
		hostname, _ := os.Hostname()
		a.cluster.SetAdvertise(defaultAdvertise(hostname, a.ln.Addr().String(), a.cfg.HTTP.TLS.Cert != ""))
	}
	go func() {
		defer close(ch)
		if e := a.cluster.Run(ctx); e != nil && !errors.Is(e, context.Canceled) {
			runErr = fmt.Errorf("cluster: %w", e)
		}
	}()
	return ch, &runErr
}
