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
	"github.com/atlasgo/atlas/internal/store/sqlutil"
)

const searchColumns = `id, project, user, state, reason, config, template, trials, created_at, finished_at`

func scanSearch(sc scanner) (*atlas.Search, error) {
	var (
		s                atlas.Search
		config, template string
		createdAt        int64
		finishedAt       sql.NullInt64
	)
	if err := sc.Scan(&s.ID, &s.Project, &s.User, &s.State, &s.Reason, &config, &template, &s.Trials, &createdAt, &finishedAt); err != nil {
		return nil, err
	}
	s.Config = []byte(config)
	if err := json.Unmarshal([]byte(template), &s.Template); err != nil {
		return nil, fmt.Errorf("search %s: decode template: %w", s.ID, err)
	}
	s.CreatedAt = time.Unix(0, createdAt).UTC()
	s.FinishedAt = fromNanos(finishedAt)
	return &s, nil
}

func getSearch(ctx context.Context, q querier, id string) (*atlas.Search, error) {
	s, err := scanSearch(q.QueryRowContext(ctx, `SELECT `+searchColumns+` FROM searches WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, atlas.NotFoundf("search %s not found", id)
	}
	return s, err
}

// addTrial counts a job as a trial of its search, which must be running, in the transaction
// that inserts the job.
func addTrial(ctx context.Context, tx *txn, j *atlas.Job) error {
	s, err := getSearch(ctx, tx, j.SearchID)
	if err != nil {
		return err
	}
	if s.State != atlas.SearchRunning {
		return store.SearchStateConflict(s)
	}
	_, err = tx.ExecContext(ctx, `UPDATE searches SET trials = MAX(trials, ?) WHERE id = ?`, j.SearchTrial+1, j.SearchID)
	return err
}

// SearchInsert implements store.Store.
func (s *Store) SearchInsert(ctx context.Context, se *atlas.Search) error {
	if se.CreatedAt.IsZero() {
		se.CreatedAt = time.Now().UTC()
	}
	return s.tx(ctx, func(tx *txn) error {
		if err := ensureProject(ctx, tx, se.Project, se.CreatedAt); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO searches (id, project, user, state, reason, config, template, trials, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, se.ID, se.Project, se.User, se.State, se.Reason, string(se.Config),
			sqlutil.JSON(se.Template), se.Trials, nanos(se.CreatedAt))
		if err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed: searches.id") {
			return atlas.Conflictf("search %s already exists", se.ID)
		}
		return err
	})
}

// SearchGet implements store.Store.
func (s *Store) SearchGet(ctx context.Context, id string) (*atlas.Search, error) {
	return getSearch(ctx, s.r, id)
}

// SearchList implements store.Store.
func (s *Store) SearchList(ctx context.Context, project string, states ...atlas.SearchState) ([]*atlas.Search, error) {
	q := `SELECT ` + searchColumns + ` FROM searches WHERE 1 = 1`
	var args []any
	if project != "" {
		q += ` AND project = ?`
		args = append(args, project)
	}
	if len(states) > 0 {
		q += ` AND state IN (` + placeholders(len(states)) + `)`
		args = append(args, anys(states)...)
	}
	rows, err := s.r.QueryContext(ctx, q+` ORDER BY created_at DESC, id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*atlas.Search
	for rows.Next() {
		se, err := scanSearch(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, se)
	}
	return out, rows.Err()
}

// SearchSetState implements store.Store.
func (s *Store) SearchSetState(ctx context.Context, id string, to atlas.SearchState, reason string) (*atlas.Search, error) {
	var out *atlas.Search
	err := s.tx(ctx, func(tx *txn) error {
		cur, err := getSearch(ctx, tx, id)
		if err != nil {
			return err
		}
		if !atlas.CanTransitionSearch(cur.State, to) {
			return store.SearchStateConflict(cur)
		}
		var finished any
		if to.Finished() {
			finished = nanos(time.Now().UTC())
		}
		if _, err := tx.ExecContext(ctx, `UPDATE searches SET state = ?, reason = CASE WHEN ? = '' THEN reason ELSE ? END,
			finished_at = COALESCE(?, finished_at) WHERE id = ?`, to, reason, reason, finished, id); err != nil {
			return err
		}
		out, err = getSearch(ctx, tx, id)
		return err
	})
	return out, err
}

// SearchTrials implements store.Store.
func (s *Store) SearchTrials(ctx context.Context, id string) ([]*atlas.Job, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+jobColumns+` FROM jobs j WHERE j.search_id = ? ORDER BY j.search_trial`, id)
	if err != nil {
		return nil, err
	}
	return collectJobs(rows)
}

// SearchRungAdd implements store.Store.
func (s *Store) SearchRungAdd(ctx context.Context, r *atlas.RungRecord) error {
	if r.CreatedAt.IsZero() {
		r.CreatedAt = time.Now().UTC()
	}
	err := s.w.QueryRowContext(ctx, `INSERT INTO search_rungs (search_id, job_id, trial, rung, step, value, stop, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq`, r.SearchID, r.JobID, r.Trial, r.Rung, r.Step, r.Value, r.Stop,
		nanos(r.CreatedAt)).Scan(&r.Seq)
	switch {
	case err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed"):
		return atlas.Conflictf("trial %s of search %s has a decision at rung %d already", r.JobID, r.SearchID, r.Rung)
	case err != nil && strings.Contains(err.Error(), "FOREIGN KEY constraint failed"):
		return atlas.NotFoundf("search %s not found", r.SearchID)
	}
	return err
}

// SearchRungs implements store.Store.
func (s *Store) SearchRungs(ctx context.Context, id string) ([]atlas.RungRecord, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT seq, search_id, job_id, trial, rung, step, value, stop, created_at
		FROM search_rungs WHERE search_id = ? ORDER BY seq`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []atlas.RungRecord
	for rows.Next() {
		var r atlas.RungRecord
		var at int64
		if err := rows.Scan(&r.Seq, &r.SearchID, &r.JobID, &r.Trial, &r.Rung, &r.Step, &r.Value, &r.Stop, &at); err != nil {
			return nil, err
		}
		r.CreatedAt = time.Unix(0, at).UTC()
		out = append(out, r)
	}
	return out, rows.Err()
}
