package auth

import (
	"bytes"
	"errors"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rotor-secrets/rotor/internal/keyring"
	"github.com/rotor-secrets/rotor/internal/store"
	"github.com/rotor-secrets/rotor/internal/store/sqlite"
)

func TestStoreKeysSecretKey(t *testing.T) {
	ctx := t.Context()
	st, kr := newFakeStore(), testKeyring(t)
	writer := NewStoreKeys(st, kr)
	for _, k := range []struct {
		id, secret, arn string
		active          bool
	}{
		{"AKRTUSER000000000001", "user-secret", "arn:aws:iam::123456789012:user/alice", true},
		{"AKRTROOT000000000001", "root-secret", "arn:aws:iam::123456789012:root", true},
		{"AKRTOFF0000000000001", "off-secret", "arn:aws:iam::123456789012:user/bob", false},
	} {
		if err := writer.Put(ctx, k.id, k.secret, k.arn, k.active); err != nil {
			t.Fatal(err)
		}
	}

	tests := []struct {
		name       string
		id         string
		wantSecret string
		want       Principal
		wantErr    error
	}{
		{name: "user", id: "AKRTUSER000000000001", wantSecret: "user-secret", want: Principal{ARN: "arn:aws:iam::123456789012:user/alice", AccessKeyID: "AKRTUSER000000000001"}},
		{name: "root", id: "AKRTROOT000000000001", wantSecret: "root-secret", want: Principal{ARN: "arn:aws:iam::123456789012:root", AccessKeyID: "AKRTROOT000000000001", Root: true}},
		{name: "inactive", id: "AKRTOFF0000000000001", wantErr: ErrUnknownKey},
		{name: "unknown", id: "AKRTNONE000000000001", wantErr: ErrUnknownKey},
		{name: "empty", id: "", wantErr: ErrUnknownKey},
		{name: "too long", id: strings.Repeat("A", 129), wantErr: ErrUnknownKey},
	}
	// A fresh StoreKeys over the same store: the first lookup reads and
	// decrypts, the second must be served from memory.
	reader := NewStoreKeys(st, kr)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i := range 2 {
				secret, p, err := reader.SecretKey(ctx, tt.id)
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("lookup %d: err = %v, want %v", i, err, tt.wantErr)
				}
				if secret != tt.wantSecret || p != tt.want {
					t.Fatalf("lookup %d: got %q %+v, want %q %+v", i, secret, p, tt.wantSecret, tt.want)
				}
			}
		})
	}

	t.Run("cached after first lookup", func(t *testing.T) {
		fresh := NewStoreKeys(st, kr)
		before := st.reads.Load()
		for range 5 {
			if _, _, err := fresh.SecretKey(ctx, "AKRTUSER000000000001"); err != nil {
				t.Fatal(err)
			}
			if _, _, err := fresh.SecretKey(ctx, "AKRTOFF0000000000001"); !errors.Is(err, ErrUnknownKey) {
				t.Fatalf("inactive key: err = %v", err)
			}
		}
		if n := st.reads.Load() - before; n != 2 {
			t.Errorf("%d store reads for two keys, want 2", n)
		}
	})
}

func TestStoreKeysPut(t *testing.T) {
	ctx := t.Context()
	st, kr := newFakeStore(), testKeyring(t)
	keys := NewStoreKeys(st, kr)
	const id, arn = "AKRTPUT0000000000001", "arn:aws:iam::123456789012:user/carol"
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	keys.now = func() time.Time { return created }

	if err := keys.Put(ctx, id, "first-secret", arn, true); err != nil {
		t.Fatal(err)
	}
	row, ok := st.row(id)
	if !ok {
		t.Fatal("no row stored")
	}
	if bytes.Contains(row.SealedSecret, []byte("first-secret")) {
		t.Error("the store holds the secret in clear")
	}
	if row.PrincipalARN != arn || !row.Active || !row.CreatedAt.Equal(created) {
		t.Errorf("row = %+v", row)
	}
	if pt, err := kr.Open(row.SealedSecret, []byte("rotor/access-key/"+id)); err != nil || string(pt) != "first-secret" {
		t.Errorf("Open with the documented additional data: %q, %v", pt, err)
	}

	steps := []struct {
		name    string
		secret  string
		active  bool
		wantErr error
	}{
		{name: "replace secret", secret: "second-secret", active: true},
		{name: "deactivate", secret: "second-secret", active: false, wantErr: ErrUnknownKey},
		{name: "reactivate", secret: "third-secret", active: true},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			keys.now = func() time.Time { return created.Add(time.Hour) }
			if err := keys.Put(ctx, id, s.secret, arn, s.active); err != nil {
				t.Fatal(err)
			}
			reads := st.reads.Load()
			secret, _, err := keys.SecretKey(ctx, id)
			if !errors.Is(err, s.wantErr) || (err == nil && secret != s.secret) {
				t.Errorf("SecretKey = %q, %v; want %q, %v", secret, err, s.secret, s.wantErr)
			}
			if st.reads.Load() != reads {
				t.Error("SecretKey read the store after Put")
			}
			if row, _ := st.row(id); !row.CreatedAt.Equal(created) {
				t.Errorf("CreatedAt = %v, want it kept at %v", row.CreatedAt, created)
			}
		})
	}
}

func TestStoreKeysPutInvalid(t *testing.T) {
	keys := NewStoreKeys(newFakeStore(), testKeyring(t))
	const id, arn = "AKRTPUT0000000000001", "arn:aws:iam::123456789012:user/carol"
	tests := []struct {
		name, id, secret, arn string
	}{
		{"short id", "AKRT1", "s3cr3t-value", arn},
		{"long id", strings.Repeat("A", 129), "s3cr3t-value", arn},
		{"id with slash", "AKRT/000000000000001", "s3cr3t-value", arn},
		{"empty secret", id, "", arn},
		{"empty arn", id, "s3cr3t-value", ""},
		{"not an arn", id, "s3cr3t-value", "alice"},
		{"not iam", id, "s3cr3t-value", "arn:aws:s3:::bucket"},
		{"no account", id, "s3cr3t-value", "arn:aws:iam:::root"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := keys.Put(t.Context(), tt.id, tt.secret, tt.arn, true)
			if err == nil {
				t.Fatal("Put succeeded")
			}
			if strings.Contains(err.Error(), "s3cr3t-value") {
				t.Errorf("error reveals the secret: %v", err)
			}
		})
	}
}

func TestStoreKeysFailures(t *testing.T) {
	ctx := t.Context()
	const id, arn = "AKRTFAIL000000000001", "arn:aws:iam::123456789012:user/dave"

	t.Run("store error", func(t *testing.T) {
		st := newFakeStore()
		boom := errors.New("disk on fire")
		st.readErr = boom
		_, _, err := NewStoreKeys(st, testKeyring(t)).SecretKey(ctx, id)
		if !errors.Is(err, boom) || errors.Is(err, ErrUnknownKey) {
			t.Errorf("err = %v, want it to wrap %v", err, boom)
		}
	})

	t.Run("other master key", func(t *testing.T) {
		st := newFakeStore()
		if err := NewStoreKeys(st, testKeyring(t)).Put(ctx, id, "s3cr3t-value", arn, true); err != nil {
			t.Fatal(err)
		}
		_, _, err := NewStoreKeys(st, testKeyring(t)).SecretKey(ctx, id)
		if !errors.Is(err, keyring.ErrDecrypt) {
			t.Errorf("err = %v, want keyring.ErrDecrypt", err)
		}
	})

	t.Run("row moved to another id", func(t *testing.T) {
		st, kr := newFakeStore(), testKeyring(t)
		if err := NewStoreKeys(st, kr).Put(ctx, id, "s3cr3t-value", arn, true); err != nil {
			t.Fatal(err)
		}
		row, _ := st.row(id)
		row.ID = "AKRTTHIEF00000000001"
		st.keys[row.ID] = row
		_, _, err := NewStoreKeys(st, kr).SecretKey(ctx, row.ID)
		if !errors.Is(err, keyring.ErrDecrypt) {
			t.Errorf("err = %v, want keyring.ErrDecrypt", err)
		}
		if err != nil && strings.Contains(err.Error(), "s3cr3t-value") {
			t.Errorf("error reveals the secret: %v", err)
		}
	})
}

// TestStoreKeysConcurrentPuts checks that the cache ends as the store does
// when Puts and lookups race.
func TestStoreKeysConcurrentPuts(t *testing.T) {
	ctx := t.Context()
	st, kr := newFakeStore(), testKeyring(t)
	keys := NewStoreKeys(st, kr)
	const id, arn = "AKRTRACE000000000001", "arn:aws:iam::123456789012:user/erin"
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if err := keys.Put(ctx, id, strings.Repeat("x", i+1), arn, true); err != nil {
				t.Error(err)
			}
		})
		wg.Go(func() {
			keys.SecretKey(ctx, id)
		})
	}
	wg.Wait()
	cached, _, err := keys.SecretKey(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	stored, _, err := NewStoreKeys(st, kr).SecretKey(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if cached != stored {
		t.Errorf("cache holds %q, store holds %q", cached, stored)
	}
}

func TestGenerateKeyPair(t *testing.T) {
	idRE := regexp.MustCompile(`^AKRT[A-Z2-7]{16}$`)
	secretRE := regexp.MustCompile(`^[A-Za-z0-9+/]{40}$`)
	seen := make(map[string]bool)
	for range 100 {
		id, secret, err := GenerateKeyPair()
		if err != nil {
			t.Fatal(err)
		}
		if !idRE.MatchString(id) || !secretRE.MatchString(secret) {
			t.Fatalf("GenerateKeyPair() = %q, %q", id, secret)
		}
		if seen[id] || seen[secret] {
			t.Fatalf("repeated value in %q, %q", id, secret)
		}
		seen[id], seen[secret] = true, true
		if !validKeyID(id) {
			t.Fatalf("Put would refuse generated id %q", id)
		}
	}
}

// The fake must satisfy the interface the real backends do.
var _ store.Store = (*fakeStore)(nil)

// TestStoreKeysSQLite runs the round trip against the embedded backend, so
// that what the fake accepts is what a real store keeps.
func TestStoreKeysSQLite(t *testing.T) {
	ctx := t.Context()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "rotor.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	kr := testKeyring(t)
	const id, arn = "AKRTSQLITE0000000001", "arn:aws:iam::123456789012:root"

	steps := []struct {
		name    string
		secret  string
		active  bool
		wantErr error
	}{
		{name: "create", secret: "first/secret+value", active: true},
		{name: "replace", secret: "second/secret+value", active: true},
		{name: "deactivate", secret: "second/secret+value", active: false, wantErr: ErrUnknownKey},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			if err := NewStoreKeys(st, kr).Put(ctx, id, s.secret, arn, s.active); err != nil {
				t.Fatal(err)
			}
			secret, p, err := NewStoreKeys(st, kr).SecretKey(ctx, id)
			if !errors.Is(err, s.wantErr) {
				t.Fatalf("err = %v, want %v", err, s.wantErr)
			}
			if err != nil {
				return
			}
			want := Principal{ARN: arn, AccessKeyID: id, Root: true}
			if secret != s.secret || p != want {
				t.Errorf("got %q %+v, want %q %+v", secret, p, s.secret, want)
			}
		})
	}
	if _, _, err := NewStoreKeys(st, kr).SecretKey(ctx, "AKRTSQLITE0000000002"); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("unknown key: err = %v, want ErrUnknownKey", err)
	}
}
