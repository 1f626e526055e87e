package storetest

import (
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/store"
)

// listEpoch is the time the listing fixture's jobs count from.
var listEpoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// at is listEpoch plus s seconds, in unix seconds: what time filters compare.
func at(s float64) float64 { return float64(listEpoch.Unix()) + s }

// listJob is a job of the listing fixture. Times are seconds after listEpoch; a negative one is
// not set.
type listJob struct {
	id, project, user          string
	state                      atlas.State
	mode                       atlas.Mode
	priority                   int
	created, started, finished float64
	params                     map[string]any
	metrics                    map[string][]any // the points of each metric: the last one counts
	tags                       []string
}

// listFixture is what the listing cases run on: project p (jobs a to h, submitted in that order)
// and project q (q1, submitted last). The columns hold numbers, strings, booleans (numbers 1
// and 0 when sorted or ranged), mixes of them, and gaps; user names and values have upper case,
// non-ASCII letters and LIKE's wildcards.
var listFixture = []listJob{
	{id: "a", user: "alice", state: atlas.StateCompleted, created: 10, started: 11, finished: 21,
		params:  map[string]any{"lr": 0.1, "mix": 3.0, "opt": "adam"},
		metrics: map[string][]any{"acc": {0.2, 0.5}, "mix": {1.0, "high"}},
		tags:    []string{"best", "50%_off"}},
	{id: "b", user: "bob", state: atlas.StateFailed, priority: 5, created: 20, started: 20, finished: 25,
		params:  map[string]any{"lr": 0.01, "mix": "b", "opt": "sgd"},
		metrics: map[string][]any{"acc": {0.9}, "mix": {"low", 2.0}}},
	{id: "c", user: "Carol", state: atlas.StateQueued, created: 20, started: -1, finished: -1,
		params: map[string]any{"lr": 0.1, "mix": true, "opt": "Adam"},
		tags:   []string{"best"}},
	{id: "d", user: "alice", state: atlas.StateRunning, priority: 5, created: 30, started: 31, finished: -1,
		params:  map[string]any{"lr": -1.0, "mix": "a", "opt": "sgd"},
		metrics: map[string][]any{"acc": {0.5}, "mix": {"high"}},
		tags:    []string{"wip"}},
	{id: "e", user: "zoë", state: atlas.StateStopped, created: 5, started: 6, finished: 106,
		params:  map[string]any{"mix": 2.5, "opt": "ümlaut"},
		metrics: map[string][]any{"acc": {-3.0}, "mix": {10.0}},
		tags:    []string{"x50%_off"}},
	{id: "f", user: "bob", state: atlas.StateCompleted, created: 40, started: 41, finished: 41,
		metrics: map[string][]any{"acc": {1e6}}},
	{id: "g", user: "alice", state: atlas.StateQueued, priority: -1, created: 50, started: -1, finished: -1,
		params:  map[string]any{"lr": 0.5, "mix": "a", "opt": "x%y"},
		metrics: map[string][]any{"mix": {"low"}}},
	{id: "h", user: "al_ice", state: atlas.StateStarting, mode: atlas.ModeExecution, created: 50, started: -1, finished: -1,
		params: map[string]any{"lr": 2.0, "opt": "x_y"}},
	{id: "q1", project: "q", user: "alice", state: atlas.StateQueued, created: 60, started: -1, finished: -1,
		params:  map[string]any{"lr": 0.3},
		metrics: map[string][]any{"acc": {0.7}}},
}

// newListStore returns a store holding listFixture.
func newListStore(t *testing.T, newStore func(t *testing.T) store.Store) store.Store {
	s := newStore(t)
	ctx := t.Context()
	for _, f := range listFixture {
		j := newJob(f.id, cmp(f.project, "p"))
		j.User, j.Priority, j.Mode = f.user, f.priority, cmp(f.mode, atlas.ModeScheduled)
		j.CreatedAt = listEpoch.Add(time.Duration(f.created * float64(time.Second)))
		if f.started >= 0 {
			started := listEpoch.Add(time.Duration(f.started * float64(time.Second)))
			j.StartedAt = &started
		}
		j.State = f.state
		if f.state.Finished() {
			j.State = atlas.StateRunning
		}
		require.NoError(t, s.JobInsert(ctx, j))
		if f.state.Finished() {
			_, err := s.JobSetState(ctx, &store.JobSetStateParams{ID: f.id, To: f.state,
				At: listEpoch.Add(time.Duration(f.finished * float64(time.Second)))})
			require.NoError(t, err)
		}
		b := &store.TrackBatch{JobID: f.id, Params: f.params, Metrics: map[string][]atlas.MetricPoint{}, Tags: map[string]string{}}
		for k, vs := range f.metrics {
			for _, v := range vs {
				b.Metrics[k] = append(b.Metrics[k], atlas.MetricPoint{Step: -1, Value: v})
			}
		}
		for _, tag := range f.tags {
			b.Tags[tag] = ""
		}
		_, err := s.TrackBatch(ctx, b)
		require.NoError(t, err)
	}
	return s
}

func cmp[T comparable](v, otherwise T) T {
	var zero T
	if v == zero {
		return otherwise
	}
	return v
}

// exerciseListing runs the cases of JobList and JobValues: every sort column in both
// directions, paged across the runs in which missing values and values of other kinds come,
// every filter field with every operator, and the requests both backends must refuse alike.
func exerciseListing(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Run("JobListSorts", func(t *testing.T) {
		t.Parallel()
		s := newListStore(t, newStore)
		ctx := t.Context()
		// Each case lists the ascending order in runs: numbers, other values (by their JSON
		// text), missing values. Descending reverses each run, so missing values stay last and
		// ties (broken by submit order) turn round too.
		for _, tc := range []struct {
			sort    string
			project string // "" is p; "*" is every project
			runs    [][]string
		}{
			{sort: "", runs: [][]string{{"e", "a", "b", "c", "d", "f", "g", "h"}}}, // created_at
			{sort: "created_at", runs: [][]string{{"e", "a", "b", "c", "d", "f", "g", "h"}}},
			{sort: "started_at", runs: [][]string{{"e", "a", "b", "d", "f"}, {"c", "g", "h"}}},
			{sort: "finished_at", runs: [][]string{{"a", "b", "f", "e"}, {"c", "d", "g", "h"}}},
			// d is still running: its duration runs to now.
			{sort: "duration", runs: [][]string{{"f", "b", "a", "e", "d"}, {"c", "g", "h"}}},
			// Text sorts by bytes: upper case first, then "_", then lower case and non-ASCII.
			{sort: "state", runs: [][]string{{"a", "f", "b", "c", "g", "d", "h", "e"}}},
			{sort: "user", runs: [][]string{{"c", "h", "a", "d", "g", "b", "f", "e"}}},
			{sort: "id", runs: [][]string{{"a", "b", "c", "d", "e", "f", "g", "h"}}},
			{sort: "job_id", runs: [][]string{{"a", "b", "c", "d", "e", "f", "g", "h"}}},
			{sort: "project", project: "*", runs: [][]string{{"a", "b", "c", "d", "e", "f", "g", "h", "q1"}}},
			{sort: "seq", runs: [][]string{{"a", "b", "c", "d", "e", "f", "g", "h"}}},
			{sort: "priority", runs: [][]string{{"g", "a", "c", "e", "f", "h", "b", "d"}}},
			{sort: "param:lr", runs: [][]string{{"d", "b", "a", "c", "g", "h"}, {"e", "f"}}},
			{sort: "param:lr", project: "*", runs: [][]string{{"d", "b", "a", "c", "q1", "g", "h"}, {"e", "f"}}},
			// true is the number 1.
			{sort: "param:mix", runs: [][]string{{"c", "e", "a"}, {"d", "g", "b"}, {"f", "h"}}},
			{sort: "param:opt", runs: [][]string{{"c", "a", "b", "d", "g", "h", "e"}, {"f"}}},
			{sort: "param:none", runs: [][]string{{"a", "b", "c", "d", "e", "f", "g", "h"}}},
			{sort: "metric:acc", runs: [][]string{{"e", "a", "d", "b", "f"}, {"c", "g", "h"}}},
			{sort: "metric:acc", project: "*", runs: [][]string{{"e", "a", "d", "q1", "b", "f"}, {"c", "g", "h"}}},
			{sort: "metric:mix", runs: [][]string{{"b", "e"}, {"a", "d", "g"}, {"c", "f", "h"}}},
		} {
			for _, desc := range []bool{false, true} {
				name := fmt.Sprintf("sort %q project %q desc=%v", tc.sort, tc.project, desc)
				var want []string
				for _, run := range tc.runs {
					if desc {
						run = slices.Clone(run)
						slices.Reverse(run)
					}
					want = append(want, run...)
				}
				project := cmp(tc.project, "p")
				if project == "*" {
					project = ""
				}
				p := store.JobListParams{Project: project, Sort: tc.sort, Desc: desc}
				all, total, err := s.JobList(ctx, &p)
				require.NoError(t, err, name)
				require.Equal(t, want, ids(all), name)
				require.Equal(t, len(want), total, name)
				// Every window, so that pages start and end on each side of every run boundary.
				for _, limit := range []int{1, 2, 3, 5} {
					for off := 0; off <= len(want); off++ {
						p.Limit, p.Offset = limit, off
						page, total, err := s.JobList(ctx, &p)
						require.NoError(t, err, name)
						require.Equal(t, len(want), total, name)
						require.Equal(t, want[off:min(off+limit, len(want))], nonNil(ids(page)), "%s limit %d offset %d", name, limit, off)
					}
				}
				p.Limit, p.Offset = 0, len(want)+3
				page, _, err := s.JobList(ctx, &p)
				require.NoError(t, err, name)
				require.Empty(t, page, name)
			}
		}
	})

	t.Run("JobListFilters", func(t *testing.T) {
		t.Parallel()
		s := newListStore(t, newStore)
		ctx := t.Context()
		num := func(f float64) *float64 { return &f }
		in := func(field string, vs ...string) store.Filter { return store.Filter{Field: field, Op: "in", Values: vs} }
		contains := func(field, v string) store.Filter {
			return store.Filter{Field: field, Op: "contains", Values: []string{v}}
		}
		between := func(field string, min, max *float64) store.Filter {
			return store.Filter{Field: field, Op: "range", Min: min, Max: max}
		}
		exists := func(field string) store.Filter { return store.Filter{Field: field, Op: "exists"} }
		// Many values: more than SQLite's limit of arguments to one statement (32,766).
		many := func(field string, vs ...string) store.Filter {
			for i := range 40000 {
				vs = append(vs, fmt.Sprintf("v%05d", i))
			}
			return in(field, vs...)
		}
		for _, tc := range []struct {
			name    string
			project string // "" is p; "*" is every project
			states  []atlas.State
			filters []store.Filter
			want    []string // by id
		}{
			{name: "none", want: []string{"a", "b", "c", "d", "e", "f", "g", "h"}},
			{name: "states", states: []atlas.State{atlas.StateQueued, atlas.StateRunning}, want: []string{"c", "d", "g"}},

			{name: "state in", filters: []store.Filter{in("state", "queued")}, want: []string{"c", "g"}},
			{name: "state in two", filters: []store.Filter{in("state", "queued", "running")}, want: []string{"c", "d", "g"}},
			{name: "state in unknown", filters: []store.Filter{in("state", "bogus")}},
			{name: "state contains", filters: []store.Filter{contains("state", "ED")}, want: []string{"a", "b", "c", "e", "f", "g"}},
			{name: "user in", filters: []store.Filter{in("user", "alice")}, want: []string{"a", "d", "g"}},
			{name: "user in is exact", filters: []store.Filter{in("user", "Alice", "ali")}},
			{name: "user in unicode", filters: []store.Filter{in("user", "alice", "zoë")}, want: []string{"a", "d", "e", "g"}},
			{name: "user in many", filters: []store.Filter{many("user", "bob")}, want: []string{"b", "f"}},
			{name: "user contains folds ASCII case", filters: []store.Filter{contains("user", "ALI")}, want: []string{"a", "d", "g"}},
			{name: "user contains _ literally", filters: []store.Filter{contains("user", "_")}, want: []string{"h"}},
			{name: "user contains l_i", filters: []store.Filter{contains("user", "l_i")}, want: []string{"h"}},
			{name: "user contains % literally", filters: []store.Filter{contains("user", "%")}},
			{name: "user contains unicode", filters: []store.Filter{contains("user", "ë")}, want: []string{"e"}},
			// Both backends fold the case of ASCII letters only.
			{name: "user contains unicode other case", filters: []store.Filter{contains("user", "Ë")}},
			{name: "id in", filters: []store.Filter{in("id", "a", "c", "zz")}, want: []string{"a", "c"}},
			{name: "job_id contains", filters: []store.Filter{contains("job_id", "Q")}, project: "*", want: []string{"q1"}},
			{name: "project in", filters: []store.Filter{in("project", "q")}, project: "*", want: []string{"q1"}},
			{name: "project contains", filters: []store.Filter{contains("project", "P")}, project: "*", want: []string{"a", "b", "c", "d", "e", "f", "g", "h"}},
			{name: "mode in", filters: []store.Filter{in("mode", "execution")}, want: []string{"h"}},
			{name: "mode contains", filters: []store.Filter{contains("mode", "sched")}, want: []string{"a", "b", "c", "d", "e", "f", "g"}},

			// Times compare in unix seconds, durations in seconds; jobs without the time never match.
			{name: "created_at range", filters: []store.Filter{between("created_at", num(at(20)), num(at(40)))}, want: []string{"b", "c", "d", "f"}},
			{name: "created_at min", filters: []store.Filter{between("created_at", num(at(20.5)), nil)}, want: []string{"d", "f", "g", "h"}},
			{name: "started_at max", filters: []store.Filter{between("started_at", nil, num(at(11)))}, want: []string{"a", "e"}},
			{name: "finished_at min", filters: []store.Filter{between("finished_at", num(at(25)), nil)}, want: []string{"b", "e", "f"}},
			{name: "duration range", filters: []store.Filter{between("duration", num(5), num(10))}, want: []string{"a", "b"}},
			{name: "duration min counts running jobs", filters: []store.Filter{between("duration", num(50), nil)}, want: []string{"d", "e"}},
			{name: "duration max", filters: []store.Filter{between("duration", nil, num(0))}, want: []string{"f"}},
			{name: "duration infinite", filters: []store.Filter{between("duration", num(math.Inf(-1)), num(math.Inf(1)))}, want: []string{"a", "b", "d", "e", "f"}},
			{name: "range min above max", filters: []store.Filter{between("duration", num(10), num(5))}},

			// Param values match by their JSON text: a number as written, a string without quotes.
			{name: "param in number", filters: []store.Filter{in("param:lr", "0.1")}, want: []string{"a", "c"}},
			{name: "param in numbers", filters: []store.Filter{in("param:lr", "2", "-1")}, want: []string{"d", "h"}},
			{name: "param in string", filters: []store.Filter{in("param:opt", "sgd")}, want: []string{"b", "d"}},
			{name: "param in wildcards", filters: []store.Filter{in("param:opt", "Adam", "x%y")}, want: []string{"c", "g"}},
			{name: "param in mixed", filters: []store.Filter{in("param:mix", "a", "3")}, want: []string{"a", "d", "g"}},
			{name: "param in boolean", filters: []store.Filter{in("param:mix", "true")}, want: []string{"c"}},
			{name: "param in many", filters: []store.Filter{many("param:opt", "sgd")}, want: []string{"b", "d"}},
			{name: "param contains", filters: []store.Filter{contains("param:opt", "AD")}, want: []string{"a", "c"}},
			{name: "param contains number", filters: []store.Filter{contains("param:lr", "0.0")}, want: []string{"b"}},
			{name: "param contains %", filters: []store.Filter{contains("param:opt", "%")}, want: []string{"g"}},
			{name: "param contains _", filters: []store.Filter{contains("param:opt", "_")}, want: []string{"h"}},
			{name: "param contains unicode", filters: []store.Filter{contains("param:opt", "üm")}, want: []string{"e"}},
			{name: "param contains unicode other case", filters: []store.Filter{contains("param:opt", "ÜM")}},
			{name: "param range", filters: []store.Filter{between("param:lr", num(0.1), nil)}, want: []string{"a", "c", "g", "h"}},
			{name: "param range max", filters: []store.Filter{between("param:lr", nil, num(0))}, want: []string{"d"}},
			{name: "param range mixed", filters: []store.Filter{between("param:mix", num(1), num(3))}, want: []string{"a", "c", "e"}},
			{name: "param range strings", filters: []store.Filter{between("param:opt", num(-1e300), nil)}},
			{name: "param exists", filters: []store.Filter{exists("param:lr")}, want: []string{"a", "b", "c", "d", "g", "h"}},
			{name: "param exists missing key", filters: []store.Filter{exists("param:none")}},

			// Metrics filter on their last value.
			{name: "metric range", filters: []store.Filter{between("metric:acc", num(0.5), num(0.9))}, want: []string{"a", "b", "d"}},
			{name: "metric range last value", filters: []store.Filter{between("metric:mix", num(0), num(5))}, want: []string{"b"}},
			{name: "metric in", filters: []store.Filter{in("metric:mix", "high")}, want: []string{"a", "d"}},
			{name: "metric in number", filters: []store.Filter{in("metric:acc", "1000000", "0.5")}, want: []string{"a", "d", "f"}},
			{name: "metric contains", filters: []store.Filter{contains("metric:mix", "O")}, want: []string{"g"}},
			{name: "metric exists", filters: []store.Filter{exists("metric:acc")}, want: []string{"a", "b", "d", "e", "f"}},

			{name: "tag in", filters: []store.Filter{in("tag", "best")}, want: []string{"a", "c"}},
			{name: "tag in two", filters: []store.Filter{in("tag", "best", "wip")}, want: []string{"a", "c", "d"}},
			{name: "tag contains", filters: []store.Filter{contains("tag", "BE")}, want: []string{"a", "c"}},
			{name: "tag contains % literally", filters: []store.Filter{contains("tag", "%")}, want: []string{"a", "e"}},
			{name: "tag contains _ literally", filters: []store.Filter{contains("tag", "_")}, want: []string{"a", "e"}},
			{name: "tag contains folds ASCII case", filters: []store.Filter{contains("tag", "X5")}, want: []string{"e"}},
			{name: "tag exists", filters: []store.Filter{exists("tag")}, want: []string{"a", "c", "d", "e"}},

			{name: "filters and", filters: []store.Filter{in("user", "alice"), between("param:lr", num(0.2), nil)}, want: []string{"g"}},
			{name: "filters on one field", filters: []store.Filter{in("user", "alice", "bob"), in("user", "bob", "zoë")}, want: []string{"b", "f"}},
			{name: "states and filters", states: []atlas.State{atlas.StateQueued}, filters: []store.Filter{in("user", "alice")}, want: []string{"g"}},
			{name: "every project", project: "*", filters: []store.Filter{in("user", "alice")}, want: []string{"a", "d", "g", "q1"}},
			{name: "every project by metric", project: "*", filters: []store.Filter{between("metric:acc", num(0.6), num(0.8))}, want: []string{"q1"}},
		} {
			project := cmp(tc.project, "p")
			if project == "*" {
				project = ""
			}
			// Each filtered list is checked whole, sorted by a job column and by a param
			// (whose pages are read in runs), and as value columns.
			for _, sortBy := range []string{"id", "param:mix"} {
				p := &store.JobListParams{Project: project, States: tc.states, Filters: tc.filters, Sort: sortBy}
				jobs, total, err := s.JobList(ctx, p)
				require.NoError(t, err, tc.name)
				got := ids(jobs)
				slices.Sort(got)
				require.Equal(t, nonNil(tc.want), nonNil(got), "%s (sort %s)", tc.name, sortBy)
				require.Equal(t, len(tc.want), total, tc.name)
				n, err := s.JobCount(ctx, p)
				require.NoError(t, err, tc.name)
				require.Equal(t, len(tc.want), n, "%s: count", tc.name)
				// Uncounted, the same page.
				p.Limit, p.SkipTotal = 100, true
				jobs, total, err = s.JobList(ctx, p)
				require.NoError(t, err, tc.name)
				require.Equal(t, -1, total, tc.name)
				got2 := ids(jobs)
				slices.Sort(got2)
				require.Equal(t, nonNil(got), nonNil(got2), "%s (sort %s, uncounted)", tc.name, sortBy)
			}
			vals, err := s.JobValues(ctx, &store.JobListParams{Project: project, States: tc.states, Filters: tc.filters}, []string{"param:lr"})
			require.NoError(t, err, tc.name)
			got := slices.Clone(vals.IDs)
			slices.Sort(got)
			require.Equal(t, nonNil(tc.want), nonNil(got), "%s: values", tc.name)
		}
	})

	t.Run("JobListRefusesAlike", func(t *testing.T) {
		t.Parallel()
		s := newListStore(t, newStore)
		ctx := t.Context()
		one, nan := 1.0, math.NaN()
		tooMany := make([]store.Filter, 101)
		for i := range tooMany {
			tooMany[i] = store.Filter{Field: "user", Op: "in", Values: []string{"alice"}}
		}
		for _, tc := range []struct {
			name string
			p    store.JobListParams
			err  string // part of the message
		}{
			{name: "sort unknown", p: store.JobListParams{Sort: "nonsense"}, err: `cannot sort by "nonsense"`},
			{name: "sort mode", p: store.JobListParams{Sort: "mode"}, err: `cannot sort by "mode"`},
			{name: "sort tag", p: store.JobListParams{Sort: "tag"}, err: `cannot sort by "tag"`},
			{name: "negative offset", p: store.JobListParams{Offset: -1}, err: "offset"},
			{name: "field unknown", p: filtered(store.Filter{Field: "nonsense", Op: "in", Values: []string{"x"}}), err: `cannot filter by "nonsense"`},
			{name: "field seq", p: filtered(store.Filter{Field: "seq", Op: "in", Values: []string{"1"}}), err: `cannot filter by "seq"`},
			{name: "op unknown", p: filtered(store.Filter{Field: "user", Op: "like", Values: []string{"x"}}), err: `unknown operator "like"`},
			{name: "in without values", p: filtered(store.Filter{Field: "user", Op: "in"}), err: "no values"},
			{name: "contains two values", p: filtered(store.Filter{Field: "user", Op: "contains", Values: []string{"a", "b"}}), err: "contains needs one value"},
			{name: "range without bounds", p: filtered(store.Filter{Field: "param:lr", Op: "range"}), err: "range needs a min or a max"},
			{name: "range NaN", p: filtered(store.Filter{Field: "param:lr", Op: "range", Min: &nan}), err: "not a number"},
			{name: "exists on a job column", p: filtered(store.Filter{Field: "state", Op: "exists"}), err: "exists applies to"},
			// Ranges compare numbers: text columns and tags have none.
			{name: "range on user", p: filtered(store.Filter{Field: "user", Op: "range", Min: &one}), err: "range applies to"},
			{name: "range on state", p: filtered(store.Filter{Field: "state", Op: "range", Max: &one}), err: "range applies to"},
			{name: "range on id", p: filtered(store.Filter{Field: "id", Op: "range", Min: &one}), err: "range applies to"},
			{name: "range on project", p: filtered(store.Filter{Field: "project", Op: "range", Min: &one}), err: "range applies to"},
			{name: "range on mode", p: filtered(store.Filter{Field: "mode", Op: "range", Min: &one}), err: "range applies to"},
			{name: "range on tag", p: filtered(store.Filter{Field: "tag", Op: "range", Min: &one}), err: "range applies to"},
			// Times and durations are numbers: they match ranges, not text.
			{name: "in on created_at", p: filtered(store.Filter{Field: "created_at", Op: "in", Values: []string{"1704067210"}}), err: "use range"},
			{name: "in on duration", p: filtered(store.Filter{Field: "duration", Op: "in", Values: []string{"10"}}), err: "use range"},
			{name: "contains on started_at", p: filtered(store.Filter{Field: "started_at", Op: "contains", Values: []string{"17"}}), err: "use range"},
			{name: "contains on finished_at", p: filtered(store.Filter{Field: "finished_at", Op: "contains", Values: []string{"17"}}), err: "use range"},
			{name: "contains on duration", p: filtered(store.Filter{Field: "duration", Op: "contains", Values: []string{"1"}}), err: "use range"},
			{name: "too many filters", p: store.JobListParams{Filters: tooMany}, err: "at most 100 filters"},
			// Text that no column can hold (PostgreSQL stores UTF-8 without NUL) matches
			// nothing anywhere: it is refused rather than looked for.
			{name: "value not UTF-8", p: filtered(store.Filter{Field: "user", Op: "in", Values: []string{"alice", "\xff"}}), err: "UTF-8"},
			{name: "value with NUL", p: filtered(store.Filter{Field: "id", Op: "contains", Values: []string{"a\x00"}}), err: "NUL"},
			{name: "key not UTF-8", p: filtered(store.Filter{Field: "param:\xff", Op: "exists"}), err: "UTF-8"},
			{name: "project not UTF-8", p: store.JobListParams{Project: "p\xff"}, err: "UTF-8"},
			{name: "sort key with NUL", p: store.JobListParams{Sort: "metric:a\x00"}, err: "NUL"},
		} {
			_, _, err := s.JobList(ctx, &tc.p)
			require.ErrorIs(t, err, atlas.ErrInvalid, tc.name)
			require.ErrorContains(t, err, tc.err, tc.name)
			require.NotContains(t, err.Error(), "\n", "%s: one line", tc.name)
			if tc.p.Sort == "" && tc.p.Offset == 0 { // JobValues ignores sorting and paging
				_, err = s.JobValues(ctx, &tc.p, []string{"param:lr"})
				require.ErrorIs(t, err, atlas.ErrInvalid, tc.name+": values")
				require.ErrorContains(t, err, tc.err, tc.name+": values")
			}
		}
		for _, col := range []string{"lr", "tag", "state", "param:\xff"} {
			_, err := s.JobValues(ctx, &store.JobListParams{Project: "p"}, []string{"param:lr", col})
			require.ErrorIs(t, err, atlas.ErrInvalid, "column %q", col)
		}
	})

	t.Run("JobValuesColumns", func(t *testing.T) {
		t.Parallel()
		s := newListStore(t, newStore)
		ctx := t.Context()
		cols := []string{"param:lr", "param:mix", "param:opt", "metric:acc", "metric:mix", "metric:none"}
		vals, err := s.JobValues(ctx, &store.JobListParams{Project: "p", Sort: "param:lr", Desc: true, Limit: 2, Offset: 1}, cols)
		require.NoError(t, err)
		require.Equal(t, []string{"a", "b", "c", "d", "e", "f", "g", "h"}, vals.IDs, "every job, in submit order")
		require.Equal(t, []atlas.State{atlas.StateCompleted, atlas.StateFailed, atlas.StateQueued, atlas.StateRunning,
			atlas.StateStopped, atlas.StateCompleted, atlas.StateQueued, atlas.StateStarting}, vals.States)
		require.Len(t, vals.CreatedAt, 8)
		require.True(t, vals.CreatedAt[4].Equal(listEpoch.Add(5*time.Second)), "created_at of e: %v", vals.CreatedAt[4])
		// Numbers are numbers; booleans and strings keep their JSON form; missing values are nil.
		require.Equal(t, []any{0.1, 0.01, 0.1, -1.0, nil, nil, 0.5, 2.0}, vals.Columns["param:lr"])
		require.Equal(t, []any{3.0, "b", true, "a", 2.5, nil, "a", nil}, vals.Columns["param:mix"])
		require.Equal(t, []any{"adam", "sgd", "Adam", "sgd", "ümlaut", nil, "x%y", "x_y"}, vals.Columns["param:opt"])
		require.Equal(t, []any{0.5, 0.9, nil, 0.5, -3.0, 1e6, nil, nil}, vals.Columns["metric:acc"])
		require.Equal(t, []any{"high", 2.0, nil, "high", 10.0, nil, "low", nil}, vals.Columns["metric:mix"])
		require.Equal(t, []any{nil, nil, nil, nil, nil, nil, nil, nil}, vals.Columns["metric:none"])

		vals, err = s.JobValues(ctx, &store.JobListParams{}, []string{"param:lr", "metric:acc"})
		require.NoError(t, err)
		require.Equal(t, []string{"a", "b", "c", "d", "e", "f", "g", "h", "q1"}, vals.IDs, "every project")
		require.Equal(t, []any{0.1, 0.01, 0.1, -1.0, nil, nil, 0.5, 2.0, 0.3}, vals.Columns["param:lr"])
		require.Equal(t, 0.7, vals.Columns["metric:acc"][8])

		vals, err = s.JobValues(ctx, &store.JobListParams{Project: "q"}, []string{"param:lr"})
		require.NoError(t, err)
		require.Equal(t, []string{"q1"}, vals.IDs)
		require.Equal(t, []any{0.3}, vals.Columns["param:lr"], "values of the project's jobs only")

		vals, err = s.JobValues(ctx, &store.JobListParams{Project: "p", States: []atlas.State{atlas.StateQueued}}, nil)
		require.NoError(t, err)
		require.Equal(t, []string{"c", "g"}, vals.IDs)
		require.Empty(t, vals.Columns)
	})
}

// filtered lists every project's jobs through one filter.
func filtered(f store.Filter) store.JobListParams {
	return store.JobListParams{Filters: []store.Filter{f}}
}

// nonNil returns s, or an empty slice for nil, so that "none" compares equal however it is made.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
