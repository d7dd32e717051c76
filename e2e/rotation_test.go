package e2e

// Rotation end to end: the built server rotates the passwords of real
// PostgreSQL and MariaDB users (started by internal/dbtest, with password
// authentication) while workers keep logging in with whatever AWSCURRENT
// says; it survives SIGKILL after each step, a database that goes away and
// comes back, and concurrent RotateSecret calls; the AWS CLI drives it. No
// password ever reaches the server's log, nor the database's statement log.
//
// The zero-downtime and failure-window tests load the machine and run alone
// (not in parallel), so that their figures mean something; the others run
// in parallel.

import (
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/rotor-secrets/rotor/internal/dbtest"
)

const loginWorkers = 8

// TestRotationZeroDowntimePostgres: 8 workers keep logging in with fresh
// connections and the AWSCURRENT credentials while 50 alternating-users
// rotations run back to back. Not one login may fail.
func TestRotationZeroDowntimePostgres(t *testing.T) {
	pg := dbtest.StartPostgres(t)
	d := pgTarget(t, pg)
	srv := startRotationServer(t, 5)
	c := client(t, srv)
	seen := newSeenPasswords()
	id, initial := d.app(t, c, "app", seen)
	logStatements(t, pg)

	zeroDowntime(t, d, srv, c, id, initial, 50, seen)

	wantNoPasswordsInFile(t, seen, "PostgreSQL's statement log", pg.LogPath(), "PASSWORD 'SCRAM-SHA-256$")
}

// TestRotationZeroDowntimeMariaDB is the same on MariaDB, with fewer
// rotations.
func TestRotationZeroDowntimeMariaDB(t *testing.T) {
	m := dbtest.StartMariaDB(t)
	d := mariaTarget(t, m)
	srv := startRotationServer(t, 5)
	c := client(t, srv)
	seen := newSeenPasswords()
	id, initial := d.app(t, c, "app", seen)
	generalLog := enableGeneralLog(t, m)

	zeroDowntime(t, d, srv, c, id, initial, 20, seen)

	wantNoPasswordsInFile(t, seen, "MariaDB's general log", generalLog, "IDENTIFIED VIA")
}

func zeroDowntime(t *testing.T, d *dbTarget, srv *server, c *secretsmanager.Client, id string, initial dbCreds, rotations int, seen *seenPasswords) {
	t.Helper()
	v0, _ := mustCreds(t, c, id, "AWSCURRENT")
	f := startFleet(t, c, id, loginWorkers, d.login, seen)
	ctx, cancel := context.WithTimeout(t.Context(), fleetWarmup)
	must(t, f.waitSuccess(ctx, v0))
	cancel()

	t0 := time.Now()
	versions, users := []string{v0}, []string{initial.Username}
	var (
		drained  time.Duration
		rotTimes []time.Duration
	)
	for range rotations {
		ctx, cancel := context.WithTimeout(t.Context(), drainTimeout)
		w, err := f.drain(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		drained += w
		start := time.Now()
		v := rotateAndWait(t, c, srv, id, d.alt)
		rotTimes = append(rotTimes, time.Since(start))
		f.rotated()
		cur, creds := mustCreds(t, c, id, "AWSCURRENT")
		if cur != v {
			t.Fatalf("AWSCURRENT is version %s after the rotation to %s", cur, v)
		}
		versions, users = append(versions, v), append(users, creds.Username)
	}
	elapsed := time.Since(t0)
	// Some logins with the last credentials, then stop.
	ctx, cancel = context.WithTimeout(t.Context(), fleetWarmup)
	must(t, f.waitSuccess(ctx, versions[len(versions)-1]))
	cancel()
	attempts, fetchErrs := f.stop()

	n := countLogins(attempts)
	med, maxRot := durationStats(rotTimes)
	t.Logf("%s: %d alternating-users rotations in %v (each: median %v, max %v; waiting for older logins to end: %v in all); "+
		"%d workers: %d logins succeeded (%d of them across the end of a rotation), %d refused, %d failed otherwise; %d GetSecretValue errors",
		d.kind, rotations, elapsed.Round(time.Millisecond), med.Round(time.Millisecond), maxRot.Round(time.Millisecond), drained.Round(time.Millisecond),
		loginWorkers, n.ok, n.okAcrossRotation, n.authFailed, n.otherFailed, len(fetchErrs))

	if len(fetchErrs) > 0 {
		t.Errorf("%d GetSecretValue calls failed during the rotations; first: %v", len(fetchErrs), fetchErrs[0])
	}
	if failed := n.authFailed + n.otherFailed; failed > 0 {
		t.Errorf("%d of %d logins failed during alternating-users rotations, want 0:%s", failed, len(attempts), describeFailures(attempts, t0, 10))
	}
	if n.ok < rotations {
		t.Errorf("only %d logins succeeded: the workers did not really run during the rotations", n.ok)
	}
	if distinct := len(distinct(versions)); distinct != rotations+1 {
		t.Errorf("%d distinct AWSCURRENT versions over %d rotations, want %d: %v", distinct, rotations, rotations+1, versions)
	}
	for i, u := range users {
		want := initial.Username
		if i%2 == 1 {
			want += "_clone"
		}
		if u != want {
			t.Errorf("after rotation %d AWSCURRENT's user is %q, want %q (users: %v)", i, u, want, users)
			break
		}
	}
	_, cur := mustCreds(t, c, id, "AWSCURRENT")
	d.wantLogin(t, "AWSCURRENT after the rotations", cur)
	_, prev := mustCreds(t, c, id, "AWSPREVIOUS")
	d.wantLogin(t, "AWSPREVIOUS (the other user) after the rotations", prev)
	wantNoPasswordsInLogs(t, c, seen, []string{id}, srv)
}

// TestRotationSingleUserFailureWindow measures what single-user rotation
// costs the same workers: logins with the old password fail between
// setSecret and the moment they fetch the new AWSCURRENT. The figures are
// logged for the documentation; the test asserts only that every rotation
// completes, that failures are refused logins with the old password, and
// that the old password is dead after each rotation.
func TestRotationSingleUserFailureWindow(t *testing.T) {
	const rotations = 10
	pg := dbtest.StartPostgres(t)
	d := pgTarget(t, pg)
	srv := startRotationServer(t, 5)
	c := client(t, srv)
	seen := newSeenPasswords()
	id, initial := d.app(t, c, "app", seen)
	logStatements(t, pg)
	v0, _ := mustCreds(t, c, id, "AWSCURRENT")

	f := startFleet(t, c, id, loginWorkers, d.login, seen)
	ctx, cancel := context.WithTimeout(t.Context(), fleetWarmup)
	must(t, f.waitSuccess(ctx, v0))
	cancel()

	t0 := time.Now()
	var spans []rotationSpan
	prev := v0
	for range rotations {
		s := rotationSpan{start: time.Now()}
		if len(spans) > 0 {
			spans[len(spans)-1].next = s.start
		}
		s.version = rotateAndWait(t, c, srv, id, d.single)
		s.done = time.Now()
		spans = append(spans, s)
		_, old, err := secretCreds(t.Context(), c, id, "", prev)
		must(t, err)
		d.wantRefused(t, "the password of the version before the rotation", old)
		// The window closes when the workers log in with the new password;
		// only then the next rotation starts, so windows never merge.
		ctx, cancel := context.WithTimeout(t.Context(), fleetWarmup)
		must(t, f.waitSuccess(ctx, s.version))
		cancel()
		prev = s.version
	}
	elapsed := time.Since(t0)
	attempts, fetchErrs := f.stop()

	n := countLogins(attempts)
	windows := failureWindows(attempts, spans)
	var (
		toNextOK, failSpan, rotTimes []time.Duration
		perRotation                  []int
		withFailures                 int
	)
	for i, w := range windows {
		rotTimes = append(rotTimes, spans[i].done.Sub(spans[i].start))
		perRotation = append(perRotation, w.failed)
		if w.failed == 0 {
			continue
		}
		withFailures++
		if w.nextOK.IsZero() {
			t.Errorf("rotation %d: no login succeeded after its failures", i+1)
			continue
		}
		toNextOK = append(toNextOK, w.nextOK.Sub(w.firstFail))
		failSpan = append(failSpan, w.lastFail.Sub(w.firstFail))
		if w.failedNew > 0 {
			t.Errorf("rotation %d: %d logins with its own new version's credentials failed", i+1, w.failedNew)
		}
	}
	medWin, maxWin := durationStats(toNextOK)
	medSpan, maxSpan := durationStats(failSpan)
	medRot, maxRot := durationStats(rotTimes)
	t.Logf("single-user postgres: %d rotations in %v (each: median %v, max %v); %d workers: %d logins succeeded, %d refused, %d failed otherwise",
		rotations, elapsed.Round(time.Millisecond), medRot.Round(time.Millisecond), maxRot.Round(time.Millisecond),
		loginWorkers, n.ok, n.authFailed, n.otherFailed)
	t.Logf("single-user failure window: %d of %d rotations had failed logins (per rotation: %v); "+
		"first failure to the next login with the new password: median %v, max %v; first to last failure: median %v, max %v",
		withFailures, rotations, perRotation, medWin.Round(time.Millisecond), maxWin.Round(time.Millisecond),
		medSpan.Round(time.Millisecond), maxSpan.Round(time.Millisecond))

	if len(fetchErrs) > 0 {
		t.Errorf("%d GetSecretValue calls failed during the rotations; first: %v", len(fetchErrs), fetchErrs[0])
	}
	if n.otherFailed > 0 {
		t.Errorf("%d logins failed other than by a refused password:%s", n.otherFailed, describeFailures(onlyOther(attempts), t0, 10))
	}
	_, cur := mustCreds(t, c, id, "AWSCURRENT")
	if cur.Username != initial.Username {
		t.Errorf("single-user rotation changed the user to %q", cur.Username)
	}
	d.wantLogin(t, "AWSCURRENT after the rotations", cur)
	_, old := mustCreds(t, c, id, "AWSPREVIOUS")
	d.wantRefused(t, "AWSPREVIOUS after single-user rotations", old)
	d.wantRefused(t, "the first password", initial)
	wantNoPasswordsInLogs(t, c, seen, []string{id}, srv)
	wantNoPasswordsInFile(t, seen, "PostgreSQL's statement log", pg.LogPath(), "PASSWORD 'SCRAM-SHA-256$")
}

// TestRotationCrashResume kills the server (SIGKILL, by its test hook) right
// after each step's completion is stored, restarts it without the hook on the
// same data, and expects the rotation to complete with exactly one new
// version.
func TestRotationCrashResume(t *testing.T) {
	t.Parallel()
	pg := dbtest.StartPostgres(t)
	d := pgTarget(t, pg)
	for _, step := range []string{"createSecret", "setSecret", "testSecret", "finishSecret"} {
		t.Run(step, func(t *testing.T) {
			t.Parallel()
			seen := newSeenPasswords()
			dir := t.TempDir()
			crashing := startCrashingServer(t, dir, step)
			c := client(t, crashing)
			user := "app_" + strings.TrimSuffix(strings.ToLower(step), "secret")
			id, initial := d.app(t, c, user, seen)
			v0, _ := mustCreds(t, c, id, "AWSCURRENT")

			version := rotate(t, c, id, d.alt)
			waitKilled(t, crashing)
			logEntry(t, crashing, "of the crash hook after "+step, func(e map[string]any) bool {
				return e["msg"] == "test hook: killing the process after a rotation step" && e["step"] == step
			})
			// No server runs; whatever the steps did, AWSCURRENT still works.
			d.wantLogin(t, "AWSCURRENT while the server is dead", initial)

			srv := startRotationServer(t, 100, withDataDir(dir))
			c = client(t, srv)
			st := waitStatus(t, srv, id, "a rotation to end after the restart", func(st rotationStatus) bool {
				return st.InProgress == nil && len(st.History) > 0
			})
			if len(st.History) != 1 || st.History[0].VersionId != version || st.History[0].Outcome != "succeeded" {
				t.Errorf("history after the resumed rotation of %s: %s; want one succeeded run of that version", version, st.raw)
			}
			if st.LastRotatedDate == nil {
				t.Errorf("no LastRotatedDate after the resumed rotation: %s", st.raw)
			}
			for _, e := range srv.logs.entries() {
				if e["msg"] == "rotation event" && e["event"] == "RotationStarted" && e["version_id"] != version {
					t.Errorf("after the restart the server started a rotation nobody asked for (version %v) instead of finishing %s", e["version_id"], version)
				}
			}
			stages := versionStages(t, c, id)
			if len(stages) != 2 || !slices.Contains(stages[version], "AWSCURRENT") || !slices.Contains(stages[v0], "AWSPREVIOUS") {
				t.Errorf("versions after the resumed rotation = %v; want %s AWSCURRENT and %s AWSPREVIOUS, and no other", stages, version, v0)
			}
			cur, creds := mustCreds(t, c, id, "AWSCURRENT")
			if cur != version || creds.Username != user+"_clone" {
				t.Errorf("AWSCURRENT is version %s of user %s, want %s of %s_clone", cur, creds.Username, version, user)
			}
			d.wantLogin(t, "AWSCURRENT after the resumed rotation", creds)
			_, prev := mustCreds(t, c, id, "AWSPREVIOUS")
			d.wantLogin(t, "AWSPREVIOUS (the other user) after the resumed rotation", prev)
			wantNoPasswordsInLogs(t, c, seen, []string{id}, crashing, srv)
			if t.Failed() {
				t.Logf("rotation log of the crashed server:\n%s\nrotation log after the restart:\n%s", rotationLog(crashing), rotationLog(srv))
			}
		})
	}
}

// TestRotationDatabaseDown: a rotation that cannot reach its database fails,
// says why, leaves AWSCURRENT alone and retries; once the database is back
// the retry succeeds, and the database and the stored versions agree.
func TestRotationDatabaseDown(t *testing.T) {
	t.Parallel()
	t.Run("alternating users", func(t *testing.T) {
		t.Parallel()
		databaseDown(t, true)
	})
	t.Run("single user", func(t *testing.T) {
		t.Parallel()
		databaseDown(t, false)
	})

	// The database goes away after setSecret changed the password: the
	// retry must resume with the same pending password, not make another.
	t.Run("single user, down after setSecret", func(t *testing.T) {
		t.Parallel()
		pg := dbtest.StartPostgres(t)
		d := pgTarget(t, pg)
		seen := newSeenPasswords()
		dir := t.TempDir()
		crashing := startCrashingServer(t, dir, "setSecret")
		c := client(t, crashing)
		id, initial := d.app(t, c, "app", seen)
		v0, _ := mustCreds(t, c, id, "AWSCURRENT")
		version := rotate(t, c, id, d.single)
		waitKilled(t, crashing)
		// setSecret is done: the database has the pending password (the
		// single-user window is open).
		d.wantRefused(t, "AWSCURRENT's password after a single-user setSecret", initial)
		pg.Stop(t)

		srv := startRotationServer(t, 1000, withDataDir(dir))
		c = client(t, srv)
		st := waitStatus(t, srv, id, "a failed testSecret", func(st rotationStatus) bool {
			return st.InProgress != nil && st.InProgress.Attempt >= 1
		})
		if p := st.InProgress; p.VersionId != version || p.NextStep != "testSecret" || !strings.HasPrefix(p.LastError, "testSecret") {
			t.Errorf("status while the database is down = %s; want version %s failing at testSecret", st.raw, version)
		}
		seen.wantAbsent(t, "rotor.GetRotationStatus", st.raw)
		if cur, _ := mustCreds(t, c, id, "AWSCURRENT"); cur != v0 {
			t.Errorf("AWSCURRENT moved to %s while the rotation fails", cur)
		}

		pg.Start(t)
		st = waitRotation(t, srv, id, version)
		if st.History[0].Outcome != "succeeded" {
			t.Fatalf("after the database came back: %s", st.raw)
		}
		if stages := versionStages(t, c, id); len(stages) != 2 {
			t.Errorf("versions = %v, want the first and %s", stages, version)
		}
		cur, creds := mustCreds(t, c, id, "AWSCURRENT")
		if cur != version {
			t.Errorf("AWSCURRENT = %s, want %s", cur, version)
		}
		d.wantLogin(t, "AWSCURRENT after the retry", creds)
		d.wantRefused(t, "the first password after the rotation", initial)
		wantNoPasswordsInLogs(t, c, seen, []string{id}, crashing, srv)
	})

	// The database is up but the master password is wrong: the current
	// credentials keep working throughout, and fixing the master secret is
	// enough for the next retry to succeed.
	t.Run("wrong master password", func(t *testing.T) {
		t.Parallel()
		pg := dbtest.StartPostgres(t)
		d := pgTarget(t, pg)
		srv := startRotationServer(t, 1000)
		c := client(t, srv)
		seen := newSeenPasswords()
		id, initial := d.app(t, c, "app", seen)
		v0, _ := mustCreds(t, c, id, "AWSCURRENT")
		wrong := d.master
		wrong.Password = initialPassword()
		seen.add(wrong.Password)
		putMaster := func(m dbCreds) {
			t.Helper()
			_, err := c.PutSecretValue(t.Context(), &secretsmanager.PutSecretValueInput{SecretId: aws.String(initial.MasterARN), SecretString: aws.String(m.json(t))})
			must(t, err)
		}
		putMaster(wrong)

		version := rotate(t, c, id, d.alt)
		st := waitStatus(t, srv, id, "a failed setSecret", func(st rotationStatus) bool {
			return st.InProgress != nil && st.InProgress.Attempt >= 1
		})
		if p := st.InProgress; p.VersionId != version || p.NextStep != "setSecret" || !strings.HasPrefix(p.LastError, "setSecret") {
			t.Errorf("status with a wrong master password = %s; want version %s failing at setSecret", st.raw, version)
		}
		seen.wantAbsent(t, "rotor.GetRotationStatus", st.raw)
		logEntry(t, srv, "RotationFailed of "+version, rotationEvent("RotationFailed", id, version))
		d.wantLogin(t, "AWSCURRENT while the rotation fails", initial)
		if cur, _ := mustCreds(t, c, id, "AWSCURRENT"); cur != v0 {
			t.Errorf("AWSCURRENT moved to %s while the rotation fails", cur)
		}

		putMaster(d.master)
		st = waitRotation(t, srv, id, version)
		if st.History[0].Outcome != "succeeded" || st.History[0].Attempts < 2 {
			t.Errorf("after the master secret was fixed: %s; want a success after retries", st.raw)
		}
		_, creds := mustCreds(t, c, id, "AWSCURRENT")
		d.wantLogin(t, "AWSCURRENT after the retry", creds)
		wantNoPasswordsInLogs(t, c, seen, []string{id, initial.MasterARN}, srv)
	})
}

func databaseDown(t *testing.T, alternating bool) {
	pg := dbtest.StartPostgres(t)
	d := pgTarget(t, pg)
	srv := startRotationServer(t, 1000) // retry until the database is back
	c := client(t, srv)
	seen := newSeenPasswords()
	id, initial := d.app(t, c, "app", seen)
	v0, _ := mustCreds(t, c, id, "AWSCURRENT")
	fn := d.single
	if alternating {
		fn = d.alt
	}

	pg.Stop(t)
	version := rotate(t, c, id, fn)
	st := waitStatus(t, srv, id, "two failed attempts", func(st rotationStatus) bool {
		return st.InProgress != nil && st.InProgress.Attempt >= 2
	})
	p := st.InProgress
	if p.VersionId != version || p.NextStep != "setSecret" || !strings.HasPrefix(p.LastError, "setSecret") || p.GaveUp || p.NextRetryDate == nil {
		t.Errorf("status while the database is down = %s; want version %s failing at setSecret, a next retry, not given up", st.raw, version)
	}
	seen.wantAbsent(t, "rotor.GetRotationStatus", st.raw)
	ev := logEntry(t, srv, "RotationFailed of "+version, rotationEvent("RotationFailed", id, version))
	if e, _ := ev["error"].(string); !strings.Contains(e, "setSecret") {
		t.Errorf("RotationFailed event %v does not name setSecret", ev)
	}
	if cur, _ := mustCreds(t, c, id, "AWSCURRENT"); cur != v0 {
		t.Errorf("AWSCURRENT moved to %s while the rotation fails", cur)
	}
	if stages := versionStages(t, c, id); !slices.Contains(stages[v0], "AWSCURRENT") || !slices.Contains(stages[version], "AWSPENDING") {
		t.Errorf("versions while the rotation fails = %v", stages)
	}

	pg.Start(t)
	st = waitRotation(t, srv, id, version)
	if r := st.History[0]; r.Outcome != "succeeded" || r.Attempts < 3 {
		t.Fatalf("after the database came back: %s; want a success after the failed attempts", st.raw)
	}
	cur, creds := mustCreds(t, c, id, "AWSCURRENT")
	if cur != version {
		t.Errorf("AWSCURRENT = %s, want %s", cur, version)
	}
	d.wantLogin(t, "AWSCURRENT after the retry", creds)
	if alternating {
		if creds.Username != "app_clone" {
			t.Errorf("AWSCURRENT's user = %q, want app_clone", creds.Username)
		}
		d.wantLogin(t, "AWSPREVIOUS (the other user)", initial)
	} else {
		d.wantRefused(t, "the old password", initial)
	}
	wantNoPasswordsInLogs(t, c, seen, []string{id}, srv)
}

// TestRotationConcurrentRotateSecret: of 20 simultaneous RotateSecret calls
// on one secret exactly one starts a rotation. The database is down during
// the calls, so that the winner's rotation cannot finish before the last
// call arrives (a call after it may rightly start another).
func TestRotationConcurrentRotateSecret(t *testing.T) {
	t.Parallel()
	const callers = 20
	pg := dbtest.StartPostgres(t)
	d := pgTarget(t, pg)
	srv := startRotationServer(t, 1000)
	c := client(t, srv)
	seen := newSeenPasswords()
	id, _ := d.app(t, c, "app", seen)
	v0, _ := mustCreds(t, c, id, "AWSCURRENT")
	pg.Stop(t)

	var (
		wg       sync.WaitGroup
		start    = make(chan struct{})
		errs     = make([]error, callers)
		versions = make([]string, callers)
	)
	for i := range callers {
		wg.Go(func() {
			<-start
			out, err := c.RotateSecret(t.Context(), &secretsmanager.RotateSecretInput{SecretId: aws.String(id), RotationLambdaARN: aws.String(lambdaARN(d.alt))})
			errs[i] = err
			if err == nil {
				versions[i] = aws.ToString(out.VersionId)
			}
		})
	}
	close(start)
	wg.Wait()
	var won []string
	for i, err := range errs {
		if err == nil {
			won = append(won, versions[i])
			continue
		}
		if apiCode(err) != "InvalidRequestException" || !strings.Contains(apiMessage(err), "A previous rotation isn't complete") {
			t.Errorf("call %d: %v; want InvalidRequestException: A previous rotation isn't complete…", i, err)
		}
	}
	if len(won) != 1 {
		t.Fatalf("%d of %d concurrent RotateSecret calls succeeded (versions %v), want 1", len(won), callers, won)
	}
	version := won[0]
	if stages := versionStages(t, c, id); len(stages) != 2 || !slices.Contains(stages[version], "AWSPENDING") || !slices.Contains(stages[v0], "AWSCURRENT") {
		t.Errorf("versions after %d concurrent calls = %v; want %s AWSCURRENT and %s AWSPENDING only", callers, stages, v0, version)
	}

	pg.Start(t)
	st := waitRotation(t, srv, id, version)
	if st.History[0].Outcome != "succeeded" {
		t.Fatalf("the rotation did not succeed: %s", st.raw)
	}
	if stages := versionStages(t, c, id); len(stages) != 2 || !slices.Contains(stages[version], "AWSCURRENT") {
		t.Errorf("versions after the rotation = %v; want two, %s AWSCURRENT", stages, version)
	}
	_, creds := mustCreds(t, c, id, "AWSCURRENT")
	d.wantLogin(t, "AWSCURRENT after the rotation", creds)
	wantNoPasswordsInLogs(t, c, seen, []string{id}, srv)
}

// cliDate is a timestamp as the AWS CLI prints it: epoch seconds (CLI v1
// without a config file) or ISO 8601.
type cliDate struct{ time.Time }

func (d *cliDate) UnmarshalJSON(b []byte) error {
	var f float64
	if json.Unmarshal(b, &f) == nil {
		d.Time = time.UnixMilli(int64(f * 1000))
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	d.Time = t
	return err
}

type cliRotation struct {
	ARN, Name         string
	RotationEnabled   *bool
	RotationLambdaARN string
	RotationRules     *struct {
		AutomaticallyAfterDays *int64
		ScheduleExpression     string
		Duration               string
	}
	LastRotatedDate, NextRotationDate *cliDate
	VersionIdsToStages                map[string][]string
}

// TestRotationAWSCLI: rotate-secret, describe-secret and
// cancel-rotate-secret of the AWS CLI, and `rotor secret rotation-status`.
func TestRotationAWSCLI(t *testing.T) {
	t.Parallel()
	pg := dbtest.StartPostgres(t)
	d := pgTarget(t, pg)
	srv := startRotationServer(t, 100)
	c := client(t, srv)
	seen := newSeenPasswords()
	id, _ := d.app(t, c, "app", seen)
	cli := newAWSCLI(t, srv)
	// The server has the test's root key (its credentials file has none):
	// give the CLI a credentials file with it.
	credsFile := filepath.Join(t.TempDir(), "credentials")
	must(t, os.WriteFile(credsFile, []byte("[rotor]\naws_access_key_id = "+testAccessKeyID+"\naws_secret_access_key = "+testSecretAccessKey+"\n"), 0o600))
	cli.env = append(cli.env, "AWS_SHARED_CREDENTIALS_FILE="+credsFile) // the last value wins
	fnARN := lambdaARN(fnPGAlternating)

	before := time.Now()
	var rot struct{ ARN, Name, VersionId string }
	cli.json(t, &rot, "rotate-secret", "--secret-id", id, "--rotation-lambda-arn", fnARN,
		"--rotation-rules", `{"ScheduleExpression":"rate(4 hours)"}`)
	if rot.ARN != id || !uuidPattern.MatchString(rot.VersionId) {
		t.Fatalf("rotate-secret = %+v", rot)
	}
	var desc cliRotation
	cli.json(t, &desc, "describe-secret", "--secret-id", id)
	if desc.RotationEnabled == nil || !*desc.RotationEnabled || desc.RotationLambdaARN != fnARN ||
		desc.RotationRules == nil || desc.RotationRules.ScheduleExpression != "rate(4 hours)" || desc.NextRotationDate == nil {
		t.Errorf("describe-secret after rotate-secret = %+v", desc)
	}

	st := waitRotation(t, srv, id, rot.VersionId)
	if st.History[0].Outcome != "succeeded" {
		t.Fatalf("rotation: %s", st.raw)
	}
	desc = cliRotation{}
	cli.json(t, &desc, "describe-secret", "--secret-id", id)
	after := time.Now()
	switch {
	case desc.LastRotatedDate == nil:
		t.Errorf("describe-secret after the rotation has no LastRotatedDate: %+v", desc)
	case desc.LastRotatedDate.Before(before.Add(-time.Second)) || desc.LastRotatedDate.After(after.Add(time.Second)):
		t.Errorf("LastRotatedDate = %v, want between %v and %v", desc.LastRotatedDate.UTC(), before.UTC(), after.UTC())
	}
	// rate(4 hours) rotates in the window of the 4-hour UTC slot after the
	// one of the last rotation, which ends at most 8 hours later.
	if desc.NextRotationDate == nil || !desc.NextRotationDate.After(before) || desc.NextRotationDate.After(after.Add(8*time.Hour)) {
		t.Errorf("NextRotationDate = %v, want within the next 4-hour slot", desc.NextRotationDate)
	}
	if !slices.Contains(desc.VersionIdsToStages[rot.VersionId], "AWSCURRENT") {
		t.Errorf("VersionIdsToStages = %v, want %s AWSCURRENT", desc.VersionIdsToStages, rot.VersionId)
	}
	_, creds := mustCreds(t, c, id, "AWSCURRENT")
	d.wantLogin(t, "AWSCURRENT after the CLI's rotation", creds)

	out := runRotorSecret(t, srv, "rotation-status", id, "-o", "text")
	if !strings.Contains(out, "RotationEnabled:   true") || !strings.Contains(out, "succeeded") || !strings.Contains(out, rot.VersionId) {
		t.Errorf("rotor secret rotation-status:\n%s", out)
	}

	cli.fails(t, "AccessDeniedException", "rotate-secret", "--secret-id", id,
		"--rotation-lambda-arn", lambdaARN("no-such-function"))

	var cancelled struct{ ARN, Name string }
	cli.json(t, &cancelled, "cancel-rotate-secret", "--secret-id", id)
	if cancelled.ARN != id {
		t.Errorf("cancel-rotate-secret = %+v", cancelled)
	}
	desc = cliRotation{}
	cli.json(t, &desc, "describe-secret", "--secret-id", id)
	if desc.RotationEnabled == nil || *desc.RotationEnabled {
		t.Errorf("describe-secret after cancel-rotate-secret: RotationEnabled = %v, want false", desc.RotationEnabled)
	}
	if desc.RotationRules == nil || desc.RotationRules.ScheduleExpression != "rate(4 hours)" {
		t.Errorf("describe-secret after cancel-rotate-secret: RotationRules = %+v, want them kept", desc.RotationRules)
	}
	t.Logf("after cancel-rotate-secret: RotationLambdaARN %q, NextRotationDate %v", desc.RotationLambdaARN, desc.NextRotationDate)
	wantNoPasswordsInLogs(t, c, seen, []string{id}, srv)
}

// runRotorSecret runs `rotor secret args…` against srv with the root key
// and returns its stdout; it must succeed.
func runRotorSecret(t *testing.T, srv *server, args ...string) string {
	t.Helper()
	return runRotorAt(t, srv, append([]string{"secret"}, args...)...)
}

// runRotorAt runs `rotor args…` against srv with the root key (configured
// through the environment only) and returns its stdout; it must succeed.
func runRotorAt(t testing.TB, srv *server, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, rotorBin, args...)
	cmd.Env = append(cleanEnv("AWS_", "ROTOR_", "HOME="),
		"HOME="+t.TempDir(),
		"AWS_ENDPOINT_URL_SECRETS_MANAGER="+srv.endpoint(),
		"AWS_ACCESS_KEY_ID="+testAccessKeyID,
		"AWS_SECRET_ACCESS_KEY="+testSecretAccessKey,
		"AWS_REGION="+region,
	)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("rotor %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// logStatements makes PostgreSQL log every statement from now on (the
// rotator's among them) to its log file.
func logStatements(t *testing.T, pg *dbtest.Postgres) {
	t.Helper()
	must(t, pg.Exec(t.Context(), "ALTER SYSTEM SET log_statement = 'all'"))
	must(t, pg.Exec(t.Context(), "SELECT pg_reload_conf()"))
}

// enableGeneralLog makes MariaDB log every statement to a file in its data
// directory, and returns the file's path.
func enableGeneralLog(t *testing.T, m *dbtest.MariaDB) string {
	t.Helper()
	db, err := sql.Open("mysql", m.DSN(m.SuperUser, m.SuperPassword, ""))
	must(t, err)
	defer db.Close()
	var dir string
	must(t, db.QueryRowContext(t.Context(), "SELECT @@datadir").Scan(&dir))
	path := filepath.Join(dir, "rotor-e2e-general.log")
	must(t, m.Exec(t.Context(), "SET GLOBAL general_log_file = ?", path))
	must(t, m.Exec(t.Context(), "SET GLOBAL general_log = ON"))
	return path
}

// wantNoPasswordsInFile fails t if the file at path holds a password seen,
// or does not hold marker (which shows that the log really has the
// statements that set passwords).
func wantNoPasswordsInFile(t *testing.T, seen *seenPasswords, what, path, marker string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("read %s: %v", what, err)
		return
	}
	if !strings.Contains(string(b), marker) {
		t.Errorf("%s (%s, %d bytes) has no %q: it does not show the password statements", what, path, len(b), marker)
	}
	seen.wantAbsent(t, what, b)
	t.Logf("%s: %d bytes, none of %d passwords", what, len(b), seen.count())
}

// onlyOther returns the attempts that failed other than by a refused login.
func onlyOther(attempts []loginAttempt) []loginAttempt {
	var out []loginAttempt
	for _, a := range attempts {
		if a.err != nil && !dbtest.IsAuthFailure(a.err) {
			out = append(out, a)
		}
	}
	return out
}

func distinct(s []string) map[string]bool {
	m := make(map[string]bool, len(s))
	for _, v := range s {
		m[v] = true
	}
	return m
}
