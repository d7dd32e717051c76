package client

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for the zero fields of Config.
const (
	DefaultTTL          = 5 * time.Minute
	DefaultJitter       = 0.2
	DefaultRefreshAhead = 0.75
	DefaultMaxEntries   = 1024
	DefaultMaxStale     = 15 * time.Minute
)

const (
	// defaultFetchTimeout bounds one trip to the service (a DescribeSecret
	// plus a GetSecretValue), whoever is waiting for it.
	defaultFetchTimeout = 30 * time.Second
	// backoffBase is the first retry delay after a failed refresh; it
	// doubles with each further failure, up to the TTL.
	backoffBase = time.Second
)

// ErrClosed is returned by the methods of a Cache after Close.
var ErrClosed = errors.New("client: cache closed")

// errEmptyID is returned for an empty secret id, which the service would
// refuse anyway.
var errEmptyID = errors.New("client: empty secret id")

// Cache is a cache of secret values. Create it with New.
//
// The *Secret values it returns are shared between callers and must not be
// modified.
type Cache struct {
	api          API
	ttl          time.Duration
	jitter       float64
	refreshAhead float64 // 0: no refresh ahead of expiry
	maxEntries   int
	maxStale     time.Duration
	now          func() time.Time
	log          *slog.Logger
	fetchTimeout time.Duration

	ctx    context.Context // cancelled by Close; parent of every fetch
	cancel context.CancelFunc
	wg     sync.WaitGroup // fetch goroutines

	// tick orders uses for LRU eviction: every use stamps an entry with a
	// fresh tick unless it already holds the newest one, so repeated hits on
	// one entry only read shared memory.
	tick atomic.Uint64

	mu      sync.RWMutex
	closed  bool
	entries map[key]*entry
	flights map[key]*flight
	// ids maps every identifier a secret is known by — the id a caller
	// used, its ARN and its name, learned from responses — to the keys of
	// its entries, so that Invalidate matches whichever one it is given.
	ids map[string]map[key]struct{}
	rnd *rand.Rand // guarded by mu (rand.Rand is not safe for concurrent use)
}

// key identifies an entry: the secret id exactly as given, and the stage.
type key struct {
	id, stage string
}

type entry struct {
	key    key
	secret *Secret
	used   atomic.Uint64 // LRU stamp from Cache.tick

	// The fields below are guarded by Cache.mu.
	ttl       time.Duration // drawn with jitter at the last successful refresh
	refreshAt time.Time     // reads from here on start a background refresh
	expires   time.Time     // reads from here on wait for a refresh
	failures  int           // consecutive failed refreshes
	retryAt   time.Time     // no background retry before this, after a failure
	// noDescribe is set when DescribeSecret was denied: the caller may
	// only read values, so refreshes go straight to GetSecretValue.
	noDescribe bool
}

// flight is one trip to the service for a key, shared by everyone who asks
// for that key meanwhile.
type flight struct {
	done   chan struct{} // closed when s and err are set
	forced bool          // started by RefreshNow: no version check, no stale value
	// detached (guarded by Cache.mu) is set when Invalidate or RefreshNow
	// superseded the flight: it still answers its waiters but leaves the
	// cache alone.
	detached bool
	s        *Secret
	err      error
}

// New returns a cache reading through api. It starts no goroutine until the
// first fetch; call Close to stop the background refreshes.
func New(api API, cfg Config) *Cache {
	return newCache(api, cfg, rand.NewPCG(rand.Uint64(), rand.Uint64()))
}

// newCache is New with a chosen source for the TTL jitter.
func newCache(api API, cfg Config, src rand.Source) *Cache {
	c := &Cache{
		api:          api,
		ttl:          cfg.TTL,
		jitter:       cfg.Jitter,
		refreshAhead: cfg.RefreshAhead,
		maxEntries:   cfg.MaxEntries,
		maxStale:     cfg.MaxStale,
		now:          cfg.Now,
		log:          cfg.Logger,
		fetchTimeout: defaultFetchTimeout,
		entries:      make(map[key]*entry),
		flights:      make(map[key]*flight),
		ids:          make(map[string]map[key]struct{}),
		rnd:          rand.New(src),
	}
	if c.ttl <= 0 {
		c.ttl = DefaultTTL
	}
	switch {
	case c.jitter == 0:
		c.jitter = DefaultJitter
	case c.jitter < 0:
		c.jitter = 0
	case c.jitter > 1:
		c.jitter = 1
	}
	switch {
	case c.refreshAhead == 0:
		c.refreshAhead = DefaultRefreshAhead
	case c.refreshAhead < 0 || c.refreshAhead >= 1:
		c.refreshAhead = 0
	}
	if c.maxEntries <= 0 {
		c.maxEntries = DefaultMaxEntries
	}
	switch {
	case c.maxStale == 0:
		c.maxStale = DefaultMaxStale
	case c.maxStale < 0:
		c.maxStale = 0
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c
}

// Get returns the AWSCURRENT version of secretID (a name or ARN).
func (c *Cache) Get(ctx context.Context, secretID string) (*Secret, error) {
	return c.GetStage(ctx, secretID, DefaultStage)
}

// GetStage returns the version of secretID carrying stage ("" means
// AWSCURRENT).
//
// A fresh entry is answered from memory. A miss, or an entry past its TTL,
// waits for the service; concurrent callers for the same secret and stage
// share one request, and a caller whose ctx ends stops waiting with
// ctx.Err() while the request goes on for the others. When the service
// fails, an expired value is still returned for up to Config.MaxStale,
// except when the error says the secret is gone (not found, marked for
// deletion, access denied): then the error is returned and the entry
// dropped. The service's errors are returned as the SDK gives them, so
// errors.As finds the types of
// github.com/aws/aws-sdk-go-v2/service/secretsmanager/types.
// After Close, GetStage returns ErrClosed.
func (c *Cache) GetStage(ctx context.Context, secretID, stage string) (*Secret, error) {
	if stage == "" {
		stage = DefaultStage
	}
	k := key{secretID, stage}

	c.mu.RLock()
	if e := c.entries[k]; e != nil && !c.closed && c.now().Before(e.refreshAt) {
		c.touch(e)
		s := e.secret
		c.mu.RUnlock()
		return s, nil
	}
	c.mu.RUnlock()
	return c.getSlow(ctx, k)
}

func (c *Cache) getSlow(ctx context.Context, k key) (*Secret, error) {
	if k.id == "" {
		return nil, errEmptyID
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	now := c.now()
	e := c.entries[k]
	if e != nil {
		c.touch(e)
		switch {
		case now.Before(e.refreshAt):
			// Refreshed while we took the lock.
			s := e.secret
			c.mu.Unlock()
			return s, nil
		case now.Before(e.expires) || e.failures > 0 && now.Before(c.staleUntil(e)):
			// Refresh ahead, or stale on error: answer now, refresh behind.
			if !now.Before(e.retryAt) {
				c.startFlight(k, e, false)
			}
			s := e.secret
			c.mu.Unlock()
			return s, nil
		}
		// Expired, or too stale to serve: wait for the service. Backoff
		// does not apply here: there is nothing else to answer with, and
		// the fetch is shared.
	}
	f := c.startFlight(k, e, false)
	c.mu.Unlock()
	return c.wait(ctx, k, f, true)
}

// GetString returns the SecretString of secretID's AWSCURRENT version.
func (c *Cache) GetString(ctx context.Context, secretID string) (string, error) {
	s, err := c.Get(ctx, secretID)
	if err != nil {
		return "", err
	}
	return s.SecretString, nil
}

// RefreshNow reads secretID's AWSCURRENT from the service now (one fetch for
// concurrent callers) and returns it.
//
// It skips the version check and never answers with a stale value: it is
// meant for callers that know their copy stopped working, such as a
// database connector after an authentication failure, or a notification
// that the secret rotated. A fetch already under way that RefreshNow did
// not start may predate the change, so RefreshNow starts its own. On
// success the value replaces the entry for (secretID, AWSCURRENT); other
// entries for the same secret (other stages, or the secret under its other
// identifier) are refreshed too if they are AWSCURRENT, or dropped. On
// failure the entry is left as it was, unless the error says the secret is
// gone.
func (c *Cache) RefreshNow(ctx context.Context, secretID string) (*Secret, error) {
	if secretID == "" {
		return nil, errEmptyID
	}
	k := key{secretID, DefaultStage}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	f := c.startFlight(k, c.entries[k], true)
	c.mu.Unlock()
	return c.wait(ctx, k, f, false)
}

// Invalidate makes the next read of secretID (any stage) go to the service.
// secretID may be the name or the ARN of a secret cached under the other,
// once a response has told the cache both. A fetch under way for those
// entries is not waited for, but its result will not be cached.
func (c *Cache) Invalidate(secretID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.ids[secretID] {
		c.detach(k)
		if e := c.entries[k]; e != nil {
			c.remove(e)
		}
	}
	for k := range c.flights {
		if k.id == secretID {
			c.detach(k)
		}
	}
}

// Close stops background refreshes and waits for them. Reads waiting for a
// fetch get ErrClosed, and so do all later calls. Close always returns nil;
// calling it again does nothing.
func (c *Cache) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.cancel()
	c.mu.Unlock()

	c.wg.Wait()

	c.mu.Lock()
	clear(c.entries)
	clear(c.ids)
	c.mu.Unlock()
	return nil
}

// Len reports how many entries the cache holds.
func (c *Cache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}

// touch marks e as the most recently used entry.
func (c *Cache) touch(e *entry) {
	if t := c.tick.Load(); e.used.Load() != t {
		e.used.Store(c.tick.Add(1))
	}
}

func (c *Cache) staleUntil(e *entry) time.Time {
	return e.expires.Add(c.maxStale)
}

// drawTTL returns a TTL in [ttl·(1-jitter), ttl]. c.mu must be held.
func (c *Cache) drawTTL() time.Duration {
	cut := c.jitter * c.rnd.Float64() * float64(c.ttl)
	return c.ttl - time.Duration(cut)
}

// backoff returns how long to wait after the n-th consecutive failure:
// one second doubled n-1 times, at most the TTL.
func (c *Cache) backoff(n int) time.Duration {
	d := backoffBase
	for i := 1; i < n && d < c.ttl; i++ {
		d *= 2
	}
	return min(d, c.ttl)
}

// startFlight returns the fetch under way for k, or starts one. A forced
// fetch only joins another forced one; it supersedes an ordinary one.
// c.mu must be held and c.closed false.
func (c *Cache) startFlight(k key, e *entry, forced bool) *flight {
	if f := c.flights[k]; f != nil {
		if f.forced || !forced {
			return f
		}
		f.detached = true
	}
	f := &flight{done: make(chan struct{}), forced: forced}
	c.flights[k] = f
	var prev *Secret
	noDescribe := false
	if e != nil && !forced {
		prev, noDescribe = e.secret, e.noDescribe
	}
	c.wg.Add(1)
	go c.run(k, f, prev, noDescribe)
	return f
}

// run performs the fetch of f and records its outcome.
func (c *Cache) run(k key, f *flight, prev *Secret, noDescribe bool) {
	defer c.wg.Done()
	ctx, cancel := context.WithTimeout(c.ctx, c.fetchTimeout)
	s, denied, err := c.fetch(ctx, k, prev, noDescribe)
	cancel()

	c.mu.Lock()
	c.finish(k, f, s, denied, err)
	c.mu.Unlock()
	close(f.done)
}

// finish records the outcome of flight f in the cache and in f.
// c.mu must be held.
func (c *Cache) finish(k key, f *flight, s *Secret, describeDenied bool, err error) {
	if c.flights[k] == f {
		delete(c.flights, k)
	}
	if c.closed {
		f.err = ErrClosed
		return
	}
	f.s, f.err = s, err
	if f.detached {
		return
	}
	e := c.entries[k]
	switch {
	case err == nil:
		c.store(k, s, describeDenied)
		if f.forced {
			c.syncAliases(k, s)
		}
	case isGone(err):
		c.log.LogAttrs(c.ctx, slog.LevelInfo, "secret gone, dropped from cache",
			slog.String("secret_id", k.id), slog.String("version_stage", k.stage), slog.Any("err", err))
		if e != nil {
			c.remove(e)
		}
	default:
		if e == nil || f.forced {
			c.log.LogAttrs(c.ctx, slog.LevelWarn, "secret fetch failed",
				slog.String("secret_id", k.id), slog.String("version_stage", k.stage), slog.Any("err", err))
			return
		}
		now := c.now()
		e.failures++
		e.retryAt = now.Add(c.backoff(e.failures))
		c.log.LogAttrs(c.ctx, slog.LevelWarn, "secret refresh failed",
			slog.String("secret_id", k.id), slog.String("version_stage", k.stage),
			slog.Int("failures", e.failures), slog.Time("retry_at", e.retryAt),
			slog.Bool("serving_stale", now.Before(c.staleUntil(e))), slog.Any("err", err))
	}
}

// store puts s under k with a fresh TTL, evicting the least recently used
// entry if the cache is full. c.mu must be held.
func (c *Cache) store(k key, s *Secret, describeDenied bool) {
	e := c.entries[k]
	if e == nil {
		e = &entry{key: k}
		c.entries[k] = e
		c.link(k, s)
		e.used.Store(c.tick.Add(1))
		c.evict(e)
	} else if e.secret.ARN != s.ARN || e.secret.Name != s.Name {
		c.unlink(k, e.secret)
		c.link(k, s)
	}
	e.secret = s
	e.noDescribe = e.noDescribe || describeDenied
	c.renew(e)
}

// renew starts a new TTL for e and clears its failures. c.mu must be held.
func (c *Cache) renew(e *entry) {
	now := c.now()
	e.ttl = c.drawTTL()
	e.expires = now.Add(e.ttl)
	e.refreshAt = now.Add(time.Duration(c.refreshAhead * float64(e.ttl)))
	if c.refreshAhead == 0 {
		e.refreshAt = e.expires
	}
	e.failures, e.retryAt = 0, time.Time{}
}

// syncAliases brings the other entries of s's secret in line after a forced
// refresh of k: AWSCURRENT entries take s, entries of other stages are
// dropped since a rotation moves them too. c.mu must be held.
func (c *Cache) syncAliases(k key, s *Secret) {
	for _, id := range [...]string{s.ARN, s.Name} {
		for ok := range c.ids[id] {
			if ok == k {
				continue
			}
			c.detach(ok)
			if o := c.entries[ok]; o != nil {
				if ok.stage == DefaultStage {
					o.secret = s
					c.renew(o)
				} else {
					c.remove(o)
				}
			}
		}
	}
}

// evict removes least recently used entries, never keep, until the cache
// is within bounds. A linear scan is fine: it only runs after a fetch from
// the service, which costs far more. c.mu must be held.
func (c *Cache) evict(keep *entry) {
	for len(c.entries) > c.maxEntries {
		var victim *entry
		for _, e := range c.entries {
			if e != keep && (victim == nil || e.used.Load() < victim.used.Load()) {
				victim = e
			}
		}
		c.detach(victim.key)
		c.remove(victim)
	}
}

// detach makes the fetch under way for k, if any, leave the cache alone.
// c.mu must be held.
func (c *Cache) detach(k key) {
	if f := c.flights[k]; f != nil {
		f.detached = true
		delete(c.flights, k)
	}
}

// remove drops e. c.mu must be held.
func (c *Cache) remove(e *entry) {
	delete(c.entries, e.key)
	c.unlink(e.key, e.secret)
}

// link indexes k under the identifiers of its secret. c.mu must be held.
func (c *Cache) link(k key, s *Secret) {
	for _, id := range [...]string{k.id, s.ARN, s.Name} {
		if id == "" {
			continue
		}
		set := c.ids[id]
		if set == nil {
			set = make(map[key]struct{}, 1)
			c.ids[id] = set
		}
		set[k] = struct{}{}
	}
}

// unlink undoes link. c.mu must be held.
func (c *Cache) unlink(k key, s *Secret) {
	for _, id := range [...]string{k.id, s.ARN, s.Name} {
		if set := c.ids[id]; set != nil {
			delete(set, k)
			if len(set) == 0 {
				delete(c.ids, id)
			}
		}
	}
}

// wait waits for f or for ctx. With allowStale, a failure other than the
// secret being gone is answered with the cached value while it is within
// MaxStale of its expiry.
func (c *Cache) wait(ctx context.Context, k key, f *flight, allowStale bool) (*Secret, error) {
	select {
	case <-f.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if f.err == nil {
		return f.s, nil
	}
	if !allowStale || f.err == ErrClosed || isGone(f.err) {
		return nil, f.err
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if e := c.entries[k]; e != nil && c.now().Before(c.staleUntil(e)) {
		return e.secret, nil
	}
	return nil, f.err
}
