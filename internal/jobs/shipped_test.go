package jobs

import (
	"errors"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/logs"
	"github.com/atlasgo/atlas/sdk"
)

// asJob is the caller a job's own token makes.
func asJob(j *atlas.Job) *Caller { return &Caller{JobID: j.ID, Job: j, User: j.User} }

func TestShippedOutputIsAppendedOnceWhileTheJobRuns(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.Auth = true })
	owner := &Caller{User: "alice"}
	res, err := e.svc.Submit(t.Context(), owner, &sdk.JobSpec{Mode: "execution", Command: []string{"main.py"}})
	require.NoError(t, err)
	j := res.Job
	other, err := e.svc.Submit(t.Context(), owner, &sdk.JobSpec{Mode: "execution", Command: []string{"main.py"}})
	require.NoError(t, err)

	n, err := e.svc.AppendLog(t.Context(), asJob(j), j.ID, 0, []byte("epoch 1\n"))
	require.NoError(t, err)
	require.EqualValues(t, 8, n)
	n, err = e.svc.AppendLog(t.Context(), asJob(j), j.ID, 0, []byte("epoch 1\nepoch 2\n"))
	require.NoError(t, err)
	require.EqualValues(t, 16, n, "a resend overlapping the end adds its new tail only")
	n, err = e.svc.AppendLog(t.Context(), owner, j.ID, 16, []byte("by its user\n"))
	require.NoError(t, err, "its user may ship its output too")
	require.EqualValues(t, 28, n)

	_, err = e.svc.AppendLog(t.Context(), asJob(j), j.ID, 100, []byte("x"))
	var gap *logs.GapError
	require.True(t, errors.As(err, &gap), "%v", err)
	require.EqualValues(t, 28, gap.Length)
	_, err = e.svc.AppendLog(t.Context(), asJob(other.Job), j.ID, 28, []byte("not mine\n"))
	require.ErrorIs(t, err, atlas.ErrDenied, "a job's token writes only to its own job's log")
	_, err = e.svc.AppendLog(t.Context(), &Caller{User: "mallory"}, j.ID, 28, []byte("not mine\n"))
	require.ErrorIs(t, err, atlas.ErrDenied)

	_, err = e.svc.Finish(t.Context(), asJob(j), j.ID, &sdk.FinishRequest{State: "completed"})
	require.NoError(t, err)
	done, err := e.store.JobGet(t.Context(), j.ID)
	require.NoError(t, err)
	_, err = e.svc.AppendLog(t.Context(), asJob(done), j.ID, 28, []byte("too late\n"))
	require.ErrorIs(t, err, atlas.ErrConflict, "a finished job's log takes no more output")
	data, err := os.ReadFile(e.logs.Path(j.ID))
	require.NoError(t, err)
	require.Equal(t, "epoch 1\nepoch 2\nby its user\n", string(data))
}
