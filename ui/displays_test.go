package ui

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/registry"
)

// A session slides while used: with a 1 s idle timeout, requests every
// 400 ms keep it past 1 s; left alone it ends.
func TestSessionSlidesWhileUsed(t *testing.T) {
	f := newFixture(t, Options{SessionTTL: time.Second, SessionMaxAge: time.Hour})
	ck, _ := f.login(pOperator, userPassword)
	if ck.MaxAge != int(time.Hour/time.Second) {
		t.Fatalf("cookie max age %d, want the cap", ck.MaxAge)
	}
	start := time.Now()
	for time.Since(start) < 2*time.Second {
		time.Sleep(300 * time.Millisecond)
		if rec := f.do(req{method: "GET", path: "/api/v1/session", cookie: ck}); rec.Code != http.StatusOK {
			t.Fatalf("after %s of use: %d %s", time.Since(start), rec.Code, rec.Body)
		}
	}
	time.Sleep(1100 * time.Millisecond)
	if rec := f.do(req{method: "GET", path: "/api/v1/session", cookie: ck}); rec.Code != http.StatusUnauthorized {
		t.Fatalf("idle session: %d", rec.Code)
	}
}

// A session ends at its cap however used.
func TestSessionEndsAtItsCap(t *testing.T) {
	f := newFixture(t, Options{SessionTTL: 400 * time.Millisecond, SessionMaxAge: 900 * time.Millisecond})
	ck, _ := f.login(pOperator, userPassword)
	start := time.Now()
	for {
		time.Sleep(100 * time.Millisecond)
		code := f.do(req{method: "GET", path: "/api/v1/session", cookie: ck}).Code
		el := time.Since(start)
		if el < 800*time.Millisecond && code != http.StatusOK {
			t.Fatalf("after %s: %d", el, code)
		}
		if el > time.Second {
			if code != http.StatusUnauthorized {
				t.Fatalf("after the cap, %s: %d", el, code)
			}
			return
		}
	}
}

func TestDisplayLoginLiveOnlyAndRevocable(t *testing.T) {
	f := newFixture(t, Options{SessionTTL: 100 * time.Millisecond, SessionMaxAge: 100 * time.Millisecond})
	// Only admins of every department manage displays.
	for _, who := range []string{pOperator, pScopedAdmin} {
		if rec := f.do(req{method: "POST", path: "/api/v1/displays", ctype: "application/json", who: who, body: `{"name":"x"}`}); rec.Code != http.StatusForbidden {
			t.Fatalf("%s creates a display: %d", who, rec.Code)
		}
	}
	if rec := f.do(req{method: "POST", path: "/api/v1/displays", ctype: "application/json", who: pAdmin, body: `{"name":"x","departments":["nope"]}`}); rec.Code != http.StatusBadRequest {
		t.Fatalf("unknown department: %d", rec.Code)
	}
	rec := f.do(req{method: "POST", path: "/api/v1/displays", ctype: "application/json", who: pAdmin, body: `{"name":"Police wall","departments":["police"]}`})
	if rec.Code != http.StatusCreated {
		t.Fatalf("create: %d %s", rec.Code, rec.Body)
	}
	var created struct {
		ID, Code, Path string
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &created); err != nil || created.Code == "" || created.Path != "/#/display?code="+created.Code {
		t.Fatalf("%s %v", rec.Body, err)
	}

	signIn := func() *httptest.ResponseRecorder {
		return f.do(req{method: "POST", path: "/api/v1/displays/signin", ctype: "application/json", body: `{"code":"` + created.Code + `"}`})
	}
	rec = signIn()
	if rec.Code != http.StatusOK {
		t.Fatalf("sign in: %d %s", rec.Code, rec.Body)
	}
	ck := sessionCookie(rec)
	var sess sessionBody
	json.Unmarshal(rec.Body.Bytes(), &sess)
	if ck == nil || sess.Role != roleDisplay || sess.CSRFToken == "" || len(sess.Departments) != 1 {
		t.Fatalf("sign-in answer %s", rec.Body)
	}
	if rec := signIn(); rec.Code != http.StatusUnauthorized {
		t.Fatalf("second use of the code: %d", rec.Code)
	}

	// Far past the idle timeout and the cap of user sessions, the display
	// still works: live view of its departments, nothing else.
	time.Sleep(300 * time.Millisecond)
	csrf := map[string]string{CSRFHeader: sess.CSRFToken}
	for _, c := range []struct {
		r    req
		want int
	}{
		{req{method: "GET", path: "/api/v1/session"}, http.StatusOK},
		{req{method: "GET", path: "/api/v1/cameras/police-1"}, http.StatusOK},
		{req{method: "GET", path: "/api/v1/cameras/flood-1"}, http.StatusNotFound},
		{req{method: "POST", path: "/api/v1/cameras/police-1/whep", ctype: "application/sdp", body: "v=0\r\n", header: csrf}, http.StatusCreated},
		{req{method: "GET", path: "/api/v1/cameras/police-1/recordings"}, http.StatusForbidden},
		{req{method: "GET", path: "/api/v1/users"}, http.StatusForbidden},
		{req{method: "GET", path: "/api/v1/displays"}, http.StatusForbidden},
		{req{method: "GET", path: "/metrics"}, http.StatusForbidden},
		{req{method: "POST", path: "/api/v1/tokens", ctype: "application/json", body: `{"name":"x"}`, header: csrf}, http.StatusForbidden},
	} {
		c.r.cookie = ck
		if rec := f.do(c.r); rec.Code != c.want {
			t.Errorf("display %s %s: %d, want %d (%s)", c.r.method, c.r.path, rec.Code, c.want, rec.Body)
		}
	}

	rec = f.do(req{method: "GET", path: "/api/v1/displays", who: pAdmin})
	var list []registry.Display
	if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil || len(list) != 1 || list[0].LastSeen.IsZero() || list[0].SignedIn.IsZero() {
		t.Fatalf("list %s %v", rec.Body, err)
	}

	// Revoked, the display is signed out at its next request.
	if rec := f.do(req{method: "DELETE", path: "/api/v1/displays/" + created.ID, who: pAdmin}); rec.Code != http.StatusNoContent {
		t.Fatalf("delete: %d", rec.Code)
	}
	if rec := f.do(req{method: "GET", path: "/api/v1/session", cookie: ck}); rec.Code != http.StatusUnauthorized {
		t.Fatalf("revoked display: %d", rec.Code)
	}
	for _, a := range []string{"display.create", "display.signin", "display.delete"} {
		if n := f.auditRows(a); n < 1 {
			t.Errorf("%d audit rows of %s", n, a)
		}
	}
}

// Guessing display codes is limited like guessing passwords.
func TestDisplayCodesAreLimited(t *testing.T) {
	f := newFixture(t, Options{LoginFailures: 3, LoginWindow: time.Minute})
	var codes []int
	for range 5 {
		codes = append(codes, f.do(req{method: "POST", path: "/api/v1/displays/signin", ctype: "application/json", body: `{"code":"guess"}`}).Code)
	}
	want := []int{http.StatusUnauthorized, http.StatusUnauthorized, http.StatusUnauthorized, http.StatusTooManyRequests, http.StatusTooManyRequests}
	if fmt.Sprint(codes) != fmt.Sprint(want) {
		t.Fatalf("answers %v, want %v", codes, want)
	}
	if rec := f.do(req{method: "POST", path: "/api/v1/displays/signin", ctype: "application/json", body: `{"code":""}`}); rec.Code != http.StatusBadRequest {
		t.Fatalf("empty code: %d", rec.Code)
	}
	// The refusal is worded in the caller's language.
	f = newFixture(t, Options{})
	rec := f.do(req{method: "POST", path: "/api/v1/displays/signin", ctype: "application/json", body: `{"code":"guess"}`,
		header: map[string]string{"Accept-Language": "zh-CN"}})
	if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), "大屏登录码") || !strings.Contains(rec.Body.String(), "display.code_invalid") {
		t.Fatalf("zh-CN refusal: %d %s", rec.Code, rec.Body)
	}
}
