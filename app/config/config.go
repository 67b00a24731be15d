// Package config loads Vigil's configuration: built-in defaults, then the YAML
// file (strict: an unknown key is an error), then VIGIL_* environment
// variables, then Validate, whose messages quote the YAML key.
package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/vigil-vms/vigil/alerts"
	"github.com/vigil-vms/vigil/relay"
)

// Config is the whole configuration. Field tags are the YAML keys of the contract.
type Config struct {
	HTTP      HTTP      `yaml:"http"`
	WebRTC    WebRTC    `yaml:"webrtc"`
	Storage   Storage   `yaml:"storage"`
	Recording Recording `yaml:"recording"`
	Database  Database  `yaml:"database"`
	Auth      Auth      `yaml:"auth"`
	Metrics   Metrics   `yaml:"metrics"`
	Log       Log       `yaml:"log"`
	Alerts    Alerts    `yaml:"alerts"`
	GB28181   GB28181   `yaml:"gb28181"`
	UI        UI        `yaml:"ui"`
	Cluster   Cluster   `yaml:"cluster"`
}

// Cluster is this node's place among the nodes that share one PostgreSQL
// database (database.url) and one S3 bucket.
type Cluster struct {
	// Node is this node's name, unique in the cluster; default: the host name.
	Node string `yaml:"node"`
	// Advertise is the base URL the other nodes reach this node's HTTP
	// server at (live view and the spooled part of recordings are asked of
	// the camera's owner there); default: http://<host name>:<http port>.
	Advertise string `yaml:"advertise"`
	// LeaseTTL: a node that stops renewing loses its cameras after this.
	LeaseTTL Duration `yaml:"leaseTTL"`
}

// Clustered reports whether the node runs in a cluster: database.url is set.
func (c Config) Clustered() bool { return c.Database.URL != "" }

// UI is the web app.
type UI struct {
	// MapTiles is the URL template of the site's own map tile server
	// (Web Mercator, e.g. "https://tiles.example.org/{z}/{x}/{y}.png", or a
	// path on this host), drawn under the camera map; empty (the default):
	// no tiles, the map draws a grid or the uploaded site map, so that a
	// closed network never reaches for an outside server.
	MapTiles string `yaml:"mapTiles"`
}

// checkMapTiles validates ui.mapTiles.
func checkMapTiles(v string) error {
	if v == "" {
		return nil
	}
	for _, p := range []string{"{z}", "{x}", "{y}"} {
		if !strings.Contains(v, p) {
			return fmt.Errorf("%q lacks %s (e.g. https://tiles.example.org/{z}/{x}/{y}.png)", v, p)
		}
	}
	if strings.HasPrefix(v, "/") && !strings.HasPrefix(v, "//") {
		return nil
	}
	u, err := url.Parse(strings.NewReplacer("{z}", "0", "{x}", "0", "{y}", "0", "{s}", "a").Replace(v))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http:// or https:// URL or a path on this server", v)
	}
	return nil
}

// HTTP is the web server.
type HTTP struct {
	Listen string `yaml:"listen"`
	TLS    TLS    `yaml:"tls"`
	// TrustedProxies are reverse proxies (addresses or CIDR networks) whose
	// X-Forwarded-For header names the client; empty: the header is ignored.
	TrustedProxies []string `yaml:"trustedProxies"`
}

// Proxies parses TrustedProxies (after Validate, it does not fail).
func (h HTTP) Proxies() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range h.TrustedProxies {
		if p, err := parseProxy(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

func parseProxy(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

// TLS files; both empty means plain HTTP.
type TLS struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// WebRTC is the live relay.
type WebRTC struct {
	UDPPort    int         `yaml:"udpPort"`
	PublicIPs  []string    `yaml:"publicIPs"`
	ICEServers []ICEServer `yaml:"iceServers"`
	// SubLinger: a camera's sub-stream (the wall's tiles play them) is
	// pulled while someone watches it and this long after; 0s pulls every
	// sub-stream all the time. Default 10m.
	SubLinger Duration `yaml:"subLinger"`
}

// ICEServer is a STUN or TURN server offered to browsers and used by the server.
type ICEServer struct {
	URLs       []string `yaml:"urls"`
	Username   string   `yaml:"username"`
	Credential string   `yaml:"credential"`
}

// UnmarshalYAML accepts a bare URL string as well as the full form.
func (s *ICEServer) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		s.URLs = []string{n.Value}
		return nil
	}
	type plain ICEServer
	var p plain
	if err := n.Decode(&p); err != nil {
		return err
	}
	*s = ICEServer(p)
	return nil
}

// Relay is the server as the relay takes it (relay.ICEServer says what is valid).
func (s ICEServer) Relay() relay.ICEServer {
	return relay.ICEServer{URLs: append([]string(nil), s.URLs...), Username: s.Username, Credential: s.Credential}
}

// RelayICEServers converts the configured ICE servers for the relay.
func (w WebRTC) RelayICEServers() []relay.ICEServer {
	out := make([]relay.ICEServer, 0, len(w.ICEServers))
	for _, s := range w.ICEServers {
		out = append(out, s.Relay())
	}
	return out
}

// Storage is where recordings go.
type Storage struct {
	Backend string `yaml:"backend"`
	Local   Local  `yaml:"local"`
	S3      S3     `yaml:"s3"`
}

// Local is the directory store.
type Local struct {
	Dir string `yaml:"dir"`
}

// S3 is an S3-compatible object store.
type S3 struct {
	Endpoint  string `yaml:"endpoint"`
	Bucket    string `yaml:"bucket"`
	Region    string `yaml:"region"`
	AccessKey string `yaml:"accessKey"`
	SecretKey string `yaml:"secretKey"`
	TLS       bool   `yaml:"tls"`
}

// Recording is the recorder.
type Recording struct {
	Segment       Duration `yaml:"segment"`
	SpoolDir      string   `yaml:"spoolDir"`
	SpoolMaxBytes Bytes    `yaml:"spoolMaxBytes"`
	RetentionDays int      `yaml:"retentionDays"`
	// MaxBytesPerCamera trims a camera's oldest segments past this size; 0: no limit.
	MaxBytesPerCamera Bytes `yaml:"maxBytesPerCamera"`
}

// Database is the embedded SQLite database (a single node), or PostgreSQL
// when URL is set (a cluster of nodes).
type Database struct {
	Path string `yaml:"path"`
	// URL is postgres://user:pass@host:5432/vigil (VIGIL_DATABASE_URL); empty:
	// the SQLite file at Path.
	URL string `yaml:"url"`
}

// Auth is logins and sessions.
type Auth struct {
	// SessionTTL is the idle timeout of a login: each request extends it.
	SessionTTL Duration `yaml:"sessionTTL"`
	// SessionMaxAge caps a login however active: then it must sign in again.
	SessionMaxAge Duration `yaml:"sessionMaxAge"`
}

// Metrics is /metrics.
type Metrics struct {
	Public bool `yaml:"public"`
}

// Log is logging.
type Log struct {
	Level  string `yaml:"level"`  // debug | info | warn | error
	Format string `yaml:"format"` // text | json
}

// Alerts are events sent to webhooks.
type Alerts struct {
	// OfflineAfter is how long a camera must be offline before camera.offline.
	OfflineAfter Duration  `yaml:"offlineAfter"`
	Webhooks     []Webhook `yaml:"webhooks"`
}

// Webhook is a receiver of alert events. Its url and secret may come from
// VIGIL_ALERTS_WEBHOOKS_<n>_URL and VIGIL_ALERTS_WEBHOOKS_<n>_SECRET (n from 0).
type Webhook struct {
	URL    string   `yaml:"url"`
	Secret string   `yaml:"secret"`
	Events []string `yaml:"events"` // empty: all
}

// UnmarshalYAML decodes a webhook strictly: an unknown key is an error.
func (w *Webhook) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.MappingNode {
		for i := 0; i < len(n.Content); i += 2 {
			switch k := n.Content[i].Value; k {
			case "url", "secret", "events":
			default:
				return fmt.Errorf("unknown key %q in a webhook (line %d; known: url, secret, events)", k, n.Content[i].Line)
			}
		}
	}
	type plain Webhook
	var p plain
	if err := n.Decode(&p); err != nil {
		return err
	}
	*w = Webhook(p)
	return nil
}

// AlertWebhooks converts the configured webhooks for the alerts.
func (a Alerts) AlertWebhooks() []alerts.Webhook {
	out := make([]alerts.Webhook, 0, len(a.Webhooks))
	for _, w := range a.Webhooks {
		out = append(out, alerts.Webhook{URL: w.URL, Secret: w.Secret, Events: append([]string(nil), w.Events...)})
	}
	return out
}

// GB28181 is the GB/T 28181 SIP server devices register to.
type GB28181 struct {
	Enabled bool   `yaml:"enabled"`
	Listen  string `yaml:"listen"` // SIP over UDP and TCP
	ID      string `yaml:"id"`     // this platform's 20-digit SIP ID
	Realm   string `yaml:"realm"`  // SIP domain, 10 digits
	// Password is the default device password (VIGIL_GB28181_PASSWORD).
	Password  string `yaml:"password"`
	MediaPort int    `yaml:"mediaPort"` // one UDP + TCP port for all incoming PS/RTP
	MediaIP   string `yaml:"mediaIP"`   // address written into SDP; "": the address the device reached
	// Upstream are the upper-level platforms Vigil registers to (级联).
	Upstream []Upstream `yaml:"upstream"`
}

// Upstream is one upper-level platform Vigil registers to as a lower
// platform. Its password may come from VIGIL_GB28181_UPSTREAM_<n>_PASSWORD.
type Upstream struct {
	ID        string   `yaml:"id"`        // the upper platform's 20-digit SIP ID
	Realm     string   `yaml:"realm"`     // its SIP domain (10 digits)
	Address   string   `yaml:"address"`   // its SIP host:port
	Transport string   `yaml:"transport"` // udp (default) | tcp
	LocalID   string   `yaml:"localId"`   // the ID Vigil registers with; "": gb28181.id
	Password  string   `yaml:"password"`  // the digest password the upper platform gave
	Expires   int      `yaml:"expires"`   // registration lifetime in seconds; 0: 3600
	Keepalive Duration `yaml:"keepalive"` // keepalive MESSAGE interval; 0: 60s
	// Departments are the departments whose cameras the upper platform
	// sees; empty shares none.
	Departments []string `yaml:"departments"`
}

var upstreamKeys = []string{"id", "realm", "address", "transport", "localId", "password", "expires", "keepalive", "departments"}

// UnmarshalYAML decodes an upper platform strictly: an unknown key is an error.
func (u *Upstream) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.MappingNode {
		for i := 0; i < len(n.Content); i += 2 {
			if k := n.Content[i].Value; !slices.Contains(upstreamKeys, k) {
				return fmt.Errorf("unknown key %q in an upstream platform (line %d; known: %s)", k, n.Content[i].Line, strings.Join(upstreamKeys, ", "))
			}
		}
	}
	type plain Upstream
	var p plain
	if err := n.Decode(&p); err != nil {
		return err
	}
	*u = Upstream(p)
	return nil
}

// Default returns the built-in defaults of the contract.
func Default() Config {
	return Config{
		HTTP:   HTTP{Listen: ":8080"},
		WebRTC: WebRTC{UDPPort: 8189, SubLinger: Duration(10 * time.Minute)},
		Storage: Storage{
			Backend: "local",
			Local:   Local{Dir: "./data/recordings"},
			S3:      S3{Bucket: "vigil", TLS: true},
		},
		Recording: Recording{
			Segment:       Duration(60 * time.Second),
			SpoolDir:      "./data/spool",
			SpoolMaxBytes: 10 << 30,
			RetentionDays: 30,
		},
		Database: Database{Path: "./data/vigil.db"},
		Auth:     Auth{SessionTTL: Duration(12 * time.Hour), SessionMaxAge: Duration(30 * 24 * time.Hour)},
		Log:      Log{Level: "info", Format: "text"},
		Alerts:   Alerts{OfflineAfter: Duration(30 * time.Second)},
		GB28181:  GB28181{Listen: ":5060", ID: "44011300002000000001", Realm: "4401130000", MediaPort: 10000},
		Cluster:  Cluster{LeaseTTL: Duration(10 * time.Second)},
	}
}

// Load builds the configuration: defaults, then the file (when path is not
// empty), then the environment (environ as from os.Environ), then Validate.
func Load(path string, environ []string) (Config, error) {
	cfg := Default()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("config: %w", err)
		}
		if err := Parse(data, &cfg); err != nil {
			return cfg, err
		}
	}
	if err := ApplyEnv(&cfg, environ); err != nil {
		return cfg, err
	}
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// Parse decodes YAML into cfg strictly: an unknown key is an error. Errors
// name the key path ("recording.segment") and the line.
func Parse(data []byte, cfg *Config) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("config: %s", oneLine(strings.TrimPrefix(err.Error(), "yaml: ")))
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil // empty file
	}
	return decodeNode(doc.Content[0], reflect.ValueOf(cfg).Elem(), "")
}

func decodeNode(n *yaml.Node, v reflect.Value, path string) error {
	if v.Kind() != reflect.Struct || v.Type() == reflect.TypeOf(ICEServer{}) {
		if err := n.Decode(v.Addr().Interface()); err != nil {
			return fmt.Errorf("config: %s: %s (line %d)", path, oneLine(strings.TrimPrefix(err.Error(), "yaml: ")), n.Line)
		}
		return nil
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		where := path
		if where == "" {
			where = "top level"
		}
		return fmt.Errorf("config: %s: expected a mapping of keys (line %d)", where, n.Line)
	}
	t := v.Type()
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		full := key.Value
		if path != "" {
			full = path + "." + key.Value
		}
		idx := -1
		for f := 0; f < t.NumField(); f++ {
			if strings.Split(t.Field(f).Tag.Get("yaml"), ",")[0] == key.Value {
				idx = f
				break
			}
		}
		if idx < 0 {
			return fmt.Errorf("config: %s: unknown key (line %d)", full, key.Line)
		}
		if err := decodeNode(val, v.Field(idx), full); err != nil {
			return err
		}
	}
	return nil
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// nonConfigEnv are the VIGIL_ variables that are not configuration keys:
// read by commands (passwords, the secret key) or by tests and benchmarks.
// Names ending in "_" are prefixes.
var nonConfigEnv = []string{
	"VIGIL_ADMIN_PASSWORD", "VIGIL_USER_PASSWORD", "VIGIL_SECRET_KEY",
	"VIGIL_REQUIRE_", "VIGIL_TEST_", "VIGIL_VERSITYGW", "VIGIL_CHROMIUM", "VIGIL_SOAK",
	"VIGIL_RECORDER_HELPER_DIR", "VIGIL_RELAY_LOAD_", "VIGIL_RELAY_BENCH_",
}

func nonConfig(name string) bool {
	for _, n := range nonConfigEnv {
		if name == n || strings.HasSuffix(n, "_") && strings.HasPrefix(name, n) {
			return true
		}
	}
	return false
}

// ApplyEnv overrides keys from VIGIL_<PATH> variables, for example
// VIGIL_STORAGE_S3_SECRETKEY or VIGIL_HTTP_LISTEN. Lists are comma-separated.
// A VIGIL_ variable that names no key (a misspelling) is an error, as an
// unknown YAML key is, except the few that are not configuration
// (nonConfigEnv).
func ApplyEnv(cfg *Config, environ []string) error {
	env := map[string]string{}
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if ok && strings.HasPrefix(k, "VIGIL_") {
			env[k] = v
		}
	}
	known := map[string]bool{}
	if err := applyEnv(reflect.ValueOf(cfg).Elem(), "VIGIL", "", env, known); err != nil {
		return err
	}
	// the upper platforms are a list: their password by index
	for i := range cfg.GB28181.Upstream {
		name := fmt.Sprintf("VIGIL_GB28181_UPSTREAM_%d_PASSWORD", i)
		known[name] = true
		if v, ok := env[name]; ok {
			cfg.GB28181.Upstream[i].Password = v
		}
	}
	// the webhooks are a list: their url and secret by index
	for i := range cfg.Alerts.Webhooks {
		w := &cfg.Alerts.Webhooks[i]
		for _, f := range []struct {
			name string
			dst  *string
		}{{fmt.Sprintf("VIGIL_ALERTS_WEBHOOKS_%d_URL", i), &w.URL}, {fmt.Sprintf("VIGIL_ALERTS_WEBHOOKS_%d_SECRET", i), &w.Secret}} {
			known[f.name] = true
			if v, ok := env[f.name]; ok {
				*f.dst = v
			}
		}
	}
	var unknown []string
	for k := range env {
		if !known[k] && !nonConfig(k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	for i, k := range unknown {
		if near := nearest(k, known); near != "" {
			unknown[i] += " (did you mean " + near + "?)"
		}
	}
	return fmt.Errorf("config: environment variable names no configuration key: %s", strings.Join(unknown, ", "))
}

// nearest is the known name within two edits of name, or "".
func nearest(name string, known map[string]bool) string {
	best, bestD := "", 3
	for k := range known {
		if d := editDistance(name, k); d < bestD || d == bestD && k < best {
			best, bestD = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func applyEnv(v reflect.Value, prefix, keyPath string, env map[string]string, known map[string]bool) error {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if tag == "" || tag == "-" {
			continue
		}
		name := prefix + "_" + strings.ToUpper(tag)
		key := tag
		if keyPath != "" {
			key = keyPath + "." + tag
		}
		fv := v.Field(i)
		if fv.Kind() == reflect.Struct && fv.Type() != reflect.TypeOf(Duration(0)) {
			if err := applyEnv(fv, name, key, env, known); err != nil {
				return err
			}
			continue
		}
		known[name] = true
		raw, ok := env[name]
		if !ok {
			continue
		}
		if err := setFromString(fv, raw); err != nil {
			return fmt.Errorf("config: %s (from %s): %w", key, name, err)
		}
	}
	return nil
}

func setFromString(fv reflect.Value, raw string) error {
	switch p := fv.Addr().Interface().(type) {
	case *Duration:
		return p.parse(raw)
	case *Bytes:
		return p.parse(raw)
	case *[]string:
		*p = nil
		for _, s := range strings.Split(raw, ",") {
			if s = strings.TrimSpace(s); s != "" {
				*p = append(*p, s)
			}
		}
		return nil
	case *[]ICEServer:
		*p = nil
		for _, s := range strings.Split(raw, ",") {
			if s = strings.TrimSpace(s); s != "" {
				*p = append(*p, ICEServer{URLs: []string{s}})
			}
		}
		return nil
	}
	switch fv.Kind() {
	case reflect.String:
		fv.SetString(raw)
	case reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return fmt.Errorf("%q is not true or false", raw)
		}
		fv.SetBool(b)
	case reflect.Int:
		n, err := strconv.Atoi(raw)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", raw)
		}
		fv.SetInt(int64(n))
	default:
		return fmt.Errorf("cannot be set from the environment")
	}
	return nil
}

// checkBucket returns "" for a valid S3 bucket name, or what is wrong with
// it (the S3 naming rules: an invalid name would be refused by the server
// at every upload, and recordings would spool until the disk is full).
func checkBucket(b string) string {
	switch {
	case len(b) < 3 || len(b) > 63:
		return "must have 3 to 63 characters"
	case strings.Trim(b, "abcdefghijklmnopqrstuvwxyz0123456789.-") != "":
		return "may hold only lower-case letters, digits, '.' and '-'"
	case !isAlnum(b[0]) || !isAlnum(b[len(b)-1]):
		return "must begin and end with a letter or digit"
	case strings.Contains(b, ".."), strings.Contains(b, ".-"), strings.Contains(b, "-."):
		return "may not have '..', '.-' or '-.'"
	case net.ParseIP(b) != nil:
		return "may not be an IP address"
	case strings.HasPrefix(b, "xn--"), strings.HasPrefix(b, "sthree-"),
		strings.HasSuffix(b, "-s3alias"), strings.HasSuffix(b, "--ol-s3"):
		return "uses a prefix or suffix that S3 reserves (xn--, sthree-, -s3alias, --ol-s3)"
	}
	return ""
}

func isAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

// Validate checks every key; the error names the key and what is wrong.
func (c *Config) Validate() error {
	fail := func(key, format string, a ...any) error {
		return fmt.Errorf("config: %s: %s", key, fmt.Sprintf(format, a...))
	}
	if _, _, err := net.SplitHostPort(c.HTTP.Listen); err != nil {
		return fail("http.listen", "%q is not host:port (e.g. \":8080\")", c.HTTP.Listen)
	}
	if (c.HTTP.TLS.Cert == "") != (c.HTTP.TLS.Key == "") {
		return fail("http.tls", "cert and key must be given together")
	}
	for _, p := range c.HTTP.TrustedProxies {
		if _, err := parseProxy(p); err != nil {
			return fail("http.trustedProxies", "%q is not an IP address or CIDR network", p)
		}
	}
	if err := checkMapTiles(c.UI.MapTiles); err != nil {
		return fail("ui.mapTiles", "%v", err)
	}
	if c.WebRTC.UDPPort < 0 || c.WebRTC.UDPPort > 65535 {
		return fail("webrtc.udpPort", "%d is not a port number (0-65535)", c.WebRTC.UDPPort)
	}
	if c.WebRTC.SubLinger < 0 {
		return fail("webrtc.subLinger", "must not be negative (0s pulls every sub-stream all the time)")
	}
	for _, ip := range c.WebRTC.PublicIPs {
		if net.ParseIP(ip) == nil {
			return fail("webrtc.publicIPs", "%q is not an IP address", ip)
		}
	}
	for i, s := range c.WebRTC.ICEServers {
		if err := s.Relay().Validate(); err != nil {
			return fail("webrtc.iceServers", "server %d: %v", i, err)
		}
	}
	switch c.Storage.Backend {
	case "local":
		if c.Storage.Local.Dir == "" {
			return fail("storage.local.dir", "is empty")
		}
	case "s3":
		if c.Storage.S3.Endpoint == "" {
			return fail("storage.s3.endpoint", "is empty (host:port of the S3 server)")
		}
		if strings.Contains(c.Storage.S3.Endpoint, "://") {
			return fail("storage.s3.endpoint", "%q must be host:port without a scheme (use storage.s3.tls)", c.Storage.S3.Endpoint)
		}
		if c.Storage.S3.Bucket == "" {
			return fail("storage.s3.bucket", "is empty")
		}
		if msg := checkBucket(c.Storage.S3.Bucket); msg != "" {
			return fail("storage.s3.bucket", "%q %s", c.Storage.S3.Bucket, msg)
		}
		if (c.Storage.S3.AccessKey == "") != (c.Storage.S3.SecretKey == "") {
			return fail("storage.s3.secretKey", "accessKey and secretKey must be given together")
		}
	default:
		return fail("storage.backend", "%q is not local or s3", c.Storage.Backend)
	}
	if d := c.Recording.Segment.D(); d < 2*time.Second || d > time.Hour {
		return fail("recording.segment", "%s is outside 2s..1h", d)
	}
	if c.Recording.SpoolDir == "" {
		return fail("recording.spoolDir", "is empty")
	}
	if c.Recording.SpoolMaxBytes < 1<<20 {
		return fail("recording.spoolMaxBytes", "%d bytes is less than 1MiB", c.Recording.SpoolMaxBytes)
	}
	if c.Recording.RetentionDays < 1 || c.Recording.RetentionDays > 3650 {
		return fail("recording.retentionDays", "%d is outside 1..3650", c.Recording.RetentionDays)
	}
	if c.Recording.MaxBytesPerCamera < 0 {
		return fail("recording.maxBytesPerCamera", "is negative")
	}
	if c.Database.Path == "" {
		return fail("database.path", "is empty")
	}
	if u := c.Database.URL; u != "" {
		if !strings.HasPrefix(u, "postgres://") && !strings.HasPrefix(u, "postgresql://") {
			return fail("database.url", "must be a postgres:// URL")
		}
		if c.Storage.Backend != "s3" {
			return fail("storage.backend", "is %q, but a cluster (database.url set) keeps its recordings in one S3 bucket that every node reads: set storage.backend: s3", c.Storage.Backend)
		}
		if d := c.Cluster.LeaseTTL.D(); d < time.Second || d > 10*time.Minute {
			return fail("cluster.leaseTTL", "%s is outside 1s..10m", d)
		}
		if a := c.Cluster.Advertise; a != "" && !strings.HasPrefix(a, "http://") && !strings.HasPrefix(a, "https://") {
			return fail("cluster.advertise", "%q is not an http:// or https:// URL", a)
		}
	}
	if d := c.Auth.SessionTTL.D(); d < time.Minute || d > 90*24*time.Hour {
		return fail("auth.sessionTTL", "%s is outside 1m..2160h", d)
	}
	if d := c.Auth.SessionMaxAge.D(); d < c.Auth.SessionTTL.D() || d > 366*24*time.Hour {
		return fail("auth.sessionMaxAge", "%s is outside auth.sessionTTL (%s)..8784h", d, c.Auth.SessionTTL.D())
	}
	if d := c.Alerts.OfflineAfter.D(); d < time.Second || d > 24*time.Hour {
		return fail("alerts.offlineAfter", "%s is outside 1s..24h", d)
	}
	for i, w := range c.Alerts.Webhooks {
		if err := alerts.ValidateWebhook(alerts.Webhook{URL: w.URL, Events: w.Events}); err != nil {
			return fail(fmt.Sprintf("alerts.webhooks[%d]", i), "%v", err)
		}
	}
	if err := c.GB28181.validate(fail); err != nil {
		return err
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return fail("log.level", "%q is not debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		return fail("log.format", "%q is not text or json", c.Log.Format)
	}
	return nil
}

func (g GB28181) validate(fail func(key, format string, a ...any) error) error {
	if _, _, err := net.SplitHostPort(g.Listen); err != nil {
		return fail("gb28181.listen", "%q is not host:port (e.g. \":5060\")", g.Listen)
	}
	if !digits(g.ID, 20) {
		return fail("gb28181.id", "%q is not 20 digits", g.ID)
	}
	if !digits(g.Realm, 10) {
		return fail("gb28181.realm", "%q is not 10 digits", g.Realm)
	}
	if g.MediaPort < 0 || g.MediaPort > 65535 {
		return fail("gb28181.mediaPort", "%d is not a port number (0-65535)", g.MediaPort)
	}
	if g.MediaIP != "" && net.ParseIP(g.MediaIP) == nil {
		return fail("gb28181.mediaIP", "%q is not an IP address", g.MediaIP)
	}
	seen := map[string]bool{}
	for i, u := range g.Upstream {
		key := fmt.Sprintf("gb28181.upstream[%d]", i)
		switch {
		case !digits(u.ID, 20):
			return fail(key+".id", "%q is not 20 digits", u.ID)
		case seen[u.ID]:
			return fail(key+".id", "%q is listed twice", u.ID)
		case !digits(u.Realm, 10):
			return fail(key+".realm", "%q is not 10 digits", u.Realm)
		case u.LocalID != "" && !digits(u.LocalID, 20):
			return fail(key+".localId", "%q is not 20 digits", u.LocalID)
		case u.Transport != "" && u.Transport != "udp" && u.Transport != "tcp":
			return fail(key+".transport", "%q is not udp or tcp", u.Transport)
		case u.Expires != 0 && (u.Expires < 60 || u.Expires > 86400):
			return fail(key+".expires", "%d is outside 60..86400 seconds", u.Expires)
		case u.Keepalive != 0 && (u.Keepalive.D() < time.Second || u.Keepalive.D() > time.Hour):
			return fail(key+".keepalive", "%s is outside 1s..1h", u.Keepalive.D())
		}
		if h, p, err := net.SplitHostPort(u.Address); err != nil || h == "" || p == "" {
			return fail(key+".address", "%q is not host:port (e.g. \"10.0.0.1:5060\")", u.Address)
		}
		seen[u.ID] = true
	}
	return nil
}

// digits reports whether s is n decimal digits.
func digits(s string, n int) bool {
	return len(s) == n && strings.Trim(s, "0123456789") == ""
}

// Duration is a time.Duration written as a Go duration ("60s", "12h") or as seconds.
type Duration time.Duration

// D returns the duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d *Duration) parse(s string) error {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		*d = Duration(n * float64(time.Second))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration (e.g. 60s, 12h)", s)
	}
	*d = Duration(v)
	return nil
}

// UnmarshalYAML parses a duration.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error { return d.parse(n.Value) }

// MarshalYAML writes a Go duration.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// Bytes is a size written as a number of bytes or with a unit (10GiB, 500MB).
type Bytes int64

var units = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40}, {"B", 1},
}

func (b *Bytes) parse(s string) error {
	s = strings.TrimSpace(s)
	mult := int64(1)
	num := s
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			mult = u.mult
			num = strings.TrimSpace(strings.TrimSuffix(s, u.suffix))
			break
		}
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 {
		return fmt.Errorf("%q is not a size (e.g. 10GiB, 500MB)", s)
	}
	*b = Bytes(f * float64(mult))
	return nil
}

// UnmarshalYAML parses a size.
func (b *Bytes) UnmarshalYAML(n *yaml.Node) error { return b.parse(n.Value) }
