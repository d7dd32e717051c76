package postgres_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rotor-secrets/rotor/internal/dbtest"
	"github.com/rotor-secrets/rotor/internal/rotation/postgres"
	"github.com/rotor-secrets/rotor/internal/rotation/rotator"
	"github.com/rotor-secrets/rotor/internal/rotation/rotatortest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// token and seq make role names unique on a shared server, across tests,
// -count and benchmarks.
var (
	token = strings.ToLower(rand.Text()[:4])
	seq   atomic.Int64
)

// unique returns prefix followed by a name part no other call returns.
func unique(prefix string) string { return fmt.Sprintf("%s%s%d", prefix, token, seq.Add(1)) }

// env is a server prepared for rotation tests: a database in which every
// login gets a schema of its own, and a master that is not a superuser but
// has CREATEROLE, as on RDS.
type env struct {
	pg     *dbtest.Postgres
	db     string
	master rotator.Credentials
}

func newEnv(t testing.TB, pg *dbtest.Postgres) *env {
	t.Helper()
	e := &env{pg: pg, db: pg.CreateDatabase(t, "rot")}
	pw := rand.Text()
	name := pg.CreateUser(t, "master", pw)
	e.exec(t, "", "ALTER ROLE "+ident(name)+" CREATEROLE")
	e.master = e.creds(name, pw)
	e.master.DBName = ""
	return e
}

func (e *env) creds(user, pw string) rotator.Credentials {
	return rotator.Credentials{Engine: "postgres", Host: e.pg.Host, Port: e.pg.Port, Username: user,
		Password: pw, DBName: e.db, SSLMode: "disable"}
}

func (e *env) exec(t testing.TB, db, sql string, args ...any) {
	t.Helper()
	if db == "" {
		db = "postgres"
	}
	if err := e.pg.ExecIn(context.Background(), db, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// newLogin creates a login role named name with a schema of the same name
// in the test database (so "$user" in search_path finds it).
func (e *env) newLogin(t testing.TB, name string) rotator.Credentials {
	t.Helper()
	pw := rand.Text()
	e.exec(t, "", "CREATE ROLE "+ident(name)+" LOGIN PASSWORD "+literal(pw))
	e.exec(t, e.db, "CREATE SCHEMA "+ident(name)+" AUTHORIZATION "+ident(name))
	return e.creds(name, pw)
}

// open logs in with c, independently of the rotator.
func (e *env) open(ctx context.Context, c rotator.Credentials) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(e.pg.DSN(c.Username, "", c.DBName))
	if err != nil {
		return nil, err
	}
	cfg.Password = c.Password
	return pgx.ConnectConfig(ctx, cfg)
}

func (e *env) mustOpen(t testing.TB, c rotator.Credentials) *pgx.Conn {
	t.Helper()
	conn, err := e.open(t.Context(), c)
	if err != nil {
		t.Fatalf("log in as %q: %v", c.Username, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func (e *env) harness(r *postgres.Rotator) rotatortest.Harness {
	return rotatortest.Harness{
		Rotator:    r,
		Strategies: []rotator.Strategy{rotator.SingleUser, rotator.AlternatingUsers},
		Master:     e.master,
		NewLogin:   func(t *testing.T, name string) rotator.Credentials { return e.newLogin(t, name) },
		CanLogin: func(ctx context.Context, c rotator.Credentials) error {
			return e.pg.CanLogin(ctx, c.Username, c.Password, c.DBName)
		},
		Grant: func(t *testing.T, user string) func(context.Context, rotator.Credentials) error {
			table := fmt.Sprintf("public.granted_%d", seq.Add(1))
			e.exec(t, e.db, "CREATE TABLE "+table+" (x int)")
			e.exec(t, e.db, "GRANT SELECT ON "+table+" TO "+ident(user))
			return func(ctx context.Context, c rotator.Credentials) error {
				conn, err := e.open(ctx, c)
				if err != nil {
					return err
				}
				defer conn.Close(context.Background())
				_, err = conn.Exec(ctx, "SELECT count(*) FROM "+table)
				return err
			}
		},
		CheckInterchangeable: e.checkInterchangeable,
		// Rotor's PostgreSQL rotator takes every printable character,
		// those AWS excludes by default (:/@"'\) included.
		PasswordExclude: "",
	}
}

// checkInterchangeable proves that a table created by either user of a pair
// belongs to the base role and is usable, down to DROP, by the other.
func (e *env) checkInterchangeable(t *testing.T, a, b rotator.Credentials) {
	t.Helper()
	base := strings.TrimSuffix(a.Username, rotator.CloneSuffix)
	if b.Username != base {
		base = strings.TrimSuffix(b.Username, rotator.CloneSuffix)
	}
	ca, cb := e.mustOpen(t, a), e.mustOpen(t, b)
	ctx := t.Context()
	for _, order := range [][2]*pgx.Conn{{ca, cb}, {cb, ca}} {
		creator, user := order[0], order[1]
		table := fmt.Sprintf("t%d", seq.Add(1))
		for _, step := range []struct {
			conn *pgx.Conn
			sql  string
		}{
			{creator, "CREATE TABLE " + table + " (x int)"},
			{creator, "INSERT INTO " + table + " VALUES (1)"},
			{user, "INSERT INTO " + table + " VALUES (2)"},
			{user, "UPDATE " + table + " SET x = x + 1"},
			{user, "CREATE INDEX ON " + table + " (x)"},
		} {
			if _, err := step.conn.Exec(ctx, step.sql); err != nil {
				t.Fatalf("%s as %s: %v", step.sql, step.conn.Config().User, err)
			}
		}
		var owner string
		if err := user.QueryRow(ctx, "SELECT tableowner FROM pg_tables WHERE tablename = $1", table).Scan(&owner); err != nil {
			t.Fatal(err)
		}
		if owner != base {
			t.Errorf("table %s created as %s is owned by %q, want the base role %q", table, creator.Config().User, owner, base)
		}
		if _, err := user.Exec(ctx, "DROP TABLE "+table); err != nil {
			t.Fatalf("DROP TABLE %s as %s: %v", table, user.Config().User, err)
		}
	}
}

func TestConformance(t *testing.T) {
	e := newEnv(t, dbtest.SharedPostgres(t))
	rotatortest.Run(t, e.harness(postgres.New(postgres.Options{SSLMode: "disable"})))
}

// A superuser master may read pg_authid: Set then proves passwords against
// the stored verifiers instead of logging in, and must keep every promise.
func TestConformanceSuperuserMaster(t *testing.T) {
	e := newEnv(t, dbtest.SharedPostgres(t))
	e.master = e.superuser()
	r := postgres.New(postgres.Options{SSLMode: "disable"})
	t.Cleanup(func() { r.Close() })
	rotatortest.Run(t, e.harness(r))
}

// superuser are the server's superuser credentials, without a database.
func (e *env) superuser() rotator.Credentials {
	c := e.creds(e.pg.SuperUser, e.pg.SuperPassword)
	c.DBName = ""
	return c
}

// The alternate runs as the base role but logs in as itself; the base role
// itself is untouched; per-role settings follow the base role.
func TestAlternateActsAsBase(t *testing.T) {
	e := newEnv(t, dbtest.SharedPostgres(t))
	r := postgres.New(postgres.Options{SSLMode: "disable"})
	base := e.newLogin(t, unique("Base"))
	e.exec(t, "", "ALTER ROLE "+ident(base.Username)+` SET search_path = "$user", public, "Odd ""s"""`)
	e.exec(t, "", "ALTER ROLE "+ident(base.Username)+" SET statement_timeout = '42s'")
	e.exec(t, "", "ALTER ROLE "+ident(base.Username)+" IN DATABASE "+ident(e.db)+" SET work_mem = '3MB'")

	clone := rotate(t, r, e, base, nil)
	type session struct{ sessionUser, currentUser, searchPath, timeout, workMem string }
	show := func(c rotator.Credentials) session {
		var s session
		err := e.mustOpen(t, c).QueryRow(t.Context(), `SELECT session_user, current_user,
			current_setting('search_path'), current_setting('statement_timeout'), current_setting('work_mem')`).
			Scan(&s.sessionUser, &s.currentUser, &s.searchPath, &s.timeout, &s.workMem)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	wantPath := `"$user", public, "Odd ""s"""`
	if got, want := show(clone), (session{clone.Username, base.Username, wantPath, "42s", "3MB"}); got != want {
		t.Errorf("clone session = %+v, want %+v", got, want)
	}
	if got, want := show(base), (session{base.Username, base.Username, wantPath, "42s", "3MB"}); got != want {
		t.Errorf("base session = %+v, want %+v", got, want)
	}
	var baseConfig []string
	if err := e.mustOpen(t, e.master).QueryRow(t.Context(), "SELECT rolconfig FROM pg_roles WHERE rolname = $1", base.Username).Scan(&baseConfig); err != nil {
		t.Fatal(err)
	}
	for _, kv := range baseConfig {
		if strings.HasPrefix(kv, "role=") {
			t.Errorf("the base role got a role setting: %q", baseConfig)
		}
	}

	// A setting changed on the base role, and one dropped, reach the clone
	// at the next rotation; so does a role setting an operator removed.
	e.exec(t, "", "ALTER ROLE "+ident(base.Username)+" SET statement_timeout = '7s'")
	e.exec(t, "", "ALTER ROLE "+ident(base.Username)+" IN DATABASE "+ident(e.db)+" RESET work_mem")
	e.exec(t, "", "ALTER ROLE "+ident(clone.Username)+" RESET role")
	base2 := rotate(t, r, e, clone, &base)
	if got, want := show(clone), (session{clone.Username, base.Username, wantPath, "7s", "4MB"}); got != want {
		t.Errorf("clone session after the re-sync = %+v, want %+v", got, want)
	}
	if got, want := show(base2), (session{base.Username, base.Username, wantPath, "7s", "4MB"}); got != want {
		t.Errorf("base session after the second rotation = %+v, want %+v", got, want)
	}

	// The clone is created once: the third rotation reuses it.
	oid := func() (oid uint32) {
		err := e.mustOpen(t, e.master).QueryRow(t.Context(), "SELECT oid FROM pg_roles WHERE rolname = $1", clone.Username).Scan(&oid)
		if err != nil {
			t.Fatal(err)
		}
		return oid
	}
	before := oid()
	rotate(t, r, e, base2, &clone)
	if after := oid(); after != before {
		t.Errorf("the clone was re-created: oid %d, then %d", before, after)
	}
}

// A clone made by AWS's template (its own password, membership, no role
// setting, owning a table) is adopted: from the next rotation it acts as
// the base role.
func TestAdoptsExistingClone(t *testing.T) {
	e := newEnv(t, dbtest.SharedPostgres(t))
	r := postgres.New(postgres.Options{SSLMode: "disable"})
	base := e.newLogin(t, unique("aws"))
	clone := e.creds(base.Username+rotator.CloneSuffix, rand.Text())
	e.exec(t, "", "CREATE ROLE "+ident(clone.Username)+" LOGIN PASSWORD "+literal(clone.Password))
	e.exec(t, "", "GRANT "+ident(base.Username)+" TO "+ident(clone.Username))

	// The clone is current: rotation goes back to the base role.
	next := rotate(t, r, e, clone, nil)
	var user string
	if err := e.mustOpen(t, clone).QueryRow(t.Context(), "SELECT current_user").Scan(&user); err != nil {
		t.Fatal(err)
	}
	if user != base.Username {
		t.Errorf("the adopted clone runs as %q, want %q", user, base.Username)
	}
	e.checkInterchangeable(t, next, clone)
}

// rotate runs one alternating rotation from cur and returns the pending
// credentials.
func rotate(t *testing.T, r *postgres.Rotator, e *env, cur rotator.Credentials, prev *rotator.Credentials) rotator.Credentials {
	t.Helper()
	alt, err := rotator.AlternateUser(cur.Username, 63)
	if err != nil {
		t.Fatal(err)
	}
	pending := cur
	pending.Username, pending.Password = alt, rand.Text()
	req := rotator.SetRequest{Strategy: rotator.AlternatingUsers, Pending: pending, Current: cur, Previous: prev, Master: &e.master}
	if err := r.Set(t.Context(), req); err != nil {
		t.Fatalf("Set %s -> %s: %v", cur.Username, alt, err)
	}
	if err := r.Test(t.Context(), rotator.TestRequest{Credentials: pending}); err != nil {
		t.Fatalf("Test %s: %v", alt, err)
	}
	return pending
}

// When the user logs in but may not change its own password, single-user
// Set falls back to Master; without Master it fails.
func TestSingleUserFallsBackToMaster(t *testing.T) {
	e := newEnv(t, dbtest.SharedPostgres(t))
	r := postgres.New(postgres.Options{SSLMode: "disable"})
	cur := e.newLogin(t, unique("ro"))
	// Every transaction of the role is read-only, ALTER ROLE included.
	e.exec(t, "", "ALTER ROLE "+ident(cur.Username)+" SET default_transaction_read_only = on")
	pending := cur
	pending.Password = rand.Text()
	req := rotator.SetRequest{Strategy: rotator.SingleUser, Pending: pending, Current: cur}
	err := r.Set(t.Context(), req)
	if err == nil {
		t.Fatal("Set without master succeeded; the test's premise (a role that cannot change its password) is wrong")
	}
	t.Logf("without master: %v", err)
	req.Master = &e.master
	if err := r.Set(t.Context(), req); err != nil {
		t.Fatalf("Set with master: %v", err)
	}
	if err := r.Test(t.Context(), rotator.TestRequest{Credentials: pending}); err != nil {
		t.Fatalf("Test: %v", err)
	}
}

// With log_statement = all, the server log records every statement Rotor
// sends, and no password.
func TestPasswordsNeverReachTheServerLog(t *testing.T) {
	pg := dbtest.StartPostgres(t)
	ctx := t.Context()
	// The fixture's users are created before logging starts: their
	// cleartext CREATE ROLE statements are the test's, not Rotor's.
	e := newEnv(t, pg)
	single := e.newLogin(t, unique("single"))
	cur := e.newLogin(t, unique("alt"))
	for _, sql := range []string{
		"ALTER SYSTEM SET log_statement = 'all'",
		"ALTER SYSTEM SET log_min_error_statement = 'debug5'",
		"ALTER SYSTEM SET log_connections = on",
		"SELECT pg_reload_conf()",
	} {
		if err := pg.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	// The postmaster rereads its configuration asynchronously.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var setting string
		if err := e.mustOpen(t, e.master).QueryRow(ctx, "SHOW log_statement").Scan(&setting); err != nil {
			t.Fatal(err)
		}
		if setting == "all" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("log_statement is still %q", setting)
		}
	}
	r := postgres.New(postgres.Options{SSLMode: "disable"})
	var passwords []string

	for range 2 {
		pending := single
		pending.Password = rand.Text() + "'\"\\;$"
		passwords = append(passwords, single.Password, pending.Password)
		if err := r.Set(ctx, rotator.SetRequest{Strategy: rotator.SingleUser, Pending: pending, Current: single}); err != nil {
			t.Fatal(err)
		}
		single = pending
	}
	// A failing Set too: its statements and errors are logged as well.
	wrong := single
	wrong.Password = rand.Text()
	pending := single
	pending.Password = rand.Text()
	passwords = append(passwords, wrong.Password, pending.Password)
	if err := r.Set(ctx, rotator.SetRequest{Strategy: rotator.SingleUser, Pending: pending, Current: wrong}); err == nil {
		t.Fatal("Set with a wrong password succeeded")
	}

	passwords = append(passwords, cur.Password, e.master.Password)
	var prev *rotator.Credentials
	for range 3 {
		next := rotate(t, r, e, cur, prev)
		passwords = append(passwords, next.Password)
		prev, cur = &cur, next
	}

	log, err := os.ReadFile(pg.LogPath())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "ALTER ROLE") || !strings.Contains(string(log), "SCRAM-SHA-256$4096:") {
		t.Fatalf("the server log does not show Rotor's ALTER ROLE statements; is log_statement on?\n%s", log)
	}
	for _, pw := range passwords {
		if strings.Contains(string(log), pw) {
			t.Errorf("the server log contains a password")
		}
	}
}

// No environment variable supplies a password or a server.
func TestIgnoresLibpqEnvironment(t *testing.T) {
	e := newEnv(t, dbtest.SharedPostgres(t))
	c := e.newLogin(t, unique("env"))
	t.Setenv("PGPASSWORD", c.Password)
	t.Setenv("PGHOST", "192.0.2.1")
	t.Setenv("PGOPTIONS", "-c statement_timeout=1")
	r := postgres.New(postgres.Options{SSLMode: "disable"})
	wrong := c
	wrong.Password = "not-the-password"
	if err := r.Test(t.Context(), rotator.TestRequest{Credentials: wrong}); rotator.KindOf(err) != rotator.KindAuth {
		t.Errorf("Test with a wrong password and PGPASSWORD set = %v, want KindAuth", err)
	}
	if err := r.Test(t.Context(), rotator.TestRequest{Credentials: c}); err != nil {
		t.Errorf("Test: %v", err)
	}
}

func TestInvalidRequests(t *testing.T) {
	r := postgres.New(postgres.Options{SSLMode: "disable"})
	good := rotator.Credentials{Engine: "postgres", Host: "127.0.0.1", Port: 1, Username: "u", Password: "pw"}
	with := func(f func(*rotator.Credentials)) rotator.Credentials { c := good; f(&c); return c }
	for _, tc := range []struct {
		name string
		req  rotator.SetRequest
	}{
		{"non-ASCII pending password", rotator.SetRequest{Strategy: rotator.SingleUser, Current: good,
			Pending: with(func(c *rotator.Credentials) { c.Password = "caf\u00e9" })}},
		{"empty pending password", rotator.SetRequest{Strategy: rotator.SingleUser, Current: good,
			Pending: with(func(c *rotator.Credentials) { c.Password = "" })}},
		{"unknown strategy", rotator.SetRequest{Strategy: 9, Current: good, Pending: good}},
		{"other engine", rotator.SetRequest{Strategy: rotator.SingleUser, Current: with(func(c *rotator.Credentials) { c.Engine = "mysql" }),
			Pending: with(func(c *rotator.Credentials) { c.Engine = "mysql" })}},
		{"bad sslmode", rotator.SetRequest{Strategy: rotator.SingleUser, Current: with(func(c *rotator.Credentials) { c.SSLMode = "sometimes" }),
			Pending: with(func(c *rotator.Credentials) { c.SSLMode = "sometimes" })}},
		{"several hosts", rotator.SetRequest{Strategy: rotator.SingleUser, Current: with(func(c *rotator.Credentials) { c.Host = "a,b" }),
			Pending: with(func(c *rotator.Credentials) { c.Host = "a,b" })}},
		{"pending on another server", rotator.SetRequest{Strategy: rotator.SingleUser, Current: good,
			Pending: with(func(c *rotator.Credentials) { c.Host = "db2" })}},
		{"alternate name too long", rotator.SetRequest{Strategy: rotator.AlternatingUsers, Master: &good,
			Current: with(func(c *rotator.Credentials) { c.Username = strings.Repeat("x", 58) }),
			Pending: with(func(c *rotator.Credentials) { c.Username = strings.Repeat("x", 58) + "_clone" })}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := r.Set(t.Context(), tc.req)
			if k := rotator.KindOf(err); k != rotator.KindInvalid {
				t.Errorf("Set = %v (kind %v), want KindInvalid", err, k)
			}
		})
	}
}

// BenchmarkRotateAlternating measures one alternating rotation's Set and
// Test against a local server, with a CREATEROLE master (as on RDS): two
// logins (the current password proven, Test; each a SCRAM exchange) and
// the master's transaction on its pooled connection.
func BenchmarkRotateAlternating(b *testing.B) {
	e := newEnv(b, dbtest.SharedPostgres(b))
	r := postgres.New(postgres.Options{SSLMode: "disable"})
	cur := e.newLogin(b, unique("bench"))
	var prev *rotator.Credentials
	ctx := b.Context()
	for b.Loop() {
		alt, _ := rotator.AlternateUser(cur.Username, 63)
		pending := cur
		pending.Username, pending.Password = alt, rand.Text()
		if err := r.Set(ctx, rotator.SetRequest{Strategy: rotator.AlternatingUsers, Pending: pending, Current: cur, Previous: prev, Master: &e.master}); err != nil {
			b.Fatal(err)
		}
		if err := r.Test(ctx, rotator.TestRequest{Credentials: pending}); err != nil {
			b.Fatal(err)
		}
		prev, cur = &cur, pending
	}
}

// BenchmarkRotateSingleUser is the same for a single-user rotation.
func BenchmarkRotateSingleUser(b *testing.B) {
	e := newEnv(b, dbtest.SharedPostgres(b))
	r := postgres.New(postgres.Options{SSLMode: "disable"})
	cur := e.newLogin(b, unique("bench"))
	ctx := b.Context()
	for b.Loop() {
		pending := cur
		pending.Password = rand.Text()
		if err := r.Set(ctx, rotator.SetRequest{Strategy: rotator.SingleUser, Pending: pending, Current: cur}); err != nil {
			b.Fatal(err)
		}
		if err := r.Test(ctx, rotator.TestRequest{Credentials: pending}); err != nil {
			b.Fatal(err)
		}
		cur = pending
	}
}

func ident(s string) string { return pgx.Identifier{s}.Sanitize() }

func literal(s string) string {
	s = strings.ReplaceAll(s, "'", "''")
	if strings.Contains(s, `\`) {
		return "E'" + strings.ReplaceAll(s, `\`, `\\`) + "'"
	}
	return "'" + s + "'"
}

// BenchmarkTest is one login and SELECT 1: the unit the rotations above
// are made of.
func BenchmarkTest(b *testing.B) {
	e := newEnv(b, dbtest.SharedPostgres(b))
	r := postgres.New(postgres.Options{SSLMode: "disable"})
	c := e.newLogin(b, unique("bench"))
	for b.Loop() {
		if err := r.Test(b.Context(), rotator.TestRequest{Credentials: c}); err != nil {
			b.Fatal(err)
		}
	}
}

// The logins each step makes, once the master connection is pooled: Test
// is a fresh login of its own, and Set logs in only to prove a password
// that the master cannot check against pg_authid.
func TestLoginsPerRotation(t *testing.T) {
	e := newEnv(t, dbtest.SharedPostgres(t))
	su := e.superuser()
	for _, tc := range []struct {
		name     string
		strategy rotator.Strategy
		master   *rotator.Credentials
		wantSet  int64
	}{
		{"alternating, superuser master", rotator.AlternatingUsers, &su, 0},
		{"alternating, CREATEROLE master: the current password is proven by a login", rotator.AlternatingUsers, &e.master, 1},
		{"single user, superuser master", rotator.SingleUser, &su, 0},
		{"single user, CREATEROLE master: the user changes its own password", rotator.SingleUser, &e.master, 1},
		{"single user, no master", rotator.SingleUser, nil, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := postgres.New(postgres.Options{SSLMode: "disable"})
			defer r.Close()
			cur := e.newLogin(t, unique("lg"))
			var prev *rotator.Credentials
			for i := range 4 {
				pending := cur
				pending.Password = rand.Text()
				if tc.strategy == rotator.AlternatingUsers {
					pending.Username, _ = rotator.AlternateUser(cur.Username, 63)
				}
				before := postgres.Logins(r)
				req := rotator.SetRequest{Strategy: tc.strategy, Pending: pending, Current: cur, Previous: prev, Master: tc.master}
				if err := r.Set(t.Context(), req); err != nil {
					t.Fatalf("Set: %v", err)
				}
				set := postgres.Logins(r) - before
				if err := r.Test(t.Context(), rotator.TestRequest{Credentials: pending}); err != nil {
					t.Fatalf("Test: %v", err)
				}
				test := postgres.Logins(r) - before - set
				want := tc.wantSet
				if i == 0 && tc.master != nil {
					want++ // the master's first login
				}
				if set != want || test != 1 {
					t.Errorf("rotation %d: Set logged in %d times, Test %d; want %d and 1", i+1, set, test, want)
				}
				prev, cur = &cur, pending
			}
			if s := postgres.PoolStats(r); tc.master != nil && tc.wantSet == 0 && s.Reuses != 3 {
				t.Errorf("pool stats %+v, want 3 reuses", s)
			}
		})
	}
}

// masterSessions returns the backend pids of rotor's sessions of user.
func (e *env) masterSessions(t *testing.T, user string) []int32 {
	t.Helper()
	rows, err := e.mustOpen(t, e.superuser()).Query(t.Context(),
		"SELECT pid FROM pg_stat_activity WHERE usename = $1 AND application_name = 'rotor' ORDER BY pid", user)
	if err != nil {
		t.Fatal(err)
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		t.Fatal(err)
	}
	return pids
}

// waitSessions waits until user has want rotor sessions: a backend ends
// shortly after its client closes the connection.
func (e *env) waitSessions(t *testing.T, user string, want int) []int32 {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids := e.masterSessions(t, user)
		if len(pids) == want {
			return pids
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has rotor sessions %v, want %d", user, pids, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The master's connection is kept between calls, replaced when it broke
// or when the master's password changed, dropped when a rotation changes
// the master's own password, and closed by Close.
func TestMasterConnectionPool(t *testing.T) {
	e := newEnv(t, dbtest.SharedPostgres(t))
	r := postgres.New(postgres.Options{SSLMode: "disable"})
	defer r.Close()
	cur := e.newLogin(t, unique("pool"))
	var prev *rotator.Credentials
	rotateOnce := func() {
		t.Helper()
		pending := cur
		pending.Username, _ = rotator.AlternateUser(cur.Username, 63)
		pending.Password = rand.Text()
		req := rotator.SetRequest{Strategy: rotator.AlternatingUsers, Pending: pending, Current: cur, Previous: prev, Master: &e.master}
		if err := r.Set(t.Context(), req); err != nil {
			t.Fatalf("Set: %v", err)
		}
		prev, cur = &cur, pending
	}
	master := e.master.Username

	rotateOnce()
	first := e.waitSessions(t, master, 1)
	rotateOnce()
	if got := e.waitSessions(t, master, 1); got[0] != first[0] {
		t.Errorf("the master's session changed from %d to %d without reason", first[0], got[0])
	}

	t.Run("a broken connection is replaced", func(t *testing.T) {
		e.exec(t, "", "SELECT pg_terminate_backend($1)", first[0])
		e.waitSessions(t, master, 0)
		rotateOnce()
		if got := e.waitSessions(t, master, 1); got[0] == first[0] {
			t.Error("the terminated session is still in use")
		}
	})

	t.Run("a new master password closes the old connection", func(t *testing.T) {
		old := e.waitSessions(t, master, 1)
		e.master.Password = rand.Text()
		e.exec(t, "", "ALTER ROLE "+ident(master)+" PASSWORD "+literal(e.master.Password))
		rotateOnce()
		if got := e.waitSessions(t, master, 1); got[0] == old[0] {
			t.Error("the connection opened with the old password is still in use")
		}
	})

	t.Run("rotating the master's own password drops its connection", func(t *testing.T) {
		e.waitSessions(t, master, 1)
		pending := e.master
		pending.Password = rand.Text()
		req := rotator.SetRequest{Strategy: rotator.SingleUser, Pending: pending, Current: e.master, Master: &e.master}
		if err := r.Set(t.Context(), req); err != nil {
			t.Fatalf("Set: %v", err)
		}
		e.master = pending
		e.waitSessions(t, master, 0)
		rotateOnce()
		e.waitSessions(t, master, 1)
	})

	t.Run("Close closes it", func(t *testing.T) {
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		e.waitSessions(t, master, 0)
		// The Rotator still works, without keeping a connection.
		rotateOnce()
		e.waitSessions(t, master, 0)
	})
}

// sslmode=prefer against a server without TLS logs in on one connection
// (see preferDial) and works.
func TestPreferWithoutServerTLS(t *testing.T) {
	e := newEnv(t, dbtest.SharedPostgres(t))
	r := postgres.New(postgres.Options{})
	defer r.Close()
	cur := e.newLogin(t, unique("prefer"))
	cur.SSLMode = ""
	if err := r.Test(t.Context(), rotator.TestRequest{Credentials: cur}); err != nil {
		t.Fatal(err)
	}
	e.master.SSLMode = ""
	clone := rotate(t, r, e, cur, nil)
	if err := r.Test(t.Context(), rotator.TestRequest{Credentials: clone}); err != nil {
		t.Fatal(err)
	}
}
