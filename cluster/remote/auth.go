package remote

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Headers of a signed node-to-node request.
const (
	headerNode      = "X-Vigil-Node"
	headerTime      = "X-Vigil-Time" // Unix seconds
	headerSignature = "X-Vigil-Signature"
)

// MaxSkew is how far a signed request's time may be from the receiver's
// clock: a captured request cannot be replayed later than this.
const MaxSkew = 60 * time.Second

// signature is HMAC-SHA256 under the cluster secret over the method, the
// request URI (path and query, as sent), the time and the sending node's
// name, one per line, in hex.
func signature(secret []byte, method, uri, ts, node string) string {
	m := hmac.New(sha256.New, secret)
	fmt.Fprintf(m, "%s\n%s\n%s\n%s", method, uri, ts, node)
	return hex.EncodeToString(m.Sum(nil))
}

// sign adds the headers of a request from node at now.
func sign(req *http.Request, secret []byte, node string, now time.Time) {
	ts := strconv.FormatInt(now.Unix(), 10)
	req.Header.Set(headerNode, node)
	req.Header.Set(headerTime, ts)
	req.Header.Set(headerSignature, signature(secret, req.Method, req.URL.RequestURI(), ts, node))
}

// verify checks a received request's signature and time; it returns the
// sending node's name.
func verify(r *http.Request, secret []byte, now time.Time) (string, error) {
	node, ts, sig := r.Header.Get(headerNode), r.Header.Get(headerTime), r.Header.Get(headerSignature)
	if node == "" || ts == "" || sig == "" {
		return "", errors.New("not a signed cluster request (" + headerNode + ", " + headerTime + " and " + headerSignature + " are required)")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return node, fmt.Errorf("%s %q is not Unix seconds", headerTime, ts)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > MaxSkew || d < -MaxSkew {
		return node, fmt.Errorf("the request of node %q is %v off this node's clock (at most %v): check the clocks (NTP)", node, d.Round(time.Second), MaxSkew)
	}
	want := signature(secret, r.Method, r.RequestURI, ts, node)
	got, err := hex.DecodeString(sig)
	if err != nil || !hmac.Equal(got, mustHex(want)) {
		return node, fmt.Errorf("bad signature from node %q: it does not share this cluster's secret (the same database.url?)", node)
	}
	return node, nil
}

func mustHex(s string) []byte {
	b, _ := hex.DecodeString(s)
	return b
}
