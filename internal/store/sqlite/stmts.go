package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"sync"
)

// maxStmts bounds the statement cache: queries built from a request (filters, IN lists of
// varying length) beyond it are prepared for each call, as without a cache.
const maxStmts = 256

// stmts holds prepared statements by their text, so that the statements run for every job
// and every batch of tracked values are parsed once, not on every call.
type stmts struct {
	db *sql.DB
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

// lookup returns the prepared statement of query, or nil.
func (c *stmts) lookup(query string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[query]
}

// get returns the prepared statement of query, preparing it if needed, or nil when the cache
// is full or preparing failed (the caller then runs query directly, which reports the
// error). It must not be called for the writer inside a transaction, which holds the
// writer's only connection: preparing would wait for it forever.
func (c *stmts) get(ctx context.Context, query string) *sql.Stmt {
	if st := c.lookup(query); st != nil {
		return st
	}
	c.mu.Lock()
	full := len(c.m) >= maxStmts
	c.mu.Unlock()
	if full {
		return nil
	}
	st, err := c.db.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[query]; ok { // prepared meanwhile by another call
		st.Close()
		return old
	}
	if c.m == nil {
		c.m = map[string]*sql.Stmt{}
	}
	c.m[query] = st
	return st
}

func (c *stmts) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for _, st := range c.m {
		errs = append(errs, st.Close())
	}
	c.m = nil
	return errors.Join(errs...)
}

// db is a connection pool whose queries go through the statement cache.
type db struct {
	*sql.DB
	stmts *stmts
}

func newDB(d *sql.DB) *db { return &db{DB: d, stmts: &stmts{db: d}} }

func (d *db) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := d.stmts.get(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return d.DB.QueryContext(ctx, query, args...)
}

func (d *db) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := d.stmts.get(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return d.DB.QueryRowContext(ctx, query, args...)
}

func (d *db) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := d.stmts.get(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return d.DB.ExecContext(ctx, query, args...)
}

func (d *db) Close() error { return errors.Join(d.stmts.close(), d.DB.Close()) }

// txn is a write transaction whose statements come from the writer's statement cache. A
// statement not in the cache yet runs directly and is prepared after the transaction ends.
type txn struct {
	*sql.Tx
	stmts  *stmts
	missed []string
}

func (t *txn) stmt(ctx context.Context, query string) *sql.Stmt {
	if st := t.stmts.lookup(query); st != nil {
		return t.Tx.StmtContext(ctx, st)
	}
	t.missed = append(t.missed, query)
	return nil
}

func (t *txn) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := t.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return t.Tx.QueryContext(ctx, query, args...)
}

func (t *txn) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := t.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return t.Tx.QueryRowContext(ctx, query, args...)
}

func (t *txn) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := t.stmt(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return t.Tx.ExecContext(ctx, query, args...)
}

// prepareMissed prepares, once the transaction has given the connection back, the
// statements it ran that were not in the cache.
func (t *txn) prepareMissed(ctx context.Context) {
	for _, q := range t.missed {
		t.stmts.get(ctx, q)
	}
}
