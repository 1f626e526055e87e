// Package storetest is the conformance suite every store.Store backend must pass.
//
// A backend's test calls Exercise with a constructor that returns a fresh, empty store. New
// behaviour of the store is specified here first. It must only be imported from tests.
package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/store"
)

// Exercise runs the suite. newStore must return an empty store, closed by the caller's cleanup.
func Exercise(t *testing.T, newStore func(t *testing.T) store.Store) {
	exerciseListing(t, newStore)
	exerciseSearches(t, newStore)

	t.Run("JobInsertGet", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		ctx := t.Context()
		j := newJob("a", "proj")
		j.Params = map[string]any{"lr": 0.1, "layers": []any{1.0, 2.0}}
		j.Worker = atlas.Worker{Image: "img", Volumes: map[string]atlas.Volume{"/data": {Bind: "/in", Mode: "ro"}}}
		j.RunAs = "1000:1000"
		require.NoError(t, s.JobInsert(ctx, j))
		require.NotZero(t, j.Seq)
		got, err := s.JobGet(ctx, "a")
		require.NoError(t, err)
		require.Equal(t, "proj", got.Project)
		require.Equal(t, atlas.StateQueued, got.State)
		require.Equal(t, []string{"main.py", "--x"}, got.Command)
		require.Equal(t, 0.1, got.Params["lr"])
		require.Equal(t, "ro", got.Worker.Volumes["/data"].Mode)
		require.Equal(t, "1000:1000", got.RunAs)
		require.Equal(t, "tokenhash", got.TokenHash)

		_, err = s.JobGet(ctx, "missing")
		require.ErrorIs(t, err, atlas.ErrNotFound)
		require.ErrorIs(t, s.JobInsert(ctx, newJob("a", "proj")), atlas.ErrConflict)
	})

	t.Run("JobNames", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		ctx := t.Context()
		for id, name := range map[string]string{"n1": "brave-otter", "n2": "Zeta run: lr=0.1 ✓", "n3": "", "n4": "calm-Otter"} {
			j := newJob(id, "p")
			j.Name = name
			require.NoError(t, s.JobInsert(ctx, j))
		}
		got, err := s.JobGet(ctx, "n2")
		require.NoError(t, err)
		require.Equal(t, "Zeta run: lr=0.1 ✓", got.Name, "a name is stored as given")
		got, err = s.JobGet(ctx, "n3")
		require.NoError(t, err)
		require.Empty(t, got.Name)
		queued, err := s.JobsInState(ctx, atlas.StateQueued)
		require.NoError(t, err)
		names := map[string]string{}
		for _, j := range queued {
			names[j.ID] = j.Name
		}
		require.Equal(t, map[string]string{"n1": "brave-otter", "n2": "Zeta run: lr=0.1 ✓", "n3": "", "n4": "calm-Otter"}, names)

		jobs, _, err := s.JobList(ctx, &store.JobListParams{Project: "p", Sort: "name"})
		require.NoError(t, err)
		require.Equal(t, []string{"n3", "n2", "n1", "n4"}, ids(jobs), "by name, byte order")
		require.Equal(t, "Zeta run: lr=0.1 ✓", jobs[1].Name)
		jobs, _, err = s.JobList(ctx, &store.JobListParams{Project: "p", Sort: "name", Desc: true, Limit: 2})
		require.NoError(t, err)
		require.Equal(t, []string{"n4", "n1"}, ids(jobs))
		jobs, _, err = s.JobList(ctx, &store.JobListParams{Project: "p", Sort: "name",
			Filters: []store.Filter{{Field: "name", Op: "contains", Values: []string{"OTTER"}}}})
		require.NoError(t, err)
		require.Equal(t, []string{"n1", "n4"}, ids(jobs), "contains ignores case")
		_, total, err := s.JobList(ctx, &store.JobListParams{Filters: []store.Filter{{Field: "name", Op: "in", Values: []string{"brave-otter", ""}}}})
		require.NoError(t, err)
		require.Equal(t, 2, total)
	})

	t.Run("JobIDsByPrefix", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		ctx := t.Context()
		for _, id := range []string{"abc1", "abc10", "abc2-x", "abd", "Abc3", "ab_c", "zz"} {
			require.NoError(t, s.JobInsert(ctx, newJob(id, "p")))
		}
		got, total, err := s.JobIDsByPrefix(ctx, "abc", 10)
		require.NoError(t, err)
		require.Equal(t, []string{"abc1", "abc10", "abc2-x"}, got, "case-sensitive, shortest first")
		require.Equal(t, 3, total)

		got, total, err = s.JobIDsByPrefix(ctx, "abc1", 10)
		require.NoError(t, err)
		require.Equal(t, []string{"abc1", "abc10"}, got, "an id that is itself a prefix of another comes first")
		require.Equal(t, 2, total)

		got, total, err = s.JobIDsByPrefix(ctx, "abc", 2)
		require.NoError(t, err)
		require.Equal(t, []string{"abc1", "abc10"}, got)
		require.Equal(t, 3, total, "the total counts past the limit")

		got, total, err = s.JobIDsByPrefix(ctx, "ab_", 10)
		require.NoError(t, err)
		require.Equal(t, []string{"ab_c"}, got, "'_' is no wildcard")
		require.Equal(t, 1, total)

		got, total, err = s.JobIDsByPrefix(ctx, "nope", 10)
		require.NoError(t, err)
		require.Empty(t, got)
		require.Zero(t, total)
	})

	t.Run("QueueOrder", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		ctx := t.Context()
		for i, pr := range []int{0, 5, 0, 5} {
			j := newJob(fmt.Sprintf("j%d", i), "p")
			j.Priority = pr
			require.NoError(t, s.JobInsert(ctx, j))
		}
		q, err := s.JobsInState(ctx, atlas.StateQueued)
		require.NoError(t, err)
		require.Equal(t, []string{"j1", "j3", "j0", "j2"}, ids(q))
		entries, err := s.JobQueue(ctx, 0)
		require.NoError(t, err)
		require.Len(t, entries, 4)
		require.Equal(t, "j1", entries[0].ID)
		require.Equal(t, "j2", entries[3].ID)
		require.False(t, entries[0].CreatedAt.IsZero())
		head, err := s.JobQueue(ctx, 2)
		require.NoError(t, err)
		require.Equal(t, []string{"j1", "j3"}, []string{head[0].ID, head[1].ID}, "the head of the queue, in queue order")
		require.Len(t, head, 2)
		whole, err := s.JobQueueHead(ctx, 3)
		require.NoError(t, err)
		require.Equal(t, []string{"j1", "j3", "j0"}, ids(whole), "the head of the queue, whole jobs")
		require.Equal(t, []string{"main.py", "--x"}, whole[0].Command)
		for i, id := range []string{"j1", "j3", "j0", "j2"} {
			pos, err := s.JobQueuePosition(ctx, id)
			require.NoError(t, err)
			require.Equal(t, i+1, pos, "job %s", id)
		}
	})

	t.Run("QueueStats", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		ctx := t.Context()
		oldest, err := s.JobQueueOldest(ctx)
		require.NoError(t, err)
		require.True(t, oldest.IsZero(), "nothing queued")
		base := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
		// Submit times out of submit order (a clock set back): the oldest is by time.
		for i, at := range []time.Duration{time.Hour, 0, 2 * time.Hour, 3 * time.Hour} {
			j := newJob(fmt.Sprintf("j%d", i), "p")
			j.CreatedAt = base.Add(at)
			j.Priority = i % 2
			require.NoError(t, s.JobInsert(ctx, j))
		}
		finish(t, s, "j1", atlas.StateCompleted) // submitted first, but no longer queued
		oldest, err = s.JobQueueOldest(ctx)
		require.NoError(t, err)
		require.True(t, base.Add(time.Hour).Equal(oldest), "the oldest queued job's submit time, got %v", oldest)
		pos, err := s.JobQueuePosition(ctx, "j1")
		require.NoError(t, err)
		require.Zero(t, pos, "a job no longer queued has no place in the queue")
		pos, err = s.JobQueuePosition(ctx, "nope")
		require.NoError(t, err)
		require.Zero(t, pos)
		pos, err = s.JobQueuePosition(ctx, "j3")
		require.NoError(t, err)
		require.Equal(t, 1, pos, "the higher priority goes first")
		_, err = s.JobSetState(ctx, &store.JobSetStateParams{ID: "j3", To: atlas.StateStarting})
		require.NoError(t, err)
		counts, err := s.JobCounts(ctx)
		require.NoError(t, err)
		require.Equal(t, map[atlas.State]int{atlas.StateQueued: 2, atlas.StateStarting: 1, atlas.StateCompleted: 1}, counts)
		counts, err = s.JobCounts(ctx, atlas.StateQueued, atlas.StateRunning)
		require.NoError(t, err)
		require.Equal(t, map[atlas.State]int{atlas.StateQueued: 2}, counts, "only the states asked for")
		head, err := s.JobQueueHead(ctx, 10)
		require.NoError(t, err)
		require.Equal(t, []string{"j0", "j2"}, ids(head))
	})

	t.Run("StateTransitions", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		ctx := t.Context()
		require.NoError(t, s.JobInsert(ctx, newJob("a", "p")))
		_, err := s.JobSetState(ctx, &store.JobSetStateParams{ID: "a", To: atlas.StateCompleted})
		require.ErrorIs(t, err, atlas.ErrConflict, "queued cannot complete")
		j, err := s.JobSetState(ctx, &store.JobSetStateParams{ID: "a", From: []atlas.State{atlas.StateQueued},
			To: atlas.StateStarting, Executor: "process", GPUIDs: []string{"1"}})
		require.NoError(t, err)
		require.Equal(t, atlas.StateStarting, j.State)
		require.Equal(t, []string{"1"}, j.GPUIDs)
		_, err = s.JobSetState(ctx, &store.JobSetStateParams{ID: "a", From: []atlas.State{atlas.StateQueued}, To: atlas.StateStarting})
		require.ErrorIs(t, err, atlas.ErrConflict, "second claim must lose")
		j, err = s.JobSetState(ctx, &store.JobSetStateParams{ID: "a", To: atlas.StateRunning, RunInfo: "pid=1"})
		require.NoError(t, err)
		require.NotNil(t, j.StartedAt)
		require.Equal(t, "pid=1", j.RunInfo)
		require.NoError(t, s.JobSetArchive(ctx, "a", "sha256:y"))
		require.ErrorIs(t, s.JobSetArchive(ctx, "nope", "sha256:y"), atlas.ErrNotFound)
		asked := time.Now().Add(-time.Second).UTC().Truncate(time.Microsecond)
		j, err = s.JobSetState(ctx, &store.JobSetStateParams{ID: "a", From: []atlas.State{atlas.StateRunning},
			To: atlas.StateStopping, At: asked})
		require.NoError(t, err)
		require.Equal(t, atlas.StateStopping, j.State)
		require.NotNil(t, j.StoppingAt)
		require.True(t, asked.Equal(*j.StoppingAt), "stopping_at is when the stop was asked for")
		_, err = s.JobSetState(ctx, &store.JobSetStateParams{ID: "a", To: atlas.StateCompleted})
		require.ErrorIs(t, err, atlas.ErrConflict, "a job asked to stop does not complete")
		code := 143
		j, err = s.JobSetState(ctx, &store.JobSetStateParams{ID: "a", To: atlas.StateStopped, ExitCode: &code,
			Reason: "exited after SIGTERM in 0.1 s", ArchiveDigest: "sha256:x"})
		require.NoError(t, err)
		require.Equal(t, atlas.StateStopped, j.State)
		require.Equal(t, 143, *j.ExitCode)
		require.NotNil(t, j.FinishedAt)
		require.NotNil(t, j.StoppingAt)
		require.Equal(t, "sha256:x", j.ArchiveDigest)
		_, err = s.JobSetState(ctx, &store.JobSetStateParams{ID: "a", To: atlas.StateStopping})
		require.ErrorIs(t, err, atlas.ErrConflict, "a stopped job is not stopped again")
	})

	t.Run("ReportExit", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		ctx := t.Context()
		require.NoError(t, s.JobInsert(ctx, newJob("a", "p")))
		live := []atlas.State{atlas.StateStarting, atlas.StateRunning, atlas.StateStopping}
		_, err := s.JobReportExit(ctx, "a", 0, "sha256:x", live)
		var se *store.StateError
		require.ErrorAs(t, err, &se, "a queued job has no command that could have ended")
		_, err = s.JobSetState(ctx, &store.JobSetStateParams{ID: "a", To: atlas.StateStarting})
		require.NoError(t, err)
		_, err = s.JobSetState(ctx, &store.JobSetStateParams{ID: "a", To: atlas.StateRunning, ArchiveDigest: "sha256:before"})
		require.NoError(t, err)
		j, err := s.JobReportExit(ctx, "a", 3, "", live)
		require.NoError(t, err)
		require.Equal(t, 3, *j.ReportedExitCode)
		require.Equal(t, "sha256:before", j.ArchiveDigest, "no archive reported: the one it had stays")
		j, err = s.JobReportExit(ctx, "a", 0, "sha256:after", live)
		require.NoError(t, err)
		require.Equal(t, 0, *j.ReportedExitCode)
		require.Equal(t, "sha256:after", j.ArchiveDigest)
		j, err = s.JobGet(ctx, "a")
		require.NoError(t, err)
		require.Equal(t, 0, *j.ReportedExitCode, "kept")
		require.Nil(t, j.ExitCode, "the report is not the recorded end")
		_, err = s.JobReportExit(ctx, "missing", 0, "", live)
		require.ErrorIs(t, err, atlas.ErrNotFound)
	})

	t.Run("ConcurrentClaimHasOneWinner", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		ctx := t.Context()
		require.NoError(t, s.JobInsert(ctx, newJob("a", "p")))
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		for range 8 {
			wg.Go(func() {
				_, err := s.JobSetState(ctx, &store.JobSetStateParams{ID: "a", From: []atlas.State{atlas.StateQueued}, To: atlas.StateStarting})
				if err == nil {
					mu.Lock()
					wins++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		require.Equal(t, 1, wins)
	})

	t.Run("TrackBatchExactlyOnce", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		ctx := t.Context()
		require.NoError(t, s.JobInsert(ctx, newJob("a", "p")))
		b := &store.TrackBatch{JobID: "a", Writer: "w1", Seq: 1,
			Params:    map[string]any{"lr": 0.5, "opt": "adam"},
			Metrics:   map[string][]atlas.MetricPoint{"loss": {{Step: 0, Value: 3.0, Time: 1}, {Step: 1, Value: 1.0, Time: 2}}},
			Tags:      map[string]string{"best": ""},
			Artifacts: []atlas.Artifact{{Key: "model", Filename: "model.pkl", Digest: "sha256:aa", Size: 3}},
		}
		ok, err := s.TrackBatch(ctx, b)
		require.NoError(t, err)
		require.True(t, ok)
		ok, err = s.TrackBatch(ctx, b)
		require.NoError(t, err)
		require.False(t, ok, "a retried batch is not applied twice")
		ok, err = s.TrackBatch(ctx, &store.TrackBatch{JobID: "a", Writer: "w1", Seq: 2,
			Metrics: map[string][]atlas.MetricPoint{"loss": {{Step: 2, Value: 2.0, Time: 3}}, "note": {{Step: 0, Value: "hi", Time: 3}}}})
		require.NoError(t, err)
		require.True(t, ok)
		// Another writer's seq 1 is its own.
		ok, err = s.TrackBatch(ctx, &store.TrackBatch{JobID: "a", Writer: "w2", Seq: 1, Params: map[string]any{"lr": 0.25}})
		require.NoError(t, err)
		require.True(t, ok)

		ok, err = s.TrackBatch(ctx, &store.TrackBatch{JobID: "a", Metrics: map[string][]atlas.MetricPoint{
			"auto": {{Step: -1, Value: 1.0}, {Step: -1, Value: 2.0}}}})
		require.NoError(t, err)
		require.True(t, ok, "a batch without a writer is always applied")
		_, err = s.TrackBatch(ctx, &store.TrackBatch{JobID: "a", Metrics: map[string][]atlas.MetricPoint{"auto": {{Step: -1, Value: 3.0}}}})
		require.NoError(t, err)
		auto, err := s.MetricSeries(ctx, "a", "auto")
		require.NoError(t, err)
		require.Equal(t, []int64{0, 1, 2}, []int64{auto[0].Step, auto[1].Step, auto[2].Step}, "negative steps number the points")

		series, err := s.MetricSeries(ctx, "a", "loss")
		require.NoError(t, err)
		require.Len(t, series, 3)
		require.Equal(t, []any{3.0, 1.0, 2.0}, []any{series[0].Value, series[1].Value, series[2].Value})
		sums, err := s.MetricSummaries(ctx, []string{"a"})
		require.NoError(t, err)
		require.Len(t, sums["a"], 3)
		loss := sums["a"][1]
		require.Equal(t, "loss", loss.Key)
		require.EqualValues(t, 3, loss.Count)
		require.Equal(t, 2.0, loss.Last)
		require.Equal(t, 1.0, *loss.Min)
		require.Equal(t, 3.0, *loss.Max)
		require.Equal(t, "hi", sums["a"][2].Last)
		require.Nil(t, sums["a"][2].Min)

		params, err := s.Params(ctx, []string{"a"})
		require.NoError(t, err)
		require.Equal(t, map[string]any{"lr": 0.25, "opt": "adam"}, params["a"])
		tags, err := s.Tags(ctx, []string{"a"})
		require.NoError(t, err)
		require.Equal(t, map[string]string{"best": ""}, tags["a"])
		arts, err := s.Artifacts(ctx, "a")
		require.NoError(t, err)
		require.Len(t, arts, 1)
		require.Equal(t, "model.pkl", arts[0].Filename)
		n, err := s.BlobRefs(ctx, "sha256:aa")
		require.NoError(t, err)
		require.Equal(t, 1, n)

		require.NoError(t, s.TagDelete(ctx, "a", "best"))
		require.ErrorIs(t, s.TagDelete(ctx, "a", "best"), atlas.ErrNotFound)
		_, err = s.TrackBatch(ctx, &store.TrackBatch{JobID: "nope", Writer: "w", Seq: 1})
		require.ErrorIs(t, err, atlas.ErrNotFound)
	})

	t.Run("JobsImport", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		ctx := t.Context()
		require.NoError(t, s.JobInsert(ctx, newJob("before", "p")))
		at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
		imported := func(id string, loss float64, code int) store.ImportedJob {
			j := newJob(id, "p")
			j.State, j.ExitCode, j.Name = atlas.StateCompleted, &code, "run-"+id
			if code != 0 {
				j.State = atlas.StateFailed
			}
			started, finished := at.Add(time.Second), at.Add(time.Minute)
			j.CreatedAt, j.StartedAt, j.FinishedAt = at, &started, &finished
			return store.ImportedJob{Job: j, Track: &store.TrackBatch{
				Params:  map[string]any{"lr": loss / 10, "opt": "adam"},
				Metrics: map[string][]atlas.MetricPoint{"loss": {{Step: 0, Value: loss * 2, Time: 1}, {Step: 1, Value: loss, Time: 2}}},
				Tags:    map[string]string{"imported": "yes"},
			}}
		}
		batch := []store.ImportedJob{imported("i1", 0.5, 0), imported("i2", 0.25, 1), {Job: imported("i3", 0, 0).Job}}
		require.NoError(t, s.JobsImport(ctx, batch))
		require.Less(t, batch[0].Job.Seq, batch[1].Job.Seq, "seqs in the order given")

		got, err := s.JobGet(ctx, "i2")
		require.NoError(t, err)
		require.Equal(t, atlas.StateFailed, got.State)
		require.Equal(t, 1, *got.ExitCode)
		require.Equal(t, "run-i2", got.Name)
		require.True(t, got.CreatedAt.Equal(at))
		require.True(t, got.StartedAt.Equal(at.Add(time.Second)))
		require.True(t, got.FinishedAt.Equal(at.Add(time.Minute)))
		params, err := s.Params(ctx, []string{"i1", "i2", "i3"})
		require.NoError(t, err)
		require.Equal(t, map[string]any{"lr": 0.025, "opt": "adam"}, params["i2"])
		require.Empty(t, params["i3"], "a job imported without values has none")
		series, err := s.MetricSeries(ctx, "i1", "loss")
		require.NoError(t, err)
		require.Equal(t, []atlas.MetricPoint{{Step: 0, Value: 1.0, Time: 1}, {Step: 1, Value: 0.5, Time: 2}}, series)
		tags, err := s.Tags(ctx, []string{"i1"})
		require.NoError(t, err)
		require.Equal(t, map[string]string{"imported": "yes"}, tags["i1"])
		pk, mk, err := s.ProjectColumns(ctx, "p")
		require.NoError(t, err)
		require.Equal(t, []string{"lr", "opt"}, pk)
		require.Equal(t, []string{"loss"}, mk)
		list, total, err := s.JobList(ctx, &store.JobListParams{Project: "p", Sort: "metric:loss", States: []atlas.State{atlas.StateCompleted, atlas.StateFailed}})
		require.NoError(t, err)
		require.Equal(t, 3, total)
		require.Equal(t, []string{"i2", "i1", "i3"}, ids(list), "sorted by the imported metric's last value")

		// All or none: a batch with a job that must be refused, or whose id exists, stores nothing.
		queued := imported("q1", 1, 0)
		queued.Job.State = atlas.StateQueued
		require.ErrorIs(t, s.JobsImport(ctx, []store.ImportedJob{imported("x1", 1, 0), queued}), atlas.ErrInvalid)
		// a2 sorts before i1, whose id exists: it is written before the conflict is found, in
		// any order of writing, and must not stay.
		require.ErrorIs(t, s.JobsImport(ctx, []store.ImportedJob{imported("x2", 1, 0), imported("a2", 1, 0), imported("i1", 1, 0)}), atlas.ErrConflict)
		unfinished := imported("x3", 1, 0)
		unfinished.Job.FinishedAt = nil
		require.ErrorIs(t, s.JobsImport(ctx, []store.ImportedJob{unfinished}), atlas.ErrInvalid)
		undated := imported("x4", 1, 0)
		undated.Job.CreatedAt = time.Time{}
		require.ErrorIs(t, s.JobsImport(ctx, []store.ImportedJob{undated}), atlas.ErrInvalid)
		for _, id := range []string{"x1", "q1", "x2", "a2", "x3", "x4"} {
			_, err := s.JobGet(ctx, id)
			require.ErrorIs(t, err, atlas.ErrNotFound, id)
		}
		params, err = s.Params(ctx, []string{"a2", "x2"})
		require.NoError(t, err)
		require.Empty(t, params, "a refused import stores no values")
		series, err = s.MetricSeries(ctx, "a2", "loss")
		require.NoError(t, err)
		require.Empty(t, series, "a refused import stores no values")
		series, err = s.MetricSeries(ctx, "i1", "loss")
		require.NoError(t, err)
		require.Len(t, series, 2, "a refused import leaves what was stored")

		// More values than one statement of a backend may carry.
		var many []store.ImportedJob
		var manyIDs []string
		for i := range 150 {
			ij := imported(fmt.Sprintf("m%03d", 150-i), float64(i), 0) // ids against the order given
			ij.Track.Params["i"] = float64(i)
			many = append(many, ij)
			manyIDs = append(manyIDs, ij.Job.ID)
		}
		require.NoError(t, s.JobsImport(ctx, many))
		params, err = s.Params(ctx, manyIDs)
		require.NoError(t, err)
		sums, err := s.MetricSummaries(ctx, manyIDs)
		require.NoError(t, err)
		require.Len(t, params, 150)
		require.Len(t, sums, 150)
		page, _, err := s.JobList(ctx, &store.JobListParams{Project: "p", Sort: "seq", Limit: 150, Offset: 4})
		require.NoError(t, err)
		require.Equal(t, manyIDs, ids(page), "seqs in the order given")
		for i, id := range manyIDs {
			require.Equal(t, map[string]any{"i": float64(i), "lr": float64(i) / 10, "opt": "adam"}, params[id], id)
			require.Equal(t, float64(i), sums[id][0].Last, id)
			require.EqualValues(t, 2, sums[id][0].Count, id)
		}
	})

	t.Run("JobListSortFilterPage", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		ctx := t.Context()
		for i := range 10 {
			j := newJob(fmt.Sprintf("j%d", i), "p")
			j.User = []string{"alice", "bob"}[i%2]
			require.NoError(t, s.JobInsert(ctx, j))
			b := &store.TrackBatch{JobID: j.ID, Params: map[string]any{"lr": float64(i) / 10, "opt": []string{"adam", "sgd"}[i%2]}}
			if i != 3 { // j3 has no metric: it sorts last either way
				b.Metrics = map[string][]atlas.MetricPoint{"acc": {{Value: float64(i * i % 7)}}}
			}
			_, err := s.TrackBatch(ctx, b)
			require.NoError(t, err)
		}
		require.NoError(t, s.JobInsert(ctx, newJob("other", "q")))

		jobs, total, err := s.JobList(ctx, &store.JobListParams{Project: "p", Sort: "metric:acc", Desc: true, Limit: 3})
		require.NoError(t, err)
		require.Equal(t, 10, total)
		// acc = i*i%7: 0,1,4,2,2,4,1,0,1,4; ties break by submit order, in the same direction.
		require.Equal(t, []string{"j9", "j5", "j2"}, ids(jobs))
		jobs, _, err = s.JobList(ctx, &store.JobListParams{Project: "p", Sort: "metric:acc", Limit: 20})
		require.NoError(t, err)
		require.Equal(t, "j3", jobs[len(jobs)-1].ID, "missing values sort last")
		// Pages put together are the whole list, whatever the sort.
		for _, sortBy := range []string{"metric:acc", "param:opt", "param:lr", "created_at", "duration"} {
			for _, desc := range []bool{false, true} {
				all, _, err := s.JobList(ctx, &store.JobListParams{Project: "p", Sort: sortBy, Desc: desc})
				require.NoError(t, err)
				require.Len(t, all, 10)
				var paged []*atlas.Job
				for off := 0; off < 10; off += 3 {
					page, total, err := s.JobList(ctx, &store.JobListParams{Project: "p", Sort: sortBy, Desc: desc, Limit: 3, Offset: off})
					require.NoError(t, err)
					require.Equal(t, 10, total)
					paged = append(paged, page...)
				}
				require.Equal(t, ids(all), ids(paged), "sort %s desc=%v", sortBy, desc)
			}
		}
		// Across projects too ("other" has no metric and sorts last).
		jobs, _, err = s.JobList(ctx, &store.JobListParams{Sort: "metric:acc", Desc: true})
		require.NoError(t, err)
		require.Len(t, jobs, 11)
		require.Equal(t, "j9", jobs[0].ID)

		jobs, total, err = s.JobList(ctx, &store.JobListParams{Project: "p", Sort: "param:lr", Desc: true, Limit: 2, Offset: 2})
		require.NoError(t, err)
		require.Equal(t, 10, total)
		require.Equal(t, []string{"j7", "j6"}, ids(jobs))

		min, max := 0.2, 0.5
		jobs, total, err = s.JobList(ctx, &store.JobListParams{Project: "p", Sort: "param:lr",
			Filters: []store.Filter{{Field: "param:lr", Op: "range", Min: &min, Max: &max}, {Field: "user", Op: "in", Values: []string{"bob"}}}})
		require.NoError(t, err)
		require.Equal(t, 2, total)
		require.Equal(t, []string{"j3", "j5"}, ids(jobs))

		_, total, err = s.JobList(ctx, &store.JobListParams{Project: "p", Filters: []store.Filter{{Field: "param:opt", Op: "in", Values: []string{"sgd"}}}})
		require.NoError(t, err)
		require.Equal(t, 5, total)
		_, total, err = s.JobList(ctx, &store.JobListParams{Filters: []store.Filter{{Field: "id", Op: "contains", Values: []string{"oth"}}}})
		require.NoError(t, err)
		require.Equal(t, 1, total)
		_, total, err = s.JobList(ctx, &store.JobListParams{Filters: []store.Filter{{Field: "id", Op: "contains", Values: []string{"%"}}}})
		require.NoError(t, err)
		require.Equal(t, 0, total, "LIKE wildcards in user input are literal")
		_, _, err = s.JobList(ctx, &store.JobListParams{Sort: "nonsense"})
		require.ErrorIs(t, err, atlas.ErrInvalid)
		_, total, err = s.JobList(ctx, &store.JobListParams{States: []atlas.State{atlas.StateRunning}})
		require.NoError(t, err)
		require.Equal(t, 0, total)

		params, metrics, err := s.ProjectColumns(ctx, "p")
		require.NoError(t, err)
		require.Equal(t, []string{"lr", "opt"}, params)
		require.Equal(t, []string{"acc"}, metrics)

		vals, err := s.JobValues(ctx, &store.JobListParams{Project: "p", Filters: []store.Filter{{Field: "user", Op: "in", Values: []string{"alice"}}}},
			[]string{"param:lr", "param:opt", "metric:acc", "metric:none"})
		require.NoError(t, err)
		require.Equal(t, []string{"j0", "j2", "j4", "j6", "j8"}, vals.IDs)
		require.Len(t, vals.States, 5)
		require.Equal(t, []any{0.0, 0.2, 0.4, 0.6, 0.8}, vals.Columns["param:lr"])
		require.Equal(t, []any{"adam", "adam", "adam", "adam", "adam"}, vals.Columns["param:opt"])
		require.Equal(t, []any{0.0, 4.0, 2.0, 1.0, 1.0}, vals.Columns["metric:acc"])
		require.Equal(t, []any{nil, nil, nil, nil, nil}, vals.Columns["metric:none"])
		_, err = s.JobValues(ctx, &store.JobListParams{Project: "p"}, []string{"lr"})
		require.ErrorIs(t, err, atlas.ErrInvalid)
	})

	t.Run("DeleteAndClearQueue", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		ctx := t.Context()
		for _, id := range []string{"a", "b", "c"} {
			j := newJob(id, "p")
			if id == "c" {
				j.Project = "q"
			}
			require.NoError(t, s.JobInsert(ctx, j))
		}
		finished := []atlas.State{atlas.StateCompleted, atlas.StateFailed, atlas.StateStopped}
		_, _, err := s.JobDelete(ctx, "a", finished)
		require.ErrorIs(t, err, atlas.ErrConflict, "queued jobs cannot be deleted")
		var se *store.StateError
		require.ErrorAs(t, err, &se)
		require.Equal(t, atlas.StateQueued, se.Job.State, "the refusal says which state the job is in")
		finish(t, s, "a", atlas.StateCompleted)
		_, err = s.TrackBatch(ctx, &store.TrackBatch{JobID: "a", Params: map[string]any{"x": 1.0, "shared": 1.0},
			Metrics:   map[string][]atlas.MetricPoint{"only_a": {{Value: 1.0}}},
			Artifacts: []atlas.Artifact{{Key: "k", Filename: "f", Digest: "sha256:bb", Size: 1}}})
		require.NoError(t, err)
		_, err = s.TrackBatch(ctx, &store.TrackBatch{JobID: "b", Params: map[string]any{"shared": 2.0}})
		require.NoError(t, err)
		j, arts, err := s.JobDelete(ctx, "a", finished)
		require.NoError(t, err)
		require.Equal(t, "a", j.ID)
		require.Len(t, arts, 1)
		_, err = s.JobGet(ctx, "a")
		require.ErrorIs(t, err, atlas.ErrNotFound)
		n, err := s.BlobRefs(ctx, "sha256:bb")
		require.NoError(t, err)
		require.Zero(t, n)
		params, metrics, err := s.ProjectColumns(ctx, "p")
		require.NoError(t, err)
		require.Equal(t, []string{"shared"}, params, "columns only the deleted job had are gone")
		require.Empty(t, metrics)

		cleared, err := s.JobsDeleteQueued(ctx, "q", "")
		require.NoError(t, err)
		require.Equal(t, []string{"c"}, ids(cleared))
		cleared, err = s.JobsDeleteQueued(ctx, "", "someone-else")
		require.NoError(t, err)
		require.Empty(t, cleared, "only that user's jobs")
		cleared, err = s.JobsDeleteQueued(ctx, "", "")
		require.NoError(t, err)
		require.Equal(t, []string{"b"}, ids(cleared))
	})

	t.Run("Projects", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		ctx := t.Context()
		require.NoError(t, s.JobInsert(ctx, newJob("a", "p")))
		require.NoError(t, s.JobInsert(ctx, newJob("b", "p")))
		finish(t, s, "b", atlas.StateFailed)
		_, err := s.TrackBatch(ctx, &store.TrackBatch{JobID: "b", Tags: map[string]string{"best": "yes"}})
		require.NoError(t, err)
		p, err := s.ProjectGet(ctx, "p")
		require.NoError(t, err)
		require.Equal(t, 1, p.Counts[atlas.StateQueued])
		require.Equal(t, 1, p.Counts[atlas.StateFailed])
		require.Equal(t, []string{"best"}, p.Tags)
		require.Equal(t, []string{"tester"}, p.Users)
		require.Empty(t, p.DescriptionBy)
		require.Nil(t, p.DescriptionAt, "never described")
		require.NoError(t, s.ProjectSetDescription(ctx, "p", "# Hello", "alice"))
		p, err = s.ProjectGet(ctx, "p")
		require.NoError(t, err)
		require.Equal(t, "# Hello", p.Description)
		require.Equal(t, "alice", p.DescriptionBy)
		require.NotNil(t, p.DescriptionAt)
		require.ErrorIs(t, s.ProjectSetDescription(ctx, "nope", "x", "alice"), atlas.ErrNotFound)
		require.NoError(t, s.NoteAdd(ctx, &store.Note{Project: "p", Author: "me", Message: "first"}))
		require.NoError(t, s.NoteAdd(ctx, &store.Note{Project: "p", Author: "me", Message: "second"}))
		notes, err := s.Notes(ctx, "p")
		require.NoError(t, err)
		require.Len(t, notes, 2)
		require.Equal(t, "second", notes[0].Message)
		require.Equal(t, "me", notes[0].Author)
		require.ErrorIs(t, s.NoteAdd(ctx, &store.Note{Project: "nope", Message: "x"}), atlas.ErrNotFound)
	})

	t.Run("DescriptionHistory", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		ctx := t.Context()
		require.NoError(t, s.JobInsert(ctx, newJob("a", "p")))
		require.NoError(t, s.JobInsert(ctx, newJob("b", "q")))
		edits, err := s.ProjectDescriptionHistory(ctx, "p")
		require.NoError(t, err)
		require.Empty(t, edits)
		for i, e := range []struct{ by, text string }{{"alice", "v1"}, {"bob", "v2"}, {"alice", ""}, {"carol", "v4"}} {
			require.NoError(t, s.ProjectSetDescription(ctx, "p", e.text, e.by), "edit %d", i)
		}
		require.NoError(t, s.ProjectSetDescription(ctx, "q", "other", "dave"))
		edits, err = s.ProjectDescriptionHistory(ctx, "p")
		require.NoError(t, err)
		require.Len(t, edits, 4, "every edit is kept, an emptied description too")
		var got []string
		for _, e := range edits {
			require.Equal(t, "p", e.Project)
			require.False(t, e.CreatedAt.IsZero())
			got = append(got, e.Editor+":"+e.Description)
		}
		require.Equal(t, []string{"carol:v4", "alice:", "bob:v2", "alice:v1"}, got, "newest first")
		require.False(t, edits[0].CreatedAt.Before(edits[3].CreatedAt))
		list, err := s.ProjectList(ctx)
		require.NoError(t, err)
		by := map[string]string{}
		for _, p := range list {
			by[p.Name] = p.DescriptionBy + ":" + p.Description
			require.NotNil(t, p.DescriptionAt, p.Name)
		}
		require.Equal(t, map[string]string{"p": "carol:v4", "q": "dave:other"}, by, "the last edit")
		p, err := s.ProjectGet(ctx, "p")
		require.NoError(t, err)
		require.Equal(t, edits[0].CreatedAt, *p.DescriptionAt)
		// An edit of a project that does not exist leaves no trace.
		require.ErrorIs(t, s.ProjectSetDescription(ctx, "nope", "x", "eve"), atlas.ErrNotFound)
		edits, err = s.ProjectDescriptionHistory(ctx, "nope")
		require.NoError(t, err)
		require.Empty(t, edits)
	})

	t.Run("UsersAndTokens", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		ctx := t.Context()
		u, err := s.UserAdd(ctx, "alice", true)
		require.NoError(t, err)
		require.True(t, u.Admin)
		_, err = s.UserAdd(ctx, "alice", false)
		require.ErrorIs(t, err, atlas.ErrConflict)
		_, err = s.UserAdd(ctx, "bob", false)
		require.NoError(t, err)
		tok, err := s.TokenAdd(ctx, "bob", "hash-b", "laptop")
		require.NoError(t, err)
		_, err = s.TokenAdd(ctx, "carol", "hash-c", "")
		require.ErrorIs(t, err, atlas.ErrNotFound)
		got, err := s.TokenUser(ctx, "hash-b")
		require.NoError(t, err)
		require.Equal(t, "bob", got.Name)
		require.False(t, got.Admin)
		_, err = s.TokenUser(ctx, "nope")
		require.ErrorIs(t, err, atlas.ErrNotFound)
		users, err := s.UserList(ctx)
		require.NoError(t, err)
		require.Len(t, users, 2)
		require.Equal(t, 1, users[1].Tokens)
		toks, err := s.TokenList(ctx, "bob")
		require.NoError(t, err)
		require.Len(t, toks, 1)
		require.Equal(t, "laptop", toks[0].Label)
		require.NoError(t, s.TokenRevoke(ctx, tok.ID))
		_, err = s.TokenUser(ctx, "hash-b")
		require.ErrorIs(t, err, atlas.ErrNotFound, "a revoked token no longer works")
		require.ErrorIs(t, s.TokenRevoke(ctx, tok.ID), atlas.ErrNotFound)
	})

	t.Run("Heartbeat", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		ctx := t.Context()
		j := newJob("a", "p")
		j.Mode, j.State = atlas.ModeExecution, atlas.StateRunning
		now := time.Now().UTC()
		j.StartedAt = &now
		require.NoError(t, s.JobInsert(ctx, j))
		at := now.Add(time.Minute).Truncate(time.Millisecond)
		require.NoError(t, s.JobHeartbeat(ctx, "a", at))
		got, err := s.JobGet(ctx, "a")
		require.NoError(t, err)
		require.True(t, got.HeartbeatAt.Equal(at))
		require.Equal(t, atlas.ModeExecution, got.Mode)
		require.ErrorIs(t, s.JobHeartbeat(ctx, "nope", at), atlas.ErrNotFound)
	})
}

func newJob(id, project string) *atlas.Job {
	return &atlas.Job{ID: id, Project: project, User: "tester", State: atlas.StateQueued, Mode: atlas.ModeScheduled,
		Command: []string{"main.py", "--x"}, TokenHash: "tokenhash"}
}

func finish(t *testing.T, s store.Store, id string, to atlas.State) {
	t.Helper()
	ctx := context.Background()
	for _, st := range []atlas.State{atlas.StateStarting, atlas.StateRunning, to} {
		_, err := s.JobSetState(ctx, &store.JobSetStateParams{ID: id, To: st})
		require.NoError(t, err)
	}
}

func ids(jobs []*atlas.Job) []string {
	out := make([]string, len(jobs))
	for i, j := range jobs {
		out[i] = j.ID
	}
	return out
}
