package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"maps"
	"slices"
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
		w := newTrackWrites()
		if err := w.add(ctx, tx, project, b, now, false); err != nil {
			return err
		}
		if err := w.flush(ctx, tx); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE projects SET updated_at = ? WHERE name = ?`, nanos(now), project); err != nil {
			return err
		}
		applied = true
		return nil
	})
	return applied, err
}

// trackWrites gathers the rows that batches of tracked values add, to insert them many rows
// to a statement: a batch of a few values costs what it did row by row, and the many jobs of
// an import cost a few statements each, not one per value.
type trackWrites struct {
	keys                                       map[[3]string]bool // project, kind, key
	params, chunks, summaries, tags, artifacts *rowInserts
}

func newTrackWrites() *trackWrites {
	return &trackWrites{
		keys: map[[3]string]bool{},
		params: &rowInserts{head: `INSERT INTO params (job_id, project, key, value, num) VALUES `, cols: 5,
			tail: ` ON CONFLICT(job_id, key) DO UPDATE SET value = excluded.value, num = excluded.num`},
		chunks: &rowInserts{head: `INSERT INTO metric_chunks (job_id, key, steps, vals, times) VALUES `, cols: 5},
		summaries: &rowInserts{head: `INSERT INTO metric_summary (job_id, project, key, count, last, last_num, last_step,
			min, max) VALUES `, cols: 9, tail: ` ON CONFLICT(job_id, key) DO UPDATE SET count = excluded.count,
			last = excluded.last, last_num = excluded.last_num, last_step = excluded.last_step, min = excluded.min,
			max = excluded.max`},
		tags: &rowInserts{head: `INSERT INTO tags (job_id, key, value) VALUES `, cols: 3,
			tail: ` ON CONFLICT(job_id, key) DO UPDATE SET value = excluded.value`},
		artifacts: &rowInserts{head: `INSERT INTO artifacts (job_id, key, filename, digest, size, created_at) VALUES `,
			cols: 6, tail: ` ON CONFLICT(job_id, key) DO UPDATE SET filename = excluded.filename,
			digest = excluded.digest, size = excluded.size, created_at = excluded.created_at`},
	}
}

// add gathers a batch's params, metric points, tags and artifacts for a job of project. A
// fresh job has no values yet, so its metrics start at step 0 without reading their summaries.
// Writes reach the database by flush, or earlier when enough rows have gathered.
func (w *trackWrites) add(ctx context.Context, tx *txn, project string, b *store.TrackBatch, now time.Time, fresh bool) error {
	for _, k := range sqlutil.SortedKeys(b.Params) {
		w.keys[[3]string{project, "param", k}] = true
		v := b.Params[k]
		if err := w.params.add(ctx, tx, b.JobID, project, k, sqlutil.JSON(v), sqlutil.Num(v)); err != nil {
			return err
		}
	}
	for _, k := range sqlutil.SortedKeys(b.Metrics) {
		w.keys[[3]string{project, "metric", k}] = true
		pts := b.Metrics[k]
		if len(pts) == 0 {
			continue
		}
		var count int64
		var minV, maxV *float64
		if !fresh {
			err := tx.QueryRowContext(ctx, `SELECT count, min, max FROM metric_summary WHERE job_id = ? AND key = ?`,
				b.JobID, k).Scan(&count, &minV, &maxV)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		m := sqlutil.AppendMetric(count, minV, maxV, pts)
		if err := w.chunks.add(ctx, tx, b.JobID, k, m.Steps, m.Values, m.Times); err != nil {
			return err
		}
		if err := w.summaries.add(ctx, tx, b.JobID, project, k, m.Count, m.Last, m.LastNum, m.LastStep, m.Min, m.Max); err != nil {
			return err
		}
	}
	for _, k := range sqlutil.SortedKeys(b.Tags) {
		if err := w.tags.add(ctx, tx, b.JobID, k, b.Tags[k]); err != nil {
			return err
		}
	}
	for _, a := range b.Artifacts {
		at := a.CreatedAt
		if at.IsZero() {
			at = now
		}
		if err := w.artifacts.add(ctx, tx, b.JobID, a.Key, a.Filename, a.Digest, a.Size, nanos(at)); err != nil {
			return err
		}
	}
	return nil
}

// flush writes what add gathered: the project's new columns, then the rows left.
func (w *trackWrites) flush(ctx context.Context, tx *txn) error {
	for _, k := range slices.SortedFunc(maps.Keys(w.keys), func(a, b [3]string) int { return slices.Compare(a[:], b[:]) }) {
		if _, err := tx.ExecContext(ctx, `INSERT INTO project_keys (project, kind, key) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
			k[0], k[1], k[2]); err != nil {
			return err
		}
	}
	clear(w.keys)
	for _, r := range []*rowInserts{w.params, w.chunks, w.summaries, w.tags, w.artifacts} {
		if err := r.flush(ctx, tx); err != nil {
			return err
		}
	}
	return nil
}

// rowsPerInsert is how many rows a full multi-row insert carries; its statement is prepared
// once. The 9 columns of metric_summary make 576 parameters, far below SQLite's limit.
const rowsPerInsert = 64

// rowInserts gathers rows of one table and inserts them rowsPerInsert to a statement, the
// rows left at flush one to a statement (so that only two statements per table are cached).
// Rows are inserted in the order added, so later rows win an upsert.
type rowInserts struct {
	head, tail string
	cols       int
	args       []any
	full, one  string // the statements, built on first use
}

func (r *rowInserts) add(ctx context.Context, tx *txn, row ...any) error {
	r.args = append(r.args, row...)
	if len(r.args) < r.cols*rowsPerInsert {
		return nil
	}
	if r.full == "" {
		r.full = r.statement(rowsPerInsert)
	}
	_, err := tx.ExecContext(ctx, r.full, r.args...)
	r.args = r.args[:0]
	return err
}

func (r *rowInserts) flush(ctx context.Context, tx *txn) error {
	if r.one == "" && len(r.args) > 0 {
		r.one = r.statement(1)
	}
	for i := 0; i < len(r.args); i += r.cols {
		if _, err := tx.ExecContext(ctx, r.one, r.args[i:i+r.cols]...); err != nil {
			return err
		}
	}
	r.args = r.args[:0]
	return nil
}

func (r *rowInserts) statement(rows int) string {
	row := "(" + placeholders(r.cols) + ")"
	return r.head + strings.TrimSuffix(strings.Repeat(row+",", rows), ",") + r.tail
}

// Params implements store.Store.
func (s *Store) Params(ctx context.Context, jobIDs []string) (map[string]map[string]any, error) {
	out := map[string]map[string]any{}
	err := s.forChunks(ctx, jobIDs, `SELECT job_id, key, value, num FROM params WHERE job_id IN (%s)`, func(rows *sql.Rows) error {
		var (
			id, k, v string
			num      sql.NullFloat64
		)
		if err := rows.Scan(&id, &k, &v, &num); err != nil {
			return err
		}
		x, err := sqlutil.Value(num.Float64, num.Valid, v)
		if err != nil {
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
	err := s.forChunks(ctx, jobIDs, `SELECT job_id, key, count, last, last_num, last_step, min, max FROM metric_summary
		WHERE job_id IN (%s) ORDER BY job_id, key`, func(rows *sql.Rows) error {
		var (
			id, last        string
			m               atlas.MetricSummary
			lastNum, mn, mx sql.NullFloat64
		)
		if err := rows.Scan(&id, &m.Key, &m.Count, &last, &lastNum, &m.LastStep, &mn, &mx); err != nil {
			return err
		}
		var err error
		if m.Last, err = sqlutil.Value(lastNum.Float64, lastNum.Valid, last); err != nil {
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
