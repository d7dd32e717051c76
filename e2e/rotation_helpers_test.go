package e2e

// Helpers of the rotation tests (rotation_test.go): servers with fast
// rotation timings, real databases holding an application user, RDS-shaped
// secrets, Rotor's rotor.GetRotationStatus, a fleet of workers that keep
// logging in with whatever AWSCURRENT says, and the search for passwords in
// the logs.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"
	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"

	"github.com/rotor-secrets/rotor/internal/dbtest"
)

const (
	rotationTimeout = time.Minute           // one rotation, RotateSecret to a finished run, under load
	statusPoll      = 20 * time.Millisecond // between two rotor.GetRotationStatus calls
	loginTimeout    = 15 * time.Second      // one login and SELECT 1
	drainTimeout    = 30 * time.Second      // for logins in flight to end
	crashTimeout    = rotationTimeout       // for the crash hook to fire
	logPoll         = 20 * time.Millisecond // between two reads of a server's log
	fleetWarmup     = 30 * time.Second      // for the first login of a fleet
)

// The built-in functions' names.
const (
	fnPGSingle      = "rotor-postgres-single-user"
	fnPGAlternating = "rotor-postgres-alternating-users"
	fnMySQLSingle   = "rotor-mysql-single-user"
	fnMySQLAlt      = "rotor-mysql-alternating-users"
)

// lambdaARN addresses a rotation function as AWS does.
func lambdaARN(fn string) string {
	return "arn:aws:lambda:" + region + ":" + accountID + ":function:" + fn
}

// rotationFlags make retries fast (200ms doubling to 2s), let the queue be
// read every 50ms and allow schedules down to a minute.
func rotationFlags(maxAttempts int) []string {
	return []string{
		"--rotation-retry-base", "200ms", "--rotation-retry-max", "2s",
		"--rotation-poll-interval", "50ms", "--rotation-max-attempts", strconv.Itoa(maxAttempts),
		"--rotation-min-interval", "1m",
	}
}

// startRotationServer starts a server with rotationFlags.
func startRotationServer(t testing.TB, maxAttempts int, opts ...option) *server {
	t.Helper()
	return startServer(t, append([]option{withArgs(rotationFlags(maxAttempts)...)}, opts...)...)
}

// startCrashingServer starts a server on dir with the test hook that makes it
// SIGKILL itself right after storing step's completion. startServer cannot:
// its cleanup wants an exit status 0. This server's cleanup only stops it if
// the hook never fired.
func startCrashingServer(t testing.TB, dir, step string) *server {
	t.Helper()
	s := &server{
		opts: serverOptions{
			dataDir: dir,
			args:    rotationFlags(100),
			env:     []string{"ROTOR_TEST_CRASH_AFTER_STEP=" + step},
		},
		dataDir: dir,
		logs:    newLogBuffer(),
	}
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = s.stop() })
	return s
}

// waitKilled waits for the current run of s to exit and fails t unless
// SIGKILL ended it. The run is then forgotten, so s can be discarded.
func waitKilled(t testing.TB, s *server) {
	t.Helper()
	s.mu.Lock()
	p := s.cur
	s.mu.Unlock()
	select {
	case <-p.exited:
	case <-time.After(crashTimeout):
		t.Fatalf("the server did not kill itself within %v; log:\n%s", crashTimeout, s.logs)
	}
	ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("the server exited with %v, want death by SIGKILL; log:\n%s", p.cmd.ProcessState, s.logs)
	}
	_, _ = s.stop() // forgets the dead process
}

// dbCreds is an RDS-shaped database secret.
type dbCreds struct {
	Engine    string `json:"engine"`
	Host      string `json:"host"`
	Port      int    `json:"port"`
	Username  string `json:"username"`
	Password  string `json:"password"`
	DBName    string `json:"dbname,omitempty"`
	MasterARN string `json:"masterarn,omitempty"`
}

func (c dbCreds) String() string {
	return c.Username + "@" + net.JoinHostPort(c.Host, strconv.Itoa(c.Port))
}

func (c dbCreds) json(t testing.TB) string {
	b, err := json.Marshal(c)
	must(t, err)
	return string(b)
}

func parseCreds(s string) (dbCreds, error) {
	var c dbCreds
	if err := json.Unmarshal([]byte(s), &c); err != nil {
		return dbCreds{}, fmt.Errorf("the secret is not RDS-shaped JSON: %v", err)
	}
	return c, nil
}

// initialPassword is a random password for a user the test creates: letters
// and digits only, so it can be written into SQL as is.
func initialPassword() string { return "Init" + rand.Text() }

// dbTarget is a database server on which the tests create users and rotate
// their passwords.
type dbTarget struct {
	kind        string // for messages: "postgres", "mariadb"
	master      dbCreds
	dbname      string
	single, alt string // built-in functions for this engine
	login       func(ctx context.Context, c dbCreds) error
	createUser  func(t testing.TB, name, password string)
}

// pgTarget prepares pg: a database for the application users.
func pgTarget(t testing.TB, pg *dbtest.Postgres) *dbTarget {
	t.Helper()
	dbname := pg.CreateDatabase(t, "app")
	return &dbTarget{
		kind:   "postgres",
		master: dbCreds{Engine: "postgres", Host: pg.Host, Port: pg.Port, Username: pg.SuperUser, Password: pg.SuperPassword},
		dbname: dbname,
		single: fnPGSingle, alt: fnPGAlternating,
		login: pgLogin,
		createUser: func(t testing.TB, name, password string) {
			t.Helper()
			// The password is letters and digits: no quoting needed.
			err := pg.Exec(t.Context(), "CREATE ROLE "+pgx.Identifier{name}.Sanitize()+" LOGIN PASSWORD '"+password+"'")
			if err != nil {
				t.Fatalf("create role %s: %v", name, err)
			}
		},
	}
}

// mariaTarget prepares m: a database the application users may read.
func mariaTarget(t testing.TB, m *dbtest.MariaDB) *dbTarget {
	t.Helper()
	dbname := m.CreateDatabase(t, "app")
	return &dbTarget{
		kind:   "mariadb",
		master: dbCreds{Engine: "mariadb", Host: m.Host, Port: m.Port, Username: m.SuperUser, Password: m.SuperPassword},
		dbname: dbname,
		single: fnMySQLSingle, alt: fnMySQLAlt,
		login: mysqlLogin,
		createUser: func(t testing.TB, name, password string) {
			t.Helper()
			if err := m.Exec(t.Context(), "CREATE USER ?@'%' IDENTIFIED BY ?", name, password); err != nil {
				t.Fatalf("create user %s: %v", name, err)
			}
			if err := m.Exec(t.Context(), "GRANT SELECT ON `"+dbname+"`.* TO ?@'%'", name); err != nil {
				t.Fatalf("grant to %s: %v", name, err)
			}
		},
	}
}

// app creates the database user name with a random password and stores the
// master credentials and the user's (pointing at the master) as two
// secrets. It returns the user secret's ARN and its credentials.
func (d *dbTarget) app(t testing.TB, c *secretsmanager.Client, name string, seen *seenPasswords) (string, dbCreds) {
	t.Helper()
	pw := initialPassword()
	seen.add(pw, d.master.Password)
	d.createUser(t, name, pw)
	prefix := uniqueName(t)
	master := createString(t, c, prefix+"/master", d.master.json(t))
	user := d.master
	user.Username, user.Password, user.DBName, user.MasterARN = name, pw, d.dbname, aws.ToString(master.ARN)
	out := createString(t, c, prefix+"/app", user.json(t))
	return aws.ToString(out.ARN), user
}

// pgLogin opens a new session with exactly c's credentials and runs
// SELECT 1.
func pgLogin(ctx context.Context, c dbCreds) error {
	u := url.URL{Scheme: "postgres", Host: net.JoinHostPort(c.Host, strconv.Itoa(c.Port)), Path: "/" + c.DBName, RawQuery: "sslmode=disable"}
	cfg, err := pgx.ParseConfig(u.String())
	if err != nil {
		return err
	}
	cfg.User, cfg.Password = c.Username, c.Password // never PGPASSWORD or ~/.pgpass
	cfg.ConnectTimeout = loginTimeout
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		return err
	}
	if one != 1 {
		return fmt.Errorf("SELECT 1 returned %d", one)
	}
	return nil
}

// mysqlLogin opens a new connection with exactly c's credentials and runs
// SELECT 1.
func mysqlLogin(ctx context.Context, c dbCreds) error {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd = c.Username, c.Password
	cfg.Net, cfg.Addr, cfg.DBName = "tcp", net.JoinHostPort(c.Host, strconv.Itoa(c.Port)), c.DBName
	cfg.Timeout = loginTimeout
	cfg.Logger = silentMySQL{}
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return err
	}
	db := sql.OpenDB(connector) // a pool of its own: the connection is new
	defer db.Close()
	var one int
	if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return err
	}
	if one != 1 {
		return fmt.Errorf("SELECT 1 returned %d", one)
	}
	return nil
}

// silentMySQL keeps the driver from printing refused logins to stderr.
type silentMySQL struct{}

func (silentMySQL) Print(...any) {}

// wantLogin fails t unless c logs in.
func (d *dbTarget) wantLogin(t testing.TB, what string, c dbCreds) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), loginTimeout)
	defer cancel()
	if err := d.login(ctx, c); err != nil {
		t.Errorf("%s (%s) does not log in: %v", what, c, err)
	}
}

// wantRefused fails t unless the server refuses c's password.
func (d *dbTarget) wantRefused(t testing.TB, what string, c dbCreds) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), loginTimeout)
	defer cancel()
	if err := d.login(ctx, c); !dbtest.IsAuthFailure(err) {
		t.Errorf("%s (%s): login error %v, want an authentication failure", what, c, err)
	}
}

// secretCreds reads a version of a database secret: by stage, or by id when
// versionID is set.
func secretCreds(ctx context.Context, c *secretsmanager.Client, id, stage, versionID string) (string, dbCreds, error) {
	in := &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)}
	if versionID != "" {
		in.VersionId = aws.String(versionID)
	} else {
		in.VersionStage = aws.String(stage)
	}
	out, err := c.GetSecretValue(ctx, in)
	if err != nil {
		return "", dbCreds{}, err
	}
	creds, err := parseCreds(aws.ToString(out.SecretString))
	return aws.ToString(out.VersionId), creds, err
}

// mustCreds is secretCreds failing t on error.
func mustCreds(t testing.TB, c *secretsmanager.Client, id, stage string) (string, dbCreds) {
	t.Helper()
	v, creds, err := secretCreds(t.Context(), c, id, stage, "")
	if err != nil {
		t.Fatalf("GetSecretValue %s %s: %v", id, stage, err)
	}
	return v, creds
}

// versionStages lists every version of id, deprecated ones included.
func versionStages(t testing.TB, c *secretsmanager.Client, id string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	p := secretsmanager.NewListSecretVersionIdsPaginator(c, &secretsmanager.ListSecretVersionIdsInput{
		SecretId: aws.String(id), IncludeDeprecated: aws.Bool(true), MaxResults: aws.Int32(100),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(t.Context())
		if err != nil {
			t.Fatalf("ListSecretVersionIds %s: %v", id, err)
		}
		for _, v := range page.Versions {
			out[aws.ToString(v.VersionId)] = v.VersionStages
		}
	}
	return out
}

// rotate calls RotateSecret with fn and returns the new version's id.
func rotate(t testing.TB, c *secretsmanager.Client, id, fn string) string {
	t.Helper()
	in := &secretsmanager.RotateSecretInput{SecretId: aws.String(id)}
	if fn != "" {
		in.RotationLambdaARN = aws.String(lambdaARN(fn))
	}
	out, err := c.RotateSecret(t.Context(), in)
	if err != nil {
		t.Fatalf("RotateSecret %s with %s: %v", id, fn, err)
	}
	return aws.ToString(out.VersionId)
}

// rotateAndWait rotates id with fn, waits for the run to finish and checks
// that it succeeded and that its version is AWSCURRENT.
func rotateAndWait(t testing.TB, c *secretsmanager.Client, srv *server, id, fn string) string {
	t.Helper()
	version := rotate(t, c, id, fn)
	st := waitRotation(t, srv, id, version)
	if st.History[0].Outcome != "succeeded" {
		t.Fatalf("rotation to %s: outcome %q, error %q", version, st.History[0].Outcome, st.History[0].Error)
	}
	d, err := c.DescribeSecret(t.Context(), &secretsmanager.DescribeSecretInput{SecretId: aws.String(id)})
	if err != nil {
		t.Fatalf("DescribeSecret %s: %v", id, err)
	}
	if !slices.Contains(d.VersionIdsToStages[version], "AWSCURRENT") {
		t.Fatalf("after the rotation to %s: VersionIdsToStages = %v", version, d.VersionIdsToStages)
	}
	return version
}

// rotationStatus is the answer of rotor.GetRotationStatus.
type rotationStatus struct {
	ARN               string
	Name              string
	RotationEnabled   bool
	RotationLambdaARN string
	RotationRules     *struct {
		AutomaticallyAfterDays *int64
		ScheduleExpression     *string
		Duration               *string
	}
	LastRotatedDate  *float64
	NextRotationDate *float64
	InProgress       *struct {
		VersionId     string
		Mode          string
		Function      string
		NextStep      string
		Attempt       int
		NextRetryDate *float64
		LastError     string
		StartedDate   *float64
		GaveUp        bool
	}
	History []struct {
		VersionId   string
		Mode        string
		Function    string
		StartedDate *float64
		EndedDate   *float64
		Outcome     string
		Attempts    int
		Error       string
	}
	raw []byte
}

var statusHTTP = &http.Client{Timeout: httpTimeout}

// getRotationStatus calls rotor.GetRotationStatus, signed with the root key.
func getRotationStatus(ctx context.Context, srv *server, id string) (rotationStatus, error) {
	body, err := json.Marshal(map[string]string{"SecretId": id})
	if err != nil {
		return rotationStatus{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.endpoint()+"/", bytes.NewReader(body))
	if err != nil {
		return rotationStatus{}, err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "rotor.GetRotationStatus")
	sum := sha256.Sum256(body)
	key := aws.Credentials{AccessKeyID: testAccessKeyID, SecretAccessKey: testSecretAccessKey}
	if err := v4.NewSigner().SignHTTP(ctx, key, req, hex.EncodeToString(sum[:]), "secretsmanager", region, time.Now()); err != nil {
		return rotationStatus{}, err
	}
	resp, err := statusHTTP.Do(req)
	if err != nil {
		return rotationStatus{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return rotationStatus{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return rotationStatus{}, fmt.Errorf("rotor.GetRotationStatus %s: %s %s", id, resp.Status, raw)
	}
	st := rotationStatus{raw: raw}
	if err := json.Unmarshal(raw, &st); err != nil {
		return rotationStatus{}, fmt.Errorf("rotor.GetRotationStatus %s: %v in %s", id, err, raw)
	}
	return st, nil
}

// waitStatus polls rotor.GetRotationStatus until cond holds, for at most
// rotationTimeout.
func waitStatus(t testing.TB, srv *server, id, what string, cond func(rotationStatus) bool) rotationStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), rotationTimeout)
	defer cancel()
	tick := time.NewTicker(statusPoll)
	defer tick.Stop()
	var (
		last    rotationStatus
		lastErr error
	)
	for {
		st, err := getRotationStatus(ctx, srv, id)
		if err == nil && cond(st) {
			return st
		}
		if err == nil {
			last = st
		} else if ctx.Err() == nil {
			lastErr = err
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("%s: not within %v; last status %s (last error %v)", what, rotationTimeout, last.raw, lastErr)
		}
	}
}

// waitRotation waits until no run of id is in progress and the newest run in
// its history is version's.
func waitRotation(t testing.TB, srv *server, id, version string) rotationStatus {
	t.Helper()
	return waitStatus(t, srv, id, "the rotation to version "+version+" to end", func(st rotationStatus) bool {
		return st.InProgress == nil && len(st.History) > 0 && st.History[0].VersionId == version
	})
}

// logEntry waits until srv's log has a JSON line that match accepts.
func logEntry(t testing.TB, srv *server, what string, match func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(rotationTimeout)
	for {
		for _, e := range srv.logs.entries() {
			if match(e) {
				return e
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line %s within %v; log:\n%s", what, rotationTimeout, srv.logs)
		}
		select {
		case <-time.After(logPoll):
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		}
	}
}

// rotationEvent matches the server's log line of a rotation event.
func rotationEvent(event, secretARN, version string) func(map[string]any) bool {
	return func(e map[string]any) bool {
		return e["msg"] == "rotation event" && e["event"] == event && e["secret_arn"] == secretARN && e["version_id"] == version
	}
}

// rotationLog is the lines of s's log that are not request lines: rotation
// events, step failures, the crash hook, start and stop.
func rotationLog(s *server) string {
	var b strings.Builder
	for line := range strings.SplitSeq(s.logs.String(), "\n") {
		var e struct{ Msg string }
		if json.Unmarshal([]byte(line), &e) == nil && e.Msg != "request" {
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// seenPasswords collects every password a test handled, to look for them
// where no password may be.
type seenPasswords struct {
	mu sync.Mutex
	m  map[string]bool
}

func newSeenPasswords() *seenPasswords { return &seenPasswords{m: map[string]bool{}} }

func (s *seenPasswords) add(pws ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, pw := range pws {
		if pw != "" {
			s.m[pw] = true
		}
	}
}

func (s *seenPasswords) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// addVersions adds the password of every version of id, deprecated ones
// included, so that none escapes the search.
func (s *seenPasswords) addVersions(t testing.TB, c *secretsmanager.Client, id string) {
	t.Helper()
	for v := range versionStages(t, c, id) {
		_, creds, err := secretCreds(t.Context(), c, id, "", v)
		if err != nil {
			t.Errorf("GetSecretValue %s version %s: %v", id, v, err)
			continue
		}
		s.add(creds.Password)
	}
}

// wantAbsent fails t for every password found in data.
func (s *seenPasswords) wantAbsent(t testing.TB, where string, data []byte) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for pw := range s.m {
		if bytes.Contains(data, []byte(pw)) {
			t.Errorf("%s contains a password (%d characters, starting %q)", where, len(pw), pw[:3])
		}
	}
}

// wantNoPasswordsInLogs adds every version of the secrets ids and fails t if
// any password the test saw is in the log of any of servers.
func wantNoPasswordsInLogs(t testing.TB, c *secretsmanager.Client, seen *seenPasswords, ids []string, servers ...*server) {
	t.Helper()
	for _, id := range ids {
		seen.addVersions(t, c, id)
	}
	for i, s := range servers {
		seen.wantAbsent(t, fmt.Sprintf("the log of server %d", i+1), []byte(s.logs.String()))
	}
}

// loginAttempt is one worker's try: fetch AWSCURRENT, log in, SELECT 1.
type loginAttempt struct {
	start, end time.Time
	version    string // the AWSCURRENT version fetched
	user       string
	// The number of rotations the driver had seen finish when the
	// attempt started and when it ended.
	epochStart, epochEnd int
	err                  error
}

// loginFleet is a fleet of workers that each keep opening fresh connections
// with the AWSCURRENT credentials, fetched with GetSecretValue for every
// connection, as an application using the secret would.
type loginFleet struct {
	c     *secretsmanager.Client
	id    string
	login func(context.Context, dbCreds) error
	seen  *seenPasswords

	stopping atomic.Bool
	wg       sync.WaitGroup
	stopOnce sync.Once

	mu        sync.Mutex
	epoch     int         // rotations finished, as the driver saw them
	inflight  map[int]int // attempts in flight by epochStart
	changed   chan struct{}
	attempts  []loginAttempt
	fetchErrs []error
}

func startFleet(t testing.TB, c *secretsmanager.Client, id string, workers int, login func(context.Context, dbCreds) error, seen *seenPasswords) *loginFleet {
	f := &loginFleet{c: c, id: id, login: login, seen: seen, inflight: map[int]int{}, changed: make(chan struct{})}
	for range workers {
		f.wg.Add(1)
		go f.work()
	}
	t.Cleanup(func() { f.stop() })
	return f
}

func (f *loginFleet) work() {
	defer f.wg.Done()
	for !f.stopping.Load() {
		f.mu.Lock()
		a := loginAttempt{epochStart: f.epoch}
		f.inflight[a.epochStart]++
		f.mu.Unlock()

		a.start = time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), loginTimeout)
		version, creds, fetchErr := secretCreds(ctx, f.c, f.id, "AWSCURRENT", "")
		if fetchErr == nil {
			f.seen.add(creds.Password)
			a.version, a.user = version, creds.Username
			a.err = f.login(ctx, creds)
		}
		cancel()
		a.end = time.Now()

		f.mu.Lock()
		if f.inflight[a.epochStart]--; f.inflight[a.epochStart] == 0 {
			delete(f.inflight, a.epochStart)
		}
		a.epochEnd = f.epoch
		if fetchErr != nil {
			f.fetchErrs = append(f.fetchErrs, fetchErr)
		} else {
			f.attempts = append(f.attempts, a)
		}
		close(f.changed)
		f.changed = make(chan struct{})
		f.mu.Unlock()
		if fetchErr != nil {
			// Not a login; the test fails on it. Don't spin.
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// stop ends the fleet after the attempts in flight and returns every
// attempt, ordered by end time, and the failed GetSecretValue calls.
func (f *loginFleet) stop() ([]loginAttempt, []error) {
	f.stopOnce.Do(func() {
		f.stopping.Store(true)
		f.wg.Wait()
	})
	f.mu.Lock()
	defer f.mu.Unlock()
	out := slices.Clone(f.attempts)
	sort.SliceStable(out, func(i, j int) bool { return out[i].end.Before(out[j].end) })
	return out, slices.Clone(f.fetchErrs)
}

// rotated tells the fleet that the driver saw another rotation finish.
func (f *loginFleet) rotated() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.epoch++
}

// drain waits until every attempt that started before the last rotation
// finished has ended, and returns how long it waited.
//
// With alternating users, rotation k+1 changes the password of the user
// that was AWSCURRENT before rotation k: credentials stay valid for one
// whole rotation period after they stop being AWSCURRENT, not longer. An
// application holds its credentials for the time of one login here, while
// rotations follow each other in tens of milliseconds, so the driver lets
// logins that may hold such credentials end before it starts the next
// rotation. It never waits for logins that started during the last
// rotation: those hold credentials that must work throughout.
func (f *loginFleet) drain(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	for {
		f.mu.Lock()
		busy := false
		for e := range f.inflight {
			if e < f.epoch {
				busy = true
			}
		}
		changed := f.changed
		f.mu.Unlock()
		if !busy {
			return time.Since(start), nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return time.Since(start), fmt.Errorf("logins in flight did not end: %w", ctx.Err())
		}
	}
}

// waitSuccess waits until a login with version's credentials succeeded.
func (f *loginFleet) waitSuccess(ctx context.Context, version string) error {
	seen := 0
	for {
		f.mu.Lock()
		for _, a := range f.attempts[seen:] {
			if a.err == nil && a.version == version {
				f.mu.Unlock()
				return nil
			}
		}
		seen = len(f.attempts)
		changed := f.changed
		f.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("no successful login with version %s: %w", version, ctx.Err())
		}
	}
}

// loginCounts sums up attempts.
type loginCounts struct {
	ok, authFailed, otherFailed int
	// ok logins whose attempt spanned the end of a rotation: they held
	// credentials that stopped being AWSCURRENT while they logged in.
	okAcrossRotation int
}

func countLogins(attempts []loginAttempt) loginCounts {
	var n loginCounts
	for _, a := range attempts {
		switch {
		case a.err == nil:
			n.ok++
			if a.epochEnd != a.epochStart {
				n.okAcrossRotation++
			}
		case dbtest.IsAuthFailure(a.err):
			n.authFailed++
		default:
			n.otherFailed++
		}
	}
	return n
}

// describeFailures lists up to max failed attempts for a failure message.
func describeFailures(attempts []loginAttempt, t0 time.Time, max int) string {
	var b strings.Builder
	n := 0
	for _, a := range attempts {
		if a.err == nil {
			continue
		}
		if n++; n > max {
			b.WriteString("\n  …")
			break
		}
		fmt.Fprintf(&b, "\n  at +%v (started +%v, rotations seen %d→%d): user %s, version %s: %v",
			a.end.Sub(t0).Round(time.Millisecond), a.start.Sub(t0).Round(time.Millisecond),
			a.epochStart, a.epochEnd, a.user, a.version, a.err)
	}
	return b.String()
}

// rotationSpan is one rotation as the driver saw it.
type rotationSpan struct {
	version     string // the new version
	start, done time.Time
	next        time.Time // when the driver started the following rotation (zero: none)
}

// failureWindow is what the workers saw of one single-user rotation.
type failureWindow struct {
	failed int
	// nextOK is the end of the first login with the new version's
	// credentials after firstFail: when the fleet works again. (A login
	// with the old password may succeed after firstFail, if it was
	// authenticated before the change; it does not close the window.)
	firstFail, nextOK time.Time
	lastFail          time.Time
	failedNew         int // failures with the credentials of the version the rotation made
}

// failureWindows assigns failed logins to the rotation during or after which
// they ended (before the next rotation started).
func failureWindows(attempts []loginAttempt, spans []rotationSpan) []failureWindow {
	out := make([]failureWindow, len(spans))
	for i, s := range spans {
		w := &out[i]
		for _, a := range attempts {
			if a.end.Before(s.start) || (!s.next.IsZero() && !a.end.Before(s.next)) {
				continue
			}
			if a.err != nil {
				if w.failed == 0 {
					w.firstFail = a.end
				}
				w.failed++
				w.lastFail = a.end
				if a.version == s.version {
					w.failedNew++
				}
			}
		}
		if w.failed == 0 {
			continue
		}
		for _, a := range attempts {
			if a.err == nil && a.version == s.version && a.end.After(w.firstFail) {
				w.nextOK = a.end
				break
			}
		}
	}
	return out
}

// durationStats returns the median and the maximum of ds.
func durationStats(ds []time.Duration) (median, maxD time.Duration) {
	if len(ds) == 0 {
		return 0, 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	median = s[len(s)/2]
	if len(s)%2 == 0 {
		median = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return median, s[len(s)-1]
}

// apiMessage is the message of an AWS error.
func apiMessage(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorMessage()
	}
	return ""
}
