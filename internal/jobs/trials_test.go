package jobs

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/store"
	"github.com/atlasgo/atlas/sdk"
)

func TestStopWithReasonEndsStoppedWithIt(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := t.Context()
	id := e.started(t)
	j, err := e.svc.StopWithReason(ctx, local, id, "early stopped by search s at step 3")
	require.NoError(t, err)
	require.Equal(t, atlas.StateStopping, j.State)
	require.Equal(t, "early stopped by search s at step 3", j.Reason, "why, while it stops")
	j, err = e.svc.Ended(ctx, id, Outcome{ExitCode: 0})
	require.NoError(t, err)
	require.Equal(t, atlas.StateStopped, j.State, "never failed")
	require.Regexp(t, `^early stopped by search s at step 3 \(exited after SIGTERM in [0-9.]+ s\)$`, j.Reason)

	res, err := e.svc.Submit(ctx, local, &sdk.JobSpec{Command: []string{"m"}})
	require.NoError(t, err)
	j, err = e.svc.StopWithReason(ctx, local, res.Job.ID, "stopped with search s")
	require.NoError(t, err)
	require.Equal(t, atlas.StateStopped, j.State)
	require.Equal(t, "stopped with search s", j.Reason, "a queued job leaves the queue with the reason")

	// A user's stop keeps its own words.
	id = e.started(t)
	_, err = e.svc.StopJob(ctx, local, id)
	require.NoError(t, err)
	j, err = e.svc.Ended(ctx, id, Outcome{ExitCode: 143})
	require.NoError(t, err)
	require.Regexp(t, `^exited after SIGTERM in [0-9.]+ s$`, j.Reason)
}

func TestTrialsAreCopiesOfACheckedTemplate(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.Auth = true; c.AllowedVolumeRoots = []string{"/data"} })
	ctx := t.Context()
	bob := &Caller{User: "bob"}
	d := e.bundle(t, map[string]string{"main.py": ""})
	_, _, err := e.svc.Template(ctx, bob, &sdk.JobSpec{Command: []string{"main.py"}, BundleDigest: d,
		JobConfig: "worker:\n  volumes:\n    /etc: {bind: /x}\n"})
	require.ErrorIs(t, err, atlas.ErrDenied, "the volume policy applies to searches too")
	_, _, err = e.svc.Template(ctx, bob, &sdk.JobSpec{Command: []string{"main.py"}})
	require.ErrorIs(t, err, atlas.ErrInvalid, "a search needs a bundle")
	_, _, err = e.svc.Template(ctx, bob, &sdk.JobSpec{Command: []string{"main.py"}, BundleDigest: "sha256:00"})
	require.ErrorIs(t, err, atlas.ErrInvalid, "a bundle that was not uploaded")

	tmpl, _, err := e.svc.Template(ctx, bob, &sdk.JobSpec{Command: []string{"main.py"}, BundleDigest: d, User: "mallory",
		JobConfig: "project_name: vision\nparams: {epochs: 3}\n"})
	require.NoError(t, err)
	require.Empty(t, tmpl.ID)
	require.Empty(t, tmpl.Name, "the trials of a search without a name get names of their own")
	require.Equal(t, "bob", tmpl.User, "the token's user, not the client's word")
	require.Equal(t, "vision", tmpl.Project)
	jobs, _, err := e.store.JobList(ctx, &store.JobListParams{})
	require.NoError(t, err)
	require.Empty(t, jobs, "nothing is stored")

	require.NoError(t, e.store.SearchInsert(ctx, &atlas.Search{ID: "s", Project: "vision", User: "bob", State: atlas.SearchRunning,
		Config: []byte("{}"), Template: tmpl}))
	trial := func(n int) *atlas.Job {
		c := *tmpl
		c.ID, c.SearchID, c.SearchTrial, c.Params = "s-t"+itoa(int64(n)), "s", n, map[string]any{"epochs": 3, "lr": 0.1}
		return &c
	}
	j, existing, err := e.svc.SubmitTrial(ctx, trial(0))
	require.NoError(t, err)
	require.False(t, existing)
	require.Equal(t, atlas.StateQueued, j.State)
	require.NotEmpty(t, j.Name)
	named := trial(3)
	named.Name = "sweep"
	j3, _, err := e.svc.SubmitTrial(ctx, named)
	require.NoError(t, err)
	require.Equal(t, "sweep #3", j3.Name, "the trials of a named search are numbered")
	require.Contains(t, e.events.all(), Change{JobID: "s-t0", Name: j.Name, Project: "vision", State: atlas.StateQueued, Search: "s"})
	again, existing, err := e.svc.SubmitTrial(ctx, trial(0))
	require.NoError(t, err)
	require.True(t, existing, "a trial submitted again is the one stored")
	require.Equal(t, j.Seq, again.Seq)
	other := trial(1)
	other.ID = "s-t0"
	_, _, err = e.svc.SubmitTrial(ctx, other)
	require.ErrorIs(t, err, atlas.ErrConflict)

	_, err = e.store.SearchSetState(ctx, "s", atlas.SearchStopping, "")
	require.NoError(t, err)
	_, _, err = e.svc.SubmitTrial(ctx, trial(2))
	require.ErrorIs(t, err, atlas.ErrConflict, "a search that no longer runs takes no trial")
}

func TestTheValuesOfATrialAreShownToItsSearch(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := t.Context()
	var heard atomic.Value
	e.svc.OnTrialTracked(func(_ context.Context, search, job string) { heard.Store(search + "/" + job) })
	id := e.started(t)
	_, err := e.svc.Track(ctx, local, id, &sdk.TrackBatch{Metrics: map[string]sdk.MetricBatch{"loss": {Values: []any{1.0}}}})
	require.NoError(t, err)
	require.Nil(t, heard.Load(), "a job of no search")

	tmpl, _, err := e.svc.Template(ctx, local, &sdk.JobSpec{Command: []string{"m"}, BundleDigest: e.bundle(t, map[string]string{"m": ""})})
	require.NoError(t, err)
	require.NoError(t, e.store.SearchInsert(ctx, &atlas.Search{ID: "s", Project: "default", State: atlas.SearchRunning,
		Config: []byte("{}"), Template: tmpl}))
	tmpl.ID, tmpl.SearchID = "s-t0", "s"
	_, _, err = e.svc.SubmitTrial(ctx, tmpl)
	require.NoError(t, err)
	_, err = e.svc.Track(ctx, local, "s-t0", &sdk.TrackBatch{Params: map[string]any{"a": 1.0}})
	require.NoError(t, err)
	require.Nil(t, heard.Load(), "no metric values, nothing to decide")
	_, err = e.svc.Track(ctx, local, "s-t0", &sdk.TrackBatch{Metrics: map[string]sdk.MetricBatch{"loss": {Values: []any{1.0}}}})
	require.NoError(t, err)
	require.Equal(t, "s/s-t0", heard.Load())
}
