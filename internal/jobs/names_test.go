package jobs

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/store"
	"github.com/atlasgo/atlas/sdk"
)

func TestJobsAreNamedByTheirSubmitterOrGivenAName(t *testing.T) {
	t.Parallel()
	seeded := func(c *Config) { c.NameSource = rand.NewPCG(1, 2) }
	e, twin := newEnv(t, seeded), newEnv(t, seeded)
	ctx := t.Context()

	named, err := e.svc.Submit(ctx, local, &sdk.JobSpec{Command: []string{"main.py"}, Name: "baseline: lr=0.1 ✓"})
	require.NoError(t, err)
	require.Equal(t, "baseline: lr=0.1 ✓", named.Job.Name)
	stored, err := e.store.JobGet(ctx, named.Job.ID)
	require.NoError(t, err)
	require.Equal(t, "baseline: lr=0.1 ✓", stored.Name)

	var made, again []string
	for range 5 {
		a, err := e.svc.Submit(ctx, local, &sdk.JobSpec{Command: []string{"main.py"}})
		require.NoError(t, err)
		b, err := twin.svc.Submit(ctx, local, &sdk.JobSpec{Command: []string{"main.py"}})
		require.NoError(t, err)
		made, again = append(made, a.Job.Name), append(again, b.Job.Name)
	}
	require.Equal(t, made, again, "names are drawn from the source the service is given")
	for _, n := range made {
		adj, noun, ok := strings.Cut(n, "-")
		require.True(t, ok, n)
		require.Contains(t, nameAdjectives, adj)
		require.Contains(t, nameNouns, noun)
	}
	require.Greater(t, len(distinct(made)), 1, "each job gets a name of its own: %v", made)
}

func TestABadNameIsRefusedAndNothingStored(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	for name, msg := range map[string]string{
		strings.Repeat("é", 101): "101 characters long: at most 100",
		"two\nlines":             "newline",
		"tab\there":              "newline, tab",
		" padded":                "spaces",
		"bad\xffutf8":            "UTF-8",
	} {
		_, err := e.svc.Submit(t.Context(), local, &sdk.JobSpec{Command: []string{"main.py"}, Name: name})
		require.ErrorIs(t, err, atlas.ErrInvalid, "%q", name)
		require.ErrorContains(t, err, msg, "%q", name)
		require.NotContains(t, err.Error(), "\n", "one line")
	}
	_, err := e.svc.Submit(t.Context(), local, &sdk.JobSpec{Command: []string{"main.py"}, Name: strings.Repeat("é", 100)})
	require.NoError(t, err, "100 characters is fine, however many bytes")
	_, total, err := e.store.JobList(t.Context(), &store.JobListParams{})
	require.NoError(t, err)
	require.Equal(t, 1, total)
}

func distinct(s []string) map[string]bool {
	out := map[string]bool{}
	for _, v := range s {
		out[v] = true
	}
	return out
}
