package sqlite

import (
	"context"
	"database/sql"
	"strconv"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/store"
	"github.com/atlasgo/atlas/internal/store/joblist"
	"github.com/atlasgo/atlas/internal/store/sqlutil"
)

// JobList implements store.Store with the listing of internal/store/joblist.
func (s *Store) JobList(ctx context.Context, p *store.JobListParams) ([]*atlas.Job, int, error) {
	return joblist.List(ctx, lister{s.r.DB}, p)
}

// JobCount implements store.Store with the listing of internal/store/joblist, or, for a
// project's jobs in some or all states, from job_counts (migration 0015).
func (s *Store) JobCount(ctx context.Context, p *store.JobListParams) (int, error) {
	if p.Project == "" || len(p.Filters) > 0 {
		return joblist.Count(ctx, lister{s.r.DB}, p)
	}
	q, args := `SELECT COALESCE(SUM(n), 0) FROM job_counts WHERE project = ?`, []any{p.Project}
	if len(p.States) > 0 {
		q += ` AND state IN (` + placeholders(len(p.States)) + `)`
		args = append(args, anys(p.States)...)
	}
	var n int
	err := s.r.QueryRowContext(ctx, q, args...).Scan(&n)
	return n, err
}

// JobValues implements store.Store with the listing of internal/store/joblist.
func (s *Store) JobValues(ctx context.Context, p *store.JobListParams, columns []string) (*store.Values, error) {
	return joblist.Values(ctx, lister{s.r.DB}, p, columns)
}

// lister runs the job listing's queries on the reader pool, in SQLite's dialect.
type lister struct{ db *sql.DB }

var _ joblist.DB = lister{}

func (lister) Placeholder(n int) string { return "?" + strconv.Itoa(n) }

// In passes the values as one JSON array: a statement takes at most 32,766 arguments.
func (lister) In(a *joblist.Args, expr string, values []string) string {
	return expr + " IN (SELECT value FROM json_each(" + a.Add(sqlutil.JSON(values)) + "))"
}

// ILike is LIKE, which ignores the case of ASCII letters (case_sensitive_like is off).
func (lister) ILike(expr, pattern string) string {
	return expr + " LIKE " + pattern + ` ESCAPE '\'`
}

func (l lister) Jobs(ctx context.Context, q joblist.Query) ([]*atlas.Job, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT `+jobColumns+` `+q.SQL, q.Args...)
	if err != nil {
		return nil, err
	}
	return collectJobs(rows)
}

func (l lister) Rows(ctx context.Context, q joblist.Query, dest []any, each func() error) error {
	rows, err := l.db.QueryContext(ctx, q.SQL, q.Args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		if err := each(); err != nil {
			return err
		}
	}
	return rows.Err()
}
