package local

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/atlasgo/atlas/internal/blob"
	"github.com/atlasgo/atlas/internal/blob/blobtest"
)

func newStore(t *testing.T) (*Store, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "blobs")
	s, err := New(dir)
	require.NoError(t, err)
	return s, dir
}

func TestConformance(t *testing.T) {
	t.Parallel()
	blobtest.Exercise(t, func(t *testing.T) blob.Store {
		s, dir := newStore(t)
		t.Cleanup(func() {
			if !t.Failed() {
				// Whatever the suite did, no temporary file is left behind.
				entries, err := os.ReadDir(filepath.Join(dir, "tmp"))
				require.NoError(t, err)
				require.Empty(t, entries)
			}
		})
		return s
	})
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

// Blobs are files named by their digest, readable by the server only through their folder.
func TestLayout(t *testing.T) {
	t.Parallel()
	s, dir := newStore(t)
	d, _, err := s.Put(t.Context(), strings.NewReader("hello, blob"), "")
	require.NoError(t, err)
	p, err := s.Path(d)
	require.NoError(t, err)
	h, _ := blob.ParseDigest(d)
	require.Equal(t, filepath.Join(dir, "sha256", h[:2], h), p)
	fi, err := os.Stat(p)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o644), fi.Mode().Perm())
	fi, err = os.Stat(dir)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
	require.Equal(t, []string{"sha256/" + h[:2] + "/" + h}, files(t, dir), "no temporary file is left behind")
	for _, bad := range []string{"", "sha256:xyz", "../../etc/passwd"} {
		_, err = s.Path(bad)
		require.Error(t, err, bad)
	}
}

func TestPutFile(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	p := filepath.Join(t.TempDir(), "f")
	require.NoError(t, os.WriteFile(p, []byte("file content"), 0o600))
	d, n, err := blob.PutFile(t.Context(), s, p)
	require.NoError(t, err)
	require.Equal(t, blobtest.DigestOf([]byte("file content")), d)
	require.EqualValues(t, 12, n)

	_, _, err = blob.PutFile(t.Context(), s, filepath.Join(t.TempDir(), "missing"))
	require.ErrorIs(t, err, os.ErrNotExist)
}

// What an upload cut short by a crash left in the scratch space is removed at the next start.
func TestNewCleansScratchSpace(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "a", "b")
	_, err := New(dir)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tmp", "put-123"), []byte("half an upload"), 0o600))
	_, err = New(dir)
	require.NoError(t, err)
	entries, err := os.ReadDir(filepath.Join(dir, "tmp"))
	require.NoError(t, err)
	require.Empty(t, entries)

	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	_, err = New(file)
	require.Error(t, err)
}
