package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/store"
	"github.com/atlasgo/atlas/internal/store/sqlutil"
)

const jobColumns = `j.id, j.seq, j.project, j."user", j.state, j.mode, j.priority, j.parent_id, j.command,
	j.entrypoint, j.params, j.num_gpus, j.ram_gb, j.worker, j.run_as, j.bundle_digest, j.archive_digest, j.executor,
	j.gpu_ids, j.exit_code, j.reason, j.run_info, j.token_hash, j.created_at, j.started_at,
	j.finished_at, j.heartbeat_at, j.stopping_at`

// querier is what a pool and a transaction have in common.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// scanJob reads the jobColumns of one row; pgx decodes the JSONB columns into their fields.
func scanJob(row pgx.Row) (*atlas.Job, error) {
	var (
		j                                  atlas.Job
		createdAt                          int64
		startedAt, finishedAt, heartbeatAt *int64
		stoppingAt                         *int64
	)
	err := row.Scan(&j.ID, &j.Seq, &j.Project, &j.User, &j.State, &j.Mode, &j.Priority, &j.ParentID, &j.Command,
		&j.Entrypoint, &j.Params, &j.NumGPUs, &j.RAMGB, &j.Worker, &j.RunAs, &j.BundleDigest, &j.ArchiveDigest, &j.Executor,
		&j.GPUIDs, &j.ExitCode, &j.Reason, &j.RunInfo, &j.TokenHash, &createdAt, &startedAt,
		&finishedAt, &heartbeatAt, &stoppingAt)
	if err != nil {
		return nil, err
	}
	j.CreatedAt = time.Unix(0, createdAt).UTC()
	j.StartedAt = fromNanos(startedAt)
	j.FinishedAt = fromNanos(finishedAt)
	j.HeartbeatAt = fromNanos(heartbeatAt)
	j.StoppingAt = fromNanos(stoppingAt)
	return &j, nil
}

func queryJobs(ctx context.Context, q querier, sql string, args ...any) ([]*atlas.Job, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*atlas.Job, error) { return scanJob(r) })
}

func ensureProject(ctx context.Context, tx pgx.Tx, name string, at time.Time) error {
	_, err := tx.Exec(ctx, `INSERT INTO projects (name, created_at, updated_at) VALUES ($1, $2, $2)
		ON CONFLICT (name) DO UPDATE SET updated_at = excluded.updated_at`, name, nanos(at))
	return err
}

func nanosOrNull(t *time.Time) *int64 {
	if t == nil {
		return nil
	}
	n := nanos(*t)
	return &n
}

// JobInsert implements store.Store.
func (s *Store) JobInsert(ctx context.Context, j *atlas.Job) error {
	if j.CreatedAt.IsZero() {
		j.CreatedAt = time.Now().UTC()
	}
	return s.tx(ctx, func(tx pgx.Tx) error {
		if err := ensureProject(ctx, tx, j.Project, j.CreatedAt); err != nil {
			return err
		}
		// seq comes from an identity column: concurrent submitters never draw the same one.
		err := tx.QueryRow(ctx, `INSERT INTO jobs (id, project, "user", state, mode, priority, parent_id,
			command, entrypoint, params, num_gpus, ram_gb, worker, run_as, bundle_digest, archive_digest, executor, gpu_ids,
			reason, run_info, token_hash, created_at, started_at, heartbeat_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24)
			RETURNING seq`,
			j.ID, j.Project, j.User, string(j.State), string(j.Mode), j.Priority, j.ParentID,
			sqlutil.JSON(sqlutil.NonNil(j.Command)), sqlutil.JSON(sqlutil.NonNil(j.Entrypoint)), sqlutil.JSON(j.Params), j.NumGPUs, j.RAMGB,
			sqlutil.JSON(j.Worker), j.RunAs, j.BundleDigest, j.ArchiveDigest, j.Executor, sqlutil.JSON(sqlutil.NonNil(j.GPUIDs)),
			j.Reason, j.RunInfo, j.TokenHash, nanos(j.CreatedAt), nanosOrNull(j.StartedAt), nanosOrNull(j.HeartbeatAt)).Scan(&j.Seq)
		if isViolation(err, uniqueViolation, "jobs_pkey") {
			return atlas.Conflictf("job %s already exists", j.ID)
		}
		return err
	})
}

// JobGet implements store.Store.
func (s *Store) JobGet(ctx context.Context, id string) (*atlas.Job, error) {
	return getJob(ctx, s.db, id, "")
}

// getJob reads a job; lock is "" or a locking clause such as FOR UPDATE.
func getJob(ctx context.Context, q querier, id, lock string) (*atlas.Job, error) {
	j, err := scanJob(q.QueryRow(ctx, `SELECT `+jobColumns+` FROM jobs j WHERE j.id = $1 `+lock, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, atlas.NotFoundf("job %s not found", id)
	}
	return j, err
}

func stateNames(states []atlas.State) []string {
	out := make([]string, len(states))
	for i, s := range states {
		out[i] = string(s)
	}
	return out
}

// JobsInState implements store.Store.
func (s *Store) JobsInState(ctx context.Context, states ...atlas.State) ([]*atlas.Job, error) {
	return queryJobs(ctx, s.db, `SELECT `+jobColumns+` FROM jobs j WHERE j.state = ANY($1)
		ORDER BY j.priority DESC, j.seq ASC`, stateNames(states))
}

// JobQueue implements store.Store.
func (s *Store) JobQueue(ctx context.Context) ([]store.QueueEntry, error) {
	rows, err := s.db.Query(ctx, `SELECT id, num_gpus, created_at FROM jobs WHERE state = 'queued' ORDER BY priority DESC, seq ASC`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.QueueEntry, error) {
		var e store.QueueEntry
		var at int64
		err := r.Scan(&e.ID, &e.NumGPUs, &at)
		e.CreatedAt = time.Unix(0, at).UTC()
		return e, err
	})
}

// JobSetState implements store.Store. The job's row stays locked from the check of its state
// to the commit, so of two writers racing on one job the second sees the first one's result.
func (s *Store) JobSetState(ctx context.Context, p *store.JobSetStateParams) (*atlas.Job, error) {
	at := p.At
	if at.IsZero() {
		at = time.Now().UTC()
	}
	var out *atlas.Job
	err := s.tx(ctx, func(tx pgx.Tx) error {
		j, err := getJob(ctx, tx, p.ID, "FOR UPDATE")
		if err != nil {
			return err
		}
		changes, err := sqlutil.StateChange(j, p, nanos(at))
		if err != nil {
			return err
		}
		var a args
		sets := make([]string, len(changes))
		for i, c := range changes {
			sets[i] = c.Column + " = " + a.add(c.Value)
		}
		if out, err = scanJob(tx.QueryRow(ctx, `UPDATE jobs j SET `+strings.Join(sets, ", ")+` WHERE j.id = `+a.add(p.ID)+
			` RETURNING `+jobColumns, a...)); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE projects SET updated_at = $1 WHERE name = $2`, nanos(at), j.Project)
		return err
	})
	return out, err
}

// JobSetRunInfo implements store.Store.
func (s *Store) JobSetRunInfo(ctx context.Context, id, runInfo string) error {
	tag, err := s.db.Exec(ctx, `UPDATE jobs SET run_info = $1 WHERE id = $2`, runInfo, id)
	return notFoundIfNone(tag, err, id)
}

// JobSetArchive implements store.Store.
func (s *Store) JobSetArchive(ctx context.Context, id, digest string) error {
	tag, err := s.db.Exec(ctx, `UPDATE jobs SET archive_digest = $1 WHERE id = $2`, digest, id)
	return notFoundIfNone(tag, err, id)
}

// JobHeartbeat implements store.Store.
func (s *Store) JobHeartbeat(ctx context.Context, id string, at time.Time) error {
	tag, err := s.db.Exec(ctx, `UPDATE jobs SET heartbeat_at = $1 WHERE id = $2`, nanos(at), id)
	return notFoundIfNone(tag, err, id)
}

func notFoundIfNone(tag pgconn.CommandTag, err error, id string) error {
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return atlas.NotFoundf("job %s not found", id)
	}
	return nil
}

// JobDelete implements store.Store.
func (s *Store) JobDelete(ctx context.Context, id string, in []atlas.State) (*atlas.Job, []atlas.Artifact, error) {
	var (
		job  *atlas.Job
		arts []atlas.Artifact
	)
	err := s.tx(ctx, func(tx pgx.Tx) error {
		j, err := getJob(ctx, tx, id, "FOR UPDATE")
		if err != nil {
			return err
		}
		if !slices.Contains(in, j.State) {
			return store.StateConflict(j)
		}
		if arts, err = queryArtifacts(ctx, tx, `WHERE job_id = $1`, id); err != nil {
			return err
		}
		// Forget the project's columns that only this job used. Locking those columns first
		// (in the order TrackBatch locks them, so neither waits for the other in a circle) waits
		// for the tracking batches that hold them (see lockProjectKeys), so that the next
		// statements, which see what committed until they start, count those batches' values.
		for _, q := range []string{
			`SELECT 1 FROM project_keys WHERE project = $1 AND (
				(kind = 'param' AND key IN (SELECT key FROM params WHERE job_id = $2)) OR
				(kind = 'metric' AND key IN (SELECT key FROM metric_summary WHERE job_id = $2)))
				ORDER BY kind DESC, key FOR UPDATE`,
			`DELETE FROM project_keys WHERE project = $1 AND kind = 'param' AND key IN (SELECT key FROM params WHERE job_id = $2)
				AND NOT EXISTS (SELECT 1 FROM params p JOIN jobs o ON o.id = p.job_id
					WHERE p.key = project_keys.key AND o.project = $1 AND o.id <> $2)`,
			`DELETE FROM project_keys WHERE project = $1 AND kind = 'metric' AND key IN (SELECT key FROM metric_summary WHERE job_id = $2)
				AND NOT EXISTS (SELECT 1 FROM metric_summary m JOIN jobs o ON o.id = m.job_id
					WHERE m.key = project_keys.key AND o.project = $1 AND o.id <> $2)`,
			`DELETE FROM jobs WHERE id = $2 AND project = $1`,
		} {
			if _, err := tx.Exec(ctx, q, j.Project, id); err != nil {
				return err
			}
		}
		job = j
		return nil
	})
	return job, arts, err
}

// JobsDeleteQueued implements store.Store. A job that a scheduler claims meanwhile is no
// longer queued when the DELETE reaches its row, and stays.
func (s *Store) JobsDeleteQueued(ctx context.Context, project, user string) ([]*atlas.Job, error) {
	var a args
	q := `WITH j AS (DELETE FROM jobs WHERE state = 'queued'`
	if project != "" {
		q += ` AND project = ` + a.add(project)
	}
	if user != "" {
		q += ` AND "user" = ` + a.add(user)
	}
	return queryJobs(ctx, s.db, q+` RETURNING *) SELECT `+jobColumns+` FROM j ORDER BY j.seq`, a...)
}

// BlobRefs implements store.Store.
func (s *Store) BlobRefs(ctx context.Context, digest string) (int, error) {
	var n int
	err := s.db.QueryRow(ctx, `SELECT
		(SELECT COUNT(*) FROM jobs WHERE bundle_digest = $1) +
		(SELECT COUNT(*) FROM jobs WHERE archive_digest = $1) +
		(SELECT COUNT(*) FROM artifacts WHERE digest = $1)`, digest).Scan(&n)
	return n, err
}

// columnSQL is the SQL of a job column: times in unix nanoseconds, or in seconds for filters.
func columnSQL(c sqlutil.Column, seconds bool) string {
	expr := "j." + pgx.Identifier{c.Name}.Sanitize()
	if c.Name == "duration" {
		expr = "(COALESCE(j.finished_at, (EXTRACT(EPOCH FROM now()) * 1e9)::bigint) - j.started_at)"
	}
	if seconds && c.Time() {
		return "(" + expr + "::float8 / 1e9)"
	}
	return expr
}

// filterSQL is the condition of one filter over jobs j, with its arguments added to a.
func filterSQL(a *args, sf store.Filter) (string, error) {
	f, err := sqlutil.ParseFilter(sf)
	if err != nil {
		return "", err
	}
	var (
		sub    string // EXISTS subquery prefix for keyed columns
		num    string // the number a range compares; "" when there is none
		target string // the text "in" and "contains" match
	)
	switch f.Kind {
	case sqlutil.JobColumn:
		target = columnSQL(f.Column, true)
		if f.Time() {
			num, target = target, target+"::text"
		}
	case sqlutil.Tag:
		sub, target = "SELECT 1 FROM tags x WHERE x.job_id = j.id", "x.key"
	case sqlutil.Param:
		sub, num, target = "SELECT 1 FROM params x WHERE x.job_id = j.id AND x.key = "+a.add(f.Key), "x.num", "x.value"
	case sqlutil.Metric:
		sub, num, target = "SELECT 1 FROM metric_summary x WHERE x.job_id = j.id AND x.key = "+a.add(f.Key), "x.last_num", "x.last"
	}
	var cond string
	switch f.Op {
	case "in":
		if f.Kind == sqlutil.Param || f.Kind == sqlutil.Metric {
			// Param and metric values are stored as JSON: match numbers by value, strings by text.
			var ors []string
			for _, v := range f.Values {
				ors = append(ors, "("+target+" = "+a.add(v)+" OR "+target+" = "+a.add(sqlutil.JSON(v))+")")
			}
			cond = "(" + strings.Join(ors, " OR ") + ")"
		} else {
			cond = target + " IN (" + a.list(f.Values) + ")"
		}
	case "contains":
		cond = target + " ILIKE " + a.add(sqlutil.ContainsPattern(f.Values[0])) + ` ESCAPE E'\\'`
	case "range":
		switch {
		case f.Kind == sqlutil.Tag:
			cond = "FALSE" // tags have no numbers
		case num == "":
			return "", atlas.Invalidf("filter %s: range applies to times, durations, params and metrics", sf.Field)
		default:
			var parts []string
			if f.Min != nil {
				parts = append(parts, num+" >= "+a.add(*f.Min))
			}
			if f.Max != nil {
				parts = append(parts, num+" <= "+a.add(*f.Max))
			}
			cond = strings.Join(parts, " AND ")
		}
	case "exists":
		cond = "TRUE"
	}
	if sub != "" {
		return "EXISTS (" + sub + " AND " + cond + ")", nil
	}
	return cond, nil
}

// listWhere is the conditions of p's states and filters (not its project) over jobs j, with
// their arguments added to a.
func listWhere(a *args, p *store.JobListParams) ([]string, error) {
	var where []string
	if len(p.States) > 0 {
		where = append(where, "j.state = ANY("+a.add(stateNames(p.States))+")")
	}
	for _, f := range p.Filters {
		c, err := filterSQL(a, f)
		if err != nil {
			return nil, err
		}
		where = append(where, c)
	}
	return where, nil
}

// JobList implements store.Store.
func (s *Store) JobList(ctx context.Context, p *store.JobListParams) ([]*atlas.Job, int, error) {
	col, err := sqlutil.ParseSort(p.Sort)
	if err != nil {
		return nil, 0, err
	}
	// The filters' arguments come first, as $1..$n, in every query below; each query adds its own.
	var fa args
	where, err := listWhere(&fa, p)
	if err != nil {
		return nil, 0, err
	}
	a := append(args(nil), fa...)
	jobWhere := where
	if p.Project != "" {
		jobWhere = append([]string{"j.project = " + a.add(p.Project)}, where...)
	}
	var total int
	if err := s.db.QueryRow(ctx, `SELECT COUNT(*) FROM jobs j`+whereClause(jobWhere), a...).Scan(&total); err != nil {
		return nil, 0, err
	}
	dir := "ASC"
	if p.Desc {
		dir = "DESC"
	}
	limit := p.Limit
	if limit <= 0 {
		limit = total
	}
	if col.Kind != sqlutil.JobColumn {
		jobs, err := s.listByKey(ctx, p, col, dir, where, fa, limit)
		return jobs, total, err
	}
	expr := columnSQL(col, false)
	order := fmt.Sprintf("%s %s, j.seq %s", expr, dir, dir)
	if col.Nullable() {
		order = fmt.Sprintf("%s %s NULLS LAST, j.seq %s", expr, dir, dir)
	}
	q := `SELECT ` + jobColumns + ` FROM jobs j` + whereClause(jobWhere) + ` ORDER BY ` + order +
		` LIMIT ` + a.add(limit) + ` OFFSET ` + a.add(p.Offset)
	jobs, err := queryJobs(ctx, s.db, q, a...)
	return jobs, total, err
}

// JobValues implements store.Store.
func (s *Store) JobValues(ctx context.Context, p *store.JobListParams, columns []string) (*store.Values, error) {
	var a args
	where, err := listWhere(&a, p)
	if err != nil {
		return nil, err
	}
	if p.Project != "" {
		where = append([]string{"j.project = " + a.add(p.Project)}, where...)
	}
	cols := make([]sqlutil.Column, len(columns))
	for i, col := range columns {
		c, ok := sqlutil.Keyed(col)
		if !ok {
			return nil, atlas.Invalidf("unknown column %q: want param:<key> or metric:<key>", col)
		}
		cols[i] = c
	}
	rows, err := s.db.Query(ctx, `SELECT j.id, j.state, j.created_at FROM jobs j`+whereClause(where)+` ORDER BY j.seq`, a...)
	if err != nil {
		return nil, err
	}
	out := &store.Values{Columns: map[string][]any{}}
	index := map[string]int{}
	var (
		id string
		st atlas.State
		at int64
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &st, &at}, func() error {
		index[id] = len(out.IDs)
		out.IDs, out.States, out.CreatedAt = append(out.IDs, id), append(out.States, st), append(out.CreatedAt, time.Unix(0, at).UTC())
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i, c := range cols {
		table, num, text := keyedSQL(c)
		q := `SELECT x.job_id, ` + num + `, ` + text + ` FROM ` + table + ` x WHERE x.key = $1`
		qargs := []any{c.Key}
		if p.Project != "" {
			q, qargs = q+` AND x.project = $2`, append(qargs, p.Project)
		}
		vals := make([]any, len(out.IDs))
		rows, err := s.db.Query(ctx, q, qargs...)
		if err != nil {
			return nil, err
		}
		var (
			n   *float64
			raw string
		)
		_, err = pgx.ForEachRow(rows, []any{&id, &n, &raw}, func() error {
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

func deref(f *float64) float64 {
	if f == nil {
		return 0
	}
	return *f
}

func whereClause(conds []string) string {
	if len(conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(conds, " AND ")
}

// keyedSQL names the table of a param or metric column, aliased x, and its number and JSON
// text columns.
func keyedSQL(c sqlutil.Column) (table, num, text string) {
	if c.Kind == sqlutil.Metric {
		return "metric_summary", "x.last_num", "x.last"
	}
	return "params", "x.num", "x.value"
}

// listByKey pages through jobs sorted by a param or metric in three runs (sqlutil.PageByKey),
// each read in the order of the (project, key, number) index, or of the job's seq for jobs
// without the key. where holds the list's filters, whose arguments fa are $1..$n.
func (s *Store) listByKey(ctx context.Context, p *store.JobListParams, col sqlutil.Column, dir string, where []string, fa args, limit int) ([]*atlas.Job, error) {
	table, num, text := keyedSQL(col)
	// from is the FROM and WHERE of a run of jobs with the key: with a number, or without.
	from := func(a *args, run sqlutil.KeyRun) string {
		conds := []string{"x.key = " + a.add(col.Key)}
		if p.Project != "" {
			conds = append([]string{"x.project = " + a.add(p.Project)}, conds...)
		}
		if run == sqlutil.TextRun {
			conds = append(conds, num+" IS NULL")
		} else {
			conds = append(conds, num+" IS NOT NULL")
		}
		return ` FROM ` + table + ` x JOIN jobs j ON j.id = x.job_id` + whereClause(append(conds, where...))
	}
	count := func(run sqlutil.KeyRun) (int, error) {
		a := append(args(nil), fa...)
		var n int
		err := s.db.QueryRow(ctx, `SELECT COUNT(*)`+from(&a, run), a...).Scan(&n)
		return n, err
	}
	read := func(run sqlutil.KeyRun, limit, offset int) ([]*atlas.Job, error) {
		a := append(args(nil), fa...)
		var q string
		switch run {
		case sqlutil.NumberRun:
			q = `SELECT ` + jobColumns + from(&a, run) + fmt.Sprintf(` ORDER BY %s %s, j.seq %s`, num, dir, dir)
		case sqlutil.TextRun:
			q = `SELECT ` + jobColumns + from(&a, run) + fmt.Sprintf(` ORDER BY %s %s, j.seq %s`, text, dir, dir)
		default:
			conds := []string{"NOT EXISTS (SELECT 1 FROM " + table + " x WHERE x.job_id = j.id AND x.key = " + a.add(col.Key) + ")"}
			if p.Project != "" {
				conds = append([]string{"j.project = " + a.add(p.Project)}, conds...)
			}
			q = `SELECT ` + jobColumns + ` FROM jobs j` + whereClause(append(conds, where...)) + ` ORDER BY j.seq ` + dir
		}
		return queryJobs(ctx, s.db, q+` LIMIT `+a.add(limit)+` OFFSET `+a.add(offset), a...)
	}
	return sqlutil.PageByKey(p.Offset, limit, count, read)
}
