package recorder

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/testkit"
)

const helperEnv = "VIGIL_RECORDER_HELPER_DIR"

// TestHelperRecorderProcess is not a test: re-executed by TestKill9 with
// helperEnv set, it records a camera paced in real time into the directory and
// prints "unit <PTS ns>" for every video unit handed to the stream, until killed.
func TestHelperRecorderProcess(t *testing.T) {
	dir := os.Getenv(helperEnv)
	if dir == "" {
		t.Skip("helper process for TestKill9")
	}
	src := &recStreams{}
	st := src.add("cam-1")
	rec, err := New(localOptions(t, dir, Options{SegmentDuration: 10 * time.Second}), src)
	if err != nil {
		t.Fatal(err)
	}
	go rec.Run(context.Background())
	fx := loadRecFixture(t)
	c := newRecClip(fx, st.SetTracks(fx.tracks(true)), recT0)
	rec.Set(ingest.Camera{ID: "cam-1", Record: true, Enabled: true})
	for st.Stats().Subscribers == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	out := bufio.NewWriter(os.Stdout)
	for {
		u := c.next()
		if d := time.Until(start.Add(u.PTS)); d > 0 {
			time.Sleep(d) // real-time pace
		}
		st.Write(u)
		if u.Track.Video {
			fmt.Fprintf(out, "unit %d\n", u.PTS)
			out.Flush()
		}
	}
}

// TestKill9 kills a recording process in the middle of a segment; a new
// recorder on the same spool finalizes the cut-off segment and stores it,
// missing at most 2 s.
func TestKill9(t *testing.T) {
	checkLeaks(t)
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperRecorderProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+dir)
	stdout := testkit.StartPiped(t, cmd)
	var last time.Duration
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 || f[0] != "unit" {
			continue
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		last = time.Duration(n)
		if last >= 5500*time.Millisecond { // in the middle of the first 10 s segment
			break
		}
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	cmd.Wait()
	if last < 5500*time.Millisecond {
		t.Fatalf("the helper stopped early at %v", last)
	}

	h := startLocal(t, dir, Options{SegmentDuration: 10 * time.Second})
	testkit.WaitFor(t, 20*time.Second, "the recovered segment", func() bool {
		s := h.rec.Status()
		return s.Uploaded == 1 && s.Waiting == 0
	})
	rows := checkRecStored(t, h.store, h.ix, []string{"cam-1"}, true, "h264")["cam-1"]
	if len(rows) != 1 {
		t.Fatalf("%d segments, want 1", len(rows))
	}
	s := rows[0]
	lost := recT0.Add(last).Sub(s.End)
	t.Logf("written until %v, recovered %v – %v (%d fragments): lost %v", last, s.Start.Sub(recT0), s.End.Sub(recT0), len(s.Fragments), lost)
	if !s.Start.Equal(recT0) || lost > 2*time.Second {
		t.Errorf("recovered %v – %v, written until %v: lost %v", s.Start, s.End, recT0.Add(last), lost)
	}
	h.stop()
}
