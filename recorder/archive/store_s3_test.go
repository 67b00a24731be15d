package archive

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The S3 store's check names a TLS mismatch with the key to change, in the
// sentence the uploader logs and the health report shows. (Credentials and
// buckets are tested against a real S3 server in package recorder and app.)
func TestS3CheckNamesTLSMismatch(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	srv.StartTLS()
	defer srv.Close()
	endpoint := strings.TrimPrefix(srv.URL, "https://")
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "not S3", http.StatusBadRequest)
	}))
	defer plain.Close()
	for _, tc := range []struct {
		name     string
		endpoint string
		tls      bool
		want     string
	}{
		{"plain http against https", endpoint, false, "storage.s3.tls is false but the S3 server " + endpoint + " speaks HTTPS"},
		{"https with an unknown certificate", endpoint, true, "the certificate of the S3 server " + endpoint + " is not trusted"},
		{"https against plain http", strings.TrimPrefix(plain.URL, "http://"), true, "storage.s3.tls is true but the S3 server"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewS3Store(context.Background(), S3Options{Endpoint: tc.endpoint, Bucket: "vigil", AccessKey: "a", SecretKey: "secret-1", TLS: tc.tls})
			if err != nil {
				t.Fatal(err)
			}
			err = s.Check(context.Background())
			var se *S3Error
			if !errors.As(err, &se) || !strings.Contains(se.Reason, tc.want) {
				t.Fatalf("check: %v, want a reason saying %q", err, tc.want)
			}
		})
	}
}
