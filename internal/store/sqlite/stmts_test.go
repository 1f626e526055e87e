package sqlite

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// Queries whose text varies with the request (IN lists of every length) stay out of the
// statement cache, which keeps its room for the statements every job runs.
func TestStatementCacheKeepsOutBuiltQueries(t *testing.T) {
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "atlas.db"))
	require.NoError(t, err)
	defer s.Close()
	size := func() int {
		s.r.stmts.mu.Lock()
		defer s.r.stmts.mu.Unlock()
		return len(s.r.stmts.m)
	}
	var ids []string
	_, err = s.Params(t.Context(), []string{"warm"}) // whatever the first call caches
	require.NoError(t, err)
	before := size()
	for i := range 20 {
		ids = append(ids, fmt.Sprint("job", i))
		_, err := s.Params(t.Context(), ids)
		require.NoError(t, err)
	}
	require.Equal(t, before, size(), "IN lists of 20 lengths added statements to the cache")
}
