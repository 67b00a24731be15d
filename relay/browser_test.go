package relay

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/testkit"
)

// TestBrowserPlaysH264 plays a camera in headless Chromium through the WHEP
// test page. It is skipped when Chromium is not installed, unless
// VIGIL_REQUIRE_BROWSER=1 (CI) makes that a failure.
func TestBrowserPlaysH264(t *testing.T) {
	path := testkit.Tool(t, "chromium", "VIGIL_REQUIRE_BROWSER")
	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		http.ServeFile(w, r, "testdata/whep.html")
	})
	e := startEnv(t, Options{}, page)
	f := e.feedCached(t, "cam1", "cam.h264", ingest.CodecH264, ingest.CodecPCMU, 10)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(allocCtx)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	defer cancelTimeout()

	if err := chromedp.Do(ctx, chromedp.Navigate(e.server.URL+"/")); err != nil {
		t.Fatalf("navigate: %v", err)
	}
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`play("cam1")`, chromedp.EvalAwaitPromise)); err != nil {
		t.Fatalf("play: %v", err)
	}
	if msg, err := chromedp.Run(ctx, chromedp.Evaluate[string](`state.error`)); err != nil || msg != "" {
		t.Fatalf("WHEP POST failed in the browser: %q %v", msg, err)
	}
	eval := func(expr string) float64 {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[float64](expr))
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		return v
	}
	testkit.WaitFor(t, 15*time.Second, "the video to show a picture", func() bool {
		return eval(`document.getElementById("v").videoWidth`) > 0 && eval(`state.frames`) > 0
	})
	t.Logf("first frame painted %.0f ms after play() began; %vx%v",
		eval(`state.firstFrameMs`), eval(`document.getElementById("v").videoWidth`), eval(`document.getElementById("v").videoHeight`))
	if w := eval(`document.getElementById("v").videoWidth`); w != 640 {
		t.Fatalf("videoWidth %v, want 640", w)
	}
	f0 := eval(`state.frames`)
	q0 := eval(`document.getElementById("v").getVideoPlaybackQuality().totalVideoFrames`)
	start := time.Now()
	testkit.WaitFor(t, 10*time.Second, "3 s of playback", func() bool { return time.Since(start) >= 3*time.Second })
	f1 := eval(`state.frames`)
	q1 := eval(`document.getElementById("v").getVideoPlaybackQuality().totalVideoFrames`)
	secs := time.Since(start).Seconds()
	t.Logf("%.0f frames painted in %.1f s (%.1f fps); %v frames decoded", f1-f0, secs, (f1-f0)/secs, q1-q0)
	if (f1-f0)/secs < 15 {
		t.Fatalf("only %.1f frames per second painted, want ~25", (f1-f0)/secs)
	}
	if v := f.stream.Stats().Viewers; v != 1 {
		t.Fatalf("%d viewers counted, want 1", v)
	}
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`pc.close()`)); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 20*time.Second, "the session to end after the browser closed it", func() bool { return e.relay.Sessions() == 0 })
}
