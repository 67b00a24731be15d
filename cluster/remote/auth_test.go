package remote

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/internal/testkit/testdb"
)

func signedRequest(method, target, node string, secret []byte, at time.Time) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	sign(r, secret, node, at, nil)
	return r
}

func TestSignature(t *testing.T) {
	now := time.Now()
	other := bytes.Repeat([]byte{7}, 32)
	for _, c := range []struct {
		name string
		req  func() *http.Request
		want string // "" for accepted, else a part of the error
	}{
		{"signed", func() *http.Request {
			return signedRequest("GET", "/internal/v1/spool/read?key=a%2Fb&off=0&len=9", "b", testSecret, now)
		}, ""},
		{"40 s old", func() *http.Request {
			return signedRequest("GET", "/internal/v1/x?y=1", "b", testSecret, now.Add(-40*time.Second))
		}, ""},
		{"another secret", func() *http.Request { return signedRequest("GET", "/internal/v1/x", "b", other, now) }, "bad signature from node \"b\""},
		{"unsigned", func() *http.Request { return httptest.NewRequest("GET", "/internal/v1/x", nil) }, "not a signed cluster request"},
		{"too old", func() *http.Request {
			return signedRequest("GET", "/internal/v1/x", "b", testSecret, now.Add(-61*time.Second))
		}, "off this node's clock"},
		{"from the future", func() *http.Request {
			return signedRequest("GET", "/internal/v1/x", "b", testSecret, now.Add(90*time.Second))
		}, "off this node's clock"},
		{"other method", func() *http.Request {
			r := signedRequest("GET", "/internal/v1/x", "b", testSecret, now)
			r.Method = "DELETE"
			return r
		}, "bad signature"},
		{"other query", func() *http.Request {
			r := signedRequest("GET", "/internal/v1/spool/read?off=0", "b", testSecret, now)
			r.RequestURI = "/internal/v1/spool/read?off=100"
			return r
		}, "bad signature"},
		{"other path", func() *http.Request {
			r := signedRequest("DELETE", "/internal/v1/live/sessions/aa", "b", testSecret, now)
			r.RequestURI = "/internal/v1/live/sessions/bb"
			return r
		}, "bad signature"},
		{"other node", func() *http.Request {
			r := signedRequest("GET", "/internal/v1/x", "b", testSecret, now)
			r.Header.Set(headerNode, "c")
			return r
		}, "bad signature from node \"c\""},
		{"other time", func() *http.Request {
			r := signedRequest("GET", "/internal/v1/x", "b", testSecret, now)
			r.Header.Set(headerTime, strconv.FormatInt(now.Unix()+1, 10))
			return r
		}, "bad signature"},
		{"signed body", func() *http.Request {
			r := httptest.NewRequest("POST", "/internal/v1/live/offer/cam1", strings.NewReader("v=0"))
			sign(r, testSecret, "b", now, []byte("v=0"))
			return r
		}, ""},
		{"other body", func() *http.Request {
			r := httptest.NewRequest("POST", "/internal/v1/live/offer/cam1", strings.NewReader("v=1"))
			sign(r, testSecret, "b", now, []byte("v=0"))
			return r
		}, "not the one it signed"},
		{"body hash replaced", func() *http.Request {
			r := httptest.NewRequest("POST", "/internal/v1/live/offer/cam1", strings.NewReader("v=1"))
			sign(r, testSecret, "b", now, []byte("v=0"))
			r.Header.Set(headerBody, bodyHash([]byte("v=1")))
			return r
		}, "bad signature"},
		{"body too large", func() *http.Request {
			big := bytes.Repeat([]byte{'a'}, maxSignedBody+1)
			r := httptest.NewRequest("POST", "/internal/v1/live/alive", bytes.NewReader(big))
			sign(r, testSecret, "b", now, big)
			return r
		}, "over"},
		{"no body hash", func() *http.Request {
			r := signedRequest("GET", "/internal/v1/x", "b", testSecret, now)
			r.Header.Del(headerBody)
			return r
		}, "not a signed cluster request"},
		{"garbage signature", func() *http.Request {
			r := signedRequest("GET", "/internal/v1/x", "b", testSecret, now)
			r.Header.Set(headerSignature, "zz")
			return r
		}, "bad signature"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := verify(c.req(), testSecret, now)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("error %v, want one with %q", err, c.want)
			}
		})
	}
}

// TestHandlerRefusesBadSignature: the internal endpoints answer 401 with a
// clear error to a request not signed with the cluster's secret, and pass
// other paths on to the user API.
func TestHandlerRefusesBadSignature(t *testing.T) {
	n, err := New(Options{Node: "a", Secret: testSecret, Owners: newOwners("a"), Relay: &fakeRelay{}, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	srv := httptest.NewServer(n.Handler(api))
	defer srv.Close()

	body := `{"sessions":["x"]}`
	for _, c := range []struct {
		name   string
		secret []byte
		status int
		errHas string
	}{
		{"unsigned", nil, http.StatusUnauthorized, "cluster request refused: not a signed cluster request"},
		{"wrong secret", bytes.Repeat([]byte{1}, 32), http.StatusUnauthorized, "cluster request refused: bad signature from node \"b\""},
		{"right secret", testSecret, http.StatusOK, ""},
	} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/internal/v1/live/alive", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if c.secret != nil {
			sign(req, c.secret, "b", time.Now(), []byte(body))
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var e errorBody
		_ = json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != c.status || !strings.Contains(e.Error, c.errHas) {
			t.Errorf("%s: %d %+v, want %d with %q", c.name, resp.StatusCode, e, c.status, c.errHas)
		}
	}
	if n.Refused() != 2 {
		t.Fatalf("%d requests counted as refused, want 2", n.Refused())
	}
	// the user API is not behind the cluster's signature
	resp, err := http.Get(srv.URL + "/api/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTeapot {
		t.Fatalf("user API: %d, want it passed on", resp.StatusCode)
	}

	// a node with another secret is refused by the owner: 503 on the node the user talks to
	o := newOwners("b")
	o.advertise("a", srv.URL)
	o.set("cam1", "a")
	stranger, err := New(Options{Node: "b", Secret: bytes.Repeat([]byte{1}, 32), Owners: o, Relay: &fakeRelay{}, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	_, _, err = stranger.Live().Offer(context.Background(), "cam1", "main", "v=0")
	if err == nil || !strings.Contains(err.Error(), "node a refused this node's request: cluster request refused: bad signature") {
		t.Fatalf("offer with a wrong secret: %v", err)
	}
}

// TestSecretSharedThroughTheDatabase: the first node makes the secret, the
// next ones read the same.
func TestSecretSharedThroughTheDatabase(t *testing.T) {
	db := testdb.OpenDB(t)
	ctx := context.Background()
	s1, err := LoadSecret(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := LoadSecret(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if len(s1) != 32 || !bytes.Equal(s1, s2) {
		t.Fatalf("secrets %x and %x: want the same 32 bytes", s1, s2)
	}
	if bytes.Equal(s1, make([]byte, 32)) {
		t.Fatal("the secret is zeros")
	}
}
