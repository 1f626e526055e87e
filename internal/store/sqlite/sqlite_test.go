package sqlite_test

import (
	"database/sql"
	"path/filepath"
	"testing"

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
