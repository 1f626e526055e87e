package logs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newDir(t *testing.T) *Dir {
	t.Helper()
	d, err := New(t.TempDir())
	require.NoError(t, err)
	return d
}

func content(t *testing.T, d *Dir, id string) string {
	t.Helper()
	data, err := os.ReadFile(d.Path(id))
	require.NoError(t, err)
	return string(data)
}

func TestAppendAtExactlyOnce(t *testing.T) {
	t.Parallel()
	d := newDir(t)
	steps := []struct {
		offset int64
		data   string
		length int64
		gap    bool
	}{
		{0, "hello ", 6, false},                // the first piece
		{6, "world\n", 12, false},              // the next one, at the end
		{6, "world\n", 12, false},              // resent after a lost answer: stored once
		{0, "hello ", 12, false},               // an old piece resent: nothing written
		{9, "ld\nagain\n", 18, false},          // overlaps the end: only the new tail
		{20, "later", 18, true},                // a gap: nothing written, the length says where to resume
		{18, "", 18, false},                    // nothing to add
		{18, "done\n", 23, false},              // resumed at the length
		{0, "hello world\nagain\n", 23, false}, // everything again
	}
	for i, s := range steps {
		n, err := d.AppendAt("job-1", s.offset, []byte(s.data))
		var gap *GapError
		if s.gap {
			require.ErrorAs(t, err, &gap, "step %d", i)
			require.Equal(t, s.length, gap.Length, "step %d", i)
		} else {
			require.NoError(t, err, "step %d", i)
		}
		require.Equal(t, s.length, n, "step %d", i)
	}
	require.Equal(t, "hello world\nagain\ndone\n", content(t, d, "job-1"))
	require.Equal(t, int64(23), d.Size("job-1"))

	_, err := d.AppendAt("job-1", -1, []byte("x"))
	require.Error(t, err)
	var gap *GapError
	require.False(t, errors.As(err, &gap))
}

func TestAppendAtGapOnANewLog(t *testing.T) {
	t.Parallel()
	d := newDir(t)
	n, err := d.AppendAt("fresh", 5, []byte("x"))
	var gap *GapError
	require.ErrorAs(t, err, &gap)
	require.Equal(t, int64(0), n)
	require.Equal(t, "", content(t, d, "fresh"))
}

// Senders racing on one job (say a retry overtaking the original request) each resend the
// same stream; whatever the interleaving, every byte is stored once and in order.
func TestAppendAtConcurrentSendersSerialise(t *testing.T) {
	t.Parallel()
	d := newDir(t)
	var stream bytes.Buffer
	var pieces [][2]int64
	for i := range 200 {
		start := int64(stream.Len())
		fmt.Fprintf(&stream, "line %03d of the job's output\n", i)
		pieces = append(pieces, [2]int64{start, int64(stream.Len())})
	}
	all := stream.Bytes()
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each sender ships the pieces in order, resending a piece after a gap answer
			// (another sender has not written the bytes before it yet).
			for _, p := range pieces {
				for {
					_, err := d.AppendAt("job-2", p[0], all[p[0]:p[1]])
					var gap *GapError
					if errors.As(err, &gap) {
						continue
					}
					if !assert.NoError(t, err) {
						return
					}
					break
				}
			}
		}()
	}
	// Another job at the same time is not disturbed.
	wg.Add(1)
	go func() {
		defer wg.Done()
		var off int64
		for range 100 {
			n, err := d.AppendAt("other", off, []byte("x\n"))
			if !assert.NoError(t, err) {
				return
			}
			off = n
		}
	}()
	wg.Wait()
	require.Equal(t, string(all), content(t, d, "job-2"))
	require.Equal(t, 200, len(content(t, d, "other")))
}

// A follower sees shipped output as it arrives.
func TestAppendAtIsSeenByFollowers(t *testing.T) {
	t.Parallel()
	d := newDir(t)
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		_ = d.Stream(context.Background(), "live", 0, true, done, w, nil)
		w.Close()
	}()
	_, err = d.AppendAt("live", 0, []byte("first\n"))
	require.NoError(t, err)
	buf := make([]byte, 6)
	_, err = r.Read(buf) // blocks until the follower copied it: no sleeping
	require.NoError(t, err)
	require.Equal(t, "first\n", string(buf))
	_, err = d.AppendAt("live", 6, []byte("second\n"))
	require.NoError(t, err)
	close(done)
	<-finished
	rest, err := io.ReadAll(r)
	require.NoError(t, err)
	require.Equal(t, "second\n", string(rest))
}
