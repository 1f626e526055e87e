package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/store"
)

const jobColumns = `j.id, j.seq, j.project, j.user, j.state, j.mode, j.priority, j.parent_id, j.command,
	j.entrypoint, j.params, j.num_gpus, j.ram_gb, j.worker, j.run_as, j.bundle_digest, j.archive_digest, j.executor,
	j.gpu_ids, j.exit_code, j.reason, j.stop_requested, j.run_info, j.token_hash, j.created_at, j.started_at,
	j.finished_at, j.heartbeat_at`

type scanner interface{ Scan(...any) error }

func scanJob(sc scanner) (*atlas.Job, error) {
	var (
		j                                            atlas.Job
		command, entrypoint, params, worker, gpuIDs  string
		exitCode, startedAt, finishedAt, heartbeatAt sql.NullInt64
		createdAt                                    int64
		stopRequested                                int
	)
	err := sc.Scan(&j.ID, &j.Seq, &j.Project, &j.User, &j.State, &j.Mode, &j.Priority, &j.ParentID, &command,
		&entrypoint, &params, &j.NumGPUs, &j.RAMGB, &worker, &j.RunAs, &j.BundleDigest, &j.ArchiveDigest, &j.Executor,
		&gpuIDs, &exitCode, &j.Reason, &stopRequested, &j.RunInfo, &j.TokenHash, &createdAt, &startedAt,
		&finishedAt, &heartbeatAt)
	if err != nil {
		return nil, err
	}
	for _, f := range []struct {
		src string
		dst any
	}{{command, &j.Command}, {entrypoint, &j.Entrypoint}, {params, &j.Params}, {worker, &j.Worker}, {gpuIDs, &j.GPUIDs}} {
		if err := json.Unmarshal([]byte(f.src), f.dst); err != nil {
			return nil, fmt.Errorf("job %s: decode column: %w", j.ID, err)
		}
	}
	if exitCode.Valid {
		c := int(exitCode.Int64)
		j.ExitCode = &c
	}
	j.StopRequested = stopRequested != 0
	j.CreatedAt = time.Unix(0, createdAt).UTC()
	j.StartedAt = fromNanos(startedAt)
	j.FinishedAt = fromNanos(finishedAt)
	j.HeartbeatAt = fromNanos(heartbeatAt)
	return &j, nil
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only called with types that always encode
	}
	return string(b)
}

func ensureProject(ctx context.Context, tx *sql.Tx, name string, at time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO projects (name, created_at, updated_at) VALUES (?, ?, ?)
		ON CONFLICT(name) DO UPDATE SET updated_at = excluded.updated_at`, name, nanos(at), nanos(at))
	return err
}

// JobInsert implements store.Store.
func (s *Store) JobInsert(ctx context.Context, j *atlas.Job) error {
	if j.CreatedAt.IsZero() {
		j.CreatedAt = time.Now().UTC()
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := ensureProject(ctx, tx, j.Project, j.CreatedAt); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs`).Scan(&j.Seq); err != nil {
			return err
		}
		var started, heartbeat any
		if j.StartedAt != nil {
			started = nanos(*j.StartedAt)
		}
		if j.HeartbeatAt != nil {
			heartbeat = nanos(*j.HeartbeatAt)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO jobs (id, seq, project, user, state, mode, priority, parent_id,
			command, entrypoint, params, num_gpus, ram_gb, worker, run_as, bundle_digest, archive_digest, executor, gpu_ids,
			reason, run_info, token_hash, created_at, started_at, heartbeat_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			j.ID, j.Seq, j.Project, j.User, j.State, j.Mode, j.Priority, j.ParentID,
			mustJSON(nonNil(j.Command)), mustJSON(nonNil(j.Entrypoint)), mustJSON(j.Params), j.NumGPUs, j.RAMGB,
			mustJSON(j.Worker), j.RunAs, j.BundleDigest, j.ArchiveDigest, j.Executor, mustJSON(nonNil(j.GPUIDs)),
			j.Reason, j.RunInfo, j.TokenHash, nanos(j.CreatedAt), started, heartbeat)
		if err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed: jobs.id") {
			return atlas.Conflictf("job %s already exists", j.ID)
		}
		return err
	})
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// JobGet implements store.Store.
func (s *Store) JobGet(ctx context.Context, id string) (*atlas.Job, error) {
	return getJob(ctx, s.r, id)
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func getJob(ctx context.Context, q querier, id string) (*atlas.Job, error) {
	j, err := scanJob(q.QueryRowContext(ctx, `SELECT `+jobColumns+` FROM jobs j WHERE j.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, atlas.NotFoundf("job %s not found", id)
	}
	return j, err
}

// JobsInState implements store.Store.
func (s *Store) JobsInState(ctx context.Context, states ...atlas.State) ([]*atlas.Job, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+jobColumns+` FROM jobs j WHERE j.state IN (`+placeholders(len(states))+`)
		ORDER BY j.priority DESC, j.seq ASC`, anys(states)...)
	if err != nil {
		return nil, err
	}
	return collectJobs(rows)
}

// JobQueue implements store.Store.
func (s *Store) JobQueue(ctx context.Context) ([]store.QueueEntry, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, num_gpus, created_at FROM jobs WHERE state = 'queued' ORDER BY priority DESC, seq ASC`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.QueueEntry
	for rows.Next() {
		var e store.QueueEntry
		var at int64
		if err := rows.Scan(&e.ID, &e.NumGPUs, &at); err != nil {
			return nil, err
		}
		e.CreatedAt = time.Unix(0, at).UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

func collectJobs(rows *sql.Rows) ([]*atlas.Job, error) {
	defer rows.Close()
	var out []*atlas.Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// JobSetState implements store.Store.
func (s *Store) JobSetState(ctx context.Context, p *store.JobSetStateParams) (*atlas.Job, error) {
	at := p.At
	if at.IsZero() {
		at = time.Now().UTC()
	}
	var out *atlas.Job
	err := s.tx(ctx, func(tx *sql.Tx) error {
		j, err := getJob(ctx, tx, p.ID)
		if err != nil {
			return err
		}
		allowed := atlas.CanTransition(j.State, p.To)
		if allowed && len(p.From) > 0 {
			allowed = false
			for _, f := range p.From {
				allowed = allowed || f == j.State
			}
		}
		if !allowed {
			return atlas.Conflictf("job %s is %s and cannot become %s", j.ID, j.State, p.To)
		}
		sets := []string{"state = ?"}
		args := []any{p.To}
		if p.To == atlas.StateRunning && j.StartedAt == nil {
			sets, args = append(sets, "started_at = ?"), append(args, nanos(at))
		}
		if p.To.Finished() {
			sets, args = append(sets, "finished_at = ?"), append(args, nanos(at))
		}
		if p.To == atlas.StateQueued { // back to the queue: forget the attempt
			sets = append(sets, "started_at = NULL", "executor = ''", "gpu_ids = '[]'", "run_info = ''")
		}
		if p.Reason != "" {
			sets, args = append(sets, "reason = ?"), append(args, p.Reason)
		}
		if p.ExitCode != nil {
			sets, args = append(sets, "exit_code = ?"), append(args, *p.ExitCode)
		}
		if p.Executor != "" {
			sets, args = append(sets, "executor = ?"), append(args, p.Executor)
		}
		if p.GPUIDs != nil {
			sets, args = append(sets, "gpu_ids = ?"), append(args, mustJSON(p.GPUIDs))
		}
		if p.RunInfo != "" {
			sets, args = append(sets, "run_info = ?"), append(args, p.RunInfo)
		}
		if p.ArchiveDigest != "" {
			sets, args = append(sets, "archive_digest = ?"), append(args, p.ArchiveDigest)
		}
		args = append(args, p.ID)
		if _, err := tx.ExecContext(ctx, `UPDATE jobs SET `+strings.Join(sets, ", ")+` WHERE id = ?`, args...); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE projects SET updated_at = ? WHERE name = ?`, nanos(at), j.Project); err != nil {
			return err
		}
		out, err = getJob(ctx, tx, p.ID)
		return err
	})
	return out, err
}

// JobRequestStop implements store.Store.
func (s *Store) JobRequestStop(ctx context.Context, id string) (*atlas.Job, error) {
	var out *atlas.Job
	err := s.tx(ctx, func(tx *sql.Tx) error {
		j, err := getJob(ctx, tx, id)
		if err != nil {
			return err
		}
		if j.State != atlas.StateRunning && j.State != atlas.StateStarting {
			return atlas.Conflictf("job %s is %s, not running", id, j.State)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE jobs SET stop_requested = 1 WHERE id = ?`, id); err != nil {
			return err
		}
		j.StopRequested = true
		out = j
		return nil
	})
	return out, err
}

// JobSetRunInfo implements store.Store.
func (s *Store) JobSetRunInfo(ctx context.Context, id, runInfo string) error {
	res, err := s.w.ExecContext(ctx, `UPDATE jobs SET run_info = ? WHERE id = ?`, runInfo, id)
	return notFoundIfNone(res, err, id)
}

// JobSetArchive implements store.Store.
func (s *Store) JobSetArchive(ctx context.Context, id, digest string) error {
	res, err := s.w.ExecContext(ctx, `UPDATE jobs SET archive_digest = ? WHERE id = ?`, digest, id)
	return notFoundIfNone(res, err, id)
}

// JobHeartbeat implements store.Store.
func (s *Store) JobHeartbeat(ctx context.Context, id string, at time.Time) error {
	res, err := s.w.ExecContext(ctx, `UPDATE jobs SET heartbeat_at = ? WHERE id = ?`, nanos(at), id)
	return notFoundIfNone(res, err, id)
}

func notFoundIfNone(res sql.Result, err error, id string) error {
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return atlas.NotFoundf("job %s not found", id)
	}
	return nil
}

// JobDelete implements store.Store.
func (s *Store) JobDelete(ctx context.Context, id string) (*atlas.Job, []atlas.Artifact, error) {
	var (
		job  *atlas.Job
		arts []atlas.Artifact
	)
	err := s.tx(ctx, func(tx *sql.Tx) error {
		j, err := getJob(ctx, tx, id)
		if err != nil {
			return err
		}
		if !j.State.Finished() {
			return atlas.Conflictf("job %s is %s: only completed, failed or stopped jobs can be deleted (stop it first)", id, j.State)
		}
		rows, err := tx.QueryContext(ctx, `SELECT key, filename, digest, size, created_at FROM artifacts WHERE job_id = ?`, id)
		if err != nil {
			return err
		}
		if arts, err = scanArtifacts(rows); err != nil {
			return err
		}
		// Forget the project's columns that only this job used.
		for _, q := range []string{
			`DELETE FROM project_keys WHERE project = ?1 AND kind = 'param' AND key IN (SELECT key FROM params WHERE job_id = ?2)
				AND NOT EXISTS (SELECT 1 FROM params p JOIN jobs o ON o.id = p.job_id
					WHERE p.key = project_keys.key AND o.project = ?1 AND o.id != ?2)`,
			`DELETE FROM project_keys WHERE project = ?1 AND kind = 'metric' AND key IN (SELECT key FROM metric_summary WHERE job_id = ?2)
				AND NOT EXISTS (SELECT 1 FROM metric_summary m JOIN jobs o ON o.id = m.job_id
					WHERE m.key = project_keys.key AND o.project = ?1 AND o.id != ?2)`,
			`DELETE FROM jobs WHERE id = ?2`,
		} {
			if _, err := tx.ExecContext(ctx, q, j.Project, id); err != nil {
				return err
			}
		}
		job = j
		return nil
	})
	return job, arts, err
}

// JobsDeleteQueued implements store.Store.
func (s *Store) JobsDeleteQueued(ctx context.Context, project, user string) ([]*atlas.Job, error) {
	var out []*atlas.Job
	err := s.tx(ctx, func(tx *sql.Tx) error {
		q := `SELECT ` + jobColumns + ` FROM jobs j WHERE j.state = 'queued'`
		args := []any{}
		if project != "" {
			q += ` AND j.project = ?`
			args = append(args, project)
		}
		if user != "" {
			q += ` AND j.user = ?`
			args = append(args, user)
		}
		rows, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		if out, err = collectJobs(rows); err != nil {
			return err
		}
		for _, j := range out {
			if _, err := tx.ExecContext(ctx, `DELETE FROM jobs WHERE id = ?`, j.ID); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// BlobRefs implements store.Store.
func (s *Store) BlobRefs(ctx context.Context, digest string) (int, error) {
	var n int
	err := s.w.QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM jobs WHERE bundle_digest = ?1) +
		(SELECT COUNT(*) FROM jobs WHERE archive_digest = ?1) +
		(SELECT COUNT(*) FROM artifacts WHERE digest = ?1)`, digest).Scan(&n)
	return n, err
}

// sortColumn maps a plain sort column to SQL, and whether it can be NULL.
func sortColumn(col string) (expr string, nullable bool, err error) {
	switch col {
	case "", "created_at":
		return "j.created_at", false, nil
	case "state", "user", "project", "seq", "priority":
		return "j." + col, false, nil
	case "id", "job_id":
		return "j.id", false, nil
	case "started_at", "finished_at":
		return "j." + col, true, nil
	case "duration":
		return "(COALESCE(j.finished_at, CAST(strftime('%s','now') AS INTEGER) * 1000000000) - j.started_at)", true, nil
	}
	return "", false, atlas.Invalidf("cannot sort by %q: want created_at, started_at, finished_at, duration, state, user, id, param:<key> or metric:<key>", col)
}

func filterSQL(f store.Filter) (string, []any, error) {
	var (
		col     string // expression over j for plain columns
		sub     string // EXISTS subquery prefix for keyed columns
		numCol  = ""
		textCol = ""
		args    []any
	)
	switch {
	case f.Field == "state" || f.Field == "user" || f.Field == "project" || f.Field == "mode":
		col = "j." + f.Field
	case f.Field == "id" || f.Field == "job_id":
		col = "j.id"
	case f.Field == "created_at" || f.Field == "started_at" || f.Field == "finished_at":
		col = "(j." + f.Field + " / 1e9)"
	case f.Field == "duration":
		col = "((COALESCE(j.finished_at, CAST(strftime('%s','now') AS INTEGER) * 1000000000) - j.started_at) / 1e9)"
	case f.Field == "tag":
		sub, numCol, textCol = "SELECT 1 FROM tags x WHERE x.job_id = j.id", "NULL", "x.key"
	case strings.HasPrefix(f.Field, "param:"):
		sub, numCol, textCol = "SELECT 1 FROM params x WHERE x.job_id = j.id AND x.key = ?", "x.num", "x.value"
		args = append(args, strings.TrimPrefix(f.Field, "param:"))
	case strings.HasPrefix(f.Field, "metric:"):
		sub, numCol, textCol = "SELECT 1 FROM metric_summary x WHERE x.job_id = j.id AND x.key = ?", "x.last_num", "x.last"
		args = append(args, strings.TrimPrefix(f.Field, "metric:"))
	default:
		return "", nil, atlas.Invalidf("cannot filter by %q", f.Field)
	}
	var cond string
	target := col
	if sub != "" {
		target = textCol
	}
	switch f.Op {
	case "in":
		if len(f.Values) == 0 {
			return "", nil, atlas.Invalidf("filter %s: no values", f.Field)
		}
		if sub != "" && f.Field != "tag" {
			// Param and metric values are stored as JSON: match numbers by value, strings by text.
			var ors []string
			for _, v := range f.Values {
				ors = append(ors, "("+textCol+" = ? OR "+textCol+" = ?)")
				args = append(args, v, mustJSON(v))
			}
			cond = "(" + strings.Join(ors, " OR ") + ")"
		} else {
			cond = target + " IN (" + placeholders(len(f.Values)) + ")"
			args = append(args, anys(f.Values)...)
		}
	case "contains":
		if len(f.Values) != 1 {
			return "", nil, atlas.Invalidf("filter %s: contains needs one value", f.Field)
		}
		cond = target + " LIKE ? ESCAPE '\\'"
		args = append(args, "%"+likeEscape(f.Values[0])+"%")
	case "range":
		if sub != "" {
			target = numCol
		}
		var parts []string
		if f.Min != nil {
			parts, args = append(parts, target+" >= ?"), append(args, *f.Min)
		}
		if f.Max != nil {
			parts, args = append(parts, target+" <= ?"), append(args, *f.Max)
		}
		if len(parts) == 0 {
			return "", nil, atlas.Invalidf("filter %s: range needs a min or a max", f.Field)
		}
		cond = strings.Join(parts, " AND ")
	case "exists":
		if sub == "" {
			return "", nil, atlas.Invalidf("filter %s: exists applies to param:, metric: and tag", f.Field)
		}
		cond = "1"
	default:
		return "", nil, atlas.Invalidf("filter %s: unknown operator %q", f.Field, f.Op)
	}
	if sub != "" {
		return "EXISTS (" + sub + " AND " + cond + ")", args, nil
	}
	return cond, args, nil
}

func likeEscape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(s)
}

// JobList implements store.Store.
func (s *Store) JobList(ctx context.Context, p *store.JobListParams) ([]*atlas.Job, int, error) {
	var where []string
	var args []any
	if len(p.States) > 0 {
		where, args = append(where, "j.state IN ("+placeholders(len(p.States))+")"), append(args, anys(p.States)...)
	}
	for _, f := range p.Filters {
		c, a, err := filterSQL(f)
		if err != nil {
			return nil, 0, err
		}
		where, args = append(where, c), append(args, a...)
	}
	jobWhere, jobArgs := where, args
	if p.Project != "" {
		jobWhere, jobArgs = append([]string{"j.project = ?"}, where...), append([]any{p.Project}, args...)
	}
	var total int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM jobs j`+whereClause(jobWhere), jobArgs...).Scan(&total); err != nil {
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
	if kind, key, ok := keyedSort(p.Sort); ok {
		jobs, err := s.listByKey(ctx, p, kind, key, dir, where, args, limit)
		return jobs, total, err
	}
	expr, nullable, err := sortColumn(p.Sort)
	if err != nil {
		return nil, 0, err
	}
	order := fmt.Sprintf("%s %s, j.seq %s", expr, dir, dir)
	if nullable {
		order = fmt.Sprintf("(%s) IS NULL, ", expr) + order
	}
	q := `SELECT ` + jobColumns + ` FROM jobs j` + whereClause(jobWhere) + ` ORDER BY ` + order + ` LIMIT ? OFFSET ?`
	rows, err := s.r.QueryContext(ctx, q, append(jobArgs, limit, p.Offset)...)
	if err != nil {
		return nil, 0, err
	}
	jobs, err := collectJobs(rows)
	return jobs, total, err
}

// JobValues implements store.Store.
func (s *Store) JobValues(ctx context.Context, p *store.JobListParams, columns []string) (*store.Values, error) {
	var where []string
	var args []any
	if p.Project != "" {
		where, args = append(where, "j.project = ?"), append(args, p.Project)
	}
	if len(p.States) > 0 {
		where, args = append(where, "j.state IN ("+placeholders(len(p.States))+")"), append(args, anys(p.States)...)
	}
	for _, f := range p.Filters {
		c, a, err := filterSQL(f)
		if err != nil {
			return nil, err
		}
		where, args = append(where, c), append(args, a...)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT j.id, j.state, j.created_at FROM jobs j`+whereClause(where)+` ORDER BY j.seq`, args...)
	if err != nil {
		return nil, err
	}
	out := &store.Values{Columns: map[string][]any{}}
	index := map[string]int{}
	for rows.Next() {
		var id string
		var st atlas.State
		var at int64
		if err := rows.Scan(&id, &st, &at); err != nil {
			rows.Close()
			return nil, err
		}
		index[id] = len(out.IDs)
		out.IDs, out.States, out.CreatedAt = append(out.IDs, id), append(out.States, st), append(out.CreatedAt, time.Unix(0, at).UTC())
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, col := range columns {
		table, key, ok := keyedSort(col)
		if !ok {
			return nil, atlas.Invalidf("unknown column %q: want param:<key> or metric:<key>", col)
		}
		num, text := "num", "value"
		if table == "metric_summary" {
			num, text = "last_num", "last"
		}
		q := `SELECT job_id, ` + num + `, ` + text + ` FROM ` + table + ` WHERE key = ?`
		qargs := []any{key}
		if p.Project != "" {
			q, qargs = q+` AND project = ?`, append(qargs, p.Project)
		}
		vals := make([]any, len(out.IDs))
		rows, err := s.r.QueryContext(ctx, q, qargs...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id, raw string
			var n sql.NullFloat64
			if err := rows.Scan(&id, &n, &raw); err != nil {
				rows.Close()
				return nil, err
			}
			i, ok := index[id]
			if !ok {
				continue
			}
			if n.Valid && !strings.HasPrefix(raw, "t") && !strings.HasPrefix(raw, "f") { // booleans keep their JSON form
				vals[i] = n.Float64
				continue
			}
			var v any
			if err := json.Unmarshal([]byte(raw), &v); err != nil {
				rows.Close()
				return nil, err
			}
			vals[i] = v
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		out.Columns[col] = vals
	}
	return out, nil
}

func whereClause(conds []string) string {
	if len(conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(conds, " AND ")
}

func keyedSort(col string) (table, key string, ok bool) {
	if k, ok := strings.CutPrefix(col, "param:"); ok {
		return "params", k, true
	}
	if k, ok := strings.CutPrefix(col, "metric:"); ok {
		return "metric_summary", k, true
	}
	return "", "", false
}

// listByKey pages through jobs sorted by a param or metric in three runs, each read in index
// order: jobs with a numeric value, then jobs with a text value, then jobs without the key.
// Going through the (project, key, value) index keeps the first page of a 10,000-job project
// to a few dozen row lookups instead of a join and sort over every job.
func (s *Store) listByKey(ctx context.Context, p *store.JobListParams, table, key, dir string, where []string, args []any, limit int) ([]*atlas.Job, error) {
	num, text := "x.num", "x.value"
	if table == "metric_summary" {
		num, text = "x.last_num", "x.last"
	}
	keyWhere, keyArgs := []string{"x.key = ?"}, []any{key}
	if p.Project != "" {
		keyWhere, keyArgs = []string{"x.project = ?", "x.key = ?"}, []any{p.Project, key}
	}
	runs := []struct{ cond, order string }{
		{num + " IS NOT NULL", fmt.Sprintf("%s %s, j.seq %s", num, dir, dir)},
		{num + " IS NULL", fmt.Sprintf("%s %s, j.seq %s", text, dir, dir)},
	}
	var out []*atlas.Job
	offset := p.Offset
	for _, r := range runs {
		if len(out) >= limit {
			return out, nil
		}
		conds := append(append(append([]string{}, keyWhere...), r.cond), where...)
		cargs := append(append([]any{}, keyArgs...), args...)
		from := ` FROM ` + table + ` x JOIN jobs j ON j.id = x.job_id` + whereClause(conds)
		if offset > 0 {
			var n int
			if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*)`+from, cargs...).Scan(&n); err != nil {
				return nil, err
			}
			if offset >= n {
				offset -= n
				continue
			}
		}
		rows, err := s.r.QueryContext(ctx, `SELECT `+jobColumns+from+` ORDER BY `+r.order+` LIMIT ? OFFSET ?`,
			append(cargs, limit-len(out), offset)...)
		if err != nil {
			return nil, err
		}
		jobs, err := collectJobs(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, jobs...)
		offset = 0
	}
	if len(out) >= limit {
		return out, nil
	}
	conds := append([]string{"NOT EXISTS (SELECT 1 FROM " + table + " x WHERE x.job_id = j.id AND x.key = ?)"}, where...)
	cargs := append([]any{key}, args...)
	if p.Project != "" {
		conds, cargs = append([]string{"j.project = ?"}, conds...), append([]any{p.Project}, cargs...)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+jobColumns+` FROM jobs j`+whereClause(conds)+
		` ORDER BY j.seq `+dir+` LIMIT ? OFFSET ?`, append(cargs, limit-len(out), offset)...)
	if err != nil {
		return nil, err
	}
	jobs, err := collectJobs(rows)
	return append(out, jobs...), err
}
