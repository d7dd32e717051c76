package keyring

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func newTestKeyring(t *testing.T) (*Keyring, MasterKey) {
	t.Helper()
	mk, err := NewMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	kr, err := New(mk)
	if err != nil {
		t.Fatal(err)
	}
	return kr, mk
}

func TestSealOpenRoundTrip(t *testing.T) {
	kr, mk := newTestKeyring(t)
	for _, pt := range [][]byte{{}, []byte("x"), bytes.Repeat([]byte("secret"), 20000)} {
		sealed, id, err := kr.Seal(pt, []byte("arn|v1"))
		if err != nil {
			t.Fatal(err)
		}
		if id != mk.ID {
			t.Errorf("key id = %q, want %q", id, mk.ID)
		}
		// (Short values can occur in random ciphertext by chance.)
		if len(pt) >= 16 && bytes.Contains(sealed, pt[:16]) {
			t.Error("sealed envelope contains the plaintext")
		}
		got, err := kr.Open(sealed, []byte("arn|v1"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, pt) {
			t.Errorf("round trip changed the value")
		}
	}
}

func TestSealIsRandomised(t *testing.T) {
	kr, _ := newTestKeyring(t)
	a, _, _ := kr.Seal([]byte("same"), []byte("ad"))
	b, _, _ := kr.Seal([]byte("same"), []byte("ad"))
	if bytes.Equal(a, b) {
		t.Fatal("two seals of the same value are identical")
	}
}

func TestOpenRejects(t *testing.T) {
	kr, _ := newTestKeyring(t)
	other, _ := newTestKeyring(t)
	sealed, _, err := kr.Seal([]byte("value"), []byte("arn-a|v1"))
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		b := bytes.Clone(sealed)
		b[i] ^= 1
		return b
	}
	cases := []struct {
		name   string
		kr     *Keyring
		sealed []byte
		ad     string
	}{
		{"other additional data", kr, sealed, "arn-b|v1"},
		{"other version", kr, sealed, "arn-a|v2"},
		{"other master key", other, sealed, "arn-a|v1"},
		{"flipped format byte", kr, flip(0), "arn-a|v1"},
		{"flipped wrapped key", kr, flip(len(sealed) - 60), "arn-a|v1"},
		{"flipped ciphertext", kr, flip(len(sealed) - 1), "arn-a|v1"},
		{"truncated", kr, sealed[:len(sealed)-1], "arn-a|v1"},
		{"empty", kr, nil, "arn-a|v1"},
		{"header only", kr, sealed[:3], "arn-a|v1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := c.kr.Open(c.sealed, []byte(c.ad)); !errors.Is(err, ErrDecrypt) {
				t.Fatalf("Open = %v, want ErrDecrypt", err)
			}
		})
	}
}

func TestOlderKeysStillOpen(t *testing.T) {
	old, oldKey := newTestKeyring(t)
	sealed, _, _ := old.Seal([]byte("v"), nil)
	newKey, _ := NewMasterKey()
	kr, err := New(newKey, oldKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kr.Open(sealed, nil); err != nil {
		t.Fatalf("open value sealed under the older key: %v", err)
	}
	if _, id, _ := kr.Seal([]byte("v"), nil); id != newKey.ID {
		t.Errorf("sealed with %s, want the current key %s", id, newKey.ID)
	}
	if id, ok := KeyIDOf(sealed); !ok || id != oldKey.ID {
		t.Errorf("KeyIDOf = %q, %v", id, ok)
	}
}

func TestKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "master.key")
	mk, created, err := LoadOrCreateKeyFile(path)
	if err != nil || !created {
		t.Fatalf("create: %v created=%v", err, created)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", fi.Mode().Perm())
	}
	again, created, err := LoadOrCreateKeyFile(path)
	if err != nil || created {
		t.Fatalf("reload: %v created=%v", err, created)
	}
	if again.ID != mk.ID || !bytes.Equal(again.Key, mk.Key) {
		t.Fatal("reloaded a different key")
	}
	os.WriteFile(path, []byte("not a key\n"), 0o600)
	if _, _, err := LoadOrCreateKeyFile(path); err == nil || !strings.Contains(err.Error(), "master key") {
		t.Fatalf("corrupt key file: err = %v", err)
	}
}

func TestParseKey(t *testing.T) {
	hexKey := strings.Repeat("ab", 32)
	if _, err := ParseKey(hexKey); err != nil {
		t.Errorf("hex: %v", err)
	}
	if _, err := ParseKey("c2hvcnQ="); err == nil {
		t.Error("short key accepted")
	}
}

func BenchmarkOpen(b *testing.B) {
	mk, _ := NewMasterKey()
	kr, _ := New(mk)
	sealed, _, _ := kr.Seal(bytes.Repeat([]byte("x"), 200), []byte("arn:aws:secretsmanager:us-east-1:000000000000:secret:a-AbCdEf|v"))
	ad := []byte("arn:aws:secretsmanager:us-east-1:000000000000:secret:a-AbCdEf|v")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := kr.Open(sealed, ad); err != nil {
			b.Fatal(err)
		}
	}
}
