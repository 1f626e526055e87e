package sqlite_test

import (
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
