package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/rotor-secrets/rotor/internal/dbtest"
	"github.com/rotor-secrets/rotor/internal/store"
	"github.com/rotor-secrets/rotor/internal/store/postgres"
	"github.com/rotor-secrets/rotor/internal/store/storetest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// freshDSN creates an empty database on the shared server, dropped when t
// ends, and returns a DSN for it.
func freshDSN(t *testing.T) string {
	t.Helper()
	pg := dbtest.SharedPostgres(t)
	name := pg.CreateDatabase(t, "store")
	t.Cleanup(func() {
		err := pg.Exec(context.Background(), "DROP DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
		if err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	return pg.DSN(pg.SuperUser, pg.SuperPassword, name)
}

// freshSchemaDSN creates an empty schema in one database of the shared
// server, dropped when t ends, and returns a DSN whose search_path is that
// schema. The conformance suite opens about a hundred stores, and CREATE
// DATABASE costs a quarter of a second each; a schema costs next to
// nothing. Stores in one database share its advisory locks, so their Writes
// serialise one another; the suite runs them one at a time anyway.
func freshSchemaDSN(t *testing.T) string {
	t.Helper()
	pg := dbtest.SharedPostgres(t)
	conformanceDB.Do(func() {
		conformanceDB.name = pg.CreateDatabase(t, "conformance")
	})
	if conformanceDB.name == "" {
		t.Fatal("no conformance database")
	}
	schema := fmt.Sprintf("store_%d", schemaSeq.Add(1))
	if err := pg.ExecIn(t.Context(), conformanceDB.name, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := pg.ExecIn(context.Background(), conformanceDB.name, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return pg.DSN(pg.SuperUser, pg.SuperPassword, conformanceDB.name) + "&search_path=" + schema
}

var (
	conformanceDB struct {
		sync.Once
		name string
	}
	schemaSeq atomic.Uint64
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := postgres.Open(t.Context(), freshSchemaDSN(t), postgres.Options{})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s
	})
}

func TestMigrations(t *testing.T) {
	t.Run("ReopenIsANoOp", func(t *testing.T) {
		dsn := freshDSN(t)
		for i := range 2 {
			s, err := postgres.Open(t.Context(), dsn, postgres.Options{})
			if err != nil {
				t.Fatalf("Open %d: %v", i, err)
			}
			if i == 0 {
				err = s.Write(t.Context(), func(tx store.Tx) error { return tx.PutMeta(t.Context(), "k", "v") })
			} else {
				err = s.Read(t.Context(), func(tx store.Tx) error {
					v, err := tx.Meta(t.Context(), "k")
					if err == nil && v != "v" {
						t.Errorf("Meta after reopening = %q, want v", v)
					}
					return err
				})
			}
			if err != nil {
				t.Errorf("Open %d: %v", i, err)
			}
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
		}
	})

	t.Run("ConcurrentOpens", func(t *testing.T) {
		dsn := freshDSN(t)
		const n = 4
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				s, err := postgres.Open(t.Context(), dsn, postgres.Options{MaxConns: 2})
				if err == nil {
					err = s.Ping(t.Context())
					s.Close()
				}
				errs[i] = err
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("Open %d: %v", i, err)
			}
		}
	})

	t.Run("RefusesNewerSchema", func(t *testing.T) {
		dsn := freshDSN(t)
		s, err := postgres.Open(t.Context(), dsn, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		conn, err := pgx.Connect(t.Context(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		_, err = conn.Exec(t.Context(), `UPDATE rotor_schema SET level = level + 1`)
		conn.Close(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		_, err = postgres.Open(t.Context(), dsn, postgres.Options{})
		if err == nil || !strings.Contains(err.Error(), "newer than this rotor knows") {
			t.Fatalf("Open of a newer schema: %v, want a refusal", err)
		}
	})
}
