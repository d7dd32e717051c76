package dbtest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
)

// mainRunning is set by Main: shared servers are only started when someone
// will stop them.
var mainRunning atomic.Bool

var (
	sharedPG struct {
		sync.Mutex
		srv *Postgres
		err error
	}
	sharedMariaDB struct {
		sync.Mutex
		srv *MariaDB
		err error
	}
)

// Main runs the tests of a package that uses shared servers and then stops
// the servers. Call it from the package's TestMain:
//
//	func TestMain(m *testing.M) { dbtest.Main(m) }
//
// The exit code is that of m.Run: a TestMain that returns leaves it to the
// testing package.
func Main(m *testing.M) {
	mainRunning.Store(true)
	defer stopShared()
	m.Run()
}

func stopShared() {
	sharedPG.Lock()
	if sharedPG.srv != nil {
		sharedPG.srv.close()
		sharedPG.srv = nil
	}
	sharedPG.Unlock()
	sharedMariaDB.Lock()
	if sharedMariaDB.srv != nil {
		sharedMariaDB.srv.close()
		sharedMariaDB.srv = nil
	}
	sharedMariaDB.Unlock()
}

const needMain = "needs func TestMain(m *testing.M) { dbtest.Main(m) } in the test package, which stops the shared servers when the tests end"

// SharedPostgres returns the test binary's shared PostgreSQL server,
// starting it on first use. Tests must not stop it or change its
// configuration; they isolate themselves with CreateDatabase and CreateUser.
// If the server failed to start, every caller fails with the same error.
func SharedPostgres(t testing.TB) *Postgres {
	t.Helper()
	if !mainRunning.Load() {
		t.Fatal("dbtest: SharedPostgres " + needMain)
	}
	sharedPG.Lock()
	defer sharedPG.Unlock()
	if sharedPG.srv == nil && sharedPG.err == nil {
		p, timing, err := openPostgres(context.Background(), true)
		if err != nil {
			sharedPG.err = err
		} else {
			sharedPG.srv = p
			t.Logf("dbtest: shared postgres %s on %s:%d (%s)", p.Version, p.Host, p.Port, timing)
		}
	}
	if sharedPG.err != nil {
		t.Fatal(sharedPG.err)
	}
	return sharedPG.srv
}

// SharedMariaDB returns the test binary's shared MariaDB server, starting it
// on first use. Tests must not stop it or change its configuration; they
// isolate themselves with CreateDatabase and CreateUser. If the server failed
// to start, every caller fails with the same error.
func SharedMariaDB(t testing.TB) *MariaDB {
	t.Helper()
	if !mainRunning.Load() {
		t.Fatal("dbtest: SharedMariaDB " + needMain)
	}
	sharedMariaDB.Lock()
	defer sharedMariaDB.Unlock()
	if sharedMariaDB.srv == nil && sharedMariaDB.err == nil {
		m, timing, err := openMariaDB(context.Background(), true)
		if err != nil {
			sharedMariaDB.err = err
		} else {
			sharedMariaDB.srv = m
			t.Logf("dbtest: shared mariadb %s on %s:%d (%s)", m.Version, m.Host, m.Port, timing)
		}
	}
	if sharedMariaDB.err != nil {
		t.Fatal(sharedMariaDB.err)
	}
	return sharedMariaDB.srv
}

// IsAuthFailure reports whether err, from either driver, says the server
// refused the login itself: PostgreSQL SQLSTATE 28P01 (invalid_password) or
// 28000 (invalid_authorization_specification, such as a role without LOGIN),
// or MySQL error 1045 (access denied). A stopped server or a network error
// is not an authentication failure.
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
