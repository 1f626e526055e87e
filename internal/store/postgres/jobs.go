package postgres

import (
	"context"
	"errors"
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
	j.finished_at, j.heartbeat_at, j.stopping_at, j.reported_exit_code, j.search_id, j.search_trial, j.name`

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
		&finishedAt, &heartbeatAt, &stoppingAt, &j.ReportedExitCode, &j.SearchID, &j.SearchTrial, &j.Name)
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
		if j.SearchID != "" {
			if err := addTrial(ctx, tx, j); err != nil {
				return err
			}
		}
		err := tx.QueryRow(ctx, insertJobSQL, insertJobArgs(j)...).Scan(&j.Seq)
		if err != nil || j.SearchID == "" {
			return insertJobErr(j, err)
		}
		_, err = tx.Exec(ctx, `INSERT INTO tags (job_id, key, value) VALUES ($1, 'search', $2)`, j.ID, j.SearchID)
		return err
	})
}

// insertJobSQL stores a new job (of a project that exists) and returns its seq, which comes
// from an identity column: concurrent submitters never draw the same one.
const insertJobSQL = `INSERT INTO jobs (id, project, "user", state, mode, priority, parent_id,
	command, entrypoint, params, num_gpus, ram_gb, worker, run_as, bundle_digest, archive_digest, executor, gpu_ids,
	exit_code, reason, run_info, token_hash, created_at, started_at, finished_at, heartbeat_at, search_id,
	search_trial, name)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24,
	$25, $26, $27, $28, $29) RETURNING seq`

func insertJobArgs(j *atlas.Job) []any {
	return []any{j.ID, j.Project, j.User, string(j.State), string(j.Mode), j.Priority, j.ParentID,
		sqlutil.JSON(sqlutil.NonNil(j.Command)), sqlutil.JSON(sqlutil.NonNil(j.Entrypoint)), sqlutil.JSON(j.Params), j.NumGPUs, j.RAMGB,
		sqlutil.JSON(j.Worker), j.RunAs, j.BundleDigest, j.ArchiveDigest, j.Executor, sqlutil.JSON(sqlutil.NonNil(j.GPUIDs)),
		j.ExitCode, j.Reason, j.RunInfo, j.TokenHash, nanos(j.CreatedAt), nanosOrNull(j.StartedAt), nanosOrNull(j.FinishedAt),
		nanosOrNull(j.HeartbeatAt), j.SearchID, j.SearchTrial, j.Name}
}

// insertJobErr is the error of inserting j: a Conflict when its id exists.
func insertJobErr(j *atlas.Job, err error) error {
	if isViolation(err, uniqueViolation, "jobs_pkey") {
		return atlas.Conflictf("job %s already exists", j.ID)
	}
	return err
}

// JobsImport implements store.Store. Each job and what it tracked go to the server in one
// pipelined batch.
func (s *Store) JobsImport(ctx context.Context, jobs []store.ImportedJob) error {
	if err := store.CheckImport(jobs); err != nil {
		return err
	}
	now := time.Now().UTC()
	return s.tx(ctx, func(tx pgx.Tx) error {
		projects := map[string]bool{}
		for _, ij := range jobs {
			j := ij.Job
			if !projects[j.Project] {
				if err := ensureProject(ctx, tx, j.Project, j.CreatedAt); err != nil {
					return err
				}
				projects[j.Project] = true
			}
			var w pgx.Batch
			w.Queue(insertJobSQL, insertJobArgs(j)...).QueryRow(func(row pgx.Row) error { return row.Scan(&j.Seq) })
			if ij.Track != nil {
				b := *ij.Track
				b.JobID = j.ID
				queueTrack(&w, j.Project, &b, nil, now)
			}
			if err := tx.SendBatch(ctx, &w).Close(); err != nil {
				return insertJobErr(j, err)
			}
		}
		for p := range projects {
			if _, err := tx.Exec(ctx, `UPDATE projects SET updated_at = $1 WHERE name = $2`, nanos(now), p); err != nil {
				return err
			}
		}
		return nil
	})
}

// JobGet implements store.Store.
func (s *Store) JobGet(ctx context.Context, id string) (*atlas.Job, error) {
	return getJob(ctx, s.db, id, "")
}

// JobIDsByPrefix implements store.Store. Job ids are ASCII letters, digits, '.', '_' and '-',
// all below 0x7f, and the id column sorts bytewise (COLLATE "C"), so the ids that start with
// prefix are the range [prefix, prefix+"\x7f") of the primary key.
func (s *Store) JobIDsByPrefix(ctx context.Context, prefix string, limit int) ([]string, int, error) {
	rows, err := s.db.Query(ctx, `SELECT id, count(*) OVER () FROM jobs WHERE id >= $1 AND id < $2
		ORDER BY length(id), id LIMIT $3`, prefix, prefix+"\x7f", limit)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var ids []string
	var total int64
	for rows.Next() {
		var id string
		if err := rows.Scan(&id, &total); err != nil {
			return nil, 0, err
		}
		ids = append(ids, id)
	}
	return ids, int(total), rows.Err()
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
func (s *Store) JobQueue(ctx context.Context, limit int) ([]store.QueueEntry, error) {
	var lim *int // NULL: no limit
	if limit > 0 {
		lim = &limit
	}
	rows, err := s.db.Query(ctx, `SELECT id, num_gpus, created_at FROM jobs WHERE state = 'queued' ORDER BY priority DESC, seq ASC LIMIT $1`, lim)
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

// JobQueueHead implements store.Store.
func (s *Store) JobQueueHead(ctx context.Context, limit int) ([]*atlas.Job, error) {
	if limit <= 0 {
		return nil, nil
	}
	return queryJobs(ctx, s.db, `SELECT `+jobColumns+` FROM jobs j WHERE j.state = 'queued'
		ORDER BY j.priority DESC, j.seq ASC LIMIT $1`, limit)
}

// JobQueuePosition implements store.Store: two counts of the queue's index, of the jobs of a
// higher priority and of those of the same priority submitted before.
func (s *Store) JobQueuePosition(ctx context.Context, id string) (int, error) {
	var n int
	err := s.db.QueryRow(ctx, `SELECT
		(SELECT COUNT(*) FROM jobs q WHERE q.state = 'queued' AND q.priority > j.priority) +
		(SELECT COUNT(*) FROM jobs q WHERE q.state = 'queued' AND q.priority = j.priority AND q.seq <= j.seq)
		FROM jobs j WHERE j.id = $1 AND j.state = 'queued'`, id).Scan(&n)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	return n, err
}

// JobCounts implements store.Store.
func (s *Store) JobCounts(ctx context.Context, states ...atlas.State) (map[atlas.State]int, error) {
	// Two texts, not one with "$1 IS NULL OR": a plan made for the first would read every job
	// even when the states are given, instead of the (state, created_at) index.
	q, args := `SELECT state, COUNT(*) FROM jobs GROUP BY state`, []any(nil)
	if len(states) > 0 {
		q, args = `SELECT state, COUNT(*) FROM jobs WHERE state = ANY($1) GROUP BY state`, []any{stateNames(states)}
	}
	rows, err := s.db.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[atlas.State]int{}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, err
		}
		out[atlas.State(st)] = n
	}
	return out, rows.Err()
}

// JobQueueOldest implements store.Store.
func (s *Store) JobQueueOldest(ctx context.Context) (time.Time, error) {
	var at int64
	err := s.db.QueryRow(ctx, `SELECT created_at FROM jobs WHERE state = 'queued' ORDER BY created_at LIMIT 1`).Scan(&at)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(0, at).UTC(), nil
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

// JobReportExit implements store.Store.
func (s *Store) JobReportExit(ctx context.Context, id string, code int, archive string, in []atlas.State) (*atlas.Job, error) {
	var out *atlas.Job
	err := s.tx(ctx, func(tx pgx.Tx) error {
		j, err := getJob(ctx, tx, id, "FOR UPDATE")
		if err != nil {
			return err
		}
		if !slices.Contains(in, j.State) {
			return store.StateConflict(j)
		}
		out, err = scanJob(tx.QueryRow(ctx, `UPDATE jobs j SET reported_exit_code = $1,
			archive_digest = CASE WHEN $2 = '' THEN j.archive_digest ELSE $2 END WHERE j.id = $3 RETURNING `+jobColumns,
			code, archive, id))
		return err
	})
	return out, err
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
				AND NOT EXISTS (SELECT 1 FROM params p
					WHERE p.project = $1 AND p.key = project_keys.key AND p.job_id <> $2)`,
			`DELETE FROM project_keys WHERE project = $1 AND kind = 'metric' AND key IN (SELECT key FROM metric_summary WHERE job_id = $2)
				AND NOT EXISTS (SELECT 1 FROM metric_summary m
					WHERE m.project = $1 AND m.key = project_keys.key AND m.job_id <> $2)`,
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
		(SELECT COUNT(*) FROM artifacts WHERE digest = $1) +
		(SELECT COUNT(*) FROM searches WHERE finished_at IS NULL AND template->>'bundle_digest' = $1)`, digest).Scan(&n)
	return n, err
}
