package gateway

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/vigil-vms/vigil/gb28181/media"
	"github.com/vigil-vms/vigil/gb28181/ps"
	"github.com/vigil-vms/vigil/gb28181/sip"
	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/apierr"
)

func TestOrder(t *testing.T) {
	for remembered, want := range map[string]string{
		"":            "udp,tcp-passive,tcp-active",
		"udp":         "udp,tcp-passive,tcp-active",
		"tcp-passive": "tcp-passive,udp,tcp-active",
		"tcp-active":  "tcp-active,udp,tcp-passive",
		"bogus":       "udp,tcp-passive,tcp-active",
	} {
		if got := strings.Join(order(remembered), ","); got != want {
			t.Errorf("order(%q) = %s, want %s", remembered, got, want)
		}
	}
}

func TestSSRC(t *testing.T) {
	g := &Gateway{Realm: "4401130000"}
	seen := map[uint32]bool{}
	var releases []func()
	for i := range 3 {
		text, n, release, err := g.allocSSRC()
		if err != nil {
			t.Fatal(err)
		}
		// 0 (live), digits 4–8 of the realm, a 4-digit serial
		if want := fmt.Sprintf("0%s%04d", "11300", i+1); text != want || fmt.Sprintf("%010d", n) != text {
			t.Fatalf("SSRC %q (%d), want %s", text, n, want)
		}
		if seen[n] {
			t.Fatalf("SSRC %d given twice", n)
		}
		seen[n] = true
		releases = append(releases, release)
	}
	// the serial wraps around, skipping SSRCs in use
	g.serial = 9998
	text, _, release, err := g.allocSSRC()
	if err != nil || text != "0113009999" {
		t.Fatalf("SSRC %q %v", text, err)
	}
	release()
	text, _, _, err = g.allocSSRC()
	if err != nil || text != "0113000004" {
		t.Fatalf("after the wrap: SSRC %q %v (1–3 are in use)", text, err)
	}
	releases[0]()
	g.serial = 9999
	if text, _, _, _ = g.allocSSRC(); text != "0113000001" {
		t.Fatalf("a released SSRC is not given again: %q", text)
	}
}

func TestClassify(t *testing.T) {
	cases := []struct {
		err   error
		cause Cause
		code  int
	}{
		{&sip.InviteError{Kind: sip.InviteOffline}, CauseOffline, 0},
		{&sip.InviteError{Kind: sip.InviteNoAnswer}, CauseNoAnswer, 0},
		{&sip.InviteError{Kind: sip.InviteRefused, Code: 486, Msg: "Busy Here"}, CauseRefused, 486},
		{&sip.InviteError{Kind: sip.InviteBadSDP}, CauseBadSDP, 0},
		{&media.MediaError{Kind: media.MediaNoRTP, Transport: "udp"}, CauseNoRTP, 0},
		{&media.MediaError{Kind: media.MediaWrongSSRC, Transport: "udp"}, CauseWrongSSRC, 0},
		{&media.MediaError{Kind: media.MediaNoPSM, Err: &ps.NoPSMError{}}, CauseNoPSM, 0},
		{&media.MediaError{Kind: media.MediaUnknownCodec, Err: &ps.UnknownStreamTypeError{StreamID: 0xE0, Type: 0x10}}, CauseUnknownCodec, 0},
		{&media.MediaError{Kind: media.MediaClosed}, CauseClosed, 0},
		{fmt.Errorf("%w: no video", errNoVideo), CauseNoVideo, 0},
		{fmt.Errorf("%w: refused", errConnect), CauseConnect, 0},
		{errors.New("other"), CauseFailed, 0},
	}
	for _, tc := range cases {
		ae := classify("udp", tc.err)
		if ae.Cause != tc.cause || ae.Code != tc.code || !errors.Is(ae, tc.err) {
			t.Errorf("%v: cause %q code %d, want %q %d", tc.err, ae.Cause, ae.Code, tc.cause, tc.code)
		}
	}
	pe := &PlayError{Camera: "gb-1", Attempts: []*AttemptError{
		classify("udp", &media.MediaError{Kind: media.MediaNoRTP, Transport: "udp", Addr: "10.0.0.1:10000"}),
		classify("tcp-passive", &sip.InviteError{Kind: sip.InviteRefused, Code: 488, Msg: "Not Acceptable Here", Device: "d", Channel: "c", Transport: "tcp-passive"}),
	}}
	msg := pe.Error()
	for _, want := range []string{"gb-1", "udp: the device answered but sent no RTP over udp", "then tcp-passive: ", "488"} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q does not contain %q", msg, want)
		}
	}
	var ie *sip.InviteError
	if !errors.As(pe, &ie) || ie.Code != 488 {
		t.Errorf("the refusal is not reachable with errors.As: %v", ie)
	}
}

func TestPTZWithoutPTZ(t *testing.T) {
	g := &Gateway{}
	for _, cam := range []ingest.Camera{
		{ID: "rtsp-1", Source: ingest.SourceRTSP},
		{ID: "gb-1", Source: ingest.SourceGB28181, GB28181: &ingest.GBChannel{Device: "d", Channel: "c"}},
	} {
		if err := g.PTZ(context.Background(), cam, 0.5, 0, 0); !errors.Is(err, apierr.ErrNotFound) {
			t.Errorf("%s: %v, want not found", cam.ID, err)
		}
	}
}
