package archive_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/internal/sqlitedb"
	"github.com/vigil-vms/vigil/internal/testkit/testdb"
	"github.com/vigil-vms/vigil/recorder/archive"
)

var t0 = time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC)

// at is t0 plus n minutes.
func at(n int) time.Time { return t0.Add(time.Duration(n) * time.Minute) }

// seg is a row of cam-x's one-minute segment starting at minute n.
func seg(n int) archive.Segment {
	s := at(n)
	return archive.Segment{Camera: "cam-x", Start: s, End: s.Add(time.Minute), Bytes: 1000,
		Key: archive.SegmentKey("cam-x", s), InitSize: 100,
		Fragments: []archive.Fragment{{Offset: 0, Pos: 100, Size: 900, Keyframe: true}}}
}

// minutes returns the start minutes of segs.
func minutes(segs []archive.Segment) []int {
	out := []int{}
	for _, s := range segs {
		out = append(out, int(s.Start.Sub(t0)/time.Minute))
	}
	return out
}

func mustAdd(t *testing.T, ix *archive.Index, ns ...int) {
	t.Helper()
	for _, n := range ns {
		if err := ix.Add(context.Background(), seg(n)); err != nil {
			t.Fatal(err)
		}
	}
}

func segments(t *testing.T, ctx context.Context, ix *archive.Index) []int {
	t.Helper()
	segs, err := ix.Segments(ctx, "cam-x", at(-1000), at(1000), false)
	if err != nil {
		t.Fatal(err)
	}
	return minutes(segs)
}

func ownerSegments(t *testing.T, ix *archive.Index, uid string) []int {
	t.Helper()
	segs, err := ix.OwnerSegments(context.Background(), "cam-x", uid, at(-1000), at(1000))
	if err != nil {
		t.Fatal(err)
	}
	return minutes(segs)
}

func check(t *testing.T, what string, got []int, want ...int) {
	t.Helper()
	if want == nil {
		want = []int{}
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s: minutes %v, want %v", what, got, want)
	}
}

// The segments of a camera id belong to the incarnation (and department)
// that owned the id when they started; the review queries show only the
// current incarnation's, and a re-added row (Reindex) is attributed again
// the same way.
func TestIndexIncarnations(t *testing.T) {
	ctx := context.Background()
	ix, err := archive.OpenIndex(ctx, testdb.OpenDB(t))
	if err != nil {
		t.Fatal(err)
	}
	// rows of an id the index has no owner for show as before incarnations
	mustAdd(t, ix, 0, 1)
	check(t, "before any owner", segments(t, ctx, ix), 0, 1)
	check(t, "before any owner, a user of one department", segments(t, archive.WithDepartments(ctx, []string{"police"}), ix), 0, 1)

	// police's cam-x, registered before incarnations (Since zero), adopts them
	police := archive.Owner{Camera: "cam-x", UID: "police-uid", Department: "police"}
	if _, err := ix.Own(ctx, police, at(2)); err != nil {
		t.Fatal(err)
	}
	if _, err := ix.Own(ctx, police, at(3)); err != nil { // again, at start: no change
		t.Fatal(err)
	}
	mustAdd(t, ix, 4)
	check(t, "police's cam-x", segments(t, ctx, ix), 0, 1, 4)

	// deleted at 10: nothing shows under the id
	if err := ix.Disown(ctx, "cam-x", at(10)); err != nil {
		t.Fatal(err)
	}
	check(t, "deleted cam-x", segments(t, ctx, ix))
	// a stray file between the two incarnations
	mustAdd(t, ix, 15)

	// flood-control's cam-x, created at 20
	flood := archive.Owner{Camera: "cam-x", UID: "flood-uid", Department: "flood-control", Since: at(20)}
	if orphans, err := ix.Own(ctx, flood, at(20)); orphans != 1 || err != nil {
		t.Fatalf("own: %d orphans (%v), want 1", orphans, err)
	}
	if orphans, err := ix.Own(ctx, flood, at(21)); orphans != 0 || err != nil {
		t.Fatalf("own again: %d orphans (%v), want 0 (nothing opened)", orphans, err)
	}
	check(t, "new cam-x before it records", segments(t, ctx, ix))
	// police's last segment is uploaded late; the new one records
	mustAdd(t, ix, 9, 21, 22)
	check(t, "new cam-x", segments(t, ctx, ix), 21, 22)
	check(t, "police's incarnation", ownerSegments(t, ix, "police-uid"), 0, 1, 4, 9)
	check(t, "orphans", ownerSegments(t, ix, ""), 15)
	if _, ok, err := ix.SegmentAt(ctx, "cam-x", at(4).Add(time.Second)); ok || err != nil {
		t.Errorf("SegmentAt in police's footage: %v %v", ok, err)
	}
	if s, ok, err := ix.SegmentAt(ctx, "cam-x", at(21).Add(time.Second)); !ok || err != nil || s.CameraUID != "flood-uid" || s.Department != "flood-control" {
		t.Errorf("SegmentAt in the new cam-x's footage: %+v %v %v", s, ok, err)
	}
	after, err := ix.SegmentsAfter(ctx, "cam-x", at(-1000), at(1000), 100)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "SegmentsAfter", minutes(after), 21, 22)
	old, err := ix.Oldest(ctx, "cam-x", at(1000), 100)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "retention's Oldest (every incarnation)", minutes(old), 0, 1, 4, 9, 15, 21, 22)
	for _, c := range []struct {
		n    int
		want bool
	}{{4, false}, {15, false}, {21, true}} {
		if ok, err := ix.Visible(ctx, "cam-x", at(c.n)); ok != c.want || err != nil {
			t.Errorf("Visible(minute %d) = %v, %v; want %v", c.n, ok, err, c.want)
		}
	}

	// the new cam-x moves to police at 30: what it recorded in
	// flood-control is not police's
	moved := flood
	moved.Department = "police"
	if _, err := ix.Own(ctx, moved, at(30)); err != nil {
		t.Fatal(err)
	}
	mustAdd(t, ix, 29, 31)
	check(t, "all departments", segments(t, ctx, ix), 21, 22, 29, 31)
	check(t, "police users", segments(t, archive.WithDepartments(ctx, []string{"police"}), ix), 31)
	check(t, "flood-control users", segments(t, archive.WithDepartments(ctx, []string{"flood-control"}), ix), 21, 22, 29)
	check(t, "users of both", segments(t, archive.WithDepartments(ctx, []string{"police", "flood-control"}), ix), 21, 22, 29, 31)
	if ok, _ := ix.Visible(archive.WithDepartments(ctx, []string{"police"}), "cam-x", at(29)); ok {
		t.Error("a police user sees the spooled segment recorded in flood-control")
	}

	// rebuilt rows are attributed as before
	for _, n := range []int{0, 1, 4, 9, 15, 21, 22, 29, 31} {
		if err := ix.Delete(ctx, seg(n).Key); err != nil {
			t.Fatal(err)
		}
	}
	mustAdd(t, ix, 0, 1, 4, 9, 15, 21, 22, 29, 31)
	check(t, "rebuilt: current", segments(t, ctx, ix), 21, 22, 29, 31)
	check(t, "rebuilt: police's incarnation", ownerSegments(t, ix, "police-uid"), 0, 1, 4, 9)
	check(t, "rebuilt: orphans", ownerSegments(t, ix, ""), 15)

	if n, err := ix.Orphans(ctx); n != 1 || err != nil {
		t.Errorf("orphans: %d %v, want 1", n, err)
	}
	// the orphan goes to the current incarnation only when asked
	if n, err := ix.AdoptOrphans(ctx); n != 1 || err != nil {
		t.Fatalf("adopted %d orphans (%v), want 1", n, err)
	}
	check(t, "adopted: current", segments(t, ctx, ix), 15, 21, 22, 29, 31)
	check(t, "adopted: police's incarnation", ownerSegments(t, ix, "police-uid"), 0, 1, 4, 9)
	if n, err := ix.AdoptOrphans(ctx); n != 0 || err != nil {
		t.Errorf("adopted again: %d %v", n, err)
	}

	owners, err := ix.Owners(ctx, "cam-x")
	if err != nil || len(owners) != 3 {
		t.Fatalf("owners: %+v %v", owners, err)
	}
	want := []archive.Period{
		{Owner: archive.Owner{Camera: "cam-x", UID: "police-uid", Department: "police"}, Until: at(10)},
		{Owner: archive.Owner{Camera: "cam-x", UID: "flood-uid", Department: "flood-control", Since: at(10)}, Until: at(30)},
		{Owner: archive.Owner{Camera: "cam-x", UID: "flood-uid", Department: "police", Since: at(30)}},
	}
	for i := range want {
		if owners[i] != want[i] {
			t.Errorf("period %d: %+v, want %+v", i, owners[i], want[i])
		}
	}
}

// A camera whose deletion was never told to the index (a crash between
// the registry and the recorder): the next owner ends its period.
func TestIndexOwnerReplacedUntold(t *testing.T) {
	ctx := context.Background()
	ix, err := archive.OpenIndex(ctx, testdb.OpenDB(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ix.Own(ctx, archive.Owner{Camera: "cam-x", UID: "a", Department: "police", Since: at(0)}, at(0)); err != nil {
		t.Fatal(err)
	}
	mustAdd(t, ix, 1)
	if _, err := ix.Own(ctx, archive.Owner{Camera: "cam-x", UID: "b", Department: "police", Since: at(5)}, at(8)); err != nil {
		t.Fatal(err)
	}
	mustAdd(t, ix, 6)
	check(t, "b", segments(t, ctx, ix), 6)
	check(t, "a", ownerSegments(t, ix, "a"), 1)
}

// The rows of an index from before incarnations go to the camera that has
// their id when the server first starts with incarnations.
func TestIndexMigrationAdoptsRows(t *testing.T) {
	ctx := context.Background()
	db := testdb.OpenSQLite(t, "") // a SQLite file of a release before goose
	// version 1 of the recorder's tables, as released
	if err := sqlitedb.Migrate(ctx, db.DB, "recorder", archive.IndexSchemaV1); err != nil {
		t.Fatal(err)
	}
	s := seg(0)
	if _, err := db.Exec(ctx, `INSERT INTO segments(camera, start_ns, end_ns, bytes, key, init_size, fragments)
		VALUES(?, ?, ?, ?, ?, ?, x'')`, s.Camera, s.Start.UnixNano(), s.End.UnixNano(), s.Bytes, s.Key, s.InitSize); err != nil {
		t.Fatal(err)
	}
	ix, err := archive.OpenIndex(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "migrated, no owner yet", segments(t, ctx, ix), 0)
	if _, err := ix.Own(ctx, archive.Owner{Camera: "cam-x", UID: "u", Department: "police"}, at(100)); err != nil {
		t.Fatal(err)
	}
	check(t, "adopted", ownerSegments(t, ix, "u"), 0)
	check(t, "police users", segments(t, archive.WithDepartments(ctx, []string{"police"}), ix), 0)
}
