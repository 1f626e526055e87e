package jobs

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/atlasgo/atlas/internal/atlas"
	localblob "github.com/atlasgo/atlas/internal/blob/local"
	"github.com/atlasgo/atlas/internal/bundle"
)

// An archive stored against its job's bundle is downloaded whole; one stored against another
// bundle (which a job's own upload could name) is refused, so no job reads a bundle not its own.
func TestOpenArchive(t *testing.T) {
	ctx := t.Context()
	blobs, err := localblob.New(t.TempDir())
	require.NoError(t, err)
	put := func(b []byte) string {
		d, _, err := blobs.Put(ctx, bytes.NewReader(b), "")
		require.NoError(t, err)
		return d
	}
	folder := func(files map[string]string) string {
		dir := t.TempDir()
		for name, body := range files {
			require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644))
		}
		return dir
	}
	create := func(dir string) []byte {
		var b bytes.Buffer
		_, err := bundle.Create(dir, &b, bundle.Options{})
		require.NoError(t, err)
		return b.Bytes()
	}
	read := func(rc io.ReadCloser) []byte {
		defer rc.Close()
		b, err := io.ReadAll(rc)
		require.NoError(t, err)
		return b
	}

	mine := create(folder(map[string]string{"main.py": "print(1)"}))
	secret := create(folder(map[string]string{"key.pem": "someone else's"}))
	mineDigest, secretDigest := put(mine), put(secret)
	work := t.TempDir()
	require.NoError(t, bundle.Extract(bytes.NewReader(mine), work, bundle.DefaultLimits))
	require.NoError(t, os.WriteFile(filepath.Join(work, "result.txt"), []byte("0.9"), 0o644))

	var delta bytes.Buffer
	base, err := bundle.ReadIndex(bytes.NewReader(mine))
	require.NoError(t, err)
	_, err = bundle.CreateDelta(work, base, mineDigest, &delta)
	require.NoError(t, err)
	j := &atlas.Job{ID: "j", BundleDigest: mineDigest, ArchiveDigest: put(delta.Bytes())}
	rc, rebuilt, err := OpenArchive(ctx, blobs, j)
	require.NoError(t, err)
	require.True(t, rebuilt)
	require.Equal(t, create(work), read(rc), "the download is the whole archive")

	// A delta naming another bundle, as a job could upload it.
	var forged bytes.Buffer
	other, err := bundle.ReadIndex(bytes.NewReader(secret))
	require.NoError(t, err)
	_, err = bundle.CreateDelta(work, other, secretDigest, &forged)
	require.NoError(t, err)
	j.ArchiveDigest = put(forged.Bytes())
	_, _, err = OpenArchive(ctx, blobs, j)
	require.ErrorIs(t, err, atlas.ErrInvalid)
	require.ErrorContains(t, err, "not the job's bundle")

	// A whole archive is the blob as stored.
	whole := create(work)
	j.ArchiveDigest = put(whole)
	rc, rebuilt, err = OpenArchive(ctx, blobs, j)
	require.NoError(t, err)
	require.False(t, rebuilt)
	require.Equal(t, whole, read(rc))
}
