// Package connpool keeps the privileged (master) database sessions of the
// built-in rotators open between rotation steps and between rotations, so
// that a rotation does not pay a login — a backend start on PostgreSQL —
// for every statement the master runs.
//
// A Pool holds idle connections per Key (server, user, database and TLS
// setting) and per password: a connection is reused only for a request
// bearing the very password it logged in with, compared through a keyed
// hash that lives only in memory. When a request names another password
// for the same Key, the idle connections of the old one are closed: the
// credentials changed. Idle connections are validated (Options.Ping)
// before reuse and a failed one is replaced by a fresh login; they are
// closed after Options.IdleTimeout without use, after Options.MaxLifetime
// whatever their use (so a connection never vouches for a password for
// long), and beyond Options.MaxIdle per Key.
//
// A driver that changes the password of a user calls Forget for that user:
// its idle connections are closed and those in use are closed instead of
// returning to the pool, so no session survives a password change of the
// user that opened it.
//
// Close closes every idle connection; connections released afterwards are
// closed, and Get keeps working without pooling. A Pool is safe for
// concurrent use. Passwords never reach an error or a log.
package connpool

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"strings"
	"sync"
	"time"
)

// Key names the login a pooled connection was opened with, its password
// aside.
type Key struct {
	Engine string // the driver's name for the kind of server: "postgres", "mysql"
	Host   string // compared case-insensitively
	Port   int
	User   string
	DBName string // "" when the connection has no database
	TLS    string // the effective TLS setting (sslmode)
}

// user is the login identity Forget acts on: a user on a server, whatever
// the database and TLS setting.
type user struct {
	engine, host string
	port         int
	name         string
}

func (k Key) normal() Key {
	k.Host = strings.ToLower(k.Host)
	return k
}

func (k Key) user() user { return user{k.Engine, k.Host, k.Port, k.User} }

// Options configure a Pool. Close is required.
type Options[C any] struct {
	Limits
	// PingTimeout bounds the validation of an idle connection, within the
	// caller's context; default 5s.
	PingTimeout time.Duration
	// Ping checks that an idle connection still works; nil means no check.
	Ping func(ctx context.Context, c C) error
	// Close closes a connection. It must not block for long: it runs with
	// the Pool's lock released, from Get, Release, Forget, Close and a
	// timer.
	Close func(c C)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Limits bound what a Pool keeps.
type Limits struct {
	// MaxIdle bounds the idle connections kept per Key; default 4.
	MaxIdle int
	// IdleTimeout closes a connection unused for this long; default 60s.
	IdleTimeout time.Duration
	// MaxLifetime closes a connection this long after its login, used or
	// not; default 10 minutes.
	MaxLifetime time.Duration
}

// MasterLimits are a rotator's limits for its pool of master connections:
// l, with MaxIdle 8 by default (the rotations the engine runs at once).
func MasterLimits(l Limits) Limits {
	if l.MaxIdle <= 0 {
		l.MaxIdle = 8
	}
	return l
}

// Pool keeps idle connections of type C. Create it with New.
type Pool[C any] struct {
	opts   Options[C]
	hmacKy []byte

	mu     sync.Mutex
	idle   map[Key][]*entry[C]    // most recently used last
	out    map[*entry[C]]struct{} // checked out
	timer  *time.Timer            // armed while idle is not empty
	timeAt time.Time              // when timer fires
	closed bool
	stats  Stats
}

type entry[C any] struct {
	c        C
	key      Key
	password [sha256.Size]byte
	born     time.Time
	lastUsed time.Time
	doomed   bool // checked out when Forget named its user: close on Release
}

// Stats count what a Pool did.
type Stats struct {
	Dials  int64 // connections opened (logins attempted) through Get
	Reuses int64 // idle connections handed out again
	Idle   int   // connections idle now
}

// New returns an empty Pool.
func New[C any](opts Options[C]) *Pool[C] {
	if opts.Close == nil {
		panic("connpool: Options.Close is required")
	}
	if opts.MaxIdle <= 0 {
		opts.MaxIdle = 4
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = time.Minute
	}
	if opts.MaxLifetime <= 0 {
		opts.MaxLifetime = 10 * time.Minute
	}
	if opts.PingTimeout <= 0 {
		opts.PingTimeout = 5 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	k := make([]byte, 32)
	rand.Read(k)
	return &Pool[C]{opts: opts, hmacKy: k, idle: map[Key][]*entry[C]{}, out: map[*entry[C]]struct{}{}}
}

func (p *Pool[C]) fingerprint(password string) (fp [sha256.Size]byte) {
	m := hmac.New(sha256.New, p.hmacKy)
	m.Write([]byte(password))
	copy(fp[:], m.Sum(nil))
	return fp
}

// Conn is a connection checked out of a Pool. Give it back with Release
// exactly once.
type Conn[C any] struct {
	C C
	// Reused reports whether the connection was idle in the pool rather
	// than opened by this Get.
	Reused bool

	pool *Pool[C]
	e    *entry[C]
	done bool
}

// Get returns a connection for key logged in with password: an idle one
// that passes Options.Ping, or else a new one from dial. dial's error is
// returned as it is. Idle connections of key opened with another password
// are closed.
func (p *Pool[C]) Get(ctx context.Context, key Key, password string, dial func(context.Context) (C, error)) (*Conn[C], error) {
	key = key.normal()
	fp := p.fingerprint(password)
	for {
		e, stale := p.take(key, fp)
		p.closeAll(stale)
		if e == nil {
			break
		}
		if p.ping(ctx, e.c) == nil {
			return &Conn[C]{C: e.c, Reused: true, pool: p, e: e}, nil
		}
		p.discard(e)
		if ctx.Err() != nil {
			break
		}
	}
	p.mu.Lock()
	p.stats.Dials++
	now := p.opts.Now()
	e := &entry[C]{key: key, password: fp, born: now}
	// Checked out before the login, so that a Forget during it counts.
	p.out[e] = struct{}{}
	p.mu.Unlock()
	c, err := dial(ctx)
	if err != nil {
		p.mu.Lock()
		delete(p.out, e)
		p.mu.Unlock()
		return nil, err
	}
	e.c = c
	return &Conn[C]{C: c, pool: p, e: e}, nil
}

// take checks out the most recently used live idle connection of key
// with password fp, and returns the idle connections to close: expired
// ones and those of key with another password.
func (p *Pool[C]) take(key Key, fp [sha256.Size]byte) (e *entry[C], stale []C) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.opts.Now()
	list := p.idle[key]
	keep := list[:0]
	for _, x := range list {
		if p.expired(x, now) || !hmac.Equal(x.password[:], fp[:]) {
			stale = append(stale, x.c)
		} else {
			keep = append(keep, x)
		}
	}
	if n := len(keep); n > 0 {
		e = keep[n-1]
		keep[n-1] = nil
		keep = keep[:n-1]
		p.out[e] = struct{}{}
		p.stats.Reuses++
	}
	p.setIdle(key, keep)
	return e, stale
}

// discard closes a checked-out connection.
func (p *Pool[C]) discard(e *entry[C]) {
	p.mu.Lock()
	delete(p.out, e)
	p.mu.Unlock()
	p.opts.Close(e.c)
}

func (p *Pool[C]) ping(ctx context.Context, c C) error {
	if p.opts.Ping == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, p.opts.PingTimeout)
	defer cancel()
	return p.opts.Ping(ctx, c)
}

func (p *Pool[C]) expired(e *entry[C], now time.Time) bool {
	return now.Sub(e.lastUsed) >= p.opts.IdleTimeout || now.Sub(e.born) >= p.opts.MaxLifetime
}

// setIdle stores list as key's idle connections. p.mu is held.
func (p *Pool[C]) setIdle(key Key, list []*entry[C]) {
	if len(list) == 0 {
		delete(p.idle, key)
		return
	}
	p.idle[key] = list
}

// Release gives c back: to the pool when healthy (the caller saw no error
// on it and left no transaction open), closed otherwise — also when its
// user's password changed since Get (Forget), when it outlived
// MaxLifetime, when MaxIdle connections of its Key are already idle, or
// after Close.
func (c *Conn[C]) Release(healthy bool) {
	if c.done {
		panic("connpool: Conn released twice")
	}
	c.done = true
	p, e := c.pool, c.e
	now := p.opts.Now()
	p.mu.Lock()
	delete(p.out, e)
	keep := healthy && !p.closed && !e.doomed &&
		now.Sub(e.born) < p.opts.MaxLifetime && len(p.idle[e.key]) < p.opts.MaxIdle
	if keep {
		e.lastUsed = now
		p.idle[e.key] = append(p.idle[e.key], e)
		p.armLocked(now)
	}
	p.mu.Unlock()
	if !keep {
		p.opts.Close(c.C)
	}
}

// Forget closes the idle connections of userName on the server of key
// (any database, any TLS setting) and makes those checked out close on
// Release. Call it after changing that user's password.
func (p *Pool[C]) Forget(engine, host string, port int, userName string) {
	u := Key{Engine: engine, Host: host, Port: port, User: userName}.normal().user()
	var stale []C
	p.mu.Lock()
	for e := range p.out {
		if e.key.user() == u {
			e.doomed = true
		}
	}
	for k, list := range p.idle {
		if k.user() != u {
			continue
		}
		for _, e := range list {
			stale = append(stale, e.c)
		}
		delete(p.idle, k)
	}
	p.mu.Unlock()
	p.closeAll(stale)
}

// Close closes the idle connections and stops pooling: connections
// released later are closed. Get still works, without reuse.
func (p *Pool[C]) Close() error {
	var all []C
	p.mu.Lock()
	p.closed = true
	for k, list := range p.idle {
		for _, e := range list {
			all = append(all, e.c)
		}
		delete(p.idle, k)
	}
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
	p.mu.Unlock()
	p.closeAll(all)
	return nil
}

// Stats returns the pool's counters.
func (p *Pool[C]) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	for _, list := range p.idle {
		s.Idle += len(list)
	}
	return s
}

// armLocked makes sure the reaper runs when the oldest idle connection
// expires. p.mu is held.
func (p *Pool[C]) armLocked(now time.Time) {
	if p.closed {
		return
	}
	next, ok := p.nextExpiryLocked()
	if !ok || (p.timer != nil && !next.Before(p.timeAt)) {
		return
	}
	if p.timer != nil {
		p.timer.Stop()
	}
	p.timer, p.timeAt = time.AfterFunc(next.Sub(now), p.reap), next
}

// nextExpiryLocked is when the first idle connection expires. p.mu is
// held.
func (p *Pool[C]) nextExpiryLocked() (time.Time, bool) {
	var next time.Time
	for _, list := range p.idle {
		for _, e := range list {
			t := e.lastUsed.Add(p.opts.IdleTimeout)
			if d := e.born.Add(p.opts.MaxLifetime); d.Before(t) {
				t = d
			}
			if next.IsZero() || t.Before(next) {
				next = t
			}
		}
	}
	return next, !next.IsZero()
}

// reap closes expired idle connections and re-arms the timer for the
// others.
func (p *Pool[C]) reap() {
	var stale []C
	p.mu.Lock()
	p.timer = nil
	now := p.opts.Now()
	for k, list := range p.idle {
		keep := list[:0]
		for _, e := range list {
			if p.expired(e, now) {
				stale = append(stale, e.c)
			} else {
				keep = append(keep, e)
			}
		}
		p.setIdle(k, keep)
	}
	p.armLocked(now)
	p.mu.Unlock()
	p.closeAll(stale)
}

func (p *Pool[C]) closeAll(cs []C) {
	for _, c := range cs {
		p.opts.Close(c)
	}
}
