package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/store"
)

// UserAdd implements store.Store.
func (s *Store) UserAdd(ctx context.Context, name string, admin bool) (*store.User, error) {
	u := &store.User{Name: name, Admin: admin, CreatedAt: time.Now().UTC()}
	err := s.db.QueryRow(ctx, `INSERT INTO users (name, admin, created_at) VALUES ($1, $2, $3) RETURNING id`,
		name, admin, nanos(u.CreatedAt)).Scan(&u.ID)
	if isViolation(err, uniqueViolation, "users_name_key") {
		return nil, atlas.Conflictf("user %q already exists", name)
	}
	if err != nil {
		return nil, err
	}
	return u, nil
}

// UserList implements store.Store.
func (s *Store) UserList(ctx context.Context) ([]store.User, error) {
	rows, err := s.db.Query(ctx, `SELECT u.id, u.name, u.admin, u.created_at, (SELECT COUNT(*) FROM tokens t WHERE t.user_id = u.id)
		FROM users u ORDER BY u.name`)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.User, error) {
		var u store.User
		var at int64
		err := r.Scan(&u.ID, &u.Name, &u.Admin, &at, &u.Tokens)
		u.CreatedAt = time.Unix(0, at).UTC()
		return u, err
	})
	return out, err
}

// TokenAdd implements store.Store.
func (s *Store) TokenAdd(ctx context.Context, user, hash, label string) (*store.Token, error) {
	t := &store.Token{User: user, Label: label, CreatedAt: time.Now().UTC()}
	err := s.db.QueryRow(ctx, `INSERT INTO tokens (user_id, hash, label, created_at)
		SELECT id, $2, $3, $4 FROM users WHERE name = $1 RETURNING id`, user, hash, label, nanos(t.CreatedAt)).Scan(&t.ID)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, atlas.NotFoundf("no user %q (add one with `atlas-server user add %s`)", user, user)
	}
	if err != nil {
		return nil, err
	}
	return t, nil
}

// TokenUser implements store.Store.
func (s *Store) TokenUser(ctx context.Context, hash string) (*store.User, error) {
	var u store.User
	var at, tid int64
	err := s.db.QueryRow(ctx, `SELECT u.id, u.name, u.admin, u.created_at, t.id FROM tokens t JOIN users u ON u.id = t.user_id
		WHERE t.hash = $1`, hash).Scan(&u.ID, &u.Name, &u.Admin, &at, &tid)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, atlas.NotFoundf("unknown token")
	}
	if err != nil {
		return nil, err
	}
	u.CreatedAt = time.Unix(0, at).UTC()
	// Noting the last use at most once a minute keeps requests from rewriting the row each time;
	// it is not worth failing the request for.
	now := time.Now()
	_, _ = s.db.Exec(ctx, `UPDATE tokens SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $3)`,
		nanos(now), tid, nanos(now.Add(-time.Minute)))
	return &u, nil
}

// TokenList implements store.Store.
func (s *Store) TokenList(ctx context.Context, user string) ([]store.Token, error) {
	q := `SELECT t.id, u.name, t.label, t.created_at, t.last_used_at FROM tokens t JOIN users u ON u.id = t.user_id`
	var a args
	if user != "" {
		q += ` WHERE u.name = ` + a.add(user)
	}
	rows, err := s.db.Query(ctx, q+` ORDER BY t.id`, a...)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Token, error) {
		var t store.Token
		var at int64
		var used *int64
		err := r.Scan(&t.ID, &t.User, &t.Label, &at, &used)
		t.CreatedAt, t.LastUsedAt = time.Unix(0, at).UTC(), fromNanos(used)
		return t, err
	})
	return out, err
}

// TokenRevoke implements store.Store.
func (s *Store) TokenRevoke(ctx context.Context, id int64) error {
	tag, err := s.db.Exec(ctx, `DELETE FROM tokens WHERE id = $1`, id)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return atlas.NotFoundf("no token %d", id)
	}
	return nil
}
