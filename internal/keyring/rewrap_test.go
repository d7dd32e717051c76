package keyring

import (
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func TestRewrap(t *testing.T) {
	kr, old := newTestKeyring(t)
	aad := []byte("arn:secret\x00v1")
	value := bytes.Repeat([]byte("value "), 100)
	sealed, id, err := kr.Seal(value, aad)
	if err != nil || id != old.ID {
		t.Fatalf("Seal: %s, %v", id, err)
	}
	v2 := MasterKey{ID: "mkv-2-00000000", Key: bytes.Repeat([]byte{7}, keySize)}
	if err := kr.Add(v2); err != nil {
		t.Fatal(err)
	}
	// Under the current key already: unchanged.
	same, id, err := kr.Rewrap(sealed, aad)
	if err != nil || id != old.ID || !bytes.Equal(same, sealed) {
		t.Fatalf("Rewrap under the current key = %s, %v; changed: %v", id, err, !bytes.Equal(same, sealed))
	}
	if err := kr.SetCurrent(v2.ID); err != nil {
		t.Fatal(err)
	}
	re, id, err := kr.Rewrap(sealed, aad)
	if err != nil || id != v2.ID {
		t.Fatalf("Rewrap = %s, %v", id, err)
	}
	if got, _ := KeyIDOf(re); got != v2.ID {
		t.Errorf("KeyIDOf(rewrapped) = %s, want %s", got, v2.ID)
	}
	// Only the data key changed: the value's nonce and ciphertext are kept.
	tail := len(value) + tagLen + nonceLen
	if !bytes.Equal(re[len(re)-tail:], sealed[len(sealed)-tail:]) {
		t.Error("Rewrap changed the value ciphertext")
	}
	if len(re) != len(sealed)-len(old.ID)+len(v2.ID) {
		t.Errorf("len(rewrapped) = %d, want %d", len(re), len(sealed)-len(old.ID)+len(v2.ID))
	}
	pt, err := kr.Open(re, aad)
	if err != nil || !bytes.Equal(pt, value) {
		t.Fatalf("Open(rewrapped) = %v", err)
	}
	// Once the old key is gone, only the re-wrapped envelope opens.
	if err := kr.Remove(old.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := kr.Open(sealed, aad); !errors.Is(err, ErrDecrypt) {
		t.Errorf("Open(old envelope) after Remove: %v, want ErrDecrypt", err)
	}
	if _, err := kr.Open(re, aad); err != nil {
		t.Errorf("Open(rewrapped) after Remove: %v", err)
	}
	if err := kr.Remove(v2.ID); err == nil {
		t.Error("Remove(current): no error")
	}
	if err := kr.SetCurrent("mk-unknown"); err == nil {
		t.Error("SetCurrent(unknown): no error")
	}
}

func TestRewrapRejects(t *testing.T) {
	kr, _ := newTestKeyring(t)
	aad := []byte("a")
	sealed, _, err := kr.Seal([]byte("x"), aad)
	if err != nil {
		t.Fatal(err)
	}
	v2, _ := NewMasterKey()
	if err := kr.Add(v2); err != nil {
		t.Fatal(err)
	}
	if err := kr.SetCurrent(v2.ID); err != nil {
		t.Fatal(err)
	}
	other, _ := newTestKeyring(t)
	foreign, _, _ := other.Seal([]byte("x"), aad)
	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-tagLen-nonceLen-2] ^= 1 // in the wrapped data key
	for name, c := range map[string]struct{ sealed, aad []byte }{
		"wrong aad":      {sealed, []byte("b")},
		"unknown key":    {foreign, aad},
		"tampered":       {tampered, aad},
		"truncated":      {sealed[:20], aad},
		"empty":          {nil, aad},
		"unknown format": {append([]byte{2}, sealed[1:]...), aad},
	} {
		t.Run(name, func(t *testing.T) {
			if _, _, err := kr.Rewrap(c.sealed, c.aad); !errors.Is(err, ErrDecrypt) {
				t.Errorf("Rewrap: %v, want ErrDecrypt", err)
			}
		})
	}
}

func TestWrapMasterKey(t *testing.T) {
	root, _ := NewMasterKey()
	v := MasterKey{ID: "mkv-2-abcd", Key: bytes.Repeat([]byte{1}, keySize)}
	w, err := WrapMasterKey(root, v)
	if err != nil {
		t.Fatal(err)
	}
	got, err := UnwrapMasterKey(root, v.ID, w)
	if err != nil || got.ID != v.ID || !bytes.Equal(got.Key, v.Key) {
		t.Fatalf("UnwrapMasterKey = %+v, %v", got, err)
	}
	other, _ := NewMasterKey()
	if _, err := UnwrapMasterKey(other, v.ID, w); !errors.Is(err, ErrDecrypt) {
		t.Errorf("UnwrapMasterKey(other root): %v, want ErrDecrypt", err)
	}
	if _, err := UnwrapMasterKey(root, "mkv-3-abcd", w); !errors.Is(err, ErrDecrypt) {
		t.Errorf("UnwrapMasterKey(other id): %v, want ErrDecrypt", err)
	}
}

// TestSealedFormatGolden keeps envelopes of format version 1 opening: the
// golden file holds one sealed and one re-wrapped envelope made by an
// earlier build with fixed keys.
func TestSealedFormatGolden(t *testing.T) {
	k1 := MasterKey{ID: KeyIDFor(bytes.Repeat([]byte{1}, keySize)), Key: bytes.Repeat([]byte{1}, keySize)}
	k2 := MasterKey{ID: "mkv-2-0badcafe", Key: bytes.Repeat([]byte{2}, keySize)}
	aad, value := []byte("arn:aws:secretsmanager:us-east-1:000000000000:secret:db-AbCdEf\x00v1"), []byte("golden value")
	path := filepath.Join("testdata", "sealed-v1.golden")
	if *update {
		kr, err := New(k1)
		if err != nil {
			t.Fatal(err)
		}
		sealed, _, err := kr.Seal(value, aad)
		if err != nil {
			t.Fatal(err)
		}
		if err := kr.Add(k2); err != nil {
			t.Fatal(err)
		}
		if err := kr.SetCurrent(k2.ID); err != nil {
			t.Fatal(err)
		}
		re, _, err := kr.Rewrap(sealed, aad)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(hex.EncodeToString(sealed)+"\n"+hex.EncodeToString(re)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Fields(string(b))
	if len(lines) != 2 {
		t.Fatalf("%s: want 2 lines", path)
	}
	kr, err := New(k2, k1)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{k1.ID, k2.ID} {
		env, err := hex.DecodeString(lines[i])
		if err != nil {
			t.Fatal(err)
		}
		if env[0] != formatV1 || int(env[1]) != len(want) || string(env[2:2+len(want)]) != want {
			t.Errorf("envelope %d: header %x, want format 1 and key %s", i, env[:2+len(want)], want)
		}
		pt, err := kr.Open(env, aad)
		if err != nil || !bytes.Equal(pt, value) {
			t.Errorf("Open(envelope %d) = %q, %v", i, pt, err)
		}
	}
}
