package server

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The installation id goes with the data folder: made once, then read back whatever the host
// is now called; a configured one wins.
func TestInstallationIsKeptInTheDataFolder(t *testing.T) {
	p := paths{home: t.TempDir()}
	first, err := installation("", p)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(first, "atlas-"), first)
	kept, err := os.ReadFile(p.installation())
	require.NoError(t, err)
	require.Equal(t, first+"\n", string(kept))

	// A folder moved with its server (another pod, another host) keeps its id.
	require.NoError(t, os.WriteFile(p.installation(), []byte("atlas-moved\n"), 0o644))
	again, err := installation("", p)
	require.NoError(t, err)
	require.Equal(t, "atlas-moved", again)

	configured, err := installation("team-a", p)
	require.NoError(t, err)
	require.Equal(t, "team-a", configured)
}
