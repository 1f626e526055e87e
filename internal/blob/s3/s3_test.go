package s3

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/stretchr/testify/require"

	"github.com/atlasgo/atlas/internal/blob"
	"github.com/atlasgo/atlas/internal/blob/blobtest"
)

// bucketName is a fresh bucket's name.
func bucketName() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "atlas-test-" + hex.EncodeToString(b)
}

// admin is a plain client of the test server, to look at the bucket behind the store's back.
func admin(t *testing.T, srv blobtest.S3Server) *minio.Core {
	t.Helper()
	u, err := url.Parse(srv.Endpoint)
	require.NoError(t, err)
	c, err := minio.NewCore(u.Host, &minio.Options{Creds: credentials.NewStaticV4(srv.AccessKey, srv.SecretKey, ""), Region: "us-east-1"})
	require.NoError(t, err)
	return c
}

// configFor is the configuration of a store in bucket, with the smallest parts S3 allows so
// that the suite's large blobs are multipart uploads.
func configFor(t *testing.T, srv blobtest.S3Server, bucket, prefix string) Config {
	t.Helper()
	c, err := ParseURL("s3://" + bucket + "/" + prefix + "?endpoint=" + url.QueryEscape(srv.Endpoint))
	require.NoError(t, err)
	c.AccessKeyID, c.SecretAccessKey = srv.AccessKey, srv.SecretKey
	c.PartSize = minPartSize
	return c
}

// newBucket returns the tests' S3 server, a plain client of it and the name of a bucket that
// does not exist yet, emptied and removed when the test ends.
func newBucket(t *testing.T) (blobtest.S3Server, *minio.Core, string) {
	t.Helper()
	srv := blobtest.NeedS3(t)
	bucket := bucketName()
	a := admin(t, srv)
	removeBucket(t, a, bucket)
	return srv, a, bucket
}

// removeBucket empties and removes a bucket when the test ends.
func removeBucket(t *testing.T, c *minio.Core, bucket string) {
	t.Cleanup(func() {
		ctx := context.Background()
		for o := range c.Client.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true}) {
			if o.Err == nil {
				_ = c.RemoveObject(ctx, bucket, o.Key, minio.RemoveObjectOptions{})
			}
		}
		_ = c.RemoveBucket(ctx, bucket)
	})
}

func TestConformance(t *testing.T) {
	t.Parallel()
	srv, a, bucket := newBucket(t)
	var n atomic.Int64
	blobtest.Exercise(t, func(t *testing.T) blob.Store {
		// One bucket, a prefix per store: stores under different prefixes do not meet.
		s, err := Open(t.Context(), configFor(t, srv, bucket, "store"+strings.Repeat("x", int(n.Add(1)))))
		require.NoError(t, err)
		t.Cleanup(func() {
			if t.Failed() {
				return
			}
			// Whatever the suite did, no upload is left unfinished.
			// (Listed for the whole bucket: MinIO takes a prefix for a whole object name.)
			for u := range a.ListIncompleteUploads(context.Background(), bucket, "", true) {
				require.NoError(t, u.Err)
				if strings.HasPrefix(u.Key, s.cfg.Prefix) {
					t.Errorf("an unfinished upload is left: %s", u.Key)
				}
			}
		})
		return s
	})
}

// A large blob is a multipart upload, in parts of the configured size; one that fits in a part
// is one PUT.
func TestLargeBlobsAreMultipart(t *testing.T) {
	t.Parallel()
	srv, a, bucket := newBucket(t)
	s, err := Open(t.Context(), configFor(t, srv, bucket, "p"))
	require.NoError(t, err)
	for _, c := range []struct {
		size  int
		want  string
		etag  string
		parts string
	}{
		{size: minPartSize - 1, etag: "", parts: "one PUT"},
		{size: blobtest.LargeSize, want: "digest", etag: "-3", parts: "three parts"},
		{size: 2*minPartSize + 1, parts: "three parts, digest not known before, then copied to its name"},
	} {
		content := blobtest.Random(uint64(c.size), c.size)
		want := ""
		if c.want != "" {
			want = blobtest.DigestOf(content)
		}
		d, _, err := s.Put(t.Context(), bytes.NewReader(content), want)
		require.NoError(t, err)
		h, _ := blob.ParseDigest(d)
		info, err := a.StatObject(t.Context(), bucket, "p/sha256/"+h, minio.StatObjectOptions{})
		require.NoError(t, err)
		require.EqualValues(t, c.size, info.Size)
		switch {
		case c.want == "" && c.size > minPartSize:
			// Copied inside the server: parts as it pleases.
		case c.etag == "":
			require.NotContains(t, info.ETag, "-", c.parts)
		default:
			require.True(t, strings.HasSuffix(info.ETag, c.etag), "%s: ETag %s", c.parts, info.ETag)
		}
	}
	// The upload of unknown digest went through a temporary object, gone now.
	var keys []string
	for o := range a.Client.ListObjects(t.Context(), bucket, minio.ListObjectsOptions{Recursive: true}) {
		require.NoError(t, o.Err)
		keys = append(keys, o.Key)
	}
	require.Len(t, keys, 3)
	for _, k := range keys {
		require.True(t, strings.HasPrefix(k, "p/sha256/"), k)
	}
}

// What a server cut short left under the prefix (unfinished uploads, temporary objects) is
// removed when the next one opens the store; other prefixes are left alone.
func TestOpenRemovesWhatAnEarlierServerLeft(t *testing.T) {
	t.Parallel()
	srv, a, bucket := newBucket(t)
	_, err := Open(t.Context(), configFor(t, srv, bucket, "mine"))
	require.NoError(t, err)
	ctx := t.Context()
	mine, err := a.NewMultipartUpload(ctx, bucket, "mine/sha256/"+strings.Repeat("a", 64), minio.PutObjectOptions{})
	require.NoError(t, err)
	theirs, err := a.NewMultipartUpload(ctx, bucket, "theirs/sha256/"+strings.Repeat("a", 64), minio.PutObjectOptions{})
	require.NoError(t, err)
	_, err = a.Client.PutObject(ctx, bucket, "mine/tmp/0123", strings.NewReader("half"), 4, minio.PutObjectOptions{})
	require.NoError(t, err)

	_, err = Open(ctx, configFor(t, srv, bucket, "mine"))
	require.NoError(t, err)
	var left []string
	for u := range a.ListIncompleteUploads(ctx, bucket, "", true) {
		require.NoError(t, u.Err)
		left = append(left, u.UploadID)
	}
	require.NotContains(t, left, mine)
	require.Contains(t, left, theirs)
	_, err = a.StatObject(ctx, bucket, "mine/tmp/0123", minio.StatObjectOptions{})
	require.Equal(t, "NoSuchKey", minio.ToErrorResponse(err).Code)
	require.NoError(t, a.AbortMultipartUpload(ctx, bucket, "theirs/sha256/"+strings.Repeat("a", 64), theirs))
}

// A missing bucket is created; wrong credentials and an unreachable server are one-line errors
// that name the bucket and never the secret.
func TestOpenChecksTheBucketAndCredentials(t *testing.T) {
	t.Parallel()
	srv, a, bucket := newBucket(t)
	ok, err := a.BucketExists(t.Context(), bucket)
	require.NoError(t, err)
	require.False(t, ok)
	s, err := Open(t.Context(), configFor(t, srv, bucket, ""))
	require.NoError(t, err)
	ok, err = a.BucketExists(t.Context(), bucket)
	require.NoError(t, err)
	require.True(t, ok, "Open created the bucket")
	require.Equal(t, "s3://"+bucket+"/ at "+srv.Endpoint+" (region us-east-1)", s.String())

	bad := configFor(t, srv, bucket, "")
	bad.SecretAccessKey = "not-the-secret-" + srv.SecretKey[:4]
	_, err = Open(t.Context(), bad)
	require.Error(t, err)
	require.Contains(t, err.Error(), bucket)
	require.Contains(t, err.Error(), "check the S3 credentials")
	require.NotContains(t, err.Error(), bad.SecretAccessKey)
	require.NotContains(t, err.Error(), "\n")

	down := configFor(t, srv, bucket, "")
	down.Endpoint = &url.URL{Scheme: "http", Host: "127.0.0.1:1"}
	_, err = Open(t.Context(), down)
	require.Error(t, err)
	require.Contains(t, err.Error(), "127.0.0.1:1")
	require.NotContains(t, err.Error(), "\n")
}

// Download URLs name the public endpoint when there is one, and there are none with
// presign=false.
func TestDownloadURLSettings(t *testing.T) {
	t.Parallel()
	srv, _, bucket := newBucket(t)
	d := blobtest.DigestOf([]byte("x"))

	c := configFor(t, srv, bucket, "")
	c.PublicEndpoint = &url.URL{Scheme: "https", Host: "blobs.example.org"}
	s, err := Open(t.Context(), c)
	require.NoError(t, err)
	u, err := s.DownloadURL(t.Context(), d, blob.Download{})
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(u, "https://blobs.example.org/"+bucket+"/sha256/"), u)
	require.Contains(t, s.String(), "clients download from https://blobs.example.org")

	c = configFor(t, srv, bucket, "")
	c.Presign = false
	s, err = Open(t.Context(), c)
	require.NoError(t, err)
	u, err = s.DownloadURL(t.Context(), d, blob.Download{})
	require.NoError(t, err)
	require.Empty(t, u)
	require.Contains(t, s.String(), "downloads through the server")
}

func TestNoCredentials(t *testing.T) {
	// Not parallel: it changes the environment.
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY", "AWS_SECRET_KEY", "AWS_SESSION_TOKEN"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	c, err := ParseURL("s3://b?endpoint=http://127.0.0.1:1")
	require.NoError(t, err)
	_, err = Open(t.Context(), c)
	require.EqualError(t, err, "blobs: no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "+
		"or s3_access_key_id and s3_secret_access_key in server.config.yaml")

	// The environment's are used.
	srv, _, bucket := newBucket(t)
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	c, err = ParseURL("s3://" + bucket + "?endpoint=" + url.QueryEscape(srv.Endpoint))
	require.NoError(t, err)
	s, err := Open(t.Context(), c)
	require.NoError(t, err)
	_, _, err = s.Put(t.Context(), strings.NewReader("with the environment's keys"), "")
	require.NoError(t, err)
}

func TestParseURL(t *testing.T) {
	t.Parallel()
	c, err := ParseURL("s3://atlas-blobs/team/a/?endpoint=http://127.0.0.1:9000&region=eu-west-1&public_endpoint=https://s3.example.org&presign=false")
	require.NoError(t, err)
	require.Equal(t, "atlas-blobs", c.Bucket)
	require.Equal(t, "team/a/", c.Prefix)
	require.Equal(t, "http://127.0.0.1:9000", c.Endpoint.String())
	require.Equal(t, "https://s3.example.org", c.PublicEndpoint.String())
	require.Equal(t, "eu-west-1", c.Region)
	require.False(t, c.Presign)

	c, err = ParseURL("s3://b")
	require.NoError(t, err)
	require.Equal(t, "", c.Prefix)
	require.Equal(t, "https://s3.amazonaws.com", c.Endpoint.String())
	require.Equal(t, "us-east-1", c.Region)
	require.True(t, c.Presign)
	require.Nil(t, c.PublicEndpoint)

	for raw, want := range map[string]string{
		"http://b":                                 "want s3://bucket/prefix",
		"s3:///prefix":                             "no bucket",
		"s3://key:s3cr3t@b":                        "credentials do not go in the URL",
		"http://key:s3cr3t@b":                      "want s3://bucket/prefix",
		"s3://b/../x":                              "invalid prefix",
		"s3://b/a//x":                              "invalid prefix",
		"s3://b?endpoint=127.0.0.1:9000":           "want http://host:port",
		"s3://b?endpoint=ftp://h":                  "want http://host:port",
		"s3://b?endpoint=http://h/path":            "want http://host:port",
		"s3://b?public_endpoint=http://u:s3cr3t@h": "want http://host:port",
		"s3://b?presign=maybe":                     "presign=\"maybe\": want true or false",
		"s3://b?access_key=x":                      "unknown setting \"access_key\"",
		"s3://b?endpoint=http://h&region=x&bad=1":  "unknown setting \"bad\"",
	} {
		_, err := ParseURL(raw)
		require.ErrorContains(t, err, want, raw)
		require.NotContains(t, err.Error(), "s3cr3t", raw)
	}
}
