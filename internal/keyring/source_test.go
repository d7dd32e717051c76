package keyring

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fastParams keep the tests quick; TestPassphraseDefaultParams covers the
// defaults once.
var fastParams = Argon2Params{Time: 1, Memory: 64, Threads: 1, KeyLen: 32}

func TestFileSource(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "master.key")

	t.Run("no create", func(t *testing.T) {
		_, err := FileSource{Path: path, NoCreate: true}.RootKey(t.Context())
		if !errors.Is(err, ErrKeyFileMissing) {
			t.Fatalf("RootKey = %v, want ErrKeyFileMissing", err)
		}
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("NoCreate wrote the file: %v", err)
		}
	})

	var created MasterKey
	first, err := FileSource{Path: path, Created: func(mk MasterKey) { created = mk }}.RootKey(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if created.ID != first.ID {
		t.Errorf("Created got %q, want %q", created.ID, first.ID)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	again, err := FileSource{Path: path, NoCreate: true, Created: func(MasterKey) { t.Error("created again") }}.RootKey(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if again.ID != first.ID || !bytes.Equal(again.Key, first.Key) {
		t.Errorf("second read gave another key")
	}
}

func TestEnvSource(t *testing.T) {
	mk, err := NewMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.StdEncoding.EncodeToString(mk.Key)
	cases := []struct {
		name, value string
		wantErr     string
	}{
		{"base64", b64, ""},
		{"base64 with newline", b64 + "\n", ""},
		{"empty", "", "ROTOR_MASTER_KEY is empty"},
		{"garbage", "not a key at all!", "neither base64 nor hex"},
		{"short", base64.StdEncoding.EncodeToString(mk.Key[:16]), "16 bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := EnvSource{Name: "ROTOR_MASTER_KEY", Value: c.value}.RootKey(t.Context())
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("RootKey = %v, want an error containing %q", err, c.wantErr)
				}
				if c.value != "" && strings.Contains(err.Error(), c.value) {
					t.Errorf("error quotes the value: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != mk.ID || !bytes.Equal(got.Key, mk.Key) {
				t.Errorf("got key %s, want %s", got.ID, mk.ID)
			}
		})
	}
}

func TestPassphraseRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "master.seal")
	pass := []byte("correct horse battery staple")

	_, err := PassphraseSource{Path: path, Passphrase: pass}.RootKey(t.Context())
	if !errors.Is(err, ErrSealMissing) {
		t.Fatalf("without Create: %v, want ErrSealMissing", err)
	}

	var created MasterKey
	mk, err := PassphraseSource{Path: path, Passphrase: pass, Create: true, Params: fastParams,
		Created: func(k MasterKey) { created = k }}.RootKey(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if created.ID != mk.ID {
		t.Errorf("Created got %q, want %q", created.ID, mk.ID)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || fi.Size() != int64(sealFileLen) {
		t.Errorf("seal file mode %v size %d, want 0600 and %d", fi.Mode().Perm(), fi.Size(), sealFileLen)
	}
	raw, _ := os.ReadFile(path)
	if bytes.Contains(raw, mk.Key) || bytes.Contains(raw, pass) {
		t.Fatal("seal file holds the key or the passphrase in clear")
	}

	got, err := PassphraseSource{Path: path, Passphrase: pass, Create: true}.RootKey(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != mk.ID || !bytes.Equal(got.Key, mk.Key) {
		t.Fatalf("reopened key %s, want %s", got.ID, mk.ID)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, raw) {
		t.Error("opening rewrote the seal file")
	}
}

func TestPassphraseWrong(t *testing.T) {
	path := filepath.Join(t.TempDir(), "master.seal")
	mk, _ := NewMasterKey()
	if err := WriteSealFile(path, []byte("the right passphrase"), mk, fastParams); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	for _, pass := range []string{"the wrong passphrase", "the right passphrasf", "x"} {
		_, err := PassphraseSource{Path: path, Passphrase: []byte(pass), Create: true}.RootKey(t.Context())
		if !errors.Is(err, ErrWrongPassphrase) {
			t.Errorf("%q: %v, want ErrWrongPassphrase", pass, err)
		}
		if err != nil && strings.Contains(err.Error(), pass) {
			t.Errorf("error echoes the passphrase: %v", err)
		}
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, before) {
		t.Error("a wrong passphrase changed the seal file")
	}
	if _, err := (PassphraseSource{Path: path}).RootKey(t.Context()); err == nil {
		t.Error("empty passphrase accepted")
	}
}

func TestPassphraseTampered(t *testing.T) {
	pass := []byte("the right passphrase")
	mk, _ := NewMasterKey()
	good := filepath.Join(t.TempDir(), "master.seal")
	if err := WriteSealFile(good, pass, mk, fastParams); err != nil {
		t.Fatal(err)
	}
	orig, _ := os.ReadFile(good)

	rehash := func(b []byte) []byte {
		body := b[:len(b)-32]
		sum := sha256Sum(body)
		return append(append([]byte(nil), body...), sum...)
	}
	cases := []struct {
		name string
		mod  func([]byte) []byte
		want error
	}{
		{"truncated", func(b []byte) []byte { return b[:len(b)-1] }, ErrSealCorrupt},
		{"empty", func([]byte) []byte { return nil }, ErrSealCorrupt},
		{"bit flip in ciphertext", func(b []byte) []byte { b[sealHeaderLen+nonceLen+3] ^= 1; return b }, ErrSealCorrupt},
		{"bit flip in salt", func(b []byte) []byte { b[sealHeaderLen-1] ^= 1; return b }, ErrSealCorrupt},
		{"bad magic", func(b []byte) []byte { b[0] = 'R'; return b }, ErrSealCorrupt},
		{"unknown version", func(b []byte) []byte { b[len(sealMagic)] = 9; return rehash(b) }, ErrSealCorrupt},
		{"huge memory", func(b []byte) []byte { b[len(sealMagic)+5] = 0xff; return rehash(b) }, ErrSealCorrupt},
		// Tampering that fixes the checksum cannot be told from a wrong
		// passphrase, but never yields a key.
		{"salt changed and rehashed", func(b []byte) []byte { b[sealHeaderLen-1] ^= 1; return rehash(b) }, ErrWrongPassphrase},
		{"time changed and rehashed", func(b []byte) []byte { b[len(sealMagic)+4]++; return rehash(b) }, ErrWrongPassphrase},
		{"ciphertext changed and rehashed", func(b []byte) []byte { b[sealHeaderLen+nonceLen] ^= 1; return rehash(b) }, ErrWrongPassphrase},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "master.seal")
			if err := os.WriteFile(path, c.mod(append([]byte(nil), orig...)), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := PassphraseSource{Path: path, Passphrase: pass, Create: true}.RootKey(t.Context())
			if !errors.Is(err, c.want) {
				t.Fatalf("RootKey = %v, want %v", err, c.want)
			}
		})
	}
}

func TestPassphraseParamsStored(t *testing.T) {
	pass := []byte("the right passphrase")
	mk, _ := NewMasterKey()
	want := Argon2Params{Time: 2, Memory: 128, Threads: 3, KeyLen: 32}
	path := filepath.Join(t.TempDir(), "master.seal")
	if err := WriteSealFile(path, pass, mk, want); err != nil {
		t.Fatal(err)
	}
	got, err := ReadSealParams(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("stored params %+v, want %+v", got, want)
	}
	// Opening honours the stored parameters whatever the caller's.
	k, err := PassphraseSource{Path: path, Passphrase: pass, Params: DefaultArgon2Params}.RootKey(t.Context())
	if err != nil || k.ID != mk.ID {
		t.Fatalf("RootKey = %v, %v", k.ID, err)
	}
	// And they are the ones the key was derived with.
	raw, _ := os.ReadFile(path)
	salt := raw[sealHeaderLen-sealSaltLen : sealHeaderLen]
	kek := derive(pass, salt, want)
	a, _ := newAEAD(kek)
	if _, err := a.Open(nil, raw[sealHeaderLen:sealHeaderLen+nonceLen], raw[sealHeaderLen+nonceLen:len(raw)-32], raw[:sealHeaderLen]); err != nil {
		t.Fatalf("key derived with the stored params does not open the file: %v", err)
	}
}

func TestPassphraseDefaultParams(t *testing.T) {
	pass := []byte("the right passphrase")
	path := filepath.Join(t.TempDir(), "master.seal")
	mk, err := PassphraseSource{Path: path, Passphrase: pass, Create: true}.RootKey(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	p, err := ReadSealParams(path)
	if err != nil {
		t.Fatal(err)
	}
	if p != (Argon2Params{Time: 3, Memory: 64 * 1024, Threads: 2, KeyLen: 32}) {
		t.Errorf("default params %+v", p)
	}
	got, err := PassphraseSource{Path: path, Passphrase: pass}.RootKey(t.Context())
	if err != nil || got.ID != mk.ID {
		t.Fatalf("reopen: %v %v", got.ID, err)
	}
}

func TestWriteSealFileRefuses(t *testing.T) {
	mk, _ := NewMasterKey()
	dir := t.TempDir()
	if err := WriteSealFile(filepath.Join(dir, "a"), []byte("short"), mk, fastParams); err == nil {
		t.Error("a 5-character passphrase was accepted")
	}
	path := filepath.Join(dir, "b")
	if err := WriteSealFile(path, []byte("long enough"), mk, fastParams); err != nil {
		t.Fatal(err)
	}
	if err := WriteSealFile(path, []byte("long enough"), mk, fastParams); err == nil {
		t.Error("an existing seal file was replaced")
	}
}

func sha256Sum(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}
