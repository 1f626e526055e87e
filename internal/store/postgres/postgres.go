// Package postgres is the store for a PostgreSQL server (jackc/pgx/v5 with a connection pool),
// for installations that outgrow one SQLite file or keep their databases on a server.
//
// It keeps the rules of internal/store with row locks instead of SQLite's single writer: a
// state change reads its job with SELECT ... FOR UPDATE and decides inside that transaction; a
// tracking batch locks its job and applies its (writer, seq) with one conditional upsert, so
// two copies of a batch cannot both be stored. Schema migrations are embedded and applied at
// Open, under an advisory lock, so servers starting together migrate once. Rules both backends
// keep are decided in internal/store/sqlutil; the job listing's SQL (JobList, JobValues) is
// written once for both in internal/store/joblist, and run here in PostgreSQL's dialect
// (list.go). No other SQL of this store lives outside this package.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/atlasgo/atlas/internal/store"
	"github.com/atlasgo/atlas/internal/store/sqlutil"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is a store.Store backed by a PostgreSQL database.
type Store struct {
	db *pgxpool.Pool
}

var _ store.Store = (*Store)(nil)

// Open connects to the database at url (postgres://user:pass@host:port/db?sslmode=disable;
// pgxpool's pool_* parameters and server settings such as search_path may be added) and
// applies migrations. The tables live in the first schema of the connection's search_path.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err) // the URL itself may hold a password: not repeated
	}
	if !strings.Contains(url, "pool_max_conns") {
		// pgxpool's default, max(4, processors), is what one listing of the GUI reads at once.
		cfg.MaxConns = int32(max(8, 2*runtime.NumCPU()))
	}
	db, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres %s: %w", describe(cfg), err)
	}
	if err := migrate(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate postgres %s: %w", describe(cfg), err)
	}
	return &Store{db: db}, nil
}

// describe names a database for messages, without its password.
func describe(cfg *pgxpool.Config) string {
	c := cfg.ConnConfig
	return fmt.Sprintf("%s@%s:%d/%s", c.User, c.Host, c.Port, c.Database)
}

// Close closes the connection pool.
func (s *Store) Close() error {
	s.db.Close()
	return nil
}

func migrate(ctx context.Context, db *pgxpool.Pool) error {
	list, err := sqlutil.Migrations(migrations, "migrations")
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		// One migrator per schema at a time; DDL is transactional, so all of it lands or none.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('atlas migrate ' || current_schema()))`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
			return err
		}
		applied := map[int]bool{}
		rows, err := tx.Query(ctx, `SELECT version FROM schema_migrations`)
		if err != nil {
			return err
		}
		versions, err := pgx.CollectRows(rows, pgx.RowTo[int])
		if err != nil {
			return err
		}
		for _, v := range versions {
			applied[v] = true
		}
		for _, m := range list {
			if applied[m.Version] {
				continue
			}
			// No arguments: the simple protocol, which runs a file of several statements.
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("migration %s: %w", m.Name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)`, m.Version, nanos(time.Now())); err != nil {
				return err
			}
		}
		return nil
	})
}

// tx runs fn in a transaction.
func (s *Store) tx(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.db, fn)
}

// args collects the arguments of one query and names their placeholders ($1, $2, ...).
type args []any

func (a *args) add(v any) string {
	*a = append(*a, v)
	return "$" + strconv.Itoa(len(*a))
}

func nanos(t time.Time) int64 { return t.UnixNano() }

func fromNanos(n *int64) *time.Time {
	if n == nil {
		return nil
	}
	t := time.Unix(0, *n).UTC()
	return &t
}

// isViolation reports whether err is a violation of the named constraint (a Postgres error
// code: unique_violation 23505, foreign_key_violation 23503).
func isViolation(err error, code, constraint string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == code && (constraint == "" || pe.ConstraintName == constraint)
}

const (
	uniqueViolation     = "23505"
	foreignKeyViolation = "23503"
)
