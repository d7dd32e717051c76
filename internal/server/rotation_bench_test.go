package server

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rotor-secrets/rotor/internal/dbtest"
	"github.com/rotor-secrets/rotor/internal/iam"
	"github.com/rotor-secrets/rotor/internal/secrets"
)

// benchTarget is one database engine under a rotation benchmark.
type benchTarget struct {
	engine     string
	host       string
	port       int
	superUser  string
	superPass  string
	createUser func(tb testing.TB, password string) string
	single     string
	alt        string
}

func benchTargets(b *testing.B) []benchTarget {
	my := dbtest.StartMariaDB(b)
	return []benchTarget{
		postgresTarget(dbtest.StartPostgres(b)),
		{"mariadb", my.Host, my.Port, my.SuperUser, my.SuperPassword,
			func(tb testing.TB, pw string) string { return my.CreateUser(tb, "bench", pw) }, FnMySQLSingle, FnMySQLAlternating},
	}
}

func postgresTarget(pg *dbtest.Postgres) benchTarget {
	return benchTarget{"postgres", pg.Host, pg.Port, pg.SuperUser, pg.SuperPassword,
		func(tb testing.TB, pw string) string { return pg.CreateUser(tb, "bench", pw) }, FnPostgresSingle, FnPostgresAlternating}
}

// runBenchServer runs s until the benchmark ends.
func runBenchServer(tb testing.TB, s *Server) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	tb.Cleanup(func() { cancel(); <-done })
}

func mustJSON(v any) string {
	out, _ := json.Marshal(v)
	return string(out)
}

// createDBSecret stores an RDS-shaped secret for a fresh database user and
// returns its name.
func createDBSecret(tb testing.TB, s *Server, tg benchTarget, masterARN string, n int) string {
	pw := fmt.Sprintf("Initial-Pw-%d-%d", n, time.Now().UnixNano())
	user := tg.createUser(tb, pw)
	val := map[string]any{"engine": tg.engine, "host": tg.host, "port": tg.port, "username": user, "password": pw, "masterarn": masterARN}
	if tg.engine == "postgres" {
		val["dbname"] = "postgres"
	}
	name := fmt.Sprintf("bench/%s/%s", tg.engine, user)
	if _, err := s.service.CreateSecret(iam.System(context.Background()), secrets.CreateSecretInput{Name: name, Value: secrets.StringValue(mustJSON(val))}); err != nil {
		tb.Fatal(err)
	}
	return name
}

func createMaster(tb testing.TB, s *Server, tg benchTarget) string {
	out, err := s.service.CreateSecret(iam.System(context.Background()), secrets.CreateSecretInput{
		Name:  "bench/master/" + tg.engine,
		Value: secrets.StringValue(mustJSON(map[string]any{"engine": tg.engine, "host": tg.host, "port": tg.port, "username": tg.superUser, "password": tg.superPass})),
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out.ARN
}

// rotateAndWait starts a rotation and polls (every poll) until it finished.
func rotateAndWait(s *Server, name, fn string, poll time.Duration) error {
	ctx := iam.System(context.Background())
	_, version, err := s.service.RotateSecret(ctx, secrets.RotateSecretInput{SecretID: name,
		RotationLambdaARN: "arn:aws:lambda:us-east-1:000000000000:function:" + fn})
	if err != nil {
		return err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		st, err := s.service.RotationStatus(ctx, name)
		if err != nil {
			return err
		}
		if st.InProgress == nil && len(st.History) > 0 && st.History[0].Token == version {
			if st.History[0].Outcome != "succeeded" {
				return fmt.Errorf("rotation of %s: %+v", name, st.History[0])
			}
			return nil
		}
		if p := st.InProgress; p != nil && p.Attempt > 0 {
			return fmt.Errorf("rotation of %s failed: %s", name, p.LastError)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("rotation of %s did not finish: %+v", name, st.InProgress)
		}
		time.Sleep(poll)
	}
}

// BenchmarkRotation measures one complete rotation (RotateSecret → the four
// steps, including the test login → AWSCURRENT moved), per built-in
// function, through the server's engine against real databases. Besides
// ns/op it reports the median and 99th percentile.
func BenchmarkRotation(b *testing.B) {
	s := openTestServer(b)
	runBenchServer(b, s)
	for _, tg := range benchTargets(b) {
		master := createMaster(b, s, tg)
		for _, fn := range []string{tg.single, tg.alt} {
			b.Run(fn, func(b *testing.B) {
				name := createDBSecret(b, s, tg, master, 0)
				var lat []time.Duration
				for b.Loop() {
					t0 := time.Now()
					if err := rotateAndWait(s, name, fn, 100*time.Microsecond); err != nil {
						b.Fatal(err)
					}
					lat = append(lat, time.Since(t0))
				}
				slices.Sort(lat)
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			})
		}
	}
}

// BenchmarkRotate200 measures the wall time to rotate 200 secrets at once
// (alternating users), which the engine runs 8 at a time.
func BenchmarkRotate200(b *testing.B) {
	s := openTestServer(b)
	runBenchServer(b, s)
	for _, tg := range benchTargets(b) {
		master := createMaster(b, s, tg)
		names := make([]string, 200)
		for i := range names {
			names[i] = createDBSecret(b, s, tg, master, i)
		}
		b.Run(tg.alt, func(b *testing.B) {
			for b.Loop() {
				var wg sync.WaitGroup
				errs := make(chan error, len(names))
				for _, name := range names {
					wg.Add(1)
					go func() {
						defer wg.Done()
						errs <- rotateAndWait(s, name, tg.alt, 20*time.Millisecond)
					}()
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					if err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/200-rotations")
		})
	}
}

// The built-in rotators keep the master's connection between rotations and
// close it when the server stops.
func TestRotatorsCloseAtShutdown(t *testing.T) {
	pg := dbtest.StartPostgres(t)
	s := openTestServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	tg := postgresTarget(pg)
	name := createDBSecret(t, s, tg, createMaster(t, s, tg), 0)
	for range 2 {
		if err := rotateAndWait(s, name, tg.alt, time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := pgx.ParseConfig(pg.DSN(pg.SuperUser, pg.SuperPassword, "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.ConnectConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	masterSessions := func() (n int) {
		err := conn.QueryRow(t.Context(), "SELECT count(*) FROM pg_stat_activity WHERE usename = $1 AND application_name = 'rotor'", pg.SuperUser).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := masterSessions(); n != 1 {
		t.Fatalf("%d rotor sessions of the master after two rotations, want 1 (kept for the next)", n)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); masterSessions() != 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the master's session outlived the server")
		}
	}
}
