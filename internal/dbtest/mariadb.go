package dbtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// MariaDB is a MariaDB server started for tests. The exported fields are
// read-only.
//
// Its accounts are root@localhost (unix socket only), root@127.0.0.1 (the
// superuser tests use, all privileges with grant option), both with
// SuperPassword, and the internal mariadb.sys@localhost. There are no
// anonymous accounts, so an account user@'%' is the one that matches TCP
// logins from 127.0.0.1; host names are never resolved (skip-name-resolve),
// so host parts must be IP addresses, patterns or localhost.
type MariaDB struct {
	Host          string // always 127.0.0.1
	Port          int    // free when the server was first started; kept across Stop and Start
	SuperUser     string // "root", at host 127.0.0.1
	SuperPassword string // random
	Version       string // VERSION(), e.g. "10.11.19-MariaDB-0+deb12u1"

	dir     string // private temporary directory
	data    string
	tmp     string // the server's own tmpdir: concurrent bootstraps sharing /tmp collide
	socket  string
	server  string // mariadbd
	install string // mariadb-install-db
	acct    *account
	logPath string
	shared  bool
	seq     atomic.Uint64

	mu        sync.Mutex
	proc      *process // nil before the first start
	extraArgs []string // more mariadbd options, for this package's tests
}

// StartMariaDB starts a MariaDB server for the calling test alone. It is
// stopped and its directory deleted when the test ends.
func StartMariaDB(t testing.TB) *MariaDB {
	t.Helper()
	m, timing, err := openMariaDB(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	ownByTest(t, "mariadb", m.logPath, m.close, fmt.Sprintf("mariadb %s on %s:%d (%s)", m.Version, m.Host, m.Port, timing))
	return m
}

// StartMariaDBServer starts a MariaDB server for a caller that is not a test
// (rotor bench): it returns the error instead of failing a test, and the
// caller must Close the server. ctx bounds the start.
func StartMariaDBServer(ctx context.Context) (*MariaDB, error) {
	m, _, err := openMariaDB(ctx, false)
	return m, err
}

// Close stops a server started by StartMariaDBServer and deletes its
// directory. Servers from StartMariaDB and SharedMariaDB are closed by their
// tests.
func (m *MariaDB) Close() error { return m.close() }

// mariadbTuning are the server options for both mariadb-install-db (which
// passes them on) and mariadbd: small, fast, not durable.
var mariadbTuning = []string{
	"--skip-name-resolve",
	"--innodb-flush-log-at-trx-commit=0",
	"--innodb-doublewrite=0",
	"--innodb-log-file-size=8M",
	"--innodb-buffer-pool-size=32M",
	"--innodb-use-native-aio=0", // io_uring and libaio are often denied in containers
	"--character-set-server=utf8mb4",
}

// mariadbInit runs at the end of mariadb-install-db, so the server never
// runs with a passwordless account: it removes the anonymous accounts and
// the root accounts at the machine's host name and ::1, and gives root a
// password at localhost and 127.0.0.1. FLUSH PRIVILEGES loads the grant
// tables, which bootstrap mode skips, so that account statements work.
const mariadbInit = `FLUSH PRIVILEGES;
DELETE FROM mysql.global_priv WHERE User = '' OR (User = 'root' AND Host NOT IN ('localhost', '127.0.0.1'));
DELETE FROM mysql.proxies_priv WHERE User = '' OR Host NOT IN ('localhost', '127.0.0.1');
DELETE FROM mysql.db WHERE User = '';
FLUSH PRIVILEGES;
CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';
ALTER USER 'root'@'localhost' IDENTIFIED BY '%[1]s';
ALTER USER 'root'@'127.0.0.1' IDENTIFIED BY '%[1]s';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
`

// openMariaDB initialises a data directory in a fresh directory and starts
// the server. On error nothing is left behind.
func openMariaDB(ctx context.Context, shared bool) (_ *MariaDB, timing string, err error) {
	server, install, err := findMariaDB()
	if err != nil {
		return nil, "", err
	}
	acct, err := serverAccount("mysql")
	if err != nil {
		return nil, "", fmt.Errorf("dbtest: mariadb: %v", err)
	}
	dir, err := makeBaseDir("mariadb", acct)
	if err != nil {
		return nil, "", fmt.Errorf("dbtest: mariadb: %v", err)
	}
	m := &MariaDB{
		Host:          "127.0.0.1",
		SuperUser:     "root",
		SuperPassword: randomPassword(),
		dir:           dir,
		data:          filepath.Join(dir, "data"),
		tmp:           filepath.Join(dir, "tmp"),
		socket:        filepath.Join(dir, "mariadbd.sock"),
		server:        server,
		install:       install,
		acct:          acct,
		logPath:       filepath.Join(dir, "mariadb.log"),
		shared:        shared,
	}
	defer func() {
		if err != nil {
			m.close()
		}
	}()

	t0 := time.Now()
	if err := os.Mkdir(m.tmp, 0o700); err != nil {
		return nil, "", fmt.Errorf("dbtest: mariadb: %v", err)
	}
	if err := chownAs(m.tmp, acct); err != nil {
		return nil, "", fmt.Errorf("dbtest: mariadb: %v", err)
	}
	initFile := filepath.Join(dir, "init.sql")
	if err := writeFileAs(initFile, fmt.Appendf(nil, mariadbInit, m.SuperPassword), acct); err != nil {
		return nil, "", fmt.Errorf("dbtest: mariadb: %v", err)
	}
	args := append([]string{
		"--no-defaults", // must come first
		"--datadir=" + m.data,
		"--tmpdir=" + m.tmp,
		"--auth-root-authentication-method=normal",
		"--skip-test-db",
		"--extra-file=" + initFile,
	}, mariadbTuning...)
	err = runTool(install, args, dir, acct, m.logPath)
	os.Remove(initFile)
	if err != nil {
		return nil, "", fmt.Errorf("dbtest: mariadb: %v", err)
	}
	installDB := time.Since(t0)
	if err := ctx.Err(); err != nil {
		return nil, "", fmt.Errorf("dbtest: mariadb: %w", err)
	}

	t1 := time.Now()
	ctx, cancel := context.WithTimeout(ctx, readyBound)
	defer cancel()
	if err := startOnFreePort(ctx, "mariadb", &m.Port, m.start, m.checkRefusesWrongPassword); err != nil {
		return nil, "", err
	}
	start := time.Since(t1)
	if err := m.queryRow(ctx, "SELECT VERSION()", &m.Version); err != nil {
		return nil, "", fmt.Errorf("dbtest: mariadb: %v", err)
	}
	return m, fmt.Sprintf("mariadb-install-db %v, start %v", installDB.Round(time.Millisecond), start.Round(time.Millisecond)), nil
}

// findMariaDB returns the paths of mariadbd and mariadb-install-db.
func findMariaDB() (server, install string, err error) {
	find := func(name string, dirs ...string) string {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
		for _, dir := range dirs {
			if path := filepath.Join(dir, name); fileExists(path) {
				return path
			}
		}
		return ""
	}
	server = find("mariadbd", "/usr/sbin", "/usr/libexec", "/usr/local/sbin")
	install = find("mariadb-install-db", "/usr/bin", "/usr/local/bin")
	if server == "" || install == "" {
		return "", "", errors.New("dbtest: MariaDB server binaries (mariadbd, mariadb-install-db) not found in PATH or /usr/sbin; " +
			"install the mariadb-server package (scripts/test-deps.sh does so when run as root)")
	}
	return server, install, nil
}

// start starts the server on m.Port and waits until the superuser can log in.
// inUse reports a failure because the port was taken. The caller holds m.mu
// or owns m exclusively.
func (m *MariaDB) start() (inUse bool, err error) {
	offset := logSize(m.logPath)
	args := append([]string{
		"--no-defaults", // must come first
		"--datadir=" + m.data,
		"--tmpdir=" + m.tmp,
		"--socket=" + m.socket,
		"--port=" + strconv.Itoa(m.Port),
		"--bind-address=127.0.0.1",
		"--pid-file=" + filepath.Join(m.dir, "mariadbd.pid"),
		"--max-connections=200",
		"--max-connect-errors=1000000", // wrong-password tests must not get 127.0.0.1 blocked
	}, mariadbTuning...)
	args = append(args, m.extraArgs...)
	proc, err := startProcess(m.server, args, m.dir, m.acct, m.logPath)
	if err != nil {
		return false, fmt.Errorf("dbtest: mariadb: %v", err)
	}
	m.proc = proc
	err = waitReady(proc, func(ctx context.Context) error {
		return m.CanLogin(ctx, m.SuperUser, m.SuperPassword, "")
	})
	if err != nil {
		proc.stop(syscall.SIGKILL)
		log := logSince(m.logPath, offset)
		return portInUse(log), fmt.Errorf("dbtest: mariadb on port %d: %v%s", m.Port, err, logTail(m.logPath, offset))
	}
	return false, nil
}

// checkRefusesWrongPassword proves that the server checks passwords.
func (m *MariaDB) checkRefusesWrongPassword(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err := m.CanLogin(ctx, m.SuperUser, m.SuperPassword+"-wrong", "")
	var myErr *mysql.MySQLError
	switch {
	case err == nil:
		return fmt.Errorf("dbtest: refusing to run against a MariaDB server that accepts a wrong password "+
			"(--skip-grant-tables?)%s", logTail(m.logPath, 0))
	case errors.As(err, &myErr) && myErr.Number == 1045:
		return nil
	default:
		return fmt.Errorf("dbtest: logging in to MariaDB with a wrong password failed with %v, want error 1045 (access denied)%s",
			err, logTail(m.logPath, 0))
	}
}

// close stops the server and deletes its directory.
func (m *MariaDB) close() error { return m.lifecycle().close(m.dir) }

// Stop shuts the server down, so that logins fail until Start. It may only be
// used on a dedicated server.
func (m *MariaDB) Stop(t testing.TB) {
	t.Helper()
	m.lifecycle().stop(t)
}

// Start starts a server stopped by Stop again, with the same data directory
// and port, and checks again that it refuses a wrong password.
func (m *MariaDB) Start(t testing.TB) {
	t.Helper()
	m.lifecycle().restart(t)
}

func (m *MariaDB) lifecycle() lifecycle {
	return lifecycle{kind: "MariaDB", ctor: "StartMariaDB", shared: m.shared, mu: &m.mu, proc: &m.proc,
		logPath: m.logPath, stopSignal: syscall.SIGTERM, start: m.start, check: m.checkRefusesWrongPassword}
}

// LogPath is the server's log (mariadb-install-db's output, then the
// server's error log).
func (m *MariaDB) LogPath() string { return m.logPath }

// config is the driver configuration behind DSN.
func (m *MariaDB) config(user, password, dbname string) *mysql.Config {
	cfg := mysql.NewConfig()
	cfg.User = user
	cfg.Passwd = password
	cfg.Net = "tcp"
	cfg.Addr = net.JoinHostPort(m.Host, strconv.Itoa(m.Port))
	cfg.DBName = dbname
	cfg.Timeout = 10 * time.Second
	cfg.Logger = quietLogger{} // polls of a starting server are expected to fail
	return cfg
}

type quietLogger struct{}

func (quietLogger) Print(...any) {}

// DSN returns a go-sql-driver/mysql data source name for TCP to 127.0.0.1.
// An empty dbname selects no database. Every part is escaped, so any user
// name, password or database name works.
func (m *MariaDB) DSN(user, password, dbname string) string {
	return m.config(user, password, dbname).FormatDSN()
}

// CanLogin opens and closes a session as user and returns the driver's error,
// nil when the login succeeds. A wrong password gives a *mysql.MySQLError
// with Number 1045; a stopped server a connection error. See [IsAuthFailure].
func (m *MariaDB) CanLogin(ctx context.Context, user, password, dbname string) error {
	connector, err := mysql.NewConnector(m.config(user, password, dbname))
	if err != nil {
		return err
	}
	conn, err := connector.Connect(ctx)
	if err != nil {
		return err
	}
	return conn.Close()
}

// Exec runs one statement as the superuser with no default database. Args
// are interpolated client-side, so they may stand for string literals in
// statements that cannot be prepared, such as CREATE USER ?@? IDENTIFIED BY ?.
func (m *MariaDB) Exec(ctx context.Context, query string, args ...any) error {
	return m.ExecIn(ctx, "", query, args...)
}

// ExecIn is Exec with dbname as the default database.
func (m *MariaDB) ExecIn(ctx context.Context, dbname, query string, args ...any) error {
	db, err := m.superDB(dbname)
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, query, args...)
	return err
}

func (m *MariaDB) queryRow(ctx context.Context, query string, dest ...any) error {
	db, err := m.superDB("")
	if err != nil {
		return err
	}
	defer db.Close()
	return db.QueryRowContext(ctx, query).Scan(dest...)
}

func (m *MariaDB) superDB(dbname string) (*sql.DB, error) {
	cfg := m.config(m.SuperUser, m.SuperPassword, dbname)
	cfg.InterpolateParams = true
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(connector), nil
}

// CreateDatabase creates a database and returns its name: prefix, an
// underscore and a number unique within the server. GRANT … ON db.* reads
// the name as a pattern in which _ and % are wildcards and \ escapes; escape
// them to grant on exactly this database.
func (m *MariaDB) CreateDatabase(t testing.TB, prefix string) string {
	t.Helper()
	name := uniqueName(t, prefix, &m.seq, 64)
	if err := m.Exec(t.Context(), "CREATE DATABASE "+quoteIdent(name)); err != nil {
		t.Fatalf("dbtest: create database %q: %v", name, err)
	}
	return name
}

// CreateUser creates the account name@'%' with password and no privileges
// and returns its name: prefix, an underscore and a number unique within the
// server. See [MariaDB.CreateUserAt] for other host parts.
func (m *MariaDB) CreateUser(t testing.TB, prefix, password string) string {
	t.Helper()
	return m.CreateUserAt(t, prefix, "%", password)
}

// CreateUserAt creates the account name@host with password and no privileges
// and returns its name. Only hosts matching 127.0.0.1 (such as '%',
// '127.0.0.1' or '127.%') can log in over TCP; 'localhost' only over the
// server's unix socket.
func (m *MariaDB) CreateUserAt(t testing.TB, prefix, host, password string) string {
	t.Helper()
	name, err := m.CreateUserAtContext(t.Context(), prefix, host, password)
	if err != nil {
		t.Fatal(err)
	}
	return name
}

// CreateUserContext is CreateUser for callers that are not tests: it
// returns the error instead of failing a test.
func (m *MariaDB) CreateUserContext(ctx context.Context, prefix, password string) (string, error) {
	return m.CreateUserAtContext(ctx, prefix, "%", password)
}

// CreateUserAtContext is CreateUserAt for callers that are not tests.
func (m *MariaDB) CreateUserAtContext(ctx context.Context, prefix, host, password string) (string, error) {
	name, err := nextName(prefix, &m.seq, 128)
	if err != nil {
		return "", err
	}
	if err := m.Exec(ctx, "CREATE USER ?@? IDENTIFIED BY ?", name, host, password); err != nil {
		return "", fmt.Errorf("dbtest: create user %q@%q: %w", name, host, err)
	}
	return name, nil
}

// quoteIdent quotes a MariaDB identifier.
func quoteIdent(s string) string {
	return "`" + strings.ReplaceAll(s, "`", "``") + "`"
}
