// Package redis rotates the passwords of Redis ACL users (Redis 6 and later;
// Valkey speaks the same protocol): the rotator.Rotator and
// rotator.Finisher behind rotor-redis-single-user. Callers build one
// Rotator with New, share it (it is safe for concurrent use) and Close it at
// shutdown. Secrets name engine "redis" or "valkey" (or none); the port
// defaults to 6379 ([DefaultPort]).
//
// # Two live passwords
//
// A Redis ACL user may have several passwords, and rotation uses that
// instead of a second user: the user always has the AWSCURRENT password and
// the AWSPREVIOUS one, so a client holding either keeps logging in for a
// whole rotation period, as with alternating users. Set replaces the
// previous password with the pending one (the user then has the current
// and the pending one); Finish, called once AWSCURRENT moved to the pending
// version, leaves the new current and the previous password and drops any
// other. No connection is ever closed (Redis does not disconnect a user's
// clients when its passwords change). Alternating users are therefore not
// offered: Set refuses them with KindInvalid.
//
// Each step is one ACL SETUSER, which Redis applies atomically:
//
//	Set:    ACL SETUSER <user> resetpass #<sha256 of kept> #<sha256 of pending>
//	Finish: ACL SETUSER <user> resetpass #<sha256 of current> [#<sha256 of previous>]
//
// where kept is the password Set proved: Current's, or Previous's when only
// that one is the user's. resetpass drops every other password (of a
// rotation abandoned after Set, or added by hand) and the nopass flag; no
// other rule of the user — on/off, commands, keys, channels, selectors — is
// touched. Passwords travel only as their SHA-256 hashes, the form Redis
// stores and ACL GETUSER, ACL LIST and the ACL file show, so no cleartext
// password reaches the server except in AUTH.
//
// Repeating a step changes nothing, because what it writes depends only on
// its request and on which of the request's passwords are the user's: if
// Current's is, Set writes {current, pending}; if only Pending's is (a Set
// repeated after Finish), Set does nothing, so the old password does not
// come back; if only Previous's is, {previous, pending}. A crash between
// Set and Finish leaves both passwords working and the resumed finishSecret
// completes; the password of a rotation abandoned after Set stays until the
// next rotation's Set replaces it. Finish keeps the previous password only
// if the user still has it (through Master: among its hashes; without: it
// logs in), so it never brings a password back.
//
// # Who runs ACL SETUSER
//
// Redis has no "change your own password" privilege: a user allowed to run
// ACL SETUSER may change any user, the admins included, so it is an admin
// in all but name. Applications' users should not have it; their secrets
// name an admin secret in "masterarn", and Master runs the commands. Master
// proves the secret's password without logging in as the user: it reads the
// user's password hashes (ACL GETUSER) and acts only when the password the
// step relies on is among them (or the user is nopass) and the user is on.
// So Master never acts for a secret whose writer does not know one of the
// user's passwords, and a secret cannot take over another user — the
// master's own included. A Master on another host or port than the secret
// is refused (KindInvalid).
//
// Without "masterarn" the user's own login is used: Set logs in with
// Current's password, then Pending's (if that works, nothing is left to do),
// then Previous's, and changes its own passwords; Finish logs in with
// Current's. That serves users that may run ACL SETUSER and ACL SAVE —
// admins, whose own secret (the master secret itself) has no masterarn. For
// any other user it fails with KindPermission and a hint to name an admin
// secret, rather than having operators grant +acl|setuser, which would make
// the application an admin.
//
// # Persistence
//
// ACL SETUSER changes memory only. After every Set and Finish the Rotator
// runs ACL SAVE, as the user that made the change, so that a server with an
// ACL file (aclfile) keeps the rotated passwords across a restart; a
// failing ACL SAVE fails the step, which the engine retries (NOPERM:
// KindPermission). A server without an ACL file (users in redis.conf, or
// made with ACL SETUSER alone) answers that it has none: the change then
// lives in memory only, a restart reverts it, and a warning is logged —
// move the users to an ACL file, or run CONFIG REWRITE after rotations.
// Options.SkipACLSave turns ACL SAVE off. ACLs are per server: replicas and
// cluster nodes do not receive ACL changes, and a secret names one server.
//
// # Connections and TLS
//
// Connections are go-redis clients of one connection each: RESP2, no
// retries, no client name or library identity (CLIENT SETNAME and
// SETINFO need permissions a user may lack), authenticated by HELLO … AUTH.
// Master connections are kept between calls (package connpool): per
// server, master user and TLS mode, reused only for the same master
// password, pinged before reuse, closed after a minute idle, ten minutes
// after their login, on any error, when a rotation changes the master
// user's own passwords, and by Close. Every other login is a connection of
// its own, closed before the call returns. Test is always a fresh login
// followed by PING, where a NOPERM answer still proves the login (a user
// restricted to data commands may not PING). Each connection has a dial
// timeout and per-command read and write timeouts, each call a deadline,
// and a call whose context ends closes its connections at once.
//
// The credentials' SSLMode selects TLS; PostgreSQL and MySQL spellings are
// accepted, case-insensitively (the built-in functions map the secret's
// "ssl" or "tls": true to require and false to disable):
//
//	disable, disabled             no TLS
//	require, required             TLS without certificate verification
//	verify-ca, verify_ca          TLS, certificate chain verified against Options.RootCAs
//	verify-full, verify_identity  TLS, chain and host name verified
//
// An empty SSLMode means Options.DefaultSSLMode, itself "disable" by
// default, as redis-cli does without --tls. prefer and allow are refused
// (KindInvalid): a Redis port speaks TLS or plaintext, with no negotiation
// to fall back on (a plaintext server does not even answer a TLS hello).
//
// # Errors
//
// Every error is a *rotator.Error. WRONGPASS and NOAUTH are KindAuth, as is
// a step whose password is not the user's or a user that is off; NOPERM is
// KindPermission; connection failures, timeouts, TLS failures, LOADING,
// BUSY, MASTERDOWN and a full server are KindUnreachable; an unsupported
// strategy or sslmode, a user name with a space or NUL, a user Master does
// not find and a server without ACL commands (before Redis 6) are
// KindInvalid; other error replies are KindTarget. The cause (Err) is a
// *ServerError for error replies. Every message and cause is scrubbed of the
// request's passwords and their SHA-256 hashes (Redis quotes a refused ACL
// SETUSER rule in its reply); no password reaches an error, a log line or a
// panic.
//
// # Valkey
//
// Valkey (7.2 and later) keeps Redis's protocol, ACL commands, ACL GETUSER
// reply and SHA-256 password hashes, and answers HELLO as Redis does; the
// package only relies on those. It is tested against Redis 7.0 only:
// Valkey is compatible by protocol, not by test.
package redis

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/rotor-secrets/rotor/internal/rotation/connpool"
	"github.com/rotor-secrets/rotor/internal/rotation/rotator"
)

// DefaultPort is the port of a secret without one.
const DefaultPort = 6379

// engines are the values of the secret's "engine" field this package
// rotates ("" is accepted too).
var engines = []string{"redis", "valkey"}

// Engines returns the values of the secret's "engine" field this package
// rotates: redis and valkey. An empty engine is accepted too.
func Engines() []string { return append([]string(nil), engines...) }

// Options configure a Rotator. The zero value is usable.
type Options struct {
	// DialTimeout bounds connecting, the TLS handshake included; default 5s.
	DialTimeout time.Duration
	// IOTimeout bounds every command's write and read; default 30s.
	IOTimeout time.Duration
	// CallTimeout bounds a whole Set, Test or Finish call; default 1m.
	CallTimeout time.Duration
	// DefaultSSLMode applies to credentials without an SSLMode; default
	// "disable".
	DefaultSSLMode string
	// RootCAs verify server certificates for verify-ca and verify-full;
	// nil means the system's roots.
	RootCAs *x509.CertPool
	// SkipACLSave leaves out the ACL SAVE after each change, for servers
	// whose ACL file something else writes.
	SkipACLSave bool
	// Logger receives warnings (an ACL change the server could not save);
	// nil discards them. No record holds a password.
	Logger *slog.Logger
	// Pool bounds the master connections kept open between calls (per
	// server, master user and TLS mode); zero values: connpool.MasterLimits.
	Pool connpool.Limits
}

// Rotator rotates Redis ACL passwords. Create it with New; Close it to close
// the master connections it keeps.
type Rotator struct {
	opts   Options
	log    *slog.Logger
	pool   *connpool.Pool[*goredis.Client]
	logins atomic.Int64 // logins attempted, for tests
}

var (
	_ rotator.Rotator  = (*Rotator)(nil)
	_ rotator.Finisher = (*Rotator)(nil)
)

// New returns a Rotator. It does no I/O; an invalid DefaultSSLMode is
// reported by each call as KindInvalid.
func New(opts Options) *Rotator {
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 5 * time.Second
	}
	if opts.IOTimeout <= 0 {
		opts.IOTimeout = 30 * time.Second
	}
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = time.Minute
	}
	if opts.DefaultSSLMode == "" {
		opts.DefaultSSLMode = "disable"
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pool := connpool.New(connpool.Options[*goredis.Client]{
		Limits: connpool.MasterLimits(opts.Pool),
		Ping:   ping,
		Close:  func(c *goredis.Client) { c.Close() },
	})
	return &Rotator{opts: opts, log: log, pool: pool}
}

// Close closes the idle master connections. A Rotator still works after
// Close, without keeping connections.
func (r *Rotator) Close() error { return r.pool.Close() }

// Test logs in with req.Credentials and sends PING.
func (r *Rotator) Test(ctx context.Context, req rotator.TestRequest) error {
	ctx, cancel := context.WithTimeout(ctx, r.opts.CallTimeout)
	defer cancel()
	c := req.Credentials
	sc := newScrubber(c.Password)
	if err := validate(c, "credentials"); err != nil {
		return err
	}
	cl, err := r.login(ctx, c, sc)
	if err != nil {
		return err
	}
	cl.Close()
	return nil
}

// Set gives the user the pending password besides the one clients use;
// see the package comment.
func (r *Rotator) Set(ctx context.Context, req rotator.SetRequest) error {
	ctx, cancel := context.WithTimeout(ctx, r.opts.CallTimeout)
	defer cancel()
	p, cur := req.Pending, req.Current
	sc := newScrubber(p.Password, cur.Password)
	if req.Previous != nil {
		sc = sc.add(req.Previous.Password)
	}
	if req.Master != nil {
		sc = sc.add(req.Master.Password)
	}
	if req.Strategy != rotator.SingleUser {
		return rotator.Errorf(rotator.KindInvalid, nil,
			"Redis users are rotated single-user only (strategy %v): a Redis user holds two passwords during a rotation, so clients keep working without a second user", req.Strategy)
	}
	if err := validate(p, "pending credentials"); err != nil {
		return err
	}
	if err := validate(cur, "current credentials"); err != nil {
		return err
	}
	if p.Username != cur.Username || !sameServer(p, cur) {
		return rotator.Errorf(rotator.KindInvalid, nil,
			"single-user rotation: the pending credentials (%q at %s) must name the current user and server (%q at %s)",
			p.Username, where(p), cur.Username, where(cur))
	}
	// A Previous of another user or server is of no use here.
	var prev *rotator.Credentials
	if pr := req.Previous; pr != nil && pr.Username == p.Username && sameServer(*pr, p) && pr.Password != "" {
		prev = pr
	}
	if req.Master != nil {
		m := *req.Master
		if err := r.checkMaster(m, cur); err != nil {
			return err
		}
		return r.setAsMaster(ctx, p, cur, prev, m, sc)
	}
	return r.setAsUser(ctx, p, cur, prev, sc)
}

// setAsMaster is Set as Master, which proves one of the request's
// passwords against the user's stored hashes.
func (r *Rotator) setAsMaster(ctx context.Context, p, cur rotator.Credentials, prev *rotator.Credentials, m rotator.Credentials, sc scrubber) (err error) {
	mc, err := r.master(ctx, m, sc)
	if err != nil {
		return err
	}
	stop := closeOnDone(ctx, mc.C)
	defer func() {
		stop()
		mc.Release(err == nil)
	}()
	u, err := r.readUser(ctx, mc.C, p, sc)
	if err != nil {
		return err
	}
	pending := passwordHash(p.Password)
	var keep string
	switch {
	case u.has(passwordHash(cur.Password)) || u.nopass:
		keep = passwordHash(cur.Password)
	case u.has(pending):
		// Done already (a repeated step, or one repeated after Finish).
		return r.save(ctx, mc.C, m.Username, p, sc)
	case prev != nil && u.has(passwordHash(prev.Password)):
		keep = passwordHash(prev.Password)
	default:
		return rotator.Errorf(rotator.KindAuth, nil,
			"none of the pending, current and previous passwords of %q is one of its passwords at %s, so the master will not act for it",
			p.Username, where(p))
	}
	if !u.exactly(keep, pending) {
		if err := setPasswords(ctx, mc.C, m.Username, p, sc, keep, pending); err != nil {
			return err
		}
		r.forget(p)
	}
	return r.save(ctx, mc.C, m.Username, p, sc)
}

// setAsUser is Set without Master: the user logs in with one of its
// passwords and changes its own.
func (r *Rotator) setAsUser(ctx context.Context, p, cur rotator.Credentials, prev *rotator.Credentials, sc scrubber) error {
	// Current first: on a first attempt it is the password that works.
	// Pending works after a step repeated once Finish removed Current;
	// Previous when Current was never the user's.
	var authErr error
	for i, c := range []*rotator.Credentials{&cur, &p, prev} {
		if c == nil {
			continue
		}
		cl, err := r.login(ctx, *c, sc)
		if rotator.KindOf(err) == rotator.KindAuth {
			authErr = err
			continue
		}
		if err != nil {
			return err
		}
		defer cl.Close()
		stop := closeOnDone(ctx, cl)
		defer stop()
		if i != 1 {
			if err := setPasswords(ctx, cl, p.Username, p, sc, passwordHash(c.Password), passwordHash(p.Password)); err != nil {
				return err
			}
			r.forget(p)
		}
		return r.save(ctx, cl, p.Username, p, sc)
	}
	return rotator.Errorf(rotator.KindAuth, authCause(authErr),
		"none of the pending, current and previous passwords of %q logs in at %s", p.Username, where(p))
}

// Finish leaves the user with the new current password alone; see the
// package comment.
func (r *Rotator) Finish(ctx context.Context, req rotator.FinishRequest) (err error) {
	ctx, cancel := context.WithTimeout(ctx, r.opts.CallTimeout)
	defer cancel()
	cur := req.Current
	sc := newScrubber(cur.Password)
	if req.Previous != nil {
		sc = sc.add(req.Previous.Password)
	}
	if req.Master != nil {
		sc = sc.add(req.Master.Password)
	}
	if req.Strategy != rotator.SingleUser {
		return rotator.Errorf(rotator.KindInvalid, nil, "Redis users are rotated single-user only (strategy %v)", req.Strategy)
	}
	if err := validate(cur, "current credentials"); err != nil {
		return err
	}
	current := passwordHash(cur.Password)
	if req.Master != nil {
		m := *req.Master
		if err := r.checkMaster(m, cur); err != nil {
			return err
		}
		mc, err := r.master(ctx, m, sc)
		if err != nil {
			return err
		}
		stop := closeOnDone(ctx, mc.C)
		defer func() {
			stop()
			mc.Release(err == nil)
		}()
		u, err := r.readUser(ctx, mc.C, cur, sc)
		if err != nil {
			return err
		}
		if !u.has(current) && !u.nopass {
			return rotator.Errorf(rotator.KindAuth, nil,
				"the new current password of %q is not one of its passwords at %s, so its other passwords are left in place", cur.Username, where(cur))
		}
		keep := []string{current}
		if p := previousOf(req); p != nil && u.has(passwordHash(p.Password)) {
			keep = append(keep, passwordHash(p.Password))
		}
		if !u.exactly(keep...) {
			if err := setPasswords(ctx, mc.C, m.Username, cur, sc, keep...); err != nil {
				return err
			}
			r.forget(cur)
		}
		return r.save(ctx, mc.C, m.Username, cur, sc)
	}
	cl, err := r.login(ctx, cur, sc)
	if rotator.KindOf(err) == rotator.KindAuth {
		return rotator.Errorf(rotator.KindAuth, authCause(err),
			"the new current password of %q does not log in at %s, so its other passwords are left in place", cur.Username, where(cur))
	}
	if err != nil {
		return err
	}
	defer cl.Close()
	stop := closeOnDone(ctx, cl)
	defer stop()
	keep := []string{current}
	if p := previousOf(req); p != nil {
		// Kept only if it still logs in: never bring a password back.
		if pc, err := r.login(ctx, *p, sc); err == nil {
			pc.Close()
			keep = append(keep, passwordHash(p.Password))
		}
	}
	if err := setPasswords(ctx, cl, cur.Username, cur, sc, keep...); err != nil {
		return err
	}
	r.forget(cur)
	return r.save(ctx, cl, cur.Username, cur, sc)
}

// previousOf returns the AWSPREVIOUS credentials Finish keeps alive next
// to the new current ones — the password clients may still hold, until
// the next rotation's Set replaces it — or nil.
func previousOf(req rotator.FinishRequest) *rotator.Credentials {
	p := req.Previous
	if p == nil || p.Username != req.Current.Username || p.Password == "" || p.Password == req.Current.Password {
		return nil
	}
	return p
}

// checkMaster validates Master for a request about c.
func (r *Rotator) checkMaster(m, c rotator.Credentials) error {
	if err := validate(m, "master credentials"); err != nil {
		return err
	}
	if !sameServer(m, c) {
		return rotator.MasterElsewhere(m, c, where)
	}
	return nil
}

// validate checks what every login needs.
func validate(c rotator.Credentials, which string) error {
	switch {
	case c.Engine != "" && !contains(engines, c.Engine):
		return rotator.Errorf(rotator.KindInvalid, nil, "the %s have engine %q; this rotator handles %s", which, c.Engine, strings.Join(engines, ", "))
	case c.Host == "":
		return rotator.Errorf(rotator.KindInvalid, nil, "the %s have no host", which)
	case c.Port < 0 || c.Port > 65535:
		return rotator.Errorf(rotator.KindInvalid, nil, "the %s have an invalid port %d", which, c.Port)
	case c.Username == "":
		return rotator.Errorf(rotator.KindInvalid, nil, "the %s have no user name (Redis ACL users need one; the default user is named \"default\")", which)
	case strings.ContainsAny(c.Username, " \x00"):
		return rotator.Errorf(rotator.KindInvalid, nil, "the %s have user name %q: Redis user names cannot contain a space or NUL", which, c.Username)
	case c.Password == "":
		return rotator.Errorf(rotator.KindInvalid, nil, "the %s have no password", which)
	}
	_, err := sslMode(c.SSLMode, "disable")
	return err
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// login opens a connection as c — HELLO 2 AUTH, then PING — and returns
// its client, which the caller closes.
func (r *Rotator) login(ctx context.Context, c rotator.Credentials, sc scrubber) (*goredis.Client, error) {
	cl, err := r.client(c)
	if err != nil {
		return nil, err
	}
	r.logins.Add(1)
	stop := closeOnDone(ctx, cl)
	err = ping(ctx, cl)
	if !stop() && err == nil {
		err = ctx.Err() // the context ended as the login succeeded
	}
	if err != nil {
		cl.Close()
		return nil, sc.fail(err, "log in as %q at %s", c.Username, where(c))
	}
	return cl, nil
}

// ping sends PING; a NOPERM answer still proves that the connection is
// logged in.
func ping(ctx context.Context, cl *goredis.Client) error {
	if err := cl.Ping(ctx).Err(); err != nil && !goredis.HasErrorPrefix(err, "NOPERM") {
		return err
	}
	return nil
}

// closeOnDone closes cl when ctx ends, so that a command in progress
// returns at once: go-redis bounds a read by the context's deadline but
// does not watch its cancellation. Call the result when done with cl in
// ctx; it reports false if cl was closed.
func closeOnDone(ctx context.Context, cl *goredis.Client) (stop func() bool) {
	return context.AfterFunc(ctx, func() { cl.Close() })
}

// client returns a go-redis client of one connection, opened and
// authenticated by its first command. No password reaches a URL or a
// connection string: go-redis sends it in HELLO.
func (r *Rotator) client(c rotator.Credentials) (*goredis.Client, error) {
	mode, err := sslMode(c.SSLMode, r.opts.DefaultSSLMode)
	if err != nil {
		return nil, err
	}
	return goredis.NewClient(&goredis.Options{
		Addr:                  net.JoinHostPort(c.Host, strconv.Itoa(port(c))),
		Dialer:                dialer(r.opts.DialTimeout, r.tlsConfig(mode, c.Host)),
		Username:              c.Username,
		Password:              c.Password,
		Protocol:              2,
		DialTimeout:           r.opts.DialTimeout,
		DialerRetries:         1,
		ReadTimeout:           r.opts.IOTimeout,
		WriteTimeout:          r.opts.IOTimeout,
		ContextTimeoutEnabled: true,
		MaxRetries:            -1,
		PoolSize:              1,
		PipelinePoolSize:      -1,
		DisableIdentity:       true,
		MaintNotificationsConfig: &maintnotifications.Config{
			Mode: maintnotifications.ModeDisabled,
		},
	}), nil
}

// dialer connects and, with cfg, runs the TLS handshake, both within ctx
// (go-redis's own TLS dial ignores the context).
func dialer(timeout time.Duration, cfg *tls.Config) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		d := net.Dialer{Timeout: timeout}
		conn, err := d.DialContext(ctx, network, addr)
		if err != nil || cfg == nil {
			return conn, err
		}
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, err
		}
		return tc, nil
	}
}

// master returns a client logged in as Master: an idle pooled one that
// logged in with the same password, or a new login. Release it with
// Release(err == nil).
func (r *Rotator) master(ctx context.Context, m rotator.Credentials, sc scrubber) (*connpool.Conn[*goredis.Client], error) {
	mode, err := sslMode(m.SSLMode, r.opts.DefaultSSLMode)
	if err != nil {
		return nil, err
	}
	key := connpool.Key{Engine: "redis", Host: m.Host, Port: port(m), User: m.Username, TLS: mode}
	return r.pool.Get(ctx, key, m.Password, func(ctx context.Context) (*goredis.Client, error) {
		return r.login(ctx, m, sc)
	})
}

// forget closes the pooled connections of c's user: its passwords changed.
func (r *Rotator) forget(c rotator.Credentials) {
	r.pool.Forget("redis", c.Host, port(c), c.Username)
}

// sslModes maps the accepted spellings to the canonical PostgreSQL-style
// names.
var sslModes = map[string]string{
	"disable": "disable", "disabled": "disable",
	"require": "require", "required": "require",
	"verify-ca": "verify-ca", "verify_ca": "verify-ca",
	"verify-full": "verify-full", "verify_identity": "verify-full", "verify-identity": "verify-full",
}

// sslMode canonicalises mode, or def when mode is "".
func sslMode(mode, def string) (string, error) {
	if mode == "" {
		mode = def
	}
	m, ok := sslModes[strings.ToLower(mode)]
	if ok {
		return m, nil
	}
	switch strings.ToLower(mode) {
	case "prefer", "preferred", "allow":
		return "", rotator.Errorf(rotator.KindInvalid, nil,
			"sslmode %q cannot be honoured: a Redis port speaks TLS or plaintext, with no negotiation to fall back on; use require, verify-ca or verify-full for a TLS port and disable for a plaintext one", mode)
	}
	return "", rotator.Errorf(rotator.KindInvalid, nil, "unsupported sslmode %q: use disable, require, verify-ca or verify-full", mode)
}

// tlsConfig returns the TLS configuration of mode, nil for disable.
func (r *Rotator) tlsConfig(mode, host string) *tls.Config {
	return rotator.TLSConfig(mode, host, r.opts.RootCAs)
}

// where is host:port, for messages.
func where(c rotator.Credentials) string {
	return net.JoinHostPort(c.Host, strconv.Itoa(port(c)))
}

// port is c's port, or Redis's default.
func port(c rotator.Credentials) int {
	if c.Port == 0 {
		return DefaultPort
	}
	return c.Port
}

func sameServer(a, b rotator.Credentials) bool { return rotator.SameServer(a, b, DefaultPort) }

// RouteClientLogs sends go-redis's own messages (dial failures and the
// like, which it otherwise prints to standard error through the log
// package) to log at debug level: the rotator reports what matters in its
// errors. go-redis has one logger per process.
func RouteClientLogs(log *slog.Logger) {
	goredis.SetLogger(clientLogger{log})
}

type clientLogger struct{ log *slog.Logger }

func (l clientLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, "redis client: "+fmt.Sprintf(format, v...))
}
