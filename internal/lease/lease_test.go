package lease_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rotor-secrets/rotor/internal/dbtest"
	"github.com/rotor-secrets/rotor/internal/lease"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

const (
	ttl   = 600 * time.Millisecond
	renew = 200 * time.Millisecond
	retry = 50 * time.Millisecond
)

// freshDSN creates an empty database on the shared server, dropped when t
// ends, and returns a DSN for it.
func freshDSN(t *testing.T) string {
	t.Helper()
	pg := dbtest.SharedPostgres(t)
	name := pg.CreateDatabase(t, "lease")
	t.Cleanup(func() {
		err := pg.Exec(context.Background(), "DROP DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
		if err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	return pg.DSN(pg.SuperUser, pg.SuperPassword, name)
}

func newPool(t *testing.T, dsn string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func open(t *testing.T, pool *pgxpool.Pool, holder string) *lease.Lease {
	t.Helper()
	l, err := lease.Open(t.Context(), pool, lease.Options{
		Name: "rotation", Holder: holder, TTL: ttl, Renew: renew, Retry: retry,
	})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return l
}

func acquire(t *testing.T, l *lease.Lease) (int64, bool) {
	t.Helper()
	token, ok, err := l.TryAcquire(t.Context())
	if err != nil {
		t.Fatalf("TryAcquire: %v", err)
	}
	return token, ok
}

// check runs lease.Check in a transaction of its own.
func check(t *testing.T, pool *pgxpool.Pool, token int64) error {
	t.Helper()
	var got error
	err := pgx.BeginFunc(t.Context(), pool, func(tx pgx.Tx) error {
		got = lease.Check(t.Context(), tx, "rotation", token)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// waitAcquire polls TryAcquire until it succeeds or limit passes.
func waitAcquire(t *testing.T, l *lease.Lease, limit time.Duration) (int64, time.Duration) {
	t.Helper()
	start := time.Now()
	for time.Since(start) < limit {
		if token, ok := acquire(t, l); ok {
			return token, time.Since(start)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("not acquired within %v", limit)
	return 0, 0
}

func TestOpenValidates(t *testing.T) {
	pool := newPool(t, freshDSN(t))
	tests := []struct {
		name string
		opts lease.Options
	}{
		{"no name", lease.Options{Holder: "a"}},
		{"no holder", lease.Options{Name: "x"}},
		{"renew too slow", lease.Options{Name: "x", Holder: "a", TTL: time.Second, Renew: 600 * time.Millisecond}},
		{"negative", lease.Options{Name: "x", Holder: "a", Retry: -time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := lease.Open(t.Context(), pool, tt.opts); err == nil {
				t.Error("Open succeeded, want error")
			}
		})
	}
}

func TestOnlyOneAcquires(t *testing.T) {
	pool := newPool(t, freshDSN(t))
	a, b := open(t, pool, "a"), open(t, pool, "b")
	tokA, ok := acquire(t, a)
	if !ok || tokA != 1 {
		t.Fatalf("a: TryAcquire = %d, %v, want 1, true", tokA, ok)
	}
	if _, ok := acquire(t, b); ok {
		t.Fatal("b acquired a live lease held by a")
	}
	// A renewal keeps the token.
	if got, ok := acquire(t, a); !ok || got != tokA {
		t.Fatalf("a: renew = %d, %v, want %d, true", got, ok, tokA)
	}
	if err := check(t, pool, tokA); err != nil {
		t.Errorf("Check(holder's token) = %v, want nil", err)
	}
}

func TestConcurrentTake(t *testing.T) {
	pool := newPool(t, freshDSN(t))
	const n = 8
	ls := make([]*lease.Lease, n)
	for i := range ls {
		ls[i] = open(t, pool, string(rune('a'+i)))
	}
	var wg sync.WaitGroup
	wins := make(chan int64, n)
	for _, l := range ls {
		wg.Go(func() {
			token, ok, err := l.TryAcquire(t.Context())
			if err != nil {
				t.Error(err)
			}
			if ok {
				wins <- token
			}
		})
	}
	wg.Wait()
	close(wins)
	if got := len(wins); got != 1 {
		t.Fatalf("%d holders acquired at once, want 1", got)
	}
}

func TestTakeoverAfterTTL(t *testing.T) {
	pool := newPool(t, freshDSN(t))
	a, b := open(t, pool, "a"), open(t, pool, "b")
	tokA, ok := acquire(t, a)
	if !ok {
		t.Fatal("a did not acquire")
	}
	// a stops renewing; b takes over once the TTL has passed, not before.
	tokB, after := waitAcquire(t, b, 5*time.Second)
	if after < ttl/2 {
		t.Errorf("b took over after %v, before the ttl %v", after, ttl)
	}
	if tokB <= tokA {
		t.Errorf("token after takeover = %d, want > %d", tokB, tokA)
	}
	if err := check(t, pool, tokA); !errors.Is(err, lease.ErrLost) {
		t.Errorf("Check(stale token) = %v, want ErrLost", err)
	}
	if err := check(t, pool, tokB); err != nil {
		t.Errorf("Check(new token) = %v, want nil", err)
	}
	if _, ok := acquire(t, a); ok {
		t.Error("stale holder took the lease back from a live holder")
	}
	// A holder that lets its own lease lapse starts a new tenure.
	time.Sleep(ttl + 100*time.Millisecond)
	if got, ok := acquire(t, b); !ok || got <= tokB {
		t.Errorf("b after its own lapse = %d, %v, want > %d, true", got, ok, tokB)
	}
}

func TestCheckFencesTakeover(t *testing.T) {
	pool := newPool(t, freshDSN(t))
	a, b := open(t, pool, "a"), open(t, pool, "b")
	tokA, _ := acquire(t, a)
	// While a's fenced transaction is open, b cannot take over even after
	// the TTL; it gets its turn once the transaction ends.
	tx, err := pool.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if err := lease.Check(t.Context(), tx, "rotation", tokA); err != nil {
		t.Fatalf("Check = %v", err)
	}
	time.Sleep(ttl + 100*time.Millisecond)
	got := make(chan bool, 1)
	go func() {
		_, ok, err := b.TryAcquire(t.Context())
		if err != nil {
			t.Error(err)
		}
		got <- ok
	}()
	select {
	case <-got:
		t.Fatal("b took the lease during a's fenced transaction")
	case <-time.After(200 * time.Millisecond):
	}
	if err := tx.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	if ok := <-got; !ok {
		t.Error("b did not take over after the fenced transaction ended")
	}
	if err := check(t, pool, tokA); !errors.Is(err, lease.ErrLost) {
		t.Errorf("Check(stale token) = %v, want ErrLost", err)
	}
}

func TestCheckMissing(t *testing.T) {
	pool := newPool(t, freshDSN(t))
	open(t, pool, "a")
	if err := check(t, pool, 1); !errors.Is(err, lease.ErrLost) {
		t.Errorf("Check(no lease row) = %v, want ErrLost", err)
	}
}

func TestReleaseHandsOver(t *testing.T) {
	pool := newPool(t, freshDSN(t))
	a, b := open(t, pool, "a"), open(t, pool, "b")
	tokA, _ := acquire(t, a)
	if err := b.Release(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, ok := acquire(t, b); ok {
		t.Fatal("a non-holder's Release freed the lease")
	}
	if err := a.Release(t.Context()); err != nil {
		t.Fatal(err)
	}
	tokB, ok := acquire(t, b)
	if !ok || tokB <= tokA {
		t.Fatalf("b after release = %d, %v, want > %d, true", tokB, ok, tokA)
	}
}

// runner runs l.Run in the background and reports each tenure.
type runner struct {
	tokens chan int64
	ended  chan int64
	cancel context.CancelFunc
	done   chan struct{}
}

func run(t *testing.T, l *lease.Lease) *runner {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	r := &runner{tokens: make(chan int64, 10), ended: make(chan int64, 10), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		l.Run(ctx, func(ctx context.Context, token int64) {
			r.tokens <- token
			<-ctx.Done()
			r.ended <- token
		})
	}()
	t.Cleanup(r.stop)
	return r
}

func (r *runner) stop() {
	r.cancel()
	<-r.done
}

func recv(t *testing.T, c <-chan int64, what string) int64 {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		return 0
	}
}

func TestRunRenewsAndReleases(t *testing.T) {
	pool := newPool(t, freshDSN(t))
	a, b := open(t, pool, "a"), open(t, pool, "b")
	ra := run(t, a)
	tokA := recv(t, ra.tokens, "a to acquire")
	rb := run(t, b)
	// Across several TTLs a keeps renewing, so b never gets in.
	select {
	case tok := <-rb.tokens:
		t.Fatalf("b acquired token %d while a was renewing", tok)
	case tok := <-ra.ended:
		t.Fatalf("a's work ended (token %d) while a was renewing", tok)
	case <-time.After(3 * ttl):
	}
	if err := check(t, pool, tokA); err != nil {
		t.Fatalf("Check(a's token) = %v", err)
	}
	// a stops: its work ends, the lease is released and b takes over well
	// inside one TTL.
	start := time.Now()
	ra.stop()
	if got := recv(t, ra.ended, "a's work to end"); got != tokA {
		t.Errorf("ended token = %d, want %d", got, tokA)
	}
	tokB := recv(t, rb.tokens, "b to take over")
	if d := time.Since(start); d > ttl/2 {
		t.Errorf("b took over %v after a stopped, want well under ttl %v", d, ttl)
	}
	if tokB <= tokA {
		t.Errorf("b's token %d, want > %d", tokB, tokA)
	}
	if err := check(t, pool, tokA); !errors.Is(err, lease.ErrLost) {
		t.Errorf("Check(a's stale token) = %v, want ErrLost", err)
	}
}

func TestRunCancelsWhenRenewalFails(t *testing.T) {
	dsn := freshDSN(t)
	poolA, poolB := newPool(t, dsn), newPool(t, dsn)
	a, b := open(t, poolA, "a"), open(t, poolB, "b")
	ra := run(t, a)
	tokA := recv(t, ra.tokens, "a to acquire")
	rb := run(t, b)
	// a loses its database: its renewals fail, and its work must stop
	// before the lease expires and b can take over.
	cut := time.Now()
	poolA.Close()
	recv(t, ra.ended, "a's work to end")
	endedAfter := time.Since(cut)
	tokB := recv(t, rb.tokens, "b to take over")
	tookAfter := time.Since(cut)
	if endedAfter >= tookAfter {
		t.Errorf("a's work ended %v after the cut, b took over at %v: not fenced in time", endedAfter, tookAfter)
	}
	if endedAfter > ttl {
		t.Errorf("a's work ended %v after the cut, want under ttl %v", endedAfter, ttl)
	}
	if tokB <= tokA {
		t.Errorf("b's token %d, want > %d", tokB, tokA)
	}
	if err := check(t, poolB, tokA); !errors.Is(err, lease.ErrLost) {
		t.Errorf("Check(a's stale token) = %v, want ErrLost", err)
	}
}

func TestRunCancelsWhenTakenOver(t *testing.T) {
	pool := newPool(t, freshDSN(t))
	a := open(t, pool, "a")
	ra := run(t, a)
	tokA := recv(t, ra.tokens, "a to acquire")
	// Someone else holds the row now (as if a had been partitioned away
	// past its TTL): a's next renewal finds it gone and stops its work.
	_, err := pool.Exec(t.Context(), `UPDATE rotor_leases SET holder = 'z', token = token + 1`)
	if err != nil {
		t.Fatal(err)
	}
	if got := recv(t, ra.ended, "a's work to end"); got != tokA {
		t.Errorf("ended token = %d, want %d", got, tokA)
	}
}

// TestWakeRetriesAtOnce: a Run waiting to retry (here for an hour) tries
// again when woken, as a node does when the holder says it released.
func TestWakeRetriesAtOnce(t *testing.T) {
	pool := newPool(t, freshDSN(t))
	a := open(t, pool, "a")
	tokA, _ := acquire(t, a)
	attempts := make(chan struct{}, 100) // Run reads the clock before each attempt
	b, err := lease.Open(t.Context(), pool, lease.Options{
		Name: "rotation", Holder: "b", TTL: time.Hour, Renew: time.Minute, Retry: time.Hour,
		Now: func() time.Time { attempts <- struct{}{}; return time.Now() },
	})
	if err != nil {
		t.Fatal(err)
	}
	wait := func(what string) {
		t.Helper()
		select {
		case <-attempts:
		case <-time.After(5 * time.Second):
			t.Fatalf("no %s within 5s", what)
		}
	}
	rb := run(t, b)
	wait("first attempt")
	b.Wake()
	wait("second attempt after Wake (the retry is an hour away)")
	if err := a.Release(t.Context()); err != nil {
		t.Fatal(err)
	}
	b.Wake()
	if tok := recv(t, rb.tokens, "b's tenure after the release and Wake"); tok <= tokA {
		t.Errorf("b's token %d, want more than a's %d", tok, tokA)
	}
}
