package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/store"
)

// ProjectList implements store.Store.
func (s *Store) ProjectList(ctx context.Context) ([]store.Project, error) {
	rows, err := s.db.Query(ctx, `SELECT p.name, p.created_at, p.updated_at, p.description, COALESCE(e.editor, ''), e.created_at
		FROM projects p LEFT JOIN description_edits e ON e.id = (SELECT MAX(id) FROM description_edits WHERE project = p.name)
		ORDER BY p.updated_at DESC`)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Project, error) {
		var p store.Project
		var c, u int64
		var edited *int64
		err := r.Scan(&p.Name, &c, &u, &p.Description, &p.DescriptionBy, &edited)
		p.CreatedAt, p.LastActivity = time.Unix(0, c).UTC(), time.Unix(0, u).UTC()
		if edited != nil {
			at := time.Unix(0, *edited).UTC()
			p.DescriptionAt = &at
		}
		p.Counts = map[atlas.State]int{}
		p.Tags, p.Users = []string{}, []string{}
		return p, err
	})
	if err != nil {
		return nil, err
	}
	idx := map[string]int{}
	for i, p := range out {
		idx[p.Name] = i
	}
	var (
		name, key string
		st        atlas.State
		n         int
	)
	rows, err = s.db.Query(ctx, `SELECT project, state, COUNT(*) FROM jobs GROUP BY project, state`)
	if err != nil {
		return nil, err
	}
	if _, err := pgx.ForEachRow(rows, []any{&name, &st, &n}, func() error {
		if i, ok := idx[name]; ok {
			out[i].Counts[st] = n
		}
		return nil
	}); err != nil {
		return nil, err
	}
	rows, err = s.db.Query(ctx, `SELECT DISTINCT project, "user" FROM jobs ORDER BY "user"`)
	if err != nil {
		return nil, err
	}
	if _, err := pgx.ForEachRow(rows, []any{&name, &key}, func() error {
		if i, ok := idx[name]; ok {
			out[i].Users = append(out[i].Users, key)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	rows, err = s.db.Query(ctx, `SELECT DISTINCT j.project, t.key FROM tags t JOIN jobs j ON j.id = t.job_id ORDER BY t.key`)
	if err != nil {
		return nil, err
	}
	_, err = pgx.ForEachRow(rows, []any{&name, &key}, func() error {
		if i, ok := idx[name]; ok {
			out[i].Tags = append(out[i].Tags, key)
		}
		return nil
	})
	return out, err
}

// ProjectGet implements store.Store.
func (s *Store) ProjectGet(ctx context.Context, name string) (*store.Project, error) {
	list, err := s.ProjectList(ctx)
	if err != nil {
		return nil, err
	}
	for _, p := range list {
		if p.Name == name {
			return &p, nil
		}
	}
	return nil, atlas.NotFoundf("project %q not found", name)
}

// ProjectSetDescription implements store.Store.
func (s *Store) ProjectSetDescription(ctx context.Context, name, description, editor string) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE projects SET description = $1 WHERE name = $2`, description, name)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return atlas.NotFoundf("project %q not found", name)
		}
		_, err = tx.Exec(ctx, `INSERT INTO description_edits (project, editor, description, created_at) VALUES ($1, $2, $3, $4)`,
			name, editor, description, nanos(time.Now().UTC()))
		return err
	})
}

// ProjectDescriptionHistory implements store.Store.
func (s *Store) ProjectDescriptionHistory(ctx context.Context, name string) ([]store.DescriptionEdit, error) {
	rows, err := s.db.Query(ctx, `SELECT id, project, editor, description, created_at FROM description_edits
		WHERE project = $1 ORDER BY id DESC`, name)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.DescriptionEdit, error) {
		var e store.DescriptionEdit
		var at int64
		err := r.Scan(&e.ID, &e.Project, &e.Editor, &e.Description, &at)
		e.CreatedAt = time.Unix(0, at).UTC()
		return e, err
	})
	return out, err
}

// ProjectColumns implements store.Store.
func (s *Store) ProjectColumns(ctx context.Context, name string) ([]string, []string, error) {
	rows, err := s.db.Query(ctx, `SELECT kind, key FROM project_keys WHERE project = $1 ORDER BY key`, name)
	if err != nil {
		return nil, nil, err
	}
	var params, metrics []string
	var kind, key string
	_, err = pgx.ForEachRow(rows, []any{&kind, &key}, func() error {
		if kind == "param" {
			params = append(params, key)
		} else {
			metrics = append(metrics, key)
		}
		return nil
	})
	return params, metrics, err
}

// NoteAdd implements store.Store.
func (s *Store) NoteAdd(ctx context.Context, n *store.Note) error {
	if n.CreatedAt.IsZero() {
		n.CreatedAt = time.Now().UTC()
	}
	err := s.db.QueryRow(ctx, `INSERT INTO notes (project, author, message, created_at) VALUES ($1, $2, $3, $4) RETURNING id`,
		n.Project, n.Author, n.Message, nanos(n.CreatedAt)).Scan(&n.ID)
	if isViolation(err, foreignKeyViolation, "notes_project_fkey") {
		return atlas.NotFoundf("project %q not found", n.Project)
	}
	return err
}

// Notes implements store.Store.
func (s *Store) Notes(ctx context.Context, project string) ([]store.Note, error) {
	rows, err := s.db.Query(ctx, `SELECT id, project, author, message, created_at FROM notes WHERE project = $1
		ORDER BY created_at DESC, id DESC`, project)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Note, error) {
		var n store.Note
		var at int64
		err := r.Scan(&n.ID, &n.Project, &n.Author, &n.Message, &at)
		n.CreatedAt = time.Unix(0, at).UTC()
		return n, err
	})
	return out, err
}
