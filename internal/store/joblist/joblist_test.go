package joblist_test

import (
	"context"
	"regexp"
	"slices"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/store"
	"github.com/atlasgo/atlas/internal/store/joblist"
)

// recorder is a DB that records the queries it is given; each count is n. What the queries
// find is the business of the store conformance suite (internal/store/storetest), which runs
// them on SQLite and PostgreSQL.
type recorder struct {
	n       int
	queries []joblist.Query
}

func (*recorder) Placeholder(n int) string { return "$" + strconv.Itoa(n) }

func (*recorder) In(a *joblist.Args, expr string, values []string) string {
	return expr + " = ANY(" + a.Add(values) + ")"
}

func (*recorder) ILike(expr, pattern string) string { return expr + " ILIKE " + pattern }

func (r *recorder) Jobs(_ context.Context, q joblist.Query) ([]*atlas.Job, error) {
	r.queries = append(r.queries, q)
	return nil, nil
}

func (r *recorder) Rows(_ context.Context, q joblist.Query, dest []any, each func() error) error {
	r.queries = append(r.queries, q)
	if n, ok := dest[0].(*int); ok && len(dest) == 1 {
		*n = r.n
		return each()
	}
	return nil
}

var placeholder = regexp.MustCompile(`\$(\d+)`)

// Every argument of every query is used, and every placeholder has its argument.
func TestQueriesUseEachArgument(t *testing.T) {
	one := 1.0
	filters := []store.Filter{
		{Field: "user", Op: "in", Values: []string{"a", "b"}},
		{Field: "id", Op: "contains", Values: []string{"x"}},
		{Field: "duration", Op: "range", Min: &one, Max: &one},
		{Field: "param:lr", Op: "in", Values: []string{"1"}},
		{Field: "metric:acc", Op: "range", Max: &one},
		{Field: "tag", Op: "exists"},
	}
	for _, sort := range []string{"", "duration", "user", "param:lr", "metric:acc"} {
		for _, project := range []string{"", "p"} {
			r := &recorder{n: 3}
			p := &store.JobListParams{Project: project, States: []atlas.State{atlas.StateQueued}, Filters: filters,
				Sort: sort, Limit: 2, Offset: 4}
			_, total, err := joblist.List(t.Context(), r, p)
			require.NoError(t, err)
			require.Equal(t, 3, total)
			_, err = joblist.Values(t.Context(), r, p, []string{"param:lr", "metric:acc"})
			require.NoError(t, err)
			require.NotEmpty(t, r.queries)
			for _, q := range r.queries {
				var used []int
				for _, m := range placeholder.FindAllStringSubmatch(q.SQL, -1) {
					n, _ := strconv.Atoi(m[1])
					used = append(used, n)
				}
				slices.Sort(used)
				used = slices.Compact(used)
				want := make([]int, len(q.Args))
				for i := range want {
					want[i] = i + 1
				}
				require.Equal(t, want, used, "sort %q project %q: %s", sort, project, q.SQL)
			}
		}
	}
}

// The count and the page of one listing measure running jobs' durations to the same instant.
func TestListingHasOneNow(t *testing.T) {
	one := 1.0
	r := &recorder{n: 10}
	_, _, err := joblist.List(t.Context(), r, &store.JobListParams{Sort: "duration",
		Filters: []store.Filter{{Field: "duration", Op: "range", Min: &one}}})
	require.NoError(t, err)
	require.Len(t, r.queries, 2)
	var nows []any
	for _, q := range r.queries {
		for _, a := range q.Args {
			if n, ok := a.(int64); ok {
				nows = append(nows, n)
			}
		}
	}
	require.Len(t, nows, 3, "the filter's in both queries, the sort's in the page")
	require.Equal(t, nows[0], nows[1])
	require.Equal(t, nows[0], nows[2])
}

func TestTooManyFilters(t *testing.T) {
	fs := make([]store.Filter, joblist.MaxFilters+1)
	for i := range fs {
		fs[i] = store.Filter{Field: "tag", Op: "exists"}
	}
	r := &recorder{}
	_, _, err := joblist.List(t.Context(), r, &store.JobListParams{Filters: fs})
	require.ErrorIs(t, err, atlas.ErrInvalid)
	require.ErrorContains(t, err, "at most 100 filters")
	require.Empty(t, r.queries)
	_, _, err = joblist.List(t.Context(), r, &store.JobListParams{Filters: fs[:joblist.MaxFilters]})
	require.NoError(t, err)
}
