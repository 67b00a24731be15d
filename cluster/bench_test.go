package cluster

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/internal/procstat"
	"github.com/vigil-vms/vigil/internal/testkit"
	"github.com/vigil-vms/vigil/internal/testkit/pgtest"
)

// churnTarget is a fakeTarget whose every status changes at every call
// (bitrate and frame rate move every second on real cameras): the worst
// case of the status sharing.
type churnTarget struct {
	*fakeTarget
	n atomic.Int64
}

func (c *churnTarget) Statuses() map[string][]byte {
	out := c.fakeTarget.Statuses()
	k := c.n.Add(1)
	for cam := range out {
		out[cam] = fmt.Appendf(nil, `{"id":%q,"state":"online","recording":true,"video":{"codec":"H264","width":1920,"height":1080,"fps":25,"bitrateKbps":%d}}`, cam, 4000+k%50)
	}
	return out
}

// BenchmarkRuntime200 measures the whole cluster runtime of three
// in-process nodes on one PostgreSQL with 200 cameras and the default
// leaseTTL: leases, notifications, the view refreshed every second and
// every camera's status shared every second (each changes at every
// pass). It reports the CPU of the nodes and of PostgreSQL's backends per
// second and per camera, and the hand-over of a stopping node's cameras.
// It runs once whatever b.N:
//
//	go test -run '^$' -bench Runtime200 -benchtime 1x ./cluster
func BenchmarkRuntime200(b *testing.B) {
	const cameras = 200
	ctx := context.Background()
	u := pgtest.URL(b)
	var ns []*node
	for _, name := range []string{"node-a", "node-b", "node-c"} {
		db := openDB(b, u)
		c, err := Open(ctx, db, Options{Node: name, Log: testkit.Log(b).With("node", name)})
		if err != nil {
			b.Fatal(err)
		}
		ft := &fakeTarget{name: name, running: map[string]bool{}, lostAt: map[string]time.Time{}}
		c.SetTarget(&churnTarget{fakeTarget: ft})
		n := &node{Cluster: c, db: db, t: ft}
		n.stop = testkit.Run(b, c.Run)
		ns = append(ns, n)
	}
	if err := ns[0].PutAll(ctx, cameras200()); err != nil {
		b.Fatal(err)
	}
	testkit.WaitFor(b, 60*time.Second, "200 cameras spread", func() bool { return evenly(b, cameras, ns...) })
	testkit.WaitFor(b, 30*time.Second, "every status shared", func() bool {
		return len(ns[0].SharedStatuses()) == cameras-len(ns[0].t.cams())
	})

	backends := func() []int {
		rows, err := ns[0].db.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE datname = current_database()`)
		if err != nil {
			b.Fatal(err)
		}
		defer rows.Close()
		var pids []int
		for rows.Next() {
			var pid int
			rows.Scan(&pid)
			pids = append(pids, pid)
		}
		return pids
	}()
	pgCPU := func() time.Duration {
		var sum time.Duration
		for _, p := range backends {
			if d, err := procstat.CPU(strconv.Itoa(p)); err == nil {
				sum += d
			}
		}
		return sum
	}
	cpu0, _ := procstat.CPU("self")
	pg0 := pgCPU()
	const window = 10 * time.Second
	time.Sleep(window) // measuring a rate over a fixed window: the wait is the measurement
	cpu1, _ := procstat.CPU("self")
	pg1 := pgCPU()
	sec := window.Seconds()
	nodesMS := float64((cpu1 - cpu0).Milliseconds()) / sec
	pgMS := float64((pg1 - pg0).Milliseconds()) / sec
	b.ReportMetric(nodesMS, "nodes-cpu-ms/s")
	b.ReportMetric(pgMS, "pg-cpu-ms/s")
	b.ReportMetric((nodesMS+pgMS)*1000/cameras, "cpu-µs/camera/s")
	b.Logf("steady, 3 nodes, 200 cameras, every status changing every second: nodes' CPU %.1f ms/s, PostgreSQL backends' %.1f ms/s (%d backends): %.0f µs of CPU per camera per second",
		nodesMS, pgMS, len(backends), (nodesMS+pgMS)*1000/cameras)

	// a clean stop (SIGTERM): its cameras run elsewhere, statuses included
	held := ns[2].t.cams()
	start := time.Now()
	ns[2].stop()
	testkit.WaitFor(b, 30*time.Second, "a and b to carry 200 cameras", func() bool { return evenly(b, cameras, ns[0], ns[1]) })
	handover := time.Since(start)
	b.ReportMetric(handover.Seconds(), "handover-s")
	b.Logf("hand-over of %d cameras on a clean stop: %v", len(held), handover.Round(time.Millisecond))
}

func cameras200() []string {
	out := make([]string, 200)
	for i := range out {
		out[i] = fmt.Sprintf("cam-%03d", i)
	}
	return out
}
