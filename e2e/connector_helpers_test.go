package e2e

// Helpers of the connector test (connector_test.go): a Source that counts
// what the connector asks of the cache, an application of worker goroutines
// that each keep running a query on a fresh connection, and a log handler
// that keeps the connector's log for inspection.

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	rotorclient "github.com/rotor-secrets/rotor/client"
)

const (
	connQueryTimeout = 30 * time.Second // one query, healing included
	connWarmup       = 30 * time.Second // for a query to succeed after a rotation
)

// connCountingSource passes through to a cache and counts the calls.
type connCountingSource struct {
	cache             *rotorclient.Cache
	gets, refreshNows atomic.Int64
}

func (s *connCountingSource) Get(ctx context.Context, id string) (*rotorclient.Secret, error) {
	s.gets.Add(1)
	return s.cache.Get(ctx, id)
}

func (s *connCountingSource) RefreshNow(ctx context.Context, id string) (*rotorclient.Secret, error) {
	s.refreshNows.Add(1)
	return s.cache.RefreshNow(ctx, id)
}

// connLog keeps a logger's output; safe for concurrent use.
type connLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *connLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *connLog) bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Clone(l.buf.Bytes())
}

// count is the number of log lines containing msg.
func (l *connLog) count(msg string) int {
	return strings.Count(string(l.bytes()), "msg=\""+msg)
}

func (l *connLog) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// connApp is an application: workers that each run SELECT 1 through db,
// whose pool keeps no idle connection, so every query opens a connection.
type connApp struct {
	db       *sql.DB
	stopping atomic.Bool
	wg       sync.WaitGroup

	mu       sync.Mutex
	ok       int
	failures []error
	lastOK   time.Time // start of the last successful query that started last
	changed  chan struct{}
}

func startConnApp(db *sql.DB, workers int) *connApp {
	a := &connApp{db: db, changed: make(chan struct{})}
	for range workers {
		a.wg.Add(1)
		go a.work()
	}
	return a
}

func (a *connApp) work() {
	defer a.wg.Done()
	for !a.stopping.Load() {
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), connQueryTimeout)
		var one int
		err := a.db.QueryRowContext(ctx, "SELECT 1").Scan(&one)
		cancel()
		if err == nil && one != 1 {
			err = fmt.Errorf("SELECT 1 returned %d", one)
		}
		a.mu.Lock()
		if err != nil {
			a.failures = append(a.failures, err)
		} else {
			a.ok++
			if start.After(a.lastOK) {
				a.lastOK = start
			}
		}
		close(a.changed)
		a.changed = make(chan struct{})
		a.mu.Unlock()
		if err != nil {
			time.Sleep(10 * time.Millisecond) // the test fails anyway; don't spin
		}
	}
}

// waitOKSince waits until a query that started after t succeeded.
func (a *connApp) waitOKSince(ctx context.Context, t time.Time) error {
	for {
		a.mu.Lock()
		done, changed := a.lastOK.After(t), a.changed
		a.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("no query started after %s succeeded: %w", t.Format(time.StampMilli), ctx.Err())
		}
	}
}

// stop ends the workers after their queries in flight and returns the
// number of successful queries and the failures.
func (a *connApp) stop() (int, []error) {
	a.stopping.Store(true)
	a.wg.Wait()
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ok, append([]error(nil), a.failures...)
}
