package sqlutil_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/store"
	"github.com/atlasgo/atlas/internal/store/sqlutil"
)

func TestParseFilter(t *testing.T) {
	one, nan := 1.0, math.NaN()
	for _, tc := range []struct {
		f    store.Filter
		want sqlutil.Column
		err  string
	}{
		{f: store.Filter{Field: "job_id", Op: "contains", Values: []string{"x"}}, want: sqlutil.Column{Name: "id"}},
		{f: store.Filter{Field: "param:lr", Op: "range", Min: &one}, want: sqlutil.Column{Kind: sqlutil.Param, Key: "lr"}},
		{f: store.Filter{Field: "metric:acc", Op: "exists"}, want: sqlutil.Column{Kind: sqlutil.Metric, Key: "acc"}},
		{f: store.Filter{Field: "tag", Op: "in", Values: []string{"best"}}, want: sqlutil.Column{Kind: sqlutil.Tag}},
		{f: store.Filter{Field: "seq", Op: "in", Values: []string{"1"}}, err: `cannot filter by "seq"`},
		{f: store.Filter{Field: "user", Op: "in"}, err: "no values"},
		{f: store.Filter{Field: "user", Op: "contains", Values: []string{"a", "b"}}, err: "contains needs one value"},
		{f: store.Filter{Field: "duration", Op: "range"}, err: "range needs a min or a max"},
		{f: store.Filter{Field: "state", Op: "exists"}, err: "exists applies to"},
		{f: store.Filter{Field: "state", Op: "like", Values: []string{"x"}}, err: `unknown operator "like"`},
		{f: store.Filter{Field: "duration", Op: "range", Max: &one}, want: sqlutil.Column{Name: "duration"}},
		{f: store.Filter{Field: "user", Op: "range", Min: &one}, err: "range applies to times, durations, params and metrics"},
		{f: store.Filter{Field: "tag", Op: "range", Min: &one}, err: "range applies to"},
		{f: store.Filter{Field: "param:lr", Op: "range", Min: &nan}, err: "not a number"},
		{f: store.Filter{Field: "created_at", Op: "in", Values: []string{"1"}}, err: "in matches text; use range"},
		{f: store.Filter{Field: "duration", Op: "contains", Values: []string{"1"}}, err: "contains matches text; use range"},
		{f: store.Filter{Field: "user", Op: "in", Values: []string{"a", "b\xff"}}, err: `filter user: value "b\xff" is not valid UTF-8`},
		{f: store.Filter{Field: "tag", Op: "contains", Values: []string{"\x00"}}, err: "contains a NUL byte"},
		{f: store.Filter{Field: "metric:\xff", Op: "exists"}, err: "not valid UTF-8"},
	} {
		got, err := sqlutil.ParseFilter(tc.f)
		if tc.err != "" {
			require.ErrorIs(t, err, atlas.ErrInvalid)
			require.ErrorContains(t, err, tc.err)
			continue
		}
		require.NoError(t, err)
		require.Equal(t, tc.want, got.Column)
	}
}

func TestParseSort(t *testing.T) {
	c, err := sqlutil.ParseSort("")
	require.NoError(t, err)
	require.Equal(t, sqlutil.Column{Name: "created_at"}, c)
	c, err = sqlutil.ParseSort("duration")
	require.NoError(t, err)
	require.True(t, c.Nullable())
	_, err = sqlutil.ParseSort("mode")
	require.ErrorIs(t, err, atlas.ErrInvalid)
	_, err = sqlutil.ParseSort("param:a\x00")
	require.ErrorIs(t, err, atlas.ErrInvalid)
}

func TestContainsPattern(t *testing.T) {
	require.Equal(t, `%50\%\_a\\b%`, sqlutil.ContainsPattern(`50%_a\b`))
}

func TestStateChange(t *testing.T) {
	j := &atlas.Job{ID: "a", State: atlas.StateStarting}
	// Back to the queue with an executor given: each column is set once, the later value wins.
	sets, err := sqlutil.StateChange(j, &store.JobSetStateParams{To: atlas.StateQueued, Executor: "docker"}, 7)
	require.NoError(t, err)
	require.Equal(t, []sqlutil.Set{{"state", "queued"}, {"started_at", nil}, {"executor", "docker"}, {"gpu_ids", "[]"}, {"run_info", ""}}, sets)
	sets, err = sqlutil.StateChange(j, &store.JobSetStateParams{To: atlas.StateRunning}, 7)
	require.NoError(t, err)
	require.Equal(t, []sqlutil.Set{{"state", "running"}, {"started_at", int64(7)}}, sets)
	_, err = sqlutil.StateChange(j, &store.JobSetStateParams{From: []atlas.State{atlas.StateQueued}, To: atlas.StateRunning}, 7)
	require.ErrorIs(t, err, atlas.ErrConflict)
	_, err = sqlutil.StateChange(&atlas.Job{ID: "b", State: atlas.StateQueued}, &store.JobSetStateParams{To: atlas.StateCompleted}, 7)
	require.ErrorIs(t, err, atlas.ErrConflict, "a queued job never ran, so it cannot have completed")
}

func TestAppendMetric(t *testing.T) {
	lo, hi := 1.0, 5.0
	m := sqlutil.AppendMetric(3, &lo, &hi, []atlas.MetricPoint{{Step: -1, Value: 0.5, Time: 1}, {Step: 9, Value: "nan?", Time: 2}})
	require.Equal(t, sqlutil.MetricAppend{Steps: "[3,9]", Values: `[0.5,"nan?"]`, Times: "[1,2]", Count: 5,
		Last: `"nan?"`, LastNum: nil, LastStep: 9, Min: 0.5, Max: 5.0}, m)
	m = sqlutil.AppendMetric(0, nil, nil, []atlas.MetricPoint{{Value: "x"}})
	require.Nil(t, m.Min)
	require.Nil(t, m.Max)
}

// The chunk's columns are written by hand: byte for byte what encoding/json writes.
func TestAppendMetricWritesJSONAsEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		pts := make([]atlas.MetricPoint, 1+r.IntN(20))
		var steps []int64
		var vals []any
		var times []float64
		for i := range pts {
			var v any
			switch r.IntN(6) {
			case 0:
				v = r.NormFloat64() * math.Pow(10, float64(r.IntN(60)-30)) // tiny to huge, both signs
			case 1:
				v = float64(r.IntN(1000) - 500)
			case 2:
				v = []float64{0, math.Copysign(0, -1), 1e-6, 1e-7, 1e21, 1e20, math.MaxFloat64, math.SmallestNonzeroFloat64}[r.IntN(8)]
			case 3:
				v = fmt.Sprintf("s%d\"<%d>", i, r.IntN(9))
			case 4:
				v = r.IntN(2) == 0
			default:
				v = r.Float64()
			}
			pts[i] = atlas.MetricPoint{Step: int64(r.IntN(5)) - 1, Value: v, Time: 1.7e9 + r.Float64()*1e6}
			step := pts[i].Step
			if step < 0 {
				step = 7 + int64(i)
			}
			steps, vals, times = append(steps, step), append(vals, v), append(times, pts[i].Time)
		}
		m := sqlutil.AppendMetric(7, nil, nil, pts)
		require.Equal(t, sqlutil.JSON(steps), m.Steps)
		require.Equal(t, sqlutil.JSON(vals), m.Values)
		require.Equal(t, sqlutil.JSON(times), m.Times)
		require.Equal(t, sqlutil.JSON(vals[len(vals)-1]), m.Last)
		require.Equal(t, steps[len(steps)-1], m.LastStep)
	}
}

func TestValue(t *testing.T) {
	v, err := sqlutil.Value(1, true, "true")
	require.NoError(t, err)
	require.Equal(t, true, v, "booleans keep their JSON form")
	v, err = sqlutil.Value(0.5, true, "0.5")
	require.NoError(t, err)
	require.Equal(t, 0.5, v)
	v, err = sqlutil.Value(0, false, `"adam"`)
	require.NoError(t, err)
	require.Equal(t, "adam", v)
}

// PageByKey over runs of 3, 2 and 4 jobs gives the same jobs as slicing their concatenation.
func TestPageByKey(t *testing.T) {
	runs := map[sqlutil.KeyRun][]*atlas.Job{}
	var all []*atlas.Job
	for run, n := range []int{3, 2, 4} {
		for i := range n {
			j := &atlas.Job{ID: fmt.Sprintf("r%d-%d", run, i)}
			runs[sqlutil.KeyRun(run)] = append(runs[sqlutil.KeyRun(run)], j)
			all = append(all, j)
		}
	}
	counted := map[sqlutil.KeyRun]int{}
	count := func(r sqlutil.KeyRun) (int, error) { counted[r]++; return len(runs[r]), nil }
	read := func(r sqlutil.KeyRun, limit, offset int) ([]*atlas.Job, error) {
		js := runs[r][min(offset, len(runs[r])):]
		return js[:min(limit, len(js))], nil
	}
	for offset := 0; offset <= len(all); offset++ {
		for limit := 0; limit <= len(all)+1; limit++ {
			got, err := sqlutil.PageByKey(offset, limit, count, read)
			require.NoError(t, err)
			want := all[offset:min(offset+limit, len(all))]
			require.Equal(t, len(want), len(got), "offset %d limit %d", offset, limit)
			for i := range want {
				require.Same(t, want[i], got[i])
			}
		}
	}
	require.Zero(t, counted[sqlutil.MissingRun], "the last run is never counted")
}

func TestMigrations(t *testing.T) {
	fsys := fstest.MapFS{
		"m/0002_b.sql": {Data: []byte("B")},
		"m/0001_a.sql": {Data: []byte("A")},
	}
	list, err := sqlutil.Migrations(fsys, "m")
	require.NoError(t, err)
	require.Equal(t, []sqlutil.Migration{{1, "0001_a.sql", "A"}, {2, "0002_b.sql", "B"}}, list)
	_, err = sqlutil.Migrations(fstest.MapFS{"m/x_a.sql": {}}, "m")
	require.ErrorContains(t, err, "bad version")
}
