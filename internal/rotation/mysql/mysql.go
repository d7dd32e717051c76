// Package mysql rotates the passwords of MySQL and MariaDB accounts (secret
// engines mysql, mariadb, aurora-mysql and aurora): it is the
// rotator.Rotator behind rotor-mysql-single-user and
// rotor-mysql-alternating-users.
//
// # What it does
//
// Test logs in with the given credentials (to their dbname, if any) and runs
// SELECT 1.
//
// Set, single user, when the secret names a master that can read
// mysql.user and every host entry of the user has a hash this package can
// check (mysql_native_password, ed25519): if the current or the previous
// password is that of every entry, the master sets the pending password on
// every host entry; if the pending one is, nothing happens (a repeated
// step). Otherwise it logs in as the user with the current password, then
// the pending one (if that logs in, nothing is left to do), then the
// previous one, and changes its own password. If the user may not change its own password, or its password
// has expired (the server checks the password before it says so), and the
// secret names a master, the master changes the password of every host
// entry of the user. The master is never used when neither the current
// nor the previous password is proven: whoever wrote the secret must know
// the user's password.
//
// Set, alternating users (needs a master at the same host and port as the
// users): the master
//
//  1. proves that the secret knows the current user's password (by comparing
//     it with the stored hash, or by logging in), so that a secret cannot
//     borrow the master's power for a user its writer does not control;
//  2. makes NAME_clone mirror NAME, whichever of the two is current: for
//     each host entry NAME has in mysql.user (user@'%', user@'10.%',
//     user@localhost …) it creates NAME_clone at the same host if missing
//     (CREATE USER IF NOT EXISTS, with an unknown random password, or with
//     the current password if NAME_clone is the user in use), copies the
//     TLS requirement (REQUIRE …) and resource limits, and re-synchronises
//     the privileges: both users' SHOW GRANTS are parsed, and NAME_clone is
//     granted what it lacks and revoked what NAME does not have —
//     privileges per object (with column lists and GRANT OPTION), role
//     grants (with ADMIN OPTION) and default roles. NAME's password hash,
//     REQUIRE clause and limits in SHOW GRANTS are never copied as text;
//  3. sets the pending user's password, last, with NAME's authentication
//     plugin, so that "the pending password logs in" means every earlier
//     step is done — unless every host entry of the pending user already
//     has it (a repeated step: by the stored hash, or by a login where the
//     plugin's hash cannot be checked here), so that a password history
//     policy does not refuse the repeat.
//
// So NAME is the source of truth: grant to NAME (or to a role), and
// NAME_clone follows at the next rotation; a privilege granted to
// NAME_clone alone is revoked. Only when NAME does not exist (a secret
// whose first user is named like a clone) does the current user serve as
// the source. Set refuses to run when NAME_clone exists at a host where
// NAME does not, when the current user's host entries have different
// passwords, and when the pending user is not the alternate of the
// current one.
//
// # Passwords on the wire and in the server's logs
//
// MySQL and MariaDB hash passwords on the server, and MariaDB writes
// statements to its general and slow logs as they were sent. So on MariaDB
// the password is hashed here — mysql_native_password: '*' and the
// upper-case hex of SHA1(SHA1(password)); ed25519: the base64 public key
// derived from SHA-512(password) — and only the hash is sent:
// SET PASSWORD = '<hash>' for the user's own account (MariaDB's ALTER USER
// CURRENT_USER() needs the CREATE USER privilege), ALTER USER … IDENTIFIED
// VIA <plugin> USING '<hash>' for the master. The cleartext then never
// reaches the server. Where MariaDB refuses hashes (strict_password_validation
// is on — the default — and a password-validation plugin such as
// simple_password_check is active, which cannot check a hash), Set sends
// PASSWORD('<cleartext>') instead, which the server then logs, and logs a
// warning; it checks this before the first password statement rather than
// after a failure, so that nothing is sent twice.
//
// On MySQL, accounts using caching_sha2_password (the default since 8.0)
// or sha256_password take the cleartext — ALTER USER USER() IDENTIFIED BY
// '…' [REPLACE '…'] for the user's own account (REPLACE on 8.0.13 and
// later), ALTER USER … IDENTIFIED WITH <plugin> BY '…' for the master —
// because their stored form is salted by the server; MySQL rewrites these
// statements in its general, slow and binary logs. mysql_native_password
// accounts on MySQL get the hash (IDENTIFIED WITH mysql_native_password AS
// '<hash>') when the master sets it.
//
// Statements that take a password cannot be prepared, so the password is a
// string literal, escaped as the session's sql_mode requires (with or
// without NO_BACKSLASH_ESCAPES); a hash needs no escaping. Names are quoted
// identifiers (`user`@`host`). Passwords and names may contain any
// character but NUL.
//
// # Server versions
//
// The flavour and version come from SELECT VERSION() on every connection.
// Supported: MariaDB 10.2 and later, MySQL 5.7.6 and later (Aurora MySQL
// 2 and 3). User names have at most 80 bytes on MariaDB and 32 on MySQL
// (16 before 5.7.8), so NAME_clone must fit; see [MaxUserLen].
// Authentication plugins: mysql_native_password and ed25519 on MariaDB;
// mysql_native_password, caching_sha2_password and sha256_password on
// MySQL. Other plugins (unix_socket, PAM, LDAP, …) are refused with
// rotator.KindInvalid, because there is no password to rotate. MySQL 8's
// partial revokes are refused too.
//
// # Connections and TLS
//
// Master sessions are kept open between calls (package connpool): per
// server, master user and sslmode, reused only with the same master
// password, checked with a ping before reuse, closed after a minute idle,
// ten minutes after their login, when a rotation changes the master
// user's own password, on any error, and by Close. Every other login (the
// user's own, Test's) is a connection of its own, closed before the call
// returns; Test is always a fresh login. With a pooled master and
// checkable hashes, Set logs in nowhere. Each connection has dial, read
// and write timeouts and each call a deadline ([Options]). The
// credentials' SSLMode selects TLS (PostgreSQL and MySQL spellings are
// both accepted, case-insensitively):
//
//	disable, disabled          no TLS
//	prefer, preferred          TLS without verification if the server offers it, else plaintext
//	require, required          TLS without certificate verification; fail if the server has none
//	verify-ca, verify_ca       TLS, certificate chain verified against Options.RootCAs
//	verify-full, verify_identity  TLS, chain and host name verified
//
// An empty SSLMode means Options.DefaultSSLMode, itself "prefer" by
// default (what the mysql client does). Clients never send a cleartext
// password during authentication (allowCleartextPasswords is off).
//
// # Errors
//
// Every error is a *rotator.Error. MySQL error 1045 (and 1698, 1130,
// 1820, 1862) is rotator.KindAuth; 1044, 1142, 1143, 1227 and 1370 are
// KindPermission; connection failures, timeouts, TLS failures (including
// a server without TLS under require or verify-*) and
// 1040/1053/1129/1203/1226 are KindUnreachable; 1819 (password policy),
// a bad sslmode, an unsupported plugin and names that do not fit are
// KindInvalid; anything else the server reports is KindTarget, as is a
// SHOW GRANTS line this package cannot read (it refuses rather than copy
// privileges partly). Messages are built from the error number and the
// server's message with every password and password hash of the request
// replaced by [REDACTED]; syntax errors, whose message quotes the
// statement, are reduced to their number; no statement that carries a
// password is ever quoted. The cause (Err) is a *ServerError for server
// errors.
//
// # Concurrency
//
// A Rotator keeps only idle master sessions between calls and is safe for
// concurrent use; Close it at shutdown. Two Sets for the same users must
// not run at the same time; the rotation engine runs one rotation per
// secret at a time.
package mysql

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"database/sql/driver"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/rotor-secrets/rotor/internal/rotation/connpool"
	"github.com/rotor-secrets/rotor/internal/rotation/rotator"
)

// MaxUserLen is the longest user name, in bytes, that MariaDB accepts, and
// so the bound to give rotator.AlternateUser before the server is known.
// Set checks the server's own bound (32 on MySQL) once connected.
const MaxUserLen = 80

// Options configure a Rotator. The zero value is usable.
type Options struct {
	// DialTimeout bounds connecting and logging in; default 5s.
	DialTimeout time.Duration
	// IOTimeout bounds every read and write on a connection; default 30s.
	IOTimeout time.Duration
	// CallTimeout bounds a whole Set or Test call; default 1m.
	CallTimeout time.Duration
	// DefaultSSLMode applies to credentials without an SSLMode; default
	// "prefer".
	DefaultSSLMode string
	// RootCAs verify server certificates for verify-ca and verify-full;
	// nil means the system's roots.
	RootCAs *x509.CertPool
	// Logger receives debug records of the changes Set makes (never a
	// password) and warnings; nil discards them.
	Logger *slog.Logger
	// Pool bounds the master connections kept open between calls (per
	// server, master user and TLS mode); zero values: connpool.MasterLimits.
	Pool connpool.Limits
}

// Rotator rotates MySQL and MariaDB passwords. Create it with New; Close
// it to close the master connections it keeps.
type Rotator struct {
	opts   Options
	log    *slog.Logger
	pool   *connpool.Pool[*session]
	logins atomic.Int64 // logins attempted, for tests
}

var _ rotator.Rotator = (*Rotator)(nil)

// New returns a Rotator. It does no I/O.
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
		opts.DefaultSSLMode = "prefer"
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pool := connpool.New(connpool.Options[*session]{
		Limits: connpool.MasterLimits(opts.Pool),
		Ping:   func(ctx context.Context, s *session) error { return s.conn.PingContext(ctx) },
		Close:  (*session).close,
	})
	return &Rotator{opts: opts, log: log, pool: pool}
}

// Close closes the idle master connections. A Rotator still works after
// Close, without keeping connections.
func (r *Rotator) Close() error { return r.pool.Close() }

// engines are the values of the secret's "engine" field this package
// rotates ("" is accepted too).
var engines = []string{"mysql", "mariadb", "aurora-mysql", "aurora"}

// Engines returns the values of the secret's "engine" field this package
// rotates: mysql, mariadb, aurora-mysql and aurora. An empty engine is
// accepted too.
func Engines() []string { return append([]string(nil), engines...) }

// Test logs in with req.Credentials and runs SELECT 1.
func (r *Rotator) Test(ctx context.Context, req rotator.TestRequest) error {
	ctx, cancel := context.WithTimeout(ctx, r.opts.CallTimeout)
	defer cancel()
	c := req.Credentials
	sc := newScrubber(c.Password)
	if err := validate(c, "credentials"); err != nil {
		return err
	}
	s, err := r.open(ctx, c, true)
	if err != nil {
		return sc.wrap(err, "log in as %q to %s", c.Username, c.Addr())
	}
	defer s.close()
	var one int
	if err := s.conn.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return sc.wrap(err, "run SELECT 1 as %q", c.Username)
	}
	return nil
}

// Set makes the server accept req.Pending; see the package comment.
func (r *Rotator) Set(ctx context.Context, req rotator.SetRequest) error {
	ctx, cancel := context.WithTimeout(ctx, r.opts.CallTimeout)
	defer cancel()
	sc := newScrubber(req.Pending.Password, req.Current.Password)
	if req.Previous != nil {
		sc.add(req.Previous.Password)
	}
	if req.Master != nil {
		sc.add(req.Master.Password)
	}
	if err := validate(req.Pending, "pending credentials"); err != nil {
		return err
	}
	if err := validate(req.Current, "current credentials"); err != nil {
		return err
	}
	if req.Pending.Addr() != req.Current.Addr() {
		return rotator.Errorf(rotator.KindInvalid, nil, "the pending credentials point at %s, the current ones at %s", req.Pending.Addr(), req.Current.Addr())
	}
	switch req.Strategy {
	case rotator.SingleUser:
		if req.Pending.Username != req.Current.Username {
			return rotator.Errorf(rotator.KindInvalid, nil, "single-user rotation cannot change the user name (%q to %q)", req.Current.Username, req.Pending.Username)
		}
		return r.setSingle(ctx, req, sc)
	case rotator.AlternatingUsers:
		if req.Master == nil {
			return rotator.Errorf(rotator.KindInvalid, nil, "alternating-users rotation needs master credentials (\"masterarn\" in the secret)")
		}
		if err := validate(*req.Master, "master credentials"); err != nil {
			return err
		}
		return r.setAlternating(ctx, req, sc)
	}
	return rotator.Errorf(rotator.KindInvalid, nil, "unsupported rotation strategy %v", req.Strategy)
}

// validate checks what every login needs.
func validate(c rotator.Credentials, which string) error {
	switch {
	case c.Engine != "" && !contains(engines, c.Engine):
		return rotator.Errorf(rotator.KindInvalid, nil, "the %s have engine %q; this rotator handles %s", which, c.Engine, strings.Join(engines, ", "))
	case c.Host == "":
		return rotator.Errorf(rotator.KindInvalid, nil, "the %s have no host", which)
	case c.Port <= 0 || c.Port > 65535:
		return rotator.Errorf(rotator.KindInvalid, nil, "the %s have an invalid port %d", which, c.Port)
	case c.Username == "":
		return rotator.Errorf(rotator.KindInvalid, nil, "the %s have no user name", which)
	case c.Password == "":
		return rotator.Errorf(rotator.KindInvalid, nil, "the %s have no password", which)
	case strings.ContainsRune(c.Username, 0) || strings.ContainsRune(c.Password, 0) || strings.ContainsRune(c.DBName, 0):
		return rotator.Errorf(rotator.KindInvalid, nil, "the %s contain a NUL character", which)
	}
	if _, _, err := sslMode(c.SSLMode); err != nil && c.SSLMode != "" {
		return err
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// session is one open connection and what it told about the server.
type session struct {
	db   *sql.DB
	conn *sql.Conn
	srv  server

	hashChecked, hashOK bool
}

// hashAllowed reports whether the server takes a password hash computed
// here. MariaDB refuses hashes when strict_password_validation is on and a
// password-validation plugin is active, because it cannot validate them
// (SET PASSWORD and CREATE USER then fail with 1290, ALTER USER with the
// generic 1396); so that no statement is sent twice, the answer is read
// before the first password statement. Any user may read both.
func (s *session) hashAllowed(ctx context.Context) (bool, error) {
	if !s.srv.mariadb {
		return true, nil
	}
	if !s.hashChecked {
		var strict, plugins int
		err := s.conn.QueryRowContext(ctx, `SELECT @@GLOBAL.strict_password_validation,
	(SELECT COUNT(*) FROM information_schema.PLUGINS WHERE PLUGIN_TYPE = 'PASSWORD VALIDATION' AND PLUGIN_STATUS = 'ACTIVE')`).Scan(&strict, &plugins)
		if err != nil {
			return false, err
		}
		s.hashChecked, s.hashOK = true, strict == 0 || plugins == 0
	}
	return s.hashOK, nil
}

func (s *session) close() {
	s.conn.Close()
	s.db.Close()
}

// master returns a session as master, without a database: an idle pooled
// one that logged in with the same password, or a new login. Release it
// with Release(err == nil).
func (r *Rotator) master(ctx context.Context, m rotator.Credentials) (*connpool.Conn[*session], error) {
	mode := m.SSLMode
	if mode == "" {
		mode = r.opts.DefaultSSLMode
	}
	canonical, _, err := sslMode(mode)
	if err != nil {
		return nil, err
	}
	key := connpool.Key{Engine: "mysql", Host: m.Host, Port: m.Port, User: m.Username, TLS: canonical}
	mc, err := r.pool.Get(ctx, key, m.Password, func(ctx context.Context) (*session, error) {
		return r.open(ctx, m, false)
	})
	if err != nil {
		return nil, err
	}
	// Whether the server takes hashes is a global setting: ask again.
	mc.C.hashChecked = false
	return mc, nil
}

// forget closes the pooled sessions of c's user: its password changed.
func (r *Rotator) forget(c rotator.Credentials) {
	r.pool.Forget("mysql", c.Host, c.Port, c.Username)
}

// config builds the driver's configuration from c; no DSN string is ever
// formatted, so the password cannot reach one.
func (r *Rotator) config(c rotator.Credentials, withDB bool) (*mysql.Config, error) {
	cfg := mysql.NewConfig()
	cfg.User = c.Username
	cfg.Passwd = c.Password
	cfg.Net = "tcp"
	cfg.Addr = c.Addr()
	if withDB {
		cfg.DBName = c.DBName
	}
	cfg.Timeout = r.opts.DialTimeout
	cfg.ReadTimeout = r.opts.IOTimeout
	cfg.WriteTimeout = r.opts.IOTimeout
	cfg.Logger = nopLogger{}
	cfg.ConnectionAttributes = "program_name:rotor"
	cfg.AllowCleartextPasswords = false
	cfg.AllowOldPasswords = false
	cfg.MultiStatements = false
	mode := c.SSLMode
	if mode == "" {
		mode = r.opts.DefaultSSLMode
	}
	m, fallback, err := sslMode(mode)
	if err != nil {
		return nil, err
	}
	cfg.TLS = r.tlsConfig(m, c.Host)
	cfg.AllowFallbackToPlaintext = fallback
	return cfg, nil
}

type nopLogger struct{}

func (nopLogger) Print(...any) {}

// connector returns a connector for c.
func (r *Rotator) connector(c rotator.Credentials, withDB bool) (driver.Connector, error) {
	cfg, err := r.config(c, withDB)
	if err != nil {
		return nil, err
	}
	return mysql.NewConnector(cfg)
}

// login opens and closes a connection as c, without a database: the
// cheapest proof that the server accepts c's password.
func (r *Rotator) login(ctx context.Context, c rotator.Credentials) error {
	conn, err := r.connector(c, false)
	if err != nil {
		return err
	}
	r.logins.Add(1)
	dc, err := conn.Connect(ctx)
	if err != nil {
		return err
	}
	return dc.Close()
}

// open connects as c (to c.DBName if withDB) and reads the server's
// flavour, version and sql_mode.
func (r *Rotator) open(ctx context.Context, c rotator.Credentials, withDB bool) (*session, error) {
	conn, err := r.connector(c, withDB)
	if err != nil {
		return nil, err
	}
	r.logins.Add(1)
	db := sql.OpenDB(conn)
	sc, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		return nil, err
	}
	s := &session{db: db, conn: sc}
	var version, mode string
	if err := sc.QueryRowContext(ctx, "SELECT VERSION(), @@SESSION.sql_mode").Scan(&version, &mode); err != nil {
		s.close()
		return nil, err
	}
	s.srv = parseServer(version, mode)
	if err := s.srv.supported(); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// sslModes maps the accepted spellings to the canonical PostgreSQL-style
// names.
var sslModes = map[string]string{
	"disable": "disable", "disabled": "disable",
	"prefer": "prefer", "preferred": "prefer",
	"require": "require", "required": "require",
	"verify-ca": "verify-ca", "verify_ca": "verify-ca",
	"verify-full": "verify-full", "verify_identity": "verify-full", "verify-identity": "verify-full",
}

// sslMode canonicalises mode; fallback reports whether plaintext is
// allowed when the server has no TLS.
func sslMode(mode string) (canonical string, fallback bool, err error) {
	m, ok := sslModes[strings.ToLower(mode)]
	if !ok {
		return "", false, rotator.Errorf(rotator.KindInvalid, nil, "unsupported sslmode %q: use disable, prefer, require, verify-ca or verify-full", mode)
	}
	return m, m == "prefer", nil
}

func (r *Rotator) tlsConfig(mode, host string) *tls.Config {
	return rotator.TLSConfig(mode, host, r.opts.RootCAs)
}
