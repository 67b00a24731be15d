package ui

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/camsim"
	"github.com/vigil-vms/vigil/dispatch"
	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/testkit"
	"github.com/vigil-vms/vigil/internal/testkit/simcam"
)

// TestLiveApply adds a simulated camera through the API to a running
// ingest and sees it online without a restart; deleting it through the API
// closes its viewers' subscriptions.
func TestLiveApply(t *testing.T) {
	testkit.SkipShort(t, "pulls a simulated RTSP camera")
	testkit.CheckLeaks(t) // first, so it runs after every other cleanup (the database's too)
	sim := simcam.Start(t, camsim.Options{Count: 1, Codec: camsim.CodecH264})

	f := newFixture(t, Options{})
	testkit.Run(t, f.fleet.Run)

	body := `{"id":"sim-1","name":"Simulated","department":"police","mainUrl":"` + sim.URL(1, false) + `","transport":"tcp"}`
	if rec := f.do(req{method: "POST", path: "/api/v1/cameras", ctype: "application/json", body: body, who: pAdmin}); rec.Code != cr {
		t.Fatalf("create: %d %s", rec.Code, rec.Body)
	}
	var st dispatch.Status
	deadline := time.Now().Add(20 * time.Second)
	for {
		rec := f.do(req{method: "GET", path: "/api/v1/cameras/sim-1/status", who: pViewer})
		if rec.Code != http.StatusOK {
			t.Fatalf("status: %d %s", rec.Code, rec.Body)
		}
		st = decode[dispatch.Status](t, rec.Body.Bytes())
		if st.State == ingest.StateOnline && st.Video != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("camera not online: %+v", st)
		}
		time.Sleep(50 * time.Millisecond) // polling an outside process, with a deadline
	}
	if st.ID != "sim-1" || st.Video.Codec != ingest.CodecH264 || !st.Recording {
		t.Fatalf("status %+v", st)
	}

	// A viewer watches the stream; deleting the camera ends the subscription.
	stream := f.fleet.Stream("sim-1", ingest.Main)
	if stream == nil {
		t.Fatal("no stream")
	}
	sub := stream.Subscribe(ingest.SubscribeOptions{Kind: ingest.Viewer, FromGOP: true})
	defer sub.Close()
	nctx, ncancel := context.WithTimeout(context.Background(), 10*time.Second)
	if _, _, err := sub.Next(nctx); err != nil {
		t.Fatalf("first unit: %v", err)
	}
	ncancel()
	if rec := f.do(req{method: "DELETE", path: "/api/v1/cameras/sim-1", who: pAdmin}); rec.Code != nc {
		t.Fatalf("delete: %d %s", rec.Code, rec.Body)
	}
	nctx, ncancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer ncancel()
	if err := sub.Drain(nctx); !errors.Is(err, ingest.ErrStreamClosed) {
		t.Fatalf("after delete: %v, want ErrStreamClosed", err)
	}
	if _, ok := f.fleet.Status("sim-1"); ok {
		t.Fatal("the ingest still knows the camera")
	}
	if f.rec.Recording("sim-1") {
		t.Fatal("the recorder still records the camera")
	}
}
