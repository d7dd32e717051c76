package postgres_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rotor-secrets/rotor/internal/dbtest"
	"github.com/rotor-secrets/rotor/internal/lease"
	"github.com/rotor-secrets/rotor/internal/store"
	"github.com/rotor-secrets/rotor/internal/store/postgres"
)

// notices collects what a Store's watcher hears.
type notices struct {
	mu  sync.Mutex
	got []store.Notice
	ch  chan struct{}
}

func watch(s *postgres.Store) *notices {
	n := &notices{ch: make(chan struct{}, 1000)}
	s.Watch(func(x store.Notice) {
		n.mu.Lock()
		n.got = append(n.got, x)
		n.mu.Unlock()
		n.ch <- struct{}{}
	})
	return n
}

// waitFor waits until a notice matching ok arrives and returns it.
func (n *notices) waitFor(t *testing.T, what string, ok func(store.Notice) bool) store.Notice {
	t.Helper()
	deadline := time.After(10 * time.Second)
	seen := 0
	for {
		n.mu.Lock()
		for ; seen < len(n.got); seen++ {
			if ok(n.got[seen]) {
				x := n.got[seen]
				n.got = n.got[seen+1:]
				n.mu.Unlock()
				return x
			}
		}
		n.mu.Unlock()
		select {
		case <-n.ch:
		case <-deadline:
			t.Fatalf("no notice %s within 10s", what)
		}
	}
}

func openStore(t *testing.T, dsn string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), dsn, postgres.Options{MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func waitListening(t *testing.T, s *postgres.Store) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !s.Listening(); {
		if time.Now().After(deadline) {
			t.Fatal("the notice connection did not come up within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func put(t *testing.T, s store.Store, ctx context.Context, k, v string) error {
	t.Helper()
	return s.Write(ctx, func(tx store.Tx) error { return tx.PutMeta(ctx, k, v) })
}

func TestNotices(t *testing.T) {
	dsn := freshDSN(t)
	a, b := openStore(t, dsn), openStore(t, dsn)
	waitListening(t, a)
	waitListening(t, b)
	na, nb := watch(a), watch(b)

	// A plain commit on A: B's generation has moved as soon as A's Write
	// returns, and B then hears an empty notice.
	gen := func(s *postgres.Store) uint64 {
		g, err := s.Generation(t.Context())
		if err != nil || g == 0 {
			t.Fatalf("Generation = %d, %v", g, err)
		}
		return g
	}
	g0 := gen(b)
	if err := b.Read(t.Context(), func(tx store.Tx) error { _, err := tx.Meta(t.Context(), "k"); return err }); !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	if g := gen(b); g != g0 {
		t.Fatalf("Generation moved with nothing written: %d then %d", g0, g)
	}
	if err := put(t, a, t.Context(), "k", "1"); err != nil {
		t.Fatal(err)
	}
	if g := gen(b); g <= g0 {
		t.Errorf("B's generation is %d after A's commit, was %d", g, g0)
	}
	nb.waitFor(t, "of A's commit", func(n store.Notice) bool { return n.Topic == "" && !n.Missed })
	// A failed Write does not count.
	g1 := gen(a)
	if err := a.Write(t.Context(), func(tx store.Tx) error { return errors.New("no") }); err == nil {
		t.Fatal("failing Write succeeded")
	}
	if g := gen(a); g != g1 {
		t.Errorf("a rolled-back Write moved the generation %d → %d", g1, g)
	}

	// Published notices arrive, in commit order, only when the transaction
	// commits.
	for i, topic := range []string{"labels", "iam"} {
		err := a.Write(t.Context(), func(tx store.Tx) error {
			return tx.(store.Publisher).Publish(t.Context(), topic, "payload\nwith a newline "+string(rune('0'+i)))
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	rolledBack := errors.New("roll back")
	err := a.Write(t.Context(), func(tx store.Tx) error {
		if err := tx.(store.Publisher).Publish(t.Context(), "lost", "x"); err != nil {
			return err
		}
		return rolledBack
	})
	if !errors.Is(err, rolledBack) {
		t.Fatal(err)
	}
	if err := put(t, a, t.Context(), "k", "marker"); err != nil {
		t.Fatal(err)
	}
	n1 := nb.waitFor(t, "labels", func(n store.Notice) bool { return n.Topic != "" })
	n2 := nb.waitFor(t, "iam", func(n store.Notice) bool { return n.Topic != "" })
	if n1.Topic != "labels" || n1.Payload != "payload\nwith a newline 0" || n2.Topic != "iam" {
		t.Errorf("notices = %+v, %+v; want labels then iam with their payloads", n1, n2)
	}
	// Many in one transaction, more than one NOTIFY can carry: all arrive,
	// in order, whole.
	big := func(i int) string { return strings.Repeat(string(rune('a'+i)), 3000) + "\n3\nx" }
	err = a.Write(t.Context(), func(tx store.Tx) error {
		for i := range 5 {
			if err := tx.(store.Publisher).Publish(t.Context(), "bulk", big(i)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		n := nb.waitFor(t, "bulk", func(n store.Notice) bool { return n.Topic != "" })
		if n.Topic != "bulk" || n.Payload != big(i) {
			t.Fatalf("bulk notice %d: topic %q, payload of %d bytes starting %.10q", i, n.Topic, len(n.Payload), n.Payload)
		}
	}

	// A read at B right after sees the committed value (no stale cache).
	nb.mu.Lock()
	for _, n := range nb.got {
		if n.Topic == "lost" {
			t.Error("a rolled-back transaction's notice was delivered")
		}
	}
	nb.mu.Unlock()

	// A never hears its own commits.
	na.mu.Lock()
	for _, n := range na.got {
		if !n.Missed {
			t.Errorf("A heard a notice of its own commit: %+v", n)
		}
	}
	na.mu.Unlock()

	// Publish is refused in a read and past the size limit.
	err = a.Read(t.Context(), func(tx store.Tx) error {
		if p, ok := tx.(store.Publisher); ok {
			return p.Publish(t.Context(), "x", "y")
		}
		return nil
	})
	if err == nil {
		t.Error("Publish in a read transaction succeeded")
	}
	err = a.Write(t.Context(), func(tx store.Tx) error {
		return tx.(store.Publisher).Publish(t.Context(), "x", string(make([]byte, store.MaxPayload)))
	})
	if err == nil {
		t.Error("Publish of an oversized payload succeeded")
	}
}

// TestListenerReconnects: when the notice connection dies, the Store
// reconnects, and watchers hear Missed.
func TestListenerReconnects(t *testing.T) {
	dsn := freshDSN(t)
	b := openStore(t, dsn)
	waitListening(t, b)
	nb := watch(b)
	pg := dbtest.SharedPostgres(t)
	// Only this test's store listens on this server now.
	err := pg.Exec(t.Context(), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE query = 'LISTEN rotor_changes' AND pid <> pg_backend_pid()`)
	if err != nil {
		t.Fatal(err)
	}
	nb.waitFor(t, "Missed after the reconnection", func(n store.Notice) bool { return n.Missed })
	waitListening(t, b)
	// And notices flow again.
	a := openStore(t, dsn)
	if err := put(t, a, t.Context(), "k", "v"); err != nil {
		t.Fatal(err)
	}
	nb.waitFor(t, "after the reconnection", func(n store.Notice) bool { return !n.Missed })
}

// TestFence: a Write fenced with a lease token commits only while that
// tenure lasts.
func TestFence(t *testing.T) {
	dsn := freshDSN(t)
	s := openStore(t, dsn)
	pool, err := pgxpool.New(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	ttl := 300 * time.Millisecond
	l1, err := lease.Open(t.Context(), pool, lease.Options{Name: "rotation", Holder: "n1", TTL: ttl, Renew: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	l2, err := lease.Open(t.Context(), pool, lease.Options{Name: "rotation", Holder: "n2", TTL: ttl, Renew: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	tok, ok, err := l1.TryAcquire(t.Context())
	if err != nil || !ok {
		t.Fatalf("TryAcquire: %v %v", ok, err)
	}
	fenced := store.WithFence(t.Context(), store.Fence{Lease: "rotation", Token: tok})
	if err := put(t, s, fenced, "k", "leader"); err != nil {
		t.Fatalf("fenced write by the holder: %v", err)
	}
	time.Sleep(ttl + 50*time.Millisecond)
	tok2, ok, err := l2.TryAcquire(t.Context())
	if err != nil || !ok || tok2 <= tok {
		t.Fatalf("takeover: token %d ok %v err %v", tok2, ok, err)
	}
	err = put(t, s, fenced, "k", "stale")
	if !errors.Is(err, store.ErrFenced) {
		t.Fatalf("fenced write after losing the lease: %v, want ErrFenced", err)
	}
	if err := put(t, s, t.Context(), "unfenced", "ok"); err != nil {
		t.Fatalf("unfenced write: %v", err)
	}
	err = s.Read(t.Context(), func(tx store.Tx) error {
		v, err := tx.Meta(t.Context(), "k")
		if err == nil && v != "leader" {
			t.Errorf("k = %q: the stale leader's write committed", v)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := put(t, s, store.WithFence(t.Context(), store.Fence{Lease: "rotation", Token: tok2}), "k", "new"); err != nil {
		t.Fatalf("fenced write by the new holder: %v", err)
	}
	if err := put(t, s, store.WithFence(t.Context(), store.Fence{Lease: "nonesuch", Token: 1}), "k", "x"); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("write fenced by a lease never taken: %v, want ErrFenced", err)
	}
}

// BenchmarkNoticeLatency measures how long after a Write returns on one
// Store another Store's watcher hears of it (the window in which a node
// could serve a value cached before another node's write): ns/op is the
// whole round (commit + delivery); p50-µs and p99-µs the delivery alone.
func BenchmarkNoticeLatency(b *testing.B) {
	pg := dbtest.StartPostgres(b)
	dsn := pg.DSN(pg.SuperUser, pg.SuperPassword, pg.CreateDatabase(b, "bench"))
	open := func() *postgres.Store {
		s, err := postgres.Open(b.Context(), dsn, postgres.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		for !s.Listening() {
			time.Sleep(time.Millisecond)
		}
		return s
	}
	a, r := open(), open()
	heard := make(chan time.Time, 16)
	r.Watch(func(n store.Notice) {
		if n.Topic == "" && !n.Missed {
			heard <- time.Now()
		}
	})
	delays := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		if err := a.Write(b.Context(), func(tx store.Tx) error { return tx.PutMeta(b.Context(), "k", "v") }); err != nil {
			b.Fatal(err)
		}
		done := time.Now()
		at := <-heard
		delays = append(delays, at.Sub(done))
	}
	b.StopTimer()
	slices.Sort(delays)
	q := func(p float64) float64 { return float64(delays[int(p*float64(len(delays)-1))].Nanoseconds()) / 1e3 }
	b.ReportMetric(q(0.5), "p50-µs")
	b.ReportMetric(q(0.99), "p99-µs")
}

// TestTopicVersions: each committed transaction that published a topic
// counts once for it, on every Store, at once; a memo reads them once.
func TestTopicVersions(t *testing.T) {
	dsn := freshDSN(t)
	a, b := openStore(t, dsn), openStore(t, dsn)
	version := func(ctx context.Context, s *postgres.Store, topic string) uint64 {
		t.Helper()
		v, err := s.TopicVersion(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if v := version(t.Context(), b, "iam"); v != 0 {
		t.Fatalf("a topic never published has version %d", v)
	}
	publish := func(topics ...string) error {
		return a.Write(t.Context(), func(tx store.Tx) error {
			for _, topic := range topics {
				if err := tx.(store.Publisher).Publish(t.Context(), topic, ""); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := publish("iam", "iam", "keys"); err != nil {
		t.Fatal(err)
	}
	if err := publish("iam"); err != nil {
		t.Fatal(err)
	}
	_ = a.Write(t.Context(), func(tx store.Tx) error {
		tx.(store.Publisher).Publish(t.Context(), "iam", "")
		return errors.New("rolled back")
	})
	if v := version(t.Context(), b, "iam"); v != 3 {
		t.Errorf("iam version on the other store = %d, want 3 (two publishes in one transaction count twice, a rollback not at all)", v)
	}
	if v := version(t.Context(), b, "keys"); v != 1 {
		t.Errorf("keys version = %d, want 1", v)
	}

	// In a memo ctx the counters are read once: a later commit is not seen
	// by it, and is by a fresh ctx.
	memo := store.WithVersionMemo(t.Context())
	g0, err := b.Generation(memo)
	if err != nil {
		t.Fatal(err)
	}
	v0 := version(memo, b, "iam")
	if err := publish("iam"); err != nil {
		t.Fatal(err)
	}
	if g, _ := b.Generation(memo); g != g0 || version(memo, b, "iam") != v0 {
		t.Error("a memo ctx read the counters again")
	}
	if g, _ := b.Generation(t.Context()); g <= g0 || version(t.Context(), b, "iam") != v0+1 {
		t.Error("a fresh ctx did not see the later commit")
	}
}
