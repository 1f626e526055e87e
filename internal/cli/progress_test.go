package cli

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestFormatProgress(t *testing.T) {
	t.Parallel()
	require.Equal(t, "Foundations INFO: Uploading the bundle: 0 bytes of 100.0 MB (0%)", formatProgress(0, 100<<20, 0))
	require.Equal(t, "Foundations INFO: Uploading the bundle: 25.0 MB of 100.0 MB (25%), 5.0 MB/s, 15s left",
		formatProgress(25<<20, 100<<20, 5*time.Second))
	require.Equal(t, "Foundations INFO: Uploading the bundle: 100.0 MB of 100.0 MB (100%), 10.0 MB/s, done in 10s",
		formatProgress(100<<20, 100<<20, 10*time.Second))
	require.Equal(t, "Foundations INFO: Uploading the bundle: 1.0 GB of 2.0 GB (50%), 10.0 MB/s, 1m42s left",
		formatProgress(1<<30, 2<<30, 102400*time.Millisecond))
}

// The progress line is redrawn in place, at most every 200 ms but always at the end, and
// ended with a newline.
func TestUploadProgressRedrawsOneLine(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	clock := time.Unix(1000, 0)
	p := &uploadProgress{w: &out, now: func() time.Time { return clock }, start: clock}
	const total = 10 << 20
	p.update(1<<20, total)
	clock = clock.Add(50 * time.Millisecond)
	p.update(2<<20, total) // too soon: not drawn
	clock = clock.Add(time.Second)
	p.update(5<<20, total)
	clock = clock.Add(10 * time.Millisecond)
	p.update(total, total) // the end is always drawn
	p.done()
	lines := strings.Split(out.String(), "\r")
	require.Len(t, lines, 4, "%q", out.String())
	require.Contains(t, lines[1], "1.0 MB of 10.0 MB (10%)")
	require.Contains(t, lines[2], "5.0 MB of 10.0 MB (50%)")
	require.Contains(t, lines[3], "10.0 MB of 10.0 MB (100%)")
	require.True(t, strings.HasSuffix(out.String(), "done in 1.1s\x1b[K\n"), "%q", out.String())
}

// Only a terminal gets progress: not a pipe, a file or a buffer (small uploads: TestCLIUploadProgress).
func TestUploadProgressOnlyOnATerminal(t *testing.T) {
	t.Parallel()
	require.Nil(t, newUploadProgress(&bytes.Buffer{}, 100<<20))
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	defer w.Close()
	require.Nil(t, newUploadProgress(w, 100<<20), "a pipe is no terminal")
	f, err := os.CreateTemp(t.TempDir(), "stderr")
	require.NoError(t, err)
	defer f.Close()
	require.Nil(t, newUploadProgress(f, 100<<20), "a file is no terminal")

}
