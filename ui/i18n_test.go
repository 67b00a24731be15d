package ui

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"unicode"

	"github.com/vigil-vms/vigil/dispatch"
	"github.com/vigil-vms/vigil/ingest"
)

// i18nCases are bad requests whose answers must carry a code and, under
// Accept-Language: zh-CN, a Chinese text (issue 13).
var i18nCases = []struct {
	name string
	r    req
}{
	{"malformed json", req{method: "POST", path: "/api/v1/cameras", ctype: "application/json", body: `{"id":`}},
	{"empty body", req{method: "POST", path: "/api/v1/cameras", ctype: "application/json"}},
	{"two values", req{method: "POST", path: "/api/v1/cameras", ctype: "application/json", body: `{"id":"a"} {"id":"b"}`}},
	{"unknown field", req{method: "POST", path: "/api/v1/cameras", ctype: "application/json",
		body: `{"id":"x-1","name":"x","department":"police","mainUrl":"rtsp://h/x","colour":"red"}`}},
	{"wrong type", req{method: "POST", path: "/api/v1/cameras", ctype: "application/json",
		body: `{"id":"x-1","name":"x","department":"police","mainUrl":"rtsp://h/x","retentionDays":"30"}`}},
	{"form content type", req{method: "POST", path: "/api/v1/cameras", ctype: "application/x-www-form-urlencoded", body: `id=x`}},
	{"oversized json", req{method: "POST", path: "/api/v1/cameras", ctype: "application/json",
		body: `{"id":"big","name":"` + strings.Repeat("x", 1<<20) + `"}`}},
	{"bad stream", req{method: "POST", path: "/api/v1/cameras/police-1/whep?stream=hd", ctype: "application/sdp", body: "v=0"}},
	{"http url", req{method: "POST", path: "/api/v1/cameras", ctype: "application/json",
		body: `{"id":"x-2","name":"x","department":"police","mainUrl":"http://h/x"}`}},
	{"invalid camera", req{method: "POST", path: "/api/v1/cameras", ctype: "application/json",
		body: `{"id":"X 2","name":"","department":"nowhere","mainUrl":"rtsp://h:99999/x","transport":"sctp","location":{"lat":91},"tags":["a;b","a;b"]}`}},
	{"duplicate id", req{method: "POST", path: "/api/v1/cameras", ctype: "application/json",
		body: `{"id":"police-1","name":"x","department":"police","mainUrl":"rtsp://h/x"}`}},
	{"rename in put", req{method: "PUT", path: "/api/v1/cameras/police-1", ctype: "application/json",
		body: `{"id":"police-9","name":"x","department":"police","mainUrl":"rtsp://h/x"}`}},
	{"csv bad rows", req{method: "POST", path: "/api/v1/cameras/import", ctype: "text/csv",
		body: "id,name,department,mainUrl,lat,record\nok-1,One,police,rtsp://h/1,north,maybe\nBAD,Two,police,rtsp://h/2,,\nok-3,,nowhere,ftp://h/3,,\npolice-1,Dup,police,rtsp://h/4,,\n"}},
	{"csv malformed", req{method: "POST", path: "/api/v1/cameras/import", ctype: "text/csv", body: "id,name,department,mainUrl\n\"unterminated,x,police,rtsp://h/1\n"}},
	{"csv unknown column", req{method: "POST", path: "/api/v1/cameras/import", ctype: "text/csv", body: "id,name,department,mainUrl,secret\n"}},
	{"csv empty", req{method: "POST", path: "/api/v1/cameras/import", ctype: "text/csv", body: "id,name,department,mainUrl\n"}},
	{"csv as json", req{method: "POST", path: "/api/v1/cameras/import", ctype: "application/json", body: "[]"}},
	{"duplicate user", req{method: "POST", path: "/api/v1/users", ctype: "application/json",
		body: `{"username":"viewer","password":"long-enough-1","role":"viewer"}`}},
	{"short password", req{method: "POST", path: "/api/v1/users", ctype: "application/json",
		body: `{"username":"shorty","password":"short","role":"viewer"}`}},
	{"bad role", req{method: "POST", path: "/api/v1/users", ctype: "application/json",
		body: `{"username":"root","password":"long-enough-1","role":"root"}`}},
	{"bad username", req{method: "POST", path: "/api/v1/users", ctype: "application/json",
		body: `{"username":"<script>","password":"long-enough-1","role":"viewer"}`}},
	{"unknown user", req{method: "DELETE", path: "/api/v1/users/ghost"}},
	{"department with cameras", req{method: "DELETE", path: "/api/v1/departments/police"}},
	{"last admin", req{method: "DELETE", path: "/api/v1/users/admin"}},
	{"bad time", req{method: "GET", path: "/api/v1/cameras/police-1/recordings?start=yesterday&end=2026-11-26T10:00:00Z"}},
	{"missing time", req{method: "GET", path: "/api/v1/cameras/police-1/export?start=2026-11-26T08:00:00Z"}},
	{"bad duration", req{method: "GET", path: "/api/v1/cameras/police-1/playback?start=2026-11-26T08:10:00Z&duration=soon"}},
	{"unknown camera", req{method: "GET", path: "/api/v1/cameras/ghost"}},
	{"incident unknown camera", req{method: "POST", path: "/api/v1/incidents", ctype: "application/json",
		body: `{"title":"x","cameras":["ghost"],"start":"2026-11-26T08:00:00Z","end":"2026-11-26T08:05:00Z"}`}},
	{"incident backwards", req{method: "POST", path: "/api/v1/incidents", ctype: "application/json",
		body: `{"title":"x","cameras":["police-1"],"start":"2026-11-26T08:00:00Z","end":"2026-11-26T07:05:00Z"}`}},
	{"unknown endpoint", req{method: "GET", path: "/api/v1/nothing"}},
	{"audit limit", req{method: "GET", path: "/api/v1/audit?limit=-1"}},
	{"no login", req{method: "GET", path: "/api/v1/cameras", who: "-"}},
	{"bad bearer", req{method: "GET", path: "/api/v1/cameras", who: "-", header: map[string]string{"Authorization": "Basic x"}}},
	{"unknown token", req{method: "GET", path: "/api/v1/cameras", who: "-", header: map[string]string{"Authorization": "Bearer nope"}}},
	{"wrong password", req{method: "POST", path: "/api/v1/session", who: "-", ctype: "application/json", body: `{"username":"admin","password":"wrong-password"}`}},
}

type i18nBody struct {
	Error  string `json:"error"`
	Code   string `json:"code"`
	Errors []struct {
		Row     int    `json:"row"`
		Field   string `json:"field"`
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"errors"`
}

// englishRE finds an untranslated English phrase: four words in a row.
var englishRE = regexp.MustCompile(`[A-Za-z]{2,}( [A-Za-z]{2,}){3,}`)

func hasHan(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return unicode.Is(unicode.Han, r) }) >= 0
}

func TestErrorsInChinese(t *testing.T) {
	f := newFixture(t, Options{})
	for _, tc := range i18nCases {
		t.Run(tc.name, func(t *testing.T) {
			answer := func(lang string) (int, i18nBody) {
				r := tc.r
				if r.who == "" {
					r.who = pAdmin
				}
				r.header = map[string]string{}
				for k, v := range tc.r.header {
					r.header[k] = v
				}
				if lang != "" {
					r.header["Accept-Language"] = lang
				}
				rec := f.do(r)
				var b i18nBody
				if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
					t.Fatalf("%d, not JSON: %s", rec.Code, truncate(rec.Body.String(), 200))
				}
				return rec.Code, b
			}
			status, zh := answer("zh-CN,zh;q=0.9,en;q=0.8")
			if status < 400 || status >= 500 {
				t.Fatalf("status %d: %+v", status, zh)
			}
			if zh.Code == "" || !hasHan(zh.Error) || englishRE.MatchString(zh.Error) {
				t.Errorf("zh-CN: code %q, error %q", zh.Code, zh.Error)
			}
			for _, fe := range zh.Errors {
				if fe.Code == "" || !hasHan(fe.Message) || englishRE.MatchString(fe.Message) {
					t.Errorf("zh-CN: row %d %s: code %q, message %q", fe.Row, fe.Field, fe.Code, fe.Message)
				}
			}
			enStatus, en := answer("en-US")
			if enStatus != status || en.Code != zh.Code || len(en.Errors) != len(zh.Errors) {
				t.Fatalf("en %d %+v, zh-CN %d %+v", enStatus, en, status, zh)
			}
			if hasHan(en.Error) {
				t.Errorf("en: error %q", en.Error)
			}
			for i, fe := range en.Errors {
				if fe.Code != zh.Errors[i].Code || hasHan(fe.Message) {
					t.Errorf("en: row %d %s: code %q (zh-CN %q), message %q", fe.Row, fe.Field, fe.Code, zh.Errors[i].Code, fe.Message)
				}
			}
			t.Logf("%d %s: %s", status, zh.Code, zh.Error)
		})
	}
}

func TestErrorCodesStable(t *testing.T) {
	f := newFixture(t, Options{})
	for _, tc := range []struct {
		r     req
		code  string
		field string // code of the first field error, if any
	}{
		{req{method: "POST", path: "/api/v1/cameras", ctype: "application/json",
			body: `{"id":"x-2","name":"x","department":"police","mainUrl":"http://h/x"}`}, "camera.invalid_url", "camera.invalid_url"},
		{req{method: "POST", path: "/api/v1/cameras", ctype: "application/json",
			body: `{"id":"x-2","name":"","department":"police","mainUrl":"rtsp://h/x"}`}, "field.empty", "field.empty"},
		{req{method: "GET", path: "/api/v1/cameras/ghost"}, "camera.not_exist", ""},
		{req{method: "POST", path: "/api/v1/cameras", ctype: "text/plain", body: "x"}, "request.json_media_type", ""},
		{req{method: "DELETE", path: "/api/v1/users/admin"}, "user.last_admin", ""},
	} {
		tc.r.who = pAdmin
		tc.r.header = map[string]string{"Accept-Language": "zh-CN"}
		rec := f.do(tc.r)
		var b i18nBody
		if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil || rec.Code == http.StatusOK {
			t.Fatalf("%s %s: %d %s", tc.r.method, tc.r.path, rec.Code, rec.Body)
		}
		if b.Code != tc.code || (tc.field != "" && (len(b.Errors) == 0 || b.Errors[0].Code != tc.field)) {
			t.Errorf("%s %s: %+v, want code %s, field code %s", tc.r.method, tc.r.path, b, tc.code, tc.field)
		}
	}
}

// Test connection words the camera's error in the caller's language,
// the cause (from the network) as it is.
func TestTestConnectionInChinese(t *testing.T) {
	f := newFixture(t, Options{})
	f.srv.deps.Probe = func(ctx context.Context, rawURL, transport string) (ingest.ProbeResult, error) {
		return ingest.ProbeResult{}, &ingest.PullError{Kind: ingest.ErrNotFound,
			Msg: "the camera has no stream at this URL path (RTSP 404 Not Found)", Err: errors.New("bad status code: 404")}
	}
	rec := f.do(req{method: "POST", path: "/api/v1/cameras/test", ctype: "application/json", who: pAdmin,
		header: map[string]string{"Accept-Language": "zh-CN"}, body: `{"mainUrl":"rtsp://127.0.0.1:1/nothing"}`})
	var b i18nBody
	if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
		t.Fatal(err)
	}
	want := "摄像机未按预期应答：摄像机在此 URL 路径上没有码流（RTSP 404 Not Found）（bad status code: 404）"
	if rec.Code != http.StatusBadGateway || b.Code != "camera.test_failed" || b.Error != want {
		t.Fatalf("%d %+v, want 502 camera.test_failed %q", rec.Code, b, want)
	}
}

// statusCameras is a Cameras whose every camera failed with one error.
type statusCameras struct{ Cameras }

func (statusCameras) Status(c ingest.Camera) dispatch.Status {
	const msg = "the camera refused the user name or password (RTSP 401 Unauthorized)"
	return dispatch.Status{Status: ingest.Status{ID: c.ID,
		StreamStatus: ingest.StreamStatus{State: ingest.StateOffline, LastError: msg},
		Sub:          &ingest.StreamStatus{State: ingest.StateOffline, LastError: "the camera has no stream at this URL path (RTSP 404 Not Found) (bad status code: 404)"}}}
}

// The camera list and the tiles show a camera's error in the caller's
// language.
func TestStatusErrorsInChinese(t *testing.T) {
	f := newFixture(t, Options{})
	f.srv.deps.Cameras = statusCameras{f.srv.deps.Cameras}
	for _, path := range []string{"/api/v1/status", "/api/v1/cameras/police-1/status"} {
		for lang, want := range map[string][2]string{
			"zh-CN": {"摄像机拒绝了用户名或密码（RTSP 401 Unauthorized）", "摄像机在此 URL 路径上没有码流（RTSP 404 Not Found）（bad status code: 404）"},
			"en":    {"the camera refused the user name or password (RTSP 401 Unauthorized)", "the camera has no stream at this URL path (RTSP 404 Not Found) (bad status code: 404)"},
		} {
			rec := f.do(req{method: "GET", path: path, who: pAdmin, header: map[string]string{"Accept-Language": lang}})
			body := rec.Body.Bytes()
			if strings.HasSuffix(path, "/api/v1/status") {
				var all []dispatch.Status
				if err := json.Unmarshal(body, &all); err != nil || len(all) == 0 {
					t.Fatalf("%s: %v %s", path, err, body)
				}
				body, _ = json.Marshal(all[0])
			}
			var st dispatch.Status
			if err := json.Unmarshal(body, &st); err != nil || st.Sub == nil {
				t.Fatalf("%s: %v %s", path, err, body)
			}
			if st.LastError != want[0] || st.Sub.LastError != want[1] {
				t.Errorf("%s in %s: %q, sub %q", path, lang, st.LastError, st.Sub.LastError)
			}
		}
	}
}
