package mysql_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	driver "github.com/go-sql-driver/mysql"

	"github.com/rotor-secrets/rotor/internal/dbtest"
	"github.com/rotor-secrets/rotor/internal/rotation/mysql"
	"github.com/rotor-secrets/rotor/internal/rotation/rotator"
	"github.com/rotor-secrets/rotor/internal/rotation/rotatortest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

var seq atomic.Int64

// password returns a fresh password that also satisfies MariaDB's
// simple_password_check (upper, lower, digit, punctuation) and has
// characters that need escaping in SQL.
func password() string {
	return "Pw1!" + rand.Text() + "x'\"\\%_;"
}

// core is the random middle of a password: no character needs escaping,
// so it appears verbatim in any statement or log that holds the password,
// escaped or not.
func core(pw string) string { return pw[4:30] }

func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

func account(user, host string) string { return quoteIdent(user) + "@" + quoteIdent(host) }

func creds(m *dbtest.MariaDB, user, pw, db string) rotator.Credentials {
	return rotator.Credentials{Engine: "mariadb", Host: m.Host, Port: m.Port, Username: user, Password: pw, DBName: db, SSLMode: "disable"}
}

func master(m *dbtest.MariaDB) rotator.Credentials {
	return creds(m, m.SuperUser, m.SuperPassword, "")
}

func exec(t testing.TB, m *dbtest.MariaDB, query string, args ...any) {
	t.Helper()
	if err := m.Exec(t.Context(), query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// open returns a database/sql handle logged in as user.
func open(t testing.TB, m *dbtest.MariaDB, user, pw, db string) *sql.DB {
	t.Helper()
	d, err := sql.Open("mysql", m.DSN(user, pw, db))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func superDB(t testing.TB, m *dbtest.MariaDB) *sql.DB {
	return open(t, m, m.SuperUser, m.SuperPassword, "")
}

func harness(t *testing.T, m *dbtest.MariaDB, r *mysql.Rotator) rotatortest.Harness {
	db := m.CreateDatabase(t, "conf")
	grantDB := m.CreateDatabase(t, "confgrant")
	return rotatortest.Harness{
		Rotator:    r,
		Strategies: []rotator.Strategy{rotator.SingleUser, rotator.AlternatingUsers},
		Master:     master(m),
		NewLogin: func(t *testing.T, name string) rotator.Credentials {
			pw := password()
			exec(t, m, "CREATE USER ?@'%' IDENTIFIED BY ?", name, pw)
			exec(t, m, "GRANT ALL PRIVILEGES ON "+quoteIdent(db)+".* TO ?@'%'", name)
			return creds(m, name, pw, db)
		},
		CanLogin: func(ctx context.Context, c rotator.Credentials) error {
			return m.CanLogin(ctx, c.Username, c.Password, c.DBName)
		},
		Grant: func(t *testing.T, username string) func(context.Context, rotator.Credentials) error {
			table := fmt.Sprintf("t%d", seq.Add(1))
			exec(t, m, "CREATE TABLE "+quoteIdent(grantDB)+"."+quoteIdent(table)+" (a int)")
			exec(t, m, "GRANT SELECT ON "+quoteIdent(grantDB)+"."+quoteIdent(table)+" TO ?@'%'", username)
			return func(ctx context.Context, c rotator.Credentials) error {
				d, err := sql.Open("mysql", m.DSN(c.Username, c.Password, ""))
				if err != nil {
					return err
				}
				defer d.Close()
				var n int
				return d.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+quoteIdent(grantDB)+"."+quoteIdent(table)).Scan(&n)
			}
		},
		CheckInterchangeable: func(t *testing.T, a, b rotator.Credentials) {
			// MySQL has no object owners, but views and routines have a
			// definer: a view b defines must work for a, and b may change
			// a's tables.
			ctx := t.Context()
			da, dbb := open(t, m, a.Username, a.Password, a.DBName), open(t, m, b.Username, b.Password, b.DBName)
			n := seq.Add(1)
			table, view := fmt.Sprintf("ia%d", n), fmt.Sprintf("ib%d", n)
			for _, step := range []struct {
				d *sql.DB
				q string
			}{
				{da, "CREATE TABLE " + table + " (a int)"},
				{dbb, "INSERT INTO " + table + " VALUES (1)"},
				{dbb, "CREATE SQL SECURITY DEFINER VIEW " + view + " AS SELECT a FROM " + table},
				{da, "SELECT COUNT(*) FROM " + view},
				{da, "DROP VIEW " + view},
				{dbb, "DROP TABLE " + table},
			} {
				if _, err := step.d.ExecContext(ctx, step.q); err != nil {
					t.Fatalf("%s: %v", step.q, err)
				}
			}
		},
		PasswordExclude: "", // every printable character, stricter than the generator's `/@"'\`
	}
}

func TestConformance(t *testing.T) {
	m := dbtest.SharedMariaDB(t)
	rotatortest.Run(t, harness(t, m, mysql.New(mysql.Options{})))
}

// rotate runs one alternating rotation from cur, as the engine would, and
// returns the new current credentials.
func rotate(t *testing.T, r *mysql.Rotator, m *dbtest.MariaDB, cur rotator.Credentials) rotator.Credentials {
	t.Helper()
	alt, err := rotator.AlternateUser(cur.Username, mysql.MaxUserLen)
	if err != nil {
		t.Fatal(err)
	}
	pending := cur
	pending.Username, pending.Password = alt, password()
	ms := master(m)
	if err := r.Set(t.Context(), rotator.SetRequest{Strategy: rotator.AlternatingUsers, Pending: pending, Current: cur, Master: &ms}); err != nil {
		t.Fatalf("Set %s -> %s: %v", cur.Username, pending.Username, err)
	}
	if err := r.Test(t.Context(), rotator.TestRequest{Credentials: pending}); err != nil {
		t.Fatalf("Test %s: %v", pending.Username, err)
	}
	return pending
}

// hosts returns the host parts of user in mysql.user, sorted.
func hosts(t *testing.T, m *dbtest.MariaDB, user string) []string {
	t.Helper()
	rows, err := superDB(t, m).QueryContext(t.Context(), "SELECT Host FROM mysql.user WHERE User = ? ORDER BY Host", user)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			t.Fatal(err)
		}
		out = append(out, h)
	}
	return out
}

// serverHash is the server's own mysql_native_password hash of pw.
func serverHash(t *testing.T, m *dbtest.MariaDB, pw string) string {
	t.Helper()
	var h string
	if err := superDB(t, m).QueryRowContext(t.Context(), "SELECT PASSWORD(?)", pw).Scan(&h); err != nil {
		t.Fatal(err)
	}
	return h
}

func authString(t *testing.T, m *dbtest.MariaDB, user, host string) string {
	t.Helper()
	var h string
	if err := superDB(t, m).QueryRowContext(t.Context(), "SELECT authentication_string FROM mysql.user WHERE User = ? AND Host = ?", user, host).Scan(&h); err != nil {
		t.Fatalf("%s: %v", account(user, host), err)
	}
	return h
}

func TestAlternatingKeepsHostParts(t *testing.T) {
	m := dbtest.SharedMariaDB(t)
	r := mysql.New(mysql.Options{})

	t.Run("a user at 127.0.0.1 gets a clone at 127.0.0.1", func(t *testing.T) {
		t.Parallel()
		pw := password()
		user := m.CreateUserAt(t, "hp", "127.0.0.1", pw)
		cur := rotate(t, r, m, creds(m, user, pw, ""))
		if got, want := hosts(t, m, cur.Username), []string{"127.0.0.1"}; !slices.Equal(got, want) {
			t.Fatalf("clone hosts = %q, want %q", got, want)
		}
		rotate(t, r, m, cur)
	})

	t.Run("a user at %, localhost and 10.% gets a clone at each", func(t *testing.T) {
		t.Parallel()
		pw := password()
		user := m.CreateUser(t, "hm", pw)
		for _, h := range []string{"localhost", "10.%"} {
			exec(t, m, "CREATE USER ?@? IDENTIFIED BY ?", user, h, pw)
		}
		exec(t, m, "GRANT SELECT ON mysql.db TO ?@'10.%'", user) // different privileges per host
		cur := rotate(t, r, m, creds(m, user, pw, ""))
		want := []string{"%", "10.%", "localhost"}
		if got := hosts(t, m, cur.Username); !slices.Equal(got, want) {
			t.Fatalf("clone hosts = %q, want %q", got, want)
		}
		// Every host entry has the pending password, hashed as the server
		// would, although only % is reachable over TCP here.
		for _, h := range want {
			if got, want := authString(t, m, cur.Username, h), serverHash(t, m, cur.Password); got != want {
				t.Errorf("%s has hash %s, want %s", account(cur.Username, h), got, want)
			}
			compareGrants(t, m, user, cur.Username, h)
		}
	})

	t.Run("a user only at localhost is rotated over the master's TCP connection", func(t *testing.T) {
		t.Parallel()
		pw := password()
		user := m.CreateUserAt(t, "hl", "localhost", pw)
		alt := user + rotator.CloneSuffix
		ms := master(m)
		pending := creds(m, alt, password(), "")
		// The user cannot log in over TCP, but the master proves the
		// current password against its hash.
		if err := r.Set(t.Context(), rotator.SetRequest{Strategy: rotator.AlternatingUsers, Pending: pending, Current: creds(m, user, pw, ""), Master: &ms}); err != nil {
			t.Fatalf("Set: %v", err)
		}
		if got, want := hosts(t, m, alt), []string{"localhost"}; !slices.Equal(got, want) {
			t.Fatalf("clone hosts = %q, want %q", got, want)
		}
		if got, want := authString(t, m, alt, "localhost"), serverHash(t, m, pending.Password); got != want {
			t.Errorf("clone hash %s, want %s", got, want)
		}
	})

	t.Run("a clone at a host the user lacks is refused", func(t *testing.T) {
		t.Parallel()
		pw := password()
		user := m.CreateUser(t, "hs", pw)
		alt := user + rotator.CloneSuffix
		stalePW := password()
		exec(t, m, "CREATE USER ?@'192.168.%' IDENTIFIED BY ?", alt, stalePW)
		ms := master(m)
		pending := creds(m, alt, password(), "")
		err := r.Set(t.Context(), rotator.SetRequest{Strategy: rotator.AlternatingUsers, Pending: pending, Current: creds(m, user, pw, ""), Master: &ms})
		if k := rotator.KindOf(err); err == nil || k != rotator.KindTarget || !strings.Contains(err.Error(), "192.168.%") {
			t.Fatalf("Set = %v, want KindTarget naming the stale host", err)
		}
		if got, want := hosts(t, m, alt), []string{"192.168.%"}; !slices.Equal(got, want) {
			t.Fatalf("clone hosts = %q, want %q (unchanged)", got, want)
		}
	})

	t.Run("host entries with different passwords are refused", func(t *testing.T) {
		t.Parallel()
		pw := password()
		user := m.CreateUser(t, "hd", pw)
		exec(t, m, "CREATE USER ?@'10.%' IDENTIFIED BY ?", user, password())
		ms := master(m)
		pending := creds(m, user+rotator.CloneSuffix, password(), "")
		err := r.Set(t.Context(), rotator.SetRequest{Strategy: rotator.AlternatingUsers, Pending: pending, Current: creds(m, user, pw, ""), Master: &ms})
		if k := rotator.KindOf(err); k != rotator.KindAuth {
			t.Fatalf("Set = %v, want KindAuth", err)
		}
		if got := hosts(t, m, pending.Username); len(got) != 0 {
			t.Fatalf("clone created at %q", got)
		}
	})
}

var identifiedRE = regexp.MustCompile(` IDENTIFIED (BY PASSWORD|VIA \S+ USING) '[^']*'`)

// grantsOf returns SHOW GRANTS FOR user@host with the grantee replaced by
// a placeholder and the password hash removed, sorted.
func grantsOf(t *testing.T, m *dbtest.MariaDB, user, host string) []string {
	t.Helper()
	rows, err := superDB(t, m).QueryContext(t.Context(), "SHOW GRANTS FOR "+account(user, host))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		line = identifiedRE.ReplaceAllString(line, "")
		line = strings.ReplaceAll(line, account(user, host), "GRANTEE")
		out = append(out, line)
	}
	slices.Sort(out)
	return out
}

func compareGrants(t *testing.T, m *dbtest.MariaDB, a, b, host string) {
	t.Helper()
	ga, gb := grantsOf(t, m, a, host), grantsOf(t, m, b, host)
	if !slices.Equal(ga, gb) {
		t.Fatalf("privileges differ:\n%s:\n  %s\n%s:\n  %s", account(a, host), strings.Join(ga, "\n  "), account(b, host), strings.Join(gb, "\n  "))
	}
}

// TestAlternatingResyncsGrants changes NAME's privileges between rotations
// — additions, revocations, column privileges, GRANT OPTION, roles,
// default roles, routines, global privileges, a table whose name contains
// the grantee — and checks after every rotation, in both directions, that
// NAME_clone has exactly NAME's privileges. AWS's template breaks on the
// second rotation here. A privilege granted to NAME_clone alone, while it
// is the user in use, is revoked: NAME is the source of truth.
func TestAlternatingResyncsGrants(t *testing.T) {
	m := dbtest.SharedMariaDB(t)
	r := mysql.New(mysql.Options{})
	pw := password()
	base := m.CreateUser(t, "rs", pw)
	clone := base + rotator.CloneSuffix
	db := m.CreateDatabase(t, "rs")
	db2 := m.CreateDatabase(t, "rs2")
	q := quoteIdent
	trap := fmt.Sprintf("x TO `%s`@`%%` y", clone) // a table named like a grantee
	role1, role2 := fmt.Sprintf("r1_%s", base), fmt.Sprintf("r2_%s", base)
	for _, s := range []string{
		"CREATE TABLE " + q(db) + ".t1 (a int, b int)",
		"CREATE TABLE " + q(db) + ".t2 (a int, b int)",
		"CREATE TABLE " + q(db) + "." + q(trap) + " (a int)",
		"CREATE PROCEDURE " + q(db) + ".p() SELECT 1",
		"CREATE ROLE " + q(role1),
		"CREATE ROLE " + q(role2),
		"GRANT SELECT ON " + q(db2) + ".* TO " + q(role1),
	} {
		exec(t, m, s)
	}
	on := func(obj string) string { return q(db) + "." + obj }
	ms := master(m)
	cur := creds(m, base, pw, "")

	// Statements a DBA runs on NAME ({b}) between rotations, and one on
	// NAME_clone ({c}) while it is in use.
	steps := [][]string{
		{ // before rotation 1 (to the clone)
			"GRANT SELECT ON " + on("t1") + " TO {b}",
			"GRANT SELECT (a), UPDATE (a, b) ON " + on("t2") + " TO {b}",
			"GRANT INSERT ON " + on(q(trap)) + " TO {b} WITH GRANT OPTION",
			"GRANT " + q(role1) + " TO {b}",
			"SET DEFAULT ROLE " + q(role1) + " FOR {b}",
		},
		{ // before rotation 2 (back to NAME), while the clone is in use
			"GRANT INSERT ON " + on("t1") + " TO {b} WITH GRANT OPTION",
			"GRANT EXECUTE ON PROCEDURE " + on("p") + " TO {b}",
			"REVOKE " + q(role1) + " FROM {b}",
			"GRANT " + q(role2) + " TO {b} WITH ADMIN OPTION",
			"SET DEFAULT ROLE " + q(role2) + " FOR {b}",
			"GRANT PROCESS ON *.* TO {b}",
			"GRANT DELETE ON " + on("t2") + " TO {c}", // to the clone alone: reverted
		},
		{ // before rotation 3
			"REVOKE SELECT ON " + on("t1") + " FROM {b}",
			"REVOKE UPDATE (b) ON " + on("t2") + " FROM {b}",
			"GRANT ALL PRIVILEGES ON " + q(db2) + ".* TO {b}",
			"REVOKE INSERT, GRANT OPTION ON " + on(q(trap)) + " FROM {b}",
		},
		{ // before rotation 4
			"REVOKE ALL PRIVILEGES ON " + q(db2) + ".* FROM {b}",
			"GRANT SELECT, INSERT ON " + q(db2) + ".* TO {b}",
			"REVOKE GRANT OPTION ON " + on("t1") + " FROM {b}",
			"SET DEFAULT ROLE NONE FOR {b}",
			"REVOKE " + q(role2) + " FROM {b}",
			"REVOKE PROCESS ON *.* FROM {b}",
		},
	}
	var prev rotator.Credentials
	for i, step := range steps {
		for _, s := range step {
			s = strings.ReplaceAll(s, "{b}", account(base, "%"))
			exec(t, m, strings.ReplaceAll(s, "{c}", account(clone, "%")))
		}
		prev, cur = cur, rotate(t, r, m, cur)
		compareGrants(t, m, base, clone, "%")
		t.Logf("rotation %d to %s: %d grant lines on both", i+1, cur.Username, len(grantsOf(t, m, base, "%")))
	}
	// Behaviour, not only SHOW GRANTS: SELECT on t1 was revoked in step 3
	// and INSERT granted in step 2; DELETE on t2 given to the clone alone
	// is gone.
	d := open(t, m, cur.Username, cur.Password, "")
	if _, err := d.ExecContext(t.Context(), "SELECT * FROM "+on("t1")); !isErr(err, 1142) {
		t.Errorf("SELECT on t1 = %v, want error 1142", err)
	}
	if _, err := d.ExecContext(t.Context(), "INSERT INTO "+on("t1")+" VALUES (1, 2)"); err != nil {
		t.Errorf("INSERT on t1: %v", err)
	}
	for _, c := range []rotator.Credentials{cur, prev} {
		d := open(t, m, c.Username, c.Password, "")
		if _, err := d.ExecContext(t.Context(), "DELETE FROM "+on("t2")); !isErr(err, 1142) {
			t.Errorf("DELETE on t2 as %s = %v, want error 1142", c.Username, err)
		}
	}
	// Repeating the last Set (a resumed step) changes nothing.
	before := grantsOf(t, m, cur.Username, "%")
	if err := r.Set(t.Context(), rotator.SetRequest{Strategy: rotator.AlternatingUsers, Pending: cur, Current: prev, Master: &ms}); err != nil {
		t.Fatalf("repeated Set: %v", err)
	}
	if after := grantsOf(t, m, cur.Username, "%"); !slices.Equal(before, after) {
		t.Errorf("grants changed by a repeated Set")
	}
}

func isErr(err error, number uint16) bool {
	var me *driver.MySQLError
	return errors.As(err, &me) && me.Number == number
}

type userRow struct {
	sslType, cipher, issuer, subject string
	maxUserConnections, maxUpdates   int64
	maxStatementTime                 string
}

func userRowOf(t *testing.T, m *dbtest.MariaDB, user string) userRow {
	t.Helper()
	var u userRow
	err := superDB(t, m).QueryRowContext(t.Context(),
		`SELECT ssl_type, ssl_cipher, x509_issuer, x509_subject, max_user_connections, max_updates, CAST(max_statement_time AS CHAR)
		FROM mysql.user WHERE User = ? AND Host = '%'`, user).
		Scan(&u.sslType, &u.cipher, &u.issuer, &u.subject, &u.maxUserConnections, &u.maxUpdates, &u.maxStatementTime)
	if err != nil {
		t.Fatalf("%s: %v", user, err)
	}
	return u
}

// TestAlternatingCopiesRequire: the clone has the same REQUIRE clause and
// resource limits as NAME, also after they change. The test
// server has no TLS, so the users cannot log in: the master proves the
// current password against its hash, and the test reads mysql.user.
func TestAlternatingCopiesRequire(t *testing.T) {
	m := dbtest.SharedMariaDB(t)
	r := mysql.New(mysql.Options{})
	pw := password()
	base := m.CreateUser(t, "rq", pw)
	clone := base + rotator.CloneSuffix
	ms := master(m)
	set := func(cur rotator.Credentials, pending rotator.Credentials) {
		t.Helper()
		if err := r.Set(t.Context(), rotator.SetRequest{Strategy: rotator.AlternatingUsers, Pending: pending, Current: cur, Master: &ms}); err != nil {
			t.Fatalf("Set %s -> %s: %v", cur.Username, pending.Username, err)
		}
		if a, b := userRowOf(t, m, cur.Username), userRowOf(t, m, pending.Username); a != b {
			t.Fatalf("account options differ:\n%s: %+v\n%s: %+v", cur.Username, a, pending.Username, b)
		}
	}
	cur := creds(m, base, pw, "")
	next := creds(m, clone, password(), "")

	exec(t, m, "ALTER USER ?@'%' REQUIRE SSL WITH MAX_USER_CONNECTIONS 7 MAX_STATEMENT_TIME 2.5", base)
	set(cur, next)
	if got := userRowOf(t, m, clone).sslType; got != "ANY" {
		t.Fatalf("clone ssl_type = %q, want ANY (REQUIRE SSL)", got)
	}
	// The clone cannot log in without TLS, so its password is checked
	// through its hash.
	if got, want := authString(t, m, clone, "%"), serverHash(t, m, next.Password); got != want {
		t.Fatalf("clone hash %s, want %s", got, want)
	}

	// Back to NAME, after NAME's requirement changed to specific
	// certificate fields with quotes and backslashes: the clone, in use
	// now, follows.
	subject := `/CN=it's a \ "test"`
	exec(t, m, `ALTER USER ?@'%' REQUIRE SUBJECT ? AND ISSUER ? AND CIPHER ? WITH MAX_UPDATES_PER_HOUR 3 MAX_USER_CONNECTIONS 0`,
		base, subject, `/O=Rotor/CN=CA`, "ECDHE-RSA-AES256-GCM-SHA384")
	back := creds(m, base, password(), "")
	set(next, back)
	if got := userRowOf(t, m, clone); got.sslType != "SPECIFIED" || got.subject != subject || got.maxUpdates != 3 {
		t.Fatalf("clone after rotating back: %+v", got)
	}

	// And to none again.
	exec(t, m, "ALTER USER ?@'%' REQUIRE NONE WITH MAX_UPDATES_PER_HOUR 0 MAX_STATEMENT_TIME 0", base)
	set(back, creds(m, clone, password(), ""))
	if got := userRowOf(t, m, clone).sslType; got != "" {
		t.Fatalf("clone ssl_type = %q, want none", got)
	}
}

// logRows returns everything the general and slow logs hold.
func logRows(t *testing.T, d *sql.DB) []string {
	t.Helper()
	var out []string
	for _, q := range []string{
		"SELECT CONVERT(argument USING utf8mb4) FROM mysql.general_log",
		"SELECT CONVERT(sql_text USING utf8mb4) FROM mysql.slow_log",
	} {
		rows, err := d.QueryContext(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s sql.NullString
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out = append(out, s.String)
		}
		rows.Close()
	}
	return out
}

func containsAny(rows []string, s string) bool {
	return slices.ContainsFunc(rows, func(r string) bool { return strings.Contains(r, s) })
}

// TestServerLogsHoldNoPassword rotates with the general and slow logs on
// (everything, long_query_time 0) and checks that no cleartext password
// reached them — for mysql_native_password and ed25519 accounts, single
// user and alternating — while the hashes did: proof that the log was
// recording and that only hashes were sent. It then shows the documented
// exception: with a password-validation plugin MariaDB refuses hashes, and
// the rotation still works by sending the cleartext, also under
// NO_BACKSLASH_ESCAPES.
func TestServerLogsHoldNoPassword(t *testing.T) {
	m := dbtest.StartMariaDB(t)
	r := mysql.New(mysql.Options{})
	ctx := t.Context()
	d := superDB(t, m)
	for _, s := range []string{
		"INSTALL SONAME 'auth_ed25519'",
		"SET GLOBAL log_output = 'TABLE'",
		"SET GLOBAL long_query_time = 0",
		"SET GLOBAL slow_query_log = 1",
		"SET GLOBAL general_log = 1",
	} {
		if _, err := d.ExecContext(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	db := m.CreateDatabase(t, "logs")
	var used []string // every cleartext password the rotations set
	single := func(t *testing.T, cur rotator.Credentials) rotator.Credentials {
		t.Helper()
		pending := cur
		pending.Password = password()
		used = append(used, pending.Password)
		if err := r.Set(ctx, rotator.SetRequest{Strategy: rotator.SingleUser, Pending: pending, Current: cur}); err != nil {
			t.Fatalf("single-user Set: %v", err)
		}
		if err := r.Test(ctx, rotator.TestRequest{Credentials: pending}); err != nil {
			t.Fatalf("Test: %v", err)
		}
		return pending
	}
	alternating := func(t *testing.T, cur rotator.Credentials) rotator.Credentials {
		t.Helper()
		next := rotate(t, r, m, cur)
		used = append(used, next.Password)
		return next
	}
	plugin := func(user string) string {
		var p string
		if err := d.QueryRowContext(ctx, "SELECT plugin FROM mysql.user WHERE User = ? AND Host = '%'", user).Scan(&p); err != nil {
			t.Fatal(err)
		}
		return p
	}

	// mysql_native_password
	pw := password()
	native := m.CreateUser(t, "ln", pw)
	exec(t, m, "GRANT SELECT ON "+quoteIdent(db)+".* TO ?@'%'", native)
	c := single(t, single(t, creds(m, native, pw, db)))
	c = alternating(t, alternating(t, alternating(t, c)))
	// ed25519
	pw = password()
	ed := fmt.Sprintf("le_%d", seq.Add(1))
	exec(t, m, "CREATE USER ?@'%' IDENTIFIED VIA ed25519 USING PASSWORD(?)", ed, pw)
	e := single(t, single(t, creds(m, ed, pw, "")))
	e = alternating(t, alternating(t, e))
	for _, u := range []string{ed, ed + rotator.CloneSuffix} {
		if got := plugin(u); got != "ed25519" {
			t.Errorf("%s uses plugin %q after rotation, want ed25519", u, got)
		}
	}

	rows := logRows(t, d)
	for i, pw := range used {
		if containsAny(rows, core(pw)) {
			t.Errorf("password #%d is in the server's general or slow log", i+1)
		}
	}
	for _, want := range []string{"SET PASSWORD = '*", "IDENTIFIED VIA mysql_native_password USING '*", "IDENTIFIED VIA ed25519 USING '", "SHOW GRANTS FOR"} {
		if !containsAny(rows, want) {
			t.Errorf("the log has no statement with %q: was it recording?", want)
		}
	}
	if !containsAny(rows, serverHash(t, m, c.Password)) {
		t.Errorf("the log lacks the hash of the last native password")
	}
	t.Logf("%d log rows scanned, %d passwords absent", len(rows), len(used))

	t.Run("with strict password validation the cleartext is sent", func(t *testing.T) {
		for _, s := range []string{
			"INSTALL SONAME 'simple_password_check'",
			"SET GLOBAL strict_password_validation = ON",
		} {
			if _, err := d.ExecContext(ctx, s); err != nil {
				t.Fatalf("%s: %v", s, err)
			}
		}
		for _, mode := range []string{"", "NO_BACKSLASH_ESCAPES"} {
			t.Run("sql_mode="+mode, func(t *testing.T) {
				if _, err := d.ExecContext(ctx, "SET GLOBAL sql_mode = ?", mode); err != nil {
					t.Fatal(err)
				}
				c = single(t, c)
				c = alternating(t, alternating(t, c))
				e = alternating(t, single(t, e))
				if !containsAny(logRows(t, d), core(c.Password)) {
					t.Errorf("the cleartext fallback did not reach the log: was the hash accepted after all?")
				}
			})
		}
	})
}

// TestErrorsHoldNoPassword provokes server errors from statements that
// carry passwords and checks the messages: the password-policy refusal
// (1819) is KindInvalid, and no text contains the password or its hash.
func TestErrorsHoldNoPassword(t *testing.T) {
	m := dbtest.StartMariaDB(t)
	r := mysql.New(mysql.Options{})
	exec(t, m, "INSTALL SONAME 'simple_password_check'")
	pw := password()
	user := m.CreateUser(t, "eh", pw)
	cur := creds(m, user, pw, "")
	weak := cur
	weak.Password = "weakweakweak" // no digit, upper case or punctuation
	err := r.Set(t.Context(), rotator.SetRequest{Strategy: rotator.SingleUser, Pending: weak, Current: cur})
	if k := rotator.KindOf(err); k != rotator.KindInvalid {
		t.Fatalf("Set with a weak password = %v (kind %v), want KindInvalid", err, k)
	}
	for _, s := range []string{weak.Password, strings.ToLower(serverHash(t, m, weak.Password)), serverHash(t, m, weak.Password)[1:]} {
		if strings.Contains(fmt.Sprintf("%+v", err), s) {
			t.Errorf("error contains the password or its hash")
		}
	}
	var se *mysql.ServerError
	if !errors.As(err, &se) || se.Number != 1819 {
		t.Errorf("cause = %v, want ServerError 1819", err)
	}
	t.Logf("error: %v", err)
}

// TestSingleUserExpiredPassword: a user whose password has expired cannot
// change it itself through the driver, but the server checked the password
// before saying so; with a master in the secret the rotation completes. Both
// ways MariaDB reports expiry are covered: sandbox mode (statements fail
// with 1820) and disconnect_on_expired_password (login fails with 1862).
func TestSingleUserExpiredPassword(t *testing.T) {
	m := dbtest.StartMariaDB(t)
	r := mysql.New(mysql.Options{})
	ms := master(m)
	for _, disconnect := range []string{"OFF", "ON"} {
		t.Run("disconnect_on_expired_password="+disconnect, func(t *testing.T) {
			exec(t, m, "SET GLOBAL disconnect_on_expired_password = "+disconnect)
			pw := password()
			user := m.CreateUser(t, "ex", pw)
			exec(t, m, "ALTER USER ?@'%' PASSWORD EXPIRE", user)
			cur := creds(m, user, pw, "")
			pending := cur
			pending.Password = password()
			err := r.Set(t.Context(), rotator.SetRequest{Strategy: rotator.SingleUser, Pending: pending, Current: cur})
			if k := rotator.KindOf(err); k != rotator.KindAuth || !strings.Contains(err.Error(), "expired") {
				t.Fatalf("Set without master = %v, want KindAuth saying the password expired", err)
			}
			if err := r.Test(t.Context(), rotator.TestRequest{Credentials: cur}); rotator.KindOf(err) != rotator.KindAuth {
				t.Fatalf("Test of an expired password = %v, want KindAuth", err)
			}
			if err := r.Set(t.Context(), rotator.SetRequest{Strategy: rotator.SingleUser, Pending: pending, Current: cur, Master: &ms}); err != nil {
				t.Fatalf("Set with master: %v", err)
			}
			if err := r.Test(t.Context(), rotator.TestRequest{Credentials: pending}); err != nil {
				t.Fatalf("Test after the rotation: %v", err)
			}
			// A wrong password is still refused, master or not.
			wrong := cur
			wrong.Password = password()
			exec(t, m, "ALTER USER ?@'%' PASSWORD EXPIRE", user)
			err = r.Set(t.Context(), rotator.SetRequest{Strategy: rotator.SingleUser, Pending: cur, Current: wrong, Master: &ms})
			if k := rotator.KindOf(err); k != rotator.KindAuth || strings.Contains(err.Error(), "expired") {
				t.Fatalf("Set with a wrong current password = %v, want KindAuth (not the expiry)", err)
			}
		})
	}
}

// TestSSLModes: the test server has no TLS, so "prefer" falls back to
// plaintext while every mode that demands TLS fails rather than silently
// downgrading, and an unknown mode is refused before any connection.
func TestSSLModes(t *testing.T) {
	m := dbtest.SharedMariaDB(t)
	pw := password()
	user := m.CreateUser(t, "ssl", pw)
	for _, tc := range []struct {
		mode string
		want rotator.Kind // 0: works
	}{
		{"disable", 0}, {"DISABLED", 0}, {"prefer", 0}, {"preferred", 0},
		{"require", rotator.KindUnreachable}, {"REQUIRED", rotator.KindUnreachable},
		{"verify-ca", rotator.KindUnreachable}, {"verify_identity", rotator.KindUnreachable}, {"verify-full", rotator.KindUnreachable},
		{"allow", rotator.KindInvalid},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			c := creds(m, user, pw, "")
			c.SSLMode = tc.mode
			err := mysql.New(mysql.Options{}).Test(t.Context(), rotator.TestRequest{Credentials: c})
			if tc.want == 0 && err != nil || tc.want != 0 && rotator.KindOf(err) != tc.want {
				t.Fatalf("Test with sslmode %q = %v, want kind %v", tc.mode, err, tc.want)
			}
		})
	}
	// The default mode is prefer; Options.DefaultSSLMode changes it.
	c := creds(m, user, pw, "")
	c.SSLMode = ""
	if err := mysql.New(mysql.Options{}).Test(t.Context(), rotator.TestRequest{Credentials: c}); err != nil {
		t.Errorf("default sslmode: %v", err)
	}
	if err := mysql.New(mysql.Options{DefaultSSLMode: "require"}).Test(t.Context(), rotator.TestRequest{Credentials: c}); rotator.KindOf(err) != rotator.KindUnreachable {
		t.Errorf("DefaultSSLMode require: %v, want KindUnreachable", err)
	}
}

func BenchmarkRotateAlternating(b *testing.B) {
	m := dbtest.SharedMariaDB(b)
	r := mysql.New(mysql.Options{})
	db := m.CreateDatabase(b, "bench")
	pw := password()
	user := m.CreateUser(b, "bn", pw)
	for _, s := range []string{
		"GRANT SELECT, INSERT, UPDATE, DELETE ON " + quoteIdent(db) + ".* TO ?@'%'",
		"CREATE TABLE " + quoteIdent(db) + ".t (a int, b int)",
		"GRANT SELECT (a), UPDATE (b) ON " + quoteIdent(db) + ".t TO ?@'%'",
	} {
		var args []any
		if strings.Contains(s, "?") {
			args = []any{user}
		}
		exec(b, m, s, args...)
	}
	ms := master(m)
	cur := creds(m, user, pw, db)
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		pending := cur
		pending.Username, _ = rotator.AlternateUser(cur.Username, mysql.MaxUserLen)
		pending.Password = password()
		if err := r.Set(ctx, rotator.SetRequest{Strategy: rotator.AlternatingUsers, Pending: pending, Current: cur, Master: &ms}); err != nil {
			b.Fatal(err)
		}
		if err := r.Test(ctx, rotator.TestRequest{Credentials: pending}); err != nil {
			b.Fatal(err)
		}
		cur = pending
	}
}

// The logins each step makes, once the master session is pooled: Test is a
// fresh login of its own; Set proves passwords against the stored hashes
// and logs in only as a user that has no master.
func TestLoginsPerRotation(t *testing.T) {
	m := dbtest.SharedMariaDB(t)
	db := m.CreateDatabase(t, "logins")
	ms := master(m)
	for _, tc := range []struct {
		name     string
		strategy rotator.Strategy
		master   *rotator.Credentials
		wantSet  int64
	}{
		{"alternating", rotator.AlternatingUsers, &ms, 0},
		{"single user with master", rotator.SingleUser, &ms, 0},
		{"single user without master: the user changes its own password", rotator.SingleUser, nil, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := mysql.New(mysql.Options{})
			defer r.Close()
			pw := password()
			cur := creds(m, m.CreateUser(t, "lg", pw), pw, db)
			exec(t, m, "GRANT ALL PRIVILEGES ON "+quoteIdent(db)+".* TO ?@'%'", cur.Username)
			for i := range 4 {
				pending := cur
				pending.Password = password()
				if tc.strategy == rotator.AlternatingUsers {
					pending.Username, _ = rotator.AlternateUser(cur.Username, mysql.MaxUserLen)
				}
				before := mysql.Logins(r)
				req := rotator.SetRequest{Strategy: tc.strategy, Pending: pending, Current: cur, Master: tc.master}
				if err := r.Set(t.Context(), req); err != nil {
					t.Fatalf("Set: %v", err)
				}
				set := mysql.Logins(r) - before
				if err := r.Test(t.Context(), rotator.TestRequest{Credentials: pending}); err != nil {
					t.Fatalf("Test: %v", err)
				}
				test := mysql.Logins(r) - before - set
				want := tc.wantSet
				if i == 0 && tc.master != nil {
					want++ // the master's first login
				}
				if set != want || test != 1 {
					t.Errorf("rotation %d: Set logged in %d times, Test %d; want %d and 1", i+1, set, test, want)
				}
				cur = pending
			}
			if s := mysql.PoolStats(r); tc.master != nil && s.Reuses != 3 {
				t.Errorf("pool stats %+v, want 3 reuses", s)
			}
		})
	}
}

// sessions returns the connection ids of user's sessions.
func sessions(t *testing.T, m *dbtest.MariaDB, user string) []int64 {
	t.Helper()
	rows, err := superDB(t, m).QueryContext(t.Context(), "SELECT ID FROM information_schema.PROCESSLIST WHERE USER = ? ORDER BY ID", user)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

func waitSessions(t *testing.T, m *dbtest.MariaDB, user string, want int) []int64 {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ids := sessions(t, m, user)
		if len(ids) == want {
			return ids
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has sessions %v, want %d", user, ids, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The master's session is kept between calls, replaced when it broke or
// when the master's password changed, dropped when a rotation changes the
// master's own password, and closed by Close.
func TestMasterSessionPool(t *testing.T) {
	m := dbtest.SharedMariaDB(t)
	db := m.CreateDatabase(t, "pool")
	mpw := password()
	ms := creds(m, m.CreateUser(t, "adm", mpw), mpw, "")
	exec(t, m, "GRANT ALL PRIVILEGES ON *.* TO ?@'%' WITH GRANT OPTION", ms.Username)
	r := mysql.New(mysql.Options{})
	defer r.Close()
	pw := password()
	cur := creds(m, m.CreateUser(t, "pl", pw), pw, db)
	rotateOnce := func() {
		t.Helper()
		pending := cur
		pending.Username, _ = rotator.AlternateUser(cur.Username, mysql.MaxUserLen)
		pending.Password = password()
		req := rotator.SetRequest{Strategy: rotator.AlternatingUsers, Pending: pending, Current: cur, Master: &ms}
		if err := r.Set(t.Context(), req); err != nil {
			t.Fatalf("Set: %v", err)
		}
		cur = pending
	}

	rotateOnce()
	first := waitSessions(t, m, ms.Username, 1)
	rotateOnce()
	if got := waitSessions(t, m, ms.Username, 1); got[0] != first[0] {
		t.Errorf("the master's session changed from %d to %d without reason", first[0], got[0])
	}

	t.Run("a broken session is replaced", func(t *testing.T) {
		exec(t, m, fmt.Sprintf("KILL CONNECTION %d", first[0]))
		waitSessions(t, m, ms.Username, 0)
		rotateOnce()
		if got := waitSessions(t, m, ms.Username, 1); got[0] == first[0] {
			t.Error("the killed session is still in use")
		}
	})

	t.Run("a new master password closes the old session", func(t *testing.T) {
		old := waitSessions(t, m, ms.Username, 1)
		ms.Password = password()
		exec(t, m, "ALTER USER ?@'%' IDENTIFIED BY ?", ms.Username, ms.Password)
		rotateOnce()
		if got := waitSessions(t, m, ms.Username, 1); got[0] == old[0] {
			t.Error("the session opened with the old password is still in use")
		}
	})

	t.Run("rotating the master's own password drops its session", func(t *testing.T) {
		waitSessions(t, m, ms.Username, 1)
		pending := ms
		pending.Password = password()
		req := rotator.SetRequest{Strategy: rotator.SingleUser, Pending: pending, Current: ms, Master: &ms}
		if err := r.Set(t.Context(), req); err != nil {
			t.Fatalf("Set: %v", err)
		}
		ms = pending
		waitSessions(t, m, ms.Username, 0)
		rotateOnce()
		waitSessions(t, m, ms.Username, 1)
	})

	t.Run("Close closes it", func(t *testing.T) {
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		waitSessions(t, m, ms.Username, 0)
		rotateOnce()
		waitSessions(t, m, ms.Username, 0)
	})
}
