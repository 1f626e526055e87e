// Package joblist is the job listing of the SQL stores, written once for both: the queries of
// store.Store's JobList (one page of jobs, sorted and filtered, and how many match) and
// JobValues (param and metric columns of many jobs), and the order in which they run.
//
// What sorts and filters mean, and which are refused, is decided in internal/store/sqlutil;
// this package turns them into SQL that SQLite and PostgreSQL both run, and leaves the few
// differences between the two to a Dialect. A backend supplies a DB: its dialect, and the
// execution of a query and scanning of its rows. The package holds SQL but never opens a
// connection, imports no database driver, and knows no other query of the stores.
package joblist

import (
	"context"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/store"
	"github.com/atlasgo/atlas/internal/store/sqlutil"
)

// MaxFilters is the most filters one listing takes. Each is a term of the query's WHERE
// clause, and SQLite refuses expression trees deeper than 1,000; no screen needs a hundred.
const MaxFilters = 100

// Dialect is how the SQL of the two backends differs, as far as the listing is concerned.
// Everything else is written in SQL both accept: quoted identifiers ("user"), NULLS LAST,
// CAST(... AS DOUBLE PRECISION), LIMIT and OFFSET.
type Dialect interface {
	// Placeholder is the text of a query's nth argument, counted from 1 ("?1" or "$1"):
	// numbered, so that a query's text need not be written in the order of its arguments.
	Placeholder(n int) string
	// In is the condition that expr is one of values, with values passed in one argument
	// added to a, so that their number is not bounded by the dialect's limit of arguments.
	In(a *Args, expr string, values []string) string
	// ILike is the condition that expr matches the LIKE pattern in the argument pattern
	// (escape character: backslash), ignoring the case of ASCII letters only.
	ILike(expr, pattern string) string
}

// DB is what a backend gives the listing: its dialect, and the execution of its queries.
type DB interface {
	Dialect
	// Jobs runs a query of whole jobs j: q.SQL is the query from its FROM clause on, to which
	// the backend puts the select list of the job columns it scans.
	Jobs(ctx context.Context, q Query) ([]*atlas.Job, error)
	// Rows runs q, scans each row into dest and calls each after every row.
	Rows(ctx context.Context, q Query, dest []any, each func() error) error
}

// Query is one statement and its arguments.
type Query struct {
	SQL  string
	Args []any
}

// Args collects the arguments of one query and names their placeholders.
type Args struct {
	d    Dialect
	vals []any
}

// Add adds v and returns its placeholder.
func (a *Args) Add(v any) string {
	a.vals = append(a.vals, v)
	return a.d.Placeholder(len(a.vals))
}

// query is sql with the arguments of a.
func (a *Args) query(sql string) Query { return Query{SQL: sql, Args: a.vals} }

// List returns one page of the jobs p selects and how many it selects (store.Store.JobList).
func List(ctx context.Context, db DB, p *store.JobListParams) ([]*atlas.Job, int, error) {
	l, err := parse(db, p)
	if err != nil {
		return nil, 0, err
	}
	sort, err := sqlutil.ParseSort(p.Sort)
	if err != nil {
		return nil, 0, err
	}
	if p.Offset < 0 {
		return nil, 0, atlas.Invalidf("offset %d: want 0 or more", p.Offset)
	}
	dir := "ASC"
	if p.Desc {
		dir = "DESC"
	}
	if p.Limit > 0 && p.SkipTotal {
		jobs, err := l.page(ctx, db, sort, dir, p.Limit)
		return jobs, -1, err
	}
	if p.Limit <= 0 { // the page is every job: its size is the count
		total, err := l.count(ctx, db)
		if err != nil {
			return nil, 0, err
		}
		jobs, err := l.page(ctx, db, sort, dir, total)
		return jobs, total, err
	}
	// The count and the page are read at once, on two of the store's connections.
	var (
		total int
		jobs  []*atlas.Job
	)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) { total, err = l.count(gctx, db); return err })
	g.Go(func() (err error) { jobs, err = l.page(gctx, db, sort, dir, p.Limit); return err })
	if err := g.Wait(); err != nil {
		return nil, 0, err
	}
	return jobs, total, nil
}

// Count returns how many jobs p selects (store.Store.JobCount).
func Count(ctx context.Context, db DB, p *store.JobListParams) (int, error) {
	l, err := parse(db, p)
	if err != nil {
		return 0, err
	}
	return l.count(ctx, db)
}

// count is how many jobs the listing selects.
func (l *listing) count(ctx context.Context, db DB) (int, error) {
	a := l.args()
	return count(ctx, db, a.query(`SELECT COUNT(*) FROM jobs j`+where(l.where(a, true))))
}

// page reads limit jobs of the listing from its offset, in the order of sort.
func (l *listing) page(ctx context.Context, db DB, sort sqlutil.Column, dir string, limit int) ([]*atlas.Job, error) {
	if sort.Kind == sqlutil.JobColumn {
		a := l.args()
		order := l.column(a, sort, false) + " " + dir
		if sort.Nullable() {
			order += " NULLS LAST"
		}
		return db.Jobs(ctx, a.query(`FROM jobs j`+where(l.where(a, true))+` ORDER BY `+order+`, j.seq `+dir+
			` LIMIT `+a.Add(limit)+` OFFSET `+a.Add(l.p.Offset)))
	}
	return l.byKey(ctx, db, sort, dir, limit)
}

// byKey reads a page of jobs sorted by a param or metric in three runs (sqlutil.PageByKey),
// each in the order of an index: the (project, key, number) index for jobs with the key, the
// jobs' seq for jobs without. Going through the index keeps the first page of a 10,000-job
// project to a few dozen row lookups instead of a join and sort over every job.
func (l *listing) byKey(ctx context.Context, db DB, col sqlutil.Column, dir string, limit int) ([]*atlas.Job, error) {
	table, num, text := keyed(col)
	// from is the FROM and WHERE of a run of jobs with the key: with a number, or without.
	from := func(a *Args, run sqlutil.KeyRun) string {
		var conds []string
		if l.p.Project != "" {
			conds = append(conds, "x.project = "+a.Add(l.p.Project))
		}
		conds = append(conds, "x.key = "+a.Add(col.Key))
		if run == sqlutil.TextRun {
			conds = append(conds, num+" IS NULL")
		} else {
			conds = append(conds, num+" IS NOT NULL")
		}
		return `FROM ` + table + ` x JOIN jobs j ON j.id = x.job_id` + where(append(conds, l.where(a, false)...))
	}
	countRun := func(run sqlutil.KeyRun) (int, error) {
		a := l.args()
		return count(ctx, db, a.query(`SELECT COUNT(*) `+from(a, run)))
	}
	read := func(run sqlutil.KeyRun, limit, offset int) ([]*atlas.Job, error) {
		a := l.args()
		var q string
		switch run {
		case sqlutil.NumberRun:
			q = from(a, run) + ` ORDER BY ` + num + ` ` + dir + `, j.seq ` + dir
		case sqlutil.TextRun:
			q = from(a, run) + ` ORDER BY ` + text + ` ` + dir + `, j.seq ` + dir
		default:
			conds := append(l.where(a, true), "NOT EXISTS (SELECT 1 FROM "+table+" x WHERE x.job_id = j.id AND x.key = "+a.Add(col.Key)+")")
			q = `FROM jobs j` + where(conds) + ` ORDER BY j.seq ` + dir
		}
		return db.Jobs(ctx, a.query(q+` LIMIT `+a.Add(limit)+` OFFSET `+a.Add(offset)))
	}
	return sqlutil.PageByKey(l.p.Offset, limit, countRun, read)
}

// Values returns the columns ("param:<key>", "metric:<key>") of every job p selects, in submit
// order (store.Store.JobValues). p's Sort, Limit and Offset are ignored.
func Values(ctx context.Context, db DB, p *store.JobListParams, columns []string) (*store.Values, error) {
	l, err := parse(db, p)
	if err != nil {
		return nil, err
	}
	cols := make([]sqlutil.Column, len(columns))
	for i, col := range columns {
		c, ok := sqlutil.Keyed(col)
		if !ok {
			return nil, atlas.Invalidf("unknown column %q: want param:<key> or metric:<key>", col)
		}
		if err := sqlutil.CheckText("column", col); err != nil {
			return nil, err
		}
		cols[i] = c
	}
	out := &store.Values{Columns: map[string][]any{}}
	index := map[string]int{}
	var (
		id string
		st atlas.State
		at int64
	)
	a := l.args()
	err = db.Rows(ctx, a.query(`SELECT j.id, j.state, j.created_at FROM jobs j`+where(l.where(a, true))+` ORDER BY j.seq`),
		[]any{&id, &st, &at}, func() error {
			index[id] = len(out.IDs)
			out.IDs, out.States, out.CreatedAt = append(out.IDs, id), append(out.States, st), append(out.CreatedAt, fromNanos(at))
			return nil
		})
	if err != nil {
		return nil, err
	}
	for i, c := range cols {
		table, num, text := keyed(c)
		a := l.args()
		q := `SELECT x.job_id, ` + num + `, ` + text + ` FROM ` + table + ` x WHERE x.key = ` + a.Add(c.Key)
		if p.Project != "" {
			q += ` AND x.project = ` + a.Add(p.Project)
		}
		vals := make([]any, len(out.IDs))
		var (
			n   *float64
			raw string
		)
		err := db.Rows(ctx, a.query(q), []any{&id, &n, &raw}, func() error {
			i, ok := index[id]
			if !ok {
				return nil
			}
			var err error
			vals[i], err = sqlutil.Value(deref(n), n != nil, raw)
			return err
		})
		if err != nil {
			return nil, err
		}
		out.Columns[columns[i]] = vals
	}
	return out, nil
}

// listing is a checked selection of jobs: a project, states and filters.
type listing struct {
	d       Dialect
	p       *store.JobListParams
	filters []sqlutil.Filter
	// now is the time, in unix nanoseconds, to which running jobs' durations count: one for
	// every query of a listing, so that its count and its pages agree.
	now int64
}

func parse(d Dialect, p *store.JobListParams) (*listing, error) {
	if err := sqlutil.CheckText("project", p.Project); err != nil {
		return nil, err
	}
	if len(p.Filters) > MaxFilters {
		return nil, atlas.Invalidf("%d filters: at most %d filters fit in one list", len(p.Filters), MaxFilters)
	}
	l := &listing{d: d, p: p, now: nowNanos()}
	for _, sf := range p.Filters {
		f, err := sqlutil.ParseFilter(sf)
		if err != nil {
			return nil, err
		}
		l.filters = append(l.filters, f)
	}
	return l, nil
}

// args starts the arguments of a query.
func (l *listing) args() *Args { return &Args{d: l.d} }

// where is the conditions of the listing over jobs j: its project (when withProject), states and
// filters.
func (l *listing) where(a *Args, withProject bool) []string {
	var conds []string
	if withProject && l.p.Project != "" {
		conds = append(conds, "j.project = "+a.Add(l.p.Project))
	}
	if len(l.p.States) > 0 {
		states := make([]string, len(l.p.States))
		for i, s := range l.p.States {
			states[i] = string(s)
		}
		conds = append(conds, l.d.In(a, "j.state", states))
	}
	for _, f := range l.filters {
		conds = append(conds, l.filter(a, f))
	}
	return conds
}

// filter is the condition of one filter over jobs j.
func (l *listing) filter(a *Args, f sqlutil.Filter) string {
	var (
		sub  string // for keyed columns: the EXISTS subquery the condition completes
		num  string // the number a range compares
		text string // the text "in" and "contains" match
		in   bool   // sub is rather the job ids that j.id is in
	)
	switch f.Kind {
	case sqlutil.JobColumn:
		num = l.column(a, f.Column, true)
		text = num
	case sqlutil.Tag:
		sub, text = "SELECT 1 FROM tags x WHERE x.job_id = j.id", "x.key"
	case sqlutil.Param, sqlutil.Metric:
		var table string
		table, num, text = keyed(f.Column)
		if f.Op == "range" && l.p.Project != "" {
			// The project's jobs whose value is in the range, read from the (project, key,
			// number) index, rather than a lookup for each of the project's jobs: counting a
			// filtered listing of 100,000 jobs read every one of them.
			sub, in = "SELECT x.job_id FROM "+table+" x WHERE x.project = "+a.Add(l.p.Project)+" AND x.key = "+a.Add(f.Key), true
		} else {
			sub = "SELECT 1 FROM " + table + " x WHERE x.job_id = j.id AND x.key = " + a.Add(f.Key)
		}
	}
	var conds []string
	switch f.Op {
	case "in":
		values := f.Values
		if f.Kind == sqlutil.Param || f.Kind == sqlutil.Metric {
			// Their values are stored as JSON: a number matches as written, a string by its text.
			values = make([]string, 0, 2*len(f.Values))
			for _, v := range f.Values {
				values = append(values, v, sqlutil.JSON(v))
			}
		}
		conds = append(conds, l.d.In(a, text, values))
	case "contains":
		conds = append(conds, l.d.ILike(text, a.Add(sqlutil.ContainsPattern(f.Values[0]))))
	case "range":
		if f.Min != nil {
			conds = append(conds, num+" >= "+a.Add(*f.Min))
		}
		if f.Max != nil {
			conds = append(conds, num+" <= "+a.Add(*f.Max))
		}
	}
	if in {
		return "j.id IN (" + strings.Join(append([]string{sub}, conds...), " AND ") + ")"
	}
	if sub != "" {
		return "EXISTS (" + strings.Join(append([]string{sub}, conds...), " AND ") + ")"
	}
	return strings.Join(conds, " AND ")
}

// column is the SQL of a job column: times in unix nanoseconds, or in seconds (a float) when
// seconds is set. A duration is finished_at, or now while the job runs, minus started_at.
func (l *listing) column(a *Args, c sqlutil.Column, seconds bool) string {
	expr := `j."` + c.Name + `"`
	if c.Name == "duration" {
		expr = "(COALESCE(j.finished_at, " + a.Add(l.now) + ") - j.started_at)"
	}
	if seconds && c.Time() {
		return "(CAST(" + expr + " AS DOUBLE PRECISION) / 1e9)"
	}
	return expr
}

// keyed names the table of a param or metric column, aliased x, and its number and JSON text
// columns.
func keyed(c sqlutil.Column) (table, num, text string) {
	if c.Kind == sqlutil.Metric {
		return "metric_summary", "x.last_num", "x.last"
	}
	return "params", "x.num", "x.value"
}

func where(conds []string) string {
	if len(conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(conds, " AND ")
}

func count(ctx context.Context, db DB, q Query) (int, error) {
	var n int
	err := db.Rows(ctx, q, []any{&n}, func() error { return nil })
	return n, err
}

func nowNanos() int64 { return time.Now().UnixNano() }

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

func deref(f *float64) float64 {
	if f == nil {
		return 0
	}
	return *f
}
