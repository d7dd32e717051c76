// Package sqlite is Rotor's embedded storage backend: a store.Store in one
// SQLite database file, through the pure-Go driver modernc.org/sqlite (no C
// toolchain, no server to run).
//
// Open creates the database when it is missing and brings its schema up to
// date; the migration level is PRAGMA user_version. A file written by a newer
// rotor is refused rather than downgraded.
//
// Files: the database at path, plus path+"-wal" (the write-ahead log) and
// path+"-shm" (its shared-memory index) while it is open; all three are
// created with mode 0600. Copy them together and only while no rotor has the
// database open: the main file alone may lack committed transactions.
//
// Durability: journal_mode=WAL with synchronous=FULL, so when Write returns
// nil the transaction is in the log and fsynced; it survives a crash or a
// power cut.
//
// Concurrency: Store is safe for concurrent use. Writes go through one
// dedicated connection; each is a BEGIN IMMEDIATE transaction, serialised by
// a lock that gives up when ctx ends, and fn runs exactly once (there is
// nothing to retry). Reads use a pool of query_only connections; a Read's
// snapshot is fixed at its first statement and it neither blocks nor is
// blocked by Write or other Reads. A Tx is for fn's goroutine only and dies
// when fn returns; fn must not start another transaction on the same Store
// (that can deadlock). Another process writing the same file makes Write
// wait up to five seconds (busy_timeout) and then fail; run one rotor server
// per database file.
//
// Context: ctx is checked before every statement and before COMMIT, and
// waiting for the write lock or a read connection ends with it; a statement
// already running is not interrupted (each is a short indexed lookup, and
// interrupting would cost two goroutines per statement). Once ctx has ended,
// Read and Write return an error wrapping ctx.Err() and commit nothing.
//
// Errors: store.ErrNotFound for a missing row, and also for a write that
// refers to a missing secret or version (CreateVersion, SetStage);
// store.ErrConflict for a taken name, ARN or version id. A failed statement
// leaves its transaction usable. Write returns fn's error unchanged; a panic
// in fn rolls the transaction back and propagates.
//
// Times are stored as Unix milliseconds (finer digits are dropped) and come
// back in UTC; the zero time.Time is stored as 0, so the instant of the Unix
// epoch itself reads back as the zero time.
package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	_ "embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/rotor-secrets/rotor/internal/store"

	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

var (
	//go:embed schema.sql
	schemaV1 string
	//go:embed schema2.sql
	schemaV2 string
)

// migrations[i] takes a database from user_version i to i+1. Append only.
var migrations = []string{schemaV1, schemaV2}

// busyTimeoutMS bounds how long a statement waits for a lock held by another
// process before failing with SQLITE_BUSY.
const busyTimeoutMS = 5000

// minReaders is the smallest read pool; larger machines get GOMAXPROCS.
const minReaders = 4

var (
	errClosed   = errors.New("sqlite: store is closed")
	errReadOnly = errors.New("sqlite: write in a read-only transaction")
	errTxDone   = errors.New("sqlite: transaction has ended")
)

var _ store.Store = (*Store)(nil)

// Store is a SQLite-backed store.Store. Open returns one; Close releases it.
type Store struct {
	// closeMu is held shared by every transaction for its whole run and
	// exclusively by Close, which so waits for them.
	closeMu sync.RWMutex
	closed  bool

	wdb   *sql.DB
	wlock chan struct{} // capacity 1: whoever sent holds the write lock
	w     *conn         // the write connection; guarded by wlock; nil until reopened after a failure

	rdb   *sql.DB
	slots chan *conn // the read pool: each slot holds an open connection or nil (opened on demand)
}

// Open opens (creating when missing) the database at path and migrates it.
func Open(ctx context.Context, path string) (*Store, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	// SQLite would create the file 0644; it gives -wal and -shm the mode of
	// the database file, so creating that one 0600 covers all three.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case err == nil:
		if err := f.Close(); err != nil {
			return nil, fmt.Errorf("sqlite: create database: %w", err)
		}
	case !errors.Is(err, fs.ErrExist):
		return nil, fmt.Errorf("sqlite: create database: %w", err)
	}

	s := &Store{wlock: make(chan struct{}, 1)}
	if s.wdb, err = sql.Open("sqlite", dsn(abs, false)); err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	s.wdb.SetMaxOpenConns(1)
	s.wdb.SetMaxIdleConns(1)
	if s.w, err = openConn(ctx, s.wdb); err != nil {
		s.wdb.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", abs, err)
	}
	if err := migrate(ctx, s.w); err != nil {
		s.w.close(false)
		s.wdb.Close()
		return nil, fmt.Errorf("sqlite: %s: %w", abs, err)
	}

	n := max(minReaders, runtime.GOMAXPROCS(0))
	if s.rdb, err = sql.Open("sqlite", dsn(abs, true)); err != nil {
		s.w.close(false)
		s.wdb.Close()
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	s.rdb.SetMaxOpenConns(n)
	s.rdb.SetMaxIdleConns(n)
	s.slots = make(chan *conn, n)
	for range n {
		s.slots <- nil
	}
	return s, nil
}

// dsn is the driver's name for the database at the absolute path abs: a
// file: URI (so any byte of the path survives escaping) with the
// per-connection settings.
func dsn(abs string, readOnly bool) string {
	q := fmt.Sprintf("_pragma=busy_timeout(%d)&_pragma=foreign_keys(1)&_pragma=synchronous(FULL)", busyTimeoutMS)
	if readOnly {
		q += "&_pragma=query_only(1)"
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: q}
	return u.String()
}

// migrate switches the database to WAL and applies the missing migrations
// in one transaction.
func migrate(ctx context.Context, c *conn) (err error) {
	var mode string
	if err := c.c.QueryRowContext(ctx, "PRAGMA journal_mode = WAL").Scan(&mode); err != nil {
		return fmt.Errorf("set journal mode: %w", err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("journal mode is %q, not wal", mode)
	}
	if _, err := c.c.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("begin migration: %w", err)
	}
	defer func() {
		if err != nil {
			_, _ = c.c.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		}
	}()
	var have int
	if err := c.c.QueryRowContext(ctx, "PRAGMA user_version").Scan(&have); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if have > len(migrations) {
		return fmt.Errorf("schema version %d is newer than this rotor supports (%d); hint: run a rotor at least as new as the one that last wrote this database", have, len(migrations))
	}
	if have == len(migrations) {
		_, err := c.c.ExecContext(ctx, "ROLLBACK")
		return err
	}
	for i := have; i < len(migrations); i++ {
		if _, err := c.c.ExecContext(ctx, migrations[i]); err != nil {
			return fmt.Errorf("migrate schema to version %d: %w", i+1, err)
		}
	}
	if _, err := c.c.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", len(migrations))); err != nil {
		return fmt.Errorf("set schema version: %w", err)
	}
	if _, err := c.c.ExecContext(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("commit migration: %w", err)
	}
	return nil
}

// Read runs fn in a read-only transaction on a consistent snapshot.
func (s *Store) Read(ctx context.Context, fn func(tx store.Tx) error) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	defer s.closeMu.RUnlock()
	var c *conn
	select {
	case c = <-s.slots:
	case <-ctx.Done():
		return fmt.Errorf("sqlite: wait for a read connection: %w", ctx.Err())
	}
	defer func() { s.slots <- c.keep() }()
	if c == nil {
		var err error
		if c, err = openConn(ctx, s.rdb); err != nil {
			return fail(ctx, c, "open read connection", err)
		}
	}
	return run(ctx, c, false, fn)
}

// Write runs fn in a serialised read-write transaction.
func (s *Store) Write(ctx context.Context, fn func(tx store.Tx) error) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	defer s.closeMu.RUnlock()
	select {
	case s.wlock <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("sqlite: wait for the write lock: %w", ctx.Err())
	}
	defer func() {
		s.w = s.w.keep()
		<-s.wlock
	}()
	if s.w == nil {
		var err error
		if s.w, err = openConn(ctx, s.wdb); err != nil {
			return fail(ctx, s.w, "open write connection", err)
		}
	}
	return run(ctx, s.w, true, fn)
}

// enter admits a transaction unless the store is closed or ctx has ended;
// on success the caller holds closeMu shared.
func (s *Store) enter(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return errClosed
	}
	return nil
}

// run runs fn in a transaction on c. The transaction ends before run
// returns, also when fn panics.
func run(ctx context.Context, c *conn, write bool, fn func(tx store.Tx) error) error {
	// A deferred BEGIN takes no lock and cannot wait; BEGIN IMMEDIATE
	// takes the database's write lock now rather than at the first write,
	// so a database busy in another process fails here (or when ctx
	// ends) instead of half-way through fn.
	begin, bctx := "BEGIN", context.WithoutCancel(ctx)
	if write {
		begin, bctx = "BEGIN IMMEDIATE", ctx
	}
	if err := c.exec(bctx, begin); err != nil {
		return fail(ctx, c, "begin", err)
	}
	tx := &txn{c: c, write: write}
	committed := false
	defer func() {
		tx.done = true
		if !committed {
			c.rollback(ctx)
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sqlite: commit: %w", err)
	}
	// Not cancellable: once COMMIT starts, its outcome must be reported
	// as it is, not as an interruption that may or may not have landed.
	if err := c.exec(context.WithoutCancel(ctx), "COMMIT"); err != nil {
		return fail(ctx, c, "commit", err)
	}
	committed = true
	return nil
}

// Ping checks that the database answers a query.
func (s *Store) Ping(ctx context.Context) error {
	return s.Read(ctx, func(tx store.Tx) error {
		t := tx.(*txn)
		row, err := t.queryRow(ctx, "SELECT 1")
		if err == nil {
			var one int
			err = row.Scan(&one)
		}
		if err != nil {
			return fail(ctx, t.c, "ping", err)
		}
		return nil
	})
}

// Close waits for running transactions, then closes every connection.
// Transactions started after Close fail. Closing twice is harmless.
func (s *Store) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var errs []error
	for range cap(s.slots) {
		if c := <-s.slots; c != nil {
			errs = append(errs, c.close(false))
		}
	}
	errs = append(errs, s.rdb.Close())
	// The write connection closes last: the last connection to close
	// checkpoints the log into the database file.
	if s.w != nil {
		errs = append(errs, s.w.close(false))
		s.w = nil
	}
	errs = append(errs, s.wdb.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sqlite: close: %w", err)
	}
	return nil
}

// conn is one database connection held out of database/sql's pool for the
// Store's lifetime, with the statements prepared on it.
type conn struct {
	c     *sql.Conn
	stmts map[string]*sql.Stmt
	// broken is set when the connection may be unusable or left inside a
	// transaction; it is then discarded and replaced on next use.
	broken bool
}

func openConn(ctx context.Context, db *sql.DB) (*conn, error) {
	c, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	return &conn{c: c, stmts: make(map[string]*sql.Stmt)}, nil
}

// stmt returns query prepared on c, preparing it on first use.
func (c *conn) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := c.stmts[query]; ok {
		return st, nil
	}
	st, err := c.c.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	c.stmts[query] = st
	return st, nil
}

// exec runs q, prepared once.
func (c *conn) exec(ctx context.Context, q string) error {
	st, err := c.stmt(ctx, q)
	if err == nil {
		_, err = st.ExecContext(ctx)
	}
	return err
}

// rollback ends the transaction on c, whatever ctx says: a connection left
// inside a transaction would wedge every later one.
func (c *conn) rollback(ctx context.Context) {
	err := c.exec(context.WithoutCancel(ctx), "ROLLBACK")
	// SQLite itself rolls back when a statement is interrupted (ctx ended
	// during an INSERT, UPDATE or DELETE); the connection is fine then.
	if err != nil && !strings.Contains(err.Error(), "no transaction is active") {
		c.broken = true
	}
}

// keep returns c, or nil after discarding it when it is broken.
func (c *conn) keep() *conn {
	if c == nil || !c.broken {
		return c
	}
	_ = c.close(true)
	return nil
}

// close closes c's statements and gives its connection back to the pool or,
// with discard, closes it.
func (c *conn) close(discard bool) error {
	var errs []error
	for _, st := range c.stmts {
		errs = append(errs, st.Close())
	}
	if discard {
		// Raw returning ErrBadConn makes database/sql close the driver
		// connection instead of pooling it; c.c is closed with it.
		_ = c.c.Raw(func(any) error { return driver.ErrBadConn })
		return nil
	}
	errs = append(errs, c.c.Close())
	return errors.Join(errs...)
}

// fail maps a driver error to the store's contract: sql.ErrNoRows is
// ErrNotFound, a uniqueness violation ErrConflict, a foreign-key violation
// (a reference to a missing secret or version) ErrNotFound. Other errors are
// wrapped with op, and with ctx's error when ctx has ended. c, when not nil,
// is marked broken if database/sql gave up on it.
func fail(ctx context.Context, c *conn, op string, err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return store.ErrConflict
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return store.ErrNotFound
		}
	}
	if c != nil && (errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone)) {
		c.broken = true
	}
	if cerr := ctx.Err(); cerr != nil {
		if errors.Is(err, cerr) {
			return fmt.Errorf("sqlite: %s: %w", op, cerr)
		}
		return fmt.Errorf("sqlite: %s: %w (%v)", op, cerr, err)
	}
	return fmt.Errorf("sqlite: %s: %v", op, err)
}
