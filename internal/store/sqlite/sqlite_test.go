package sqlite_test

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/store"
	"github.com/atlasgo/atlas/internal/store/sqlite"
	"github.com/atlasgo/atlas/internal/store/storetest"
)

func TestStore(t *testing.T) {
	storetest.Exercise(t, func(t *testing.T) store.Store {
		s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "atlas.db"))
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestOpen_ReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "atlas.db")
	s, err := sqlite.Open(t.Context(), path)
	require.NoError(t, err)
	require.NoError(t, s.JobInsert(t.Context(), &atlas.Job{ID: "a", Project: "p", State: atlas.StateQueued, Mode: atlas.ModeScheduled}))
	require.NoError(t, s.Close())

	s, err = sqlite.Open(t.Context(), path) // migrations already applied: a no-op
	require.NoError(t, err)
	defer s.Close()
	j, err := s.JobGet(t.Context(), "a")
	require.NoError(t, err)
	require.Equal(t, atlas.StateQueued, j.State)
}

// A database from before the stopping state keeps the stops of jobs caught mid-stop by the
// upgrade: they are stopping, and the others are as they were.
func TestMigration_StopRequestedBecomesStopping(t *testing.T) {
	path := filepath.Join(t.TempDir(), "atlas.db")
	s, err := sqlite.Open(t.Context(), path)
	require.NoError(t, err)
	for _, id := range []string{"asked", "running", "done"} {
		require.NoError(t, s.JobInsert(t.Context(), &atlas.Job{ID: id, Project: "p", State: atlas.StateRunning, Mode: atlas.ModeScheduled}))
	}
	require.NoError(t, s.Close())

	// Back to the schema before migration 3, with the old flag set on one running job.
	s = reopenAfter(t, path,
		`ALTER TABLE jobs DROP COLUMN stopping_at`,
		`ALTER TABLE jobs ADD COLUMN stop_requested INTEGER NOT NULL DEFAULT 0`,
		`DELETE FROM schema_migrations WHERE version = 3`, // later migrations stay applied
		`UPDATE jobs SET stop_requested = 1 WHERE id IN ('asked', 'done')`,
		`UPDATE jobs SET state = 'completed' WHERE id = 'done'`)
	for id, want := range map[string]atlas.State{"asked": atlas.StateStopping, "running": atlas.StateRunning, "done": atlas.StateCompleted} {
		j, err := s.JobGet(t.Context(), id)
		require.NoError(t, err)
		require.Equal(t, want, j.State, id)
		require.Equal(t, want == atlas.StateStopping, j.StoppingAt != nil, id)
	}
}

// A database from before job names keeps its jobs, with no name (clients show their id).
func TestMigration_JobsFromBeforeNamesHaveNone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "atlas.db")
	s, err := sqlite.Open(t.Context(), path)
	require.NoError(t, err)
	require.NoError(t, s.JobInsert(t.Context(), &atlas.Job{ID: "old", Name: "x", Project: "p", State: atlas.StateQueued, Mode: atlas.ModeScheduled}))
	require.NoError(t, s.Close())

	s = reopenAfter(t, path, `ALTER TABLE jobs DROP COLUMN name`, `DELETE FROM schema_migrations WHERE version = 11`)
	j, err := s.JobGet(t.Context(), "old")
	require.NoError(t, err)
	require.Empty(t, j.Name)
	require.Equal(t, atlas.StateQueued, j.State)
}

// reopenAfter runs statements on the closed database at path (to take it back to an older
// schema) and opens it again, which migrates it; the store is closed at the test's end.
func reopenAfter(t *testing.T, path string, statements ...string) *sqlite.Store {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	for _, q := range statements {
		_, err := db.ExecContext(t.Context(), q)
		require.NoError(t, err, q)
	}
	require.NoError(t, db.Close())
	s, err := sqlite.Open(t.Context(), path)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

// job_counts (migration 15) counts a database's jobs when it is added, and then follows every
// insert, import, state change and delete, as the jobs themselves say.
func TestJobCountsFollowEveryChange(t *testing.T) {
	path := filepath.Join(t.TempDir(), "atlas.db")
	ctx := t.Context()
	s, err := sqlite.Open(ctx, path)
	require.NoError(t, err)
	for i, p := range []string{"a", "a", "b"} {
		require.NoError(t, s.JobInsert(ctx, &atlas.Job{ID: fmt.Sprint("old", i), Project: p, State: atlas.StateQueued, Mode: atlas.ModeScheduled}))
	}
	require.NoError(t, s.Close())
	s = reopenAfter(t, path, `DROP TABLE job_counts`, `DROP TRIGGER job_counts_insert`, `DROP TRIGGER job_counts_delete`,
		`DROP TRIGGER job_counts_update`, `DELETE FROM schema_migrations WHERE version = 15`)

	db, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	defer db.Close()
	rows := func(q string) []string {
		r, err := db.QueryContext(ctx, q)
		require.NoError(t, err)
		defer r.Close()
		var out []string
		for r.Next() {
			var p, st string
			var n int
			require.NoError(t, r.Scan(&p, &st, &n))
			out = append(out, fmt.Sprint(p, " ", st, " ", n))
		}
		require.NoError(t, r.Err())
		return out
	}
	check := func(after string, want int) {
		t.Helper()
		require.Equal(t, rows(`SELECT project, state, COUNT(*) FROM jobs GROUP BY 1, 2 ORDER BY 1, 2`),
			rows(`SELECT project, state, n FROM job_counts WHERE n != 0 ORDER BY 1, 2`), after)
		n, err := s.JobCount(ctx, &store.JobListParams{Project: "a"})
		require.NoError(t, err)
		require.Equal(t, want, n, "project a's jobs, %s", after)
	}
	check("the migration", 2)

	require.NoError(t, s.JobInsert(ctx, &atlas.Job{ID: "new", Project: "a", State: atlas.StateQueued, Mode: atlas.ModeScheduled}))
	check("an insert", 3)
	_, err = s.JobSetState(ctx, &store.JobSetStateParams{ID: "new", To: atlas.StateStarting})
	require.NoError(t, err)
	_, err = s.JobSetState(ctx, &store.JobSetStateParams{ID: "old0", To: atlas.StateStarting})
	require.NoError(t, err)
	check("state changes", 3)
	n, err := s.JobCount(ctx, &store.JobListParams{Project: "a", States: []atlas.State{atlas.StateStarting, atlas.StateCompleted}})
	require.NoError(t, err)
	require.Equal(t, 2, n, "project a's jobs in two states")
	_, _, err = s.JobDelete(ctx, "old2", []atlas.State{atlas.StateQueued})
	require.NoError(t, err)
	check("a delete", 3)
	_, err = s.JobsDeleteQueued(ctx, "", "")
	require.NoError(t, err)
	check("clearing the queue", 2)
	at := time.Now()
	code := 0
	require.NoError(t, s.JobsImport(ctx, []store.ImportedJob{{Job: &atlas.Job{ID: "imp", Project: "a", State: atlas.StateCompleted,
		Mode: atlas.ModeScheduled, ExitCode: &code, CreatedAt: at, FinishedAt: &at}}}))
	check("an import", 3)
	counts, err := s.JobCounts(ctx)
	require.NoError(t, err)
	require.Equal(t, map[atlas.State]int{atlas.StateStarting: 2, atlas.StateCompleted: 1}, counts, "states with no jobs left are not counted")
}
