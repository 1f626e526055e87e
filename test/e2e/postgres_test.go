package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// postgresDatabase returns the URL of a fresh, empty PostgreSQL database for one test server,
// dropped when the test ends.
func postgresDatabase(t *testing.T) string {
	t.Helper()
	base := os.Getenv("ATLAS_TEST_POSTGRES_URL")
	if base == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("ATLAS_TEST_POSTGRES_URL is not set (CI=true): run the tests under scripts/postgres-test.sh")
		}
		t.Skip("no PostgreSQL server: run under scripts/postgres-test.sh")
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "atlas_e2e_" + hex.EncodeToString(b)
	conn, err := pgx.Connect(t.Context(), base)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	_, err = conn.Exec(t.Context(), "CREATE DATABASE "+name)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx := context.Background()
		if c, err := pgx.Connect(ctx, base); err == nil {
			_, _ = c.Exec(ctx, "DROP DATABASE "+name+" WITH (FORCE)")
			c.Close(ctx)
		}
	})
	u, err := url.Parse(base)
	require.NoError(t, err)
	u.Path = "/" + name
	return u.String()
}

// The seed's walkthrough with the server's database on PostgreSQL, across a restart.
func TestServerOnPostgreSQL(t *testing.T) {
	requirePython(t)
	t.Parallel()
	db := postgresDatabase(t)
	home := newHome(t)
	require.NoError(t, os.MkdirAll(filepath.Join(home, "config"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(home, "config", "server.config.yaml"), []byte("database: "+db+"\n"), 0o644))
	s := startServer(t, home)
	dir := t.TempDir()
	require.Equal(t, 0, cli(t, s.Home, dir, "init", "my_project").Code)
	proj := filepath.Join(dir, "my_project")
	res := cli(t, s.Home, proj, "submit", "scheduler", ".", "main.py")
	require.Equal(t, 0, res.Code, res.String())
	id := jobID(t, res.Stderr)
	j := s.job(t, id)
	require.Equal(t, "completed", j.State)
	require.Equal(t, 0.9, j.Metric("accuracy"))
	require.Len(t, j.Artifacts, 1)
	_, err := os.Stat(filepath.Join(home, "atlas.db"))
	require.True(t, os.IsNotExist(err), "nothing was stored in SQLite")

	s = restart(t, s)
	require.Equal(t, "completed", s.job(t, id).State, "the job is kept across a restart")
	require.Len(t, s.jobs(t, "my_project"), 1)
}
