// Package s3 keeps blobs in a bucket of an S3-compatible server (AWS S3, MinIO, Ceph, ...):
// blobs: s3://bucket/prefix?endpoint=...&region=... in the server's config.
//
// Objects are <prefix>sha256/<hex>. An upload is hashed while it streams: one that fits in a
// part is checked, then stored with one PUT; a larger one is a multipart upload, completed
// only once the digest checks out (aborted otherwise), so no object ever holds bytes that do
// not hash to its name. Touch writes an empty marker, <prefix>touched/<hex>, whose time Walk
// reports, instead of rewriting the blob. Downloads can be handed out as presigned GET URLs.
//
// It talks to the server with minio-go, which speaks plain S3 to any S3-compatible server: it
// sends none of the newer checksum headers by default (aws-sdk-go-v2 does since early 2025,
// and several S3-compatible servers refuse them), picks path-style addressing for custom
// endpoints, and presigns without a network call once the region is known. Credentials are
// never written anywhere: not in errors, logs or String.
package s3

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"golang.org/x/sync/errgroup"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/blob"
)

// Config says which bucket to use and how to reach it.
type Config struct {
	Bucket string
	// Prefix is prepended to every object's name ("" or ending in "/").
	Prefix string
	// Endpoint is the server's base URL (scheme, host and port).
	Endpoint *url.URL
	// PublicEndpoint, if set, is the address clients use to reach the server: presigned URLs
	// name it instead of Endpoint.
	PublicEndpoint *url.URL
	Region         string
	// Presign allows download URLs (DownloadURL); without it every download goes through the
	// server.
	Presign bool
	// AccessKeyID and SecretAccessKey, if set, are the credentials; otherwise they come from
	// the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN) or the
	// shared credentials file (~/.aws/credentials, AWS_PROFILE).
	AccessKeyID, SecretAccessKey, SessionToken string
	// PartSize is the size of the parts of a multipart upload (0: DefaultPartSize); uploads
	// that fit in one part are one PUT.
	PartSize int64
}

// DefaultPartSize is the part size of multipart uploads: large enough for few requests,
// small enough to hold a few in memory per upload.
const DefaultPartSize = 16 << 20

// minPartSize is S3's smallest part but the last.
const minPartSize = 5 << 20

// maxParts is S3's most parts of one upload.
const maxParts = 10_000

// URLExpiry is how long a download URL works: it is used at once.
const URLExpiry = 15 * time.Minute

// ParseURL reads a blobs setting of the form
// s3://bucket[/prefix]?endpoint=http://host:port&region=...&public_endpoint=...&presign=false.
// The endpoint defaults to AWS S3, the region to us-east-1.
func ParseURL(raw string) (Config, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "s3" {
		return Config{}, errors.New("blobs: want s3://bucket/prefix?endpoint=http://host:port&region=...")
	}
	if u.User != nil {
		return Config{}, errors.New("blobs: credentials do not go in the URL: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, " +
			"or s3_access_key_id and s3_secret_access_key in server.config.yaml")
	}
	c := Config{Bucket: u.Host, Region: "us-east-1", Presign: true}
	if c.Bucket == "" {
		return Config{}, errors.New("blobs: no bucket: want s3://bucket/prefix")
	}
	if p := strings.Trim(u.Path, "/"); p != "" {
		if strings.Contains(p, "//") || strings.Contains("/"+p+"/", "/../") || strings.Contains("/"+p+"/", "/./") {
			return Config{}, fmt.Errorf("blobs: invalid prefix %q", p)
		}
		c.Prefix = p + "/"
	}
	q := u.Query()
	for k := range q {
		switch k {
		case "endpoint", "public_endpoint", "region", "presign":
		default:
			return Config{}, fmt.Errorf("blobs: unknown setting %q in the s3:// URL: want endpoint, public_endpoint, region or presign", k)
		}
	}
	endpoint := q.Get("endpoint")
	if endpoint == "" {
		endpoint = "https://s3.amazonaws.com"
	}
	if c.Endpoint, err = parseEndpoint("endpoint", endpoint); err != nil {
		return Config{}, err
	}
	if v := q.Get("public_endpoint"); v != "" {
		if c.PublicEndpoint, err = parseEndpoint("public_endpoint", v); err != nil {
			return Config{}, err
		}
	}
	if v := q.Get("region"); v != "" {
		c.Region = v
	}
	if v := q.Get("presign"); v != "" {
		if c.Presign, err = strconv.ParseBool(v); err != nil {
			return Config{}, fmt.Errorf("blobs: presign=%q: want true or false", v)
		}
	}
	return c, nil
}

func parseEndpoint(name, v string) (*url.URL, error) {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") ||
		u.RawQuery != "" || u.User != nil {
		shown := v
		if u != nil && u.User != nil {
			shown = u.Redacted()
		}
		return nil, fmt.Errorf("blobs: %s=%q: want http://host:port or https://host", name, shown)
	}
	return &url.URL{Scheme: u.Scheme, Host: u.Host}, nil
}

// Store keeps blobs in a bucket.
type Store struct {
	cfg     Config
	core    *minio.Core   // the server, as the server reaches it
	presign *minio.Client // the server, as clients reach it
	parts   sync.Pool     // buffers of PartSize bytes
}

var _ blob.Store = (*Store)(nil)

// Open connects to the bucket, creating it if it is missing, and checks the credentials. It
// aborts uploads an earlier server left unfinished under the prefix: one server uses a
// bucket prefix at a time.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.PartSize == 0 {
		cfg.PartSize = DefaultPartSize
	}
	if cfg.PartSize < minPartSize {
		return nil, fmt.Errorf("blobs: part size %d is below S3's minimum of 5 MiB", cfg.PartSize)
	}
	creds, err := credentialsFor(cfg)
	if err != nil {
		return nil, err
	}
	newClient := func(endpoint *url.URL) (*minio.Client, error) {
		return minio.New(endpoint.Host, &minio.Options{Creds: creds, Secure: endpoint.Scheme == "https", Region: cfg.Region,
			// Never through a proxy, as the API's clients reach the server directly.
			Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 16, IdleConnTimeout: time.Minute,
				ResponseHeaderTimeout: 5 * time.Minute},
			MaxRetries: 3})
	}
	client, err := newClient(cfg.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("blobs: %w", err)
	}
	s := &Store{cfg: cfg, core: &minio.Core{Client: client}, presign: client}
	if cfg.PublicEndpoint != nil {
		if s.presign, err = newClient(cfg.PublicEndpoint); err != nil {
			return nil, fmt.Errorf("blobs: %w", err)
		}
	}
	if err := s.ensureBucket(ctx); err != nil {
		return nil, err
	}
	if err := s.abortStale(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// credentialsFor returns the configured credentials, or the environment's, or the shared
// credentials file's; it fails when there are none.
func credentialsFor(cfg Config) (*credentials.Credentials, error) {
	var creds *credentials.Credentials
	if cfg.AccessKeyID != "" || cfg.SecretAccessKey != "" {
		creds = credentials.NewStaticV4(cfg.AccessKeyID, cfg.SecretAccessKey, cfg.SessionToken)
	} else {
		creds = credentials.NewChainCredentials([]credentials.Provider{&credentials.EnvAWS{}, &credentials.FileAWSCredentials{}})
	}
	v, err := creds.GetWithContext(&credentials.CredContext{Client: http.DefaultClient})
	if err != nil || v.AccessKeyID == "" || v.SecretAccessKey == "" {
		return nil, errors.New("blobs: no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, " +
			"or s3_access_key_id and s3_secret_access_key in server.config.yaml")
	}
	return creds, nil
}

// where names the bucket for messages.
func (s *Store) where() string {
	return fmt.Sprintf("bucket %q at %s", s.cfg.Bucket, s.cfg.Endpoint)
}

// ensureBucket creates the bucket when it is missing, or says why it cannot be used.
func (s *Store) ensureBucket(ctx context.Context) error {
	ok, err := s.core.BucketExists(ctx, s.cfg.Bucket)
	if err != nil {
		return fmt.Errorf("blobs: %s: %s", s.where(), describe(err))
	}
	if ok {
		return nil
	}
	if err := s.core.MakeBucket(ctx, s.cfg.Bucket, minio.MakeBucketOptions{Region: s.cfg.Region}); err != nil {
		if code := minio.ToErrorResponse(err).Code; code == "BucketAlreadyOwnedByYou" || code == "BucketAlreadyExists" {
			return nil // made meanwhile
		}
		return fmt.Errorf("blobs: %s does not exist and could not be created: %s", s.where(), describe(err))
	}
	return nil
}

// abortStale removes what uploads cut short by an earlier server left: unfinished multipart
// uploads and temporary objects under the prefix.
func (s *Store) abortStale(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends a listing left early
	// Listed for the whole bucket: MinIO takes a listing's prefix for a whole object name.
	for u := range s.core.ListIncompleteUploads(ctx, s.cfg.Bucket, "", true) {
		if u.Err != nil {
			if minio.ToErrorResponse(u.Err).Code == "NotImplemented" {
				break // a server without the listing: its lifecycle rules must do it
			}
			return fmt.Errorf("blobs: %s: list unfinished uploads: %s", s.where(), describe(u.Err))
		}
		if !strings.HasPrefix(u.Key, s.cfg.Prefix) {
			continue
		}
		if err := s.core.AbortMultipartUpload(ctx, s.cfg.Bucket, u.Key, u.UploadID); err != nil {
			return fmt.Errorf("blobs: %s: abort an unfinished upload: %s", s.where(), describe(err))
		}
	}
	for o := range s.core.Client.ListObjects(ctx, s.cfg.Bucket, minio.ListObjectsOptions{Prefix: s.cfg.Prefix + "tmp/", Recursive: true}) {
		if o.Err != nil {
			return fmt.Errorf("blobs: %s: %s", s.where(), describe(o.Err))
		}
		if err := s.core.RemoveObject(ctx, s.cfg.Bucket, o.Key, minio.RemoveObjectOptions{}); err != nil {
			return fmt.Errorf("blobs: %s: %s", s.where(), describe(err))
		}
	}
	return nil
}

// describe is an S3 error on one line, as users should see it.
func describe(err error) string {
	if r := minio.ToErrorResponse(err); r.Code != "" {
		msg := r.Message
		switch r.Code {
		case "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied":
			msg += " (check the S3 credentials)"
		}
		return r.Code + ": " + msg
	}
	return atlas.OneLine(err)
}

// String implements blob.Store.
func (s *Store) String() string {
	out := "s3://" + s.cfg.Bucket + "/" + s.cfg.Prefix + " at " + s.cfg.Endpoint.String() + " (region " + s.cfg.Region
	switch {
	case !s.cfg.Presign:
		out += "; downloads through the server"
	case s.cfg.PublicEndpoint != nil:
		out += "; clients download from " + s.cfg.PublicEndpoint.String()
	}
	return out + ")"
}

func (s *Store) key(hexDigest string) string    { return s.cfg.Prefix + "sha256/" + hexDigest }
func (s *Store) marker(hexDigest string) string { return s.cfg.Prefix + "touched/" + hexDigest }
func (s *Store) digestKey(digest string) (string, error) {
	h, err := blob.ParseDigest(digest)
	if err != nil {
		return "", err
	}
	return s.key(h), nil
}

// wrap gives an S3 error the digest it concerns, without the request's details.
func (s *Store) wrap(op, digest string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("%s blob %s in %s: %s", op, digest, s.where(), describe(err))
}

func notFound(err error) bool {
	code := minio.ToErrorResponse(err).Code
	return code == "NoSuchKey" || code == "NotFound"
}

// Has implements blob.Store.
func (s *Store) Has(ctx context.Context, digest string) (bool, int64, error) {
	key, err := s.digestKey(digest)
	if err != nil {
		return false, 0, err
	}
	info, err := s.core.StatObject(ctx, s.cfg.Bucket, key, minio.StatObjectOptions{})
	if notFound(err) {
		return false, 0, nil
	}
	if err != nil {
		return false, 0, s.wrap("stat", digest, err)
	}
	return true, info.Size, nil
}

// Open implements blob.Store: reads are streamed, and a seek starts a ranged request.
func (s *Store) Open(ctx context.Context, digest string) (io.ReadSeekCloser, error) {
	key, err := s.digestKey(digest)
	if err != nil {
		return nil, err
	}
	obj, err := s.core.Client.GetObject(ctx, s.cfg.Bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, s.wrap("open", digest, err)
	}
	// The first request: a missing blob is an error here, not at the first read.
	if _, err := obj.Stat(); err != nil {
		obj.Close()
		if notFound(err) {
			return nil, atlas.NotFoundf("blob %s not found", digest)
		}
		return nil, s.wrap("open", digest, err)
	}
	return obj, nil
}

// Delete implements blob.Store.
func (s *Store) Delete(ctx context.Context, digest string) error {
	h, err := blob.ParseDigest(digest)
	if err != nil {
		return err
	}
	for _, key := range []string{s.key(h), s.marker(h)} {
		if err := s.core.RemoveObject(ctx, s.cfg.Bucket, key, minio.RemoveObjectOptions{}); err != nil && !notFound(err) {
			return s.wrap("delete", digest, err)
		}
	}
	return nil
}

// Touch implements blob.Store with an empty marker object: S3 cannot change an object's time
// without copying it.
func (s *Store) Touch(ctx context.Context, digest string) error {
	h, err := blob.ParseDigest(digest)
	if err != nil {
		return err
	}
	_, err = s.core.Client.PutObject(ctx, s.cfg.Bucket, s.marker(h), bytes.NewReader(nil), 0,
		minio.PutObjectOptions{DisableMultipart: true})
	if err != nil {
		return s.wrap("touch", digest, err)
	}
	return nil
}

// Walk implements blob.Store: a blob's time is that of its last upload or touch. A marker whose
// blob is gone is reported too, so that collection deletes it.
func (s *Store) Walk(ctx context.Context, fn func(digest string, stored time.Time) error) error {
	touched := map[string]time.Time{}
	list := func(prefix string, each func(hexDigest string, t time.Time) error) error {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel() // ends the listing if each stops early
		for o := range s.core.Client.ListObjects(ctx, s.cfg.Bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
			if o.Err != nil {
				return fmt.Errorf("list blobs in %s: %s", s.where(), describe(o.Err))
			}
			h := strings.TrimPrefix(o.Key, prefix)
			if _, err := blob.ParseDigest("sha256:" + h); err != nil {
				continue
			}
			if err := each(h, o.LastModified); err != nil {
				return err
			}
		}
		return ctx.Err()
	}
	err := list(s.cfg.Prefix+"touched/", func(h string, t time.Time) error { touched[h] = t; return nil })
	if err != nil {
		return err
	}
	err = list(s.cfg.Prefix+"sha256/", func(h string, t time.Time) error {
		if m, ok := touched[h]; ok {
			delete(touched, h)
			if m.After(t) {
				t = m
			}
		}
		return fn("sha256:"+h, t)
	})
	if err != nil {
		return err
	}
	for h, t := range touched {
		if err := fn("sha256:"+h, t); err != nil {
			return err
		}
	}
	return nil
}

// DownloadURL implements blob.Store with a presigned GET URL.
func (s *Store) DownloadURL(ctx context.Context, digest string, d blob.Download) (string, error) {
	key, err := s.digestKey(digest)
	if err != nil {
		return "", err
	}
	if !s.cfg.Presign {
		return "", nil
	}
	q := url.Values{}
	if d.ContentType != "" {
		q.Set("response-content-type", d.ContentType)
	}
	if d.ContentDisposition != "" {
		q.Set("response-content-disposition", d.ContentDisposition)
	}
	u, err := s.presign.PresignedGetObject(ctx, s.cfg.Bucket, key, URLExpiry, q)
	if err != nil {
		return "", s.wrap("presign", digest, err)
	}
	return u.String(), nil
}

// Put implements blob.Store.
func (s *Store) Put(ctx context.Context, r io.Reader, want string) (string, int64, error) {
	if want != "" {
		if _, err := blob.ParseDigest(want); err != nil {
			return "", 0, err
		}
	}
	hr := &blob.Hashing{R: r}
	// Most blobs are small: a part's buffer is taken only once the first MiB is not all.
	head := make([]byte, min(1<<20, s.cfg.PartSize))
	n, err := io.ReadFull(hr, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return "", 0, fmt.Errorf("store blob: %w", err)
	}
	if n < len(head) {
		return s.putOne(ctx, hr, head[:n], want)
	}
	first := s.buffer()
	copy(first, head)
	m, err := io.ReadFull(hr, first[len(head):])
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		s.release(first)
		return "", 0, fmt.Errorf("store blob: %w", err)
	}
	first = first[:len(head)+m]
	if int64(len(first)) < s.cfg.PartSize {
		defer s.release(first)
		return s.putOne(ctx, hr, first, want)
	}
	return s.putMultipart(ctx, hr, first, want)
}

// putOne stores data, all that hr yielded, with one request once its digest checks out.
func (s *Store) putOne(ctx context.Context, hr *blob.Hashing, data []byte, want string) (string, int64, error) {
	got, size := hr.Digest()
	if want != "" && got != want {
		return "", 0, blob.Mismatch(got, want)
	}
	key, _ := s.digestKey(got)
	_, err := s.core.Client.PutObject(ctx, s.cfg.Bucket, key, bytes.NewReader(data), size,
		minio.PutObjectOptions{ContentType: "application/octet-stream", DisableMultipart: true})
	if err != nil {
		return "", 0, s.wrap("store", got, err)
	}
	return got, size, nil
}

// buffer returns a part's buffer, reused from earlier uploads when there is one.
func (s *Store) buffer() []byte {
	if b, ok := s.parts.Get().(*[]byte); ok {
		return (*b)[:s.cfg.PartSize]
	}
	return make([]byte, s.cfg.PartSize)
}

func (s *Store) release(b []byte) {
	b = b[:cap(b)]
	s.parts.Put(&b)
}

// partsInFlight is how many parts of one upload are sent at a time while the next is read.
const partsInFlight = 2

// putMultipart uploads what hr yields, first part first, in parts, a few at a time while the
// next is read. Under a known digest the upload is completed only if the content hashes to
// it; otherwise it goes to a temporary object that is copied to its name once the content's
// digest is known.
func (s *Store) putMultipart(ctx context.Context, hr *blob.Hashing, first []byte, want string) (string, int64, error) {
	key := ""
	if want != "" {
		key, _ = s.digestKey(want)
	} else {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		key = s.cfg.Prefix + "tmp/" + hex.EncodeToString(b)
	}
	uploadID, err := s.core.NewMultipartUpload(ctx, s.cfg.Bucket, key, minio.PutObjectOptions{ContentType: "application/octet-stream"})
	if err != nil {
		s.release(first)
		return "", 0, s.wrap("store", cmp.Or(want, "(digest not yet known)"), err)
	}
	completed := false
	defer func() {
		if !completed {
			// Not with ctx: a cancelled upload is still aborted.
			abortCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			_ = s.core.AbortMultipartUpload(abortCtx, s.cfg.Bucket, key, uploadID)
		}
	}()

	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(partsInFlight)
	var mu sync.Mutex
	var parts []minio.CompletePart
	var readErr error
	buf := first
	for number := 1; ; number++ {
		if number > maxParts {
			s.release(buf)
			readErr = atlas.Invalidf("upload is larger than %d parts of %d bytes", maxParts, s.cfg.PartSize)
			break
		}
		data, num := buf, number
		g.Go(func() error {
			defer s.release(data)
			p, err := s.core.PutObjectPart(gctx, s.cfg.Bucket, key, uploadID, num, bytes.NewReader(data), int64(len(data)),
				minio.PutObjectPartOptions{})
			if err != nil {
				return err
			}
			mu.Lock()
			parts = append(parts, minio.CompletePart{PartNumber: num, ETag: p.ETag})
			mu.Unlock()
			return nil
		})
		if int64(len(data)) < s.cfg.PartSize {
			break // that was the last part
		}
		next := s.buffer()
		n, err := io.ReadFull(hr, next)
		if err == io.EOF || gctx.Err() != nil { // the end, or a part failed: stop reading
			s.release(next)
			break
		}
		if err != nil && err != io.ErrUnexpectedEOF {
			s.release(next)
			readErr = fmt.Errorf("store blob: %w", err)
			break
		}
		buf = next[:n]
	}
	if err := g.Wait(); err != nil {
		return "", 0, s.wrap("store", cmp.Or(want, "(digest not yet known)"), err)
	}
	if readErr != nil {
		return "", 0, readErr
	}
	slices.SortFunc(parts, func(a, b minio.CompletePart) int { return a.PartNumber - b.PartNumber })
	got, size := hr.Digest()
	if want != "" && got != want {
		return "", 0, blob.Mismatch(got, want)
	}
	if _, err := s.core.CompleteMultipartUpload(ctx, s.cfg.Bucket, key, uploadID, parts, minio.PutObjectOptions{}); err != nil {
		return "", 0, s.wrap("store", got, err)
	}
	completed = true
	if want == "" {
		// Named by its digest now that it is known: a copy inside the server.
		dst, _ := s.digestKey(got)
		_, err := s.core.Client.ComposeObject(ctx, minio.CopyDestOptions{Bucket: s.cfg.Bucket, Object: dst},
			minio.CopySrcOptions{Bucket: s.cfg.Bucket, Object: key})
		_ = s.core.RemoveObject(context.WithoutCancel(ctx), s.cfg.Bucket, key, minio.RemoveObjectOptions{})
		if err != nil {
			return "", 0, s.wrap("store", got, err)
		}
	}
	return got, size, nil
}
