package media

import (
	"bytes"
	"context"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/gb28181/ps"
	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/testkit"
	"github.com/vigil-vms/vigil/internal/testkit/testdb"
	"github.com/vigil-vms/vigil/recorder"
	"github.com/vigil-vms/vigil/recorder/archive"
)

// psDevice is an ingest.Source over a media.Server, as the GB/T 28181
// gateway is, for one camera whose device sends a PS file over UDP in real
// time once invited.
type psDevice struct {
	t     *testing.T
	srv   *testServer
	ssrc  uint32
	pkts  [][]byte
	dur   time.Duration
	recvd chan *Receiver // the receiver of each Play
}

func sinkCodec(t ps.StreamType) string {
	switch t {
	case ps.TypeH264:
		return ingest.CodecH264
	case ps.TypeH265:
		return ingest.CodecH265
	case ps.TypeAAC:
		return ingest.CodecAAC
	case ps.TypeG711A:
		return ingest.CodecPCMA
	case ps.TypeG711U:
		return ingest.CodecPCMU
	}
	return t.String()
}

// writeUnit gives a demuxed unit to the Sink.
func writeUnit(sink *ingest.Sink, u *ps.Unit) error {
	if u.Type.IsVideo() {
		return sink.WriteVideo(sinkCodec(u.Type), u.PTS, u.Payload, u.Keyframe)
	}
	return sink.WriteAudio(sinkCodec(u.Type), u.PTS, u.Payload)
}

func (d *psDevice) Play(ctx context.Context, cam ingest.Camera, kind ingest.StreamKind, sink *ingest.Sink) error {
	r, err := d.srv.Expect(d.ssrc, "127.0.0.1", TransportUDP)
	if err != nil {
		return err
	}
	defer r.Close()
	var werr error
	r.OnUnit = func(u *ps.Unit) {
		if werr == nil {
			werr = writeUnit(sink, u)
		}
	}
	r.Started()
	d.recvd <- r
	// The device, invited, sends in real time.
	c, err := net.Dial("udp", d.srv.udp)
	if err != nil {
		return err
	}
	defer c.Close()
	start := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for i, p := range d.pkts {
		timer.Reset(time.Until(start.Add(d.dur * time.Duration(i) / time.Duration(len(d.pkts)))))
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		if _, err := c.Write(p); err != nil {
			return err
		}
	}
	<-ctx.Done()
	return nil
}

// TestRecordIndependentPS: PS from GStreamer's mpegpsmux (H.264 + AAC) and
// from ffmpeg's vob muxer (H.265) goes media → ingest.Sink → recorder, and
// the stored recording parses with ffprobe with the picture size, frame
// count and duration of the file.
func TestRecordIndependentPS(t *testing.T) {
	testkit.SkipShort(t, "real-time recording")
	testkit.Tool(t, "ffprobe", "VIGIL_REQUIRE_FFMPEG")
	testkit.CheckLeaks(t)
	for _, p := range []producer{producers[0], producers[2]} {
		t.Run(p.name, func(t *testing.T) {
			file, b := p.produce(t)
			srv := startServer(t, &Server{})
			const dur = extFrames * time.Second / 25
			dev := &psDevice{t: t, srv: srv, ssrc: 1234567890, pkts: rtpPackets(t, b, 1234567890, 0), dur: dur, recvd: make(chan *Receiver, 4)}

			fleet := ingest.NewFleet(ingest.FleetOptions{Log: testkit.Log(t), Sources: map[string]ingest.Source{ingest.SourceGB28181: dev}})
			testkit.Run(t, fleet.Run)
			dir := t.TempDir()
			store, err := archive.NewLocalStore(filepath.Join(dir, "store"))
			if err != nil {
				t.Fatal(err)
			}
			ix, err := archive.OpenIndex(context.Background(), testdb.OpenDB(t))
			if err != nil {
				t.Fatal(err)
			}
			rec, err := recorder.New(recorder.Options{Store: store, Index: ix, SpoolDir: filepath.Join(dir, "spool"), Log: testkit.Log(t)}, fleet)
			if err != nil {
				t.Fatal(err)
			}
			stopRec := testkit.Run(t, rec.Run)
			cam := ingest.Camera{ID: "gb-34020000001310000001", Name: "river gate", Enabled: true, Record: true,
				Source: ingest.SourceGB28181, GB28181: &ingest.GBChannel{Device: "34020000001320000001", Channel: "34020000001310000001"}}
			fleet.Set(cam)
			rec.Set(cam)

			var r *Receiver
			select {
			case r = <-dev.recvd:
			case <-time.After(20 * time.Second):
				t.Fatal("the recorder's demand did not start the stream")
			}
			n := uint64(len(dev.pkts))
			testkit.WaitFor(t, dur+20*time.Second, "every packet received", func() bool { return r.Stats().Packets >= n })
			stopRec() // closes the segment and stores it

			segs, err := ix.Segments(context.Background(), cam.ID, time.Unix(0, 0), time.Unix(1<<32, 0), false)
			if err != nil || len(segs) != 1 {
				t.Fatalf("%d segments (%v)", len(segs), err)
			}
			rc, err := store.Get(context.Background(), segs[0].Key, 0, -1)
			if err != nil {
				t.Fatal(err)
			}
			var mp4 bytes.Buffer
			_, err = io.Copy(&mp4, rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			out := testkit.TempFile(t, "rec.mp4", mp4.Bytes())
			var got struct {
				Streams []probeStream
				Format  struct {
					Duration string `json:"duration"`
				}
			}
			testkit.FFprobeJSON(t, &got, "-count_frames", "-show_entries", "stream=index,codec_type,codec_name,width,height,nb_read_frames,start_time,duration:format=duration", out)
			var video, audio *probeStream
			for i := range got.Streams {
				switch got.Streams[i].CodecType {
				case "video":
					video = &got.Streams[i]
				case "audio":
					audio = &got.Streams[i]
				}
			}
			if video == nil || video.CodecName != codecName(p.video) || video.Width != p.w || video.Height != p.h || video.Frames != strconv.Itoa(extFrames) {
				t.Errorf("ffprobe reads the recording's video as %+v, want %s %dx%d, %d frames", video, codecName(p.video), p.w, p.h, extFrames)
			}
			vd, _ := strconv.ParseFloat(video.Duration, 64)
			if want := dur.Seconds(); vd < want-0.05 || vd > want+0.05 {
				t.Errorf("the recording's video lasts %.3f s, want %.3f s", vd, want)
			}
			if p.audio != 0 {
				// Audio before the first keyframe is not recorded (ingest starts
				// streams at a keyframe): at most one AAC frame here.
				n := audioPackets(t, file)
				if audio == nil || audio.CodecName != codecName(p.audio) || (audio.Frames != strconv.Itoa(n) && audio.Frames != strconv.Itoa(n-1)) {
					t.Errorf("ffprobe reads the recording's audio as %+v, want %s with %d frames", audio, codecName(p.audio), n)
				}
			}
			if d, _ := strconv.ParseFloat(got.Format.Duration, 64); d < vd || d > vd+0.2 {
				t.Errorf("recording lasts %.3f s, its video %.3f s", d, vd)
			}
			if idx := segs[0].End.Sub(segs[0].Start); (idx - dur).Abs() > 100*time.Millisecond {
				t.Errorf("index says the segment lasts %v, want %v", idx, dur)
			}
			t.Logf("recorded %s: %d bytes, %s s, streams %+v", segs[0].Key, len(mp4.Bytes()), got.Format.Duration, got.Streams)
		})
	}
}

// audioPackets counts the audio packets ffprobe reads in a PS file.
func audioPackets(t *testing.T, file string) int {
	var probe struct {
		Packets []struct {
			CodecType string `json:"codec_type"`
		}
	}
	testkit.FFprobeJSON(t, &probe, "-f", "mpeg", "-select_streams", "a", "-show_entries", "packet=codec_type", file)
	return len(probe.Packets)
}
