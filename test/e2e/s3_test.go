package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/stretchr/testify/require"

	"github.com/atlasgo/atlas/internal/blob/blobtest"
)

// s3Bucket returns a client of the tests' S3 server and the name of a bucket that does not
// exist yet; whatever the test leaves in it is removed at the end.
func s3Bucket(t *testing.T) (blobtest.S3Server, *minio.Client, string) {
	t.Helper()
	srv := blobtest.NeedS3(t)
	u, err := url.Parse(srv.Endpoint)
	require.NoError(t, err)
	c, err := minio.New(u.Host, &minio.Options{Creds: credentials.NewStaticV4(srv.AccessKey, srv.SecretKey, ""), Region: "us-east-1"})
	require.NoError(t, err)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	bucket := "atlas-e2e-" + hex.EncodeToString(b)
	t.Cleanup(func() {
		ctx := t.Context()
		for o := range c.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true}) {
			if o.Err == nil {
				_ = c.RemoveObject(ctx, bucket, o.Key, minio.RemoveObjectOptions{})
			}
		}
		_ = c.RemoveBucket(ctx, bucket)
	})
	return srv, c, bucket
}

// objects lists a bucket's object names under prefix.
func objects(t *testing.T, c *minio.Client, bucket, prefix string) []string {
	t.Helper()
	var out []string
	for o := range c.ListObjects(t.Context(), bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		require.NoError(t, o.Err)
		out = append(out, o.Key)
	}
	sort.Strings(out)
	return out
}

// The seed's walkthrough with blobs in a real S3 server: the server makes the bucket, the
// bundle, artifact and archive land in it and nowhere on the server's disk, the archive is
// rebuilt from it, an artifact is downloaded from the bucket directly by a client that asks for
// that (a presigned URL, without its token) and through the server by others, and deleting the
// job removes its blobs from the bucket.
func TestServerWithS3Blobs(t *testing.T) {
	requirePython(t)
	t.Parallel()
	srv, s3c, bucket := s3Bucket(t)
	home := newHome(t)
	require.NoError(t, os.MkdirAll(filepath.Join(home, "config"), 0o755))
	blobsURL := "s3://" + bucket + "/atlas?endpoint=" + url.QueryEscape(srv.Endpoint) + "&region=us-east-1"
	require.NoError(t, os.WriteFile(filepath.Join(home, "config", "server.config.yaml"), []byte("blobs: "+blobsURL+"\n"), 0o600))
	// The credentials come from the standard environment variables.
	s := startServerEnv(t, home, home, []string{"AWS_ACCESS_KEY_ID=" + srv.AccessKey, "AWS_SECRET_ACCESS_KEY=" + srv.SecretKey})
	require.Contains(t, s.Stdout.String(), "  blobs:    s3://"+bucket+"/atlas/ at "+srv.Endpoint+" (region us-east-1)\n")
	require.NotContains(t, s.Stdout.String()+s.Stderr.String(), srv.SecretKey, "the secret is never printed")

	dir := t.TempDir()
	require.Equal(t, 0, cli(t, home, dir, "init", "my_project").Code)
	proj := filepath.Join(dir, "my_project")
	res := cli(t, home, proj, "submit", "scheduler", ".", "main.py")
	require.Equal(t, 0, res.Code, res.String())
	require.Contains(t, res.Stderr, "has completed")
	id := jobID(t, res.Stderr)
	var j struct {
		State         string `json:"state"`
		BundleDigest  string `json:"bundle_digest"`
		ArchiveDigest string `json:"archive_digest"`
		Artifacts     []struct {
			Key    string `json:"key"`
			Digest string `json:"digest"`
		} `json:"artifacts"`
	}
	require.Equal(t, http.StatusOK, s.api(t, "GET", "/api/v1/jobs/"+id, nil, &j))
	require.Equal(t, "completed", j.State)
	require.Len(t, j.Artifacts, 1)
	key := func(d string) string { return "atlas/sha256/" + strings.TrimPrefix(d, "sha256:") }
	stored := objects(t, s3c, bucket, "atlas/sha256/")
	for _, d := range []string{j.BundleDigest, j.ArchiveDigest, j.Artifacts[0].Digest} {
		require.Contains(t, stored, key(d))
	}
	_, err := os.Stat(filepath.Join(home, "blobs"))
	require.True(t, os.IsNotExist(err), "nothing is kept on the server's disk")

	// foundations get job: the bucket holds what the job changed in its bundle; the server
	// rebuilds the whole archive from the two as it sends it.
	dest := t.TempDir()
	res = cli(t, home, dest, "--debug", "get", "job", "scheduler", id)
	require.Equal(t, 0, res.Code, res.String())
	require.Contains(t, res.Stderr, "/api/v1/jobs/"+id+"/archive -> 200 OK (")

	// The archive of a script run by hand is whole: the CLI downloads it from the bucket, sent
	// there by the server; a token the server ignores (no --auth) would make the S3 server
	// refuse the presigned request, had it been sent along.
	res = python(t, home, proj, nil, "-c", "import foundations._tracker as t; print(t.current().id)")
	require.Equal(t, 0, res.Code, res.String())
	byHand := strings.TrimSpace(res.Stdout)
	res = runIn(t, home, dest, []string{"FOUNDATIONS_TOKEN=atl_not-for-the-bucket"}, cliBin(), "--debug", "get", "job", "scheduler", byHand)
	require.Equal(t, 0, res.Code, res.String())
	require.Contains(t, res.Stderr, "/api/v1/jobs/"+byHand+"/archive -> 200 OK from "+srv.Endpoint)
	require.NotContains(t, res.Stderr, "X-Amz-Signature", "--debug does not show the presigned URL")
	require.FileExists(t, filepath.Join(dest, byHand, "main.py"))
	want, err := os.ReadFile(filepath.Join(proj, "main.py"))
	require.NoError(t, err)
	got, err := os.ReadFile(filepath.Join(dest, id, "main.py"))
	require.NoError(t, err)
	require.Equal(t, want, got)

	// An artifact: streamed through the server to a client that does not ask for a redirect
	// (a browser, curl); a redirect to the bucket for one that does.
	artifactPath := "/api/v1/jobs/" + id + "/artifacts/" + url.PathEscape(j.Artifacts[0].Key)
	readme, err := os.ReadFile(filepath.Join(proj, "README.txt"))
	require.NoError(t, err)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(s.URL + artifactPath)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, readme, body)
	req, _ := http.NewRequest("GET", s.URL+artifactPath, nil)
	req.Header.Set("Atlas-Redirect", "storage")
	resp, err = noFollow.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusTemporaryRedirect, resp.StatusCode)
	loc := resp.Header.Get("Location")
	require.True(t, strings.HasPrefix(loc, srv.Endpoint+"/"+bucket+"/"+key(j.Artifacts[0].Digest)+"?"), loc)
	resp, err = http.Get(loc)
	require.NoError(t, err)
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, readme, body)
	require.Equal(t, "text/plain; charset=utf-8", resp.Header.Get("Content-Type"), "the bucket answers with the artifact's headers")

	// The Python client follows the same redirect, without its token.
	script := `import hashlib, sys
from foundations._client import Client
c = Client(sys.argv[1], token="atl_not-for-the-bucket")
_, _, data = c.request("GET", sys.argv[2])
print(hashlib.sha256(data).hexdigest())
`
	res = python(t, home, dir, nil, "-c", script, s.URL, "/api/v1/jobs/"+id+"/bundle")
	require.Equal(t, 0, res.Code, res.String())
	require.Equal(t, strings.TrimPrefix(j.BundleDigest, "sha256:")+"\n", res.Stdout, "the job's bundle, from the bucket")

	// Deleting the jobs removes their blobs from the bucket, and the markers that kept them.
	res = cli(t, home, dir, "delete", "job", "scheduler", id, byHand)
	require.Equal(t, 0, res.Code, res.String())
	require.Empty(t, objects(t, s3c, bucket, "atlas/"))
}

// A download through the server of a blob in S3 is streamed with ranges, and a job's bundle is
// its own to fetch; a bucket that cannot be used stops the server with a one-line reason.
func TestS3BlobsStreamedAndRefused(t *testing.T) {
	requirePython(t)
	t.Parallel()
	srv, _, bucket := s3Bucket(t)
	home := newHome(t)
	require.NoError(t, os.MkdirAll(filepath.Join(home, "config"), 0o755))
	cfg := "blobs: s3://" + bucket + "?endpoint=" + url.QueryEscape(srv.Endpoint) + "\n" +
		"s3_access_key_id: " + srv.AccessKey + "\ns3_secret_access_key: wrong-" + srv.SecretKey[:6] + "\n"
	require.NoError(t, os.WriteFile(filepath.Join(home, "config", "server.config.yaml"), []byte(cfg), 0o600))
	s, err := launchServer(t, home)
	require.Error(t, err)
	code, err := s.WaitExit(commandTimeout)
	require.NoError(t, err)
	require.Equal(t, 1, code)
	lines := errorLines(s.Stderr.String())
	require.Len(t, lines, 1, s.Stderr.String())
	require.Contains(t, lines[0], `blobs: bucket "`+bucket+`" at `+srv.Endpoint+": SignatureDoesNotMatch")
	require.Contains(t, lines[0], "check the S3 credentials")
	require.NotContains(t, s.Stderr.String()+s.Stdout.String(), "wrong-"+srv.SecretKey[:6])

	// The credentials of the file, right this time.
	cfg = strings.Replace(cfg, "wrong-"+srv.SecretKey[:6], srv.SecretKey, 1)
	require.NoError(t, os.WriteFile(filepath.Join(home, "config", "server.config.yaml"), []byte(cfg), 0o600))
	s = startServer(t, home)
	proj := newProject(t, "ranges", map[string]string{"main.py": "print('ok')\n", "data.bin": strings.Repeat("0123456789", 100_000)})
	id := s.submitNoStream(t, proj, "main.py")
	require.Equal(t, "completed", s.waitDone(t, id).State)
	req, _ := http.NewRequest("GET", s.URL+"/api/v1/jobs/"+id+"/bundle", nil)
	req.Header.Set("Range", "bytes=10-19")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusPartialContent, resp.StatusCode)
	require.Len(t, body, 10)
	resp, err = http.Get(s.URL + "/api/v1/jobs/" + id + "/bundle")
	require.NoError(t, err)
	whole, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.True(t, bytes.Equal(whole[10:20], body), "the range is the bundle's bytes 10 to 19")
}
