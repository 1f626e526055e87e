package logs

import (
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLastLine(t *testing.T) {
	t.Parallel()
	tail := "epoch 1\nTraceback (most recent call last):\n  File \"main.py\", line 3\n\x1b[31mRuntimeError: the loss diverged\x1b[0m\n\n"
	require.Equal(t, "RuntimeError: the loss diverged", LastLine(tail))
	require.Equal(t, "done 100%", LastLine("progress 10%\rprogress 50%\rdone 100%\n"+strings.Repeat("=", 120)+"\n"))
	require.Equal(t, "", LastLine("\n \n"))
	require.Len(t, []rune(LastLine(strings.Repeat("é", 500))), 300)
}

// notifyingWriter collects what a follower copies and signals each write.
type notifyingWriter struct {
	mu    sync.Mutex
	buf   strings.Builder
	wrote chan struct{}
}

func (n *notifyingWriter) Write(p []byte) (int, error) {
	n.mu.Lock()
	n.buf.Write(p)
	n.mu.Unlock()
	select {
	case n.wrote <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (n *notifyingWriter) String() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.buf.String()
}

// Followers are woken by writes to the log, and end with the output written before the job
// finished.
func TestFollowersWakeOnWrites(t *testing.T) {
	t.Parallel()
	d, err := New(t.TempDir())
	require.NoError(t, err)
	done := make(chan struct{})
	const followers = 20
	outs := make([]*notifyingWriter, followers)
	ended := make(chan error, followers)
	for i := range outs {
		outs[i] = &notifyingWriter{wrote: make(chan struct{}, 1)}
		go func() { ended <- d.Stream(t.Context(), "j", 0, true, done, outs[i], nil) }()
	}
	require.NoError(t, d.Append("j", "first line\n"))
	for _, o := range outs {
		for !strings.Contains(o.String(), "first line") {
			<-o.wrote
		}
	}
	f, err := d.OpenAppend("j") // a job's own writes, not through the server
	require.NoError(t, err)
	_, err = f.WriteString("last line\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())
	close(done)
	for range followers {
		require.NoError(t, <-ended)
	}
	for _, o := range outs {
		require.Equal(t, "first line\nlast line\n", o.String())
	}
	require.True(t, d.watcher.ok, "inotify watches the log directory: followers do not poll")
}
