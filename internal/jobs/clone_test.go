package jobs

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/store"
	"github.com/atlasgo/atlas/sdk"
)

func TestACloneIsTheJobAgainWithItsParamsEdited(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := t.Context()
	d := e.bundle(t, map[string]string{"main.py": "print(1)"})
	prio := 3
	src, err := e.svc.Submit(ctx, local, &sdk.JobSpec{Command: []string{"main.py", "--x"}, Entrypoint: []string{"python3"},
		BundleDigest: d, Priority: &prio, Name: "baseline", Params: map[string]any{"lr": 0.1, "epochs": 3.0},
		JobConfig: "project_name: vision\nram: 2\nworker:\n  image: img:1\n  environment: {A: b}\n  volumes:\n    /data: {bind: /in, mode: ro}\n"})
	require.NoError(t, err)
	id := src.Job.ID
	_, err = e.svc.Claim(ctx, id, "fake", nil)
	require.NoError(t, err)
	_, err = e.svc.Ended(ctx, id, Outcome{ExitCode: 0})
	require.NoError(t, err)

	res, err := e.svc.Clone(ctx, local, id, &sdk.CloneSpec{Params: map[string]any{"lr": 0.5, "momentum": 0.9}, Name: "higher lr"})
	require.NoError(t, err)
	j := res.Job
	require.NotEqual(t, id, j.ID)
	require.False(t, res.Existing)
	require.Equal(t, atlas.StateQueued, j.State)
	require.Equal(t, "higher lr", j.Name)
	require.Equal(t, map[string]any{"lr": 0.5, "epochs": 3.0, "momentum": 0.9}, j.Params, "keys replaced or added, the others kept")
	require.Equal(t, "vision", j.Project)
	require.Equal(t, d, j.BundleDigest)
	require.Equal(t, []string{"main.py", "--x"}, j.Command)
	require.Equal(t, []string{"python3"}, j.Entrypoint)
	require.Equal(t, 2.0, j.RAMGB)
	require.Equal(t, 3, j.Priority)
	require.Equal(t, "img:1", j.Worker.Image)
	require.Equal(t, map[string]string{"A": "b"}, j.Worker.Environment)
	require.Equal(t, atlas.Volume{Bind: "/in", Mode: "ro"}, j.Worker.Volumes["/data"])
	stored, err := e.store.JobGet(ctx, j.ID)
	require.NoError(t, err)
	require.Equal(t, j.Params, stored.Params)
	require.Contains(t, e.events.all(), Change{JobID: j.ID, Name: "higher lr", Project: "vision", State: atlas.StateQueued}, "the scheduler hears of it")
	before, err := e.store.JobGet(ctx, id)
	require.NoError(t, err)
	require.Equal(t, map[string]any{"lr": 0.1, "epochs": 3.0}, before.Params, "the source is left as it was")
	require.Equal(t, atlas.StateCompleted, before.State)

	unnamed, err := e.svc.Clone(ctx, local, id, &sdk.CloneSpec{})
	require.NoError(t, err)
	require.NotEmpty(t, unnamed.Job.Name)
	require.NotEqual(t, "baseline", unnamed.Job.Name, "a clone without a name gets a new one")
	require.Equal(t, before.Params, unnamed.Job.Params)

	// A clone of a queued job, retried with its id, is queued once.
	spec := &sdk.CloneSpec{ID: "again-1", Params: map[string]any{"lr": 1.0}}
	first, err := e.svc.Clone(ctx, local, j.ID, spec)
	require.NoError(t, err)
	retried, err := e.svc.Clone(ctx, local, j.ID, spec)
	require.NoError(t, err)
	require.True(t, retried.Existing)
	require.Equal(t, first.Job.Seq, retried.Job.Seq)
}

func TestWhatCannotBeCloned(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.Auth = true })
	ctx := t.Context()
	alice, bob, admin := &Caller{User: "alice"}, &Caller{User: "bob"}, &Caller{User: "root", Admin: true}
	res, err := e.svc.Submit(ctx, alice, &sdk.JobSpec{Command: []string{"main.py"}, BundleDigest: e.bundle(t, map[string]string{"main.py": ""})})
	require.NoError(t, err)
	id := res.Job.ID
	script, err := e.svc.Submit(ctx, alice, &sdk.JobSpec{Mode: "execution", Command: []string{"main.py"}})
	require.NoError(t, err)

	_, err = e.svc.Clone(ctx, alice, "no-such-job", &sdk.CloneSpec{})
	require.ErrorIs(t, err, atlas.ErrNotFound)
	_, err = e.svc.Clone(ctx, bob, id, &sdk.CloneSpec{})
	require.ErrorIs(t, err, atlas.ErrDenied, "a clone runs the job's files: another user may not")
	_, err = e.svc.Clone(ctx, alice, script.Job.ID, &sdk.CloneSpec{})
	require.ErrorIs(t, err, atlas.ErrInvalid)
	require.ErrorContains(t, err, "run by hand")
	_, err = e.svc.Clone(ctx, alice, id, &sdk.CloneSpec{Name: "a\nb"})
	require.ErrorIs(t, err, atlas.ErrInvalid)
	_, total, err := e.store.JobList(ctx, &store.JobListParams{})
	require.NoError(t, err)
	require.Equal(t, 2, total, "nothing refused was stored")

	byAdmin, err := e.svc.Clone(ctx, admin, id, &sdk.CloneSpec{})
	require.NoError(t, err)
	require.Equal(t, "root", byAdmin.Job.User, "with authentication the clone is its submitter's")
}
