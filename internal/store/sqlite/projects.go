package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"sort"
	"time"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/store"
)

// ProjectList implements store.Store.
func (s *Store) ProjectList(ctx context.Context) ([]store.Project, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT p.name, p.created_at, p.updated_at, p.description, COALESCE(e.editor, ''), e.created_at
		FROM projects p LEFT JOIN description_edits e ON e.id = (SELECT MAX(id) FROM description_edits WHERE project = p.name)
		ORDER BY p.updated_at DESC`)
	if err != nil {
		return nil, err
	}
	var out []store.Project
	idx := map[string]int{}
	for rows.Next() {
		var p store.Project
		var c, u int64
		var edited sql.NullInt64
		if err := rows.Scan(&p.Name, &c, &u, &p.Description, &p.DescriptionBy, &edited); err != nil {
			rows.Close()
			return nil, err
		}
		p.CreatedAt, p.LastActivity, p.DescriptionAt = time.Unix(0, c).UTC(), time.Unix(0, u).UTC(), fromNanos(edited)
		p.Counts = map[atlas.State]int{}
		p.Tags, p.Users = []string{}, []string{}
		idx[p.Name] = len(out)
		out = append(out, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = s.r.QueryContext(ctx, `SELECT project, state, n FROM job_counts WHERE n > 0`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var name string
		var st atlas.State
		var n int
		if err := rows.Scan(&name, &st, &n); err != nil {
			rows.Close()
			return nil, err
		}
		if i, ok := idx[name]; ok {
			out[i].Counts[st] = n
		}
	}
	rows.Close()
	rows, err = s.r.QueryContext(ctx, `SELECT DISTINCT project, user FROM jobs ORDER BY user`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var name, user string
		if err := rows.Scan(&name, &user); err != nil {
			rows.Close()
			return nil, err
		}
		if i, ok := idx[name]; ok {
			out[i].Users = append(out[i].Users, user)
		}
	}
	rows.Close()
	rows, err = s.r.QueryContext(ctx, `SELECT DISTINCT j.project, t.key FROM tags t JOIN jobs j ON j.id = t.job_id ORDER BY t.key`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var name, key string
		if err := rows.Scan(&name, &key); err != nil {
			return nil, err
		}
		if i, ok := idx[name]; ok {
			out[i].Tags = append(out[i].Tags, key)
		}
	}
	return out, rows.Err()
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
	return s.tx(ctx, func(tx *txn) error {
		res, err := tx.ExecContext(ctx, `UPDATE projects SET description = ? WHERE name = ?`, description, name)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return atlas.NotFoundf("project %q not found", name)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO description_edits (project, editor, description, created_at) VALUES (?, ?, ?, ?)`,
			name, editor, description, nanos(time.Now().UTC()))
		return err
	})
}

// ProjectDescriptionHistory implements store.Store.
func (s *Store) ProjectDescriptionHistory(ctx context.Context, name string) ([]store.DescriptionEdit, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, project, editor, description, created_at FROM description_edits
		WHERE project = ? ORDER BY id DESC`, name)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []store.DescriptionEdit{}
	for rows.Next() {
		var e store.DescriptionEdit
		var at int64
		if err := rows.Scan(&e.ID, &e.Project, &e.Editor, &e.Description, &at); err != nil {
			return nil, err
		}
		e.CreatedAt = time.Unix(0, at).UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

// ProjectColumns implements store.Store.
func (s *Store) ProjectColumns(ctx context.Context, name string) ([]string, []string, error) {
	var params, metrics []string
	for _, q := range []struct {
		sql string
		dst *[]string
	}{
		{`SELECT key FROM project_keys WHERE project = ? AND kind = 'param' ORDER BY key`, &params},
		{`SELECT key FROM project_keys WHERE project = ? AND kind = 'metric' ORDER BY key`, &metrics},
	} {
		rows, err := s.r.QueryContext(ctx, q.sql, name)
		if err != nil {
			return nil, nil, err
		}
		for rows.Next() {
			var k string
			if err := rows.Scan(&k); err != nil {
				rows.Close()
				return nil, nil, err
			}
			*q.dst = append(*q.dst, k)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, nil, err
		}
		sort.Strings(*q.dst)
	}
	return params, metrics, nil
}

// NoteAdd implements store.Store.
func (s *Store) NoteAdd(ctx context.Context, n *store.Note) error {
	if n.CreatedAt.IsZero() {
		n.CreatedAt = time.Now().UTC()
	}
	var exists int
	err := s.w.QueryRowContext(ctx, `SELECT 1 FROM projects WHERE name = ?`, n.Project).Scan(&exists)
	if errors.Is(err, sql.ErrNoRows) {
		return atlas.NotFoundf("project %q not found", n.Project)
	}
	if err != nil {
		return err
	}
	res, err := s.w.ExecContext(ctx, `INSERT INTO notes (project, author, message, created_at) VALUES (?, ?, ?, ?)`,
		n.Project, n.Author, n.Message, nanos(n.CreatedAt))
	if err != nil {
		return err
	}
	n.ID, err = res.LastInsertId()
	return err
}

// Notes implements store.Store.
func (s *Store) Notes(ctx context.Context, project string) ([]store.Note, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, project, author, message, created_at FROM notes WHERE project = ? ORDER BY created_at DESC, id DESC`, project)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []store.Note{}
	for rows.Next() {
		var n store.Note
		var at int64
		if err := rows.Scan(&n.ID, &n.Project, &n.Author, &n.Message, &at); err != nil {
			return nil, err
		}
		n.CreatedAt = time.Unix(0, at).UTC()
		out = append(out, n)
	}
	return out, rows.Err()
}
