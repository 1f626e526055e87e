package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/store"
	"github.com/atlasgo/atlas/internal/store/postgres"
	"github.com/atlasgo/atlas/internal/store/storetest"
)

// serverURL is the PostgreSQL server the tests use. Without one they skip, except in CI.
func serverURL(t testing.TB) string {
	u := os.Getenv("ATLAS_TEST_POSTGRES_URL")
	if u == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("ATLAS_TEST_POSTGRES_URL is not set, and CI must test the PostgreSQL store: run the tests under scripts/postgres-test.sh")
		}
		t.Skip("no PostgreSQL server: set ATLAS_TEST_POSTGRES_URL, or run scripts/postgres-test.sh go test ./internal/store/postgres/")
	}
	return u
}

// freshSchema creates an empty schema, dropped when the test ends, and returns the server's URL
// with that schema as its search_path: each test has tables of its own and tests run in parallel.
func freshSchema(t testing.TB) string {
	base := serverURL(t)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "atlas_test_" + hex.EncodeToString(b)
	conn, err := pgx.Connect(t.Context(), base)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	_, err = conn.Exec(t.Context(), "CREATE SCHEMA "+schema)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	if strings.HasPrefix(base, "postgres://") || strings.HasPrefix(base, "postgresql://") {
		u, err := url.Parse(base)
		require.NoError(t, err)
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return base + " search_path=" + schema // keyword/value form
}

func open(t testing.TB, dbURL string) *postgres.Store {
	s, err := postgres.Open(t.Context(), dbURL)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStore(t *testing.T) {
	storetest.Exercise(t, func(t *testing.T) store.Store {
		return open(t, freshSchema(t))
	})
}

func TestOpen_ReopenKeepsData(t *testing.T) {
	t.Parallel()
	dbURL := freshSchema(t)
	s, err := postgres.Open(t.Context(), dbURL)
	require.NoError(t, err)
	require.NoError(t, s.JobInsert(t.Context(), &atlas.Job{ID: "a", Project: "p", State: atlas.StateQueued, Mode: atlas.ModeScheduled}))
	require.NoError(t, s.Close())

	s = open(t, dbURL) // migrations already applied: a no-op
	j, err := s.JobGet(t.Context(), "a")
	require.NoError(t, err)
	require.Equal(t, atlas.StateQueued, j.State)
}

func TestOpen_ServersStartingTogetherMigrateOnce(t *testing.T) {
	t.Parallel()
	dbURL := freshSchema(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			s, err := postgres.Open(t.Context(), dbURL)
			if err == nil {
				s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
}

func TestOpen_BadURL(t *testing.T) {
	t.Parallel()
	_, err := postgres.Open(t.Context(), "postgres://u:secret@127.0.0.1:1/db?sslmode=disable&connect_timeout=2")
	require.Error(t, err)
	require.NotContains(t, err.Error(), "secret", "the password is not repeated in messages")
}

// Copies of one batch racing in (a retry while the first attempt is still in flight) are
// stored once, and batches of one job without a writer number their points one after another.
func TestTrackBatch_Concurrent(t *testing.T) {
	t.Parallel()
	s := open(t, freshSchema(t))
	ctx := t.Context()
	require.NoError(t, s.JobInsert(ctx, &atlas.Job{ID: "a", Project: "p", State: atlas.StateRunning, Mode: atlas.ModeExecution}))
	var applied atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			ok, err := s.TrackBatch(ctx, &store.TrackBatch{JobID: "a", Writer: "w", Seq: 1,
				Metrics: map[string][]atlas.MetricPoint{"loss": {{Step: -1, Value: 1.0}}}})
			assert.NoError(t, err)
			if ok {
				applied.Add(1)
			}
			_, err = s.TrackBatch(ctx, &store.TrackBatch{JobID: "a", Params: map[string]any{"lr": 0.1},
				Metrics: map[string][]atlas.MetricPoint{"auto": {{Step: -1, Value: 2.0}}}})
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	require.EqualValues(t, 1, applied.Load())
	loss, err := s.MetricSeries(ctx, "a", "loss")
	require.NoError(t, err)
	require.Len(t, loss, 1)
	auto, err := s.MetricSeries(ctx, "a", "auto")
	require.NoError(t, err)
	steps := make([]int64, len(auto))
	for i, p := range auto {
		steps[i] = p.Step
	}
	require.Equal(t, []int64{0, 1, 2, 3, 4, 5, 6, 7}, steps)
}

// Filters that SQLite evaluates loosely either work or are refused as invalid, never a
// database error.
func TestJobList_OddFilters(t *testing.T) {
	t.Parallel()
	s := open(t, freshSchema(t))
	ctx := t.Context()
	require.NoError(t, s.JobInsert(ctx, &atlas.Job{ID: "a_1", Project: "p", User: "Ünï", State: atlas.StateQueued, Mode: atlas.ModeScheduled}))
	min := 1.0
	_, err := s.TrackBatch(ctx, &store.TrackBatch{JobID: "a_1", Tags: map[string]string{"t": ""}})
	require.NoError(t, err)
	for _, tc := range []struct {
		f     store.Filter
		total int
	}{
		{store.Filter{Field: "created_at", Op: "range", Min: &min}, 1},
		{store.Filter{Field: "tag", Op: "exists"}, 1},
		{store.Filter{Field: "tag", Op: "in", Values: []string{"t"}}, 1},
		{store.Filter{Field: "id", Op: "contains", Values: []string{"A_"}}, 1},
		{store.Filter{Field: "id", Op: "contains", Values: []string{"a%"}}, 0},
		{store.Filter{Field: "user", Op: "contains", Values: []string{"Ün"}}, 1},
		{store.Filter{Field: "user", Op: "in", Values: []string{"Ünï", "x"}}, 1},
	} {
		_, total, err := s.JobList(ctx, &store.JobListParams{Filters: []store.Filter{tc.f}})
		require.NoError(t, err, "%+v", tc.f)
		require.Equal(t, tc.total, total, "%+v", tc.f)
	}
	// Text that PostgreSQL cannot hold, text matches on times, and ranges over text.
	for _, f := range []store.Filter{
		{Field: "state", Op: "range", Min: &min},
		{Field: "tag", Op: "range", Min: &min},
		{Field: "created_at", Op: "contains", Values: []string{"1"}},
		{Field: "user", Op: "in", Values: []string{"\xff"}},
		{Field: "id", Op: "contains", Values: []string{"\x00"}},
	} {
		_, _, err = s.JobList(ctx, &store.JobListParams{Filters: []store.Filter{f}})
		require.ErrorIs(t, err, atlas.ErrInvalid, "%+v", f)
	}
}

// BenchmarkJobListByMetric measures the first page of a 10,000-job project's table sorted by a
// metric, the query behind the GUI's jobs page.
func BenchmarkJobListByMetric(b *testing.B) {
	dbURL := freshSchema(b)
	s := open(b, dbURL)
	ctx := b.Context()
	const jobs = 10000
	var wg sync.WaitGroup
	var next atomic.Int32
	for range 8 {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < jobs; i = int(next.Add(1)) - 1 {
				id := fmt.Sprintf("job%05d", i)
				assert.NoError(b, s.JobInsert(ctx, &atlas.Job{ID: id, Project: "big", User: "u", State: atlas.StateQueued, Mode: atlas.ModeScheduled}))
				tb := &store.TrackBatch{JobID: id, Params: map[string]any{"lr": float64(i%100) / 100}}
				if i%10 != 0 { // one job in ten has no value
					tb.Metrics = map[string][]atlas.MetricPoint{"acc": {{Value: float64(i*7919%10007) / 10007}}}
				}
				_, err := s.TrackBatch(ctx, tb)
				assert.NoError(b, err)
			}
		})
	}
	wg.Wait()
	list := func(b *testing.B, desc bool) {
		for b.Loop() {
			page, total, err := s.JobList(ctx, &store.JobListParams{Project: "big", Sort: "metric:acc", Desc: desc, Limit: 50})
			if err != nil || total != jobs || len(page) != 50 {
				b.Fatalf("JobList: %d of %d, %v", len(page), total, err)
			}
		}
	}
	// Right after loading, before autovacuum's first ANALYZE (within a minute), the planner
	// thinks the tables empty and sorts every job with the metric.
	b.Run("unanalyzed", func(b *testing.B) { list(b, true) })
	analyze(b, dbURL)
	for _, desc := range []bool{true, false} {
		b.Run(fmt.Sprintf("desc=%v", desc), func(b *testing.B) { list(b, desc) })
	}
}

// analyze updates the planner's statistics, as autovacuum does after many changes.
func analyze(b *testing.B, dbURL string) {
	conn, err := pgx.Connect(b.Context(), dbURL)
	require.NoError(b, err)
	defer conn.Close(context.Background())
	_, err = conn.Exec(b.Context(), "ANALYZE")
	require.NoError(b, err)
}

// A job's deletion forgets the project's columns only it had, but not one that a batch of
// another job is adding at the same moment.
func TestJobDelete_KeepsColumnsOfConcurrentBatches(t *testing.T) {
	t.Parallel()
	s := open(t, freshSchema(t))
	ctx := t.Context()
	for i := range 30 {
		done, live := fmt.Sprintf("done%d", i), fmt.Sprintf("live%d", i)
		key := fmt.Sprintf("k%d", i)
		require.NoError(t, s.JobInsert(ctx, &atlas.Job{ID: done, Project: "p", State: atlas.StateCompleted, Mode: atlas.ModeExecution}))
		require.NoError(t, s.JobInsert(ctx, &atlas.Job{ID: live, Project: "p", State: atlas.StateRunning, Mode: atlas.ModeExecution}))
		_, err := s.TrackBatch(ctx, &store.TrackBatch{JobID: done, Params: map[string]any{key: 1.0},
			Metrics: map[string][]atlas.MetricPoint{key: {{Value: 1.0}}}})
		require.NoError(t, err)
		var wg sync.WaitGroup
		wg.Go(func() {
			_, _, err := s.JobDelete(ctx, done, []atlas.State{atlas.StateCompleted})
			assert.NoError(t, err)
		})
		wg.Go(func() {
			_, err := s.TrackBatch(ctx, &store.TrackBatch{JobID: live, Params: map[string]any{key: 2.0},
				Metrics: map[string][]atlas.MetricPoint{key: {{Value: 2.0}}}})
			assert.NoError(t, err)
		})
		wg.Wait()
		params, metrics, err := s.ProjectColumns(ctx, "p")
		require.NoError(t, err)
		require.Contains(t, params, key)
		require.Contains(t, metrics, key)
	}
}
