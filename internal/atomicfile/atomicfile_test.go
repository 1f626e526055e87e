package atomicfile

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestWrite(t *testing.T) {
	t.Parallel()
	for _, sync := range []bool{true, false} {
		dir := t.TempDir()
		path := filepath.Join(dir, "f")
		require.NoError(t, Write(path, []byte("one"), 0o600, sync))
		require.NoError(t, Write(path, []byte("two"), 0o640, sync))
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		require.Equal(t, "two", string(data))
		fi, err := os.Stat(path)
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o640), fi.Mode().Perm())
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		require.Len(t, entries, 1, "no temporary file is left behind")

		require.Error(t, Write(filepath.Join(dir, "missing", "f"), nil, 0o600, sync))
	}
}
