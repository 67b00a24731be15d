// Package metrics exposes Vigil's figures in the Prometheus text format with
// client_golang: per camera state, frame rate, bitrate, reconnects, viewers and
// dropped frames, read from the ingest at scrape time; the recorder's spool,
// lag and upload errors; WebRTC sessions; HTTP request latencies.
package metrics

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/recorder"
)

// Sources are the parts whose figures are exported.
type Sources struct {
	Fleet    interface{ Statuses() []ingest.Status }
	Recorder interface {
		Status() recorder.Status
		Recording(id string) bool
	}
	Relay    interface{ Sessions() int }
	Registry any // reserved: department labels
}

// Metrics owns a Prometheus registry.
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.HistogramVec
}

// New registers Vigil's collectors and the Go and process collectors.
func New(src Sources) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.reg.MustRegister(&collector{src: src})
	m.requests = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "vigil_http_request_duration_seconds",
		Help:    "Time to answer HTTP requests (to the first byte for streams), by route class and status code.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"route", "code"})
	m.reg.MustRegister(m.requests)
	return m
}

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Registry returns the Prometheus registry (tests gather from it).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Instrument wraps an HTTP handler to measure latency until the header is written.
func (m *Metrics) Instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rw := &statusWriter{ResponseWriter: w, start: time.Now(), r: r, h: m.requests}
		next.ServeHTTP(rw, r)
		if !rw.observed {
			rw.observe(http.StatusOK)
		}
	})
}

type statusWriter struct {
	http.ResponseWriter
	start    time.Time
	r        *http.Request
	h        *prometheus.HistogramVec
	observed bool
}

func (w *statusWriter) observe(code int) {
	if w.observed {
		return
	}
	w.observed = true
	w.h.WithLabelValues(routeLabel(w.r), codeLabel(code)).Observe(time.Since(w.start).Seconds())
}

func (w *statusWriter) WriteHeader(code int) {
	w.observe(code)
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.observe(http.StatusOK)
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// routeLabel is the route of a request as a bounded label: the pattern the
// http.ServeMux matched (it sets r.Pattern on the request it serves, which
// is the one Instrument passed down), without its method, so that no raw
// path — camera ids, sessions, or any path an unauthenticated client makes
// up — becomes a label value. The catch-all "/" becomes "/web", or
// "/api/v1/other" for an unknown API path.
func routeLabel(r *http.Request) string {
	pat := r.Pattern
	if i := strings.IndexByte(pat, ' '); i >= 0 {
		pat = pat[i+1:]
	}
	switch {
	case pat == "":
		return RouteClass(r.URL.Path)
	case pat == "/":
		if strings.HasPrefix(r.URL.Path, "/api/") {
			return "/api/v1/other"
		}
		return "/web"
	}
	if len(pat) > 100 { // a pattern is code, not input; stay safe anyway
		pat = pat[:100]
	}
	return pat
}

// codeLabel is the status code, or "other" outside 100-599.
func codeLabel(code int) string {
	if code < 100 || code > 599 {
		return "other"
	}
	return strconv.Itoa(code)
}

// apiRoutes are the first path segments of the API under /api/v1/, and
// cameraRoutes those below /api/v1/cameras/{id}/: only these become labels.
var (
	apiRoutes    = []string{"audit", "cameras", "departments", "incidents", "reports", "session", "status", "tokens", "users", "whep"}
	cameraRoutes = []string{"export", "playback", "recordings", "status", "test", "whep"}
)

// RouteClass maps a path to a bounded label when no route pattern is known:
// camera ids, sessions and unknown paths never become label values.
func RouteClass(p string) string {
	switch {
	case p == "/healthz" || p == "/metrics":
		return p
	case len(p) >= 8 && p[:8] == "/api/v1/":
		rest := p[8:]
		seg := func(i int) string {
			n := 0
			start := 0
			for j := 0; j <= len(rest); j++ {
				if j == len(rest) || rest[j] == '/' {
					if n == i {
						return rest[start:j]
					}
					n++
					start = j + 1
				}
			}
			return ""
		}
		first := seg(0)
		if !slices.Contains(apiRoutes, first) {
			return "/api/v1/other"
		}
		if first == "cameras" {
			if last := seg(2); last != "" {
				if !slices.Contains(cameraRoutes, last) {
					return "/api/v1/other"
				}
				return "/api/v1/cameras/{id}/" + last
			}
			if seg(1) != "" {
				return "/api/v1/cameras/{id}"
			}
		}
		return "/api/v1/" + first
	}
	return "/web"
}

var (
	descState      = prometheus.NewDesc("vigil_camera_state", "1 for the camera's current state (connecting, online, offline, disabled, idle).", []string{"camera", "state"}, nil)
	descFPS        = prometheus.NewDesc("vigil_camera_fps", "Measured frames per second of the camera's main stream.", []string{"camera"}, nil)
	descBitrate    = prometheus.NewDesc("vigil_camera_bitrate_kbps", "Measured video bitrate of the main stream, kbit/s.", []string{"camera"}, nil)
	descReconnects = prometheus.NewDesc("vigil_camera_reconnects_total", "Reconnections to the camera since Vigil started.", []string{"camera"}, nil)
	descViewers    = prometheus.NewDesc("vigil_camera_viewers", "Live viewers of the camera (main and sub).", []string{"camera"}, nil)
	descDropped    = prometheus.NewDesc("vigil_camera_dropped_units_total", "Access units that slow subscribers lost.", []string{"camera"}, nil)
	descRecording  = prometheus.NewDesc("vigil_camera_recording", "1 while the camera's main stream is being recorded.", []string{"camera"}, nil)
	descCameras    = prometheus.NewDesc("vigil_cameras", "Registered cameras by state.", []string{"state"}, nil)
	descSpool      = prometheus.NewDesc("vigil_spool_bytes", "Bytes in the recording spool (open and waiting segments).", nil, nil)
	descWaiting    = prometheus.NewDesc("vigil_spool_waiting_segments", "Closed segments waiting for upload.", nil, nil)
	descSpoolDrop  = prometheus.NewDesc("vigil_spool_dropped_segments_total", "Segments lost: spool full or unreadable.", nil, nil)
	descLag        = prometheus.NewDesc("vigil_recording_lag_seconds", "Age of the oldest closed segment not yet in the store (0 when the store keeps up).", nil, nil)
	descUploadErr  = prometheus.NewDesc("vigil_upload_errors_total", "Failed segment uploads (each retry counts).", nil, nil)
	descUploaded   = prometheus.NewDesc("vigil_uploaded_segments_total", "Segments uploaded to the store.", nil, nil)
	descSessions   = prometheus.NewDesc("vigil_webrtc_sessions", "Open WebRTC viewer sessions.", nil, nil)

	// Storage trouble: uploads failing, the spool's disk, spool writes failing.
	descUploadFailing      = prometheus.NewDesc("vigil_upload_failing", "1 while uploads to the object store fail (segments wait in the spool), else 0.", nil, nil)
	descUploadFailingSecs  = prometheus.NewDesc("vigil_upload_failing_seconds", "How long uploads to the object store have been failing (0 while they work).", nil, nil)
	descUploadLastErrorAt  = prometheus.NewDesc("vigil_upload_last_error_timestamp_seconds", "Unix time of the last failed upload (0: none since start).", nil, nil)
	descSpoolDiskFree      = prometheus.NewDesc("vigil_spool_disk_free_bytes", "Free bytes on the spool's file system at the last write.", nil, nil)
	descSpoolWriteFailing  = prometheus.NewDesc("vigil_spool_write_failing_cameras", "Cameras not being recorded because their spool files cannot be written (a full or failing disk).", nil, nil)
	descRecordingLostUnits = prometheus.NewDesc("vigil_recording_lost_units_total", "Units not recorded because the spool could not be written.", nil, nil)
)

var states = []string{"connecting", "online", "offline", "disabled", "idle"}

type collector struct{ src Sources }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descState, descFPS, descBitrate, descReconnects, descViewers, descDropped,
		descRecording, descCameras, descSpool, descWaiting, descLag, descSpoolDrop, descUploadErr, descUploaded, descSessions,
		descUploadFailing, descUploadFailingSecs, descUploadLastErrorAt, descSpoolDiskFree, descSpoolWriteFailing, descRecordingLostUnits} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	byState := map[string]int{}
	if c.src.Fleet != nil {
		for _, st := range c.src.Fleet.Statuses() {
			byState[string(st.State)]++
			for _, s := range states {
				v := 0.0
				if s == string(st.State) {
					v = 1
				}
				ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, v, st.ID, s)
			}
			fps, kbps := 0.0, 0.0
			if st.Video != nil {
				fps, kbps = st.Video.FPS, float64(st.Video.BitrateKbps)
			}
			ch <- prometheus.MustNewConstMetric(descFPS, prometheus.GaugeValue, fps, st.ID)
			ch <- prometheus.MustNewConstMetric(descBitrate, prometheus.GaugeValue, kbps, st.ID)
			ch <- prometheus.MustNewConstMetric(descReconnects, prometheus.CounterValue, float64(st.Reconnects), st.ID)
			ch <- prometheus.MustNewConstMetric(descViewers, prometheus.GaugeValue, float64(st.Viewers), st.ID)
			ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(st.Dropped), st.ID)
			if c.src.Recorder != nil {
				rec := 0.0
				if c.src.Recorder.Recording(st.ID) {
					rec = 1
				}
				ch <- prometheus.MustNewConstMetric(descRecording, prometheus.GaugeValue, rec, st.ID)
			}
		}
	}
	for _, s := range states {
		ch <- prometheus.MustNewConstMetric(descCameras, prometheus.GaugeValue, float64(byState[s]), s)
	}
	if c.src.Recorder != nil {
		rs := c.src.Recorder.Status()
		ch <- prometheus.MustNewConstMetric(descSpool, prometheus.GaugeValue, float64(rs.SpoolBytes))
		ch <- prometheus.MustNewConstMetric(descWaiting, prometheus.GaugeValue, float64(rs.Waiting))
		lag := 0.0
		if !rs.OldestWaiting.IsZero() {
			lag = time.Since(rs.OldestWaiting).Seconds()
		}
		ch <- prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, lag)
		ch <- prometheus.MustNewConstMetric(descSpoolDrop, prometheus.CounterValue, float64(rs.Dropped))
		ch <- prometheus.MustNewConstMetric(descUploadErr, prometheus.CounterValue, float64(rs.UploadErrors))
		ch <- prometheus.MustNewConstMetric(descUploaded, prometheus.CounterValue, float64(rs.Uploaded))
		collectStorageTrouble(ch, rs)
	}
	if c.src.Relay != nil {
		ch <- prometheus.MustNewConstMetric(descSessions, prometheus.GaugeValue, float64(c.src.Relay.Sessions()))
	}
}

// collectStorageTrouble reports what the recorder's status says of the
// store's and the spool's trouble.
func collectStorageTrouble(ch chan<- prometheus.Metric, rs recorder.Status) {
	failing, failingFor, lastErrAt := 0.0, 0.0, 0.0
	if !rs.UploadFailingSince.IsZero() {
		failing, failingFor = 1, time.Since(rs.UploadFailingSince).Seconds()
	}
	if !rs.LastUploadErrorAt.IsZero() {
		lastErrAt = float64(rs.LastUploadErrorAt.UnixNano()) / 1e9
	}
	ch <- prometheus.MustNewConstMetric(descUploadFailing, prometheus.GaugeValue, failing)
	ch <- prometheus.MustNewConstMetric(descUploadFailingSecs, prometheus.GaugeValue, failingFor)
	ch <- prometheus.MustNewConstMetric(descUploadLastErrorAt, prometheus.GaugeValue, lastErrAt)
	if rs.SpoolDiskFree >= 0 {
		ch <- prometheus.MustNewConstMetric(descSpoolDiskFree, prometheus.GaugeValue, float64(rs.SpoolDiskFree))
	}
	ch <- prometheus.MustNewConstMetric(descSpoolWriteFailing, prometheus.GaugeValue, float64(rs.SpoolWriteFailing))
	ch <- prometheus.MustNewConstMetric(descRecordingLostUnits, prometheus.CounterValue, float64(rs.UnitsLost))
}
