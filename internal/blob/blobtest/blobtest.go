// Package blobtest is the conformance suite every blob.Store backend must pass.
//
// A backend's test calls Exercise with a constructor that returns a fresh, empty store. New
// behaviour of blob stores is specified here first. It must only be imported from tests.
package blobtest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/blob"
)

// LargeSize is the size of the suite's large blobs: more than two parts of the smallest
// multipart upload S3 allows (5 MiB), so a backend that splits uploads splits these.
const LargeSize = 11<<20 + 12345

// DigestOf is the digest of b.
func DigestOf(b []byte) string {
	s := sha256.Sum256(b)
	return blob.Digest(s[:])
}

// Random returns n bytes that do not compress, the same for the same seed.
func Random(seed uint64, n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16)})
	_, _ = r.Read(b)
	return b
}

// Read returns a blob's content.
func Read(t *testing.T, s blob.Store, d string) []byte {
	t.Helper()
	f, err := s.Open(t.Context(), d)
	require.NoError(t, err)
	defer f.Close()
	b, err := io.ReadAll(f)
	require.NoError(t, err)
	return b
}

// All returns every blob Walk reports, with its time.
func All(t *testing.T, s blob.Store) map[string]time.Time {
	t.Helper()
	out := map[string]time.Time{}
	require.NoError(t, s.Walk(t.Context(), func(d string, stored time.Time) error {
		_, dup := out[d]
		require.False(t, dup, "Walk reports %s twice", d)
		out[d] = stored
		return nil
	}))
	return out
}

func requireNothingStored(t *testing.T, s blob.Store, digests ...string) {
	t.Helper()
	require.Empty(t, All(t, s), "nothing is stored")
	for _, d := range digests {
		ok, _, err := s.Has(t.Context(), d)
		require.NoError(t, err)
		require.False(t, ok, d)
		_, err = s.Open(t.Context(), d)
		require.ErrorIs(t, err, atlas.ErrNotFound, d)
	}
}

// failingReader yields n bytes of 'a', then fails.
type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, errors.New("connection reset")
	}
	k := min(len(p), r.n)
	for i := range k {
		p[i] = 'a'
	}
	r.n -= k
	return k, nil
}

// Exercise runs the suite against the stores newStore returns.
func Exercise(t *testing.T, newStore func(t *testing.T) blob.Store) {
	t.Run("PutWithoutDigest", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		for _, content := range [][]byte{[]byte("hello, blob"), Random(1, LargeSize)} {
			d, n, err := s.Put(t.Context(), bytes.NewReader(content), "")
			require.NoError(t, err)
			require.Equal(t, DigestOf(content), d)
			require.EqualValues(t, len(content), n)
			require.Equal(t, content, Read(t, s, d))
			ok, size, err := s.Has(t.Context(), d)
			require.NoError(t, err)
			require.True(t, ok)
			require.EqualValues(t, len(content), size)
		}
		require.Len(t, All(t, s), 2, "only the blobs: nothing temporary is left")
	})

	t.Run("PutEmpty", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		for _, want := range []string{"", DigestOf(nil)} {
			d, n, err := s.Put(t.Context(), strings.NewReader(""), want)
			require.NoError(t, err)
			require.Equal(t, "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", d)
			require.Zero(t, n)
			ok, size, err := s.Has(t.Context(), d)
			require.NoError(t, err)
			require.True(t, ok)
			require.Zero(t, size)
			require.Empty(t, Read(t, s, d))
		}
	})

	t.Run("PutWithMatchingDigest", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		for _, content := range [][]byte{bytes.Repeat([]byte("0123456789"), 100_000), Random(2, LargeSize)} {
			want := DigestOf(content)
			d, n, err := s.Put(t.Context(), bytes.NewReader(content), want)
			require.NoError(t, err)
			require.Equal(t, want, d)
			require.EqualValues(t, len(content), n)
			require.Equal(t, content, Read(t, s, d))
		}
		require.Len(t, All(t, s), 2)
	})

	t.Run("PutDigestMismatchStoresNothing", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		for _, content := range [][]byte{[]byte("the whole upload"), Random(3, LargeSize)} {
			want := DigestOf(content)
			cut := content[:len(content)-4]
			_, _, err := s.Put(t.Context(), bytes.NewReader(cut), want)
			require.ErrorIs(t, err, atlas.ErrInvalid)
			require.Contains(t, err.Error(), "does not match digest")
			require.Contains(t, err.Error(), want)
			require.NotContains(t, err.Error(), "\n")
			requireNothingStored(t, s, want, DigestOf(cut))
		}
	})

	t.Run("PutBadExpectedDigest", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		_, _, err := s.Put(t.Context(), strings.NewReader("x"), "md5:abc")
		require.ErrorIs(t, err, atlas.ErrInvalid)
		requireNothingStored(t, s, DigestOf([]byte("x")))
	})

	t.Run("PutReadErrorStoresNothing", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		for _, n := range []int{10_000, LargeSize} {
			_, _, err := s.Put(t.Context(), &failingReader{n: n}, "")
			require.ErrorContains(t, err, "connection reset")
			_, _, err = s.Put(t.Context(), &failingReader{n: n}, DigestOf(bytes.Repeat([]byte("a"), n)))
			require.ErrorContains(t, err, "connection reset")
			requireNothingStored(t, s, DigestOf(bytes.Repeat([]byte("a"), n)))
		}
	})

	t.Run("PutTwiceIsIdempotent", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		d1, _, err := s.Put(t.Context(), strings.NewReader("same"), "")
		require.NoError(t, err)
		d2, _, err := s.Put(t.Context(), strings.NewReader("same"), d1)
		require.NoError(t, err)
		require.Equal(t, d1, d2)
		require.Len(t, All(t, s), 1)
		require.Equal(t, "same", string(Read(t, s, d1)))
	})

	t.Run("ConcurrentPutsOfSameContent", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		for _, c := range []struct {
			content []byte
			n       int
		}{{bytes.Repeat([]byte("concurrent "), 50_000), 16}, {Random(4, LargeSize), 4}} {
			want := DigestOf(c.content)
			var wg sync.WaitGroup
			errs := make([]error, c.n)
			digests := make([]string, c.n)
			for i := range c.n {
				wg.Go(func() {
					exp := ""
					if i%2 == 0 {
						exp = want
					}
					digests[i], _, errs[i] = s.Put(t.Context(), bytes.NewReader(c.content), exp)
				})
			}
			wg.Wait()
			for i := range c.n {
				require.NoError(t, errs[i])
				require.Equal(t, want, digests[i])
			}
			require.Contains(t, All(t, s), want)
			require.Equal(t, c.content, Read(t, s, want))
		}
		require.Len(t, All(t, s), 2)
	})

	t.Run("OpenSeeks", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		content := Random(5, LargeSize)
		d, _, err := s.Put(t.Context(), bytes.NewReader(content), "")
		require.NoError(t, err)
		f, err := s.Open(t.Context(), d)
		require.NoError(t, err)
		defer f.Close()
		end, err := f.Seek(0, io.SeekEnd)
		require.NoError(t, err)
		require.EqualValues(t, len(content), end)
		for _, off := range []int64{9 << 20, 12345, 0} {
			_, err = f.Seek(off, io.SeekStart)
			require.NoError(t, err)
			got := make([]byte, 1000)
			_, err = io.ReadFull(f, got)
			require.NoError(t, err)
			require.Equal(t, content[off:off+1000], got, "at %d", off)
		}
	})

	t.Run("HasOpenDelete", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		d, _, err := s.Put(t.Context(), strings.NewReader("abc"), "")
		require.NoError(t, err)
		other, _, err := s.Put(t.Context(), strings.NewReader("kept"), "")
		require.NoError(t, err)

		ok, size, err := s.Has(t.Context(), d)
		require.NoError(t, err)
		require.True(t, ok)
		require.EqualValues(t, 3, size)

		require.NoError(t, s.Delete(t.Context(), d))
		ok, _, err = s.Has(t.Context(), d)
		require.NoError(t, err)
		require.False(t, ok)
		_, err = s.Open(t.Context(), d)
		require.ErrorIs(t, err, atlas.ErrNotFound)
		require.NotContains(t, err.Error(), "\n")
		require.NoError(t, s.Delete(t.Context(), d), "deleting a missing blob is not an error")
		require.Equal(t, []string{other}, keys(All(t, s)), "only that blob went")
	})

	t.Run("HostileDigests", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		hex64 := strings.Repeat("a", 64)
		for _, bad := range []string{
			"", "sha256:", "sha256:xyz", "../../etc/passwd", "sha256:../../../etc/passwd",
			"sha256:" + strings.Repeat("../", 21) + "a", "sha256:" + hex64[:62] + "/.",
			"sha256:" + strings.Repeat("A", 64), "SHA256:" + hex64, "sha512:" + hex64, hex64,
			"sha256:" + hex64 + "\n", "sha256:" + strings.Repeat("\x00", 64), "sha256:" + hex64[:63] + "?",
			"sha256:" + hex64[:60] + "%2e%2", "sha256:" + strings.Repeat("é", 32),
		} {
			_, _, err := s.Has(t.Context(), bad)
			require.ErrorIs(t, err, atlas.ErrInvalid, "%q", bad)
			_, err = s.Open(t.Context(), bad)
			require.ErrorIs(t, err, atlas.ErrInvalid, "%q", bad)
			require.ErrorIs(t, s.Delete(t.Context(), bad), atlas.ErrInvalid, "%q", bad)
			require.ErrorIs(t, s.Touch(t.Context(), bad), atlas.ErrInvalid, "%q", bad)
			_, err = s.DownloadURL(t.Context(), bad, blob.Download{})
			require.ErrorIs(t, err, atlas.ErrInvalid, "%q", bad)
			if bad != "" { // "" expects no digest
				_, _, err = s.Put(t.Context(), strings.NewReader("x"), bad)
				require.ErrorIs(t, err, atlas.ErrInvalid, "%q", bad)
				require.NotContains(t, err.Error(), "\n")
			}
		}
		require.Empty(t, All(t, s), "no digest named anything")
	})

	t.Run("WalkReportsEveryBlobWithItsTime", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		// Object stores keep times to the second.
		before := time.Now().Truncate(time.Second)
		want := map[string]bool{}
		for i := range 5 {
			d, _, err := s.Put(t.Context(), strings.NewReader(strings.Repeat("w", i)), "")
			require.NoError(t, err)
			want[d] = true
		}
		after := time.Now().Add(time.Second)
		all := All(t, s)
		require.Len(t, all, len(want))
		for d, stored := range all {
			require.True(t, want[d], d)
			require.False(t, stored.Before(before), "%s stored at %s, before %s", d, stored, before)
			require.False(t, stored.After(after), "%s stored at %s, after %s", d, stored, after)
		}

		stop := errors.New("enough")
		seen := 0
		err := s.Walk(t.Context(), func(string, time.Time) error { seen++; return stop })
		require.ErrorIs(t, err, stop, "Walk returns fn's error")
		require.Equal(t, 1, seen, "and stops there")
	})

	t.Run("TouchRenewsABlob", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		d, _, err := s.Put(t.Context(), strings.NewReader("touched"), "")
		require.NoError(t, err)
		other, _, err := s.Put(t.Context(), strings.NewReader("left alone"), "")
		require.NoError(t, err)
		stored := All(t, s)
		// Object stores keep times to the second: touch in a later one, or the change would
		// not show.
		for time.Now().Before(stored[d].Add(time.Second)) {
			time.Sleep(time.Until(stored[d].Add(time.Second + 10*time.Millisecond)))
		}
		require.NoError(t, s.Touch(t.Context(), d))
		now := All(t, s)
		require.Len(t, now, 2)
		require.True(t, now[d].After(stored[d]), "touched: %s, stored: %s", now[d], stored[d])
		require.Equal(t, stored[other], now[other], "another blob keeps its time")
		require.Equal(t, "touched", string(Read(t, s, d)), "a touch leaves the content as it was")

		// Touching a blob that is not there is no error and stores no blob; deleting it
		// leaves nothing behind.
		gone := DigestOf([]byte("never stored"))
		require.NoError(t, s.Touch(t.Context(), gone))
		ok, _, err := s.Has(t.Context(), gone)
		require.NoError(t, err)
		require.False(t, ok)
		for _, x := range []string{d, other, gone} {
			require.NoError(t, s.Delete(t.Context(), x))
		}
		require.Empty(t, All(t, s))
	})

	t.Run("DownloadURL", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		content := Random(6, 300_000)
		d, _, err := s.Put(t.Context(), bytes.NewReader(content), "")
		require.NoError(t, err)
		disposition := mime.FormatMediaType("attachment", map[string]string{"filename": "model weights é.bin"})
		u, err := s.DownloadURL(t.Context(), d, blob.Download{ContentType: "application/octet-stream", ContentDisposition: disposition})
		require.NoError(t, err)
		if u == "" {
			t.Skip("this store has no download URLs: the server streams its blobs")
		}
		resp, err := http.Get(u)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		got, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Equal(t, content, got)
		require.Equal(t, "application/octet-stream", resp.Header.Get("Content-Type"))
		require.Equal(t, disposition, resp.Header.Get("Content-Disposition"))
	})
}

func keys(m map[string]time.Time) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// S3Server is the S3 server the tests use: scripts/s3-server.sh starts one and says where
// in ATLAS_TEST_S3_URL (http://<access key>:<secret key>@127.0.0.1:<port>).
type S3Server struct {
	Endpoint             string // http://127.0.0.1:<port>
	AccessKey, SecretKey string
}

// NeedS3 returns the tests' S3 server. Without one it skips the test, or fails it when
// CI=true: CI must test against a real S3 server.
func NeedS3(t testing.TB) S3Server {
	t.Helper()
	raw := os.Getenv("ATLAS_TEST_S3_URL")
	if raw == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("ATLAS_TEST_S3_URL is not set (CI=true): run the tests under scripts/s3-server.sh")
		}
		t.Skip("no S3 server: run under scripts/s3-server.sh (it builds MinIO once with CI=true or --build)")
	}
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		t.Fatalf("ATLAS_TEST_S3_URL: want http://<access key>:<secret key>@127.0.0.1:<port>, got something else")
	}
	secret, _ := u.User.Password()
	return S3Server{Endpoint: u.Scheme + "://" + u.Host, AccessKey: u.User.Username(), SecretKey: secret}
}
