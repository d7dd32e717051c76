package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rotor-secrets/rotor/internal/store"
)

// ErrUnknownTarget is returned by Redrive for an entry whose webhook is no
// longer configured.
var ErrUnknownTarget = errors.New("webhook: target is not configured")

// Target is a webhook. Name identifies it in the outbox, so it must stay
// the same across restarts for pending entries to reach it; Secret is the
// HMAC key of its signatures.
type Target struct {
	Name   string
	URL    string
	Secret []byte
}

// Config wires a Dispatcher.
type Config struct {
	Store   store.Store
	Targets []Target
	// Client sends the requests (nil: a client with a 10 s timeout). Its
	// Timeout, when set, bounds each request; its redirect policy is
	// replaced: redirects are never followed.
	Client *http.Client
	// MaxAttempts is the number of failed attempts after which an entry is
	// parked (default 10).
	MaxAttempts int
	// BackoffBase is the delay after the first failed attempt (default 1 s);
	// it doubles with each failure up to BackoffMax (default 5 min), with
	// ±25 % jitter.
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// PollInterval is how often Run looks for due entries when Enqueue has
	// not woken it (default 1 s); it picks up entries other writers added.
	PollInterval time.Duration
	Logger       *slog.Logger // nil: discard
	Now          func() time.Time
}

// Defaults of Config.
const (
	defaultTimeout     = 10 * time.Second
	defaultMaxAttempts = 10
	defaultBackoffBase = time.Second
	defaultBackoffMax  = 5 * time.Minute
	defaultPoll        = time.Second
)

// Dispatcher enqueues events in the store's outbox and delivers them. Create
// it with New; see the package comment for the contract.
type Dispatcher struct {
	cfg     Config
	log     *slog.Logger
	client  *http.Client
	timeout time.Duration
	lanes   []*lane
	byName  map[string]*lane
	running atomic.Bool

	rndMu sync.Mutex
	rnd   *rand.Rand
}

// lane is one target's delivery state. Its cursor lives in the goroutine
// that Run starts for it; other goroutines talk to it through kick and
// rewind.
type lane struct {
	target Target
	kick   chan struct{} // capacity 1: "look at the outbox now"

	mu     sync.Mutex
	rewind int64 // rescan from this seq (exclusive) at the next pass; -1: no request
}

// New validates cfg and returns a Dispatcher. Each target needs a unique,
// non-empty Name, an absolute http or https URL and a non-empty Secret.
func New(cfg Config) (*Dispatcher, error) {
	var errs []error
	if cfg.Store == nil {
		errs = append(errs, errors.New("webhook: no store"))
	}
	if cfg.MaxAttempts < 0 {
		errs = append(errs, errors.New("webhook: negative MaxAttempts"))
	}
	if cfg.BackoffBase < 0 || cfg.BackoffMax < 0 || cfg.PollInterval < 0 {
		errs = append(errs, errors.New("webhook: negative duration"))
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = defaultMaxAttempts
	}
	if cfg.BackoffBase == 0 {
		cfg.BackoffBase = defaultBackoffBase
	}
	if cfg.BackoffMax == 0 {
		cfg.BackoffMax = max(defaultBackoffMax, cfg.BackoffBase)
	}
	if cfg.BackoffMax < cfg.BackoffBase {
		errs = append(errs, fmt.Errorf("webhook: BackoffMax %v is below BackoffBase %v", cfg.BackoffMax, cfg.BackoffBase))
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = defaultPoll
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}

	d := &Dispatcher{
		log:     cfg.Logger,
		byName:  make(map[string]*lane),
		timeout: defaultTimeout,
		rnd:     rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())),
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	targets := make([]Target, 0, len(cfg.Targets))
	for i, t := range cfg.Targets {
		if err := checkTarget(t); err != nil {
			errs = append(errs, fmt.Errorf("webhook: target %d (%q): %w", i, t.Name, err))
			continue
		}
		if _, dup := d.byName[t.Name]; dup {
			errs = append(errs, fmt.Errorf("webhook: target %d: duplicate name %q", i, t.Name))
			continue
		}
		t.Secret = slices.Clone(t.Secret)
		l := &lane{target: t, kick: make(chan struct{}, 1), rewind: -1}
		d.lanes = append(d.lanes, l)
		d.byName[t.Name] = l
		targets = append(targets, t)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	cfg.Targets = targets

	// A copy, so that the caller's client keeps its own redirect policy.
	client := &http.Client{Timeout: defaultTimeout}
	if cfg.Client != nil {
		c := *cfg.Client
		client = &c
		if c.Timeout > 0 {
			d.timeout = c.Timeout
		}
	}
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	d.client = client
	d.cfg = cfg
	return d, nil
}

// checkTarget validates one target (the error names no secret: a URL's
// userinfo and query may hold credentials, so it is not echoed).
func checkTarget(t Target) error {
	if t.Name == "" {
		return errors.New("empty name")
	}
	u, err := url.Parse(t.URL)
	if err != nil {
		return errors.New("malformed URL")
	}
	if !u.IsAbs() || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("URL must be absolute http or https")
	}
	if len(t.Secret) == 0 {
		return errors.New("empty secret")
	}
	return nil
}

// Enqueue adds one outbox entry per event and target, in one store write
// transaction, and wakes Run. Each event needs an ID; its Time is stored in
// whole seconds, UTC, a nil Resources as [] and a nil Detail as {}. With no
// targets configured it does nothing. An error means nothing was enqueued.
func (d *Dispatcher) Enqueue(ctx context.Context, evs ...Event) error {
	if len(d.lanes) == 0 || len(evs) == 0 {
		return nil
	}
	type encoded struct{ id, body string }
	bodies := make([]encoded, 0, len(evs))
	for _, ev := range evs {
		if ev.ID == "" {
			return errors.New("webhook: event without id")
		}
		ev.Time = wholeSecond(ev.Time)
		if ev.Resources == nil {
			ev.Resources = []string{}
		}
		if len(ev.Detail) == 0 {
			ev.Detail = json.RawMessage("{}")
		}
		b, err := marshal(ev)
		if err != nil {
			return fmt.Errorf("webhook: encode event %s: %w", ev.ID, err)
		}
		bodies = append(bodies, encoded{ev.ID, string(b)})
	}
	now := d.cfg.Now()
	err := d.cfg.Store.Write(ctx, func(tx store.Tx) error {
		// Built inside fn: AddOutbox fills Seq, and fn may run again.
		entries := make([]store.OutboxEntry, 0, len(bodies)*len(d.lanes))
		for _, b := range bodies {
			for _, l := range d.lanes {
				entries = append(entries, store.OutboxEntry{
					Target: l.target.Name, EventID: b.id, Body: b.body,
					CreatedAt: now, NextAttemptAt: now,
				})
			}
		}
		return tx.AddOutbox(ctx, entries)
	})
	if err != nil {
		return fmt.Errorf("webhook: enqueue: %w", err)
	}
	for _, l := range d.lanes {
		l.wake()
	}
	return nil
}

// Parked returns up to limit parked entries with Seq greater than after, in
// Seq order (limit ≤ 0: 100; at most 1000).
func (d *Dispatcher) Parked(ctx context.Context, after int64, limit int) ([]store.OutboxEntry, error) {
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	var out []store.OutboxEntry
	err := d.cfg.Store.Read(ctx, func(tx store.Tx) error {
		var err error
		out, err = tx.ListOutbox(ctx, true, after, limit)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("webhook: list parked: %w", err)
	}
	return out, nil
}

// Redrive makes entry seq pending again with no attempts, due now, and wakes
// its target's lane; a pending entry is simply made due now. It returns an
// error wrapping store.ErrNotFound when no pending or parked entry has this
// seq, and ErrUnknownTarget when the entry's target is not configured.
func (d *Dispatcher) Redrive(ctx context.Context, seq int64) error {
	var target string
	err := d.cfg.Store.Write(ctx, func(tx store.Tx) error {
		e, err := outboxEntry(ctx, tx, seq)
		if err != nil {
			return err
		}
		if _, ok := d.byName[e.Target]; !ok {
			return fmt.Errorf("%w: %q", ErrUnknownTarget, e.Target)
		}
		target = e.Target
		e.Parked, e.Attempts, e.NextAttemptAt = false, 0, d.cfg.Now()
		return tx.UpdateOutbox(ctx, e)
	})
	if err != nil {
		return fmt.Errorf("webhook: redrive %d: %w", seq, err)
	}
	l := d.byName[target]
	l.mu.Lock()
	if l.rewind < 0 || seq-1 < l.rewind {
		l.rewind = seq - 1
	}
	l.mu.Unlock()
	l.wake()
	return nil
}

// outboxEntry finds entry seq, parked or pending; store.ErrNotFound if
// there is none.
func outboxEntry(ctx context.Context, tx store.Tx, seq int64) (store.OutboxEntry, error) {
	for _, parked := range []bool{true, false} {
		es, err := tx.ListOutbox(ctx, parked, seq-1, 1)
		if err != nil {
			return store.OutboxEntry{}, err
		}
		if len(es) == 1 && es[0].Seq == seq {
			return es[0], nil
		}
	}
	return store.OutboxEntry{}, store.ErrNotFound
}

// Backlog returns the number of pending and parked entries.
func (d *Dispatcher) Backlog(ctx context.Context) (pending, parked int, err error) {
	err = d.cfg.Store.Read(ctx, func(tx store.Tx) error {
		pending, parked, err = tx.OutboxCounts(ctx)
		return err
	})
	if err != nil {
		return 0, 0, fmt.Errorf("webhook: backlog: %w", err)
	}
	return pending, parked, nil
}

// wake makes the lane look at the outbox now.
func (l *lane) wake() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// takeRewind returns and clears the lane's rewind request (-1: none).
func (l *lane) takeRewind() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.rewind
	l.rewind = -1
	return r
}

// backoff is the delay after failed attempt n (1-based):
// BackoffBase·2^(n-1), ±25 % jitter, capped at BackoffMax.
func (d *Dispatcher) backoff(n int) time.Duration {
	b := d.cfg.BackoffBase
	for i := 1; i < n && b < d.cfg.BackoffMax; i++ {
		b *= 2
	}
	b = min(b, d.cfg.BackoffMax)
	d.rndMu.Lock()
	j := d.rnd.Float64()*0.5 - 0.25
	d.rndMu.Unlock()
	return min(b+time.Duration(float64(b)*j), d.cfg.BackoffMax)
}
