package sqlconn_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rotor-secrets/rotor/client"
	"github.com/rotor-secrets/rotor/client/sqlconn"
	"github.com/rotor-secrets/rotor/internal/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// source is a Source whose Get answers the current secret, which only
// RefreshNow changes: each call takes the next entry of queue (nil: no
// change).
type source struct {
	mu        sync.Mutex
	cur       *client.Secret
	queue     []*client.Secret
	getErr    error
	gets      int
	refreshes int
}

func (s *source) Get(_ context.Context, _ string) (*client.Secret, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gets++
	if s.getErr != nil {
		return nil, s.getErr
	}
	return s.cur, nil
}

func (s *source) RefreshNow(_ context.Context, _ string) (*client.Secret, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refreshes++
	if len(s.queue) > 0 {
		if next := s.queue[0]; next != nil {
			s.cur = next
		}
		s.queue = s.queue[1:]
	}
	return s.cur, nil
}

// then queues secrets for the next RefreshNow calls.
func (s *source) then(secrets ...*client.Secret) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = append(s.queue, secrets...)
}

func (s *source) counts() (gets, refreshes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gets, s.refreshes
}

// engineHarness is what the suite needs of one database engine.
type engineHarness struct {
	name      string
	connector func(src sqlconn.Source, id string, opts ...sqlconn.Option) driver.Connector
	// user creates a user with password and returns a secret version for it.
	user func(t *testing.T, password string) *creds
	// setPassword changes the user's password in the database.
	setPassword func(t *testing.T, c *creds, password string)
	// missingDB is the error number or SQLSTATE of a login to a database
	// that does not exist.
	missingDB string
	errCode   func(error) string // SQLSTATE or error number; "" if neither
}

// creds are an RDS-shaped secret's fields.
type creds struct {
	Engine   string `json:"engine"`
	Host     string `json:"host"`
	Port     int    `json:"port"`
	Username string `json:"username"`
	Password string `json:"password"`
	DBName   string `json:"dbname,omitempty"`
	version  int
}

// secret returns c as version n of a secret.
func (c creds) secret(t *testing.T) *client.Secret {
	t.Helper()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return &client.Secret{Name: "app", VersionID: "v" + string(rune('a'+c.version)), VersionStages: []string{"AWSCURRENT"}, SecretString: string(b)}
}

// with returns c with another password, as the next version.
func (c creds) with(password string) creds {
	c.Password = password
	c.version++
	return c
}

func postgresHarness(t *testing.T) engineHarness {
	pg := dbtest.SharedPostgres(t)
	return engineHarness{
		name:      "postgres",
		connector: sqlconn.Postgres,
		user: func(t *testing.T, password string) *creds {
			name := pg.CreateUser(t, "app", password)
			return &creds{Engine: "postgres", Host: pg.Host, Port: pg.Port, Username: name, Password: password, DBName: "postgres"}
		},
		setPassword: func(t *testing.T, c *creds, password string) {
			t.Helper()
			sql := "ALTER ROLE " + pgx.Identifier{c.Username}.Sanitize() + " PASSWORD '" + strings.ReplaceAll(password, "'", "''") + "'"
			if err := pg.Exec(t.Context(), sql); err != nil {
				t.Fatalf("alter role: %v", err)
			}
		},
		missingDB: "3D000",
		errCode: func(err error) string {
			var e *pgconn.PgError
			if errors.As(err, &e) {
				return e.Code
			}
			return ""
		},
	}
}

func mariaHarness(t *testing.T) engineHarness {
	m := dbtest.SharedMariaDB(t)
	return engineHarness{
		name:      "mariadb",
		connector: sqlconn.MySQL,
		user: func(t *testing.T, password string) *creds {
			name := m.CreateUser(t, "app", password)
			return &creds{Engine: "mariadb", Host: m.Host, Port: m.Port, Username: name, Password: password}
		},
		setPassword: func(t *testing.T, c *creds, password string) {
			t.Helper()
			if err := m.Exec(t.Context(), "ALTER USER ?@'%' IDENTIFIED BY ?", c.Username, password); err != nil {
				t.Fatalf("alter user: %v", err)
			}
		},
		missingDB: "1044", // access denied to the database: not a refused login
		errCode: func(err error) string {
			var e *mysql.MySQLError
			if errors.As(err, &e) {
				return itoa(int(e.Number))
			}
			return ""
		},
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func engines(t *testing.T) []engineHarness {
	return []engineHarness{postgresHarness(t), mariaHarness(t)}
}

// password returns a random password with characters that break naive
// connection strings.
func password() string { return `p'w\"; @/?=` + rand.Text() }

// logs collects a logger's output.
type logs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logs) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// wantNoPassword fails t if s contains any of the passwords.
func wantNoPassword(t *testing.T, where, s string, passwords ...string) {
	t.Helper()
	for _, pw := range passwords {
		if strings.Contains(s, pw) || strings.Contains(s, pw[len(pw)-26:]) {
			t.Errorf("%s contains a password: %s", where, s)
		}
	}
}

// queryUser opens a connection with connector and returns the user it
// logged in as.
func queryUser(ctx context.Context, e engineHarness, connector driver.Connector) (string, error) {
	db := sql.OpenDB(connector)
	defer db.Close()
	db.SetMaxIdleConns(0)
	q := "SELECT current_user"
	if e.name == "mariadb" {
		q = "SELECT SUBSTRING_INDEX(CURRENT_USER(), '@', 1)"
	}
	var user string
	err := db.QueryRowContext(ctx, q).Scan(&user)
	return user, err
}

func TestConnectUsesSecret(t *testing.T) {
	for _, e := range engines(t) {
		t.Run(e.name, func(t *testing.T) {
			pw := password()
			c := e.user(t, pw)
			src := &source{cur: c.secret(t)}
			got, err := queryUser(t.Context(), e, e.connector(src, "app"))
			if err != nil {
				t.Fatal(err)
			}
			if got != c.Username {
				t.Errorf("logged in as %q, want %q", got, c.Username)
			}
			if gets, refreshes := src.counts(); gets != 1 || refreshes != 0 {
				t.Errorf("Get called %d times, RefreshNow %d times; want 1 and 0", gets, refreshes)
			}
		})
	}
}

func TestHealsChangedPasswordWithOneRefresh(t *testing.T) {
	for _, e := range engines(t) {
		t.Run(e.name, func(t *testing.T) {
			old, fresh := password(), password()
			c := e.user(t, old)
			src := &source{cur: c.secret(t)}
			var l logs
			connector := e.connector(src, "app", sqlconn.WithLogger(l.logger()))
			if _, err := queryUser(t.Context(), e, connector); err != nil {
				t.Fatal(err)
			}

			e.setPassword(t, c, fresh)
			next := c.with(fresh)
			src.then(next.secret(t))
			if _, err := queryUser(t.Context(), e, connector); err != nil {
				t.Fatalf("the connection after the password change: %v", err)
			}
			if _, refreshes := src.counts(); refreshes != 1 {
				t.Errorf("RefreshNow called %d times, want 1", refreshes)
			}
			// And the next connection needs none.
			if _, err := queryUser(t.Context(), e, connector); err != nil {
				t.Fatal(err)
			}
			if _, refreshes := src.counts(); refreshes != 1 {
				t.Errorf("RefreshNow called %d times after another connection, want 1", refreshes)
			}
			if !strings.Contains(l.String(), "database login refused") || !strings.Contains(l.String(), "database login healed") {
				t.Errorf("log lacks the healing: %s", l.String())
			}
			wantNoPassword(t, "the log", l.String(), old, fresh)
		})
	}
}

// TestSingleUserWindow: the password changed in the database, but RefreshNow
// returns the refused version twice more before the new one.
func TestSingleUserWindow(t *testing.T) {
	for _, e := range engines(t) {
		t.Run(e.name, func(t *testing.T) {
			old, fresh := password(), password()
			c := e.user(t, old)
			src := &source{cur: c.secret(t)}
			connector := e.connector(src, "app")
			e.setPassword(t, c, fresh)
			src.then(nil, nil, c.with(fresh).secret(t))
			if _, err := queryUser(t.Context(), e, connector); err != nil {
				t.Fatalf("within the window: %v", err)
			}
			if _, refreshes := src.counts(); refreshes != 3 {
				t.Errorf("RefreshNow called %d times, want 3", refreshes)
			}
		})
	}
}

// TestRefusedForever: a password that never becomes right fails once the
// auth wait is spent, with the driver's error and after one login.
func TestRefusedForever(t *testing.T) {
	for _, e := range engines(t) {
		t.Run(e.name, func(t *testing.T) {
			right, wrong := password(), password()
			c := e.user(t, right)
			src := &source{cur: c.with(wrong).secret(t)}
			var l logs
			connector := e.connector(src, "app", sqlconn.WithAuthWait(300*time.Millisecond), sqlconn.WithLogger(l.logger()))
			_, err := connector.Connect(t.Context())
			if err == nil {
				t.Fatal("a wrong password logged in")
			}
			if !sqlconn.IsAuthFailure(err) {
				t.Fatalf("error %v is not an authentication failure", err)
			}
			if code := e.errCode(err); code != "28P01" && code != "1045" {
				t.Errorf("the driver's error is not reachable: code %q in %v", code, err)
			}
			if !strings.Contains(err.Error(), "login refused (1 attempts)") {
				t.Errorf("error %q does not say how often it tried", err)
			}
			// Waits of 50, 100 and 150 ms: four refreshes.
			if _, refreshes := src.counts(); refreshes != 4 {
				t.Errorf("RefreshNow called %d times, want 4", refreshes)
			}
			wantNoPassword(t, "the error", err.Error(), right, wrong)
			wantNoPassword(t, "the log", l.String(), right, wrong)
		})
	}
}

// TestRetriesBounded: each refresh brings another wrong password; Connect
// gives up after 1+max logins.
func TestRetriesBounded(t *testing.T) {
	for _, e := range engines(t) {
		t.Run(e.name, func(t *testing.T) {
			c := e.user(t, password())
			var wrongs []string
			cur := c.with(password())
			src := &source{cur: cur.secret(t)}
			wrongs = append(wrongs, cur.Password)
			for range 10 {
				cur = cur.with(password())
				wrongs = append(wrongs, cur.Password)
				src.then(cur.secret(t))
			}
			for _, tc := range []struct {
				name       string
				opts       []sqlconn.Option
				refreshes  int
				wantInText string
			}{
				{"default", nil, sqlconn.DefaultMaxAuthRetries, fmt.Sprintf("(%d attempts)", sqlconn.DefaultMaxAuthRetries+1)},
				{"none", []sqlconn.Option{sqlconn.WithMaxAuthRetries(0)}, 0, "(1 attempts)"},
				{"three", []sqlconn.Option{sqlconn.WithMaxAuthRetries(3)}, 3, "(4 attempts)"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					_, before := src.counts()
					_, err := e.connector(src, "app", tc.opts...).Connect(t.Context())
					if !sqlconn.IsAuthFailure(err) {
						t.Fatalf("error %v, want an authentication failure", err)
					}
					if _, after := src.counts(); after-before != tc.refreshes {
						t.Errorf("RefreshNow called %d times, want %d", after-before, tc.refreshes)
					}
					if !strings.Contains(err.Error(), tc.wantInText) {
						t.Errorf("error %q lacks %q", err, tc.wantInText)
					}
					wantNoPassword(t, "the error", err.Error(), wrongs...)
				})
			}
		})
	}
}

func TestOtherErrorsNotRetried(t *testing.T) {
	for _, e := range engines(t) {
		t.Run(e.name, func(t *testing.T) {
			pw := password()
			c := e.user(t, pw)
			missing := *c
			missing.DBName = "no_such_database"
			closed := *c
			closed.Port = 1 // nothing listens there
			for _, tc := range []struct {
				name     string
				c        creds
				wantCode string
			}{
				{"missing database", missing, e.missingDB},
				{"server down", closed, ""},
			} {
				t.Run(tc.name, func(t *testing.T) {
					src := &source{cur: tc.c.secret(t)}
					_, err := e.connector(src, "app").Connect(t.Context())
					if err == nil {
						t.Fatal("connected")
					}
					if sqlconn.IsAuthFailure(err) {
						t.Errorf("%v is an authentication failure", err)
					}
					if got := e.errCode(err); got != tc.wantCode {
						t.Errorf("error code %q, want %q (%v)", got, tc.wantCode, err)
					}
					if strings.HasPrefix(err.Error(), "sqlconn") {
						t.Errorf("the driver's error was wrapped: %v", err)
					}
					if _, refreshes := src.counts(); refreshes != 0 {
						t.Errorf("RefreshNow called %d times, want 0", refreshes)
					}
					wantNoPassword(t, "the error", err.Error(), pw)
				})
			}
		})
	}
}

func TestSourceErrors(t *testing.T) {
	errDown := errors.New("service down")
	pw := password()
	good := creds{Engine: "postgres", Host: "127.0.0.1", Port: 1, Username: "app", Password: pw}
	for _, tc := range []struct {
		name      string
		connector func(sqlconn.Source, string, ...sqlconn.Option) driver.Connector
		src       *source
		want      string
	}{
		{"get fails", sqlconn.Postgres, &source{getErr: errDown}, "sqlconn: read secret app: service down"},
		{"not json", sqlconn.Postgres, &source{cur: &client.Secret{VersionID: "v1", SecretString: "x" + pw}}, "not RDS-shaped JSON"},
		{"port not a number", sqlconn.Postgres, &source{cur: &client.Secret{VersionID: "v1", SecretString: `{"host":"h","username":"u","password":"` + pw + `","port":"` + pw + `"}`}}, "port is not a TCP port number"},
		{"no host", sqlconn.MySQL, &source{cur: &client.Secret{VersionID: "v1", SecretString: `{"username":"u","password":"` + pw + `"}`}}, "no host"},
		{"no username", sqlconn.MySQL, &source{cur: &client.Secret{VersionID: "v1", SecretString: `{"host":"h","password":"` + pw + `"}`}}, "no username"},
		{"wrong engine", sqlconn.MySQL, &source{cur: creds.secret(good, t)}, `engine "postgres" is not a mysql engine`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.connector(tc.src, "app").Connect(t.Context())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			wantNoPassword(t, "the error", err.Error(), pw)
			if tc.src.getErr != nil && !errors.Is(err, errDown) {
				t.Errorf("error %v does not wrap the source's", err)
			}
		})
	}
}

func TestPortAsString(t *testing.T) {
	pg := postgresHarness(t)
	pw := password()
	c := pg.user(t, pw)
	s := c.secret(t)
	s.SecretString = strings.Replace(s.SecretString, `"port":`+itoa(c.Port), `"port":"`+itoa(c.Port)+`"`, 1)
	if _, err := queryUser(t.Context(), pg, sqlconn.Postgres(&source{cur: s}, "app")); err != nil {
		t.Fatal(err)
	}
}

// tracer counts what the pool's own tracer sees.
type tracer struct {
	mu                sync.Mutex
	queries, connects int
}

func (tr *tracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.queries++
	return ctx
}
func (tr *tracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (tr *tracer) TraceConnectStart(ctx context.Context, _ pgx.TraceConnectStartData) context.Context {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.connects++
	return ctx
}
func (tr *tracer) TraceConnectEnd(context.Context, pgx.TraceConnectEndData) {}

// TestPgxBeforeConnect: a pool heals on the connection after the refused
// one, with one refresh, and its own tracer keeps working.
func TestPgxBeforeConnect(t *testing.T) {
	e := postgresHarness(t)
	old, fresh := password(), password()
	c := e.user(t, old)
	src := &source{cur: c.secret(t)}
	cfg, err := pgxpool.ParseConfig("pool_max_conns=2")
	if err != nil {
		t.Fatal(err)
	}
	tr := &tracer{}
	cfg.ConnConfig.Tracer = tr
	var l logs
	cfg.BeforeConnect = sqlconn.PgxBeforeConnect(src, "app", sqlconn.WithLogger(l.logger()))
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var user string
	if err := pool.QueryRow(t.Context(), "SELECT current_user").Scan(&user); err != nil {
		t.Fatal(err)
	}
	if user != c.Username {
		t.Errorf("logged in as %q, want %q", user, c.Username)
	}

	e.setPassword(t, c, fresh)
	src.then(c.with(fresh).secret(t))
	pool.Reset() // the next Acquire makes a new connection
	_, err = pool.Acquire(t.Context())
	if !sqlconn.IsAuthFailure(err) {
		t.Fatalf("the first connection after the change: %v, want a refused login", err)
	}
	wantNoPassword(t, "the error", err.Error(), old, fresh)
	if err := pool.QueryRow(t.Context(), "SELECT current_user").Scan(&user); err != nil {
		t.Fatalf("the second connection after the change: %v", err)
	}
	if _, refreshes := src.counts(); refreshes != 1 {
		t.Errorf("RefreshNow called %d times, want 1", refreshes)
	}
	tr.mu.Lock()
	if tr.queries != 2 || tr.connects != 3 {
		t.Errorf("the pool's tracer saw %d queries and %d connects, want 2 and 3", tr.queries, tr.connects)
	}
	tr.mu.Unlock()
	wantNoPassword(t, "the log", l.String(), old, fresh)
}
