// Package sqlconn opens database connections with credentials read from a
// secret, and heals the connections that a password rotation would break.
//
// The secret holds the AWS RDS JSON shape:
//
//	{"engine":"postgres","host":"db.example","port":5432,"username":"app","password":"…","dbname":"app"}
//
// (port may also be a string; engine, port and dbname may be left out). What
// callers need first:
//
//   - [Postgres] and [MySQL] return a database/sql [driver.Connector]; pass it
//     to [sql.OpenDB]. Every new connection reads the secret from a [Source] —
//     normally a [client.Cache], so that is a memory read — and logs in with
//     it. Connections already open are unaffected by rotations (databases do
//     not end sessions when a password changes).
//   - [PgxBeforeConnect] does the same for a pgxpool.Pool (or any pgx
//     config) through its BeforeConnect hook.
//
// # Healing
//
// A connection whose login the database refuses — PostgreSQL SQLSTATE 28P01
// or 28000, MySQL error 1045; see [IsAuthFailure] — is retried with fresher
// credentials, so an application that held the old password does not fail:
//
//  1. The connector first asks the Source for the secret again with Get: if
//     another connection refreshed it meanwhile, those credentials are used
//     without a round trip to the service.
//  2. Otherwise it calls RefreshNow. If the service still returns the
//     credentials that were refused — a single-user rotation changes the
//     password in the database shortly before the new version becomes
//     AWSCURRENT — it waits (50 ms, doubling, at most 1 s per wait) and calls
//     RefreshNow again, for at most the auth wait ([WithAuthWait], default
//     5 s) over the whole Connect call. If the wait is spent and the
//     credentials are still the refused ones, Connect fails with the
//     database's error.
//  3. It logs in with the new credentials. This repeats at most
//     [WithMaxAuthRetries] times (default 4: a login can fall into the
//     window of one rotation, then of the next when rotations follow each
//     other closely, as a fast single-user rotation of a few tens of
//     milliseconds allows).
//
// So a Connect makes at most 1+max-retries login attempts, sleeps at most the
// auth wait, and each login attempt is bounded by the connect timeout
// ([WithConnectTimeout], default 10 s) and by ctx. When the bound is reached
// the error wraps the driver's own (a *pgconn.PgError or a *mysql.MySQLError,
// reachable with errors.As), so [IsAuthFailure] still recognises it. Every
// other error — the server is down, the database does not exist, the Source
// cannot read the secret — is not retried; the driver's errors are returned
// unchanged, the Source's wrapped.
//
// A pgxpool cannot retry a connection inside one Acquire; see
// [PgxBeforeConnect] for what its hook does instead.
//
// # Secrets
//
// Passwords never appear in errors or logs: a secret that is not RDS-shaped
// JSON is reported without its content, and the logger (nil: none) receives
// the secret id, the version id and the attempt number only. The password is
// never written into a connection string: the drivers' configurations are
// built from the secret's fields.
//
// # Concurrency
//
// Connectors and pool hooks are safe for concurrent use; healing by many
// connections at once costs one RefreshNow each at most, and a Source like
// [client.Cache] merges concurrent refreshes into one fetch.
package sqlconn

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/rotor-secrets/rotor/client"
)

// Source supplies the secret; *client.Cache implements it. Get may answer
// from memory; RefreshNow must read the secret's AWSCURRENT from the
// service.
type Source interface {
	Get(ctx context.Context, secretID string) (*client.Secret, error)
	RefreshNow(ctx context.Context, secretID string) (*client.Secret, error)
}

// Defaults of the options.
const (
	DefaultConnectTimeout = 10 * time.Second
	DefaultMaxAuthRetries = 4
	DefaultAuthWait       = 5 * time.Second
)

// The waits between two RefreshNow calls that returned the refused
// credentials: the first, doubling up to the last.
const (
	firstWait = 50 * time.Millisecond
	maxWait   = time.Second
)

// Option tunes a connector or a pool hook.
type Option func(*options)

type options struct {
	connectTimeout time.Duration
	maxRetries     int
	authWait       time.Duration
	sslMode        string
	tlsConfig      *tls.Config
	logger         *slog.Logger
	pgConfig       func(*pgx.ConnConfig)
	mysqlConfig    func(*mysql.Config)
}

func newOptions(opts []Option) options {
	o := options{
		connectTimeout: DefaultConnectTimeout,
		maxRetries:     DefaultMaxAuthRetries,
		authWait:       DefaultAuthWait,
	}
	for _, f := range opts {
		f(&o)
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// WithConnectTimeout bounds each login attempt (default 10s; 0 leaves it to
// the driver's default and ctx).
func WithConnectTimeout(d time.Duration) Option {
	return func(o *options) { o.connectTimeout = max(d, 0) }
}

// WithMaxAuthRetries sets how many times a refused login is retried with
// refreshed credentials (default 2; 0 disables healing).
func WithMaxAuthRetries(n int) Option {
	return func(o *options) { o.maxRetries = max(n, 0) }
}

// WithAuthWait bounds the time one Connect spends waiting for the secret to
// change after its credentials were refused and RefreshNow still returned
// them (default 5s). It covers the window of a single-user rotation between
// the password change in the database and the new version becoming
// AWSCURRENT.
func WithAuthWait(d time.Duration) Option {
	return func(o *options) { o.authWait = max(d, 0) }
}

// WithSSLMode sets the transport security in PostgreSQL's terms: "disable",
// "allow", "prefer", "require", "verify-ca" or "verify-full". For PostgreSQL
// it is the sslmode parameter (default: PGSSLMODE, else "prefer"). For MySQL
// it maps to the driver's tls parameter: disable → false, allow and prefer →
// preferred, require → skip-verify (encrypted, unverified), verify-ca and
// verify-full → true (default: no TLS).
func WithSSLMode(mode string) Option {
	return func(o *options) { o.sslMode = mode }
}

// WithTLSConfig uses cfg for TLS, overriding what WithSSLMode would build;
// the connector does not modify it. For PostgreSQL TLS is then required
// (no plaintext fallback).
func WithTLSConfig(cfg *tls.Config) Option {
	return func(o *options) { o.tlsConfig = cfg }
}

// WithLogger receives healing events (refused logins, refreshes, waits):
// secret id, version id and attempt, never a credential.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.logger = l }
}

// WithMySQLConfig lets f adjust each mysql.Config after it is built from the
// secret and before the login (ParseTime, Loc, Params, …). f must not keep
// the config.
func WithMySQLConfig(f func(*mysql.Config)) Option {
	return func(o *options) { o.mysqlConfig = f }
}

// IsAuthFailure reports whether err says the database refused a login:
// PostgreSQL SQLSTATE 28P01 (invalid_password) or 28000
// (invalid_authorization_specification), or MySQL error 1045 (access
// denied). Network errors and a server that is down are not.
func IsAuthFailure(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "28P01" || pgErr.Code == "28000"
	}
	var myErr *mysql.MySQLError
	if errors.As(err, &myErr) {
		return myErr.Number == 1045
	}
	return false
}

// creds are the fields of an RDS-shaped secret that a login needs.
type creds struct {
	engine    string
	host      string
	port      int
	username  string
	password  string
	dbname    string
	versionID string
}

// String describes c without its password.
func (c creds) String() string {
	return c.username + "@" + c.host + ":" + strconv.Itoa(c.port) + "/" + c.dbname
}

// same reports whether d would log in exactly as c did.
func (c creds) same(d creds) bool {
	return c.host == d.host && c.port == d.port && c.username == d.username &&
		c.password == d.password && c.dbname == d.dbname
}

// rdsSecret is the JSON shape; other fields (masterarn, dbInstanceIdentifier,
// …) are ignored.
type rdsSecret struct {
	Engine   string          `json:"engine"`
	Host     string          `json:"host"`
	Port     json.RawMessage `json:"port"` // a number or a string
	Username string          `json:"username"`
	Password string          `json:"password"`
	DBName   string          `json:"dbname"`
}

// engine is what a connector accepts.
type engine struct {
	name        string   // for messages
	names       []string // accepted values of the engine field ("" always is)
	defaultPort int
}

var (
	postgresEngine = engine{"postgres", []string{"postgres", "postgresql", "aurora-postgresql"}, 5432}
	mysqlEngine    = engine{"mysql", []string{"mysql", "mariadb", "aurora", "aurora-mysql"}, 3306}
)

// parseSecret reads s as an RDS-shaped secret for e. Its errors never quote
// the secret: json's syntax errors would show a character of it.
func parseSecret(secretID string, s *client.Secret, e engine) (creds, error) {
	if s == nil {
		return creds{}, fmt.Errorf("sqlconn: secret %s: no value", secretID)
	}
	bad := func(what string) error {
		return fmt.Errorf("sqlconn: secret %s version %s: %s", secretID, s.VersionID, what)
	}
	raw := []byte(s.SecretString)
	if s.SecretString == "" {
		raw = s.SecretBinary
	}
	var r rdsSecret
	if err := json.Unmarshal(raw, &r); err != nil {
		return creds{}, bad("not RDS-shaped JSON (want an object with host, username and password)")
	}
	c := creds{engine: r.Engine, host: r.Host, username: r.Username, password: r.Password, dbname: r.DBName, versionID: s.VersionID}
	if r.Engine != "" && !contains(e.names, r.Engine) {
		return creds{}, bad(fmt.Sprintf("engine %q is not a %s engine", r.Engine, e.name))
	}
	if c.host == "" {
		return creds{}, bad("no host")
	}
	if c.username == "" {
		return creds{}, bad("no username")
	}
	c.port = e.defaultPort
	if port := string(bytes.Trim(r.Port, `"`)); port != "" && port != "null" {
		p, err := strconv.Atoi(port)
		if err != nil || p <= 0 || p > 65535 {
			return creds{}, bad("port is not a TCP port number")
		}
		c.port = p
	}
	return c, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// healer reads a secret from a Source and runs the healing loop around a
// login function.
type healer struct {
	src      Source
	secretID string
	engine   engine
	opts     options
}

// current returns the credentials Get answers.
func (h *healer) current(ctx context.Context) (creds, error) {
	s, err := h.src.Get(ctx, h.secretID)
	if err != nil {
		return creds{}, fmt.Errorf("sqlconn: read secret %s: %w", h.secretID, err)
	}
	return parseSecret(h.secretID, s, h.engine)
}

// login runs dial with the current credentials and heals refused logins as
// the package comment says.
func login[C any](ctx context.Context, h *healer, dial func(context.Context, creds) (C, error)) (C, error) {
	var zero C
	c, err := h.current(ctx)
	if err != nil {
		return zero, err
	}
	var waited time.Duration // time spent waiting for the secret to change
	for attempt := 0; ; attempt++ {
		conn, err := dial(ctx, c)
		if err == nil {
			if attempt > 0 {
				h.opts.logger.InfoContext(ctx, "database login healed",
					"secret_id", h.secretID, "version_id", c.versionID, "attempt", attempt+1)
			}
			return conn, nil
		}
		if !IsAuthFailure(err) {
			return zero, err
		}
		if attempt >= h.opts.maxRetries {
			return zero, h.refused(c, attempt+1, err)
		}
		h.opts.logger.WarnContext(ctx, "database login refused; refreshing credentials",
			"secret_id", h.secretID, "version_id", c.versionID, "attempt", attempt+1)
		next, err2 := h.fresher(ctx, c, &waited)
		if err2 != nil {
			return zero, err2
		}
		if next.same(c) {
			return zero, h.refused(c, attempt+1, err)
		}
		c = next
	}
}

// refused is the error of a login that healing could not save; it wraps the
// driver's error.
func (h *healer) refused(c creds, attempts int, err error) error {
	return fmt.Errorf("sqlconn: secret %s version %s: login refused (%d attempts): %w",
		h.secretID, c.versionID, attempts, err)
}

// fresher returns credentials other than failed: from Get if another
// connection already refreshed the secret, else from RefreshNow, waiting
// while RefreshNow returns failed again until *waited reaches the auth
// wait. Then it returns failed itself.
func (h *healer) fresher(ctx context.Context, failed creds, waited *time.Duration) (creds, error) {
	if c, err := h.current(ctx); err == nil && !c.same(failed) {
		return c, nil
	}
	wait := firstWait
	for {
		s, err := h.src.RefreshNow(ctx, h.secretID)
		if err != nil {
			return creds{}, fmt.Errorf("sqlconn: refresh secret %s: %w", h.secretID, err)
		}
		c, err := parseSecret(h.secretID, s, h.engine)
		if err != nil {
			return creds{}, err
		}
		if !c.same(failed) || *waited >= h.opts.authWait {
			return c, nil
		}
		d := min(wait, h.opts.authWait-*waited)
		h.opts.logger.InfoContext(ctx, "refreshed credentials are the refused ones; waiting",
			"secret_id", h.secretID, "version_id", c.versionID, "wait", d)
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return creds{}, ctx.Err()
		}
		*waited += d
		wait = min(2*wait, maxWait)
	}
}
