// Package lease elects one leader among rotor nodes that share a PostgreSQL
// database, and fences the leader's writes.
//
// A lease is one row of the table rotor_leases, keyed by name. A node takes
// it with a single upsert that succeeds only when the row is missing, its
// previous holder's lease has expired, or the row is already the node's own.
// Expiry is judged by the database's clock, never the node's, so a node whose
// clock runs ahead cannot steal a live lease.
//
// Every new tenure increments the row's token, the fencing token; renewing a
// live lease keeps it. A writer that must only act while it leads calls
// [Check] inside its own transaction with the token it was given: Check
// locks the row FOR SHARE, so no other node can take the lease until that
// transaction ends, and it returns [ErrLost] if the lease has moved on. Keep
// fenced transactions short, well under TTL − Renew: while one holds the
// share lock, renewals and takeovers of that lease wait for it.
//
// [Lease.Run] is the loop a node runs: it retries acquisition every Retry,
// renews every Renew while it holds the lease, hands the leader's work a
// context that ends when leadership may be lost, and releases the lease when
// its own context ends so another node takes over at once.
//
// Each node must use its own Holder id; two Leases with one holder id and
// name are the same holder as far as the database can tell.
//
// [Open] creates rotor_leases if it is missing. When the package is wired
// into the server that table belongs in the store's migrations instead.
package lease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrLost reports that the caller no longer holds the lease with the token
// it presented.
var ErrLost = errors.New("lease lost")

// Defaults, as OpenBao uses for its PostgreSQL HA lock.
const (
	DefaultTTL   = 15 * time.Second
	DefaultRenew = 5 * time.Second
	DefaultRetry = 1 * time.Second
)

// Options configure a Lease. Name and Holder are required.
type Options struct {
	Name   string        // which lease, e.g. "rotation"
	Holder string        // this node's id, unique among nodes
	TTL    time.Duration // how long a take or renewal holds; DefaultTTL if zero
	Renew  time.Duration // how often the holder renews; DefaultRenew if zero
	Retry  time.Duration // how often a non-holder tries; DefaultRetry if zero
	// Now is the local clock, used only to decide when to stop work whose
	// lease could not be renewed; time.Now if nil.
	Now    func() time.Time
	Logger *slog.Logger // slog.DiscardHandler if nil
}

// Lease is one node's handle on a named lease. Its methods may be called
// concurrently.
type Lease struct {
	pool *pgxpool.Pool
	opts Options
	wake chan struct{}
}

// nowMS is the database's clock in milliseconds since the Unix epoch.
// clock_timestamp rather than now() so that a statement in a long
// transaction still sees the current time.
const nowMS = `(extract(epoch FROM clock_timestamp()) * 1000)::bigint`

const createTable = `CREATE TABLE IF NOT EXISTS rotor_leases (
	name       TEXT PRIMARY KEY,
	holder     TEXT NOT NULL,
	token      BIGINT NOT NULL,
	expires_ms BIGINT NOT NULL
)`

// The token is kept only when the row is ours and still live; a new holder,
// or ourselves after our lease lapsed, starts a new tenure.
const acquireSQL = `INSERT INTO rotor_leases AS l (name, holder, token, expires_ms)
VALUES ($1, $2, 1, ` + nowMS + ` + $3)
ON CONFLICT (name) DO UPDATE SET
	holder = EXCLUDED.holder,
	token = CASE WHEN l.holder = EXCLUDED.holder AND l.expires_ms > ` + nowMS + `
		THEN l.token ELSE l.token + 1 END,
	expires_ms = EXCLUDED.expires_ms
WHERE l.holder = EXCLUDED.holder OR l.expires_ms <= ` + nowMS + `
RETURNING token`

const releaseSQL = `UPDATE rotor_leases SET expires_ms = ` + nowMS + `
WHERE name = $1 AND holder = $2 AND expires_ms > ` + nowMS

const checkSQL = `SELECT token, expires_ms > ` + nowMS + `
FROM rotor_leases WHERE name = $1 FOR SHARE`

// Open validates opts, creates the lease table if it is missing and returns
// a Lease over pool. The caller keeps ownership of pool.
func Open(ctx context.Context, pool *pgxpool.Pool, opts Options) (*Lease, error) {
	if opts.TTL == 0 {
		opts.TTL = DefaultTTL
	}
	if opts.Renew == 0 {
		opts.Renew = DefaultRenew
	}
	if opts.Retry == 0 {
		opts.Retry = DefaultRetry
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	var errs []error
	if opts.Name == "" {
		errs = append(errs, errors.New("lease: name is empty"))
	}
	if opts.Holder == "" {
		errs = append(errs, errors.New("lease: holder is empty"))
	}
	if opts.TTL < 0 || opts.Renew < 0 || opts.Retry < 0 {
		errs = append(errs, errors.New("lease: negative duration"))
	}
	if opts.TTL.Milliseconds() < 1 {
		errs = append(errs, errors.New("lease: ttl under a millisecond"))
	}
	if 2*opts.Renew >= opts.TTL {
		errs = append(errs, fmt.Errorf("lease: renew %v must be under half of ttl %v", opts.Renew, opts.TTL))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if _, err := pool.Exec(ctx, createTable); err != nil {
		return nil, fmt.Errorf("lease: create table: %w", err)
	}
	return &Lease{pool: pool, opts: opts, wake: make(chan struct{}, 1)}, nil
}

// TryAcquire takes the lease, or renews it if this holder has it. ok is
// false, with a nil error, when another holder's lease is live. token is the
// fencing token of this holder's tenure: the same across renewals, larger
// than any earlier holder's.
func (l *Lease) TryAcquire(ctx context.Context) (token int64, ok bool, err error) {
	err = l.pool.QueryRow(ctx, acquireSQL, l.opts.Name, l.opts.Holder, l.opts.TTL.Milliseconds()).Scan(&token)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("lease: acquire %s: %w", l.opts.Name, err)
	}
	return token, true, nil
}

// Release ends this holder's lease now, so that another node can take it
// without waiting for the TTL. It does nothing if this holder does not hold
// the lease.
func (l *Lease) Release(ctx context.Context) error {
	if _, err := l.pool.Exec(ctx, releaseSQL, l.opts.Name, l.opts.Holder); err != nil {
		return fmt.Errorf("lease: release %s: %w", l.opts.Name, err)
	}
	return nil
}

// Check verifies, inside the caller's transaction tx, that the lease name is
// still live and held with token, and keeps it so until tx ends. It returns
// ErrLost if not.
func Check(ctx context.Context, tx pgx.Tx, name string, token int64) error {
	var got int64
	var live bool
	err := tx.QueryRow(ctx, checkSQL, name).Scan(&got, &live)
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrLost
	}
	if err != nil {
		return fmt.Errorf("lease: check %s: %w", name, err)
	}
	if got != token || !live {
		return ErrLost
	}
	return nil
}

// Run competes for the lease until ctx ends. Whenever this node takes the
// lease it calls onAcquire in a new goroutine with the tenure's token and a
// context that ends when leadership may be lost: as soon as a renewal finds
// the lease gone, or when renewals have failed until the lease would expire
// within one Renew interval (so work has that long to stop before another
// node can take over). Run waits for onAcquire to return before it competes
// again, so at most one onAcquire runs at a time. If onAcquire returns
// early, Run keeps the lease until ctx ends. When ctx ends Run waits for
// onAcquire, releases the lease and returns.
func (l *Lease) Run(ctx context.Context, onAcquire func(ctx context.Context, token int64)) {
	log := l.opts.Logger.With("lease", l.opts.Name, "holder", l.opts.Holder)
	for {
		sent := l.opts.Now()
		token, ok, err := l.TryAcquire(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("lease acquire failed", "err", err)
		case ok:
			log.Info("lease acquired", "token", token)
			l.hold(ctx, log, sent, token, onAcquire)
			if ctx.Err() != nil {
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.opts.Retry+time.Second)
				if err := l.Release(rctx); err != nil {
					log.Warn("lease release failed", "err", err)
				}
				cancel()
				return
			}
			log.Warn("lease lost", "token", token)
			continue
		}
		t := time.NewTimer(l.opts.Retry)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-l.wake:
			t.Stop()
		case <-t.C:
		}
	}
}

// Wake makes a Run that is waiting to retry try at once: for when another
// holder says it released the lease.
func (l *Lease) Wake() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// hold runs onAcquire and renews the lease until it is lost or ctx ends,
// and returns once onAcquire has returned. sent is when the acquiring
// statement was sent, by the local clock: the lease lasts at least TTL from
// then.
func (l *Lease) hold(ctx context.Context, log *slog.Logger, sent time.Time, token int64, onAcquire func(context.Context, int64)) {
	work, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		onAcquire(work, token)
	}()
	defer func() {
		cancel()
		<-done
	}()

	// Work stops one Renew interval before the lease could expire.
	cutoff := func() time.Time { return sent.Add(l.opts.TTL - l.opts.Renew) }
	next := l.opts.Renew
	for {
		wait := min(next, cutoff().Sub(l.opts.Now()))
		if wait <= 0 {
			log.Warn("lease renewal overdue")
			return
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if !l.opts.Now().Before(cutoff()) {
			log.Warn("lease renewal overdue")
			return
		}
		at := l.opts.Now()
		rctx, rcancel := context.WithDeadline(ctx, cutoff())
		got, ok, err := l.TryAcquire(rctx)
		rcancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			log.Warn("lease renewal failed", "err", err)
			next = l.opts.Retry
		case !ok || got != token:
			return
		default:
			sent = at
			next = l.opts.Renew
		}
	}
}
