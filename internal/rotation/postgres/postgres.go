// Package postgres rotates PostgreSQL passwords: the rotator.Rotator behind
// rotor-postgres-single-user and rotor-postgres-alternating-users. Callers
// build one Rotator with New, share it (it is safe for concurrent use) and
// Close it at shutdown.
//
// # Passwords never travel as SQL
//
// Set computes the SCRAM-SHA-256 verifier of the new password itself
// (random 16-byte salt, 4096 iterations: PostgreSQL's own parameters) and
// sends ALTER ROLE … PASSWORD '<verifier>', which PostgreSQL stores as
// given. The password is therefore absent from server logs
// (log_statement = all), pg_stat_statements and pg_stat_activity; only the
// verifier appears there, as it would in pg_authid. Logins use SCRAM, which
// proves the password without sending it — unless the server's pg_hba.conf
// asks for "password" (cleartext) authentication, which only TLS protects.
// Where pg_hba.conf says md5, PostgreSQL authenticates a role whose stored
// password is a SCRAM verifier with SCRAM, so clients need SCRAM support
// (libpq 10 or later), as they do on any server since PostgreSQL 14.
//
// Pending passwords must be printable ASCII (space to tilde), as Rotor's
// generator makes them: for other characters PostgreSQL's clients apply
// SASLprep normalisation differently (libpq, pgx and JDBC do not agree), so
// a verifier computed here might not match what a client proves.
// Connections are configured from the credentials' fields; no password is
// ever formatted into a connection string, and pgx's environment
// (PGPASSWORD, ~/.pgpass) never supplies one.
//
// # Connections
//
// Master connections are kept open between calls and between rotations
// (package connpool): per server, master user, database and sslmode,
// reused only for the same master password, pinged before reuse (a failed
// ping means a new login), and closed after a minute unused, ten minutes
// after their login, on any error during their use, when a rotation
// changes the master user's own password, and by Close ([Options]). Every
// other login — the user's own, Test's — is a connection of its own,
// closed before the call returns: Test is always a fresh login.
//
// A master that may read pg_authid (a superuser; not RDS's master) proves
// the passwords a guard needs by comparing them with the role's stored
// SCRAM-SHA-256 or MD5 verifier, which also requires LOGIN and an unexpired
// VALID UNTIL; pg_hba.conf is not consulted. So with a pooled superuser
// master, Set logs in nowhere and a rotation's only login is Test's. A
// password not proven that way (a master without access, a non-ASCII
// password, an unknown verifier format, or simply another password:
// pg_hba.conf may trust the user) is proven by a login, as before. A
// per-Rotator memo of the verifiers Set computed spares the PBKDF2 of
// checking the password Rotor set at the previous rotation.
//
// sslmode=prefer is negotiated as libpq does, on one connection: TLS if the
// server accepts the SSLRequest, else plaintext on the same connection.
// (pgx would open a second connection, a second backend, after a refusal.)
//
// # Single user
//
// With Master given and able to read verifiers: if Current's or
// Previous's password is the role's, Master sets the pending one; if
// Pending's is, Set does nothing (a repeated step, or a crash after the
// change). Otherwise Set logs in as the user with Current's password, then
// Pending's (if that logs in, nothing is left to do), then Previous's, and
// changes its own password (any role may). If the user logged in but may not change its own password (RDS's
// rds.restrict_password_commands, a read-only role) and Master is given,
// Master changes it. Master is never used for a user whose Current or
// Previous password is not proven: that would let whoever writes a secret
// take over any role the master can alter, the master's own included.
//
// # Alternating users
//
// The pair is NAME (the base role) and NAME_clone; the base is the name
// without the suffix. Set checks that Master names the same server as the
// secret and that Current's password is proven (the same guard: Master
// acts only for a secret whose writer knows the current password), then,
// as Master and in one transaction:
//
//   - creates NAME_clone with LOGIN if it does not exist, and grants it
//     membership in NAME (GRANT NAME TO NAME_clone) if it lacks it, so
//     privileges granted to NAME at any time reach the clone;
//   - sets ALTER ROLE NAME_clone SET role = 'NAME', so every session of the
//     clone runs as NAME: objects it creates are owned by NAME, NAME's
//     default privileges apply to them, and NAME's role attributes
//     (CREATEDB, BYPASSRLS, …) hold in them. This fixes the weakness of
//     AWS's template, where tables created through the clone belong to the
//     clone and the base user gets "permission denied" on them. NAME itself
//     is never altered except for its password;
//   - copies NAME's per-role settings (ALTER ROLE NAME [IN DATABASE d] SET
//     …: search_path, statement_timeout, …) to the clone, replacing the
//     clone's own, because PostgreSQL applies the settings of the role that
//     logged in, not of the role it switches to;
//   - sets the pending user's password (the clone's or the base's, in
//     turn) — also in a repeated step, where it already is that password:
//     setting it again is harmless (PostgreSQL keeps no password history)
//     and cheaper than a login to find out.
//
// A repeated step also repeats this re-sync. What
// the clone does not share with NAME: its CONNECTION LIMIT and VALID UNTIL
// (its own, unlimited by default), pg_hba.conf lines naming NAME (write
// +NAME to match members of NAME), and session_user, which stays NAME_clone
// (current_user is NAME). A clone an operator has disabled (NOLOGIN) is left
// so, and its Test fails. Objects a clone created before Rotor managed it
// (under AWS's template) keep their owner: run REASSIGN OWNED BY NAME_clone
// TO NAME in each database once. On PostgreSQL 16 and later an existing
// membership whose SET option an operator turned off is not turned back on.
// Identifiers are at most 63 bytes, so NAME may have at most 57.
//
// # Errors
//
// Every error is a *rotator.Error whose cause is rebuilt from the server's
// SQLSTATE, message, detail and hint (a *pgconn.PgError) or from the
// network error, with every password and the verifier removed. Class 28
// (authentication) is KindAuth, 42501 KindPermission, 42704 (a role the
// secret names does not exist) and 3D000 (no such database) KindInvalid,
// network failures, timeouts, class 08 and 53 and shutdowns KindUnreachable,
// anything else KindTarget.
package postgres

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/rotor-secrets/rotor/internal/rotation/connpool"
	"github.com/rotor-secrets/rotor/internal/rotation/rotator"
)

const (
	// maxIdentLen is PostgreSQL's NAMEDATALEN-1: the longest role name.
	maxIdentLen = 63
	defaultPort = 5432
	defaultDB   = "postgres"
)

// Options configure a Rotator. The zero value is usable.
type Options struct {
	// ConnectTimeout bounds each login: dial, TLS and authentication.
	// 0 means 10 seconds.
	ConnectTimeout time.Duration
	// Timeout bounds a whole Set or Test call, every login and statement
	// included, within the caller's context. 0 means 60 seconds.
	Timeout time.Duration
	// SSLMode is libpq's sslmode for credentials whose SSLMode is "":
	// disable, allow, prefer, require, verify-ca or verify-full. "" means
	// prefer, libpq's default (and close to AWS's templates): TLS when the
	// server offers it, without checking its certificate, else plaintext.
	// Deployments that can should use verify-full.
	SSLMode string
	// Pool bounds the master connections kept open between calls (per
	// server, master user, database and sslmode); zero values:
	// connpool.MasterLimits.
	Pool connpool.Limits
}

// Rotator rotates PostgreSQL passwords. Create it with New; Close it to
// close the master connections it keeps.
type Rotator struct {
	opts   Options
	pool   *connpool.Pool[*pgx.Conn]
	memo   *matchMemo
	logins atomic.Int64 // logins attempted, for tests
}

var _ rotator.Rotator = (*Rotator)(nil)

// New returns a Rotator. It does no I/O; an invalid SSLMode is reported by
// each call as KindInvalid.
func New(opts Options) *Rotator {
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = 10 * time.Second
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 60 * time.Second
	}
	if opts.SSLMode == "" {
		opts.SSLMode = "prefer"
	}
	pool := connpool.New(connpool.Options[*pgx.Conn]{
		Limits: connpool.MasterLimits(opts.Pool),
		Ping:   pingConn,
		Close:  closeConn,
	})
	return &Rotator{opts: opts, pool: pool, memo: newMatchMemo()}
}

// Close closes the idle master connections. A Rotator still works after
// Close, without keeping connections.
func (r *Rotator) Close() error { return r.pool.Close() }

// pingConn checks an idle master connection before reuse: open, outside
// a transaction, and answering.
func pingConn(ctx context.Context, conn *pgx.Conn) error {
	if conn.IsClosed() {
		return errors.New("connection closed")
	}
	if st := conn.PgConn().TxStatus(); st != 'I' {
		return errors.New("connection not idle")
	}
	return conn.Ping(ctx)
}

// Test logs in with req.Credentials and runs SELECT 1.
func (r *Rotator) Test(ctx context.Context, req rotator.TestRequest) error {
	ctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	defer cancel()
	c := req.Credentials
	sc := scrubber{c.Password}
	conn, err := r.connect(ctx, c, sc)
	if err != nil {
		return err
	}
	defer closeConn(conn)
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		return sc.fail(err, "query as %q at %s", c.Username, where(c))
	}
	return nil
}

// Set makes the server accept req.Pending; see the package comment.
func (r *Rotator) Set(ctx context.Context, req rotator.SetRequest) error {
	ctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	defer cancel()
	if err := checkPassword(req.Pending.Password); err != nil {
		return err
	}
	verifier, err := newVerifier(req.Pending.Password)
	if err != nil {
		return rotator.Errorf(rotator.KindTarget, err, "compute the password verifier")
	}
	r.memo.add(req.Pending.Username, verifier, req.Pending.Password)
	sc := append(newScrubber(req), verifier)
	switch req.Strategy {
	case rotator.SingleUser:
		return r.setSingle(ctx, req, verifier, sc)
	case rotator.AlternatingUsers:
		return r.setAlternating(ctx, req, verifier, sc)
	}
	return rotator.Errorf(rotator.KindInvalid, nil, "unsupported rotation strategy %v", req.Strategy)
}

func (r *Rotator) setSingle(ctx context.Context, req rotator.SetRequest, verifier string, sc scrubber) error {
	p := req.Pending
	if p.Username != req.Current.Username || !sameServer(p, req.Current) {
		return rotator.Errorf(rotator.KindInvalid, nil,
			"single-user rotation: the pending credentials (%q at %s) must name the current user and server (%q at %s)",
			p.Username, where(p), req.Current.Username, where(req.Current))
	}
	// A Previous of another user (the secret was alternating before) is of
	// no use here.
	var prev *rotator.Credentials
	if pr := req.Previous; pr != nil && pr.Username == p.Username && sameServer(*pr, p) {
		prev = pr
	}
	if req.Master != nil && sameServer(*req.Master, p) {
		if done, err := r.setSingleAsMaster(ctx, req, prev, verifier, sc); done || err != nil {
			return err
		}
	}
	// Current first: on a first attempt it is the password that works.
	// Pending works after a crash that followed the change; Previous when
	// Current was never the user's.
	var authErr error
	for i, c := range []*rotator.Credentials{&req.Current, &p, prev} {
		if c == nil {
			continue
		}
		conn, err := r.connect(ctx, *c, sc)
		if rotator.KindOf(err) == rotator.KindAuth {
			authErr = err
			continue
		}
		if err != nil {
			return err
		}
		if i == 1 {
			closeConn(conn)
			return nil // already done
		}
		err = alterPassword(ctx, conn, p.Username, verifier, sc)
		closeConn(conn)
		r.forget(p)
		if k := rotator.KindOf(err); err != nil && req.Master != nil && (k == rotator.KindPermission || k == rotator.KindTarget) {
			// The user proved its password but may not change it.
			return r.setAsMaster(ctx, p, *req.Master, verifier, sc)
		}
		return err
	}
	var cause error
	var re *rotator.Error
	if errors.As(authErr, &re) {
		cause = re.Err
	}
	return noPasswordWorks(p, cause)
}

func noPasswordWorks(p rotator.Credentials, cause error) error {
	return rotator.Errorf(rotator.KindAuth, cause,
		"none of the pending, current and previous passwords of %q logs in at %s", p.Username, where(p))
}

// setSingleAsMaster is single-user Set without logging in as the user:
// Master (pooled) proves one of the user's passwords against the stored
// verifier and changes the password. done is false, with no error, when
// no password is proven that way — Master may not read verifiers (only
// superusers may), a password cannot be checked so, or none matches (yet
// one might log in: pg_hba.conf may trust the user) — and Set then logs in
// as the user.
func (r *Rotator) setSingleAsMaster(ctx context.Context, req rotator.SetRequest, prev *rotator.Credentials, verifier string, sc scrubber) (done bool, err error) {
	p := req.Pending
	mc, err := r.master(ctx, *req.Master, sc)
	if err != nil {
		// Master is optional here: the user may change its own password.
		return false, nil
	}
	healthy := true
	defer func() { mc.Release(healthy) }()
	login, readable, err := storedPassword(ctx, mc.C, p.Username)
	if err != nil || !readable {
		healthy = err == nil
		return false, nil
	}
	// Current first: on a first attempt it is the password that works (and
	// the memo knows it when Rotor set it).
	for i, c := range []*rotator.Credentials{&req.Current, &p, prev} {
		if c == nil {
			continue
		}
		if match, _ := r.matches(login, p.Username, c.Password); !match {
			continue
		}
		if i == 1 {
			return true, nil // already done
		}
		err := alterPassword(ctx, mc.C, p.Username, verifier, sc)
		r.forget(p)
		healthy = err == nil
		return err == nil, err
	}
	return false, nil
}

// setAsMaster changes p's password as master.
func (r *Rotator) setAsMaster(ctx context.Context, p, master rotator.Credentials, verifier string, sc scrubber) (err error) {
	if !sameServer(master, p) {
		return masterElsewhere(master, p)
	}
	mc, err := r.master(ctx, master, sc)
	if err != nil {
		return err
	}
	defer func() { mc.Release(err == nil) }()
	err = alterPassword(ctx, mc.C, p.Username, verifier, sc)
	r.forget(p)
	return err
}

func (r *Rotator) setAlternating(ctx context.Context, req rotator.SetRequest, verifier string, sc scrubber) (err error) {
	p, cur := req.Pending, req.Current
	if req.Master == nil {
		return rotator.Errorf(rotator.KindInvalid, nil,
			"alternating-users rotation needs master credentials (the secret's masterarn)")
	}
	master := *req.Master
	alt, err := rotator.AlternateUser(cur.Username, maxIdentLen)
	if err != nil {
		return err
	}
	if p.Username != alt || !sameServer(p, cur) {
		return rotator.Errorf(rotator.KindInvalid, nil,
			"alternating-users rotation: the pending credentials (%q at %s) must name %q at %s, the alternate of the current user",
			p.Username, where(p), alt, where(cur))
	}
	if !sameServer(master, cur) {
		return masterElsewhere(master, cur)
	}
	base, clone := cur.Username, p.Username
	if p.Username != cur.Username+rotator.CloneSuffix {
		base, clone = p.Username, cur.Username
	}

	mc, err := r.master(ctx, master, sc)
	if err != nil {
		return err
	}
	defer func() { mc.Release(err == nil) }()
	if err := r.proveCurrent(ctx, mc.C, cur, sc); err != nil {
		return err
	}
	// The pending password is set even when it already logs in (a repeated
	// step): setting the same password again is harmless, and cheaper than
	// a login to find out.
	err = syncPair(ctx, mc.C, base, clone, p.Username, verifier, sc)
	r.forget(p)
	return err
}

// proveCurrent makes sure that whoever wrote the secret knows the current
// password before Master acts for them: by comparing it with the stored
// verifier when Master may read it, else (or when they differ) by logging
// in.
func (r *Rotator) proveCurrent(ctx context.Context, master *pgx.Conn, cur rotator.Credentials, sc scrubber) error {
	refused := func(cause error) error {
		return rotator.Errorf(rotator.KindAuth, cause,
			"the current credentials of %q do not log in at %s, so the master will not act for them", cur.Username, where(cur))
	}
	login, readable, err := storedPassword(ctx, master, cur.Username)
	if err != nil {
		return sc.fail(err, "read the stored password of %q as master", cur.Username)
	}
	if readable {
		if match, _ := r.matches(login, cur.Username, cur.Password); match {
			return nil
		}
		// Unproven is not disproven (pg_hba.conf may trust the user): log in.
	}
	conn, err := r.connect(ctx, cur, sc)
	if err != nil {
		if rotator.KindOf(err) == rotator.KindAuth {
			var re *rotator.Error
			errors.As(err, &re)
			return refused(re.Err)
		}
		return err
	}
	closeConn(conn)
	return nil
}

// master returns a connection as master: an idle pooled one that logged in
// with the same password, or a new login. Release it with
// Release(err == nil), after any transaction ended.
func (r *Rotator) master(ctx context.Context, m rotator.Credentials, sc scrubber) (*connpool.Conn[*pgx.Conn], error) {
	if _, err := r.config(m); err != nil {
		return nil, err
	}
	key := connpool.Key{Engine: "postgres", Host: m.Host, Port: port(m), User: m.Username, DBName: dbName(m), TLS: r.sslMode(m)}
	return r.pool.Get(ctx, key, m.Password, func(ctx context.Context) (*pgx.Conn, error) {
		return r.connect(ctx, m, sc)
	})
}

// forget closes the pooled connections of c's user: its password changed.
func (r *Rotator) forget(c rotator.Credentials) {
	r.pool.Forget("postgres", c.Host, port(c), c.Username)
}

// syncPair, as master, makes clone a faithful alternate of base and, when
// verifier is not "", sets pending's password; all in one transaction.
func syncPair(ctx context.Context, conn *pgx.Conn, base, clone, pending, verifier string, sc scrubber) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return sc.fail(err, "begin a transaction as master")
	}
	defer tx.Rollback(context.WithoutCancel(ctx))

	baseOID, ok, err := roleOID(ctx, tx, base)
	if err != nil {
		return sc.fail(err, "look up role %q", base)
	}
	if !ok {
		return rotator.Errorf(rotator.KindInvalid, nil, "role %q does not exist", base)
	}
	cloneOID, ok, err := roleOID(ctx, tx, clone)
	if err != nil {
		return sc.fail(err, "look up role %q", clone)
	}
	if !ok {
		if _, err := tx.Exec(ctx, "CREATE ROLE "+ident(clone)+" LOGIN"); err != nil {
			return sc.fail(err, "create role %q", clone)
		}
		if cloneOID, _, err = roleOID(ctx, tx, clone); err != nil {
			return sc.fail(err, "look up role %q", clone)
		}
	}
	var member bool
	if err := tx.QueryRow(ctx, "SELECT pg_catalog.pg_has_role($1::oid, $2::oid, 'MEMBER')", cloneOID, baseOID).Scan(&member); err != nil {
		return sc.fail(err, "check whether %q is a member of %q", clone, base)
	}
	if !member {
		if _, err := tx.Exec(ctx, "GRANT "+ident(base)+" TO "+ident(clone)); err != nil {
			return sc.fail(err, "grant role %q to %q", base, clone)
		}
	}
	if err := syncSettings(ctx, tx, base, clone, baseOID, cloneOID, sc); err != nil {
		return err
	}
	if verifier != "" {
		if err := alterPassword(ctx, tx, pending, verifier, sc); err != nil {
			return err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return sc.fail(err, "commit the changes to %q and %q", base, clone)
	}
	return nil
}

// querier is what *pgx.Conn and pgx.Tx share.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func roleOID(ctx context.Context, q querier, name string) (oid uint32, ok bool, err error) {
	err = q.QueryRow(ctx, "SELECT oid FROM pg_catalog.pg_roles WHERE rolname = $1", name).Scan(&oid)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	return oid, err == nil, err
}

// settings are a role's per-role settings: database name ("" for all
// databases) → parameter → value as pg_db_role_setting stores it.
type settings map[string]map[string]string

func roleSettings(ctx context.Context, q querier, oid uint32) (settings, error) {
	rows, err := q.Query(ctx, `SELECT COALESCE(d.datname, ''), s.setconfig
		FROM pg_catalog.pg_db_role_setting s
		LEFT JOIN pg_catalog.pg_database d ON d.oid = s.setdatabase
		WHERE s.setrole = $1 AND (s.setdatabase = 0 OR d.oid IS NOT NULL)`, oid)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := settings{}
	for rows.Next() {
		var db string
		var config []string
		if err := rows.Scan(&db, &config); err != nil {
			return nil, err
		}
		m := map[string]string{}
		for _, kv := range config {
			if name, value, ok := strings.Cut(kv, "="); ok {
				m[name] = value
			}
		}
		out[db] = m
	}
	return out, rows.Err()
}

// syncSettings makes clone's per-role settings base's, plus role = base
// for all databases.
func syncSettings(ctx context.Context, tx pgx.Tx, base, clone string, baseOID, cloneOID uint32, sc scrubber) error {
	have, err := roleSettings(ctx, tx, cloneOID)
	if err != nil {
		return sc.fail(err, "read the settings of role %q", clone)
	}
	from, err := roleSettings(ctx, tx, baseOID)
	if err != nil {
		return sc.fail(err, "read the settings of role %q", base)
	}
	want := settings{"": {"role": base}}
	for db, m := range from {
		for name, value := range m {
			// The session's identity is the clone's business: it runs
			// as base.
			if strings.EqualFold(name, "role") || strings.EqualFold(name, "session_authorization") {
				continue
			}
			if want[db] == nil {
				want[db] = map[string]string{}
			}
			want[db][name] = value
		}
	}
	dbs := slices.Sorted(maps.Keys(want))
	for db := range have {
		if _, ok := want[db]; !ok {
			dbs = append(dbs, db)
		}
	}
	for _, db := range dbs {
		if maps.Equal(have[db], want[db]) {
			continue
		}
		prefix := "ALTER ROLE " + ident(clone)
		if db != "" {
			prefix += " IN DATABASE " + ident(db)
		}
		if len(have[db]) > 0 {
			if _, err := tx.Exec(ctx, prefix+" RESET ALL"); err != nil {
				return sc.fail(err, "reset the settings of role %q", clone)
			}
		}
		for _, name := range slices.Sorted(maps.Keys(want[db])) {
			sql := prefix + " SET " + gucName(name) + " TO " + gucValue(name, want[db][name])
			if _, err := tx.Exec(ctx, sql); err != nil {
				return sc.fail(err, "copy setting %s of role %q to %q", name, base, clone)
			}
		}
	}
	return nil
}

// listQuoted are the parameters PostgreSQL marks GUC_LIST_QUOTE: their
// stored value is a list of quoted identifiers, which SET takes back only
// as one string literal per element.
var listQuoted = map[string]bool{
	"search_path": true, "temp_tablespaces": true, "session_preload_libraries": true,
	"shared_preload_libraries": true, "local_preload_libraries": true,
}

// gucName quotes a parameter name (possibly qualified: "ext.name").
func gucName(name string) string {
	return pgx.Identifier(strings.Split(name, ".")).Sanitize()
}

// gucValue is the SET argument that makes PostgreSQL store value again.
func gucValue(name, value string) string {
	if !listQuoted[strings.ToLower(name)] {
		return literal(value)
	}
	elems := splitIdentList(value)
	quoted := make([]string, len(elems))
	for i, e := range elems {
		quoted[i] = literal(e)
	}
	return strings.Join(quoted, ", ")
}

// splitIdentList splits a stored list such as `"$user", public, "My ""x"""`
// into its elements, unquoted.
func splitIdentList(s string) []string {
	var out []string
	for {
		s = strings.TrimLeft(s, " \t\n\r")
		if s == "" {
			return out
		}
		var elem strings.Builder
		if s[0] == '"' {
			i := 1
			for i < len(s) {
				if s[i] == '"' {
					if i+1 < len(s) && s[i+1] == '"' {
						elem.WriteByte('"')
						i += 2
						continue
					}
					i++
					break
				}
				elem.WriteByte(s[i])
				i++
			}
			s = s[i:]
		} else {
			end := strings.IndexByte(s, ',')
			if end < 0 {
				end = len(s)
			}
			elem.WriteString(strings.TrimRight(s[:end], " \t\n\r"))
			s = s[end:]
		}
		out = append(out, elem.String())
		s = strings.TrimLeft(s, " \t\n\r")
		s = strings.TrimPrefix(s, ",")
	}
}

// alterPassword sets user's password to verifier.
func alterPassword(ctx context.Context, q querier, user, verifier string, sc scrubber) error {
	if _, err := q.Exec(ctx, "ALTER ROLE "+ident(user)+" PASSWORD "+literal(verifier)); err != nil {
		return sc.fail(err, "change the password of %q", user)
	}
	return nil
}

var sslModes = []string{"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}

// connect logs in with c.
func (r *Rotator) connect(ctx context.Context, c rotator.Credentials, sc scrubber) (*pgx.Conn, error) {
	cfg, err := r.config(c)
	if err != nil {
		return nil, err
	}
	r.logins.Add(1)
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, sc.fail(err, "log in as %q at %s", c.Username, where(c))
	}
	return conn, nil
}

// config builds a pgx configuration from c's fields. Only settings that
// hold no secret pass through the connection string, which decides TLS
// (it needs the host); the password is set on the result.
func (r *Rotator) config(c rotator.Credentials) (*pgx.ConnConfig, error) {
	switch c.Engine {
	case "", "postgres", "postgresql", "aurora-postgresql":
	default:
		return nil, rotator.Errorf(rotator.KindInvalid, nil, "engine %q is not PostgreSQL", c.Engine)
	}
	if c.Host == "" || c.Username == "" || c.Password == "" {
		return nil, rotator.Errorf(rotator.KindInvalid, nil, "credentials for %q need a host, a username and a password", c.Username)
	}
	if strings.Contains(c.Host, ",") {
		// libpq would read a list of hosts and try each.
		return nil, rotator.Errorf(rotator.KindInvalid, nil, "host %q names several servers; a secret names one", c.Host)
	}
	pt := port(c)
	if pt < 0 || pt > 65535 {
		return nil, rotator.Errorf(rotator.KindInvalid, nil, "port %d is out of range", c.Port)
	}
	mode := r.sslMode(c)
	if !slices.Contains(sslModes, mode) {
		return nil, rotator.Errorf(rotator.KindInvalid, nil, "sslmode %q is not one of %s", mode, strings.Join(sslModes, ", "))
	}
	parseMode := mode
	if mode == "prefer" {
		// The TLS settings of require, negotiated by preferDial.
		parseMode = "require"
	}
	db := dbName(c)
	connString := "host=" + kvQuote(c.Host) + " port=" + strconv.Itoa(pt) +
		" user=" + kvQuote(c.Username) + " dbname=" + kvQuote(db) +
		" sslmode=" + parseMode + " target_session_attrs=any"
	cfg, err := pgx.ParseConfig(connString)
	if err != nil {
		// The string holds no secret, but say only what matters.
		return nil, rotator.Errorf(rotator.KindInvalid, nil, "connection settings for %q at %s are invalid", c.Username, where(c))
	}
	if mode == "prefer" {
		cfg.DialFunc = preferDial(cfg.DialFunc, cfg.TLSConfig)
		cfg.TLSConfig, cfg.Fallbacks = nil, nil
	}
	cfg.User = c.Username
	cfg.Database = db
	cfg.Password = c.Password
	cfg.ConnectTimeout = r.opts.ConnectTimeout
	cfg.RuntimeParams = map[string]string{"application_name": "rotor"}
	// Sessions are short: no statement preparation round trips.
	cfg.DefaultQueryExecMode = pgx.QueryExecModeExec
	cfg.StatementCacheCapacity = 0
	cfg.DescriptionCacheCapacity = 0
	return cfg, nil
}

// checkPassword rejects pending passwords Set cannot set safely.
func checkPassword(pw string) error {
	if pw == "" {
		return rotator.Errorf(rotator.KindInvalid, nil, "the pending password is empty")
	}
	for i := 0; i < len(pw); i++ {
		if pw[i] < ' ' || pw[i] > '~' {
			return rotator.Errorf(rotator.KindInvalid, nil,
				"the pending password has a character other than printable ASCII (byte %d), which PostgreSQL clients normalise inconsistently", i)
		}
	}
	return nil
}

func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	conn.Close(ctx)
}

func masterElsewhere(master, c rotator.Credentials) error {
	return rotator.MasterElsewhere(master, c, where)
}

func dbName(c rotator.Credentials) string {
	if c.DBName == "" {
		return defaultDB
	}
	return c.DBName
}

// where is host:port/dbname, for messages.
func where(c rotator.Credentials) string {
	return c.Host + ":" + strconv.Itoa(port(c)) + "/" + dbName(c)
}

// port is c's port, or PostgreSQL's default.
func port(c rotator.Credentials) int {
	if c.Port == 0 {
		return defaultPort
	}
	return c.Port
}

// sslMode is c's sslmode, or the Rotator's default.
func (r *Rotator) sslMode(c rotator.Credentials) string {
	if c.SSLMode == "" {
		return r.opts.SSLMode
	}
	return c.SSLMode
}

func sameServer(a, b rotator.Credentials) bool { return rotator.SameServer(a, b, defaultPort) }

func ident(name string) string { return pgx.Identifier{name}.Sanitize() }

// literal quotes s as a string literal, whatever
// standard_conforming_strings is: with a backslash, as an escape string.
func literal(s string) string {
	s = strings.ReplaceAll(s, "'", "''")
	if strings.Contains(s, `\`) {
		return `E'` + strings.ReplaceAll(s, `\`, `\\`) + `'`
	}
	return "'" + s + "'"
}

// kvQuote quotes a value for a keyword/value connection string.
func kvQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
