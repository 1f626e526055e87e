package search

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/atlasgo/atlas/internal/atlas"
	localblob "github.com/atlasgo/atlas/internal/blob/local"
	"github.com/atlasgo/atlas/internal/bundle"
	"github.com/atlasgo/atlas/internal/jobs"
	"github.com/atlasgo/atlas/internal/logs"
	"github.com/atlasgo/atlas/internal/store"
	"github.com/atlasgo/atlas/internal/store/sqlite"
	"github.com/atlasgo/atlas/sdk"
)

// harness is a searcher over a real SQLite store and job service. The test plays the
// scheduler: it claims, starts and ends trials, and tracks their values, so every trial's
// metric curve and the order of events are the test's to choose.
type harness struct {
	t      *testing.T
	dir    string
	store  store.Store
	svc    *jobs.Service
	srch   *Searcher
	bundle string
}

var alice = &jobs.Caller{Local: true, User: "alice", RunAs: "1000:1000"}

func newHarness(t *testing.T) *harness {
	t.Helper()
	dir := t.TempDir()
	h := &harness{t: t, dir: dir}
	h.open()
	blobs, err := localblob.New(filepath.Join(dir, "blobs"))
	require.NoError(t, err)
	src := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(src, "main.py"), []byte("print(1)"), 0o644))
	var buf bytes.Buffer
	_, err = bundle.Create(src, &buf, bundle.Options{})
	require.NoError(t, err)
	h.bundle, _, err = blobs.Put(t.Context(), &buf, "")
	require.NoError(t, err)
	h.start()
	return h
}

// open opens the database, as a server start does.
func (h *harness) open() {
	st, err := sqlite.Open(h.t.Context(), filepath.Join(h.dir, "atlas.db"))
	require.NoError(h.t, err)
	h.t.Cleanup(func() { st.Close() })
	h.store = st
}

// start starts a job service and a searcher, as a server start does.
func (h *harness) start() {
	h.t.Helper()
	blobs, err := localblob.New(filepath.Join(h.dir, "blobs"))
	require.NoError(h.t, err)
	lg, err := logs.New(filepath.Join(h.dir, "logs"))
	require.NoError(h.t, err)
	h.svc = jobs.New(jobs.Config{Store: h.store, Blobs: blobs, Logs: lg, Secret: []byte("secret-secret-secret-secret-1234")})
	h.srch = New(Config{Jobs: h.svc, Store: h.store, Workers: 2, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(h.t, h.srch.Start(h.t.Context()))
	h.t.Cleanup(h.srch.Stop)
}

// restart stops the searcher and starts a new one on the same database: a server restart.
func (h *harness) restart() {
	h.t.Helper()
	h.srch.Stop()
	h.start()
}

func (h *harness) submit(id, yaml string) *sdk.Search {
	h.t.Helper()
	res, err := h.srch.Submit(h.t.Context(), alice, &sdk.SearchSpec{ID: id, Config: yaml, ConfigName: "search.yaml",
		Job: sdk.JobSpec{Command: []string{"main.py"}, BundleDigest: h.bundle, JobConfig: "project_name: p\nparams: {epochs: 9}\n"}})
	require.NoError(h.t, err)
	return res.Search
}

// until waits, following the service's events, until cond holds.
func (h *harness) until(what string, cond func() bool) {
	h.t.Helper()
	changes, done := h.svc.Events().Subscribe()
	defer done()
	timeout := time.After(20 * time.Second)
	for !cond() {
		select {
		case <-changes:
		case <-time.After(100 * time.Millisecond): // events may be dropped for slow subscribers
		case <-timeout:
			h.t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func (h *harness) job(id string) *atlas.Job {
	j, err := h.store.JobGet(context.Background(), id)
	if err != nil {
		return nil
	}
	return j
}

func (h *harness) searchState(id string) atlas.SearchState {
	se, err := h.store.SearchGet(context.Background(), id)
	require.NoError(h.t, err)
	return se.State
}

// queued waits for trial n of a search to be queued and returns it.
func (h *harness) queued(search string, n int) *atlas.Job {
	h.t.Helper()
	id := TrialID(search, n)
	h.until(id+" queued", func() bool { j := h.job(id); return j != nil && j.State == atlas.StateQueued })
	return h.job(id)
}

// run plays a trial: it starts, logs loss(step) at steps 1..steps, and ends, stopping as soon
// as it is asked to (it sees the decision in the answer to the batch that led to it, as
// foundations.should_stop() does). It returns the job as it ended.
func (h *harness) run(id string, steps int, loss func(step int) float64) *atlas.Job {
	h.t.Helper()
	ctx := h.t.Context()
	h.start1(id)
	for step := 1; step <= steps; step++ {
		_, err := h.svc.Track(ctx, alice, id, &sdk.TrackBatch{Metrics: map[string]sdk.MetricBatch{
			"loss": {Values: []any{json.Number(fmt.Sprint(loss(step)))}, Steps: []int64{int64(step)}}}})
		require.NoError(h.t, err)
		if h.job(id).State == atlas.StateStopping {
			break
		}
	}
	j, err := h.svc.Ended(ctx, id, jobs.Outcome{ExitCode: 0})
	require.NoError(h.t, err)
	return j
}

func (h *harness) start1(id string) {
	h.t.Helper()
	_, err := h.svc.Claim(h.t.Context(), id, "test", nil)
	require.NoError(h.t, err)
	_, err = h.svc.Started(h.t.Context(), id, "{}")
	require.NoError(h.t, err)
}

const ashaSearch = `method: asha
metric: loss
smaller_is_better: true
max_trials: 9
max_concurrent_trials: 1
seed: 11
reduction_factor: 3
min_steps: 1
max_steps: 27
params:
  lr: {type: log_uniform, min: 0.001, max: 0.1}
  layers: {type: int, min: 1, max: 4}
`

// Trial n's loss at step s is base[n]/s: the order of the trials at every rung is known.
var base = []float64{5, 3, 8, 1, 9, 2, 7, 4, 6}

// Which trials ASHA (reduction factor 3, rungs at steps 1, 3, 9) stops, and where, when they
// reach the rungs one after another in trial order:
//
//	rung 1: 5 on, 3 on, 8 (2 of 3 better, 1 kept) stopped, 1 on, 9 stopped, 2 on (1 of 6
//	        better, 2 kept), 7, 4 and 6 stopped;
//	rung 3: trials 0, 1 and 3 go on, trial 5 (2/3, behind 1/3 with 1 kept of 4) is stopped;
//	rung 9: trials 0, 1 and 3 each are the best or within the kept one so far: all go on.
var wantStoppedAt = map[int]int64{2: 1, 4: 1, 6: 1, 7: 1, 8: 1, 5: 3}

func TestASHAStopsExactlyTheTrialsItShouldAtTheirRungs(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	se := h.submit("asha", ashaSearch)
	require.Equal(t, []int64{1, 3, 9}, se.Rungs)
	require.Equal(t, 9, se.TrialsPlanned)
	for n := range 9 {
		j := h.queued("asha", n)
		require.Equal(t, "asha", j.SearchID)
		require.Equal(t, 9.0, j.Params["epochs"], "the job's own params are kept")
		require.EqualValues(t, RandomPoint(parse(t, ashaSearch).Params, 11, n)["layers"], j.Params["layers"], "trial n is the n-th point of the seed")
		// One trial at a time: the next is queued only when this one has ended.
		require.Nil(t, h.job(TrialID("asha", n+1)))
		ended := h.run(j.ID, 12, func(s int) float64 { return base[n] / float64(s) })
		if step, stopped := wantStoppedAt[n]; stopped {
			require.Equal(t, atlas.StateStopped, ended.State, "trial %d", n)
			require.Regexp(t, fmt.Sprintf(`^early stopped by search asha at step %d \(`, step), ended.Reason)
		} else {
			require.Equal(t, atlas.StateCompleted, ended.State, "trial %d: %s", n, ended.Reason)
		}
	}
	h.until("the search completes", func() bool { return h.searchState("asha") == atlas.SearchCompleted })
	checkASHADecisions(t, h, "asha")
}

// checkASHADecisions checks every stored decision of the search of ashaSearch and base.
func checkASHADecisions(t *testing.T, h *harness, id string) {
	t.Helper()
	v, err := h.srch.View(t.Context(), alice, id)
	require.NoError(t, err)
	require.Equal(t, sdk.SearchCompleted, v.State)
	require.Len(t, v.Trials, 9)
	require.Equal(t, map[string]int{"completed": 3, "stopped": 6}, v.Counts)
	for _, tr := range v.Trials {
		step, stopped := wantStoppedAt[tr.Trial]
		if stopped {
			require.NotNil(t, tr.StoppedAt, "trial %d", tr.Trial)
			require.Equal(t, step, *tr.StoppedAt, "trial %d", tr.Trial)
			require.Len(t, tr.Rungs, map[int64]int{1: 1, 3: 2}[step])
		} else {
			require.Nil(t, tr.StoppedAt, "trial %d", tr.Trial)
			require.Len(t, tr.Rungs, 3, "trial %d reached every rung", tr.Trial)
		}
		require.Equal(t, base[tr.Trial], tr.Rungs[0].Value, "the value at step 1")
	}
	require.Equal(t, 3, v.Best.Trial, "the best trial")
	require.InDelta(t, 1.0/12, *v.Best.Value, 1e-9, "its best value")
	require.Empty(t, v.Warnings)
}

// A server restart in the middle of a search changes nothing: the decisions after it are those
// an uninterrupted search makes, no trial is submitted twice, and a stop decided but not made
// before the restart is made after it.
func TestARestartedSearchDecidesAsIfNothingHappened(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.submit("asha", ashaSearch)
	for n := range 9 {
		j := h.queued("asha", n)
		switch n {
		case 3:
			h.restart() // between two trials
		case 6:
			// Trial 6 gets to its first rung; the decision to stop it is stored, and the server
			// dies before it is made.
			h.start1(j.ID)
			require.NoError(t, h.store.SearchRungAdd(t.Context(), &atlas.RungRecord{SearchID: "asha", JobID: j.ID, Trial: 6,
				Rung: 0, Step: 1, Value: 7, Stop: true}))
			h.restart()
			h.until("trial 6 is stopped", func() bool { return h.job(j.ID).State == atlas.StateStopping })
			ended, err := h.svc.Ended(t.Context(), j.ID, jobs.Outcome{ExitCode: 143})
			require.NoError(t, err)
			require.Regexp(t, `^early stopped by search asha at step 1 \(`, ended.Reason)
			continue
		}
		h.run(j.ID, 12, func(s int) float64 { return base[n] / float64(s) })
	}
	h.until("the search completes", func() bool { return h.searchState("asha") == atlas.SearchCompleted })
	checkASHADecisions(t, h, "asha")
	trials, err := h.store.SearchTrials(t.Context(), "asha")
	require.NoError(t, err)
	require.Len(t, trials, 9, "no trial was submitted twice")
}

func TestAGridSearchRunsEveryPointOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	se := h.submit("grid", `method: grid
metric: acc
smaller_is_better: false
max_concurrent_trials: 4
params:
  layers: {type: int, min: 1, max: 3}
  act: {type: categorical, values: [relu, tanh]}
`)
	require.Equal(t, 6, se.TrialsPlanned)
	// Four at a time, more than the server's two workers: the rest wait in the queue.
	for n := range 4 {
		h.queued("grid", n)
	}
	require.Nil(t, h.job(TrialID("grid", 4)), "at most max_concurrent_trials at a time")
	seen := map[string]bool{}
	for n := range 6 {
		j := h.queued("grid", n)
		seen[fmt.Sprint(j.Params["layers"], j.Params["act"])] = true
		h.start1(j.ID)
		_, err := h.svc.Track(t.Context(), alice, j.ID, &sdk.TrackBatch{Metrics: map[string]sdk.MetricBatch{"acc": {Values: []any{json.Number(fmt.Sprint(n))}}}})
		require.NoError(t, err)
		_, err = h.svc.Ended(t.Context(), j.ID, jobs.Outcome{})
		require.NoError(t, err)
	}
	require.Len(t, seen, 6, "every point of the grid, once")
	h.until("the search completes", func() bool { return h.searchState("grid") == atlas.SearchCompleted })
	v, err := h.srch.View(t.Context(), alice, "grid")
	require.NoError(t, err)
	require.Equal(t, 6, v.TrialsSubmitted)
	require.Equal(t, 5, v.Best.Trial, "larger is better")
}

func TestTheSameSeedDrawsTheSameTrials(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	random := "method: random\nmetric: loss\nsmaller_is_better: true\nmax_trials: 3\nmax_concurrent_trials: 3\nseed: %d\nparams:\n  lr: {type: uniform, min: 0, max: 1}\n"
	params := func(search string) []any {
		var out []any
		for n := range 3 {
			out = append(out, h.queued(search, n).Params["lr"])
		}
		return out
	}
	h.submit("a", fmt.Sprintf(random, 5))
	h.submit("b", fmt.Sprintf(random, 5))
	h.submit("c", fmt.Sprintf(random, 6))
	require.Equal(t, params("a"), params("b"))
	require.NotEqual(t, params("a"), params("c"))

	// Without a seed, one is drawn and recorded: the search can be run again.
	noSeed := h.submit("d", "method: random\nmetric: loss\nsmaller_is_better: true\nmax_trials: 1\nparams:\n  lr: {type: uniform, min: 0, max: 1}\n")
	require.NotNil(t, noSeed.Config.Seed)
}

func TestStoppingASearchStopsItsTrials(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.submit("s", "method: random\nmetric: loss\nsmaller_is_better: true\nmax_trials: 10\nmax_concurrent_trials: 2\nparams:\n  lr: {type: uniform, min: 0, max: 1}\n")
	running := h.queued("s", 0)
	queued := h.queued("s", 1)
	h.start1(running.ID)
	v, err := h.srch.StopSearch(t.Context(), alice, "s")
	require.NoError(t, err)
	require.Equal(t, sdk.SearchStopping, v.State, "until its running trial has ended")
	require.Equal(t, atlas.StateStopped, h.job(queued.ID).State)
	require.Equal(t, "stopped with search s", h.job(queued.ID).Reason)
	require.Equal(t, atlas.StateStopping, h.job(running.ID).State)
	_, err = h.svc.Ended(t.Context(), running.ID, jobs.Outcome{ExitCode: 143})
	require.NoError(t, err)
	h.until("the search has stopped", func() bool { return h.searchState("s") == atlas.SearchStopped })
	trials, err := h.store.SearchTrials(t.Context(), "s")
	require.NoError(t, err)
	require.Len(t, trials, 2, "no trial after the stop")
	_, err = h.srch.StopSearch(t.Context(), alice, "s")
	require.ErrorIs(t, err, atlas.ErrConflict)
}

func TestBadSearchesAreRefusedAndNothingIsStored(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := t.Context()
	job := sdk.JobSpec{Command: []string{"main.py"}, BundleDigest: h.bundle}
	for _, c := range []struct {
		spec sdk.SearchSpec
		want string
	}{
		{sdk.SearchSpec{Job: job, Config: "method: bayes\nmetric: l\nsmaller_is_better: true\nparams: {a: 1}\n"}, `unknown method "bayes"`},
		{sdk.SearchSpec{Job: job, Config: "method: random\nmetric: l\nsmaller_is_better: true\nmax_trials: 2\nparams:\n  a: {type: int, min: 3, max: 1}\n"}, "min 3 is greater than max 1"},
		{sdk.SearchSpec{Job: job, Config: "method: random\nmetric: l\nsmaller_is_better: true\nmax_trials: 2\nparams:\n  a: {type: categorical, values: []}\n"}, "needs at least one value"},
		{sdk.SearchSpec{Job: job}, "no search given"},
		{sdk.SearchSpec{Job: sdk.JobSpec{Command: []string{"main.py"}, BundleDigest: h.bundle, JobConfig: "project_name: p\n"}}, "job.config.yaml has no search: section"},
		{sdk.SearchSpec{Job: sdk.JobSpec{Command: []string{"main.py"}}, Config: "method: grid\nmetric: l\nsmaller_is_better: true\nparams: {a: 1}\n"}, "needs the bundle"},
		{sdk.SearchSpec{ID: "bad id", Job: job}, "invalid search id"},
	} {
		_, err := h.srch.Submit(ctx, alice, &c.spec)
		require.ErrorIs(t, err, atlas.ErrInvalid, c.want)
		require.ErrorContains(t, err, c.want)
		require.NotContains(t, err.Error(), "\n")
	}
	list, err := h.store.SearchList(ctx, "")
	require.NoError(t, err)
	require.Empty(t, list)
	jobsList, total, err := h.store.JobList(ctx, &store.JobListParams{})
	require.NoError(t, err)
	require.Zero(t, total, "nothing queued")
	require.Empty(t, jobsList)
}

func TestASearchSaysWhenItsMetricIsNeverLogged(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.submit("s", "method: random\nmetric: val_los\nsmaller_is_better: true\nmax_trials: 3\nmax_concurrent_trials: 1\nparams:\n  lr: {type: uniform, min: 0, max: 1}\n")
	j := h.queued("s", 0)
	v, err := h.srch.View(t.Context(), alice, "s")
	require.NoError(t, err)
	require.Empty(t, v.Warnings, "nothing to say before a trial has ended")
	h.start1(j.ID)
	_, err = h.svc.Track(t.Context(), alice, j.ID, &sdk.TrackBatch{Metrics: map[string]sdk.MetricBatch{"val_loss": {Values: []any{1.0}}}})
	require.NoError(t, err)
	_, err = h.svc.Ended(t.Context(), j.ID, jobs.Outcome{})
	require.NoError(t, err)
	v, err = h.srch.View(t.Context(), alice, "s")
	require.NoError(t, err)
	require.Equal(t, []string{`no trial has logged the metric "val_los": 1 trial(s) ended without it (they logged only "val_loss"); check the metric's name`}, v.Warnings)
}

func TestAResubmittedSearchIsTheSameSearch(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	spec := &sdk.SearchSpec{ID: "s", Config: "method: random\nmetric: l\nsmaller_is_better: true\nmax_trials: 1\nparams: {a: {type: uniform, min: 0, max: 1}}\n",
		Job: sdk.JobSpec{Command: []string{"main.py"}, BundleDigest: h.bundle}}
	first, err := h.srch.Submit(t.Context(), alice, spec)
	require.NoError(t, err)
	again, err := h.srch.Submit(t.Context(), alice, spec)
	require.NoError(t, err)
	require.True(t, again.Existing)
	require.Equal(t, first.Search.Config.Seed, again.Search.Config.Seed)
	_, err = h.srch.Submit(t.Context(), &jobs.Caller{Local: true, User: "bob", RunAs: "1001:1001"}, spec)
	require.ErrorIs(t, err, atlas.ErrConflict, "someone else's id is taken")
}
