package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rotor-secrets/rotor/internal/store"
)

// Cross-node notices (store.Shared). Every Write sends, in its transaction
// and so only if it commits, a NOTIFY on channel notifyChannel whose
// payload is the sending Store's id. What a transaction Publishes is
// counted and sent just before its COMMIT, in one statement: NOTIFY
// payloads holding the id, then records "topic\nlength\npayload", as many
// as fit in maxNotify bytes. Every Store keeps one connection of its own
// (not from the pool) LISTENing on the channel: a notice from another
// Store goes to the watchers, one Notice per record; the Store's own are
// skipped.
//
// A notice arrives a little after the commit (BenchmarkNoticeLatency: p99
// about 0.1 ms after the Write returned, more on a starved machine), so
// what must never be stale — the read cache of secret values — checks the
// generation in the database instead (Generation). While the connection
// is down notices may be lost; once it listens again the watchers get a
// Missed notice.

const notifyChannel = "rotor_changes"

// Listener timings: how long to wait for a notice before checking that the
// connection is alive, and the reconnection backoff.
const (
	listenIdle       = 15 * time.Second
	listenPing       = 5 * time.Second
	reconnectInitial = 50 * time.Millisecond
	reconnectMax     = 2 * time.Second
)

func newStoreID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// qPublish counts the topics (store.TopicVersions; $1 has one element per
// Publish) and queues the notices $3 on channel $2.
const qPublish = `WITH counted AS (
	INSERT INTO rotor_topics (topic, gen) SELECT t, count(*) FROM unnest($1::text[]) AS t GROUP BY t
	ON CONFLICT (topic) DO UPDATE SET gen = rotor_topics.gen + excluded.gen)
SELECT pg_notify($2, n) FROM unnest($3::text[]) AS n`

// qCounters reads the generation (topic "") and every topic's count.
const qCounters = `SELECT '', gen FROM rotor_generation UNION ALL SELECT topic, gen FROM rotor_topics`

// Generation implements store.Generations: the number of Writes every
// node has committed, plus one, read from the database.
func (s *Store) Generation(ctx context.Context) (uint64, error) {
	m, err := s.versions(ctx)
	if err != nil {
		return 0, err
	}
	return m.Gen + 1, nil
}

// TopicVersion implements store.TopicVersions.
func (s *Store) TopicVersion(ctx context.Context, topic string) (uint64, error) {
	m, err := s.versions(ctx)
	if err != nil {
		return 0, err
	}
	return m.Topics[topic], nil
}

// versions reads the counters, or takes them from ctx's memo.
func (s *Store) versions(ctx context.Context) (*store.VersionMemo, error) {
	m := store.MemoFrom(ctx)
	if m != nil && m.Filled {
		return m, nil
	}
	if m == nil {
		m = &store.VersionMemo{}
	}
	rows, err := s.pool.Query(ctx, qCounters)
	if err != nil {
		return nil, fmt.Errorf("postgres: versions: %w", err)
	}
	topics := make(map[string]uint64)
	var gen uint64
	var topic string
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&topic, &n}, func() error {
		if topic == "" {
			gen = uint64(n)
		} else {
			topics[topic] = uint64(n)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: versions: %w", err)
	}
	m.Filled, m.Gen, m.Topics = true, gen, topics
	return m, nil
}

// Watch implements store.Shared.
func (s *Store) Watch(fn func(store.Notice)) {
	s.watchMu.Lock()
	s.watchers = append(s.watchers, fn)
	s.watchMu.Unlock()
}

func (s *Store) notify(n store.Notice) {
	s.watchMu.Lock()
	ws := s.watchers
	s.watchMu.Unlock()
	for _, fn := range ws {
		fn(n)
	}
}

// Listening reports whether the notice connection is up (for health).
func (s *Store) Listening() bool { return s.listening.Load() }

// Publish implements store.Publisher.
func (t *txn) Publish(ctx context.Context, topic, payload string) error {
	if err := t.check(ctx, true); err != nil {
		return err
	}
	if topic == "" || strings.Contains(topic, "\n") {
		return fmt.Errorf("postgres: publish: bad topic %q", topic)
	}
	if len(topic)+len(payload) > store.MaxPayload {
		return fmt.Errorf("postgres: publish %s: payload of %d bytes is over the limit", topic, len(payload))
	}
	t.published = append(t.published, published{topic, payload})
	return nil
}

// published is one Publish of a transaction, sent at its end.
type published struct{ topic, payload string }

// maxNotify bounds one NOTIFY payload (PostgreSQL's limit is 8000 bytes).
const maxNotify = 7900

// flushPublished counts and sends what the transaction published, in one
// statement.
func (t *txn) flushPublished(ctx context.Context) error {
	if len(t.published) == 0 {
		return nil
	}
	topics := make([]string, len(t.published))
	var notices []string
	var b strings.Builder
	for i, p := range t.published {
		topics[i] = p.topic
		rec := p.topic + "\n" + strconv.Itoa(len(p.payload)) + "\n" + p.payload
		if b.Len() > 0 && b.Len()+len(rec) > maxNotify {
			notices = append(notices, b.String())
			b.Reset()
		}
		if b.Len() == 0 {
			b.WriteString(t.id)
			b.WriteByte('\n')
		}
		b.WriteString(rec)
	}
	notices = append(notices, b.String())
	if _, err := t.tx.Exec(ctx, qPublish, topics, notifyChannel, notices); err != nil {
		return fmt.Errorf("postgres: publish: %w", err)
	}
	return nil
}

// parseNotice splits a notice payload into the sender's id and its
// records (none for a Write's own notice).
func parseNotice(payload string) (id string, recs []published, ok bool) {
	id, rest, _ := strings.Cut(payload, "\n")
	for rest != "" {
		topic, r, ok1 := strings.Cut(rest, "\n")
		n, r, ok2 := strings.Cut(r, "\n")
		size, err := strconv.Atoi(n)
		if !ok1 || !ok2 || err != nil || size < 0 || size > len(r) {
			return id, recs, false
		}
		recs = append(recs, published{topic, r[:size]})
		rest = r[size:]
	}
	return id, recs, true
}

// listen runs until ctx ends, (re)connecting the notice connection.
func (s *Store) listen(ctx context.Context, cfg *pgx.ConnConfig) {
	defer close(s.listenDone)
	backoff := reconnectInitial
	for ctx.Err() == nil {
		conn, err := s.connectListener(ctx, cfg)
		if err == nil {
			backoff = reconnectInitial
			err = s.receive(ctx, conn)
			s.listening.Store(false)
			conn.Close(context.Background())
		}
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("postgres: notice connection lost; reconnecting", "err", err)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, reconnectMax)
	}
}

func (s *Store) connectListener(ctx context.Context, cfg *pgx.ConnConfig) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, `LISTEN `+notifyChannel); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	return conn, nil
}

// receive delivers notices until the connection fails or ctx ends. Notices
// sent before LISTEN took effect are unknown: the watchers hear Missed.
func (s *Store) receive(ctx context.Context, conn *pgx.Conn) error {
	s.listening.Store(true)
	s.notify(store.Notice{Missed: true})
	for {
		wctx, cancel := context.WithTimeout(ctx, listenIdle)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			if !errors.Is(err, context.DeadlineExceeded) || conn.IsClosed() {
				return err
			}
			// Quiet for a while: make sure the connection still works.
			pctx, cancel := context.WithTimeout(ctx, listenPing)
			err := conn.Ping(pctx)
			cancel()
			if err != nil {
				return err
			}
			continue
		}
		id, recs, ok := parseNotice(n.Payload)
		switch {
		case id == s.id:
		case !ok:
			s.log.Error("postgres: malformed notice; caches dropped", "sender", id)
			s.notify(store.Notice{Missed: true})
		case len(recs) == 0:
			s.notify(store.Notice{})
		default:
			for _, r := range recs {
				s.notify(store.Notice{Topic: r.topic, Payload: r.payload})
			}
		}
	}
}

// Pool is the Store's connection pool, for the lease (internal/lease) that
// lives in the same database. The Store keeps ownership.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }
