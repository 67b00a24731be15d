// Package ui is Vigil's HTTP API and web app server: every endpoint of the
// contract behind one authentication and authorization path, over services
// that it reaches through small interfaces declared here. It asks for camera
// changes (Deps.Cameras, the dispatcher) and does not orchestrate them: the
// registry stores a camera, the dispatcher makes the running parts follow.
package ui

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/vigil-vms/vigil/availability"
	"github.com/vigil-vms/vigil/dispatch"
	"github.com/vigil-vms/vigil/evidence"
	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/recorder/review"
	"github.com/vigil-vms/vigil/registry"
	"golang.org/x/net/netutil"
)

// Cameras runs the registered cameras (dispatch.Dispatcher). The API asks it
// to apply a change after the registry stored it; what runs where is its
// decision, not the API's.
type Cameras interface {
	Apply(ingest.Camera)
	Remove(id string)
	Status(ingest.Camera) dispatch.Status
}

// Live is the WebRTC relay (relay.Relay).
type Live interface {
	Offer(ctx context.Context, cameraID string, kind ingest.StreamKind, offerSDP string) (sessionID, answerSDP string, err error)
	Patch(ctx context.Context, sessionID, sdpFragment string) error
	Delete(sessionID string) error
	// Alive tells whether a session still exists (connecting or playing).
	Alive(sessionID string) bool
}

// Review is the recorder's read side (review.Review).
type Review interface {
	Recordings(ctx context.Context, camera string, start, end time.Time) (review.Recordings, error)
	// Open finds a playback from the index alone: the wall-clock time of its
	// first frame, and the fMP4 stream to write. Its errors, and those of the
	// write before the first byte, are of apierr kinds.
	Open(ctx context.Context, camera string, start time.Time, dur time.Duration) (review.Playback, error)
	Export(ctx context.Context, camera string, start, end time.Time) (review.Export, error)
	// Thumbnail is the recorded keyframe at or before a moment as a tiny fMP4.
	Thumbnail(ctx context.Context, camera string, at time.Time) (review.Thumbnail, error)
}

// Deps are the services behind the API. Registry is required; a nil
// service answers 503 on its endpoints (Metrics and WebApp: 404).
type Deps struct {
	Registry *registry.Registry
	Cameras  Cameras
	Live     Live
	Review   Review
	// Probe tests a camera URL ("test connection"): it returns what the stream
	// offers or the camera's own error.
	Probe func(ctx context.Context, rawURL, transport string) (ingest.ProbeResult, error)
	// Availability reports per department and camera the share of a period
	// online and recorded, over every camera (filtered here by scope).
	Availability func(ctx context.Context, from, to time.Time) (availability.Report, error)
	// Events lists what happened to a camera over a range (offline
	// periods), for the playback timeline.
	Events func(ctx context.Context, camera string, from, to time.Time) ([]availability.Event, error)
	// Health reports how every part is; Alerts sends test events.
	Health Health
	Alerts Alerts
	// GB28181 is the GB/T 28181 device registry; nil when gb28181 is off.
	GB28181 *GB28181
	// Metrics serves Prometheus text.
	Metrics http.Handler
	// Evidence signs evidence packages (export format=package, incident
	// export). Without it they answer 503.
	Evidence evidence.Key
	// WebApp is the browser app, index.html at its root.
	WebApp fs.FS
	// Log receives request failures. It defaults to discarding.
	Log *slog.Logger
	// Cluster lists the nodes of the cluster; nil on a single node.
	Cluster Cluster
}

// Options tune the server.
type Options struct {
	// SessionTTL is the idle timeout of a login: each request extends it
	// (written to the database at most once a minute). It defaults to 12
	// hours.
	SessionTTL time.Duration
	// SessionMaxAge caps a login however active it is. It defaults to 30
	// days, and to SessionTTL when that is longer. Displays (walls an admin
	// signed in) neither idle out nor reach a cap: they end when revoked.
	SessionMaxAge time.Duration
	// Secure marks the session cookie Secure and sends HSTS (set under TLS).
	// It defaults to false.
	Secure bool
	// MetricsPublic serves /metrics without a login. It defaults to false.
	MetricsPublic bool
	// LoginFailures is how many failed logins per user and per address are
	// allowed within LoginWindow before 429. It defaults to 5.
	LoginFailures int
	// LoginWindow is the window of LoginFailures. It defaults to 1 minute.
	LoginWindow time.Duration
	// LivePerUser caps the live (WHEP) sessions of one user, connecting or
	// playing; an offer beyond it answers 429. It defaults to 32 (two
	// browser tabs showing the web app's largest wall, 16 tiles).
	LivePerUser int
	// ResponseTimeout bounds writing a response other than a playback or
	// export stream, so that a client that does not read (the web app
	// needs no login) cannot hold a connection. It defaults to 2 minutes.
	ResponseTimeout time.Duration
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names
	// the client (for the login limiter and the audit log). It defaults to
	// none: the header is ignored.
	TrustedProxies []netip.Prefix
	// MapTiles is the URL template of the site's own map tile server
	// (ui.mapTiles), given to the web app's camera map; the Content
	// Security Policy allows images from its origin. It defaults to none.
	MapTiles string
}

// Server is the HTTP API.
type Server struct {
	deps Deps
	opts Options
	reg  *registry.Registry
	log  *slog.Logger
	mux  *http.ServeMux

	limit *limiter

	mu         sync.Mutex
	whep       map[string]whepOwner  // WHEP session → who opened it
	whepOffers map[string]int        // user → offers being negotiated
	liveSeen   map[liveKey]time.Time // live view → its last offer, for the audit log

	ptz       ptzControl            // PTZ movements under way (ptz.go)
	thumbSeen map[liveKey]time.Time // look at a camera's thumbnails → the last one, for the audit log
	csp       string                // the Content Security Policy of every response
}

type whepOwner struct {
	user    string
	camera  string
	created time.Time
}

// New builds the server; it starts nothing.
func New(deps Deps, opts Options) (*Server, error) {
	if deps.Registry == nil {
		return nil, errors.New("ui: Deps.Registry is required")
	}
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = 12 * time.Hour
	}
	if opts.SessionMaxAge <= 0 {
		opts.SessionMaxAge = 30 * 24 * time.Hour
	}
	opts.SessionMaxAge = max(opts.SessionMaxAge, opts.SessionTTL)
	if opts.LoginFailures <= 0 {
		opts.LoginFailures = 5
	}
	if opts.LoginWindow <= 0 {
		opts.LoginWindow = time.Minute
	}
	if opts.LivePerUser <= 0 {
		opts.LivePerUser = 32
	}
	if opts.ResponseTimeout <= 0 {
		opts.ResponseTimeout = 2 * time.Minute
	}
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	s := &Server{deps: deps, opts: opts, reg: deps.Registry, log: deps.Log, mux: http.NewServeMux(),
		limit: newLimiter(opts.LoginFailures, opts.LoginWindow), whep: map[string]whepOwner{}, whepOffers: map[string]int{}, liveSeen: map[liveKey]time.Time{}}
	s.csp = csp
	if o := tilesOrigin(opts.MapTiles); o != "" {
		s.csp = strings.Replace(csp, "img-src 'self' data: blob:", "img-src 'self' data: blob: "+o, 1)
	}
	s.routes()
	return s, nil
}

func (s *Server) routes() {
	// Session and tokens.
	s.route("POST /api/v1/session", actOpen, "login", s.login)
	s.route("GET /api/v1/session", actView, "", s.getSession)
	s.route("DELETE /api/v1/session", actView, "", s.logout)
	s.route("POST /api/v1/tokens", actView, "token.create", s.createToken)
	s.route("GET /api/v1/tokens", actView, "", s.listTokens)
	s.route("DELETE /api/v1/tokens/{id}", actView, "token.delete", s.deleteToken)
	s.route("POST /api/v1/displays", actAccounts, "display.create", s.createDisplay)
	s.route("GET /api/v1/displays", actAccounts, "", s.listDisplays)
	s.route("GET /api/v1/displays/{id}", actAccounts, "", s.getDisplay)
	s.route("DELETE /api/v1/displays/{id}", actAccounts, "display.delete", s.deleteDisplay)
	s.route("POST /api/v1/displays/signin", actOpen, "display.signin", s.signInDisplay)
	s.route("PUT /api/v1/session/password", actView, "password.change", s.changePassword)

	// Layouts and tours of the live wall.
	s.route("GET /api/v1/layouts", actView, "", s.listLayouts)
	s.route("POST /api/v1/layouts", actView, "layout.create", s.createLayout)
	s.route("GET /api/v1/layouts/{id}", actView, "", s.getLayout)
	s.route("PUT /api/v1/layouts/{id}", actView, "layout.update", s.updateLayout)
	s.route("DELETE /api/v1/layouts/{id}", actView, "layout.delete", s.deleteLayout)

	// Users and departments.
	s.route("GET /api/v1/users", actAccounts, "", s.listUsers)
	s.route("POST /api/v1/users", actAccounts, "user.create", s.createUser)
	s.route("GET /api/v1/users/{username}", actAccounts, "", s.getUser)
	s.route("PUT /api/v1/users/{username}", actAccounts, "user.update", s.updateUser)
	s.route("DELETE /api/v1/users/{username}", actAccounts, "user.delete", s.deleteUser)
	s.route("GET /api/v1/departments", actView, "", s.listDepartments)
	s.route("POST /api/v1/departments", actAccounts, "department.create", s.createDepartment)
	s.route("PUT /api/v1/departments/{id}", actAccounts, "department.update", s.updateDepartment)
	s.route("DELETE /api/v1/departments/{id}", actAccounts, "department.delete", s.deleteDepartment)

	// Cameras.
	s.route("GET /api/v1/cameras", actView, "", s.listCameras)
	s.route("POST /api/v1/cameras", actAdmin, "camera.create", s.createCamera)
	s.route("POST /api/v1/cameras/import", actAdmin, "camera.import", s.importCameras)
	s.route("POST /api/v1/cameras/test", actAdmin, "", s.testNewCamera)
	s.route("GET /api/v1/cameras/{id}", actView, "", s.viewCamera(func(cam ingest.Camera) any { return registry.RedactCamera(cam) }))
	s.route("PUT /api/v1/cameras/{id}", actAdmin, "camera.update", s.replaceCamera)
	s.route("DELETE /api/v1/cameras/{id}", actAdmin, "camera.delete", s.deleteCamera)
	s.route("POST /api/v1/cameras/{id}/test", actAdmin, "", s.testCamera)
	s.route("GET /api/v1/cameras/{id}/status", actView, "", s.cameraStatus)
	s.route("GET /api/v1/status", actView, "", s.allStatus)

	// Live.
	s.route("POST /api/v1/cameras/{id}/whep", actLive, "live", s.whepOffer)
	s.route("PATCH /api/v1/whep/{session}", actLive, "", s.whepPatch)
	s.route("DELETE /api/v1/whep/{session}", actLive, "", s.whepDelete)
	s.route("POST /api/v1/cameras/{id}/ptz", actPTZ, "ptz", s.ptzCommand)

	// Review.
	s.route("GET /api/v1/cameras/{id}/recordings", actPlayback, "", s.recordings)
	s.route("GET /api/v1/cameras/{id}/events", actPlayback, "", s.events)
	s.route("GET /api/v1/cameras/{id}/playback", actPlayback, "playback", s.playback)
	s.route("GET /api/v1/cameras/{id}/thumbnail", actPlayback, "thumbnail", s.thumbnail)
	s.route("GET /api/v1/cameras/{id}/export", actExport, "export", s.export)
	s.route("GET /api/v1/incidents/{id}/export", actExport, "export", s.exportIncident)
	s.route("GET /api/v1/evidence/key", actAdmin, "", s.evidenceKey)
	s.route("POST /api/v1/incidents", actIncidents, "incident.create", s.createIncident)
	s.route("GET /api/v1/incidents", actIncidents, "", s.listIncidents)
	s.route("DELETE /api/v1/incidents/{id}", actAdmin, "incident.delete", s.deleteIncident)
	s.route("PUT /api/v1/incidents/{id}", actIncidents, "incident.update", s.updateIncident)
	s.route("POST /api/v1/incidents/{id}/notes", actIncidents, "incident.note", s.addIncidentNote)

	// Operations.
	s.route("GET /api/v1/audit", actAdmin, "", s.listAudit)
	s.route("GET /api/v1/reports/availability", actReports, "", s.availability)
	s.route("GET /api/v1/health", actView, "", s.health) // admin and operator: checked in the handler
	s.route("POST /api/v1/alerts/test", actAdmin, "alerts.test", s.alertsTest)

	// GB/T 28181 devices.
	s.route("GET /api/v1/gb28181/devices", actAdmin, "", s.listGBDevices)
	s.route("POST /api/v1/gb28181/devices", actAdmin, "gb28181.device.create", s.createGBDevice)
	s.route("GET /api/v1/gb28181/devices/{id}", actAdmin, "", s.getGBDevice)
	s.route("PUT /api/v1/gb28181/devices/{id}", actAdmin, "gb28181.device.update", s.updateGBDevice)
	s.route("DELETE /api/v1/gb28181/devices/{id}", actAdmin, "gb28181.device.delete", s.deleteGBDevice)
	s.route("GET /api/v1/gb28181/refused", actAdmin, "", s.listGBRefused)
	s.route("GET /api/v1/gb28181/upstream", actAdmin, "", s.listGBUpstream)

	// The camera map's site map.
	s.route("GET /api/v1/map", actView, "", s.getMap)
	s.route("PUT /api/v1/map", actAccounts, "map.update", s.putMap)
	s.route("DELETE /api/v1/map", actAccounts, "map.delete", s.deleteMap)
	s.route("GET /api/v1/map/image", actView, "", s.getMapImage)
	s.route("PUT /api/v1/map/image", actAccounts, "map.image", s.putMapImage)
	s.route("GET /api/v1/cluster", actView, "", s.clusterNodes) // admin and operator: checked in the handler
	metricsAct := actMetrics
	if s.opts.MetricsPublic {
		metricsAct = actOpen
	}
	s.route("GET /metrics", metricsAct, "", s.metrics)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	// One catch-all: "/api/" for every method and "GET /" would conflict in ServeMux.
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/api/"):
			s.writeError(w, r, errStatus(http.StatusNotFound, "no such API endpoint: %s %s", r.Method, truncate(r.URL.Path, 200)))
		case r.Method == http.MethodGet || r.Method == http.MethodHead:
			s.webApp(w, r)
		default:
			w.Header().Set("Allow", "GET, HEAD")
			s.writeError(w, r, errStatus(http.StatusMethodNotAllowed, "method not allowed"))
		}
	})
}

// csp is the Content Security Policy of every response. The web app uses
// no inline scripts or styles; media plays from blob: URLs (MSE).
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " +
	"media-src 'self' blob:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; " +
	"form-action 'self'; frame-ancestors 'none'"

// Handler returns the server's handler, with the security headers.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", s.csp)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		if s.opts.Secure {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		if strings.HasPrefix(r.URL.Path, "/api/") {
			h.Set("Cache-Control", "no-store")
		}
		// Every request sets the connection's write deadline afresh (a
		// keep-alive connection keeps the last one): none for a stream,
		// whose handler bounds its own writes, else ResponseTimeout.
		// Recorders in tests do not support it; then there is none to set.
		deadline := time.Now().Add(s.opts.ResponseTimeout)
		if isStream(r) {
			deadline = time.Time{}
		}
		_ = http.NewResponseController(w).SetWriteDeadline(deadline)
		s.mux.ServeHTTP(&trackWriter{ResponseWriter: w}, r)
	})
}

// Limits of NewHTTPServer against slow and idle clients.
const (
	// HeaderTimeout bounds reading a request's headers.
	HeaderTimeout = 10 * time.Second
	// RequestReadTimeout bounds reading a whole request, headers and body,
	// including what net/http drains of a body the handler did not read. It
	// does not cut a long response: net/http clears the read deadline once
	// the request is read, to watch for the client going away.
	RequestReadTimeout = 60 * time.Second
	// IdleTimeout closes a keep-alive connection without a request.
	IdleTimeout = 2 * time.Minute
)

// isStream tells a playback or export request, whose response may last as
// long as the video.
func isStream(r *http.Request) bool {
	p := r.URL.Path
	return (strings.HasPrefix(p, "/api/v1/cameras/") || strings.HasPrefix(p, "/api/v1/incidents/")) &&
		(strings.HasSuffix(p, "/playback") || strings.HasSuffix(p, "/export"))
}

// NewHTTPServer returns an http.Server for h with timeouts against slow
// clients: headers within HeaderTimeout, the whole request within
// RequestReadTimeout, idle connections closed after IdleTimeout. It has no
// WriteTimeout, which would cut playback and export streams: Server.Handler
// bounds the other responses (Options.ResponseTimeout). Serve it on a
// listener from LimitConnections.
func NewHTTPServer(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: HeaderTimeout,
		ReadTimeout:       RequestReadTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    64 << 10,
	}
}

// MaxConnections is how many HTTP connections LimitConnections admits at
// once for a process limit of nofile open files: a quarter of it, at least
// 64 and at most 16384, so that HTTP clients cannot take the descriptors
// that cameras, the spool and the database need.
func MaxConnections(nofile uint64) int {
	return int(min(max(nofile/4, 64), 16384))
}

// LimitConnections caps the connections ln accepts at once at
// MaxConnections of the process's open-file limit (Go raises the soft limit
// to the hard one at start); further clients wait in the listen backlog.
func LimitConnections(ln net.Listener) net.Listener {
	return netutil.LimitListener(ln, MaxConnections(openFileLimit()))
}

// webApp serves the browser app, answering index.html for unknown paths so
// that the app's own routes work on reload.
func (s *Server) webApp(w http.ResponseWriter, r *http.Request) {
	if s.deps.WebApp == nil {
		s.writeError(w, r, errStatus(http.StatusNotFound, "the web app is not built into this server"))
		return
	}
	name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
	if name == "" {
		name = "index.html"
	}
	if st, err := fs.Stat(s.deps.WebApp, name); err != nil || st.IsDir() {
		name = "index.html"
	}
	if name == "index.html" {
		w.Header().Set("Cache-Control", "no-cache")
	}
	http.ServeFileFS(w, r, s.deps.WebApp, name)
}

func (s *Server) metrics(w http.ResponseWriter, r *http.Request, c *call) error {
	if s.deps.Metrics == nil {
		return errStatus(http.StatusNotFound, "metrics are not enabled")
	}
	s.deps.Metrics.ServeHTTP(w, r)
	return nil
}
