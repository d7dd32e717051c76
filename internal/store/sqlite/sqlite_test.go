package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rotor-secrets/rotor/internal/store"
	"github.com/rotor-secrets/rotor/internal/store/sqlite"
	"github.com/rotor-secrets/rotor/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "rotor.db"))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s
	})
}

func open(t testing.TB, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestFilesAreCreatedPrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rotor.db")
	s := open(t, path)
	defer s.Close()
	err := s.Write(t.Context(), func(tx store.Tx) error { return tx.PutMeta(t.Context(), "k", "v") })
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Errorf("%s: %v", filepath.Base(p), err)
			continue
		}
		if got := fi.Mode().Perm(); got != 0o600 {
			t.Errorf("%s: mode %v, want -rw-------", filepath.Base(p), got)
		}
	}
}

func TestReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rotor.db")
	sec := store.Secret{
		ARN:       "arn:aws:secretsmanager:us-east-1:123456789012:secret:kept-AbCdEf",
		Name:      "kept",
		Tags:      []store.Tag{{Key: "b", Value: "1"}, {Key: "a", Value: "2"}},
		CreatedAt: time.UnixMilli(1_700_000_000_123).UTC(),
	}
	ver := store.Version{SecretARN: sec.ARN, VersionID: "v1", CreatedAt: sec.CreatedAt, Sealed: []byte("sealed"), KeyID: "mk-1"}

	s := open(t, path)
	err := s.Write(t.Context(), func(tx store.Tx) error {
		ctx := t.Context()
		if err := tx.CreateSecret(ctx, sec); err != nil {
			return err
		}
		if err := tx.CreateVersion(ctx, ver); err != nil {
			return err
		}
		return tx.SetStage(ctx, sec.ARN, "AWSCURRENT", "v1")
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	for i := range 2 { // reopening twice: the schema is not applied again
		s = open(t, path)
		err = s.Read(t.Context(), func(tx store.Tx) error {
			got, err := tx.SecretByName(t.Context(), "kept")
			if err != nil {
				return err
			}
			if got.ARN != sec.ARN || !got.CreatedAt.Equal(sec.CreatedAt) || len(got.Tags) != 2 || got.Tags[0].Key != "b" {
				t.Errorf("reopen %d: secret %+v, want %+v", i, got, sec)
			}
			v, err := tx.VersionByStage(t.Context(), sec.ARN, "AWSCURRENT")
			if err != nil {
				return err
			}
			if string(v.Sealed) != "sealed" {
				t.Errorf("reopen %d: value %q, want sealed", i, v.Sealed)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("reopen %d: %v", i, err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rotor.db")
	open(t, path).Close()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("PRAGMA user_version = 99"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err := sqlite.Open(t.Context(), path)
	if err == nil {
		s.Close()
		t.Fatal("Open of a schema from the future: got nil error")
	}
	if !strings.Contains(err.Error(), "99") {
		t.Errorf("Open: %v; want the schema version named", err)
	}
}

func TestOpenOddPath(t *testing.T) {
	// A path with the characters a file: URI gives meaning to.
	dir := filepath.Join(t.TempDir(), "a dir?x=1#frag%20")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "rotor.db")
	s := open(t, path)
	err := s.Write(t.Context(), func(tx store.Tx) error { return tx.PutMeta(t.Context(), "k", "v") })
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database not at the given path: %v", err)
	}
}

func TestOpenMissingDirectoryFails(t *testing.T) {
	_, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "missing", "rotor.db"))
	if err == nil {
		t.Fatal("Open in a missing directory: got nil error")
	}
}

// benchStore is a store holding n secrets, each with a 1 KiB AWSCURRENT
// version, as a server's hot path sees them.
func benchStore(b *testing.B, n int) (*sqlite.Store, []string) {
	b.Helper()
	s := open(b, filepath.Join(b.TempDir(), "rotor.db"))
	b.Cleanup(func() { s.Close() })
	ctx := context.Background()
	arns := make([]string, n)
	sealed := make([]byte, 1024)
	err := s.Write(ctx, func(tx store.Tx) error {
		for i := range arns {
			arns[i] = fmt.Sprintf("arn:aws:secretsmanager:us-east-1:123456789012:secret:app/%04d-AbCdEf", i)
			now := time.Now()
			if err := tx.CreateSecret(ctx, store.Secret{ARN: arns[i], Name: fmt.Sprintf("app/%04d", i), CreatedAt: now, LastChangedAt: now}); err != nil {
				return err
			}
			for _, v := range []string{"v1", "v2"} {
				if err := tx.CreateVersion(ctx, store.Version{SecretARN: arns[i], VersionID: v, CreatedAt: now, Sealed: sealed, KeyID: "mk-1"}); err != nil {
					return err
				}
			}
			if err := tx.SetStage(ctx, arns[i], "AWSPREVIOUS", "v1"); err != nil {
				return err
			}
			if err := tx.SetStage(ctx, arns[i], "AWSCURRENT", "v2"); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return s, arns
}

// BenchmarkVersionByStage is GetSecretValue's store work: one Read of the
// secret and of its AWSCURRENT version, from many goroutines.
func BenchmarkVersionByStage(b *testing.B) {
	s, arns := benchStore(b, 1000)
	var next atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx, cancel := context.WithCancel(context.Background()) // cancellable, as a request's is
		defer cancel()
		for pb.Next() {
			arn := arns[next.Add(1)%uint64(len(arns))]
			err := s.Read(ctx, func(tx store.Tx) error {
				if _, err := tx.Secret(ctx, arn); err != nil {
					return err
				}
				v, err := tx.VersionByStage(ctx, arn, "AWSCURRENT")
				if err == nil && len(v.Sealed) != 1024 {
					err = fmt.Errorf("got %d bytes", len(v.Sealed))
				}
				return err
			})
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// putValue is a PutSecretValue's store work: a new version, labels moved,
// the secret's change time updated, in one Write.
func putValue(ctx context.Context, s *sqlite.Store, arn, id string) error {
	return s.Write(ctx, func(tx store.Tx) error {
		sec, err := tx.Secret(ctx, arn)
		if err != nil {
			return err
		}
		if err := tx.CreateVersion(ctx, store.Version{SecretARN: arn, VersionID: id, CreatedAt: time.Now(), Sealed: make([]byte, 1024), KeyID: "mk-1"}); err != nil {
			return err
		}
		cur, err := tx.VersionByStage(ctx, arn, "AWSCURRENT")
		if err != nil {
			return err
		}
		if err := tx.SetStage(ctx, arn, "AWSCURRENT", id); err != nil {
			return err
		}
		if err := tx.SetStage(ctx, arn, "AWSPREVIOUS", cur.VersionID); err != nil {
			return err
		}
		sec.LastChangedAt = time.Now()
		return tx.UpdateSecret(ctx, sec)
	})
}

// BenchmarkWrite is one writer doing PutSecretValue's store work, each
// Write a durable commit of its own.
func BenchmarkWrite(b *testing.B) {
	s, arns := benchStore(b, 100)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := putValue(ctx, s, arns[i%len(arns)], fmt.Sprintf("bench-%d", i)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
}

// BenchmarkWriteParallel is 16 concurrent writers doing PutSecretValue's
// store work on different secrets (the issue 6 target's concurrency);
// writes/commit is how many Writes shared each COMMIT and fsync.
func BenchmarkWriteParallel(b *testing.B) {
	const writers = 16
	s, arns := benchStore(b, 100)
	var commits atomic.Int64
	sqlite.SetBeforeCommit(s, func(context.Context, *sql.Conn) error {
		commits.Add(1)
		return nil
	})
	ctx := context.Background()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	for range writers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= b.N {
					return
				}
				if err := putValue(ctx, s, arns[i%len(arns)], fmt.Sprintf("bench-%d", i)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
	b.ReportMetric(float64(b.N)/float64(commits.Load()), "writes/commit")
}
