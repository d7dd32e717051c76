package sqlconn

import (
	"context"
	"database/sql/driver"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// WithPostgresConfig lets f adjust each pgx configuration after it is built
// from the secret and before the login (RuntimeParams, Tracer, …). f must not
// keep the config. PgxBeforeConnect ignores it: configure the pool's config
// itself.
func WithPostgresConfig(f func(*pgx.ConnConfig)) Option {
	return func(o *options) { o.pgConfig = f }
}

// Postgres returns a database/sql connector for PostgreSQL that opens every
// connection through pgx (github.com/jackc/pgx/v5/stdlib) with the
// credentials of secretID read from src, healing refused logins as the
// package comment says. Settings the secret does not hold (sslmode, the
// application name, …) come from the environment (PGSSLMODE, PGAPPNAME, …) as
// with pgx, unless an option sets them; the user, password, host, port and
// database always come from the secret. Its Driver is pgx's.
func Postgres(src Source, secretID string, opts ...Option) driver.Connector {
	return &pgConnector{h: &healer{src: src, secretID: secretID, engine: postgresEngine, opts: newOptions(opts)}}
}

type pgConnector struct{ h *healer }

func (c *pgConnector) Connect(ctx context.Context) (driver.Conn, error) {
	return login(ctx, c.h, func(ctx context.Context, cr creds) (driver.Conn, error) {
		cfg, err := c.h.opts.pgxConfig(cr)
		if err != nil {
			return nil, err
		}
		if c.h.opts.pgConfig != nil {
			c.h.opts.pgConfig(cfg)
		}
		return stdlib.GetConnector(*cfg).Connect(ctx)
	})
}

func (c *pgConnector) Driver() driver.Driver { return stdlib.GetDefaultDriver() }

// pgxConfig builds a pgx configuration from c. Only the address and the
// sslmode go through pgx's parser, which derives the TLS settings and the
// plaintext fallback from them; the credentials are set afterwards, so the
// password is never part of a connection string.
func (o *options) pgxConfig(c creds) (*pgx.ConnConfig, error) {
	conn := "host=" + pgQuote(c.host) + " port=" + strconv.Itoa(c.port)
	if o.sslMode != "" {
		conn += " sslmode=" + pgQuote(o.sslMode)
	}
	cfg, err := pgx.ParseConfig(conn)
	if err != nil {
		return nil, fmt.Errorf("sqlconn: postgres configuration for %s:%d: %w", c.host, c.port, err)
	}
	cfg.User, cfg.Password, cfg.Database = c.username, c.password, c.dbname
	if o.connectTimeout > 0 {
		cfg.ConnectTimeout = o.connectTimeout
	}
	if o.tlsConfig != nil {
		cfg.TLSConfig, cfg.Fallbacks = o.tlsConfig, nil
	}
	return cfg, nil
}

// pgQuote quotes a value of a keyword/value connection string.
func pgQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// PgxBeforeConnect returns a hook for pgxpool.Config.BeforeConnect (or
// pgx/v5/stdlib's OptionBeforeConnect) that makes every new connection log in
// with the credentials of secretID read from src:
//
//	cfg, err := pgxpool.ParseConfig("pool_max_conns=10")
//	…
//	cfg.BeforeConnect = sqlconn.PgxBeforeConnect(cache, "prod/app/db")
//	pool, err := pgxpool.NewWithConfig(ctx, cfg)
//
// The hook replaces the connection's user, password, database, host, port
// and TLS settings with the secret's (and the options'); the rest of the
// config, such as RuntimeParams and Tracer, is kept. WithPostgresConfig and
// WithMaxAuthRetries do not apply.
//
// pgxpool does not retry a connection that fails, so healing works across
// connections rather than inside one:
//
//   - A new connection whose login is refused fails the Acquire (or the
//     pool's background connection) that wanted it, with the driver's error;
//     so do the connections already logging in with the same credentials.
//   - The hook notices the refusal through a pgx ConnectTracer it puts in
//     each connection's config (in front of the config's own Tracer, which
//     still sees every event). The next connection that would use the
//     refused credentials first gets fresher ones as a connector does: Get,
//     else RefreshNow, waiting up to the auth wait for the secret to change.
//
// So after a rotation at most the connections in flight at the first
// refusal fail, and retrying once an Acquire whose error satisfies
// IsAuthFailure is enough for an application to see none. Connections
// already in the pool are unaffected. Each hook keeps its own record of
// refused credentials: use one per pool.
func PgxBeforeConnect(src Source, secretID string, opts ...Option) func(context.Context, *pgx.ConnConfig) error {
	p := &poolHook{h: &healer{src: src, secretID: secretID, engine: postgresEngine, opts: newOptions(opts)}}
	return p.beforeConnect
}

type poolHook struct {
	h *healer

	mu      sync.Mutex
	refused *creds // the last credentials a login was refused with
}

func (p *poolHook) beforeConnect(ctx context.Context, cc *pgx.ConnConfig) error {
	c, err := p.h.current(ctx)
	if err != nil {
		return err
	}
	p.mu.Lock()
	refused := p.refused
	p.mu.Unlock()
	if refused != nil && c.same(*refused) {
		var waited time.Duration
		if c, err = p.h.fresher(ctx, c, &waited); err != nil {
			return err
		}
		p.mu.Lock()
		if p.refused == refused && !c.same(*refused) {
			p.refused = nil
		}
		p.mu.Unlock()
	}
	built, err := p.h.opts.pgxConfig(c)
	if err != nil {
		return err
	}
	cc.Host, cc.Port, cc.TLSConfig, cc.Fallbacks = built.Host, built.Port, built.TLSConfig, built.Fallbacks
	cc.User, cc.Password, cc.Database = built.User, built.Password, built.Database
	if p.h.opts.connectTimeout > 0 {
		cc.ConnectTimeout = p.h.opts.connectTimeout
	}
	cc.Tracer = &refusalTracer{next: cc.Tracer, p: p, c: c}
	return nil
}

// noted records that a login with c was refused.
func (p *poolHook) noted(ctx context.Context, c *creds) {
	p.mu.Lock()
	p.refused = c
	p.mu.Unlock()
	p.h.opts.logger.WarnContext(ctx, "database login refused; the next connection refreshes credentials",
		"secret_id", p.h.secretID, "version_id", c.versionID)
}

// refusalTracer tells its hook when a login with c is refused, and passes
// every event on to next (nil: none).
type refusalTracer struct {
	next pgx.QueryTracer
	p    *poolHook
	c    creds
}

func (t *refusalTracer) TraceConnectStart(ctx context.Context, data pgx.TraceConnectStartData) context.Context {
	if n, ok := t.next.(pgx.ConnectTracer); ok {
		return n.TraceConnectStart(ctx, data)
	}
	return ctx
}

func (t *refusalTracer) TraceConnectEnd(ctx context.Context, data pgx.TraceConnectEndData) {
	if data.Err != nil && IsAuthFailure(data.Err) {
		t.p.noted(ctx, &t.c)
	}
	if n, ok := t.next.(pgx.ConnectTracer); ok {
		n.TraceConnectEnd(ctx, data)
	}
}

func (t *refusalTracer) TraceQueryStart(ctx context.Context, conn *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	if t.next != nil {
		return t.next.TraceQueryStart(ctx, conn, data)
	}
	return ctx
}

func (t *refusalTracer) TraceQueryEnd(ctx context.Context, conn *pgx.Conn, data pgx.TraceQueryEndData) {
	if t.next != nil {
		t.next.TraceQueryEnd(ctx, conn, data)
	}
}

func (t *refusalTracer) TraceBatchStart(ctx context.Context, conn *pgx.Conn, data pgx.TraceBatchStartData) context.Context {
	if n, ok := t.next.(pgx.BatchTracer); ok {
		return n.TraceBatchStart(ctx, conn, data)
	}
	return ctx
}

func (t *refusalTracer) TraceBatchQuery(ctx context.Context, conn *pgx.Conn, data pgx.TraceBatchQueryData) {
	if n, ok := t.next.(pgx.BatchTracer); ok {
		n.TraceBatchQuery(ctx, conn, data)
	}
}

func (t *refusalTracer) TraceBatchEnd(ctx context.Context, conn *pgx.Conn, data pgx.TraceBatchEndData) {
	if n, ok := t.next.(pgx.BatchTracer); ok {
		n.TraceBatchEnd(ctx, conn, data)
	}
}

func (t *refusalTracer) TraceCopyFromStart(ctx context.Context, conn *pgx.Conn, data pgx.TraceCopyFromStartData) context.Context {
	if n, ok := t.next.(pgx.CopyFromTracer); ok {
		return n.TraceCopyFromStart(ctx, conn, data)
	}
	return ctx
}

func (t *refusalTracer) TraceCopyFromEnd(ctx context.Context, conn *pgx.Conn, data pgx.TraceCopyFromEndData) {
	if n, ok := t.next.(pgx.CopyFromTracer); ok {
		n.TraceCopyFromEnd(ctx, conn, data)
	}
}

func (t *refusalTracer) TracePrepareStart(ctx context.Context, conn *pgx.Conn, data pgx.TracePrepareStartData) context.Context {
	if n, ok := t.next.(pgx.PrepareTracer); ok {
		return n.TracePrepareStart(ctx, conn, data)
	}
	return ctx
}

func (t *refusalTracer) TracePrepareEnd(ctx context.Context, conn *pgx.Conn, data pgx.TracePrepareEndData) {
	if n, ok := t.next.(pgx.PrepareTracer); ok {
		n.TracePrepareEnd(ctx, conn, data)
	}
}
