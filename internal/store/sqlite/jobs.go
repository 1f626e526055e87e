package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/store"
	"github.com/atlasgo/atlas/internal/store/sqlutil"
)

const jobColumns = `j.id, j.seq, j.project, j.user, j.state, j.mode, j.priority, j.parent_id, j.command,
	j.entrypoint, j.params, j.num_gpus, j.ram_gb, j.worker, j.run_as, j.bundle_digest, j.archive_digest, j.executor,
	j.gpu_ids, j.exit_code, j.reason, j.run_info, j.token_hash, j.created_at, j.started_at,
	j.finished_at, j.heartbeat_at, j.stopping_at, j.reported_exit_code, j.search_id, j.search_trial, j.name`

// returnedColumns are jobColumns in an UPDATE's RETURNING clause, which names no table.
var returnedColumns = strings.ReplaceAll(jobColumns, "j.", "")

type scanner interface{ Scan(...any) error }

func scanJob(sc scanner) (*atlas.Job, error) {
	var (
		j                                            atlas.Job
		command, entrypoint, params, worker, gpuIDs  string
		exitCode, startedAt, finishedAt, heartbeatAt sql.NullInt64
		stoppingAt, reported                         sql.NullInt64
		createdAt                                    int64
	)
	err := sc.Scan(&j.ID, &j.Seq, &j.Project, &j.User, &j.State, &j.Mode, &j.Priority, &j.ParentID, &command,
		&entrypoint, &params, &j.NumGPUs, &j.RAMGB, &worker, &j.RunAs, &j.BundleDigest, &j.ArchiveDigest, &j.Executor,
		&gpuIDs, &exitCode, &j.Reason, &j.RunInfo, &j.TokenHash, &createdAt, &startedAt,
		&finishedAt, &heartbeatAt, &stoppingAt, &reported, &j.SearchID, &j.SearchTrial, &j.Name)
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
	j.CreatedAt = time.Unix(0, createdAt).UTC()
	j.StartedAt = fromNanos(startedAt)
	j.FinishedAt = fromNanos(finishedAt)
	j.HeartbeatAt = fromNanos(heartbeatAt)
	j.StoppingAt = fromNanos(stoppingAt)
	if reported.Valid {
		c := int(reported.Int64)
		j.ReportedExitCode = &c
	}
	return &j, nil
}

func ensureProject(ctx context.Context, tx *txn, name string, at time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO projects (name, created_at, updated_at) VALUES (?, ?, ?)
		ON CONFLICT(name) DO UPDATE SET updated_at = excluded.updated_at`, name, nanos(at), nanos(at))
	return err
}

// JobInsert implements store.Store.
func (s *Store) JobInsert(ctx context.Context, j *atlas.Job) error {
	if j.CreatedAt.IsZero() {
		j.CreatedAt = time.Now().UTC()
	}
	return s.tx(ctx, func(tx *txn) error { return insertJob(ctx, tx, j, 0) })
}

// JobsImport implements store.Store.
func (s *Store) JobsImport(ctx context.Context, jobs []store.ImportedJob) error {
	if err := store.CheckImport(jobs); err != nil {
		return err
	}
	now := time.Now().UTC()
	// The jobs are written in the order of their ids, which most of the indexes their rows go
	// into begin with: each index is then filled in one sweep, not at random places (a large
	// import would otherwise read and write most of an index's pages once per job). Seqs
	// follow the order given.
	order := make([]int, len(jobs))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(jobs[a].Job.ID, jobs[b].Job.ID) })
	return s.tx(ctx, func(tx *txn) error {
		var next int64
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs`).Scan(&next); err != nil {
			return err
		}
		projects := map[string]bool{}
		w := newTrackWrites()
		for _, i := range order {
			ij := jobs[i]
			if err := insertJob(ctx, tx, ij.Job, next+int64(i)); err != nil {
				return err
			}
			projects[ij.Job.Project] = true
			if ij.Track == nil {
				continue
			}
			b := *ij.Track
			b.JobID = ij.Job.ID
			if err := w.add(ctx, tx, ij.Job.Project, &b, now, true); err != nil {
				return err
			}
		}
		if err := w.flush(ctx, tx); err != nil {
			return err
		}
		for p := range projects {
			if _, err := tx.ExecContext(ctx, `UPDATE projects SET updated_at = ? WHERE name = ?`, nanos(now), p); err != nil {
				return err
			}
		}
		return nil
	})
}

// insertJob stores a new job, its project if new, and gives it seq, or (when 0) the next
// seq after every job's.
func insertJob(ctx context.Context, tx *txn, j *atlas.Job, seq int64) error {
	if err := ensureProject(ctx, tx, j.Project, j.CreatedAt); err != nil {
		return err
	}
	if j.SearchID != "" {
		if err := addTrial(ctx, tx, j); err != nil {
			return err
		}
	}
	j.Seq = seq
	if seq == 0 {
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs`).Scan(&j.Seq); err != nil {
			return err
		}
	}
	var exitCode any
	if j.ExitCode != nil {
		exitCode = *j.ExitCode
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO jobs (id, seq, project, user, state, mode, priority, parent_id,
		command, entrypoint, params, num_gpus, ram_gb, worker, run_as, bundle_digest, archive_digest, executor, gpu_ids,
		exit_code, reason, run_info, token_hash, created_at, started_at, finished_at, heartbeat_at, search_id,
		search_trial, name)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		j.ID, j.Seq, j.Project, j.User, j.State, j.Mode, j.Priority, j.ParentID,
		sqlutil.JSON(sqlutil.NonNil(j.Command)), sqlutil.JSON(sqlutil.NonNil(j.Entrypoint)), sqlutil.JSON(j.Params), j.NumGPUs, j.RAMGB,
		sqlutil.JSON(j.Worker), j.RunAs, j.BundleDigest, j.ArchiveDigest, j.Executor, sqlutil.JSON(sqlutil.NonNil(j.GPUIDs)),
		exitCode, j.Reason, j.RunInfo, j.TokenHash, nanos(j.CreatedAt), nanosOrNil(j.StartedAt), nanosOrNil(j.FinishedAt),
		nanosOrNil(j.HeartbeatAt), j.SearchID, j.SearchTrial, j.Name)
	if err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed: jobs.id") {
		return atlas.Conflictf("job %s already exists", j.ID)
	}
	if err != nil || j.SearchID == "" {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO tags (job_id, key, value) VALUES (?, 'search', ?)`, j.ID, j.SearchID)
	return err
}

// JobGet implements store.Store.
func (s *Store) JobGet(ctx context.Context, id string) (*atlas.Job, error) {
	return getJob(ctx, s.r, id)
}

// JobIDsByPrefix implements store.Store. Job ids are ASCII letters, digits, '.', '_' and '-',
// all below 0x7f, so the ids that start with prefix are the range [prefix, prefix+"\x7f") of
// the primary key.
func (s *Store) JobIDsByPrefix(ctx context.Context, prefix string, limit int) ([]string, int, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, count(*) OVER () FROM jobs WHERE id >= ? AND id < ?
		ORDER BY length(id), id LIMIT ?`, prefix, prefix+"\x7f", limit)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var ids []string
	total := 0
	for rows.Next() {
		var id string
		if err := rows.Scan(&id, &total); err != nil {
			return nil, 0, err
		}
		ids = append(ids, id)
	}
	return ids, total, rows.Err()
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
func (s *Store) JobQueue(ctx context.Context, limit int) ([]store.QueueEntry, error) {
	if limit <= 0 {
		limit = -1 // no limit
	}
	rows, err := s.r.QueryContext(ctx, `SELECT id, num_gpus, created_at FROM jobs WHERE state = 'queued' ORDER BY priority DESC, seq ASC LIMIT ?`, limit)
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

// JobQueueHead implements store.Store.
func (s *Store) JobQueueHead(ctx context.Context, limit int) ([]*atlas.Job, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+jobColumns+` FROM jobs j WHERE j.state = 'queued'
		ORDER BY j.priority DESC, j.seq ASC LIMIT ?`, limit)
	if err != nil {
		return nil, err
	}
	return collectJobs(rows)
}

// JobQueuePosition implements store.Store: two counts of the queue's index, of the jobs of a
// higher priority and of those of the same priority submitted before.
func (s *Store) JobQueuePosition(ctx context.Context, id string) (int, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM jobs q WHERE q.state = 'queued' AND q.priority > j.priority) +
		(SELECT COUNT(*) FROM jobs q WHERE q.state = 'queued' AND q.priority = j.priority AND q.seq <= j.seq)
		FROM jobs j WHERE j.id = ? AND j.state = 'queued'`, id).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return n, err
}

// JobCounts implements store.Store.
func (s *Store) JobCounts(ctx context.Context, states ...atlas.State) (map[atlas.State]int, error) {
	q := `SELECT state, SUM(n) FROM job_counts GROUP BY state HAVING SUM(n) > 0`
	if len(states) > 0 {
		q = `SELECT state, SUM(n) FROM job_counts WHERE state IN (` + placeholders(len(states)) + `) GROUP BY state HAVING SUM(n) > 0`
	}
	rows, err := s.r.QueryContext(ctx, q, anys(states)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[atlas.State]int{}
	for rows.Next() {
		var st atlas.State
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, err
		}
		out[st] = n
	}
	return out, rows.Err()
}

// JobQueueOldest implements store.Store.
func (s *Store) JobQueueOldest(ctx context.Context) (time.Time, error) {
	var at int64
	err := s.r.QueryRowContext(ctx, `SELECT created_at FROM jobs WHERE state = 'queued' ORDER BY created_at LIMIT 1`).Scan(&at)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(0, at).UTC(), nil
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
	err := s.tx(ctx, func(tx *txn) error {
		j, err := getJob(ctx, tx, p.ID)
		if err != nil {
			return err
		}
		changes, err := sqlutil.StateChange(j, p, nanos(at))
		if err != nil {
			return err
		}
		sets := make([]string, len(changes))
		args := make([]any, len(changes))
		for i, c := range changes {
			sets[i], args[i] = c.Column+" = ?", c.Value
		}
		args = append(args, p.ID)
		if out, err = scanJob(tx.QueryRowContext(ctx, `UPDATE jobs SET `+strings.Join(sets, ", ")+` WHERE id = ? RETURNING `+returnedColumns,
			args...)); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE projects SET updated_at = ? WHERE name = ?`, nanos(at), j.Project)
		return err
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

// JobReportExit implements store.Store.
func (s *Store) JobReportExit(ctx context.Context, id string, code int, archive string, in []atlas.State) (*atlas.Job, error) {
	var out *atlas.Job
	err := s.tx(ctx, func(tx *txn) error {
		j, err := getJob(ctx, tx, id)
		if err != nil {
			return err
		}
		if !slices.Contains(in, j.State) {
			return store.StateConflict(j)
		}
		out, err = scanJob(tx.QueryRowContext(ctx, `UPDATE jobs SET reported_exit_code = ?,
			archive_digest = CASE WHEN ? = '' THEN archive_digest ELSE ? END WHERE id = ? RETURNING `+returnedColumns,
			code, archive, archive, id))
		return err
	})
	return out, err
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
func (s *Store) JobDelete(ctx context.Context, id string, in []atlas.State) (*atlas.Job, []atlas.Artifact, error) {
	var (
		job  *atlas.Job
		arts []atlas.Artifact
	)
	err := s.tx(ctx, func(tx *txn) error {
		j, err := getJob(ctx, tx, id)
		if err != nil {
			return err
		}
		if !slices.Contains(in, j.State) {
			return store.StateConflict(j)
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
				AND NOT EXISTS (SELECT 1 FROM params p
					WHERE p.project = ?1 AND p.key = project_keys.key AND p.job_id != ?2)`,
			`DELETE FROM project_keys WHERE project = ?1 AND kind = 'metric' AND key IN (SELECT key FROM metric_summary WHERE job_id = ?2)
				AND NOT EXISTS (SELECT 1 FROM metric_summary m
					WHERE m.project = ?1 AND m.key = project_keys.key AND m.job_id != ?2)`,
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
	err := s.tx(ctx, func(tx *txn) error {
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
		(SELECT COUNT(*) FROM artifacts WHERE digest = ?1) +
		(SELECT COUNT(*) FROM searches WHERE finished_at IS NULL AND json_extract(template, '$.bundle_digest') = ?1)`, digest).Scan(&n)
	return n, err
}
