// Package gateway plays GB/T 28181 cameras for the ingest: it is the
// ingest.Source of cameras whose source is gb28181. For each session it
// allocates an SSRC, reserves it on the media port (gb28181/media), invites
// the channel over SIP (gb28181/sip), waits for the first video and writes
// the demuxed access units into the ingest's Sink, and hangs up when the
// ingest no longer needs the stream.
//
// Transports are tried in the order udp → tcp-passive → tcp-active,
// starting from the one that last worked with the device (remembered in
// the device table, gb28181/device). Every attempt ends within
// AttemptTimeout (4.5 s, so within 5 s with the logging) with the video
// flowing or a typed cause a person can act on (AttemptError): no answer,
// refused with the SIP code, an unusable answer, no RTP on the negotiated
// transport, a wrong SSRC, no PSM, an unknown codec. The causes of every attempt are in the error Play
// returns (the camera's lastError) and in the log.
//
// It also keeps cameras in step with catalogs (OnCatalog → the
// dispatcher's SyncChannels, in the device's department), ends the
// sessions of a device that goes offline, and sends PTZ commands.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/vigil-vms/vigil/dispatch"
	"github.com/vigil-vms/vigil/gb28181/device"
	"github.com/vigil-vms/vigil/gb28181/manscdp"
	"github.com/vigil-vms/vigil/gb28181/media"
	"github.com/vigil-vms/vigil/gb28181/sip"
)

// DefaultAttemptTimeout bounds one INVITE attempt, from sending the INVITE
// to the first video, so that a failed attempt ends, cause named, within
// 5 s. The INVITE itself gets at most sip.Server.InviteTimeout (4 s).
const DefaultAttemptTimeout = 4500 * time.Millisecond

// Gateway is the ingest.Source of GB/T 28181 cameras. Set its fields, then
// Run it; Play, PTZ and the hooks may be called once it is built.
type Gateway struct {
	// SIP invites channels and sends control messages. Required.
	SIP *sip.Server
	// Media receives the streams. Required.
	Media *media.Server
	// Devices remembers the transport that worked per device and gives a
	// device's department. Required.
	Devices *device.Store
	// Cameras keeps cameras in step with catalogs. Required for OnCatalog.
	Cameras *dispatch.Dispatcher
	// Realm is gb28181.realm (10 digits): its 4th–8th digits go into
	// every SSRC. Required.
	Realm string
	// MediaIP is the address written into the SDP (gb28181.mediaIP). It
	// defaults to our address as the device reaches it.
	MediaIP string
	// MediaPort is the media port as bound (gb28181.mediaPort). Required.
	MediaPort int
	// AttemptTimeout bounds one INVITE attempt, INVITE to first video. It
	// defaults to DefaultAttemptTimeout.
	AttemptTimeout time.Duration
	// Log defaults to slog.Default().
	Log *slog.Logger

	ssrcMu sync.Mutex
	serial int
	inUse  map[uint32]bool

	sessMu   sync.Mutex
	sessions map[string]map[*session]struct{} // by device

	catMu    sync.Mutex
	catalogs []catalogJob
	catReady chan struct{} // signalled when catalogs has jobs

	bg sync.WaitGroup // background BYEs and key frame requests
}

type catalogJob struct {
	device string
	items  []manscdp.Item
}

func (g *Gateway) log() *slog.Logger {
	if g.Log == nil {
		return slog.Default()
	}
	return g.Log
}

func (g *Gateway) attemptTimeout() time.Duration {
	if g.AttemptTimeout > 0 {
		return g.AttemptTimeout
	}
	return DefaultAttemptTimeout
}

func (g *Gateway) init() {
	g.catMu.Lock()
	if g.catReady == nil {
		g.catReady = make(chan struct{}, 1)
	}
	g.catMu.Unlock()
}

// Run keeps cameras in step with the catalogs that OnCatalog receives, one
// at a time, until ctx ends; then it waits for the background BYEs.
func (g *Gateway) Run(ctx context.Context) error {
	g.init()
	defer g.bg.Wait()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-g.catReady:
		}
		for {
			g.catMu.Lock()
			if len(g.catalogs) == 0 {
				g.catMu.Unlock()
				break
			}
			job := g.catalogs[0]
			g.catalogs = g.catalogs[1:]
			g.catMu.Unlock()
			g.syncCatalog(ctx, job)
		}
	}
}

// OnCatalog is the SIP server's OnCatalog hook: the catalog is applied by
// Run (the hook does not block).
func (g *Gateway) OnCatalog(deviceID string, items []manscdp.Item) {
	g.init()
	g.catMu.Lock()
	g.catalogs = append(g.catalogs, catalogJob{device: deviceID, items: items})
	g.catMu.Unlock()
	select {
	case g.catReady <- struct{}{}:
	default:
	}
}

func (g *Gateway) syncCatalog(ctx context.Context, job catalogJob) {
	if g.Cameras == nil {
		return
	}
	d, err := g.Devices.Get(ctx, job.device)
	if err != nil {
		g.log().Warn("gb28181 catalog of a device not in the device table", "device", job.device, "error", err)
		return
	}
	cams, err := g.Cameras.SyncChannels(ctx, d.ID, d.Department, job.items)
	if err != nil {
		g.log().Warn("gb28181 catalog sync", "device", d.ID, "error", err)
	}
	g.log().Debug("gb28181 catalog applied", "device", d.ID, "items", len(job.items), "cameras", len(cams))
}

// OnState is the SIP server's OnState hook: a device that goes offline
// ends its sessions (the ingest retries them once it is back).
func (g *Gateway) OnState(deviceID string, st sip.State) {
	if st.State == sip.StateOnline {
		return
	}
	g.sessMu.Lock()
	defer g.sessMu.Unlock()
	for s := range g.sessions[deviceID] {
		s.cancel(fmt.Errorf("gb28181 device %s went offline (%s)", deviceID, st.LastError))
	}
}

// DeviceDeleted disables the cameras of a device an admin deleted and ends
// their sessions.
func (g *Gateway) DeviceDeleted(ctx context.Context, deviceID string) error {
	g.OnState(deviceID, sip.State{State: sip.StateOffline, LastError: "deleted by an admin"})
	if g.Cameras == nil {
		return nil
	}
	return g.Cameras.DisableDevice(ctx, deviceID)
}

// DeviceUpdated moves a device's cameras to the device's department after
// an admin changed it.
func (g *Gateway) DeviceUpdated(ctx context.Context, deviceID string) error {
	d, err := g.Devices.Get(ctx, deviceID)
	if err != nil {
		return err
	}
	if g.Cameras == nil {
		return nil
	}
	return g.Cameras.MoveDevice(ctx, d.ID, d.Department)
}

// allocSSRC returns a live-view SSRC (GB-INTERFACES.md): "0", the 4th–8th
// digits of the realm, a 4-digit serial not in use; as text and as the RTP
// SSRC. release frees it.
func (g *Gateway) allocSSRC() (text string, ssrc uint32, release func(), err error) {
	g.ssrcMu.Lock()
	defer g.ssrcMu.Unlock()
	if g.inUse == nil {
		g.inUse = map[uint32]bool{}
	}
	mid := "00000"
	if len(g.Realm) >= 8 {
		mid = g.Realm[3:8]
	}
	for range 9999 {
		g.serial = g.serial%9999 + 1
		text = fmt.Sprintf("0%s%04d", mid, g.serial)
		n, perr := strconv.ParseUint(text, 10, 32)
		if perr != nil {
			return "", 0, nil, fmt.Errorf("gb28181: realm %q gives no SSRC: %w", g.Realm, perr)
		}
		if !g.inUse[uint32(n)] {
			ssrc = uint32(n)
			g.inUse[ssrc] = true
			return text, ssrc, func() {
				g.ssrcMu.Lock()
				delete(g.inUse, ssrc)
				g.ssrcMu.Unlock()
			}, nil
		}
	}
	return "", 0, nil, errors.New("gb28181: all 9999 live SSRCs are in use")
}

// mediaIP is the address the device is to send its media to.
func (g *Gateway) mediaIP(deviceHost string) string {
	if g.MediaIP != "" {
		return g.MediaIP
	}
	if deviceHost != "" {
		// the source address the kernel picks towards the device (sends nothing)
		if c, err := net.Dial("udp", net.JoinHostPort(deviceHost, "5060")); err == nil {
			h, _, _ := net.SplitHostPort(c.LocalAddr().String())
			c.Close()
			return h
		}
	}
	return "127.0.0.1"
}

// order is the transports to try for a device: the remembered one first,
// then the others in the order udp, tcp-passive, tcp-active.
func order(remembered string) []string {
	out := make([]string, 0, len(device.Transports))
	for _, t := range device.Transports {
		if t == remembered {
			out = append(out, t)
		}
	}
	for _, t := range device.Transports {
		if t != remembered {
			out = append(out, t)
		}
	}
	return out
}
