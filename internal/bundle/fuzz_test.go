package bundle

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/atlasgo/atlas/internal/atlas"
)

// FuzzExtract feeds arbitrary archives to Extract. Input that is not gzip is compressed first,
// so the fuzzer spends its time on tar structure rather than on gzip headers. Whatever the
// input, Extract must not panic, must write nothing outside its target, must leave no link
// there that leads out, and must fail with a one-line ErrInvalid.
func FuzzExtract(f *testing.F) {
	// The seeds in testdata/fuzz/FuzzExtract are the small hostile fixtures; add a few
	// well-formed archives and their raw tar streams.
	for _, a := range [][]tent{
		{reg("a", "hello")},
		{dir("d/"), reg("d/f", "x"), symlink("l", "d/f"), hardlink("h", "d/f")},
		{dir("d1/"), dir("d1/d2/"), symlink("d1/d2/up", "../.."), symlink("d1/d2/x", "up/d1")},
	} {
		f.Add(targz(a...))
		f.Add(rawTar(a...))
	}
	lim := Limits{MaxBytes: 1 << 20, MaxEntries: 64}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !bytes.HasPrefix(data, []byte{0x1f, 0x8b}) {
			data = gz(data)
		}
		parent := t.TempDir()
		dst := filepath.Join(parent, "dst")
		require.NoError(t, os.Mkdir(dst, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(parent, "outside"), []byte("x"), 0o644))

		err := Extract(bytes.NewReader(data), dst, lim)
		if err != nil {
			require.ErrorIs(t, err, atlas.ErrInvalid)
			require.NotContains(t, err.Error(), "\n")
		}
		entries, rerr := os.ReadDir(parent)
		require.NoError(t, rerr)
		var got []string
		for _, e := range entries {
			got = append(got, e.Name())
		}
		require.Equal(t, []string{"dst", "outside"}, got, "Extract wrote outside its target")
		b, rerr := os.ReadFile(filepath.Join(parent, "outside"))
		require.NoError(t, rerr)
		require.Equal(t, "x", string(b))
		_, serr := os.Lstat(absoluteEscape)
		require.True(t, os.IsNotExist(serr))
		requireNoLinkOut(t, dst)
		// Everything extracted can be removed by its owner.
		require.NoError(t, os.RemoveAll(dst), strings.Join(got, ","))
	})
}
