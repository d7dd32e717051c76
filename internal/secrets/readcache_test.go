package secrets_test

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/rotor-secrets/rotor/internal/keyring"
	"github.com/rotor-secrets/rotor/internal/secrets"
	"github.com/rotor-secrets/rotor/internal/store"
	"github.com/rotor-secrets/rotor/internal/store/sqlite"
)

// genStore counts read transactions and reports a generation that grows
// with every committed write, as store.Generations asks.
type genStore struct {
	store.Store
	gen, reads atomic.Uint64
}

func (g *genStore) Generation(context.Context) (uint64, error) { return g.gen.Load() + 1, nil }

func (g *genStore) Read(ctx context.Context, fn func(store.Tx) error) error {
	g.reads.Add(1)
	return g.Store.Read(ctx, fn)
}

func (g *genStore) Write(ctx context.Context, fn func(store.Tx) error) error {
	err := g.Store.Write(ctx, fn)
	if err == nil {
		g.gen.Add(1)
	}
	return err
}

func TestReadCache(t *testing.T) {
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "rotor.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	mk, _ := keyring.NewMasterKey()
	kr, _ := keyring.New(mk)
	gs := &genStore{Store: st}
	var denyAll atomic.Bool
	svc := secrets.New(secrets.Config{Region: "us-east-1", AccountID: "000000000000", Store: gs, Keyring: kr,
		Authorize: func(_ context.Context, a *secrets.Access) error {
			if denyAll.Load() && a.SecretARN != "" {
				return secrets.AccessDenied("no")
			}
			return nil
		}})
	ctx := t.Context()
	if _, err := svc.CreateSecret(ctx, secrets.CreateSecretInput{Name: "c", Value: secrets.StringValue("one")}); err != nil {
		t.Fatal(err)
	}
	get := func(in secrets.GetSecretValueInput) (string, error) {
		t.Helper()
		v, err := svc.GetSecretValue(ctx, in)
		return string(v.Value.Reveal()), err
	}
	// The first read fills the cache (and records the access date, a
	// write); the second fills it at the new generation; the third is
	// served from it.
	for range 2 {
		if v, err := get(secrets.GetSecretValueInput{SecretID: "c"}); err != nil || v != "one" {
			t.Fatalf("GetSecretValue = %q, %v", v, err)
		}
	}
	before := gs.reads.Load()
	for range 5 {
		if v, err := get(secrets.GetSecretValueInput{SecretID: "c"}); err != nil || v != "one" {
			t.Fatalf("cached GetSecretValue = %q, %v", v, err)
		}
	}
	if n := gs.reads.Load() - before; n != 0 {
		t.Errorf("%d read transactions for cached reads, want 0", n)
	}

	// Authorization runs on every request, cached or not.
	denyAll.Store(true)
	if _, err := get(secrets.GetSecretValueInput{SecretID: "c"}); secrets.KindOf(err) != secrets.KindAccessDenied {
		t.Errorf("cached read with access revoked: err = %v, want AccessDenied", err)
	}
	denyAll.Store(false)

	// A write invalidates: the new AWSCURRENT is served at once.
	if _, err := svc.PutSecretValue(ctx, secrets.PutSecretValueInput{SecretID: "c", Value: secrets.StringValue("two")}); err != nil {
		t.Fatal(err)
	}
	if v, err := get(secrets.GetSecretValueInput{SecretID: "c"}); err != nil || v != "two" {
		t.Errorf("after PutSecretValue: %q, %v; want two", v, err)
	}
	if v, err := get(secrets.GetSecretValueInput{SecretID: "c", VersionStage: "AWSPREVIOUS"}); err != nil || v != "one" {
		t.Errorf("AWSPREVIOUS: %q, %v; want one", v, err)
	}
	// Keys are distinct per version and stage.
	if v, err := get(secrets.GetSecretValueInput{SecretID: "c"}); err != nil || v != "two" {
		t.Errorf("AWSCURRENT again: %q, %v; want two", v, err)
	}
	// A deleted secret is refused even if it was cached.
	if _, err := get(secrets.GetSecretValueInput{SecretID: "c"}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.DeleteSecret(ctx, secrets.DeleteSecretInput{SecretID: "c"}); err != nil {
		t.Fatal(err)
	}
	if _, err := get(secrets.GetSecretValueInput{SecretID: "c"}); secrets.KindOf(err) != secrets.KindInvalidRequest {
		t.Errorf("after DeleteSecret: err = %v, want InvalidRequest", err)
	}
}

// TestReadCacheVersion: with Config.CacheVersion the cache keys on it, not
// on the store's generation: a commit it does not count (an audit anchor,
// say) leaves entries valid, and a change it counts drops them.
func TestReadCacheVersion(t *testing.T) {
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "rotor.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	mk, _ := keyring.NewMasterKey()
	kr, _ := keyring.New(mk)
	gs := &genStore{Store: st}
	var version atomic.Uint64
	version.Store(1)
	svc := secrets.New(secrets.Config{Region: "us-east-1", AccountID: "000000000000", Store: gs, Keyring: kr,
		CacheVersion: func(context.Context) (uint64, error) { return version.Load(), nil }})
	ctx := t.Context()
	if _, err := svc.CreateSecret(ctx, secrets.CreateSecretInput{Name: "c", Value: secrets.StringValue("one")}); err != nil {
		t.Fatal(err)
	}
	get := func() {
		t.Helper()
		if v, err := svc.GetSecretValue(ctx, secrets.GetSecretValueInput{SecretID: "c"}); err != nil || string(v.Value.Reveal()) != "one" {
			t.Fatalf("GetSecretValue = %q, %v", v.Value.Reveal(), err)
		}
	}
	get()
	version.Add(1) // the access date the first read recorded
	get()
	before := gs.reads.Load()
	if err := gs.Write(ctx, func(tx store.Tx) error { return tx.PutMeta(ctx, "audit.anchor", "x") }); err != nil {
		t.Fatal(err)
	}
	get()
	if n := gs.reads.Load() - before; n != 0 {
		t.Errorf("a commit CacheVersion does not count cost %d read transactions, want 0", n)
	}
	version.Add(1)
	get()
	if n := gs.reads.Load() - before; n != 1 {
		t.Errorf("after CacheVersion moved: %d read transactions, want 1", n)
	}
}
