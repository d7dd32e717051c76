package dbtest

import (
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

func TestMain(m *testing.M) { Main(m) }

// oddPassword has every character that breaks naive quoting in SQL, URLs and
// DSNs.
const oddPassword = `p'a"ss\w0rd @:/?#%&=;` + "`$"

// oddName is a name prefix that only survives correct identifier quoting.
const oddName = `O'dd "na` + "`" + `me\`

// fatalRecorder is a testing.TB whose Fatal stops only the goroutine that
// calls it, so a test can assert that a helper fails its caller.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Helper() {}
func (f *fatalRecorder) Fatal(args ...any) {
	f.msg = fmt.Sprint(args...)
	runtime.Goexit()
}
func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// fatalMessage runs fn and returns the message it failed the test with, or
// "" if it did not.
func fatalMessage(t *testing.T, fn func(testing.TB)) string {
	t.Helper()
	f := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	return f.msg
}

func pgCode(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

func mysqlNumber(err error) uint16 {
	var myErr *mysql.MySQLError
	if errors.As(err, &myErr) {
		return myErr.Number
	}
	return 0
}

func TestPostgres(t *testing.T) {
	t.Parallel()
	p := StartPostgres(t)
	ctx := t.Context()

	if err := p.CanLogin(ctx, p.SuperUser, p.SuperPassword, ""); err != nil {
		t.Fatalf("superuser login: %v", err)
	}
	for _, tc := range []struct{ name, user, password string }{
		{"wrong password", p.SuperUser, "wrong"},
		{"empty password", p.SuperUser, ""},
		{"unknown user", "nobody_here", p.SuperPassword},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := p.CanLogin(ctx, tc.user, tc.password, "")
			if got, want := pgCode(err), "28P01"; got != want {
				t.Errorf("login error = %v (SQLSTATE %q), want SQLSTATE %q", err, got, want)
			}
			if !IsAuthFailure(err) {
				t.Errorf("IsAuthFailure(%v) = false, want true", err)
			}
		})
	}

	t.Run("only scram-sha-256 in pg_hba.conf", func(t *testing.T) {
		conn, err := pgx.Connect(ctx, p.DSN(p.SuperUser, p.SuperPassword, ""))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		rows, err := conn.Query(ctx, "SELECT type, auth_method FROM pg_hba_file_rules")
		if err != nil {
			t.Fatal(err)
		}
		var n int
		for rows.Next() {
			var typ, method string
			if err := rows.Scan(&typ, &method); err != nil {
				t.Fatal(err)
			}
			if method != "scram-sha-256" {
				t.Errorf("pg_hba.conf rule for %s uses %s, want scram-sha-256", typ, method)
			}
			n++
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if n != 2 {
			t.Errorf("pg_hba.conf has %d rules, want 2", n)
		}
	})

	t.Run("CreateUser and CreateDatabase", func(t *testing.T) {
		user := p.CreateUser(t, "app", oddPassword)
		db := p.CreateDatabase(t, "appdb")
		if other := p.CreateDatabase(t, "appdb"); other == db {
			t.Errorf("CreateDatabase returned %q twice", db)
		}
		if !strings.HasPrefix(user, "app_") || !strings.HasPrefix(db, "appdb_") {
			t.Errorf("names %q, %q do not start with their prefixes", user, db)
		}
		if err := p.CanLogin(ctx, user, oddPassword, db); err != nil {
			t.Errorf("new user login: %v", err)
		}
		if err := p.CanLogin(ctx, user, oddPassword+"x", db); pgCode(err) != "28P01" {
			t.Errorf("new user login with wrong password: %v, want SQLSTATE 28P01", err)
		}
		// The DSN alone, through pgx's own parser, reaches the right place.
		conn, err := pgx.Connect(ctx, p.DSN(user, oddPassword, db))
		if err != nil {
			t.Fatalf("pgx.Connect(DSN): %v", err)
		}
		defer conn.Close(ctx)
		var gotUser, gotDB string
		if err := conn.QueryRow(ctx, "SELECT current_user, current_database()").Scan(&gotUser, &gotDB); err != nil {
			t.Fatal(err)
		}
		if gotUser != user || gotDB != db {
			t.Errorf("connected as %q to %q, want %q to %q", gotUser, gotDB, user, db)
		}
		var verifier string
		err = p.queryRow(ctx, "SELECT rolpassword FROM pg_authid WHERE rolname = '"+user+"'", &verifier)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(verifier, "SCRAM-SHA-256$") {
			t.Errorf("password stored as %.14q…, want a SCRAM-SHA-256 verifier", verifier)
		}
	})

	t.Run("odd names", func(t *testing.T) {
		user := p.CreateUser(t, oddName, oddPassword)
		db := p.CreateDatabase(t, oddName)
		if !strings.HasPrefix(user, oddName) || !strings.HasPrefix(db, oddName) {
			t.Errorf("names %q, %q do not start with %q", user, db, oddName)
		}
		if err := p.CanLogin(ctx, user, oddPassword, db); err != nil {
			t.Errorf("login as %q to %q: %v", user, db, err)
		}
	})

	t.Run("Exec with arguments", func(t *testing.T) {
		db := p.CreateDatabase(t, "exec")
		if err := p.ExecIn(ctx, db, "CREATE TABLE kv (k text PRIMARY KEY, v text)"); err != nil {
			t.Fatal(err)
		}
		if err := p.ExecIn(ctx, db, "INSERT INTO kv VALUES ($1, $2)", "k", oddPassword); err != nil {
			t.Fatal(err)
		}
		if err := p.Exec(ctx, "SELECT * FROM no_such_table"); pgCode(err) != "42P01" {
			t.Errorf("Exec of a bad statement = %v, want SQLSTATE 42P01", err)
		}
	})
}

func TestPostgresStopStart(t *testing.T) {
	t.Parallel()
	p := StartPostgres(t)
	ctx := t.Context()
	user := p.CreateUser(t, "app", "secret")
	db := p.CreateDatabase(t, "app")
	if err := p.ExecIn(ctx, db, "CREATE TABLE t (v text); INSERT INTO t VALUES ('kept')"); err != nil {
		t.Fatal(err)
	}
	port := p.Port

	start := time.Now()
	p.Stop(t)
	t.Logf("stop took %v", time.Since(start))
	err := p.CanLogin(ctx, user, "secret", db)
	if err == nil || IsAuthFailure(err) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("login to a stopped server = %v, want connection refused", err)
	}
	if msg := fatalMessage(t, p.Stop); !strings.Contains(msg, "not running") {
		t.Errorf("second Stop failed with %q, want a failure saying it is not running", msg)
	}

	start = time.Now()
	p.Start(t)
	t.Logf("restart took %v", time.Since(start))
	if p.Port != port {
		t.Errorf("port after restart = %d, want %d", p.Port, port)
	}
	if err := p.CanLogin(ctx, user, "secret", db); err != nil {
		t.Errorf("login after restart: %v", err)
	}
	conn, err := pgx.Connect(ctx, p.DSN(p.SuperUser, p.SuperPassword, db))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var v string
	if err := conn.QueryRow(ctx, "SELECT v FROM t").Scan(&v); err != nil || v != "kept" {
		t.Errorf("row after restart = %q, %v; want %q", v, err, "kept")
	}
	if msg := fatalMessage(t, p.Start); !strings.Contains(msg, "is running") {
		t.Errorf("Start of a running server failed with %q, want a failure saying it is running", msg)
	}
}

// TestPostgresRefusesTrust proves the wrong-password check catches a server
// with trust authentication.
func TestPostgresRefusesTrust(t *testing.T) {
	t.Parallel()
	p := StartPostgres(t)
	p.Stop(t)
	trust := "local all all trust\nhost all all 127.0.0.1/32 trust\n"
	if err := writeFileAs(filepath.Join(p.data, "pg_hba.conf"), []byte(trust), p.acct); err != nil {
		t.Fatal(err)
	}
	msg := fatalMessage(t, p.Start)
	if !strings.Contains(msg, "refusing to run against a PostgreSQL server that accepts a wrong password") {
		t.Errorf("Start with trust authentication failed with %q, want a refusal", msg)
	}
	if err := p.CanLogin(t.Context(), p.SuperUser, "anything", ""); err != nil {
		t.Fatalf("the server is not in trust mode after all (%v); the test proves nothing", err)
	}
	if err := p.checkRefusesWrongPassword(t.Context()); err == nil {
		t.Error("checkRefusesWrongPassword accepted a trust server")
	}
}

func TestMariaDB(t *testing.T) {
	t.Parallel()
	m := StartMariaDB(t)
	ctx := t.Context()

	if err := m.CanLogin(ctx, m.SuperUser, m.SuperPassword, ""); err != nil {
		t.Fatalf("superuser login: %v", err)
	}
	for _, tc := range []struct{ name, user, password string }{
		{"wrong password", m.SuperUser, "wrong"},
		{"empty password", m.SuperUser, ""},
		{"unknown user", "nobody_here", m.SuperPassword},
		{"anonymous", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := m.CanLogin(ctx, tc.user, tc.password, "")
			if got := mysqlNumber(err); got != 1045 {
				t.Errorf("login error = %v (number %d), want 1045", err, got)
			}
			if !IsAuthFailure(err) {
				t.Errorf("IsAuthFailure(%v) = false, want true", err)
			}
		})
	}

	t.Run("no account without a password", func(t *testing.T) {
		db, err := m.superDB("")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		rows, err := db.QueryContext(ctx, "SELECT CONCAT(User, '@', Host) FROM mysql.global_priv WHERE User = '' OR (IFNULL(JSON_VALUE(Priv, '$.authentication_string'), '') = '' AND IFNULL(JSON_EXTRACT(Priv, '$.account_locked'), 'false') <> 'true')")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var account string
			rows.Scan(&account)
			t.Errorf("account %s has no password", account)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("CreateUser and CreateDatabase", func(t *testing.T) {
		user := m.CreateUser(t, "app", oddPassword)
		db := m.CreateDatabase(t, "appdb")
		if other := m.CreateDatabase(t, "appdb"); other == db {
			t.Errorf("CreateDatabase returned %q twice", db)
		}
		if err := m.Exec(ctx, "GRANT ALL ON "+quoteIdent(db)+".* TO ?@'%'", user); err != nil {
			t.Fatal(err)
		}
		if err := m.CanLogin(ctx, user, oddPassword, db); err != nil {
			t.Errorf("new user login: %v", err)
		}
		if err := m.CanLogin(ctx, user, oddPassword+"x", db); mysqlNumber(err) != 1045 {
			t.Errorf("new user login with wrong password: %v, want error 1045", err)
		}
		// The DSN alone, through the driver's own parser, reaches the right place.
		conn, err := sql.Open("mysql", m.DSN(user, oddPassword, db))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		var gotUser, gotDB string
		if err := conn.QueryRowContext(ctx, "SELECT CURRENT_USER(), DATABASE()").Scan(&gotUser, &gotDB); err != nil {
			t.Fatal(err)
		}
		if want := user + "@%"; gotUser != want || gotDB != db {
			t.Errorf("connected as %q to %q, want %q to %q", gotUser, gotDB, want, db)
		}
	})

	t.Run("CreateUserAt", func(t *testing.T) {
		local := m.CreateUserAt(t, "local", "localhost", "secret")
		if err := m.CanLogin(ctx, local, "secret", ""); mysqlNumber(err) != 1045 {
			t.Errorf("TCP login of a user@localhost = %v, want error 1045", err)
		}
		loopback := m.CreateUserAt(t, "loopback", "127.0.0.1", "secret")
		if err := m.CanLogin(ctx, loopback, "secret", ""); err != nil {
			t.Errorf("TCP login of a user@127.0.0.1: %v", err)
		}
	})

	t.Run("odd names", func(t *testing.T) {
		user := m.CreateUser(t, oddName, oddPassword)
		db := m.CreateDatabase(t, oddName)
		if !strings.HasPrefix(user, oddName) || !strings.HasPrefix(db, oddName) {
			t.Errorf("names %q, %q do not start with %q", user, db, oddName)
		}
		// GRANT … ON db.* reads db as a LIKE pattern: escape its wildcards.
		pattern := strings.NewReplacer(`\`, `\\`, `_`, `\_`, `%`, `\%`).Replace(db)
		if err := m.Exec(ctx, "GRANT ALL ON "+quoteIdent(pattern)+".* TO ?@'%'", user); err != nil {
			t.Fatal(err)
		}
		if err := m.CanLogin(ctx, user, oddPassword, db); err != nil {
			t.Errorf("login as %q to %q: %v", user, db, err)
		}
	})

	t.Run("Exec", func(t *testing.T) {
		db := m.CreateDatabase(t, "exec")
		if err := m.ExecIn(ctx, db, "CREATE TABLE kv (k VARCHAR(10) PRIMARY KEY, v TEXT)"); err != nil {
			t.Fatal(err)
		}
		if err := m.ExecIn(ctx, db, "INSERT INTO kv VALUES (?, ?)", "k", oddPassword); err != nil {
			t.Fatal(err)
		}
		if err := m.Exec(ctx, "SELECT * FROM no_such_db.t"); mysqlNumber(err) != 1146 && mysqlNumber(err) != 1049 {
			t.Errorf("Exec of a bad statement = %v, want error 1146 or 1049", err)
		}
	})
}

func TestMariaDBStopStart(t *testing.T) {
	t.Parallel()
	m := StartMariaDB(t)
	ctx := t.Context()
	user := m.CreateUser(t, "app", "secret")
	db := m.CreateDatabase(t, "app")
	if err := m.ExecIn(ctx, db, "CREATE TABLE t (v TEXT)"); err != nil {
		t.Fatal(err)
	}
	if err := m.ExecIn(ctx, db, "INSERT INTO t VALUES ('kept')"); err != nil {
		t.Fatal(err)
	}
	port := m.Port

	start := time.Now()
	m.Stop(t)
	t.Logf("stop took %v", time.Since(start))
	err := m.CanLogin(ctx, user, "secret", "")
	if err == nil || IsAuthFailure(err) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("login to a stopped server = %v, want connection refused", err)
	}

	start = time.Now()
	m.Start(t)
	t.Logf("restart took %v", time.Since(start))
	if m.Port != port {
		t.Errorf("port after restart = %d, want %d", m.Port, port)
	}
	if err := m.CanLogin(ctx, user, "secret", ""); err != nil {
		t.Errorf("login after restart: %v", err)
	}
	conn, err := sql.Open("mysql", m.DSN(m.SuperUser, m.SuperPassword, db))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var v string
	if err := conn.QueryRowContext(ctx, "SELECT v FROM t").Scan(&v); err != nil || v != "kept" {
		t.Errorf("row after restart = %q, %v; want %q", v, err, "kept")
	}
}

// TestMariaDBRefusesSkipGrantTables proves the wrong-password check catches
// a server that accepts any password.
func TestMariaDBRefusesSkipGrantTables(t *testing.T) {
	t.Parallel()
	m := StartMariaDB(t)
	m.Stop(t)
	m.extraArgs = []string{"--skip-grant-tables"}
	msg := fatalMessage(t, m.Start)
	if !strings.Contains(msg, "refusing to run against a MariaDB server that accepts a wrong password") {
		t.Errorf("Start with --skip-grant-tables failed with %q, want a refusal", msg)
	}
	if err := m.CanLogin(t.Context(), m.SuperUser, "anything", ""); err != nil {
		t.Fatalf("the server checks passwords after all (%v); the test proves nothing", err)
	}
	if err := m.checkRefusesWrongPassword(t.Context()); err == nil {
		t.Error("checkRefusesWrongPassword accepted a server that accepts any password")
	}
}

// TestPortCollision gives each server a taken port first and checks that it
// moves to another. Not parallel: it replaces pickPort.
func TestPortCollision(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	takenPort := taken.Addr().(*net.TCPAddr).Port
	var picks atomic.Int32
	pickPort = func() (int, error) {
		if picks.Add(1) == 1 {
			return takenPort, nil
		}
		return FreePort()
	}
	defer func() { pickPort = FreePort }()

	p := StartPostgres(t)
	if got := picks.Load(); got != 2 || p.Port == takenPort {
		t.Errorf("postgres picked %d ports and runs on %d (taken: %d), want 2 picks and another port", got, p.Port, takenPort)
	}
	picks.Store(0)
	m := StartMariaDB(t)
	if got := picks.Load(); got != 2 || m.Port == takenPort {
		t.Errorf("mariadb picked %d ports and runs on %d (taken: %d), want 2 picks and another port", got, m.Port, takenPort)
	}
}

// TestConcurrentServers starts two dedicated servers of each kind at once
// and checks they are independent.
func TestConcurrentServers(t *testing.T) {
	t.Parallel()
	var (
		wg  sync.WaitGroup
		pgs [2]*Postgres
		mds [2]*MariaDB
	)
	for i := range 2 {
		wg.Go(func() { pgs[i] = StartPostgres(t) })
		wg.Go(func() { mds[i] = StartMariaDB(t) })
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	ctx := t.Context()
	if pgs[0].Port == pgs[1].Port || mds[0].Port == mds[1].Port {
		t.Fatalf("servers share a port: postgres %d, %d; mariadb %d, %d", pgs[0].Port, pgs[1].Port, mds[0].Port, mds[1].Port)
	}
	for i := range 2 {
		a, b := pgs[i], pgs[1-i]
		if err := a.CanLogin(ctx, a.SuperUser, b.SuperPassword, ""); pgCode(err) != "28P01" {
			t.Errorf("postgres %d accepted or mishandled the other's password: %v", i, err)
		}
		c, d := mds[i], mds[1-i]
		if err := c.CanLogin(ctx, c.SuperUser, d.SuperPassword, ""); mysqlNumber(err) != 1045 {
			t.Errorf("mariadb %d accepted or mishandled the other's password: %v", i, err)
		}
	}
}

func TestShared(t *testing.T) {
	p := SharedPostgres(t)
	if again := SharedPostgres(t); again != p {
		t.Error("SharedPostgres returned two servers")
	}
	if err := p.CanLogin(t.Context(), p.SuperUser, p.SuperPassword, ""); err != nil {
		t.Error(err)
	}
	if msg := fatalMessage(t, p.Stop); !strings.Contains(msg, "shared") {
		t.Errorf("Stop of the shared postgres failed with %q, want a refusal", msg)
	}

	m := SharedMariaDB(t)
	if again := SharedMariaDB(t); again != m {
		t.Error("SharedMariaDB returned two servers")
	}
	if err := m.CanLogin(t.Context(), m.SuperUser, m.SuperPassword, ""); err != nil {
		t.Error(err)
	}
	if msg := fatalMessage(t, m.Start); !strings.Contains(msg, "shared") {
		t.Errorf("Start of the shared mariadb failed with %q, want a refusal", msg)
	}
}

// TestSharedNeedsMain is not parallel: it briefly pretends Main is not running.
func TestSharedNeedsMain(t *testing.T) {
	mainRunning.Store(false)
	defer mainRunning.Store(true)
	if msg := fatalMessage(t, func(t testing.TB) { SharedPostgres(t) }); !strings.Contains(msg, "dbtest.Main(m)") {
		t.Errorf("SharedPostgres without Main failed with %q, want a pointer to dbtest.Main", msg)
	}
	if msg := fatalMessage(t, func(t testing.TB) { SharedMariaDB(t) }); !strings.Contains(msg, "dbtest.Main(m)") {
		t.Errorf("SharedMariaDB without Main failed with %q, want a pointer to dbtest.Main", msg)
	}
}

func TestIsAuthFailure(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"other", errors.New("boom"), false},
		{"connection refused", &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}, false},
		{"pg invalid password", &pgconn.PgError{Code: "28P01"}, true},
		{"pg no login", &pgconn.PgError{Code: "28000"}, true},
		{"pg wrapped", fmt.Errorf("connect: %w", &pgconn.PgError{Code: "28P01"}), true},
		{"pg undefined table", &pgconn.PgError{Code: "42P01"}, false},
		{"mysql access denied", &mysql.MySQLError{Number: 1045}, true},
		{"mysql db access denied", &mysql.MySQLError{Number: 1044}, false},
		{"mysql wrapped", fmt.Errorf("ping: %w", &mysql.MySQLError{Number: 1045}), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := IsAuthFailure(tc.err); got != tc.want {
				t.Errorf("IsAuthFailure(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

func TestDSNEmptyDatabase(t *testing.T) {
	p := &Postgres{Host: "127.0.0.1", Port: 5999}
	cfg, err := pgx.ParseConfig(p.DSN("u", oddPassword, ""))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Database != "postgres" || cfg.Password != oddPassword || cfg.User != "u" || cfg.Port != 5999 {
		t.Errorf("DSN parses to user %q password %q database %q port %d", cfg.User, cfg.Password, cfg.Database, cfg.Port)
	}
	m := &MariaDB{Host: "127.0.0.1", Port: 5998}
	mcfg, err := mysql.ParseDSN(m.DSN("u", oddPassword, ""))
	if err != nil {
		t.Fatal(err)
	}
	if mcfg.DBName != "" || mcfg.Passwd != oddPassword || mcfg.User != "u" || mcfg.Addr != "127.0.0.1:5998" {
		t.Errorf("DSN parses to user %q password %q database %q address %q", mcfg.User, mcfg.Passwd, mcfg.DBName, mcfg.Addr)
	}
}
