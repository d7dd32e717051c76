package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rotor-secrets/rotor/internal/store"
	"github.com/rotor-secrets/rotor/internal/store/sqlite"
)

// hangGuard bounds waits that only a broken store would exceed.
const hangGuard = 30 * time.Second

// write is one Write of a batch under test.
type write struct {
	ctx context.Context // t.Context() when nil
	fn  func(tx store.Tx) error
}

// outcome is how a Write ended.
type outcome struct {
	returned bool // false if fn called runtime.Goexit
	err      error
	panicked any
}

// batch runs writes[0] in a Write that holds the write connection until each
// of the others waits for it (they queue in order), so that all of them
// share its transaction, up to sqlite.MaxBatch. It returns a func that lets
// them go and returns their outcomes, in order.
func batch(t *testing.T, s *sqlite.Store, writes ...write) (release func() []outcome) {
	t.Helper()
	out := make([]outcome, len(writes))
	var wg sync.WaitGroup
	run := func(i int, fn func(tx store.Tx) error) {
		wg.Go(func() {
			ctx := writes[i].ctx
			if ctx == nil {
				ctx = t.Context()
			}
			defer func() { out[i].panicked = recover() }()
			out[i].err = s.Write(ctx, fn)
			out[i].returned = true
		})
	}
	holding, let := make(chan struct{}), make(chan struct{})
	run(0, func(tx store.Tx) error {
		close(holding)
		<-let
		return writes[0].fn(tx)
	})
	waitFor(t, "first Write start", holding)
	for i := 1; i < len(writes); i++ {
		run(i, writes[i].fn)
		// One at a time, so that they queue in order.
		waitUntil(t, fmt.Sprintf("Write %d waiting", i), func() bool { return sqlite.Waiting(s) == i })
	}
	return func() []outcome {
		close(let)
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		waitFor(t, "batched Writes", done)
		return out
	}
}

func waitFor(t *testing.T, what string, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(hangGuard):
		t.Fatalf("%s: still blocked after %v", what, hangGuard)
	}
}

// waitUntil polls cond: the Writes it waits for are on other goroutines.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v", what, hangGuard)
		}
		time.Sleep(50 * time.Microsecond)
	}
}

// countCommits counts the store's COMMIT attempts.
func countCommits(s *sqlite.Store) *atomic.Int64 {
	n := new(atomic.Int64)
	sqlite.SetBeforeCommit(s, func(context.Context, *sql.Conn) error {
		n.Add(1)
		return nil
	})
	return n
}

func put(key string) func(tx store.Tx) error {
	return func(tx store.Tx) error { return tx.PutMeta(context.Background(), key, "v") }
}

// meta reports whether key is in the store, failing t on other errors.
func meta(t *testing.T, s store.Store, key string) bool {
	t.Helper()
	err := s.Read(t.Context(), func(tx store.Tx) error {
		_, err := tx.Meta(t.Context(), key)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return false
	}
	if err != nil {
		t.Fatalf("Meta(%s): %v", key, err)
	}
	return true
}

// mixed is writes[0] putting "first", then n Writes cycling through
// success (putting "ok/i"), fn error and panic, each after a change of its
// own ("tried/i").
func mixed(n int) (writes []write, errs []error) {
	writes = []write{{fn: put("first")}}
	errs = make([]error, n+1)
	for i := 1; i <= n; i++ {
		errs[i] = fmt.Errorf("fn %d failed", i)
		writes = append(writes, write{fn: func(tx store.Tx) error {
			ctx := context.Background()
			if err := tx.PutMeta(ctx, fmt.Sprintf("tried/%d", i), "v"); err != nil {
				return err
			}
			switch i % 3 {
			case 1:
				return errs[i]
			case 2:
				panic(fmt.Sprintf("panic %d", i))
			}
			return tx.PutMeta(ctx, fmt.Sprintf("ok/%d", i), "v")
		}})
	}
	return writes, errs
}

// checkMixed checks the outcome of each failing and panicking Write of
// mixed; the caller checks the successful ones.
func checkMixed(t *testing.T, s store.Store, out []outcome, errs []error) {
	t.Helper()
	for i := 1; i < len(out); i++ {
		switch i % 3 {
		case 1:
			if !errors.Is(out[i].err, errs[i]) || out[i].panicked != nil {
				t.Errorf("Write %d: error %v, panic %v; want its fn's error", i, out[i].err, out[i].panicked)
			}
		case 2:
			if want := fmt.Sprintf("panic %d", i); out[i].panicked != want {
				t.Errorf("Write %d: recovered %v (error %v); want its fn's panic %q", i, out[i].panicked, out[i].err, want)
			}
		}
		if i%3 != 0 && meta(t, s, fmt.Sprintf("tried/%d", i)) {
			t.Errorf("Write %d failed but its change is visible", i)
		}
	}
}

func TestGroupCommitOneCommitPerBatch(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "rotor.db"))
	defer s.Close()
	commits := countCommits(s)
	writes, errs := mixed(63)
	out := batch(t, s, writes...)()
	if got := commits.Load(); got != 1 {
		t.Errorf("%d COMMITs for 64 Writes queued together, want 1", got)
	}
	checkMixed(t, s, out, errs)
	if out[0].err != nil || !meta(t, s, "first") {
		t.Errorf("first Write: %v, committed %v; want committed", out[0].err, meta(t, s, "first"))
	}
	for i := 3; i < len(out); i += 3 {
		if out[i].err != nil || out[i].panicked != nil {
			t.Errorf("Write %d: error %v, panic %v; want success", i, out[i].err, out[i].panicked)
		}
		if !meta(t, s, fmt.Sprintf("ok/%d", i)) || !meta(t, s, fmt.Sprintf("tried/%d", i)) {
			t.Errorf("Write %d succeeded but its changes are not all visible", i)
		}
	}
}

func TestGroupCommitFailedCommitFailsTheWholeBatch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rotor.db")
	s := open(t, path)
	defer s.Close()
	// A real COMMIT failure that leaves the transaction open: a deferred
	// foreign-key violation is only checked by COMMIT.
	var failNext atomic.Bool
	var commits atomic.Int64
	sqlite.SetBeforeCommit(s, func(ctx context.Context, c *sql.Conn) error {
		commits.Add(1)
		if !failNext.Swap(false) {
			return nil
		}
		for _, q := range []string{
			"PRAGMA defer_foreign_keys = ON",
			`INSERT INTO versions (secret_arn, version_id, created_ms, last_accessed_ms, key_id, binary)
				VALUES ('arn:missing', 'v1', 0, 0, '', 0)`,
		} {
			if _, err := c.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("test: %v", err)
			}
		}
		return nil
	})
	failNext.Store(true)
	writes, errs := mixed(63)
	out := batch(t, s, writes...)()
	if got := commits.Load(); got != 1 {
		t.Errorf("%d COMMIT attempts for 64 Writes queued together, want 1", got)
	}
	checkMixed(t, s, out, errs)
	for i := 0; i < len(out); i += 3 {
		err := out[i].err
		switch {
		case err == nil:
			t.Errorf("Write %d: nil error after its batch's COMMIT failed", i)
		case errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict):
			t.Errorf("Write %d: %v; a failed COMMIT is not about its rows", i, err)
		case !strings.Contains(err.Error(), "commit"):
			t.Errorf("Write %d: %v; want the COMMIT's error", i, err)
		}
		key := fmt.Sprintf("ok/%d", i)
		if i == 0 {
			key = "first"
		}
		if meta(t, s, key) {
			t.Errorf("Write %d: %s visible after a failed COMMIT", i, key)
		}
	}
	// The transaction was rolled back: the store goes on.
	if err := s.Write(t.Context(), put("after")); err != nil {
		t.Fatalf("Write after a failed COMMIT: %v", err)
	}
	if !meta(t, s, "after") {
		t.Error("Write after a failed COMMIT returned nil but is not visible")
	}
	// Nor did the change that made COMMIT fail survive.
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var orphans int
	if err := db.QueryRowContext(t.Context(), "SELECT count(*) FROM versions").Scan(&orphans); err != nil {
		t.Fatal(err)
	}
	if orphans != 0 {
		t.Errorf("%d versions after the failed COMMIT, want 0", orphans)
	}
}

func TestGroupCommitBatchIsBounded(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "rotor.db"))
	defer s.Close()
	commits := countCommits(s)
	const n = sqlite.MaxBatch + 72
	writes := make([]write, n)
	for i := range writes {
		writes[i] = write{fn: put(fmt.Sprintf("k/%d", i))}
	}
	out := batch(t, s, writes...)()
	for i, o := range out {
		if o.err != nil {
			t.Errorf("Write %d: %v", i, o.err)
		}
	}
	if got := commits.Load(); got != 2 {
		t.Errorf("%d COMMITs for %d Writes queued together, want 2 (at most %d a batch)", got, n, sqlite.MaxBatch)
	}
	for i := range n {
		if !meta(t, s, fmt.Sprintf("k/%d", i)) {
			t.Fatalf("Write %d returned nil but is not visible", i)
		}
	}
}

func TestGroupCommitAllFailedCommitsNothing(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "rotor.db"))
	defer s.Close()
	commits := countCommits(s)
	errBoom := errors.New("boom")
	fail := write{fn: func(tx store.Tx) error {
		if err := tx.PutMeta(context.Background(), "k", "v"); err != nil {
			return err
		}
		return errBoom
	}}
	for i, o := range batch(t, s, fail, fail, fail)() {
		if !errors.Is(o.err, errBoom) {
			t.Errorf("Write %d: %v, want its fn's error", i, o.err)
		}
	}
	if got := commits.Load(); got != 0 {
		t.Errorf("%d COMMITs for a batch with nothing to commit, want 0", got)
	}
	if meta(t, s, "k") {
		t.Error("failed Writes' change is visible")
	}
}

func TestGroupCommitAbortedStatementAbortsTheBatch(t *testing.T) {
	// When a statement fails in a way that lets SQLite roll back the whole
	// transaction (here the file is full), the statements after it must
	// not run outside the batch's transaction, each committing alone.
	s := open(t, filepath.Join(t.TempDir(), "rotor.db"))
	defer s.Close()
	ctx := t.Context()
	if err := sqlite.ExecWrite(ctx, s, "PRAGMA max_page_count = 100"); err != nil {
		t.Fatal(err)
	}
	var bigErr, afterErr error
	out := batch(t, s,
		write{fn: put("a")},
		write{fn: func(tx store.Tx) error {
			bigErr = tx.PutMeta(ctx, "big", strings.Repeat("x", 1<<20))
			afterErr = tx.PutMeta(ctx, "b", "v")
			return nil // ignoring both
		}},
		write{fn: put("c")},
	)()
	if bigErr == nil {
		t.Fatal("PutMeta of 1 MiB into a 400 KiB database: nil error")
	}
	if afterErr == nil {
		t.Error("PutMeta after a full-disk error in the same transaction: nil error")
	}
	for i, o := range out[:2] {
		if o.err == nil {
			t.Errorf("Write %d: nil error, but its batch was aborted", i)
		}
	}
	if out[2].err != nil {
		t.Errorf("Write 2 (a batch of its own after the aborted one): %v", out[2].err)
	}
	for key, want := range map[string]bool{"a": false, "big": false, "b": false, "c": true} {
		if got := meta(t, s, key); got != want {
			t.Errorf("Meta(%s) present = %v, want %v", key, got, want)
		}
	}
}

func TestGroupCommitGoexitInFnHandsOn(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "rotor.db"))
	defer s.Close()
	out := batch(t, s,
		write{fn: put("first")},
		write{fn: func(tx store.Tx) error {
			if err := tx.PutMeta(context.Background(), "exited", "v"); err != nil {
				return err
			}
			runtime.Goexit() // as t.FailNow does
			return nil
		}},
		write{fn: put("after")},
	)()
	if out[1].returned {
		t.Errorf("Write whose fn called runtime.Goexit returned (%v)", out[1].err)
	}
	for _, i := range []int{0, 2} {
		if !out[i].returned || out[i].err != nil {
			t.Errorf("Write %d: returned %v, error %v", i, out[i].returned, out[i].err)
		}
	}
	for key, want := range map[string]bool{"first": true, "exited": false, "after": true} {
		if got := meta(t, s, key); got != want {
			t.Errorf("Meta(%s) present = %v, want %v", key, got, want)
		}
	}
}

func TestGroupCommitCancelledInTheQueue(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "rotor.db"))
	defer s.Close()

	t.Run("WhileWaiting", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		ran := false
		release := batch(t, s,
			write{fn: put("w/first")},
			write{ctx: ctx, fn: func(tx store.Tx) error { ran = true; return put("w/cancelled")(tx) }},
			write{fn: put("w/after")},
		)
		cancel()
		// It leaves the queue at once, though the first Write holds on.
		waitUntil(t, "cancelled Write leaving the queue", func() bool { return sqlite.Waiting(s) == 1 })
		out := release()
		if !errors.Is(out[1].err, context.Canceled) || ran {
			t.Errorf("cancelled Write: %v, fn ran %v; want context.Canceled without running fn", out[1].err, ran)
		}
		if out[0].err != nil || out[2].err != nil {
			t.Errorf("other Writes: %v, %v", out[0].err, out[2].err)
		}
	})

	t.Run("AsItsTurnComes", func(t *testing.T) {
		// The Write before it cancels it and hands it the connection: it
		// may see either first, and must pass the connection on. Repeated
		// to meet both orders.
		for i := range 20 {
			ctx, cancel := context.WithCancel(t.Context())
			ran := false
			out := batch(t, s,
				write{fn: func(tx store.Tx) error { cancel(); return put(fmt.Sprintf("t%d/first", i))(tx) }},
				write{ctx: ctx, fn: func(tx store.Tx) error { ran = true; return nil }},
				write{fn: put(fmt.Sprintf("t%d/after", i))},
			)()
			if !errors.Is(out[1].err, context.Canceled) || ran {
				t.Errorf("round %d: cancelled Write: %v, fn ran %v; want context.Canceled without running fn", i, out[1].err, ran)
			}
			if out[0].err != nil || out[2].err != nil {
				t.Errorf("round %d: other Writes: %v, %v", i, out[0].err, out[2].err)
			}
		}
	})
}

func TestCloseWaitsForQueuedWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rotor.db")
	s := open(t, path)
	writes := make([]write, 10)
	for i := range writes {
		writes[i] = write{fn: put(fmt.Sprintf("k/%d", i))}
	}
	release := batch(t, s, writes...)
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	// Waiting a moment can only miss a bug, never invent one.
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while Writes were queued", err)
	case <-time.After(50 * time.Millisecond):
	}
	for i, o := range release() {
		if o.err != nil {
			t.Errorf("Write %d, queued before Close: %v", i, o.err)
		}
	}
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(hangGuard):
		t.Fatal("Close still blocked after the Writes ended")
	}
	s = open(t, path)
	defer s.Close()
	for i := range writes {
		if !meta(t, s, fmt.Sprintf("k/%d", i)) {
			t.Errorf("k/%d missing after reopening", i)
		}
	}
}

func TestGenerationGrowsWithEveryCommit(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "rotor.db"))
	gen := func() uint64 {
		g, err := s.Generation(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	g0 := gen()
	if g0 == 0 {
		t.Fatal("Generation is 0")
	}
	err := s.Read(t.Context(), func(tx store.Tx) error { _, err := tx.Meta(t.Context(), "x"); return err })
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	if g := gen(); g != g0 {
		t.Errorf("a read changed the generation: %d → %d", g0, g)
	}
	if err := s.Write(t.Context(), func(tx store.Tx) error { return tx.PutMeta(t.Context(), "x", "1") }); err != nil {
		t.Fatal(err)
	}
	if g := gen(); g <= g0 {
		t.Errorf("a committed write left the generation at %d (was %d)", g, g0)
	}
}
