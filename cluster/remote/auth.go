package remote

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// Headers of a signed node-to-node request.
const (
	headerNode      = "X-Vigil-Node"
	headerTime      = "X-Vigil-Time" // Unix seconds
	headerBody      = "X-Vigil-Body-SHA256"
	headerSignature = "X-Vigil-Signature"
)

// maxSignedBody bounds the body of a node-to-node request (SDP offers,
// candidates, the list of live sessions): it is read whole to be checked.
const maxSignedBody = 1 << 20

// bodyHash is the hex SHA-256 of a request's body.
func bodyHash(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// MaxSkew is how far a signed request's time may be from the receiver's
// clock: a captured request cannot be replayed later than this.
const MaxSkew = 60 * time.Second

// signature is HMAC-SHA256 under the cluster secret over the method, the
// request URI (path and query, as sent), the time, the sending node's name
// and the SHA-256 of the body, one per line, in hex.
func signature(secret []byte, method, uri, ts, node, body string) string {
	m := hmac.New(sha256.New, secret)
	fmt.Fprintf(m, "%s\n%s\n%s\n%s\n%s", method, uri, ts, node, body)
	return hex.EncodeToString(m.Sum(nil))
}

// sign adds the headers of a request from node at now, body being the
// request's body (nil for none).
func sign(req *http.Request, secret []byte, node string, now time.Time, body []byte) {
	ts := strconv.FormatInt(now.Unix(), 10)
	h := bodyHash(body)
	req.Header.Set(headerNode, node)
	req.Header.Set(headerTime, ts)
	req.Header.Set(headerBody, h)
	req.Header.Set(headerSignature, signature(secret, req.Method, req.URL.RequestURI(), ts, node, h))
}

// verify checks a received request's signature, time and body; it returns
// the sending node's name. The body is read (at most maxSignedBody) and
// checked against the signed hash, and r.Body replaced with what was read.
func verify(r *http.Request, secret []byte, now time.Time) (string, error) {
	node, ts, sig, sum := r.Header.Get(headerNode), r.Header.Get(headerTime), r.Header.Get(headerSignature), r.Header.Get(headerBody)
	if node == "" || ts == "" || sig == "" || sum == "" {
		return "", errors.New("not a signed cluster request (" + headerNode + ", " + headerTime + ", " + headerBody + " and " + headerSignature + " are required)")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return node, fmt.Errorf("%s %q is not Unix seconds", headerTime, ts)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > MaxSkew || d < -MaxSkew {
		return node, fmt.Errorf("the request of node %q is %v off this node's clock (at most %v): check the clocks (NTP)", node, d.Round(time.Second), MaxSkew)
	}
	want := signature(secret, r.Method, r.RequestURI, ts, node, sum)
	got, err := hex.DecodeString(sig)
	if err != nil || !hmac.Equal(got, mustHex(want)) {
		return node, fmt.Errorf("bad signature from node %q: it does not share this cluster's secret (the same database.url?)", node)
	}
	var body []byte
	if r.Body != nil {
		body, err = io.ReadAll(io.LimitReader(r.Body, maxSignedBody+1))
		if err != nil {
			return node, fmt.Errorf("the body of node %q's request: %w", node, err)
		}
		if len(body) > maxSignedBody {
			return node, fmt.Errorf("the body of node %q's request is over %d bytes", node, maxSignedBody)
		}
	}
	if !hmac.Equal(mustHex(bodyHash(body)), mustHex(sum)) {
		return node, fmt.Errorf("the body of node %q's request is not the one it signed (changed on the way?)", node)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return node, nil
}

func mustHex(s string) []byte {
	b, _ := hex.DecodeString(s)
	return b
}
