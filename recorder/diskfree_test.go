package recorder

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/recorder/archive"
)

// A spool disk that fills up (the store is down, nothing is uploaded) loses
// the oldest waiting video, not the newest: the oldest-first drop watches
// the disk's free space, not only SpoolMaxBytes (here far away). The disk
// is simulated: its free space is a capacity minus the spool's bytes, and a
// file cannot be created on it once it is full.
func TestSpoolDropsOldestWhenDiskLow(t *testing.T) {
	r := newFullDiskRecorder(t, t.TempDir(), Options{})
	var capacity, reserve atomic.Int64
	capacity.Store(1 << 40) // plenty until the first segment is measured
	free := func() int64 { return capacity.Load() - r.spool.bytes.Load() }
	r.spool.diskSpace = func(string) (uint64, uint64, error) {
		return uint64(max(free(), 0)), uint64(capacity.Load()), nil
	}
	r.spool.reserve = func(uint64) uint64 { return uint64(reserve.Load()) }
	r.createFile = fullDiskWhen(func() bool { return free() <= 0 })
	w := &camWriter{r: r, camera: "cam-1", log: r.log, recording: &atomic.Bool{}}
	play := clipPlayer(t, w)

	play(5 * time.Second) // one 4 s segment closed
	seg := r.spool.bytes.Load()
	// a disk with room for the reserve and about two and a half segments
	reserve.Store(4 * seg)
	capacity.Store(seg*4 + seg*5/2)

	play(41 * time.Second) // ten segments of camera time
	w.closeSegment("test")
	got := spoolWaiting(r)
	var st0 Status
	r.spool.status(&st0)
	if st0.Dropped == 0 {
		t.Fatalf("nothing dropped on a disk with room for 2.5 segments: waiting %v", got)
	}
	if len(got) == 0 || len(got) > 3 {
		t.Fatalf("waiting %v, want the newest two or three", got)
	}
	newest := archive.SegmentKey("cam-1", recT0.Add(40*time.Second))
	if got[len(got)-1] != newest {
		t.Fatalf("waiting %v: the newest segment %s is lost", got, newest)
	}
	for i, k := range got {
		if want := archive.SegmentKey("cam-1", recT0.Add(time.Duration(40-4*(len(got)-1-i))*time.Second)); k != want {
			t.Errorf("waiting[%d] = %s, want %s (the newest, back to back)", i, k, want)
		}
	}
	if int(st0.Dropped)+len(got) != 11 {
		t.Errorf("%d dropped + %d waiting, want the 11 segments recorded", st0.Dropped, len(got))
	}
	if st0.SpoolDiskFree < 0 || st0.SpoolDiskFree > capacity.Load() {
		t.Errorf("SpoolDiskFree %d", st0.SpoolDiskFree)
	}
}

// A disk filled at once by something else (no spool write saw it coming):
// the failed write drops the oldest waiting segments, so that recording
// resumes at the retry instead of waiting for the store to come back.
func TestSpoolMakesRoomAfterFailedWrite(t *testing.T) {
	r := newFullDiskRecorder(t, t.TempDir(), Options{})
	const capacity = 1 << 30
	var other atomic.Int64 // bytes of other files on the disk
	free := func() int64 { return capacity - other.Load() - r.spool.bytes.Load() }
	r.spool.diskSpace = func(string) (uint64, uint64, error) { return uint64(max(free(), 0)), capacity, nil }
	r.spool.reserve = func(uint64) uint64 { return 1 << 20 }
	var fill atomic.Bool // fill the disk at the next segment
	r.createFile = fullDiskWhen(func() bool {
		if fill.Swap(false) {
			other.Store(capacity - r.spool.bytes.Load() - (1<<20 - 1))
		}
		return free() <= 1<<20
	})
	w := &camWriter{r: r, camera: "cam-1", log: r.log, recording: &atomic.Bool{}, trouble: &writeTrouble{}}
	play := clipPlayer(t, w)
	play(13 * time.Second) // three segments wait, the fourth is open
	// something else fills the disk just as the next segment opens
	fill.Store(true)
	play(17 * time.Second) // the segment opened at 16 s cannot be written
	if w.recording.Load() {
		t.Fatal("recording reported with the disk full")
	}
	var s0 Status
	r.spool.status(&s0)
	if s0.Dropped == 0 {
		t.Fatal("the failed write dropped nothing")
	}
	w.failedAt = time.Now().Add(-writeRetry) // the retry pause is wall-clock time; the clip is not
	play(21 * time.Second)
	if !w.recording.Load() {
		t.Fatalf("recording did not resume with room made: free %d", free())
	}
	if p, _, lost := w.trouble.get(); p != "" || lost == 0 {
		t.Errorf("trouble after resuming: %q, %d units lost", p, lost)
	}
}
