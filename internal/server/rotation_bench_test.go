package server

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/rotor-secrets/rotor/internal/iam"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rotor-secrets/rotor/internal/dbtest"
	"github.com/rotor-secrets/rotor/internal/secrets"
)

// benchTarget is one database engine under a rotation benchmark.
type benchTarget struct {
	engine     string
	host       string
	port       int
	superUser  string
	superPass  string
	createUser func(b *testing.B, password string) string
	single     string
	alt        string
}

func benchTargets(b *testing.B) []benchTarget {
	pg := dbtest.StartPostgres(b)
	my := dbtest.StartMariaDB(b)
	return []benchTarget{
		{"postgres", pg.Host, pg.Port, pg.SuperUser, pg.SuperPassword,
			func(b *testing.B, pw string) string { return pg.CreateUser(b, "bench", pw) }, FnPostgresSingle, FnPostgresAlternating},
		{"mariadb", my.Host, my.Port, my.SuperUser, my.SuperPassword,
			func(b *testing.B, pw string) string { return my.CreateUser(b, "bench", pw) }, FnMySQLSingle, FnMySQLAlternating},
	}
}

// runBenchServer runs s until the benchmark ends.
func runBenchServer(b *testing.B, s *Server) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
}

func mustJSON(v any) string {
	out, _ := json.Marshal(v)
	return string(out)
}

// createDBSecret stores an RDS-shaped secret for a fresh database user and
// returns its name.
func createDBSecret(b *testing.B, s *Server, tg benchTarget, masterARN string, n int) string {
	pw := fmt.Sprintf("Initial-Pw-%d-%d", n, time.Now().UnixNano())
	user := tg.createUser(b, pw)
	val := map[string]any{"engine": tg.engine, "host": tg.host, "port": tg.port, "username": user, "password": pw, "masterarn": masterARN}
	if tg.engine == "postgres" {
		val["dbname"] = "postgres"
	}
	name := fmt.Sprintf("bench/%s/%s", tg.engine, user)
	if _, err := s.service.CreateSecret(iam.System(context.Background()), secrets.CreateSecretInput{Name: name, Value: secrets.StringValue(mustJSON(val))}); err != nil {
		b.Fatal(err)
	}
	return name
}

func createMaster(b *testing.B, s *Server, tg benchTarget) string {
	out, err := s.service.CreateSecret(iam.System(context.Background()), secrets.CreateSecretInput{
		Name:  "bench/master/" + tg.engine,
		Value: secrets.StringValue(mustJSON(map[string]any{"engine": tg.engine, "host": tg.host, "port": tg.port, "username": tg.superUser, "password": tg.superPass})),
	})
	if err != nil {
		b.Fatal(err)
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
