package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"slices"

	"github.com/rotor-secrets/rotor/internal/store"
)

// Group commit (see the package comment). The write connection is a baton:
// the Write holding it is the only goroutine that touches s.w and s.cur, and
// it hands it on exactly once, in handOff, whatever its fn does. Holding
// passes from one goroutine to the next through writer.turn, so each fn runs
// on its own caller's goroutine and a panic in fn needs no transfer.

// maxBatch bounds the Writes that share one transaction, so a stream of
// Writes still commits regularly and a batch's first Write waits for at
// most maxBatch fns before its COMMIT.
const maxBatch = 128

// writer is a Write waiting for the write connection.
type writer struct {
	turn chan struct{} // capacity 1: receives the connection
}

// batch is one transaction shared by consecutive Writes.
type batch struct {
	turns    int           // Writes whose fn ran in it (or began to)
	released int           // of those, the ones whose changes are in it
	done     chan struct{} // closed when the transaction has ended
	err      error         // its outcome, for the released Writes; set before done closes
}

// Write runs fn in a serialised read-write transaction, which it may share
// with concurrent Writes (group commit).
func (s *Store) Write(ctx context.Context, fn func(tx store.Tx) error) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	defer s.closeMu.RUnlock()
	if err := s.acquire(ctx); err != nil {
		return err
	}
	return s.turn(ctx, fn)
}

// acquire waits until this goroutine holds the write connection, or until
// ctx ends, in which case it returns an error and does not hold it.
func (s *Store) acquire(ctx context.Context) error {
	s.wmu.Lock()
	if !s.held {
		s.held = true
		s.wmu.Unlock()
		return nil
	}
	w := &writer{turn: make(chan struct{}, 1)}
	s.waiting = append(s.waiting, w)
	s.wmu.Unlock()
	select {
	case <-w.turn:
		return nil
	case <-ctx.Done():
	}
	s.wmu.Lock()
	if i := slices.Index(s.waiting, w); i >= 0 {
		s.waiting = slices.Delete(s.waiting, i, i+1)
		s.wmu.Unlock()
		return fmt.Errorf("sqlite: wait for the write lock: %w", ctx.Err())
	}
	s.wmu.Unlock()
	// The connection was handed over as ctx ended; turn passes it on.
	<-w.turn
	return nil
}

// turn runs fn in a savepoint of the current batch, beginning one if none
// is open, and hands the connection on. The caller holds the write
// connection; it does not when turn returns or panics.
func (s *Store) turn(ctx context.Context, fn func(tx store.Tx) error) error {
	if err := ctx.Err(); err != nil {
		s.handOff()
		return fmt.Errorf("sqlite: wait for the write lock: %w", err)
	}
	b, err := s.begin(ctx)
	if err != nil {
		s.handOff()
		return err
	}
	b.turns++
	c := s.w
	bg := context.WithoutCancel(ctx)
	if err := c.exec(bg, "SAVEPOINT fn"); err != nil {
		err = fail(ctx, c, "savepoint", err)
		if c.aborted == nil {
			c.aborted = err
		}
		s.handOff()
		return err
	}
	tx := &txn{c: c, write: true}
	returned := false
	defer func() {
		if !returned {
			// fn panicked or called runtime.Goexit, which carries on up
			// this goroutine once the connection is handed on.
			tx.done = true
			s.undo(c)
			s.handOff()
		}
	}()
	err = fn(tx)
	returned = true
	tx.done = true
	if err == nil {
		if cerr := ctx.Err(); cerr != nil {
			err = fmt.Errorf("sqlite: commit: %w", cerr)
		}
	}
	if err != nil {
		s.undo(c)
		s.handOff()
		return err
	}
	if c.aborted == nil {
		if rerr := c.exec(bg, "RELEASE fn"); rerr != nil {
			rerr = fail(ctx, c, "release savepoint", rerr)
			if c.aborted == nil {
				c.aborted = rerr
			}
		}
	}
	b.released++
	s.handOff()
	<-b.done
	return b.err
}

// begin returns the open batch, or begins one.
func (s *Store) begin(ctx context.Context) (*batch, error) {
	if s.cur != nil {
		return s.cur, nil
	}
	if s.w == nil {
		c, err := openConn(ctx, s.wdb)
		if err != nil {
			return nil, fail(ctx, nil, "open write connection", err)
		}
		s.w = c
	}
	// BEGIN IMMEDIATE takes the database's write lock now rather than at
	// the first write, so a database busy in another process fails here,
	// before fn, or when ctx ends. It is the one statement that keeps ctx.
	if err := s.w.exec(ctx, "BEGIN IMMEDIATE"); err != nil {
		err = fail(ctx, s.w, "begin", err)
		s.w.aborted = nil
		s.w = s.w.keep()
		return nil, err
	}
	s.w.aborted = nil
	s.cur = &batch{done: make(chan struct{})}
	return s.cur, nil
}

// undo rolls back the savepoint of the Write whose fn failed. If that
// fails, the transaction is in no known state and the batch is aborted.
func (s *Store) undo(c *conn) {
	if c.aborted != nil {
		return
	}
	bg := context.Background()
	err := c.exec(bg, "ROLLBACK TO fn")
	if err == nil {
		err = c.exec(bg, "RELEASE fn")
	}
	if err != nil {
		c.aborted = fail(bg, c, "roll back savepoint", err)
	}
}

// handOff ends the caller's hold on the write connection. It passes the
// open batch to the next waiting Write; or, when none waits, the batch is
// full or aborted, it ends the batch and passes the connection to the next
// waiting Write, which will begin a new one.
func (s *Store) handOff() {
	s.wmu.Lock()
	b := s.cur
	if b != nil && b.turns < maxBatch && s.w.aborted == nil && len(s.waiting) > 0 {
		s.pass()
		return
	}
	s.wmu.Unlock()
	if b != nil {
		s.end(b)
	}
	s.wmu.Lock()
	if len(s.waiting) > 0 {
		s.pass()
		return
	}
	s.held = false
	s.wmu.Unlock()
}

// pass hands the write connection to the first waiting Write. The caller
// holds s.wmu, which pass releases.
func (s *Store) pass() {
	next := s.waiting[0]
	s.waiting = slices.Delete(s.waiting, 0, 1)
	s.wmu.Unlock()
	next.turn <- struct{}{}
}

// end commits the batch, or rolls it back when it was aborted, and tells
// its released Writes the outcome.
func (s *Store) end(b *batch) {
	c := s.w
	// No ctx: the batch belongs to several Writes, and a COMMIT's outcome
	// must be reported as it is, not as an interruption that may or may
	// not have landed.
	bg := context.Background()
	err := c.aborted
	if err != nil {
		err = fmt.Errorf("sqlite: transaction aborted, nothing committed: %v", err)
	}
	switch {
	case err == nil && b.released == 0:
		// Every fn failed: there is nothing to make durable.
		c.rollback(bg)
	case err == nil:
		if s.beforeCommit != nil {
			err = s.beforeCommit(bg, c.c)
		}
		if err == nil {
			err = c.exec(bg, "COMMIT")
			// Before any Write of the batch returns: read caches must not
			// serve what this commit changed (counted even if it failed,
			// which costs at most a cache refill).
			s.gen.Add(1)
		}
		if err != nil {
			// Never ErrNotFound or ErrConflict: every Write of the batch
			// gets this error, which is not about its own rows.
			if errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) {
				c.broken = true
			}
			err = fmt.Errorf("sqlite: commit: %v; nothing committed", err)
			c.rollback(bg)
		}
	default:
		c.rollback(bg)
	}
	b.err = err
	close(b.done)
	s.cur = nil
	c.aborted = nil
	s.w = c.keep()
}

// Generation implements store.Generations: it grows after every COMMIT of
// this Store, before the Writes of that commit return. Another process
// writing the same file is not seen, so a server must own its data dir.
func (s *Store) Generation(context.Context) (uint64, error) { return s.gen.Load() + 1, nil }
