package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/store"
)

func newSearch(id, project string) *atlas.Search {
	tmpl := newJob("", project)
	tmpl.Params = map[string]any{"base": 1.0}
	tmpl.BundleDigest = "sha256:bundle"
	return &atlas.Search{ID: id, Project: project, User: "tester", State: atlas.SearchRunning,
		Config: []byte(`{"method":"asha","metric":"loss"}`), Template: tmpl}
}

// trial is job n of a search.
func trial(searchID string, n int) *atlas.Job {
	j := newJob(fmt.Sprintf("%s-t%d", searchID, n), "p")
	j.SearchID, j.SearchTrial = searchID, n
	j.Params = map[string]any{"lr": 0.1 * float64(n+1)}
	return j
}

func exerciseSearches(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Run("SearchHoldsItsBundleUntilItEnds", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		ctx := t.Context()
		require.NoError(t, s.SearchInsert(ctx, newSearch("s1", "p")))
		n, err := s.BlobRefs(ctx, "sha256:bundle")
		require.NoError(t, err)
		require.Equal(t, 1, n, "a running search's next trials need the bundle, with no trial left")
		_, err = s.SearchSetState(ctx, "s1", atlas.SearchCompleted, "")
		require.NoError(t, err)
		n, err = s.BlobRefs(ctx, "sha256:bundle")
		require.NoError(t, err)
		require.Zero(t, n, "an ended search submits no more trials")
	})
	t.Run("SearchInsertGetList", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		ctx := t.Context()
		require.NoError(t, s.SearchInsert(ctx, newSearch("s1", "p")))
		require.NoError(t, s.SearchInsert(ctx, newSearch("s2", "q")))
		require.ErrorIs(t, s.SearchInsert(ctx, newSearch("s1", "p")), atlas.ErrConflict)
		got, err := s.SearchGet(ctx, "s1")
		require.NoError(t, err)
		require.Equal(t, atlas.SearchRunning, got.State)
		require.Equal(t, "tester", got.User)
		require.JSONEq(t, `{"method":"asha","metric":"loss"}`, string(got.Config))
		require.Equal(t, "sha256:bundle", got.Template.BundleDigest)
		require.Equal(t, 1.0, got.Template.Params["base"])
		require.Equal(t, []string{"main.py", "--x"}, got.Template.Command)
		require.Zero(t, got.Trials)
		require.Nil(t, got.FinishedAt)
		_, err = s.SearchGet(ctx, "nope")
		require.ErrorIs(t, err, atlas.ErrNotFound)

		all, err := s.SearchList(ctx, "")
		require.NoError(t, err)
		require.Len(t, all, 2)
		inP, err := s.SearchList(ctx, "p")
		require.NoError(t, err)
		require.Len(t, inP, 1)
		require.Equal(t, "s1", inP[0].ID)
		projects, err := s.ProjectList(ctx)
		require.NoError(t, err)
		require.Len(t, projects, 2, "a search's project exists before its first trial")
	})

	t.Run("SearchStates", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		ctx := t.Context()
		require.NoError(t, s.SearchInsert(ctx, newSearch("s", "p")))
		_, err := s.SearchSetState(ctx, "s", atlas.SearchStopped, "")
		var se *store.SearchStateError
		require.ErrorAs(t, err, &se, "a running search stops through stopping")
		require.ErrorIs(t, err, atlas.ErrConflict)
		got, err := s.SearchSetState(ctx, "s", atlas.SearchStopping, "stopped by tester")
		require.NoError(t, err)
		require.Equal(t, atlas.SearchStopping, got.State)
		require.Equal(t, "stopped by tester", got.Reason)
		require.Nil(t, got.FinishedAt)
		got, err = s.SearchSetState(ctx, "s", atlas.SearchStopped, "")
		require.NoError(t, err)
		require.Equal(t, atlas.SearchStopped, got.State)
		require.Equal(t, "stopped by tester", got.Reason, "an empty reason keeps the one given before")
		require.NotNil(t, got.FinishedAt)
		running, err := s.SearchList(ctx, "", atlas.SearchRunning, atlas.SearchStopping)
		require.NoError(t, err)
		require.Empty(t, running)
		_, err = s.SearchSetState(ctx, "nope", atlas.SearchStopping, "")
		require.ErrorIs(t, err, atlas.ErrNotFound)
	})

	t.Run("SearchTrials", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		ctx := t.Context()
		require.ErrorIs(t, s.JobInsert(ctx, trial("none", 0)), atlas.ErrNotFound, "a trial of no search")
		require.NoError(t, s.SearchInsert(ctx, newSearch("s", "p")))
		for _, n := range []int{1, 0, 2} {
			require.NoError(t, s.JobInsert(ctx, trial("s", n)))
		}
		require.NoError(t, s.JobInsert(ctx, newJob("other", "p")))
		got, err := s.SearchGet(ctx, "s")
		require.NoError(t, err)
		require.Equal(t, 3, got.Trials, "trials counts up to the highest trial number")
		trials, err := s.SearchTrials(ctx, "s")
		require.NoError(t, err)
		require.Equal(t, []string{"s-t0", "s-t1", "s-t2"}, ids(trials))
		require.Equal(t, "s", trials[1].SearchID)
		require.Equal(t, 1, trials[1].SearchTrial)
		j, err := s.JobGet(ctx, "s-t2")
		require.NoError(t, err)
		require.Equal(t, 2, j.SearchTrial)
		tags, err := s.Tags(ctx, []string{"s-t0", "other"})
		require.NoError(t, err)
		require.Equal(t, map[string]string{"search": "s"}, tags["s-t0"], "a trial is tagged with its search")
		require.Empty(t, tags["other"])
		list, total, err := s.JobList(ctx, &store.JobListParams{Filters: []store.Filter{{Field: "tag", Op: "in", Values: []string{"search"}}}})
		require.NoError(t, err)
		require.Equal(t, 3, total, "the trials are found by their tag")
		require.Len(t, list, 3)

		// A deleted trial leaves the count of submitted trials as it was.
		finish(t, s, "s-t2", atlas.StateCompleted)
		_, _, err = s.JobDelete(ctx, "s-t2", []atlas.State{atlas.StateCompleted})
		require.NoError(t, err)
		got, err = s.SearchGet(ctx, "s")
		require.NoError(t, err)
		require.Equal(t, 3, got.Trials)
		trials, err = s.SearchTrials(ctx, "s")
		require.NoError(t, err)
		require.Equal(t, []string{"s-t0", "s-t1"}, ids(trials))

		// A search that is no longer running takes no trial.
		_, err = s.SearchSetState(ctx, "s", atlas.SearchStopping, "")
		require.NoError(t, err)
		err = s.JobInsert(ctx, trial("s", 3))
		var se *store.SearchStateError
		require.ErrorAs(t, err, &se)
		require.Equal(t, atlas.SearchStopping, se.Search.State)
		_, err = s.JobGet(ctx, "s-t3")
		require.ErrorIs(t, err, atlas.ErrNotFound, "the refused trial was not stored")
		got, err = s.SearchGet(ctx, "s")
		require.NoError(t, err)
		require.Equal(t, 3, got.Trials)
	})

	t.Run("SearchTrialRacesStop", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		ctx := t.Context()
		require.NoError(t, s.SearchInsert(ctx, newSearch("s", "p")))
		// Trials inserted while the search is stopped: each is either stored before the stop
		// (and so counted) or refused.
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Go(func() { errs[i] = s.JobInsert(context.Background(), trial("s", i)) })
		}
		stopped, err := s.SearchSetState(ctx, "s", atlas.SearchStopping, "")
		require.NoError(t, err)
		wg.Wait()
		trials, err := s.SearchTrials(ctx, "s")
		require.NoError(t, err)
		stored := 0
		for _, err := range errs {
			if err == nil {
				stored++
			} else {
				require.ErrorIs(t, err, atlas.ErrConflict)
			}
		}
		require.Len(t, trials, stored)
		for _, j := range trials {
			require.Less(t, j.SearchTrial, stopped.Trials, "trial %d was stored after the stop", j.SearchTrial)
		}
	})

	t.Run("SearchRungs", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		ctx := t.Context()
		require.NoError(t, s.SearchInsert(ctx, newSearch("s", "p")))
		require.NoError(t, s.SearchInsert(ctx, newSearch("other", "p")))
		recs := []*atlas.RungRecord{
			{SearchID: "s", JobID: "s-t1", Trial: 1, Rung: 0, Step: 1, Value: 0.5},
			{SearchID: "s", JobID: "s-t0", Trial: 0, Rung: 0, Step: 1, Value: 0.25},
			{SearchID: "other", JobID: "other-t0", Trial: 0, Rung: 0, Step: 3, Value: 9},
			{SearchID: "s", JobID: "s-t0", Trial: 0, Rung: 1, Step: 3, Value: 0.75, Stop: true},
		}
		for _, r := range recs {
			require.NoError(t, s.SearchRungAdd(ctx, r))
			require.NotZero(t, r.Seq)
		}
		require.Less(t, recs[0].Seq, recs[1].Seq)
		dup := *recs[1]
		dup.Value = 1
		require.ErrorIs(t, s.SearchRungAdd(ctx, &dup), atlas.ErrConflict, "one decision per trial and rung")
		require.ErrorIs(t, s.SearchRungAdd(ctx, &atlas.RungRecord{SearchID: "nope", JobID: "x"}), atlas.ErrNotFound)

		got, err := s.SearchRungs(ctx, "s")
		require.NoError(t, err)
		require.Len(t, got, 3)
		require.Equal(t, []string{"s-t1", "s-t0", "s-t0"}, []string{got[0].JobID, got[1].JobID, got[2].JobID}, "in the order they were made")
		require.Equal(t, 0.25, got[1].Value)
		require.Equal(t, int64(3), got[2].Step)
		require.True(t, got[2].Stop)
		require.False(t, got[0].Stop)
		require.Equal(t, 1, got[2].Rung)
		require.False(t, got[2].CreatedAt.IsZero())
	})
}
