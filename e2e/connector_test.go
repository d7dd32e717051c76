package e2e

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"strings"
	"testing"
	"time"

	rotorclient "github.com/rotor-secrets/rotor/client"
	"github.com/rotor-secrets/rotor/client/sqlconn"
	"github.com/rotor-secrets/rotor/internal/dbtest"
)

const connWorkers = 6

// TestConnectorZeroFailedQueries: an application reads its database secret
// through Rotor's caching client (TTL one hour, so only the connector's
// RefreshNow picks up new credentials) and runs SELECT 1 on a fresh
// connection per query from several goroutines, through the database/sql
// connectors, while 30 rotations run: 10 single-user and 10
// alternating-users on PostgreSQL, 10 single-user on MariaDB. Not one query
// may fail: the single-user window and the credentials left behind by
// alternating users are healed by refresh and retry.
func TestConnectorZeroFailedQueries(t *testing.T) {
	pg := dbtest.StartPostgres(t)
	maria := dbtest.StartMariaDB(t)
	srv := startRotationServer(t, 5)
	c := client(t, srv)
	cache := rotorclient.New(c, rotorclient.Config{TTL: time.Hour})
	t.Cleanup(func() { _ = cache.Close() })
	seen := newSeenPasswords()
	pgd, mariad := pgTarget(t, pg), mariaTarget(t, maria)

	scenarios := []struct {
		name      string
		d         *dbTarget
		fn        string
		user      string
		connector func(sqlconn.Source, string, ...sqlconn.Option) driver.Connector
	}{
		{"postgres single-user", pgd, pgd.single, "conn_single", sqlconn.Postgres},
		{"postgres alternating-users", pgd, pgd.alt, "conn_alt", sqlconn.Postgres},
		{"mariadb single-user", mariad, mariad.single, "conn_single", sqlconn.MySQL},
	}
	const rotationsEach = 10
	var ids []string
	for _, sc := range scenarios {
		id, _ := sc.d.app(t, c, sc.user, seen)
		ids = append(ids, id)
		src := &connCountingSource{cache: cache}
		var log connLog
		db := sql.OpenDB(sc.connector(src, id, sqlconn.WithLogger(log.logger())))
		db.SetMaxIdleConns(0) // every query opens a connection
		app := startConnApp(db, connWorkers)

		ctx, cancel := context.WithTimeout(t.Context(), connWarmup)
		err := app.waitOKSince(ctx, time.Time{})
		cancel()
		if err != nil {
			app.stop()
			db.Close()
			t.Fatalf("%s: %v", sc.name, err)
		}
		t0 := time.Now()
		for range rotationsEach {
			rotateAndWait(t, c, srv, id, sc.fn)
			// A query that started after the rotation ended must succeed
			// before the next one: the application really runs on each
			// rotation's credentials.
			done := time.Now()
			ctx, cancel := context.WithTimeout(t.Context(), connWarmup)
			err := app.waitOKSince(ctx, done)
			cancel()
			if err != nil {
				t.Errorf("%s: %v", sc.name, err)
				break
			}
		}
		elapsed := time.Since(t0)
		ok, failures := app.stop()
		db.Close()

		refused, healed := log.count("database login refused"), log.count("database login healed")
		line := fmt.Sprintf("%s: %d rotations in %v; %d workers ran %d queries on fresh connections, %d failed; "+
			"%d logins refused and retried, %d healed; Get %d, RefreshNow %d",
			sc.name, rotationsEach, elapsed.Round(time.Millisecond), connWorkers, ok+len(failures), len(failures),
			refused, healed, src.gets.Load(), src.refreshNows.Load())
		t.Log(line)
		if len(failures) > 0 {
			var b strings.Builder
			for i, err := range failures {
				if i == 10 {
					b.WriteString("\n  …")
					break
				}
				fmt.Fprintf(&b, "\n  %v", err)
			}
			t.Errorf("%s: %d of %d queries failed, want 0:%s", sc.name, len(failures), ok+len(failures), b.String())
		}
		if ok < rotationsEach {
			t.Errorf("%s: only %d queries succeeded: the workers did not really run", sc.name, ok)
		}
		if refused == 0 {
			t.Errorf("%s: no login was refused: the test did not exercise healing", sc.name)
		}
		for _, err := range failures {
			seen.wantAbsent(t, sc.name+": a query's error", []byte(err.Error()))
		}
		seen.addVersions(t, c, id)
		seen.wantAbsent(t, sc.name+": the connector's log", log.bytes())
	}
	wantNoPasswordsInLogs(t, c, seen, ids, srv)
}
