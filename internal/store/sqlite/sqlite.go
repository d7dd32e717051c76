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
// Concurrency: Store is safe for concurrent use. Reads use a pool of
// query_only connections; a Read's snapshot is fixed at its first statement
// and it neither blocks nor is blocked by Write or other Reads. Writes go
// through one dedicated connection and are serialised: their fns run one at
// a time, each sees the changes of those before it, and they commit in the
// order they ran. A Tx is for fn's goroutine only and dies when fn returns;
// fn must not start another transaction on the same Store (that can
// deadlock). Close waits for running Reads and Writes.
//
// Group commit: concurrent Writes share one SQLite transaction, and so one
// COMMIT and one fsync. Writes take turns on the write connection in arrival
// order. The first of a batch begins a transaction (BEGIN IMMEDIATE); each
// Write runs its fn inside a savepoint of that transaction and then hands the
// connection to the next waiting Write, until none waits or 128 have had
// their turn; the Write holding the connection then commits for all of them
// and hands it to the first of the Writes that arrived meanwhile, which
// begins the next batch. A lone Write thus begins and commits at once, with
// no added wait. Each fn runs on its own caller's goroutine (the connection
// moves between goroutines, not the work), so a panic or runtime.Goexit in
// fn happens where it would without batching: fn's savepoint is rolled back,
// the connection handed on, and the panic goes up through its own Write
// only. When fn returns an error its savepoint is rolled back and its Write
// returns that error at once; the rest of the batch is unaffected. A Write
// whose fn returned nil returns only once the batch's COMMIT is done: nil
// when it succeeded; otherwise the transaction is rolled back and every such
// Write of the batch returns the COMMIT's error: none of them committed.
// After a statement fails in a way that may have made SQLite roll back the
// whole transaction (a full disk, an I/O error, no memory, a busy lock, an
// interruption, a corrupt file), the batch is aborted, since a statement
// run after such a rollback would commit on its own: later statements in
// the batch fail, it is rolled back, and every Write whose fn ran in it
// fails.
//
// Retries: fn runs at most once; nothing is retried. The one lock a Write
// can wait for is another process's, at BEGIN IMMEDIATE, for up to five
// seconds (busy_timeout) or until ctx ends; that failure belongs to the
// Write that began the batch, before its fn ran, and the next waiting Write
// begins afresh. COMMIT never waits for a lock: BEGIN IMMEDIATE holds it.
// Run one rotor server per database file.
//
// Context: ctx is checked before every statement, and waiting for a turn on
// the write connection or for a read connection ends with it; a statement
// already running is not interrupted (each is a short indexed lookup, and
// interrupting would cost two goroutines per statement). A Write whose ctx
// ends before its fn runs returns an error wrapping ctx.Err() without
// running fn; one whose ctx ends while fn runs has its savepoint rolled back
// and returns such an error, even when fn returned nil. Once fn has returned
// nil with ctx alive, the Write's result is its batch's COMMIT, whatever ctx
// does meanwhile, so that it always tells whether the changes are durable.
// A Read whose ctx ends returns an error wrapping ctx.Err().
//
// Errors: store.ErrNotFound for a missing row, and also for a write that
// refers to a missing secret or version (CreateVersion, SetStage);
// store.ErrConflict for a taken name, ARN or version id. A statement that
// fails with either leaves its transaction usable. Write returns fn's error
// unchanged; a panic in fn rolls fn's changes back and propagates.
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
	"sync/atomic"

	"github.com/rotor-secrets/rotor/internal/store"

	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

var (
	//go:embed schema.sql
	schemaV1 string
	//go:embed schema2.sql
	schemaV2 string
	//go:embed schema3.sql
	schemaV3 string
	//go:embed schema4.sql
	schemaV4 string
)

// migrations[i] takes a database from user_version i to i+1. Append only.
var migrations = []string{schemaV1, schemaV2, schemaV3, schemaV4}

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

var (
	_ store.Store       = (*Store)(nil)
	_ store.Generations = (*Store)(nil)
)

// Store is a SQLite-backed store.Store. Open returns one; Close releases it.
type Store struct {
	gen atomic.Uint64 // COMMITs so far (Generation)

	// closeMu is held shared by every transaction for its whole run and
	// exclusively by Close, which so waits for them.
	closeMu sync.RWMutex
	closed  bool

	wdb *sql.DB
	// wmu guards held and waiting; see write.go.
	wmu     sync.Mutex
	held    bool      // a Write holds the write connection
	waiting []*writer // Writes waiting for it, in arrival order
	// Guarded by holding the write connection:
	w   *conn  // the write connection; nil until reopened after a failure
	cur *batch // the open transaction; nil between batches
	// beforeCommit, when set (by tests), runs on the write connection just
	// before each COMMIT.
	beforeCommit func(ctx context.Context, c *sql.Conn) error

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

	s := &Store{}
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
	} else {
		// Each Write's savepoint keeps the pages it changes in a
		// sub-journal, a temporary file by default: one open, writes and
		// a close per Write. In memory it costs a copy.
		q += "&_pragma=temp_store(MEMORY)"
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
	return read(ctx, c, fn)
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

// read runs fn in a read transaction on c. The transaction ends before read
// returns, also when fn panics.
func read(ctx context.Context, c *conn, fn func(tx store.Tx) error) error {
	// A deferred BEGIN takes no lock and cannot wait.
	if err := c.exec(context.WithoutCancel(ctx), "BEGIN"); err != nil {
		return fail(ctx, c, "begin", err)
	}
	c.aborted = nil
	tx := &txn{c: c}
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

// Close waits for running transactions, Writes waiting for their turn
// included, then closes every connection.
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
	// aborted is the error after which SQLite may have rolled back the
	// open transaction on its own: the statements that followed would
	// each commit alone, so none may run until the transaction ends.
	// Cleared when a transaction begins.
	aborted error
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
		if c != nil && c.aborted == nil && abortsTransaction(se.Code()) {
			c.aborted = err
		}
	}
	if c != nil && (errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone)) {
		c.broken = true
		if c.aborted == nil {
			c.aborted = err
		}
	}
	if cerr := ctx.Err(); cerr != nil {
		if errors.Is(err, cerr) {
			return fmt.Errorf("sqlite: %s: %w", op, cerr)
		}
		return fmt.Errorf("sqlite: %s: %w (%v)", op, cerr, err)
	}
	return fmt.Errorf("sqlite: %s: %v", op, err)
}

// abortsTransaction reports whether an error with this (extended) result
// code may have rolled back the whole open transaction rather than just the
// failed statement: SQLite documents this of SQLITE_FULL, SQLITE_IOERR,
// SQLITE_BUSY and SQLITE_NOMEM, and of SQLITE_INTERRUPT for a write; and a
// transaction that met a corrupt page is not worth going on with.
func abortsTransaction(code int) bool {
	switch code & 0xff {
	case sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_BUSY, sqlite3.SQLITE_NOMEM,
		sqlite3.SQLITE_INTERRUPT, sqlite3.SQLITE_CORRUPT:
		return true
	}
	return false
}
