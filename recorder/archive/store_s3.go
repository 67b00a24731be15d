package archive

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3Options configure an S3Store.
type S3Options struct {
	// Endpoint is host:port of the S3 server, without a scheme. Required.
	Endpoint string
	// Bucket receives the recordings. It is created when missing. Required.
	Bucket string
	// Region of the bucket. It defaults to "" (the server's default; us-east-1 for most).
	Region string
	// AccessKey and SecretKey authenticate with signature V4. Both empty: anonymous.
	AccessKey, SecretKey string
	// TLS selects https. It defaults to false (plain http).
	TLS bool
}

// S3Store is a Store on any S3-compatible server (MinIO, SeaweedFS, Ceph RGW,
// versitygw, AWS) through minio-go, with path-style addressing.
//
// NewS3Store fails only on invalid options: an unreachable server, bad
// credentials or a bucket that cannot be created are reported by each
// operation (and so in Recorder.Status), so that recording can start, into the
// spool, while the store is down.
type S3Store struct {
	o    S3Options
	cl   *minio.Client
	core minio.Core

	mu          sync.Mutex
	bucketReady bool
}

// NewS3Store connects to the server described by o and makes sure the bucket
// exists, creating it when missing (a failure there is not fatal; see S3Store).
func NewS3Store(ctx context.Context, o S3Options) (*S3Store, error) {
	if o.Endpoint == "" {
		return nil, errors.New("s3 store: empty endpoint")
	}
	if o.Bucket == "" {
		return nil, errors.New("s3 store: empty bucket")
	}
	var creds *credentials.Credentials
	if o.AccessKey != "" || o.SecretKey != "" {
		creds = credentials.NewStaticV4(o.AccessKey, o.SecretKey, "")
	} else {
		creds = credentials.New(&credentials.Static{Value: credentials.Value{SignerType: credentials.SignatureAnonymous}})
	}
	cl, err := minio.New(o.Endpoint, &minio.Options{
		Creds:        creds,
		Secure:       o.TLS,
		Region:       o.Region,
		BucketLookup: minio.BucketLookupPath,
		MaxRetries:   1, // the recorder retries with its own backoff
	})
	if err != nil {
		return nil, fmt.Errorf("s3 store %s: %w", o.Endpoint, err)
	}
	s := &S3Store{o: o, cl: cl, core: minio.Core{Client: cl}}
	_ = s.ensureBucket(ctx) // reported again by the first operation when it failed
	return s, nil
}

// Check makes sure the server answers, the credentials are accepted and the
// bucket exists (creating it). The error is a sentence an operator understands.
func (s *S3Store) Check(ctx context.Context) error {
	s.mu.Lock()
	s.bucketReady = false
	s.mu.Unlock()
	return s.ensureBucket(ctx)
}

func (s *S3Store) ensureBucket(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bucketReady {
		return nil
	}
	// a listing, unlike HEAD, answers with an error code that tells bad
	// credentials from a missing bucket
	_, err := s.core.ListObjectsV2(s.o.Bucket, "", "", "", "/", 1)
	missing := minio.ToErrorResponse(err).Code == "NoSuchBucket"
	if minio.ToErrorResponse(err).Code == "AccessDenied" {
		// some servers deny listing a bucket that does not exist
		if ok, herr := s.cl.BucketExists(ctx, s.o.Bucket); herr == nil && !ok {
			missing = true
		}
	}
	if err != nil && !missing {
		return s.explain("check bucket", err)
	}
	if missing {
		if err := s.cl.MakeBucket(ctx, s.o.Bucket, minio.MakeBucketOptions{Region: s.o.Region}); err != nil {
			code := minio.ToErrorResponse(err).Code
			if code != "BucketAlreadyOwnedByYou" && code != "BucketAlreadyExists" {
				reason := "the server refused"
				var inner *S3Error
				if errors.As(s.explain("create bucket", err), &inner) {
					reason = inner.Reason
				}
				return &S3Error{Op: "create bucket", Err: err,
					Reason: fmt.Sprintf("bucket %q does not exist and could not be created (%s)", s.o.Bucket, reason)}
			}
		}
	}
	s.bucketReady = true
	return nil
}

// S3Error is an S3 failure with a sentence that says what is wrong.
type S3Error struct {
	Op     string // "put segments/a.mp4"
	Reason string // the sentence
	Err    error  // the underlying error
}

func (e *S3Error) Error() string { return e.Reason + " (" + e.Op + ": " + e.Err.Error() + ")" }
func (e *S3Error) Unwrap() error { return e.Err }

// Summary is the sentence alone, without the operation and the underlying
// error, so that the same failure repeated reads the same.
func (e *S3Error) Summary() string { return e.Reason }

// explain turns a minio-go error into an S3Error naming the likely cause.
func (s *S3Store) explain(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("s3 %s: %w", op, err)
	}
	resp := minio.ToErrorResponse(err)
	var reason string
	switch resp.Code {
	case "SignatureDoesNotMatch":
		reason = fmt.Sprintf("bad credentials: the S3 server %s rejected the secret key (storage.s3.secretKey)", s.o.Endpoint)
	case "InvalidAccessKeyId", "XAdminUserNotFound": // the latter is versitygw's
		reason = fmt.Sprintf("bad credentials: the S3 server %s does not know the access key (storage.s3.accessKey)", s.o.Endpoint)
	case "AccessDenied":
		if s.o.AccessKey == "" {
			reason = fmt.Sprintf("no credentials: storage.s3.accessKey and storage.s3.secretKey are empty and the S3 server %s refuses anonymous requests", s.o.Endpoint)
		} else {
			reason = fmt.Sprintf("access denied: the S3 user may not use bucket %q", s.o.Bucket)
		}
	case "NoSuchBucket":
		reason = fmt.Sprintf("bucket %q does not exist on %s", s.o.Bucket, s.o.Endpoint)
	case "InvalidBucketName":
		reason = fmt.Sprintf("bucket name %q is not valid for S3", s.o.Bucket)
	default:
		var nerr net.Error
		var oerr *net.OpError
		var cerr *tls.CertificateVerificationError
		switch {
		// net/http has no typed error for these two: its words are matched
		case strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
			reason = fmt.Sprintf("storage.s3.tls is true but the S3 server %s speaks plain HTTP (set storage.s3.tls: false, or give the server a certificate)", s.o.Endpoint)
		case resp.StatusCode == http.StatusBadRequest && strings.Contains(resp.Message, "HTTP request to an HTTPS server"):
			reason = fmt.Sprintf("storage.s3.tls is false but the S3 server %s speaks HTTPS (set storage.s3.tls: true)", s.o.Endpoint)
		case errors.As(err, &cerr):
			reason = fmt.Sprintf("the certificate of the S3 server %s is not trusted: %v (storage.s3.tls)", s.o.Endpoint, cerr.Err)
		case errors.As(err, &oerr), errors.As(err, &nerr):
			reason = fmt.Sprintf("S3 server %s is unreachable", s.o.Endpoint)
		case resp.StatusCode == http.StatusForbidden:
			reason = fmt.Sprintf("access denied by the S3 server %s (check storage.s3.accessKey and secretKey)", s.o.Endpoint)
		case resp.StatusCode >= 500:
			reason = fmt.Sprintf("S3 server %s failed (HTTP %d)", s.o.Endpoint, resp.StatusCode)
		default:
			reason = fmt.Sprintf("S3 server %s refused the request", s.o.Endpoint)
		}
	}
	return &S3Error{Op: op, Reason: reason, Err: err}
}

// Put uploads an object of known size with its metadata.
func (s *S3Store) Put(ctx context.Context, key string, r io.Reader, size int64, meta map[string]string) error {
	if err := s.ensureBucket(ctx); err != nil {
		return err
	}
	_, err := s.cl.PutObject(ctx, s.o.Bucket, key, r, size, minio.PutObjectOptions{
		UserMetadata:     meta,
		ContentType:      "video/mp4",
		DisableMultipart: size <= 1<<30,
	})
	if err != nil {
		if minio.ToErrorResponse(err).Code == "NoSuchBucket" {
			s.mu.Lock()
			s.bucketReady = false
			s.mu.Unlock()
		}
		return s.explain("put "+key, err)
	}
	return nil
}

// Get reads length bytes from offset (to the end when length < 0).
func (s *S3Store) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if offset < 0 {
		return nil, fmt.Errorf("s3 get %s: negative offset %d", key, offset)
	}
	var opts minio.GetObjectOptions
	switch {
	case length == 0:
		// an empty range cannot be expressed in an HTTP Range header
		return io.NopCloser(eofReader{}), nil
	case length > 0:
		if err := opts.SetRange(offset, offset+length-1); err != nil {
			return nil, fmt.Errorf("s3 get %s: %w", key, err)
		}
	case offset > 0:
		if err := opts.SetRange(offset, 0); err != nil {
			return nil, fmt.Errorf("s3 get %s: %w", key, err)
		}
	}
	rc, _, _, err := s.core.GetObject(ctx, s.o.Bucket, key, opts)
	if err != nil {
		if code := minio.ToErrorResponse(err).Code; code == "NoSuchKey" || code == "NotFound" {
			return nil, fmt.Errorf("s3 get %s: %w", key, ErrObjectNotFound)
		}
		return nil, s.explain("get "+key, err)
	}
	return rc, nil
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// List calls fn for every object whose key starts with prefix, in key order.
func (s *S3Store) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	ctx, cancel := context.WithCancel(ctx)
	ch := s.cl.ListObjects(ctx, s.o.Bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true})
	defer func() {
		// stop minio's listing goroutine: it may be blocked sending the next object
		cancel()
		for range ch {
		}
	}()
	for o := range ch {
		if o.Err != nil {
			return s.explain("list "+prefix, o.Err)
		}
		if err := fn(ObjectInfo{Key: o.Key, Size: o.Size, Modified: o.LastModified}); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// Delete removes an object; a missing key is not an error.
func (s *S3Store) Delete(ctx context.Context, key string) error {
	err := s.cl.RemoveObject(ctx, s.o.Bucket, key, minio.RemoveObjectOptions{})
	if err != nil {
		if code := minio.ToErrorResponse(err).Code; code == "NoSuchKey" || code == "NotFound" {
			return nil
		}
		return s.explain("delete "+key, err)
	}
	return nil
}
