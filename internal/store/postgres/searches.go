package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/store"
	"github.com/atlasgo/atlas/internal/store/sqlutil"
)

const searchColumns = `id, project, "user", state, reason, config, template, trials, created_at, finished_at`

func scanSearch(row pgx.Row) (*atlas.Search, error) {
	var (
		s          atlas.Search
		config     string
		createdAt  int64
		finishedAt *int64
	)
	if err := row.Scan(&s.ID, &s.Project, &s.User, &s.State, &s.Reason, &config, &s.Template, &s.Trials, &createdAt, &finishedAt); err != nil {
		return nil, err
	}
	s.Config = []byte(config)
	s.CreatedAt = time.Unix(0, createdAt).UTC()
	s.FinishedAt = fromNanos(finishedAt)
	return &s, nil
}

// getSearch reads a search; lock is "" or a locking clause such as FOR UPDATE.
func getSearch(ctx context.Context, q querier, id, lock string) (*atlas.Search, error) {
	s, err := scanSearch(q.QueryRow(ctx, `SELECT `+searchColumns+` FROM searches WHERE id = $1 `+lock, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, atlas.NotFoundf("search %s not found", id)
	}
	return s, err
}

// addTrial counts a job as a trial of its search, which must be running, in the transaction
// that inserts the job; the search's row stays locked until then, so a stop of the search
// either comes before (and the trial is refused) or after (and it stops the trial).
func addTrial(ctx context.Context, tx pgx.Tx, j *atlas.Job) error {
	s, err := getSearch(ctx, tx, j.SearchID, "FOR UPDATE")
	if err != nil {
		return err
	}
	if s.State != atlas.SearchRunning {
		return store.SearchStateConflict(s)
	}
	_, err = tx.Exec(ctx, `UPDATE searches SET trials = GREATEST(trials, $1) WHERE id = $2`, j.SearchTrial+1, j.SearchID)
	return err
}

// SearchInsert implements store.Store.
func (s *Store) SearchInsert(ctx context.Context, se *atlas.Search) error {
	if se.CreatedAt.IsZero() {
		se.CreatedAt = time.Now().UTC()
	}
	return s.tx(ctx, func(tx pgx.Tx) error {
		if err := ensureProject(ctx, tx, se.Project, se.CreatedAt); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO searches (id, project, "user", state, reason, config, template, trials, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, se.ID, se.Project, se.User, string(se.State), se.Reason,
			string(se.Config), sqlutil.JSON(se.Template), se.Trials, nanos(se.CreatedAt))
		if isViolation(err, uniqueViolation, "searches_pkey") {
			return atlas.Conflictf("search %s already exists", se.ID)
		}
		return err
	})
}

// SearchGet implements store.Store.
func (s *Store) SearchGet(ctx context.Context, id string) (*atlas.Search, error) {
	return getSearch(ctx, s.db, id, "")
}

// SearchList implements store.Store.
func (s *Store) SearchList(ctx context.Context, project string, states ...atlas.SearchState) ([]*atlas.Search, error) {
	var a args
	q := `SELECT ` + searchColumns + ` FROM searches WHERE TRUE`
	if project != "" {
		q += ` AND project = ` + a.add(project)
	}
	if len(states) > 0 {
		names := make([]string, len(states))
		for i, st := range states {
			names[i] = string(st)
		}
		q += ` AND state = ANY(` + a.add(names) + `)`
	}
	rows, err := s.db.Query(ctx, q+` ORDER BY created_at DESC, id`, a...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*atlas.Search, error) { return scanSearch(r) })
}

// SearchSetState implements store.Store.
func (s *Store) SearchSetState(ctx context.Context, id string, to atlas.SearchState, reason string) (*atlas.Search, error) {
	var out *atlas.Search
	err := s.tx(ctx, func(tx pgx.Tx) error {
		cur, err := getSearch(ctx, tx, id, "FOR UPDATE")
		if err != nil {
			return err
		}
		if !atlas.CanTransitionSearch(cur.State, to) {
			return store.SearchStateConflict(cur)
		}
		var finished *int64
		if to.Finished() {
			n := nanos(time.Now().UTC())
			finished = &n
		}
		out, err = scanSearch(tx.QueryRow(ctx, `UPDATE searches SET state = $1,
			reason = CASE WHEN $2 = '' THEN reason ELSE $2 END, finished_at = COALESCE($3, finished_at)
			WHERE id = $4 RETURNING `+searchColumns, string(to), reason, finished, id))
		return err
	})
	return out, err
}

// SearchTrials implements store.Store.
func (s *Store) SearchTrials(ctx context.Context, id string) ([]*atlas.Job, error) {
	return queryJobs(ctx, s.db, `SELECT `+jobColumns+` FROM jobs j WHERE j.search_id = $1 ORDER BY j.search_trial`, id)
}

// SearchRungAdd implements store.Store.
func (s *Store) SearchRungAdd(ctx context.Context, r *atlas.RungRecord) error {
	if r.CreatedAt.IsZero() {
		r.CreatedAt = time.Now().UTC()
	}
	err := s.db.QueryRow(ctx, `INSERT INTO search_rungs (search_id, job_id, trial, rung, step, value, stop, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING seq`, r.SearchID, r.JobID, r.Trial, r.Rung, r.Step, r.Value, r.Stop,
		nanos(r.CreatedAt)).Scan(&r.Seq)
	switch {
	case isViolation(err, uniqueViolation, ""):
		return atlas.Conflictf("trial %s of search %s has a decision at rung %d already", r.JobID, r.SearchID, r.Rung)
	case isViolation(err, foreignKeyViolation, ""):
		return atlas.NotFoundf("search %s not found", r.SearchID)
	}
	return err
}

// SearchRungs implements store.Store.
func (s *Store) SearchRungs(ctx context.Context, id string) ([]atlas.RungRecord, error) {
	rows, err := s.db.Query(ctx, `SELECT seq, search_id, job_id, trial, rung, step, value, stop, created_at
		FROM search_rungs WHERE search_id = $1 ORDER BY seq`, id)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (atlas.RungRecord, error) {
		var rec atlas.RungRecord
		var at int64
		err := r.Scan(&rec.Seq, &rec.SearchID, &rec.JobID, &rec.Trial, &rec.Rung, &rec.Step, &rec.Value, &rec.Stop, &at)
		rec.CreatedAt = time.Unix(0, at).UTC()
		return rec, err
	})
}
