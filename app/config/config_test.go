package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDefaultsValidate(t *testing.T) {
	cfg := Default()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
}

func TestExampleConfigsLoad(t *testing.T) {
	files, _ := filepath.Glob("../../configs/*.yaml")
	if len(files) == 0 {
		t.Fatal("no example configs in configs/")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			// the S3 example needs its secrets from the environment
			env := []string{"VIGIL_STORAGE_S3_ACCESSKEY=a", "VIGIL_STORAGE_S3_SECRETKEY=b"}
			if _, err := Load(f, env); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// The commented example with every key must equal the built-in defaults.
func TestExampleEqualsDefaults(t *testing.T) {
	cfg, err := Load("../../configs/vigil.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	def := Default()
	if cfg.HTTP.Listen != def.HTTP.Listen || cfg.Recording != def.Recording || cfg.Storage != def.Storage ||
		cfg.Database != def.Database || cfg.Auth != def.Auth || cfg.WebRTC.UDPPort != def.WebRTC.UDPPort {
		t.Fatalf("configs/vigil.yaml differs from the defaults:\n%+v\n%+v", cfg, def)
	}
}

var badConfigs = []struct {
	name, yaml string
	env        []string
	wantKey    string
}{
	{"unknown key", "http: { listn: ':8080' }", nil, "listn"},
	{"unknown section", "bogus: 1", nil, "bogus"},
	{"listen", "http: { listen: 'nope' }", nil, "http.listen"},
	{"tls half", "http: { tls: { cert: a.pem } }", nil, "http.tls"},
	{"udp port", "webrtc: { udpPort: 70000 }", nil, "webrtc.udpPort"},
	{"public ip", "webrtc: { publicIPs: [not-an-ip] }", nil, "webrtc.publicIPs"},
	{"ice url", "webrtc: { iceServers: ['http://x'] }", nil, "webrtc.iceServers"},
	// the relay's rule: a TURN server needs credentials, a URL needs a host
	{"turn without credentials", "webrtc: { iceServers: ['turn:turn.example.org:3478'] }", nil, "webrtc.iceServers"},
	{"stun without host", "webrtc: { iceServers: ['stun:'] }", nil, "webrtc.iceServers"},
	{"backend", "storage: { backend: ftp }", nil, "storage.backend"},
	{"s3 endpoint", "storage: { backend: s3 }", nil, "storage.s3.endpoint"},
	{"s3 scheme", "storage: { backend: s3, s3: { endpoint: 'http://x:9000' } }", nil, "storage.s3.endpoint"},
	{"s3 half keys", "storage: { backend: s3, s3: { endpoint: 'x:9000', accessKey: a } }", nil, "storage.s3.secretKey"},
	{"segment short", "recording: { segment: 1s }", nil, "recording.segment"},
	{"segment garbage", "recording: { segment: soon }", nil, "segment"},
	{"spool size", "recording: { spoolMaxBytes: 10 }", nil, "recording.spoolMaxBytes"},
	{"spool garbage", "recording: { spoolMaxBytes: lots }", nil, "spoolMaxBytes"},
	{"retention", "recording: { retentionDays: 0 }", nil, "recording.retentionDays"},
	{"db", "database: { path: '' }", nil, "database.path"},
	{"ttl", "auth: { sessionTTL: 5s }", nil, "auth.sessionTTL"},
	{"max age below ttl", "auth: { sessionTTL: 2h, sessionMaxAge: 1h }", nil, "auth.sessionMaxAge"},
	{"max age too long", "auth: { sessionMaxAge: 9000h }", nil, "auth.sessionMaxAge"},
	{"env int", "", []string{"VIGIL_WEBRTC_UDPPORT=abc"}, "webrtc.udpPort"},
	{"env bool", "", []string{"VIGIL_STORAGE_S3_TLS=maybe"}, "storage.s3.tls"},
	{"env duration", "", []string{"VIGIL_RECORDING_SEGMENT=x"}, "recording.segment"},
	{"log level", "log: { level: loud }", nil, "log.level"},
	{"trusted proxy", "http: { trustedProxies: [10.0.0.0/33] }", nil, "http.trustedProxies"},
	{"trusted proxy env", "", []string{"VIGIL_HTTP_TRUSTEDPROXIES=proxy.local"}, "http.trustedProxies"},
	{"env misspelt", "", []string{"VIGIL_HTTP_LISTN=:9090"}, "VIGIL_HTTP_LISTN"},
	{"env unknown section", "", []string{"VIGIL_STORAGE_S3_SECRET=x"}, "VIGIL_STORAGE_S3_SECRET"},
	{"env a section", "", []string{"VIGIL_HTTP=x"}, "VIGIL_HTTP"},
	{"bucket upper", "storage: { backend: s3, s3: { endpoint: 'x:9000', bucket: Vigil } }", nil, "storage.s3.bucket"},
	{"bucket short", "storage: { backend: s3, s3: { endpoint: 'x:9000', bucket: ab } }", nil, "storage.s3.bucket"},
	{"bucket long", "storage: { backend: s3, s3: { endpoint: 'x:9000', bucket: " + strings.Repeat("a", 64) + " } }", nil, "storage.s3.bucket"},
	{"bucket underscore", "storage: { backend: s3, s3: { endpoint: 'x:9000', bucket: my_bucket } }", nil, "storage.s3.bucket"},
	{"bucket dots", "storage: { backend: s3, s3: { endpoint: 'x:9000', bucket: my..bucket } }", nil, "storage.s3.bucket"},
	{"bucket edge", "storage: { backend: s3, s3: { endpoint: 'x:9000', bucket: -vigil } }", nil, "storage.s3.bucket"},
	{"bucket ip", "storage: { backend: s3, s3: { endpoint: 'x:9000', bucket: 192.168.1.2 } }", nil, "storage.s3.bucket"},
	{"bucket xn", "storage: { backend: s3, s3: { endpoint: 'x:9000', bucket: xn--vigil } }", nil, "storage.s3.bucket"},
	{"bucket env", "storage: { backend: s3, s3: { endpoint: 'x:9000' } }", []string{"VIGIL_STORAGE_S3_BUCKET=Bad Name"}, "storage.s3.bucket"},
	{"webhook ftp url", "alerts: { webhooks: [{ url: 'ftp://x/' }] }", nil, "alerts.webhooks[0]"},
	{"webhook no host", "alerts: { webhooks: [{ url: 'https:///x' }] }", nil, "alerts.webhooks[0]"},
	{"webhook empty url", "alerts: { webhooks: [{ secret: a }] }", nil, "alerts.webhooks[0]"},
	{"webhook unknown event", "alerts: { webhooks: [{ url: 'http://a/', events: [camera.gone] }] }", nil, "camera.gone"},
	{"webhook second bad", "alerts: { webhooks: [{ url: 'http://a/' }, { url: 'nope' }] }", nil, "alerts.webhooks[1]"},
	{"webhook unknown key", "alerts: { webhooks: [{ url: 'http://a/', secrets: x }] }", nil, "secrets"},
	{"offlineAfter zero", "alerts: { offlineAfter: 0s }", nil, "alerts.offlineAfter"},
	{"offlineAfter bad", "alerts: { offlineAfter: soon }", nil, "alerts.offlineAfter"},
	{"gb28181 id short", "gb28181: { id: '4401130000200000000' }", nil, "gb28181.id"},
	{"gb28181 id letters", "gb28181: { id: '4401130000200000000x' }", nil, "gb28181.id"},
	{"gb28181 realm", "gb28181: { realm: '440113' }", nil, "gb28181.realm"},
	{"gb28181 listen", "gb28181: { listen: '5060' }", nil, "gb28181.listen"},
	{"gb28181 mediaPort", "gb28181: { mediaPort: 70000 }", nil, "gb28181.mediaPort"},
	{"gb28181 mediaIP", "gb28181: { mediaIP: 'example.org' }", nil, "gb28181.mediaIP"},
	{"gb28181 unknown key", "gb28181: { upstreams: [] }", nil, "gb28181.upstreams"},
	{"upstream id", "gb28181: { upstream: [{ id: '4401', realm: '4401000000', address: '10.0.0.1:5060' }] }", nil, "gb28181.upstream[0].id"},
	{"upstream twice", "gb28181: { upstream: [{ id: '44010000002000000001', realm: '4401000000', address: '10.0.0.1:5060' }, { id: '44010000002000000001', realm: '4401000000', address: '10.0.0.1:5060' }] }", nil, "gb28181.upstream[1].id"},
	{"upstream realm", "gb28181: { upstream: [{ id: '44010000002000000001', realm: '44', address: '10.0.0.1:5060' }] }", nil, "gb28181.upstream[0].realm"},
	{"upstream address", "gb28181: { upstream: [{ id: '44010000002000000001', realm: '4401000000', address: '10.0.0.1' }] }", nil, "gb28181.upstream[0].address"},
	{"upstream transport", "gb28181: { upstream: [{ id: '44010000002000000001', realm: '4401000000', address: '10.0.0.1:5060', transport: sctp }] }", nil, "gb28181.upstream[0].transport"},
	{"upstream localId", "gb28181: { upstream: [{ id: '44010000002000000001', realm: '4401000000', address: '10.0.0.1:5060', localId: '12' }] }", nil, "gb28181.upstream[0].localId"},
	{"upstream expires", "gb28181: { upstream: [{ id: '44010000002000000001', realm: '4401000000', address: '10.0.0.1:5060', expires: 5 }] }", nil, "gb28181.upstream[0].expires"},
	{"upstream keepalive", "gb28181: { upstream: [{ id: '44010000002000000001', realm: '4401000000', address: '10.0.0.1:5060', keepalive: 2h }] }", nil, "gb28181.upstream[0].keepalive"},
	{"upstream unknown key", "gb28181: { upstream: [{ id: '44010000002000000001', realm: '4401000000', address: '10.0.0.1:5060', department: [a] }] }", nil, "department"},
	{"map tiles without placeholders", "ui: { mapTiles: 'https://tiles.example.org/map.png' }", nil, "ui.mapTiles"},
	{"map tiles scheme", "ui: { mapTiles: 'ftp://tiles.example.org/{z}/{x}/{y}.png' }", nil, "ui.mapTiles"},
	{"map tiles env", "", []string{"VIGIL_UI_MAPTILES=tiles/{z}/{x}/{y}.png"}, "ui.mapTiles"},
}

func TestBadConfigs(t *testing.T) {
	for _, tc := range badConfigs {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "vigil.yaml")
			if err := os.WriteFile(path, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path, tc.env)
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.wantKey) || strings.Contains(msg, "\n") {
				t.Fatalf("error %q does not name %q on one line", msg, tc.wantKey)
			}
		})
	}
}

func TestEnvOverrides(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vigil.yaml")
	os.WriteFile(path, []byte("storage: { backend: s3, s3: { endpoint: 'x:9000', accessKey: fromfile } }\nrecording: { segment: 30s }\n"), 0o600)
	cfg, err := Load(path, []string{
		"VIGIL_STORAGE_S3_ACCESSKEY=fromenv", "VIGIL_STORAGE_S3_SECRETKEY=s3cret",
		"VIGIL_HTTP_LISTEN=127.0.0.1:9999", "VIGIL_RECORDING_SPOOLMAXBYTES=2GiB",
		"VIGIL_WEBRTC_PUBLICIPS=203.0.113.7, 203.0.113.8", "VIGIL_RECORDING_SEGMENT=90",
		"VIGIL_STORAGE_S3_TLS=false", "OTHER=1",
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Storage.S3.AccessKey != "fromenv" || cfg.Storage.S3.SecretKey != "s3cret" {
		t.Errorf("s3 keys: %+v", cfg.Storage.S3)
	}
	if cfg.HTTP.Listen != "127.0.0.1:9999" || cfg.Recording.SpoolMaxBytes != 2<<30 || cfg.Storage.S3.TLS {
		t.Errorf("overrides not applied: %+v", cfg)
	}
	if len(cfg.WebRTC.PublicIPs) != 2 || cfg.WebRTC.PublicIPs[1] != "203.0.113.8" {
		t.Errorf("publicIPs: %v", cfg.WebRTC.PublicIPs)
	}
	if cfg.Recording.Segment.D() != 90*time.Second {
		t.Errorf("segment: %v", cfg.Recording.Segment.D())
	}
}

// Variables that are not configuration keys but that Vigil's commands and
// tests read are not refused; good bucket names pass.
func TestEnvAllowedAndBuckets(t *testing.T) {
	env := []string{"VIGIL_ADMIN_PASSWORD=x", "VIGIL_USER_PASSWORD=x", "VIGIL_SECRET_KEY=x",
		"VIGIL_REQUIRE_S3=1", "VIGIL_REQUIRE_BROWSER=1", "VIGIL_TEST_REQUIRE=1", "VIGIL_VERSITYGW=/x",
		"VIGIL_CHROMIUM=/x", "VIGIL_SOAK=1", "VIGIL_TEST_RUN_MAIN=1", "VIGIL_RECORDER_HELPER_DIR=/x",
		"VIGIL_RELAY_LOAD_URL=x", "VIGIL_RELAY_BENCH_PROFILE=x", "VIGILANT=1", "VIGIL_DATABASE_PATH=/x/v.db"}
	if _, err := Load("", env); err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"vigil", "abc", "my-bucket.2026", strings.Repeat("a", 63), "a1.b2-c3"} {
		cfg := Default()
		cfg.Storage.Backend, cfg.Storage.S3.Endpoint, cfg.Storage.S3.Bucket = "s3", "x:9000", b
		if err := cfg.Validate(); err != nil {
			t.Errorf("bucket %q: %v", b, err)
		}
	}
}

func TestTrustedProxies(t *testing.T) {
	cfg, err := Load("", []string{"VIGIL_HTTP_TRUSTEDPROXIES=10.0.0.0/8, 192.0.2.1, ::1"})
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(cfg.HTTP.Proxies())
	if got != "[10.0.0.0/8 192.0.2.1/32 ::1/128]" {
		t.Fatalf("proxies %s", got)
	}
}

func TestICEServerForms(t *testing.T) {
	var cfg = Default()
	err := Parse([]byte("webrtc: { iceServers: ['stun:stun.example.org:3478', {urls: ['turn:t.example.org'], username: u, credential: c}] }"), &cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.WebRTC.ICEServers) != 2 || cfg.WebRTC.ICEServers[1].Username != "u" {
		t.Fatalf("%+v", cfg.WebRTC.ICEServers)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}

func FuzzParse(f *testing.F) {
	for _, tc := range badConfigs {
		f.Add([]byte(tc.yaml))
	}
	f.Add([]byte("recording: { spoolMaxBytes: 10GiB, segment: 60s }"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := Default()
		if err := Parse(data, &cfg); err != nil {
			return
		}
		_ = cfg.Validate()
	})
}

func TestGB28181Upstream(t *testing.T) {
	yml := []byte("gb28181:\n  upstream:\n    - { id: '44010000002000000001', realm: '4401000000', address: '10.0.0.1:5060', keepalive: 30s, departments: [police] }\n")
	dir := t.TempDir()
	path := dir + "/vigil.yaml"
	if err := os.WriteFile(path, yml, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path, []string{"VIGIL_GB28181_UPSTREAM_0_PASSWORD=up"})
	if err != nil {
		t.Fatal(err)
	}
	u := cfg.GB28181.Upstream
	if len(u) != 1 || u[0].Password != "up" || u[0].Keepalive.D() != 30*time.Second || u[0].Departments[0] != "police" {
		t.Fatalf("upstream = %+v", u)
	}
	if _, err := Load(path, []string{"VIGIL_GB28181_UPSTREAM_1_PASSWORD=up"}); err == nil || !strings.Contains(err.Error(), "VIGIL_GB28181_UPSTREAM_1_PASSWORD") {
		t.Fatalf("password of a platform not listed: %v", err)
	}
}

func TestGB28181Env(t *testing.T) {
	cfg, err := Load("", []string{"VIGIL_GB28181_PASSWORD=devpass", "VIGIL_GB28181_ENABLED=true"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.GB28181.Password != "devpass" || !cfg.GB28181.Enabled || cfg.GB28181.Listen != ":5060" {
		t.Fatalf("gb28181 = %+v", cfg.GB28181)
	}
}

func TestMapTiles(t *testing.T) {
	for _, tiles := range []string{"", "/tiles/{z}/{x}/{y}.png", "https://tiles.example.org:8443/osm/{z}/{x}/{y}.png", "http://10.1.2.3/{z}/{x}/{y}.png"} {
		cfg := Default()
		cfg.UI.MapTiles = tiles
		if err := cfg.Validate(); err != nil {
			t.Errorf("%q: %v", tiles, err)
		}
	}
}
