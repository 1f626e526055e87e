// Package sqlutil is the logic the SQL store backends (internal/store/sqlite and
// internal/store/postgres) share and that needs no database: what a job list's sort and
// filters mean and which of them are refused, which columns a state change sets, how a batch
// of metric points folds into a metric's summary, how a list sorted by a param or metric is
// paged, and which embedded migrations exist.
//
// The job listing's SQL is built from these forms once, for both backends, in
// internal/store/joblist; each backend writes the SQL of its other queries itself. This package
// must never hold SQL or open a connection; a rule both backends keep belongs here, so they
// cannot drift apart.
package sqlutil

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/store"
)

// Kind says where the value of a sort or filter column lives.
type Kind int

const (
	// JobColumn is a column of the jobs table (Column.Name).
	JobColumn Kind = iota
	// Tag is the keys of a job's tags.
	Tag
	// Param is one param of a job (Column.Key): its number, or its JSON text.
	Param
	// Metric is the last value of one metric of a job (Column.Key): its number, or its JSON text.
	Metric
)

// Column is a sort or filter column.
type Column struct {
	Kind Kind
	// Name, for a JobColumn: id, state, user, project, mode, seq, priority, created_at,
	// started_at, finished_at or duration (finished_at, or now while running, minus started_at).
	Name string
	// Key, for a Param or Metric.
	Key string
}

// Nullable reports whether a job column may be missing; missing values sort last.
func (c Column) Nullable() bool {
	return c.Name == "started_at" || c.Name == "finished_at" || c.Name == "duration"
}

// Time reports whether a job column is a time or a duration. Filters compare those in unix
// seconds.
func (c Column) Time() bool {
	return c.Name == "created_at" || c.Name == "duration" || c.Nullable()
}

// Keyed parses "param:<key>" and "metric:<key>".
func Keyed(col string) (Column, bool) {
	if k, ok := strings.CutPrefix(col, "param:"); ok {
		return Column{Kind: Param, Key: k}, true
	}
	if k, ok := strings.CutPrefix(col, "metric:"); ok {
		return Column{Kind: Metric, Key: k}, true
	}
	return Column{}, false
}

// ParseSort parses store.JobListParams.Sort.
func ParseSort(col string) (Column, error) {
	if c, ok := Keyed(col); ok {
		return c, CheckText("sort", col)
	}
	switch col {
	case "":
		return Column{Name: "created_at"}, nil
	case "created_at", "state", "user", "project", "seq", "priority", "started_at", "finished_at", "duration", "name":
		return Column{Name: col}, nil
	case "id", "job_id":
		return Column{Name: "id"}, nil
	}
	return Column{}, atlas.Invalidf("cannot sort by %q: want created_at, started_at, finished_at, duration, state, user, id, name, param:<key> or metric:<key>", col)
}

// Filter is a checked store.Filter.
type Filter struct {
	Column
	// Op is "in" (one of Values), "contains" (Values[0], case-insensitive), "range" (Min and/or
	// Max) or "exists" (only Tag, Param and Metric: the job has the key, or any tag).
	Op     string
	Values []string
	Min    *float64
	Max    *float64
}

// ParseFilter checks a filter's field, operator and operands. Which operators apply to which
// fields is decided here, for both backends: "in" and "contains" match text (ids, names,
// states, users, projects, modes, tags, and the JSON text of params and metrics), "range" compares
// numbers (times and durations in seconds, params and metrics), "exists" asks for a tag, param
// or metric key.
func ParseFilter(f store.Filter) (Filter, error) {
	out := Filter{Op: f.Op, Values: f.Values, Min: f.Min, Max: f.Max}
	switch f.Field {
	case "state", "user", "project", "mode", "name", "created_at", "started_at", "finished_at", "duration":
		out.Column = Column{Name: f.Field}
	case "id", "job_id":
		out.Column = Column{Name: "id"}
	case "tag":
		out.Column = Column{Kind: Tag}
	default:
		c, ok := Keyed(f.Field)
		if !ok {
			return Filter{}, atlas.Invalidf("cannot filter by %q", f.Field)
		}
		if err := CheckText("filter field", f.Field); err != nil {
			return Filter{}, err
		}
		out.Column = c
	}
	numeric := out.Kind == Param || out.Kind == Metric || (out.Kind == JobColumn && out.Time())
	switch f.Op {
	case "in", "contains":
		if out.Kind == JobColumn && out.Time() {
			return Filter{}, atlas.Invalidf("filter %s: %s matches text; use range (in seconds) for times and durations", f.Field, f.Op)
		}
		if f.Op == "in" && len(f.Values) == 0 {
			return Filter{}, atlas.Invalidf("filter %s: no values", f.Field)
		}
		if f.Op == "contains" && len(f.Values) != 1 {
			return Filter{}, atlas.Invalidf("filter %s: contains needs one value", f.Field)
		}
		for _, v := range f.Values {
			if err := CheckText("filter "+f.Field+": value", v); err != nil {
				return Filter{}, err
			}
		}
	case "range":
		if !numeric {
			return Filter{}, atlas.Invalidf("filter %s: range applies to times, durations, params and metrics", f.Field)
		}
		if f.Min == nil && f.Max == nil {
			return Filter{}, atlas.Invalidf("filter %s: range needs a min or a max", f.Field)
		}
		if (f.Min != nil && math.IsNaN(*f.Min)) || (f.Max != nil && math.IsNaN(*f.Max)) {
			return Filter{}, atlas.Invalidf("filter %s: a range bound is not a number", f.Field)
		}
	case "exists":
		if out.Kind == JobColumn {
			return Filter{}, atlas.Invalidf("filter %s: exists applies to param:, metric: and tag", f.Field)
		}
	default:
		return Filter{}, atlas.Invalidf("filter %s: unknown operator %q", f.Field, f.Op)
	}
	return out, nil
}

// CheckText refuses text that no stored value can equal, because PostgreSQL holds only UTF-8
// without NUL bytes: both backends answer such a request with the same ErrInvalid, instead of
// SQLite finding nothing and PostgreSQL failing. what names the text in the message.
func CheckText(what, s string) error {
	if !utf8.ValidString(s) {
		return atlas.Invalidf("%s %q is not valid UTF-8", what, s)
	}
	if strings.IndexByte(s, 0) >= 0 {
		return atlas.Invalidf("%s %q contains a NUL byte", what, s)
	}
	return nil
}

// ContainsPattern is a LIKE pattern (escape character: backslash) that matches text containing
// s, with LIKE's wildcards in s taken literally.
func ContainsPattern(s string) string {
	return "%" + strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s) + "%"
}

// Set is one column a write sets; a nil Value is NULL. Times are unix nanoseconds.
type Set struct {
	Column string
	Value  any
}

// StateChange checks that job j may make the change p: its state may move to p.To
// (atlas.CanTransition) and, when p.From is given, is one of p.From. It returns the columns to
// set, each once, or an ErrConflict.
func StateChange(j *atlas.Job, p *store.JobSetStateParams, atNanos int64) ([]Set, error) {
	allowed := atlas.CanTransition(j.State, p.To)
	if allowed && len(p.From) > 0 {
		allowed = false
		for _, f := range p.From {
			allowed = allowed || f == j.State
		}
	}
	if !allowed {
		return nil, fmt.Errorf("%w and cannot become %s", store.StateConflict(j), p.To)
	}
	var sets []Set
	set := func(col string, v any) { // a later value of a column replaces an earlier one
		for i := range sets {
			if sets[i].Column == col {
				sets[i].Value = v
				return
			}
		}
		sets = append(sets, Set{col, v})
	}
	set("state", string(p.To))
	if p.To == atlas.StateRunning && j.StartedAt == nil {
		set("started_at", atNanos)
	}
	if p.To.Finished() {
		set("finished_at", atNanos)
	}
	if p.To == atlas.StateStopping {
		set("stopping_at", atNanos)
	}
	if p.To == atlas.StateQueued { // back to the queue: forget the attempt
		set("started_at", nil)
		set("executor", "")
		set("gpu_ids", "[]")
		set("run_info", "")
	}
	if p.Reason != "" {
		set("reason", p.Reason)
	}
	if p.ExitCode != nil {
		set("exit_code", *p.ExitCode)
	}
	if p.Executor != "" {
		set("executor", p.Executor)
	}
	if p.GPUIDs != nil {
		set("gpu_ids", JSON(p.GPUIDs))
	}
	if p.RunInfo != "" {
		set("run_info", p.RunInfo)
	}
	if p.ArchiveDigest != "" {
		set("archive_digest", p.ArchiveDigest)
	}
	return sets, nil
}

// MetricAppend is one batch of points of one metric of one job, as stored: the chunk of points
// and the metric's new summary.
type MetricAppend struct {
	Steps, Values, Times string // the chunk: JSON arrays
	Count                int64
	Last                 string // JSON
	LastNum              any    // float64, or nil when the last value is not a number
	LastStep             int64
	Min, Max             any // float64, or nil while no value has been a number
}

// AppendMetric numbers pts (a negative step is the next one: the number of points before it)
// and folds them into the summary of the count points before them, whose numeric minimum and
// maximum are min and max (nil when none was a number). pts must not be empty.
func AppendMetric(count int64, min, max *float64, pts []atlas.MetricPoint) MetricAppend {
	// The three columns are written straight into JSON arrays, numbers as encoding/json writes
	// them: through json.Marshal of []any, a chunk's values cost several times more than
	// storing them.
	steps := make([]byte, 0, 8*len(pts)+2)
	vals := make([]byte, 0, 20*len(pts)+2)
	times := make([]byte, 0, 20*len(pts)+2)
	mn, mx := math.Inf(1), math.Inf(-1)
	if min != nil && max != nil {
		mn, mx = *min, *max
	}
	var step int64
	for i, p := range pts {
		step = p.Step
		if step < 0 {
			step = count + int64(i)
		}
		sep := byte(',')
		if i == 0 {
			sep = '['
		}
		steps = strconv.AppendInt(append(steps, sep), step, 10)
		vals = appendJSON(append(vals, sep), p.Value)
		times = appendJSON(append(times, sep), p.Time)
		if f, ok := Num(p.Value).(float64); ok {
			mn, mx = math.Min(mn, f), math.Max(mx, f)
		}
	}
	last := pts[len(pts)-1].Value
	out := MetricAppend{Steps: string(append(steps, ']')), Values: string(append(vals, ']')), Times: string(append(times, ']')),
		Count: count + int64(len(pts)), Last: string(appendJSON(nil, last)), LastNum: Num(last), LastStep: step}
	if !math.IsInf(mn, 1) {
		out.Min, out.Max = mn, mx
	}
	return out
}

// appendJSON appends v's JSON as json.Marshal writes it; a finite float64 without
// encoding/json's reflection.
func appendJSON(b []byte, v any) []byte {
	f, ok := v.(float64)
	if !ok || math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, JSON(v)...)
	}
	// encoding/json's format: exponent notation for very small and very large magnitudes,
	// with a one-digit negative exponent written without its leading zero.
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if n := len(b); format == 'e' && n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
		b[n-2] = b[n-1]
		b = b[:n-1]
	}
	return b
}

// Num returns v as a float64 when it is a number (or a boolean: 1 or 0), else nil (SQL NULL).
// Stores keep it beside a value's JSON to sort and range-filter by it.
func Num(v any) any {
	switch x := v.(type) {
	case float64:
		return x
	case float32:
		return float64(x)
	case int:
		return float64(x)
	case int64:
		return float64(x)
	case json.Number:
		if f, err := x.Float64(); err == nil {
			return f
		}
	case bool:
		if x {
			return 1.0
		}
		return 0.0
	}
	return nil
}

// Value is a param or metric value as JobValues returns it, from its stored number (when
// isNum) and JSON: the number, except for booleans, which keep their JSON form.
func Value(num float64, isNum bool, raw string) (any, error) {
	if isNum && !strings.HasPrefix(raw, "t") && !strings.HasPrefix(raw, "f") {
		return num, nil
	}
	var v any
	err := json.Unmarshal([]byte(raw), &v)
	return v, err
}

// KeyRun is one of the runs in which a list sorted by a param or metric is read, each in the
// order of an index: jobs with a numeric value, then jobs with another value (by its JSON
// text), then jobs without the key (by submit order). Missing values thus come last whichever
// the direction.
type KeyRun int

// The runs, in reading order.
const (
	NumberRun KeyRun = iota
	TextRun
	MissingRun
)

// PageByKey reads the page of at most limit jobs that starts offset jobs into the runs.
// count(run) says how many jobs a run holds; it is asked only to skip a run whole. read reads
// up to limit jobs of one run from its offset.
func PageByKey(offset, limit int, count func(KeyRun) (int, error), read func(run KeyRun, limit, offset int) ([]*atlas.Job, error)) ([]*atlas.Job, error) {
	var out []*atlas.Job
	for _, run := range []KeyRun{NumberRun, TextRun, MissingRun} {
		if len(out) >= limit {
			break
		}
		if offset > 0 && run != MissingRun {
			n, err := count(run)
			if err != nil {
				return nil, err
			}
			if offset >= n {
				offset -= n
				continue
			}
		}
		jobs, err := read(run, limit-len(out), offset)
		if err != nil {
			return nil, err
		}
		out = append(out, jobs...)
		offset = 0
	}
	return out, nil
}

// JSON encodes v, which must be of a type that always encodes.
func JSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only called with types that always encode
	}
	return string(b)
}

// NonNil returns s, or an empty slice for nil, so that it encodes as [] rather than null.
func NonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// SortedKeys returns the keys of m in order, so that writes take row locks in one order.
func SortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Migration is one embedded schema migration, migrations/<version>_<name>.sql.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrations reads the migrations under dir in fsys, in version order.
func Migrations(fsys fs.FS, dir string) ([]Migration, error) {
	names, err := fs.Glob(fsys, dir+"/*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var out []Migration
	for _, name := range names {
		base := strings.TrimPrefix(name, dir+"/")
		v, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil {
			return nil, fmt.Errorf("migration %s: bad version", base)
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: v, Name: base, SQL: string(body)})
	}
	return out, nil
}
