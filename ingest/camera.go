package ingest

import (
	"net/url"
	"regexp"
	"time"
)

// Camera is one registered camera: where its streams are and what to do with them.
// It is the unit of configuration that the registry stores and the ingest pulls.
type Camera struct {
	ID            string   `json:"id"`
	Name          string   `json:"name"`
	Department    string   `json:"department"`
	Location      Location `json:"location"`
	MainURL       string   `json:"mainUrl"`
	SubURL        string   `json:"subUrl"`
	Transport     string   `json:"transport"` // auto | tcp | udp
	Record        bool     `json:"record"`
	RetentionDays int      `json:"retentionDays"`
	Enabled       bool     `json:"enabled"`
	Tags          []string `json:"tags"`
	// Source is how the camera's video reaches Vigil: SourceRTSP (pulled
	// from MainURL/SubURL; "" means the same) or SourceGB28181 (a channel
	// of a registered GB/T 28181 device, invited when needed; GB28181 names it).
	Source string `json:"source"`
	// GB28181 names the device channel of a camera whose Source is
	// SourceGB28181; nil otherwise.
	GB28181 *GBChannel `json:"gb28181,omitempty"`
	// UID identifies this incarnation of the camera: the registry assigns a
	// random one at creation and never reuses it, so that a camera created
	// later under the same ID does not inherit this one's recordings (see
	// package recorder/archive). It is not part of the API.
	UID string `json:"-"`
	// Since is when this incarnation began to own the recordings filed
	// under ID: its creation, or the zero time for a camera registered
	// before incarnations existed (it owns every older recording of its ID).
	Since time.Time `json:"-"`
}

// Camera sources.
const (
	SourceRTSP    = "rtsp"
	SourceGB28181 = "gb28181"
)

// GBChannel is the GB/T 28181 channel a camera shows.
type GBChannel struct {
	Device  string `json:"device"`  // the registered device's 20-digit ID
	Channel string `json:"channel"` // the channel's 20-digit ID (the camera is gb-<channel>)
	PTZ     bool   `json:"ptz"`     // the catalog says the channel can pan, tilt or zoom
	// Missing is set while the device's catalog does not list the channel
	// (or the device was deleted): the camera was disabled for it, and is
	// enabled again when the channel returns.
	Missing bool `json:"missing,omitempty"`
}

// Pushed tells whether the camera's video is pushed by a device (GB/T 28181)
// rather than pulled over RTSP.
func (c *Camera) Pushed() bool { return c.Source == SourceGB28181 }

// Location says where a camera stands.
type Location struct {
	Lat     float64 `json:"lat"`
	Lng     float64 `json:"lng"`
	Address string  `json:"address"`
}

// StreamKind names one of a camera's two streams.
type StreamKind string

// The two streams of a camera.
const (
	Main StreamKind = "main"
	Sub  StreamKind = "sub"
)

// URL returns the camera's URL for the stream kind, or "" when it has none.
func (c *Camera) URL(k StreamKind) string {
	if k == Sub {
		return c.SubURL
	}
	return c.MainURL
}

// userinfoRE matches the user info of an RTSP URL up to its password's end.
// Like url.Parse, it ends the user info at the last '@' before the host (a
// password or user name may hold '@' and ':' unescaped); a quote, '<' or '>'
// (never in a valid user info) ends the URL.
var userinfoRE = regexp.MustCompile(`(?i)(rtsps?://[^:/?#\s"<>]*):[^/?#\s"<>]*@`)

// RedactURL hides the password inside an RTSP URL: rtsp://user:***@host/path.
// It works on any string, so it can be applied to error messages that quote a URL.
func RedactURL(s string) string {
	return userinfoRE.ReplaceAllString(s, "${1}:***@")
}

// URLPassword returns the password inside an URL, or "".
func URLPassword(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return ""
	}
	p, _ := u.User.Password()
	return p
}
