//go:build unix

package bundle

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCreateSkipsNonRegularFiles(t *testing.T) {
	t.Parallel()
	// Unix socket paths are short; a long temp path would not fit.
	dir, err := os.MkdirTemp("", "bnd")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	writeTree(t, dir, tf{path: "main.py", content: "x"})
	require.NoError(t, syscall.Mkfifo(filepath.Join(dir, "pipe"), 0o644))
	l, err := net.Listen("unix", filepath.Join(dir, "sock"))
	require.NoError(t, err)
	defer l.Close()

	b, st := create(t, dir, JobFolder)
	require.Equal(t, []string{"main.py"}, names(t, b))
	require.Len(t, st.Skipped, 2)
	require.True(t, strings.HasPrefix(st.Skipped[0], "pipe "), st.Skipped[0])
	require.Contains(t, st.Skipped[0], "not a regular file")
	require.True(t, strings.HasPrefix(st.Skipped[1], "sock "), st.Skipped[1])

	est, err := Estimate(dir, JobFolder)
	require.NoError(t, err)
	require.Equal(t, st, est)
}
