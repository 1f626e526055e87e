package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/store"
	"github.com/atlasgo/atlas/internal/store/sqlutil"
)

// TrackBatch implements store.Store.
func (s *Store) TrackBatch(ctx context.Context, b *store.TrackBatch) (bool, error) {
	applied := false
	now := time.Now().UTC()
	err := s.tx(ctx, func(tx *txn) error {
		var project string
		err := tx.QueryRowContext(ctx, `SELECT project FROM jobs WHERE id = ?`, b.JobID).Scan(&project)
		if errors.Is(err, sql.ErrNoRows) {
			return atlas.NotFoundf("job %s not found", b.JobID)
		}
		if err != nil {
			return err
		}
		if b.Writer != "" {
			var last int64
			err := tx.QueryRowContext(ctx, `SELECT seq FROM writer_seqs WHERE job_id = ? AND writer = ?`, b.JobID, b.Writer).Scan(&last)
			switch {
			case err == nil && b.Seq <= last:
				return nil // a retry of a batch already stored
			case err != nil && !errors.Is(err, sql.ErrNoRows):
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO writer_seqs (job_id, writer, seq) VALUES (?, ?, ?)
				ON CONFLICT(job_id, writer) DO UPDATE SET seq = excluded.seq`, b.JobID, b.Writer, b.Seq); err != nil {
				return err
			}
		}
		for _, k := range sqlutil.SortedKeys(b.Params) {
			if err := addProjectKey(ctx, tx, project, "param", k); err != nil {
				return err
			}
			v := b.Params[k]
			if _, err := tx.ExecContext(ctx, `INSERT INTO params (job_id, project, key, value, num) VALUES (?, ?, ?, ?, ?)
				ON CONFLICT(job_id, key) DO UPDATE SET value = excluded.value, num = excluded.num`,
				b.JobID, project, k, sqlutil.JSON(v), sqlutil.Num(v)); err != nil {
				return err
			}
		}
		for _, k := range sqlutil.SortedKeys(b.Metrics) {
			if err := addProjectKey(ctx, tx, project, "metric", k); err != nil {
				return err
			}
			if err := appendMetric(ctx, tx, b.JobID, project, k, b.Metrics[k]); err != nil {
				return err
			}
		}
		for _, k := range sqlutil.SortedKeys(b.Tags) {
			if _, err := tx.ExecContext(ctx, `INSERT INTO tags (job_id, key, value) VALUES (?, ?, ?)
				ON CONFLICT(job_id, key) DO UPDATE SET value = excluded.value`, b.JobID, k, b.Tags[k]); err != nil {
				return err
			}
		}
		for _, a := range b.Artifacts {
			at := a.CreatedAt
			if at.IsZero() {
				at = now
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO artifacts (job_id, key, filename, digest, size, created_at)
				VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(job_id, key) DO UPDATE SET filename = excluded.filename,
				digest = excluded.digest, size = excluded.size, created_at = excluded.created_at`,
				b.JobID, a.Key, a.Filename, a.Digest, a.Size, nanos(at)); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE projects SET updated_at = ? WHERE name = ?`, nanos(now), project); err != nil {
			return err
		}
		applied = true
		return nil
	})
	return applied, err
}

func addProjectKey(ctx context.Context, tx *txn, project, kind, key string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO project_keys (project, kind, key) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
		project, kind, key)
	return err
}

func appendMetric(ctx context.Context, tx *txn, jobID, project, key string, pts []atlas.MetricPoint) error {
	if len(pts) == 0 {
		return nil
	}
	var count int64
	var minV, maxV *float64
	err := tx.QueryRowContext(ctx, `SELECT count, min, max FROM metric_summary WHERE job_id = ? AND key = ?`,
		jobID, key).Scan(&count, &minV, &maxV)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	m := sqlutil.AppendMetric(count, minV, maxV, pts)
	if _, err := tx.ExecContext(ctx, `INSERT INTO metric_chunks (job_id, key, steps, vals, times) VALUES (?, ?, ?, ?, ?)`,
		jobID, key, m.Steps, m.Values, m.Times); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO metric_summary (job_id, project, key, count, last, last_num, last_step, min, max)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(job_id, key) DO UPDATE SET count = excluded.count,
		last = excluded.last, last_num = excluded.last_num, last_step = excluded.last_step, min = excluded.min,
		max = excluded.max`, jobID, project, key, m.Count, m.Last, m.LastNum, m.LastStep, m.Min, m.Max)
	return err
}

// Params implements store.Store.
func (s *Store) Params(ctx context.Context, jobIDs []string) (map[string]map[string]any, error) {
	out := map[string]map[string]any{}
	err := s.forChunks(ctx, jobIDs, `SELECT job_id, key, value FROM params WHERE job_id IN (%s)`, func(rows *sql.Rows) error {
		var id, k, v string
		if err := rows.Scan(&id, &k, &v); err != nil {
			return err
		}
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
	err := s.forChunks(ctx, jobIDs, `SELECT job_id, key, count, last, last_step, min, max FROM metric_summary
		WHERE job_id IN (%s) ORDER BY job_id, key`, func(rows *sql.Rows) error {
		var (
			id, last string
			m        atlas.MetricSummary
			mn, mx   sql.NullFloat64
		)
		if err := rows.Scan(&id, &m.Key, &m.Count, &last, &m.LastStep, &mn, &mx); err != nil {
			return err
		}
		if err := json.Unmarshal([]byte(last), &m.Last); err != nil {
			return err
		}
		if mn.Valid {
			m.Min, m.Max = &mn.Float64, &mx.Float64
		}
		out[id] = append(out[id], m)
		return nil
	})
	return out, err
}

// forChunks runs a query with an IN list over ids, in slices small enough for SQLite's
// parameter limit, calling fn per row. Each length of list is a statement of its own, so these
// go around the statement cache (as the built queries of the job list do), which they would
// otherwise fill with statements run once.
func (s *Store) forChunks(ctx context.Context, ids []string, query string, fn func(*sql.Rows) error) error {
	const size = 500
	for start := 0; start < len(ids); start += size {
		part := ids[start:min(start+size, len(ids))]
		rows, err := s.r.DB.QueryContext(ctx, strings.Replace(query, "%s", placeholders(len(part)), 1), anys(part)...)
		if err != nil {
			return err
		}
		for rows.Next() {
			if err := fn(rows); err != nil {
				rows.Close()
				return err
			}
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if err := rows.Err(); err != nil {
			return err
		}
	}
	return nil
}

// MetricSeries implements store.Store.
func (s *Store) MetricSeries(ctx context.Context, jobID, key string) ([]atlas.MetricPoint, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT steps, vals, times FROM metric_chunks WHERE job_id = ? AND key = ? ORDER BY id`, jobID, key)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []atlas.MetricPoint
	for rows.Next() {
		var st, vs, ts string
		if err := rows.Scan(&st, &vs, &ts); err != nil {
			return nil, err
		}
		var (
			steps []int64
			vals  []any
			times []float64
		)
		if err := errors.Join(json.Unmarshal([]byte(st), &steps), json.Unmarshal([]byte(vs), &vals),
			json.Unmarshal([]byte(ts), &times)); err != nil {
			return nil, err
		}
		for i := range steps {
			out = append(out, atlas.MetricPoint{Step: steps[i], Value: vals[i], Time: times[i]})
		}
	}
	return out, rows.Err()
}

// Tags implements store.Store.
func (s *Store) Tags(ctx context.Context, jobIDs []string) (map[string]map[string]string, error) {
	out := map[string]map[string]string{}
	err := s.forChunks(ctx, jobIDs, `SELECT job_id, key, value FROM tags WHERE job_id IN (%s)`, func(rows *sql.Rows) error {
		var id, k, v string
		if err := rows.Scan(&id, &k, &v); err != nil {
			return err
		}
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
	res, err := s.w.ExecContext(ctx, `DELETE FROM tags WHERE job_id = ? AND key = ?`, jobID, key)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return atlas.NotFoundf("job %s has no tag %q", jobID, key)
	}
	return nil
}

func scanArtifacts(rows *sql.Rows) ([]atlas.Artifact, error) {
	defer rows.Close()
	var out []atlas.Artifact
	for rows.Next() {
		var a atlas.Artifact
		var at int64
		if err := rows.Scan(&a.Key, &a.Filename, &a.Digest, &a.Size, &at); err != nil {
			return nil, err
		}
		a.CreatedAt = time.Unix(0, at).UTC()
		out = append(out, a)
	}
	return out, rows.Err()
}

// Artifacts implements store.Store.
func (s *Store) Artifacts(ctx context.Context, jobID string) ([]atlas.Artifact, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT key, filename, digest, size, created_at FROM artifacts WHERE job_id = ? ORDER BY key`, jobID)
	if err != nil {
		return nil, err
	}
	return scanArtifacts(rows)
}
