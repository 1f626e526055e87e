package postgres

import (
	"context"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/store"
	"github.com/atlasgo/atlas/internal/store/joblist"
)

// JobList implements store.Store with the listing of internal/store/joblist.
func (s *Store) JobList(ctx context.Context, p *store.JobListParams) ([]*atlas.Job, int, error) {
	return joblist.List(ctx, lister{s.db}, p)
}

// JobCount implements store.Store with the listing of internal/store/joblist.
func (s *Store) JobCount(ctx context.Context, p *store.JobListParams) (int, error) {
	return joblist.Count(ctx, lister{s.db}, p)
}

// JobValues implements store.Store with the listing of internal/store/joblist.
func (s *Store) JobValues(ctx context.Context, p *store.JobListParams, columns []string) (*store.Values, error) {
	return joblist.Values(ctx, lister{s.db}, p, columns)
}

// lister runs the job listing's queries on the pool, in PostgreSQL's dialect.
type lister struct{ db *pgxpool.Pool }

var _ joblist.DB = lister{}

func (lister) Placeholder(n int) string { return "$" + strconv.Itoa(n) }

// In passes the values as one text array: a statement takes at most 65,535 arguments.
func (lister) In(a *joblist.Args, expr string, values []string) string {
	return expr + " = ANY(" + a.Add(values) + ")"
}

// ILike is ILIKE, which ignores the case of ASCII letters only on the "C" collation of the
// columns it matches.
func (lister) ILike(expr, pattern string) string {
	return expr + " ILIKE " + pattern + ` ESCAPE E'\\'`
}

func (l lister) Jobs(ctx context.Context, q joblist.Query) ([]*atlas.Job, error) {
	return queryJobs(ctx, l.db, `SELECT `+jobColumns+` `+q.SQL, q.Args...)
}

func (l lister) Rows(ctx context.Context, q joblist.Query, dest []any, each func() error) error {
	rows, err := l.db.Query(ctx, q.SQL, q.Args...)
	if err != nil {
		return err
	}
	_, err = pgx.ForEachRow(rows, dest, each)
	return err
}
