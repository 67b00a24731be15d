package testkit

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
)

// APIRequest builds a request to the Vigil API as the browser client sends
// it: body, when not nil, as JSON, and the CSRF token when csrf is set.
func APIRequest(method, url string, body any, csrf string) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if csrf != "" {
		req.Header.Set("X-CSRF-Token", csrf)
	}
	return req, nil
}
