package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/gb28181/manscdp"
	"github.com/vigil-vms/vigil/gb28181/replay"
	"github.com/vigil-vms/vigil/internal/testkit"
	"github.com/vigil-vms/vigil/internal/testkit/testdb"
	"github.com/vigil-vms/vigil/recorder/archive"
	"github.com/vigil-vms/vigil/recorder/review"
)

// recT0 is the wall-clock start of the recorded fixture.
var recT0 = time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)

// recordCamera encodes seconds of 640x360 25 fps H.264 (a keyframe every
// second) with AAC, cuts it into 2 s fMP4 segments as the recorder stores
// them, stores and indexes them for camera from recT0, and returns a
// player over them.
func recordCamera(t *testing.T, camera string, seconds int) *replay.Player {
	t.Helper()
	testkit.Tool(t, "ffprobe", "VIGIL_REQUIRE_FFMPEG")
	segs := testkit.FFmpegSegments(t, 2,
		"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25", "-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000",
		"-t", strconv.Itoa(seconds), "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "baseline", "-pix_fmt", "yuv420p",
		"-g", "25", "-keyint_min", "25", "-sc_threshold", "0", "-bf", "0", "-b:v", "500k",
		"-c:a", "aac", "-b:a", "32k", "-ac", "1")
	ctx := context.Background()
	st, err := archive.NewLocalStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ix, err := archive.OpenIndex(ctx, testdb.OpenDB(t))
	if err != nil {
		t.Fatal(err)
	}
	at := recT0
	for _, b := range segs {
		sc, err := archive.ScanSegment(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		seg, err := archive.SegmentRow(archive.SegmentKey(camera, at), sc)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Put(ctx, seg.Key, bytes.NewReader(b), int64(len(b)), nil); err != nil {
			t.Fatal(err)
		}
		if err := ix.Add(ctx, seg); err != nil {
			t.Fatal(err)
		}
		at = seg.End
	}
	return replay.New(review.NewReview(st, ix, nil))
}

// psProbe is what ffprobe reads of a PS file's video.
type psProbe struct {
	codec         string
	width, height int
	frames        int
}

func ffprobePS(t *testing.T, file string) psProbe {
	t.Helper()
	bin := testkit.Tool(t, "ffprobe", "VIGIL_REQUIRE_FFMPEG")
	out, err := exec.Command(bin, "-v", "error", "-f", "mpeg", "-count_frames", "-select_streams", "v",
		"-show_entries", "stream=codec_name,width,height,nb_read_frames", "-of", "json", file).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", file, err)
	}
	var p struct {
		Streams []struct {
			CodecName string `json:"codec_name"`
			Width     int    `json:"width"`
			Height    int    `json:"height"`
			Frames    string `json:"nb_read_frames"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &p); err != nil || len(p.Streams) == 0 {
		t.Fatalf("ffprobe %s: %v %s", file, err, out)
	}
	n, _ := strconv.Atoi(p.Streams[0].Frames)
	return psProbe{p.Streams[0].CodecName, p.Streams[0].Width, p.Streams[0].Height, n}
}

// mediaStatusBody is a MediaStatus Notify in SIPp's trace.
var mediaStatusBody = regexp.MustCompile(`(?s)<\?xml[^>]*\?>\s*<Notify>\s*<CmdType>MediaStatus</CmdType>.*?</Notify>`)

// TestUpperPlayback: an upper platform (SIPp) plays a recorded range of a
// shared channel (s=Playback over UDP), pauses and resumes it with
// MANSRTSP INFO, is told MediaStatus 121 at the end and hung up on; then
// downloads the same range at 4× (s=Download); a channel not shared is
// refused 404. The PS received is judged by ffprobe. Over UDP, and over
// TCP with Vigil connecting to the platform's port.
func TestUpperPlayback(t *testing.T) {
	testkit.SkipShort(t, "encodes a recording and plays it to SIPp")
	player := recordCamera(t, "police-1", 10)
	for _, tc := range []struct{ media, proto, setup string }{
		{"udp", "RTP/AVP", "a=recvonly"},
		{"tcp", "TCP/RTP/AVP", "a=setup:passive"},
	} {
		t.Run(tc.media, func(t *testing.T) { testUpperPlayback(t, player, tc.media, tc.proto, tc.setup) })
	}
}

func testUpperPlayback(t *testing.T, player *replay.Player, media, proto, setup string) {
	const from, length = 2 * time.Second, 5 * time.Second
	start := recT0.Add(from)
	tRange := fmt.Sprintf("%d %d", start.Unix(), start.Add(length).Unix())

	play, dl := listenRTP(t, media), listenRTP(t, media)
	port := freePort(t, "udp")
	e := newEnv(t, "127.0.0.1:"+strconv.Itoa(port), "udp", 20*time.Second, func(s *Service) { s.Replay = player })

	bin := testkit.Tool(t, "sipp", "VIGIL_REQUIRE_SIPP")
	sf, _ := filepath.Abs(filepath.Join("testdata", "playback.xml"))
	u := &upper{addr: "127.0.0.1:" + strconv.Itoa(port), dir: t.TempDir(), out: &testkit.SyncBuffer{}}
	u.done = filepath.Join(u.dir, "done")
	paused, resumed := filepath.Join(u.dir, "paused"), filepath.Join(u.dir, "resumed")
	const dlSSRC = "1113000043"
	args := []string{"-sf", sf, "-t", "u1", "-i", "127.0.0.1", "-p", strconv.Itoa(port), "-nostdin",
		"-trace_msg", "-trace_err", "-key", "done", u.done, "-key", "paused", paused, "-key", "resumed", resumed,
		"-key", "upper", testUpper, "-key", "realm", testUpRealm, "-key", "lower", testLocal,
		"-key", "channel", e.shared, "-key", "hidden", e.hidden, "-key", "range", tRange,
		"-key", "emptyrange", fmt.Sprintf("%d %d", recT0.Add(-time.Hour).Unix(), recT0.Add(-time.Hour+length).Unix()),
		"-key", "rtpport", strconv.Itoa(play.port), "-key", "dlport", strconv.Itoa(dl.port),
		"-key", "proto", proto, "-key", "setup", setup, "-key", "ssrc", testSSRC, "-key", "dlssrc", dlSSRC}
	u.cmd = exec.Command(bin, args...)
	u.cmd.Dir = u.dir
	u.cmd.Stdout, u.cmd.Stderr = u.out, u.out
	if err := u.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(u.stop)

	exists := func(f string) bool { _, err := os.Stat(f); return err == nil }
	var atPause, atResume int
	deadline := time.Now().Add(60 * time.Second)
	for !exists(u.done) {
		if time.Now().After(deadline) {
			t.Fatalf("the scenario did not end within 60 s\n%s\n%s", u.out, u.errors())
		}
		if atPause == 0 && exists(paused) {
			atPause = play.count()
		}
		if atResume == 0 && exists(resumed) {
			atResume = play.count()
		}
		time.Sleep(5 * time.Millisecond)
	}
	u.stop()
	if errs := u.errors(); errs != "" {
		t.Errorf("SIPp errors:\n%s", errs)
	}
	if st := e.status(); st.Viewers != 0 || len(e.svc.Views()) != 0 {
		t.Errorf("after both BYEs: %d viewers, views %+v", st.Viewers, e.svc.Views())
	}

	judge := func(name string, s *rtpSink, ssrc string) psProbe {
		s.mu.Lock()
		defer s.mu.Unlock()
		if len(s.pkts) == 0 {
			t.Fatalf("%s: no RTP received", name)
		}
		want, _ := strconv.ParseUint(ssrc, 10, 32)
		for i, p := range s.pkts {
			if p.SSRC != uint32(want) || p.PayloadType != 96 {
				t.Fatalf("%s: packet %d has SSRC %d type %d, want %s and 96", name, i, p.SSRC, p.PayloadType, ssrc)
			}
		}
		file := filepath.Join(t.TempDir(), name+".ps")
		if err := os.WriteFile(file, s.ps.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		pr := ffprobePS(t, file)
		got := time.Duration(pr.frames) * time.Second / 25
		t.Logf("%s: %d RTP packets, %d bytes of PS: %s %dx%d, %d frames (%v of video)", name, len(s.pkts), s.ps.Len(), pr.codec, pr.width, pr.height, pr.frames, got)
		if pr.codec != "h264" || pr.width != 640 || pr.height != 360 {
			t.Errorf("%s: %s %dx%d, want h264 640x360", name, pr.codec, pr.width, pr.height)
		}
		// from the keyframe at or before the start (a GOP is 1 s) to the end
		if frame := time.Second / 25; got < length-frame || got > length+time.Second+frame {
			t.Errorf("%s: %v of video, want %v and at most a GOP (1 s) more", name, got, length)
		}
		return pr
	}
	judge("playback", play, testSSRC)
	judge("download", dl, dlSSRC)
	playTimes, dlTimes := play.arrived, dl.arrived // the senders are done

	// the pause: nothing was sent for most of the second between PAUSE and PLAY
	if atPause == 0 || atResume == 0 {
		t.Fatalf("PAUSE or PLAY not answered 200 (packets at the answers: %d, %d)", atPause, atResume)
	}
	var longest time.Duration
	for i := 1; i < len(playTimes); i++ {
		longest = max(longest, playTimes[i].Sub(playTimes[i-1]))
	}
	t.Logf("playback: %d packets before PAUSE was answered, %d before PLAY; longest silence %v; sent over %v",
		atPause, atResume, longest, playTimes[len(playTimes)-1].Sub(playTimes[0]))
	if atResume-atPause > 60 || longest < 700*time.Millisecond {
		t.Errorf("the PAUSE did not stop the playback: %d packets while paused, longest silence %v", atResume-atPause, longest)
	}
	if d := playTimes[len(playTimes)-1].Sub(playTimes[0]); d < length-time.Second {
		t.Errorf("the playback took %v, not real time (%v)", d, length)
	}
	// the download: faster than real time (asked 4×)
	dlTook := dlTimes[len(dlTimes)-1].Sub(dlTimes[0])
	t.Logf("download of %v took %v (%.1f× real time)", length, dlTook, float64(length)/float64(dlTook))
	if dlTook > length/2 {
		t.Errorf("the download took %v, not faster than real time (%v at 4×)", dlTook, length)
	}

	// the INFO with a method MANSRTSP does not have: 400 with the cause
	if bad := regexp.MustCompile(`SIP/2.0 400 [^\r\n]*`).Find(u.messages(t)); !bytes.Contains(bad, []byte("JUMP")) {
		t.Errorf("the bad INFO was answered %q, want 400 naming the method", bad)
	}

	// MediaStatus 121 for the playback and the download
	var notes []string
	for _, b := range mediaStatusBody.FindAll(u.messages(t), -1) {
		m, err := manscdp.Decode(bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n")))
		if err != nil {
			t.Fatalf("MediaStatus body: %v\n%s", err, b)
		}
		n := m.(*manscdp.Notify)
		notes = append(notes, n.DeviceID+" "+n.NotifyType)
	}
	if want := []string{e.shared + " 121", e.shared + " 121"}; fmt.Sprint(notes) != fmt.Sprint(want) {
		t.Errorf("MediaStatus notifies %v, want %v", notes, want)
	}

	// the audit: playback and export by the upper platform, the hidden one
	// denied, the one where nothing was recorded failed
	count := map[string]int{}
	for _, a := range e.audits() {
		if a.User != testUpper {
			t.Errorf("audit row %+v", a)
		}
		if a.Result == "ok" && (!a.Start.Equal(start) || !a.End.Equal(start.Add(length))) {
			t.Errorf("audit row %+v: range is not the asked one", a)
		}
		count[a.Action+" "+a.Camera+" "+a.Result]++
	}
	if want := map[string]int{"playback police-1 ok": 1, "export police-1 ok": 1, "playback  denied": 1, "playback police-1 failed": 1}; fmt.Sprint(count) != fmt.Sprint(want) {
		t.Errorf("audit: %v, want %v: %+v", count, want, e.audits())
	}
}
