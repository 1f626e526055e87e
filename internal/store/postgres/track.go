package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/store"
	"github.com/atlasgo/atlas/internal/store/sqlutil"
)

// TrackBatch implements store.Store.
//
// The job's row is locked first, so the batches of one job apply one after another (a
// negative step counts the points before it). The writes go to the server in one pipelined
// pgx.Batch: a batch costs the same few round trips whatever its size.
func (s *Store) TrackBatch(ctx context.Context, b *store.TrackBatch) (bool, error) {
	applied := false
	now := time.Now().UTC()
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var project string
		err := tx.QueryRow(ctx, `SELECT project FROM jobs WHERE id = $1 FOR NO KEY UPDATE`, b.JobID).Scan(&project)
		if errors.Is(err, pgx.ErrNoRows) {
			return atlas.NotFoundf("job %s not found", b.JobID)
		}
		if err != nil {
			return err
		}
		if b.Writer != "" {
			// Stored when the writer is new or its last seq is older; a retry changes nothing.
			tag, err := tx.Exec(ctx, `INSERT INTO writer_seqs (job_id, writer, seq) VALUES ($1, $2, $3)
				ON CONFLICT (job_id, writer) DO UPDATE SET seq = excluded.seq WHERE writer_seqs.seq < excluded.seq`,
				b.JobID, b.Writer, b.Seq)
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 0 {
				return nil // a retry of a batch already stored
			}
		}
		summaries, err := metricSummaries(ctx, tx, b.JobID, sqlutil.SortedKeys(b.Metrics))
		if err != nil {
			return err
		}

		var w pgx.Batch
		queueTrack(&w, project, b, summaries, now)
		w.Queue(`UPDATE projects SET updated_at = $1 WHERE name = $2`, nanos(now), project)
		if err := tx.SendBatch(ctx, &w).Close(); err != nil {
			return err
		}
		applied = true
		return nil
	})
	return applied, err
}

// queueTrack queues the statements that store a batch's params, metric points (appended to
// the summaries the job has, by key), tags and artifacts for a job of project.
func queueTrack(w *pgx.Batch, project string, b *store.TrackBatch, summaries map[string]summary, now time.Time) {
	paramKeys := sqlutil.SortedKeys(b.Params)
	lockProjectKeys(w, project, "param", paramKeys)
	for _, k := range paramKeys {
		v := b.Params[k]
		w.Queue(`INSERT INTO params (job_id, project, key, value, num) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (job_id, key) DO UPDATE SET value = excluded.value, num = excluded.num`,
			b.JobID, project, k, sqlutil.JSON(v), sqlutil.Num(v))
	}
	metricKeys := sqlutil.SortedKeys(b.Metrics)
	lockProjectKeys(w, project, "metric", metricKeys)
	for _, k := range metricKeys {
		pts := b.Metrics[k]
		if len(pts) == 0 {
			continue
		}
		prev := summaries[k]
		m := sqlutil.AppendMetric(prev.count, prev.min, prev.max, pts)
		w.Queue(`INSERT INTO metric_chunks (job_id, key, steps, vals, times) VALUES ($1, $2, $3, $4, $5)`,
			b.JobID, k, m.Steps, m.Values, m.Times)
		w.Queue(`INSERT INTO metric_summary (job_id, project, key, count, last, last_num, last_step, min, max)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (job_id, key) DO UPDATE SET count = excluded.count,
			last = excluded.last, last_num = excluded.last_num, last_step = excluded.last_step, min = excluded.min,
			max = excluded.max`, b.JobID, project, k, m.Count, m.Last, m.LastNum, m.LastStep, m.Min, m.Max)
	}
	for _, k := range sqlutil.SortedKeys(b.Tags) {
		w.Queue(`INSERT INTO tags (job_id, key, value) VALUES ($1, $2, $3)
			ON CONFLICT (job_id, key) DO UPDATE SET value = excluded.value`, b.JobID, k, b.Tags[k])
	}
	for _, a := range b.Artifacts {
		at := a.CreatedAt
		if at.IsZero() {
			at = now
		}
		w.Queue(`INSERT INTO artifacts (job_id, key, filename, digest, size, created_at)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (job_id, key) DO UPDATE SET filename = excluded.filename,
			digest = excluded.digest, size = excluded.size, created_at = excluded.created_at`,
			b.JobID, a.Key, a.Filename, a.Digest, a.Size, nanos(at))
	}
}

// lockProjectKeys queues the statements that make keys columns of a project and keep them so
// until the batch commits: a key-share lock on those that exist, which JobDelete's removal of a
// column it thinks unused waits for, then an insert of those that don't. In that order, a
// column removed meanwhile is inserted again.
func lockProjectKeys(w *pgx.Batch, project, kind string, keys []string) {
	if len(keys) == 0 {
		return
	}
	w.Queue(`SELECT 1 FROM project_keys WHERE project = $1 AND kind = $2 AND key = ANY($3) ORDER BY key FOR KEY SHARE`,
		project, kind, keys)
	w.Queue(`INSERT INTO project_keys (project, kind, key) SELECT $1, $2, k FROM unnest($3::text[]) AS k
		ON CONFLICT DO NOTHING`, project, kind, keys)
}

type summary struct {
	count    int64
	min, max *float64
}

// metricSummaries reads the summaries of a job's metrics that a batch appends to.
func metricSummaries(ctx context.Context, tx pgx.Tx, jobID string, keys []string) (map[string]summary, error) {
	out := map[string]summary{}
	if len(keys) == 0 {
		return out, nil
	}
	rows, err := tx.Query(ctx, `SELECT key, count, min, max FROM metric_summary WHERE job_id = $1 AND key = ANY($2)`, jobID, keys)
	if err != nil {
		return nil, err
	}
	var (
		k string
		m summary
	)
	_, err = pgx.ForEachRow(rows, []any{&k, &m.count, &m.min, &m.max}, func() error {
		out[k] = m
		return nil
	})
	return out, err
}

// Params implements store.Store.
func (s *Store) Params(ctx context.Context, jobIDs []string) (map[string]map[string]any, error) {
	out := map[string]map[string]any{}
	rows, err := s.db.Query(ctx, `SELECT job_id, key, value FROM params WHERE job_id = ANY($1)`, jobIDs)
	if err != nil {
		return nil, err
	}
	var id, k, v string
	_, err = pgx.ForEachRow(rows, []any{&id, &k, &v}, func() error {
		var x any
		if err := json.Unmarshal([]byte(v), &x); err != nil {
			return err
		}
		if out[id] == nil {
			out[id] = map[string]any{}
		}
		out[id][k] = x
		return nil
	})
	return out, err
}

// MetricSummaries implements store.Store.
func (s *Store) MetricSummaries(ctx context.Context, jobIDs []string) (map[string][]atlas.MetricSummary, error) {
	out := map[string][]atlas.MetricSummary{}
	rows, err := s.db.Query(ctx, `SELECT job_id, key, count, last, last_step, min, max FROM metric_summary
		WHERE job_id = ANY($1) ORDER BY job_id, key`, jobIDs)
	if err != nil {
		return nil, err
	}
	var (
		id, last string
		m        atlas.MetricSummary
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &m.Key, &m.Count, &last, &m.LastStep, &m.Min, &m.Max}, func() error {
		if err := json.Unmarshal([]byte(last), &m.Last); err != nil {
			return err
		}
		out[id] = append(out[id], m)
		return nil
	})
	return out, err
}

// MetricSeries implements store.Store.
func (s *Store) MetricSeries(ctx context.Context, jobID, key string) ([]atlas.MetricPoint, error) {
	rows, err := s.db.Query(ctx, `SELECT steps, vals, times FROM metric_chunks WHERE job_id = $1 AND key = $2 ORDER BY id`, jobID, key)
	if err != nil {
		return nil, err
	}
	var (
		out        []atlas.MetricPoint
		st, vs, ts string
	)
	_, err = pgx.ForEachRow(rows, []any{&st, &vs, &ts}, func() error {
		var (
			steps []int64
			vals  []any
			times []float64
		)
		if err := errors.Join(json.Unmarshal([]byte(st), &steps), json.Unmarshal([]byte(vs), &vals),
			json.Unmarshal([]byte(ts), &times)); err != nil {
			return err
		}
		for i := range steps {
			out = append(out, atlas.MetricPoint{Step: steps[i], Value: vals[i], Time: times[i]})
		}
		return nil
	})
	return out, err
}

// Tags implements store.Store.
func (s *Store) Tags(ctx context.Context, jobIDs []string) (map[string]map[string]string, error) {
	out := map[string]map[string]string{}
	rows, err := s.db.Query(ctx, `SELECT job_id, key, value FROM tags WHERE job_id = ANY($1)`, jobIDs)
	if err != nil {
		return nil, err
	}
	var id, k, v string
	_, err = pgx.ForEachRow(rows, []any{&id, &k, &v}, func() error {
		if out[id] == nil {
			out[id] = map[string]string{}
		}
		out[id][k] = v
		return nil
	})
	return out, err
}

// TagDelete implements store.Store.
func (s *Store) TagDelete(ctx context.Context, jobID, key string) error {
	tag, err := s.db.Exec(ctx, `DELETE FROM tags WHERE job_id = $1 AND key = $2`, jobID, key)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return atlas.NotFoundf("job %s has no tag %q", jobID, key)
	}
	return nil
}

// queryArtifacts reads the artifacts that where (a WHERE clause over artifacts) selects.
func queryArtifacts(ctx context.Context, q querier, where string, args ...any) ([]atlas.Artifact, error) {
	rows, err := q.Query(ctx, `SELECT key, filename, digest, size, created_at FROM artifacts `+where, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (atlas.Artifact, error) {
		var a atlas.Artifact
		var at int64
		err := r.Scan(&a.Key, &a.Filename, &a.Digest, &a.Size, &at)
		a.CreatedAt = time.Unix(0, at).UTC()
		return a, err
	})
}

// Artifacts implements store.Store.
func (s *Store) Artifacts(ctx context.Context, jobID string) ([]atlas.Artifact, error) {
	return queryArtifacts(ctx, s.db, `WHERE job_id = $1 ORDER BY key`, jobID)
}
