package jobs

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/sdk"
)

func TestAScriptDiscardsItsOwnJobOnly(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	res, err := e.svc.Submit(t.Context(), local, &sdk.JobSpec{Mode: "execution", Command: []string{"driver.py"}})
	require.NoError(t, err)
	j := res.Job
	_, err = e.svc.AppendLog(t.Context(), asJob(j), j.ID, 0, []byte("submitting\n"))
	require.NoError(t, err)
	other, err := e.svc.Submit(t.Context(), local, &sdk.JobSpec{Mode: "execution", Command: []string{"main.py"}})
	require.NoError(t, err)
	sched, err := e.svc.Submit(t.Context(), local, &sdk.JobSpec{Command: []string{"main.py"}})
	require.NoError(t, err)

	require.ErrorIs(t, e.svc.Discard(t.Context(), local, j.ID), atlas.ErrDenied, "not without the job's own token")
	require.ErrorIs(t, e.svc.Discard(t.Context(), asJob(other.Job), j.ID), atlas.ErrDenied, "not with another job's token")
	require.ErrorIs(t, e.svc.Discard(t.Context(), asJob(sched.Job), sched.Job.ID), atlas.ErrConflict,
		"a scheduled job is not a script's to discard")

	require.NoError(t, e.svc.Discard(t.Context(), asJob(j), j.ID))
	_, err = e.store.JobGet(t.Context(), j.ID)
	require.ErrorIs(t, err, atlas.ErrNotFound)
	require.NoFileExists(t, e.logs.Path(j.ID), "its log went with it")
	require.Contains(t, e.events.all(), Change{JobID: j.ID, Name: j.Name, Project: j.Project, State: atlas.StateRunning, Deleted: true})
	_, err = e.store.JobGet(t.Context(), other.Job.ID)
	require.NoError(t, err, "only that job")
}
