package lease

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/internal/procstat"
	"github.com/vigil-vms/vigil/internal/testkit"
	"github.com/vigil-vms/vigil/internal/testkit/pgtest"
)

// BenchmarkCluster200 measures the lease machinery of three in-process
// nodes on one PostgreSQL with 200 cameras, at leaseTTL 3 s and at the
// default 10 s: its steady
// cost (database round trips, lease rows renewed, notifications, CPU of the
// nodes and of PostgreSQL's backends) per node and per camera, the time a
// dead node's cameras take to move, and the hand-over on a clean stop. It
// runs once whatever b.N (the figures are rates and durations):
//
//	go test -run '^$' -bench Cluster200 -benchtime 1x ./cluster/lease
func BenchmarkCluster200(b *testing.B) {
	for _, ttl := range []time.Duration{3 * time.Second, DefaultTTL} {
		b.Run("ttl="+ttl.String(), func(b *testing.B) { cluster200(b, ttl) })
	}
}

func cluster200(b *testing.B, ttl time.Duration) {
	const cameras = 200
	ctx := context.Background()
	u := pgtest.URL(b)
	l := open(b, u, ttl)
	putCameras(b, l, 0, cameras)
	start := time.Now()
	ms := []*member{startMember(b, u, "node-a", ttl), startMember(b, u, "node-b", ttl), startMember(b, u, "node-c", ttl)}
	testkit.WaitFor(b, 60*time.Second, "200 cameras spread", func() bool {
		counts, total := spread(b, ms...)
		return even(counts, total, cameras)
	})
	b.Logf("cold start: 200 leases spread over 3 nodes in %v", time.Since(start).Round(time.Millisecond))

	// steady state: three TTLs of renewals and nothing else
	backends := backendPIDs(b, l)
	before := make([]Stats, len(ms))
	for i, m := range ms {
		before[i] = m.Stats()
	}
	cpu0, _ := procstat.CPU("self")
	pg0 := cpuOf(backends)
	window := 3 * ttl
	time.Sleep(window) // measuring a rate over a fixed window: the wait is the measurement
	cpu1, _ := procstat.CPU("self")
	pg1 := cpuOf(backends)
	var trips, renewed, notes float64
	for i, m := range ms {
		s := m.Stats()
		trips += float64(s.RoundTrips - before[i].RoundTrips)
		renewed += float64(s.Renewed - before[i].Renewed)
		notes += float64(s.Notifications - before[i].Notifications)
	}
	sec := window.Seconds()
	perNode := float64(len(ms))
	b.ReportMetric(trips/sec/perNode, "roundtrips/node/s")
	b.ReportMetric(renewed/sec/cameras, "renewals/camera/s")
	b.ReportMetric(notes/sec/perNode*60, "notifications/node/min")
	// /proc counts CPU in 10 ms ticks: over the window, a rough figure
	b.ReportMetric(float64((cpu1-cpu0).Milliseconds())/sec, "nodes-cpu-ms/s")
	b.ReportMetric(float64((pg1-pg0).Milliseconds())/sec, "pg-cpu-ms/s")
	b.Logf("steady, %v window, TTL %v: %.1f round trips/s per node, %.3f renewals/s per camera, %.1f notifications/min per node, nodes' CPU %v, PostgreSQL backends' CPU %v (%d backends)",
		window, ttl, trips/sec/perNode, renewed/sec/cameras, notes/sec/perNode*60, cpu1-cpu0, pg1-pg0, len(backends))

	// a node dies (stops renewing): its ~67 cameras move to the other two
	ms[2].freeze()
	start = time.Now()
	// its last renewal was sent TTL·4/5 before heldUntil
	lastRenewal := time.Unix(0, ms[2].heldUntil.Load()).Add(-(ttl - ttl/5))
	testkit.WaitFor(b, ttl+30*time.Second, "a and b to carry 200 cameras", func() bool {
		counts, total := spread(b, ms[0], ms[1])
		return even(counts, total, cameras)
	})
	takeover := time.Since(start)
	sinceRenewal := time.Since(lastRenewal)
	b.ReportMetric(sinceRenewal.Seconds(), "takeover-s")
	b.Logf("take-over of a dead node's %d cameras (TTL %v): %v after its last renewal, %v after it stopped",
		len(ms[2].writers()), ttl, sinceRenewal.Round(time.Millisecond), takeover.Round(time.Millisecond))
	ms[2].thaw()
	// (until c's first round after the pause, its stale writers overlap the
	// new owners' in the test's bookkeeping; Check fences them meanwhile)
	testkit.WaitFor(b, 60*time.Second, "c back in", func() bool {
		counts, total, dup := tally(ms...)
		return dup == "" && even(counts, total, cameras)
	})

	// a clean stop: the leases are released and taken at once
	start = time.Now()
	ms[1].stop()
	testkit.WaitFor(b, 30*time.Second, "a and c to carry 200 cameras", func() bool {
		counts, total := spread(b, ms[0], ms[2])
		return even(counts, total, cameras)
	})
	handover := time.Since(start)
	b.ReportMetric(handover.Seconds(), "handover-s")
	b.Logf("hand-over on a clean stop: %v", handover.Round(time.Millisecond))

	// the cost of one fencing check, as a writer pays it before each upload
	// and index write
	h, err := l.Holders(ctx)
	if err != nil {
		b.Fatal(err)
	}
	const checks = 500
	t0 := time.Now()
	for i := range checks {
		_ = l.Check(ctx, h[i%len(h)].Camera, h[i%len(h)].Epoch)
	}
	b.ReportMetric(float64(time.Since(t0).Microseconds())/checks, "check-µs")
}

// backendPIDs lists the PostgreSQL backends serving the test's database, when
// the server runs on this machine (pgtest's own).
func backendPIDs(b *testing.B, l *Leases) []int {
	rows, err := l.db.Query(context.Background(), `SELECT pid FROM pg_stat_activity WHERE datname = current_database()`)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	var pids []int
	for rows.Next() {
		var pid int
		if err := rows.Scan(&pid); err != nil {
			b.Fatal(err)
		}
		pids = append(pids, pid)
	}
	return pids
}

func cpuOf(pids []int) time.Duration {
	var sum time.Duration
	for _, p := range pids {
		if d, err := procstat.CPU(strconv.Itoa(p)); err == nil {
			sum += d
		}
	}
	return sum
}
