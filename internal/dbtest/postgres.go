package dbtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Postgres is a PostgreSQL server started for tests. The exported fields are
// read-only.
type Postgres struct {
	Host          string // always 127.0.0.1
	Port          int    // free when the server was first started; kept across Stop and Start
	SuperUser     string // "postgres"
	SuperPassword string // random, scram-sha-256 like every password on the server
	Version       string // server_version, e.g. "15.20 (Debian 15.20-0+deb12u1)"

	dir     string // private temporary directory; also the unix socket directory
	data    string
	bin     string // directory of initdb and postgres
	acct    *account
	logPath string
	shared  bool
	seq     atomic.Uint64

	mu   sync.Mutex
	proc *process // nil before the first start
}

// StartPostgres starts a PostgreSQL server for the calling test alone. It is
// stopped and its directory deleted when the test ends.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	p, timing, err := openPostgres(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	ownByTest(t, "postgres", p.logPath, p.close, fmt.Sprintf("postgres %s on %s:%d (%s)", p.Version, p.Host, p.Port, timing))
	return p
}

// StartPostgresServer starts a PostgreSQL server for a caller that is not a
// test (rotor bench): it returns the error instead of failing a test, and
// the caller must Close the server. ctx bounds the start.
func StartPostgresServer(ctx context.Context) (*Postgres, error) {
	p, _, err := openPostgres(ctx, false)
	return p, err
}

// Close stops a server started by StartPostgresServer and deletes its
// directory. Servers from StartPostgres and SharedPostgres are closed by
// their tests.
func (p *Postgres) Close() error { return p.close() }

// pgHBA is the whole pg_hba.conf: password authentication everywhere.
const pgHBA = `# Written by rotor's dbtest: every connection proves its password.
local all all scram-sha-256
host  all all 127.0.0.1/32 scram-sha-256
`

// openPostgres initialises a cluster in a fresh directory and starts it. On
// error nothing is left behind.
func openPostgres(ctx context.Context, shared bool) (_ *Postgres, timing string, err error) {
	bin, err := findPostgres()
	if err != nil {
		return nil, "", err
	}
	acct, err := serverAccount("postgres")
	if err != nil {
		return nil, "", fmt.Errorf("dbtest: postgres: %v", err)
	}
	dir, err := makeBaseDir("pg", acct)
	if err != nil {
		return nil, "", fmt.Errorf("dbtest: postgres: %v", err)
	}
	p := &Postgres{
		Host:          "127.0.0.1",
		SuperUser:     "postgres",
		SuperPassword: randomPassword(),
		dir:           dir,
		data:          filepath.Join(dir, "data"),
		bin:           bin,
		acct:          acct,
		logPath:       filepath.Join(dir, "postgres.log"),
		shared:        shared,
	}
	defer func() {
		if err != nil {
			p.close()
		}
	}()

	t0 := time.Now()
	pwfile := filepath.Join(dir, "pwfile")
	if err := writeFileAs(pwfile, []byte(p.SuperPassword+"\n"), acct); err != nil {
		return nil, "", fmt.Errorf("dbtest: postgres: %v", err)
	}
	err = runTool(filepath.Join(bin, "initdb"), []string{
		"-D", p.data,
		"-U", p.SuperUser,
		"--pwfile=" + pwfile,
		"--auth=scram-sha-256",
		"-E", "UTF8",
		"--locale=C",
		"--no-sync",
	}, dir, acct, p.logPath)
	os.Remove(pwfile)
	if err != nil {
		return nil, "", fmt.Errorf("dbtest: postgres: %v", err)
	}
	if err := writeFileAs(filepath.Join(p.data, "pg_hba.conf"), []byte(pgHBA), acct); err != nil {
		return nil, "", fmt.Errorf("dbtest: postgres: %v", err)
	}
	initdb := time.Since(t0)
	if err := ctx.Err(); err != nil {
		return nil, "", fmt.Errorf("dbtest: postgres: %w", err)
	}

	t1 := time.Now()
	ctx, cancel := context.WithTimeout(ctx, readyBound)
	defer cancel()
	if err := startOnFreePort(ctx, "postgres", &p.Port, p.start, p.checkRefusesWrongPassword); err != nil {
		return nil, "", err
	}
	start := time.Since(t1)
	if err := p.queryRow(ctx, "SELECT current_setting('server_version')", &p.Version); err != nil {
		return nil, "", fmt.Errorf("dbtest: postgres: %v", err)
	}
	return p, fmt.Sprintf("initdb %v, start %v", initdb.Round(time.Millisecond), start.Round(time.Millisecond)), nil
}

// findPostgres returns the directory holding initdb and postgres: the newest
// Debian-packaged version, else the one initdb in PATH belongs to.
func findPostgres() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	version := func(dir string) float64 {
		v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(dir)), 64)
		return v
	}
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	if path, err := exec.LookPath("initdb"); err == nil {
		if path, err := filepath.EvalSymlinks(path); err == nil {
			dirs = append(dirs, filepath.Dir(path))
		}
	}
	for _, dir := range dirs {
		if fileExists(filepath.Join(dir, "initdb")) && fileExists(filepath.Join(dir, "postgres")) {
			return dir, nil
		}
	}
	return "", errors.New("dbtest: PostgreSQL server binaries (initdb, postgres) not found in /usr/lib/postgresql/*/bin or PATH; " +
		"install the postgresql package (scripts/test-deps.sh does so when run as root)")
}

// start starts the server on p.Port and waits until the superuser can log in.
// inUse reports a failure because the port was taken. The caller holds p.mu
// or owns p exclusively.
func (p *Postgres) start() (inUse bool, err error) {
	offset := logSize(p.logPath)
	proc, err := startProcess(filepath.Join(p.bin, "postgres"), []string{
		"-D", p.data,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "port=" + strconv.Itoa(p.Port),
		"-c", "unix_socket_directories=" + p.dir,
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
		"-c", "password_encryption=scram-sha-256",
		"-c", "standard_conforming_strings=on", // quoteLiteral relies on it
		"-c", "max_connections=200",
		"-c", "ssl=off",
	}, p.dir, p.acct, p.logPath)
	if err != nil {
		return false, fmt.Errorf("dbtest: postgres: %v", err)
	}
	p.proc = proc
	err = waitReady(proc, func(ctx context.Context) error {
		return p.CanLogin(ctx, p.SuperUser, p.SuperPassword, "postgres")
	})
	if err != nil {
		proc.stop(syscall.SIGQUIT)
		log := logSince(p.logPath, offset)
		return portInUse(log), fmt.Errorf("dbtest: postgres on port %d: %v%s", p.Port, err, logTail(p.logPath, offset))
	}
	return false, nil
}

// checkRefusesWrongPassword proves that the server checks passwords.
func (p *Postgres) checkRefusesWrongPassword(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err := p.CanLogin(ctx, p.SuperUser, p.SuperPassword+"-wrong", "postgres")
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		return fmt.Errorf("dbtest: refusing to run against a PostgreSQL server that accepts a wrong password "+
			"(trust authentication?); see %s%s", filepath.Join(p.data, "pg_hba.conf"), logTail(p.logPath, 0))
	case errors.As(err, &pgErr) && pgErr.Code == "28P01":
		return nil
	default:
		return fmt.Errorf("dbtest: logging in to PostgreSQL with a wrong password failed with %v, want SQLSTATE 28P01 (invalid_password)%s",
			err, logTail(p.logPath, 0))
	}
}

// close stops the server and deletes its directory.
func (p *Postgres) close() error { return p.lifecycle().close(p.dir) }

// Stop shuts the server down (fast shutdown: open sessions are ended), so
// that logins fail until Start. It may only be used on a dedicated server.
func (p *Postgres) Stop(t testing.TB) {
	t.Helper()
	p.lifecycle().stop(t)
}

// Start starts a server stopped by Stop again, with the same data directory
// and port, and checks again that it refuses a wrong password.
func (p *Postgres) Start(t testing.TB) {
	t.Helper()
	p.lifecycle().restart(t)
}

func (p *Postgres) lifecycle() lifecycle {
	return lifecycle{kind: "PostgreSQL", ctor: "StartPostgres", shared: p.shared, mu: &p.mu, proc: &p.proc,
		logPath: p.logPath, stopSignal: syscall.SIGINT, start: p.start, check: p.checkRefusesWrongPassword}
}

// LogPath is the server's log (initdb's output, then the server's stderr).
func (p *Postgres) LogPath() string { return p.logPath }

// DSN returns a connection URL for pgx (and lib/pq) over TCP without TLS. An
// empty dbname means the postgres database. Every part is escaped, so any
// user name, password or database name works.
func (p *Postgres) DSN(user, password, dbname string) string {
	if dbname == "" {
		dbname = "postgres"
	}
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(user, password),
		Host:     net.JoinHostPort(p.Host, strconv.Itoa(p.Port)),
		Path:     "/" + dbname,
		RawQuery: "sslmode=disable&connect_timeout=10",
	}
	return u.String()
}

// connect opens a session with exactly the given password: pgx would
// otherwise fill an empty one from PGPASSWORD or ~/.pgpass.
func (p *Postgres) connect(ctx context.Context, user, password, dbname string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(p.DSN(user, password, dbname))
	if err != nil {
		return nil, err
	}
	cfg.Password = password
	return pgx.ConnectConfig(ctx, cfg)
}

// CanLogin opens and closes a session as user and returns the driver's error,
// nil when the login succeeds. A wrong password gives a *pgconn.PgError with
// Code "28P01"; a stopped server a connection error. See [IsAuthFailure].
func (p *Postgres) CanLogin(ctx context.Context, user, password, dbname string) error {
	conn, err := p.connect(ctx, user, password, dbname)
	if err != nil {
		return err
	}
	return conn.Close(ctx)
}

// Exec runs sql as the superuser in the postgres database. Without args it
// may hold several statements.
func (p *Postgres) Exec(ctx context.Context, sql string, args ...any) error {
	return p.ExecIn(ctx, "postgres", sql, args...)
}

// ExecIn runs sql as the superuser in database dbname.
func (p *Postgres) ExecIn(ctx context.Context, dbname, sql string, args ...any) error {
	conn, err := p.connect(ctx, p.SuperUser, p.SuperPassword, dbname)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, sql, args...)
	return err
}

func (p *Postgres) queryRow(ctx context.Context, sql string, dest ...any) error {
	conn, err := p.connect(ctx, p.SuperUser, p.SuperPassword, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return conn.QueryRow(ctx, sql).Scan(dest...)
}

// CreateDatabase creates a database owned by the superuser and returns its
// name: prefix, an underscore and a number unique within the server.
func (p *Postgres) CreateDatabase(t testing.TB, prefix string) string {
	t.Helper()
	name := uniqueName(t, prefix, &p.seq, 63)
	if err := p.Exec(t.Context(), "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("dbtest: create database %q: %v", name, err)
	}
	return name
}

// CreateUser creates a login role with password and no other privilege
// (PUBLIC may connect to every database) and returns its name: prefix, an
// underscore and a number unique within the server.
func (p *Postgres) CreateUser(t testing.TB, prefix, password string) string {
	t.Helper()
	name, err := p.CreateUserContext(t.Context(), prefix, password)
	if err != nil {
		t.Fatal(err)
	}
	return name
}

// CreateUserContext is CreateUser for callers that are not tests: it
// returns the error instead of failing a test.
func (p *Postgres) CreateUserContext(ctx context.Context, prefix, password string) (string, error) {
	name, err := nextName(prefix, &p.seq, 63)
	if err != nil {
		return "", err
	}
	sql := "CREATE ROLE " + pgx.Identifier{name}.Sanitize() + " LOGIN PASSWORD " + quoteLiteral(password)
	if err := p.Exec(ctx, sql); err != nil {
		return "", fmt.Errorf("dbtest: create role %q: %w", name, err)
	}
	return name, nil
}

// quoteLiteral quotes s as a PostgreSQL string literal; the server runs with
// standard_conforming_strings, so only quotes need doubling.
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// uniqueName returns prefix_N, failing the test if it exceeds max bytes.
func uniqueName(t testing.TB, prefix string, seq *atomic.Uint64, max int) string {
	t.Helper()
	name, err := nextName(prefix, seq, max)
	if err != nil {
		t.Fatal(err)
	}
	return name
}

// nextName returns prefix_N, or an error if it exceeds max bytes.
func nextName(prefix string, seq *atomic.Uint64, max int) (string, error) {
	if prefix == "" {
		prefix = "dbtest"
	}
	name := prefix + "_" + strconv.FormatUint(seq.Add(1), 10)
	if len(name) > max {
		return "", fmt.Errorf("dbtest: name %q is longer than the server's limit of %d bytes; use a shorter prefix", name, max)
	}
	return name, nil
}
