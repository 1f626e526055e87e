package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/store"
)

// UserAdd implements store.Store.
func (s *Store) UserAdd(ctx context.Context, name string, admin bool) (*store.User, error) {
	u := &store.User{Name: name, Admin: admin, CreatedAt: time.Now().UTC()}
	res, err := s.w.ExecContext(ctx, `INSERT INTO users (name, admin, created_at) VALUES (?, ?, ?)`, name, admin, nanos(u.CreatedAt))
	if err != nil {
		if strings.Contains(err.Error(), "UNIQUE constraint failed") {
			return nil, atlas.Conflictf("user %q already exists", name)
		}
		return nil, err
	}
	u.ID, err = res.LastInsertId()
	return u, err
}

// UserList implements store.Store.
func (s *Store) UserList(ctx context.Context) ([]store.User, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT u.id, u.name, u.admin, u.created_at, (SELECT COUNT(*) FROM tokens t WHERE t.user_id = u.id)
		FROM users u ORDER BY u.name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []store.User{}
	for rows.Next() {
		var u store.User
		var at int64
		if err := rows.Scan(&u.ID, &u.Name, &u.Admin, &at, &u.Tokens); err != nil {
			return nil, err
		}
		u.CreatedAt = time.Unix(0, at).UTC()
		out = append(out, u)
	}
	return out, rows.Err()
}

// TokenAdd implements store.Store.
func (s *Store) TokenAdd(ctx context.Context, user, hash, label string) (*store.Token, error) {
	var uid int64
	err := s.w.QueryRowContext(ctx, `SELECT id FROM users WHERE name = ?`, user).Scan(&uid)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, atlas.NotFoundf("no user %q (add one with `atlas-server user add %s`)", user, user)
	}
	if err != nil {
		return nil, err
	}
	t := &store.Token{User: user, Label: label, CreatedAt: time.Now().UTC()}
	res, err := s.w.ExecContext(ctx, `INSERT INTO tokens (user_id, hash, label, created_at) VALUES (?, ?, ?, ?)`, uid, hash, label, nanos(t.CreatedAt))
	if err != nil {
		return nil, err
	}
	t.ID, err = res.LastInsertId()
	return t, err
}

// TokenUser implements store.Store.
func (s *Store) TokenUser(ctx context.Context, hash string) (*store.User, error) {
	var u store.User
	var at, tid int64
	err := s.r.QueryRowContext(ctx, `SELECT u.id, u.name, u.admin, u.created_at, t.id FROM tokens t JOIN users u ON u.id = t.user_id
		WHERE t.hash = ?`, hash).Scan(&u.ID, &u.Name, &u.Admin, &at, &tid)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, atlas.NotFoundf("unknown token")
	}
	if err != nil {
		return nil, err
	}
	u.CreatedAt = time.Unix(0, at).UTC()
	// Noting the last use may wait for the writer; it is not worth failing the request for.
	_, _ = s.w.ExecContext(ctx, `UPDATE tokens SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)`,
		nanos(time.Now()), tid, nanos(time.Now().Add(-time.Minute)))
	return &u, nil
}

// TokenList implements store.Store.
func (s *Store) TokenList(ctx context.Context, user string) ([]store.Token, error) {
	q := `SELECT t.id, u.name, t.label, t.created_at, t.last_used_at FROM tokens t JOIN users u ON u.id = t.user_id`
	var args []any
	if user != "" {
		q, args = q+` WHERE u.name = ?`, append(args, user)
	}
	rows, err := s.r.QueryContext(ctx, q+` ORDER BY t.id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []store.Token{}
	for rows.Next() {
		var t store.Token
		var at int64
		var used sql.NullInt64
		if err := rows.Scan(&t.ID, &t.User, &t.Label, &at, &used); err != nil {
			return nil, err
		}
		t.CreatedAt, t.LastUsedAt = time.Unix(0, at).UTC(), fromNanos(used)
		out = append(out, t)
	}
	return out, rows.Err()
}

// TokenRevoke implements store.Store.
func (s *Store) TokenRevoke(ctx context.Context, id int64) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM tokens WHERE id = ?`, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return atlas.NotFoundf("no token %d", id)
	}
	return nil
}
