package blob

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/atlasgo/atlas/internal/atlas"
)

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return Digest(s[:])
}

func newStore(t *testing.T) (*Store, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "blobs")
	s, err := New(dir)
	require.NoError(t, err)
	return s, dir
}

// files lists every regular file under dir, relative to it.
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	require.NoError(t, filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	}))
	return out
}

func readBlob(t *testing.T, s *Store, d string) []byte {
	t.Helper()
	f, err := s.Open(d)
	require.NoError(t, err)
	defer f.Close()
	b, err := io.ReadAll(f)
	require.NoError(t, err)
	return b
}

func TestPutWithoutDigest(t *testing.T) {
	t.Parallel()
	s, dir := newStore(t)
	content := []byte("hello, blob")
	d, n, err := s.Put(bytes.NewReader(content), "")
	require.NoError(t, err)
	require.Equal(t, digestOf(content), d)
	require.EqualValues(t, len(content), n)
	require.Equal(t, content, readBlob(t, s, d))

	p, err := s.Path(d)
	require.NoError(t, err)
	h, _ := ParseDigest(d)
	require.Equal(t, filepath.Join(dir, "sha256", h[:2], h), p)
	fi, err := os.Stat(p)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o644), fi.Mode().Perm())
	require.Equal(t, []string{"sha256/" + h[:2] + "/" + h}, files(t, dir), "no temporary file is left behind")
}

func TestPutEmpty(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	d, n, err := s.Put(strings.NewReader(""), "")
	require.NoError(t, err)
	require.Equal(t, "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", d)
	require.Zero(t, n)
	ok, size, err := s.Has(d)
	require.NoError(t, err)
	require.True(t, ok)
	require.Zero(t, size)
}

func TestPutWithMatchingDigest(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	content := bytes.Repeat([]byte("0123456789"), 100_000)
	want := digestOf(content)
	d, n, err := s.Put(bytes.NewReader(content), want)
	require.NoError(t, err)
	require.Equal(t, want, d)
	require.EqualValues(t, len(content), n)
	require.Equal(t, content, readBlob(t, s, d))
}

func TestPutDigestMismatchStoresNothing(t *testing.T) {
	t.Parallel()
	s, dir := newStore(t)
	want := digestOf([]byte("the whole upload"))
	_, _, err := s.Put(strings.NewReader("the whole up"), want)
	require.ErrorIs(t, err, atlas.ErrInvalid)
	require.Contains(t, err.Error(), "does not match digest")
	require.Contains(t, err.Error(), want)
	require.NotContains(t, err.Error(), "\n")
	require.Empty(t, files(t, dir), "a rejected upload leaves no blob and no temporary file")

	ok, _, err := s.Has(want)
	require.NoError(t, err)
	require.False(t, ok)
	_, err = s.Open(digestOf([]byte("the whole up")))
	require.ErrorIs(t, err, atlas.ErrNotFound)
}

func TestPutBadExpectedDigest(t *testing.T) {
	t.Parallel()
	s, dir := newStore(t)
	_, _, err := s.Put(strings.NewReader("x"), "md5:abc")
	require.ErrorIs(t, err, atlas.ErrInvalid)
	require.Empty(t, files(t, dir))
}

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

func TestPutReadErrorStoresNothing(t *testing.T) {
	t.Parallel()
	s, dir := newStore(t)
	_, _, err := s.Put(&failingReader{n: 10_000}, "")
	require.ErrorContains(t, err, "connection reset")
	require.Empty(t, files(t, dir))
}

func TestPutTwiceIsIdempotent(t *testing.T) {
	t.Parallel()
	s, dir := newStore(t)
	d1, _, err := s.Put(strings.NewReader("same"), "")
	require.NoError(t, err)
	d2, _, err := s.Put(strings.NewReader("same"), d1)
	require.NoError(t, err)
	require.Equal(t, d1, d2)
	require.Len(t, files(t, dir), 1)
}

func TestConcurrentPutsOfSameContent(t *testing.T) {
	t.Parallel()
	s, dir := newStore(t)
	content := bytes.Repeat([]byte("concurrent "), 50_000)
	want := digestOf(content)
	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	digests := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			exp := ""
			if i%2 == 0 {
				exp = want
			}
			digests[i], _, errs[i] = s.Put(bytes.NewReader(content), exp)
		}()
	}
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i])
		require.Equal(t, want, digests[i])
	}
	require.Len(t, files(t, dir), 1)
	require.Equal(t, content, readBlob(t, s, want))
}

func TestPutFile(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	p := filepath.Join(t.TempDir(), "f")
	require.NoError(t, os.WriteFile(p, []byte("file content"), 0o600))
	d, n, err := s.PutFile(p)
	require.NoError(t, err)
	require.Equal(t, digestOf([]byte("file content")), d)
	require.EqualValues(t, 12, n)

	_, _, err = s.PutFile(filepath.Join(t.TempDir(), "missing"))
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestHasOpenDelete(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	d, _, err := s.Put(strings.NewReader("abc"), "")
	require.NoError(t, err)

	ok, size, err := s.Has(d)
	require.NoError(t, err)
	require.True(t, ok)
	require.EqualValues(t, 3, size)

	require.NoError(t, s.Delete(d))
	ok, _, err = s.Has(d)
	require.NoError(t, err)
	require.False(t, ok)
	_, err = s.Open(d)
	require.ErrorIs(t, err, atlas.ErrNotFound)
	require.NoError(t, s.Delete(d), "deleting a missing blob is not an error")

	for _, bad := range []string{"", "sha256:xyz", "../../etc/passwd"} {
		_, _, err := s.Has(bad)
		require.ErrorIs(t, err, atlas.ErrInvalid, bad)
		_, err = s.Open(bad)
		require.ErrorIs(t, err, atlas.ErrInvalid, bad)
		require.ErrorIs(t, s.Delete(bad), atlas.ErrInvalid, bad)
		_, err = s.Path(bad)
		require.ErrorIs(t, err, atlas.ErrInvalid, bad)
	}
}

func TestParseDigest(t *testing.T) {
	t.Parallel()
	good := "sha256:" + strings.Repeat("0123456789abcdef", 4)
	h, err := ParseDigest(good)
	require.NoError(t, err)
	require.Equal(t, strings.Repeat("0123456789abcdef", 4), h)

	hex64 := strings.Repeat("a", 64)
	for _, bad := range []string{
		"",
		"sha256:",
		hex64,                                  // no algorithm
		"sha512:" + hex64,                      // wrong algorithm
		"SHA256:" + hex64,                      // algorithm is lower case
		"sha256:" + strings.Repeat("A", 64),    // upper-case hex
		"sha256:" + hex64[:63],                 // short
		"sha256:" + hex64 + "a",                // long
		"sha256:" + hex64[:63] + "g",           // not hex
		"sha256:" + hex64[:62] + "/.",          // path characters
		" sha256:" + hex64,                     // leading space
		"sha256:" + hex64 + "\n",               // trailing newline
		"sha256:" + strings.Repeat("é", 32),    // 64 bytes, not hex
		"sha256:" + strings.Repeat("\x00", 64), // NUL bytes
	} {
		_, err := ParseDigest(bad)
		require.ErrorIs(t, err, atlas.ErrInvalid, "%q", bad)
		require.NotContains(t, err.Error(), "\n")
	}
}

func TestNewCreatesRoot(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "a", "b")
	_, err := New(dir)
	require.NoError(t, err)
	fi, err := os.Stat(filepath.Join(dir, "tmp"))
	require.NoError(t, err)
	require.True(t, fi.IsDir())

	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	_, err = New(file)
	require.Error(t, err)
}
