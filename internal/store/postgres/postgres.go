// Package postgres is Rotor's shared storage backend: a store.Store in a
// PostgreSQL database, through pgx, so that several rotor nodes can serve
// one set of secrets.
//
// Open connects with a bounded pool and brings the schema up to date. The
// migrations mirror the SQLite backend's levels 1–4; they run in one
// transaction under a transaction-level advisory lock, so nodes starting at
// once do not race, and the level is kept in the table rotor_schema. A
// database at a level newer than this code knows is refused.
//
// Concurrency: Store is safe for concurrent use. A Read is a REPEATABLE READ,
// READ ONLY transaction: its snapshot is fixed at its first statement. A
// Write is a READ COMMITTED transaction that first locks and increments the
// one row of rotor_generation, so Writes are serialised across every node
// sharing the database, each sees the commits before it, and the count is
// the store's generation (store.Generations: one small query, so that a
// node's read cache is never behind another node's commit). fn is run again (up to
// maxAttempts times in all) when the transaction fails with a serialization
// failure or a deadlock. Close waits for running transactions.
//
// Context: a Read or Write whose ctx ends returns an error wrapping
// ctx.Err(), and a Write then commits nothing.
//
// Errors: store.ErrNotFound for a missing row and for a write that refers to
// a missing secret, version, user or policy (a foreign-key violation);
// store.ErrConflict for a unique violation. Statements that can fail so run
// inside a savepoint, since PostgreSQL aborts a transaction on the first
// failed statement: the transaction stays usable. Write returns fn's error
// unchanged; a panic in fn rolls back and propagates.
//
// Times are stored as BIGINT Unix milliseconds and come back in UTC; the
// zero time.Time is stored as 0. Names, ARNs, labels and ids are COLLATE "C"
// columns: they compare and sort byte-wise.
//
// Several nodes: the Store implements store.Shared and store.Publisher
// through LISTEN/NOTIFY (notify.go), so that each node's other caches
// follow the others' commits; and a Write whose ctx carries a
// store.Fence checks it (lease.Check) after taking the write lock, so a
// node that lost the rotation lease cannot commit a step.
package postgres

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rotor-secrets/rotor/internal/lease"
	"github.com/rotor-secrets/rotor/internal/store"
)

var (
	//go:embed schema1.sql
	schemaV1 string
	//go:embed schema2.sql
	schemaV2 string
	//go:embed schema3.sql
	schemaV3 string
	//go:embed schema4.sql
	schemaV4 string
	//go:embed schema5.sql
	schemaV5 string
)

// migrations[i] takes a database from level i to i+1. Append only.
var migrations = []string{schemaV1, schemaV2, schemaV3, schemaV4, schemaV5}

// The advisory lock key (per database) of migrations.
const migrateLockKey int64 = 0x726f746f72_01 // "rotor" 1

// qLockWrite starts every Write: it waits for the Writes of every node
// before it, counts this one, and queues the Store's notice.
const qLockWrite = `UPDATE rotor_generation SET gen = gen + 1 RETURNING pg_notify($1, $2)`

// maxAttempts bounds how often a Write runs fn when PostgreSQL reports a
// serialization failure or a deadlock.
const maxAttempts = 5

const (
	defaultMaxConns       = 10
	defaultConnectTimeout = 10 * time.Second
)

var (
	errClosed   = errors.New("postgres: store is closed")
	errReadOnly = errors.New("postgres: write in a read-only transaction")
	errTxDone   = errors.New("postgres: transaction has ended")
)

var (
	_ store.Store         = (*Store)(nil)
	_ store.Shared        = (*Store)(nil)
	_ store.Generations   = (*Store)(nil)
	_ store.Publisher     = (*txn)(nil)
	_ store.TopicVersions = (*Store)(nil)
)

// Options tune Open. The zero value is usable.
type Options struct {
	// MaxConns bounds the connection pool; 0 means 10.
	MaxConns int32
	// ConnectTimeout bounds establishing one connection when the DSN sets
	// no connect_timeout; 0 means 10 seconds.
	ConnectTimeout time.Duration
	// Logger reports the notice connection's failures; none if nil.
	Logger *slog.Logger
}

// Store is a PostgreSQL-backed store.Store. Open returns one; Close releases
// it.
type Store struct {
	pool *pgxpool.Pool
	id   string // in this Store's notices
	log  *slog.Logger

	listening  atomic.Bool // the notice connection is up
	watchMu    sync.Mutex
	watchers   []func(store.Notice)
	stopListen context.CancelFunc
	listenDone chan struct{}

	// closeMu is held shared by every transaction for its whole run and
	// exclusively by Close, which so waits for them.
	closeMu sync.RWMutex
	closed  bool
}

// Open connects to the database at dsn (a pgx connection string or URL) and
// migrates it.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse dsn: %w", err)
	}
	cfg.MaxConns = opts.MaxConns
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = defaultMaxConns
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = opts.ConnectTimeout
		if cfg.ConnConfig.ConnectTimeout <= 0 {
			cfg.ConnConfig.ConnectTimeout = defaultConnectTimeout
		}
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	s := &Store{pool: pool, id: newStoreID(), log: opts.Logger, listenDone: make(chan struct{})}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	lctx, cancel := context.WithCancel(context.Background())
	s.stopListen = cancel
	go s.listen(lctx, cfg.ConnConfig.Copy())
	return s, nil
}

// migrate brings the schema to len(migrations) in one transaction.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrateLockKey); err != nil {
		return fmt.Errorf("migrate: lock: %w", err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS rotor_schema (
		one   BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
		level INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	var level int
	err = tx.QueryRow(ctx, `SELECT level FROM rotor_schema`).Scan(&level)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		level = 0
	case err != nil:
		return fmt.Errorf("migrate: read level: %w", err)
	}
	if level > len(migrations) {
		return fmt.Errorf("database schema is at level %d, newer than this rotor knows (%d): upgrade rotor", level, len(migrations))
	}
	if level == len(migrations) {
		return nil
	}
	for i := level; i < len(migrations); i++ {
		if _, err := tx.Exec(ctx, migrations[i]); err != nil {
			return fmt.Errorf("migrate to level %d: %w", i+1, err)
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO rotor_schema (level) VALUES ($1)
		ON CONFLICT (one) DO UPDATE SET level = excluded.level`, len(migrations)); err != nil {
		return fmt.Errorf("migrate: record level: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("migrate: commit: %w", err)
	}
	return nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return errClosed
	}
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	return nil
}

// Close waits for running transactions and closes the pool.
func (s *Store) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.stopListen()
	<-s.listenDone
	s.pool.Close()
	return nil
}

// Read runs fn in a REPEATABLE READ, READ ONLY transaction.
func (s *Store) Read(ctx context.Context, fn func(tx store.Tx) error) error {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return errClosed
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("postgres: read: %w", err)
	}
	ptx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return beginErr(ctx, "read", err)
	}
	t := &txn{tx: ptx}
	defer func() {
		t.done = true
		ptx.Rollback(context.WithoutCancel(ctx))
	}()
	if err := fn(t); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("postgres: read: %w", err)
	}
	return nil
}

// Write runs fn in a serialised read-write transaction, again when it
// fails with a serialization failure or a deadlock.
func (s *Store) Write(ctx context.Context, fn func(tx store.Tx) error) error {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return errClosed
	}
	for attempt := 1; ; attempt++ {
		err := s.writeOnce(ctx, fn)
		if err == nil || attempt == maxAttempts || !retryable(err) {
			return err
		}
	}
}

func (s *Store) writeOnce(ctx context.Context, fn func(tx store.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("postgres: write: %w", err)
	}
	ptx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted, AccessMode: pgx.ReadWrite})
	if err != nil {
		return beginErr(ctx, "write", err)
	}
	t := &txn{tx: ptx, write: true, id: s.id}
	defer func() {
		t.done = true
		ptx.Rollback(context.WithoutCancel(ctx)) // a no-op after Commit
	}()
	// The lock, the generation, and this Store's notice, delivered only if
	// the transaction commits.
	if _, err := ptx.Exec(ctx, qLockWrite, notifyChannel, s.id); err != nil {
		return beginErr(ctx, "write lock", err)
	}
	if f, ok := store.FenceFrom(ctx); ok {
		err := lease.Check(ctx, ptx, f.Lease, f.Token)
		if errors.Is(err, lease.ErrLost) {
			return fmt.Errorf("postgres: write: %w (lease %s, token %d)", store.ErrFenced, f.Lease, f.Token)
		}
		if err != nil {
			return beginErr(ctx, "fence", err)
		}
	}
	if err := fn(t); err != nil {
		return err
	}
	t.done = true
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("postgres: write: %w", err)
	}
	if err := t.flushPublished(ctx); err != nil {
		return err
	}
	if err := ptx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: commit: %w", err)
	}
	return nil
}

// beginErr reports a failure to start a transaction, as ctx's error when
// ctx has ended.
func beginErr(ctx context.Context, op string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("postgres: %s: %w", op, ctxErr)
	}
	return fmt.Errorf("postgres: %s: %w", op, err)
}

// retryable reports a serialization failure or a deadlock, after which the
// whole transaction may succeed when run again.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01")
}
