package archive_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/internal/sqldb"
	"github.com/vigil-vms/vigil/internal/sqlitedb"
	"github.com/vigil-vms/vigil/internal/testkit/testdb"
	"github.com/vigil-vms/vigil/recorder/archive"
)

var errFenced = errors.New("fenced: the camera's lease is another node's")

// The fence is called in the transaction that writes a camera's rows,
// once per camera, before it commits; its error leaves no row and comes
// back wrapped.
func TestIndexFence(t *testing.T) {
	ctx := context.Background()
	ix, err := archive.OpenIndex(ctx, testdb.OpenDB(t))
	if err != nil {
		t.Fatal(err)
	}
	other := seg(1)
	other.Camera, other.Key = "cam-y", archive.SegmentKey("cam-y", other.Start)

	var calls []string
	refuse := ""
	ix.SetFence(func(ctx context.Context, tx *sqldb.Tx, camera string) error {
		calls = append(calls, camera)
		// the rows are written (in this transaction) when the fence is asked
		var n int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM segments WHERE camera = ?`, camera).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			t.Errorf("fence of %s called before its rows were written", camera)
		}
		if camera == refuse {
			return errFenced
		}
		return nil
	})

	// one transaction of two cameras: a fence per camera, and the refusal
	// of the second rolls back the first's row too
	refuse = "cam-y"
	err = ix.Add(ctx, seg(0), other, seg(2))
	if !errors.Is(err, errFenced) {
		t.Fatalf("Add = %v, want the fence's error wrapped", err)
	}
	if !slices.Equal(calls, []string{"cam-x", "cam-y"}) {
		t.Fatalf("fence called for %v, want cam-x, cam-y once each", calls)
	}
	for _, cam := range []string{"cam-x", "cam-y"} {
		if n, err := ix.CameraBytes(ctx, cam); err != nil || n != 0 {
			t.Fatalf("%s after a refused Add: %d bytes, %v; want no row", cam, n, err)
		}
	}

	// a replaced row (same key) is fenced too: refused, the old row stays
	refuse = ""
	if err := ix.Add(ctx, seg(0)); err != nil {
		t.Fatal(err)
	}
	refuse = "cam-x"
	changed := seg(0)
	changed.Bytes = 5
	if err := ix.Add(ctx, changed); !errors.Is(err, errFenced) {
		t.Fatalf("replacing Add = %v, want the fence's error", err)
	}
	if n, _ := ix.CameraBytes(ctx, "cam-x"); n != 1000 {
		t.Fatalf("after a refused replacement: %d bytes, want the old row's 1000", n)
	}

	// no fence: written
	ix.SetFence(nil)
	calls = nil
	if err := ix.Add(ctx, changed, other); err != nil {
		t.Fatal(err)
	}
	if len(calls) != 0 {
		t.Fatalf("a removed fence was called: %v", calls)
	}
	if n, _ := ix.CameraBytes(ctx, "cam-x"); n != 5 {
		t.Fatalf("without a fence: %d bytes, want 5", n)
	}
}

// Camera ids sort bytewise on both engines, and periods that start at the
// same time are listed in the order they were opened.
func TestIndexOrder(t *testing.T) {
	ctx := context.Background()
	ix, err := archive.OpenIndex(ctx, testdb.OpenDB(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, cam := range []string{"b", "a", "B", "a-2", "a_1"} {
		s := seg(0)
		s.Camera, s.Key = cam, archive.SegmentKey(cam, s.Start)
		if err := ix.Add(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	cams, err := ix.Cameras(ctx)
	if want := []string{"B", "a", "a-2", "a_1", "b"}; err != nil || !slices.Equal(cams, want) {
		t.Fatalf("Cameras = %v, %v; want %v", cams, err, want)
	}

	// owned, deleted at once (an empty period), owned again by another
	// incarnation: both periods start at minute 1
	if _, err := ix.Own(ctx, archive.Owner{Camera: "cam-x", UID: "one", Department: "d", Since: at(1)}, at(1)); err != nil {
		t.Fatal(err)
	}
	if err := ix.Disown(ctx, "cam-x", at(0)); err != nil { // before it began: ends where it began
		t.Fatal(err)
	}
	if _, err := ix.Own(ctx, archive.Owner{Camera: "cam-x", UID: "two", Department: "d", Since: at(1)}, at(1)); err != nil {
		t.Fatal(err)
	}
	owners, err := ix.Owners(ctx, "cam-x")
	if err != nil || len(owners) != 2 {
		t.Fatalf("Owners = %+v, %v", owners, err)
	}
	if owners[0].UID != "one" || !owners[0].Until.Equal(at(1)) || owners[1].UID != "two" || !owners[1].Since.Equal(at(1)) || !owners[1].Until.IsZero() {
		t.Fatalf("Owners = %+v, want one [1, 1) then two from 1", owners)
	}
}

// A SQLite index at version 2 of sqlitedb.Migrate (before goose) is adopted
// at that version, and goose's step 3 gives camera_periods ids in the order
// of its rowids.
func TestIndexLegacyV2Adopted(t *testing.T) {
	ctx := context.Background()
	db := testdb.OpenSQLite(t, "")
	if err := sqlitedb.Migrate(ctx, db.DB, "recorder", archive.IndexSchemaV2); err != nil {
		t.Fatal(err)
	}
	// two periods from the same minute: the first ended at once
	if _, err := db.Exec(ctx, `INSERT INTO camera_periods(camera, uid, department, since_ns, until_ns) VALUES
		('cam-x', 'z-first', 'd', ?1, ?1), ('cam-x', 'a-second', 'd', ?1, NULL)`, at(0).UnixNano()); err != nil {
		t.Fatal(err)
	}
	s := seg(3)
	if _, err := db.Exec(ctx, `INSERT INTO segments(camera, start_ns, end_ns, bytes, key, init_size, fragments, camera_uid, department)
		VALUES(?, ?, ?, ?, ?, ?, x'', 'a-second', 'd')`, s.Camera, s.Start.UnixNano(), s.End.UnixNano(), s.Bytes, s.Key, s.InitSize); err != nil {
		t.Fatal(err)
	}
	ix, err := archive.OpenIndex(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	owners, err := ix.Owners(ctx, "cam-x")
	if err != nil || len(owners) != 2 || owners[0].UID != "z-first" || owners[1].UID != "a-second" {
		t.Fatalf("Owners after the migration = %+v, %v", owners, err)
	}
	check(t, "current incarnation's rows", segments(t, ctx, ix), 3)
	var version int64
	if err := db.QueryRow(ctx, `SELECT MAX(version_id) FROM goose_recorder`).Scan(&version); err != nil || version != 3 {
		t.Fatalf("goose version %d, %v; want 3", version, err)
	}
	// opened again: nothing to do
	if _, err := archive.OpenIndex(ctx, db); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkIndexAdd is the cost of indexing one uploaded segment (a row of
// 60 fragments, attributed to its period, fenced) on the engine
// VIGIL_TEST_DATABASE selects.
func BenchmarkIndexAdd(b *testing.B) {
	ctx := context.Background()
	ix, err := archive.OpenIndex(ctx, testdb.OpenDB(b))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := ix.Own(ctx, archive.Owner{Camera: "cam-x", UID: "u", Department: "d"}, at(0)); err != nil {
		b.Fatal(err)
	}
	ix.SetFence(func(ctx context.Context, tx *sqldb.Tx, camera string) error {
		var one int
		return tx.QueryRow(ctx, `SELECT 1`).Scan(&one) // a round trip, as a lease check makes
	})
	s := seg(0)
	s.Fragments = nil
	for i := range 60 {
		s.Fragments = append(s.Fragments, archive.Fragment{Offset: time.Duration(i) * time.Second, Pos: int64(100 + i*900), Size: 900, Keyframe: true})
	}
	b.ResetTimer()
	for i := range b.N {
		s.Start = at(i)
		s.End, s.Key = s.Start.Add(time.Minute), archive.SegmentKey("cam-x", s.Start)
		if err := ix.Add(ctx, s); err != nil {
			b.Fatal(err)
		}
	}
}
