package keyring_test

import (
	"errors"
	"testing"

	"github.com/rotor-secrets/rotor/internal/keyring"
)

func newKey(t *testing.T) keyring.MasterKey {
	t.Helper()
	mk, err := keyring.NewMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	return mk
}

func TestFamilies(t *testing.T) {
	def, a1, a2 := newKey(t), newKey(t), newKey(t)
	kr, err := keyring.New(def)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := kr.SealIn("a", []byte("x"), nil); err == nil {
		t.Error("SealIn of a family without keys: no error")
	}
	for _, mk := range []keyring.MasterKey{a1, a2} {
		if err := kr.AddIn("a", mk); err != nil {
			t.Fatal(err)
		}
	}
	if err := kr.SetCurrentIn("a", def.ID); err == nil {
		t.Error("SetCurrentIn with another family's key: no error")
	}
	if err := kr.SetCurrentIn("a", a1.ID); err != nil {
		t.Fatal(err)
	}
	aad := []byte("arn\x00v1")
	sealed, id, err := kr.SealIn("a", []byte("secret"), aad)
	if err != nil || id != a1.ID || kr.FamilyOf(id) != "a" {
		t.Fatalf("SealIn(a) = key %s (family %q), %v; want %s", id, kr.FamilyOf(id), err, a1.ID)
	}
	if _, id, _ := kr.Seal([]byte("x"), nil); id != def.ID {
		t.Errorf("Seal after SetCurrentIn(a) used %s, want the default family's %s", id, def.ID)
	}

	// Rewrap stays in the envelope's family.
	if err := kr.SetCurrentIn("a", a2.ID); err != nil {
		t.Fatal(err)
	}
	re, id, err := kr.Rewrap(sealed, aad)
	if err != nil || id != a2.ID {
		t.Fatalf("Rewrap = %s, %v; want %s", id, err, a2.ID)
	}
	if err := kr.Remove(a2.ID); err == nil {
		t.Error("Remove of a family's current key: no error")
	}

	// Disabled: Open and SealIn refuse, Rewrap does not, RewrapIn does.
	kr.SetDisabled("a", true)
	var de *keyring.DisabledError
	if _, err := kr.Open(re, aad); !errors.As(err, &de) || de.Family != "a" {
		t.Errorf("Open in a disabled family: err = %v", err)
	}
	if _, _, err := kr.SealIn("a", []byte("x"), nil); !errors.As(err, &de) {
		t.Errorf("SealIn in a disabled family: err = %v", err)
	}
	if _, _, err := kr.Rewrap(sealed, aad); err != nil {
		t.Errorf("Rewrap in a disabled family: %v", err)
	}
	if _, _, err := kr.RewrapIn("", re, aad); !errors.As(err, &de) {
		t.Errorf("RewrapIn out of a disabled family: err = %v", err)
	}
	if _, err := kr.Open(mustSeal(t, kr, aad), aad); err != nil {
		t.Errorf("the default family while a is disabled: %v", err)
	}
	kr.SetDisabled("a", false)

	// RewrapIn moves an envelope to another family.
	moved, id, err := kr.RewrapIn("", re, aad)
	if err != nil || id != def.ID {
		t.Fatalf("RewrapIn(default) = %s, %v", id, err)
	}
	kr.SetDisabled("a", true)
	if pt, err := kr.Open(moved, aad); err != nil || string(pt) != "secret" {
		t.Errorf("Open of the moved envelope = %q, %v", pt, err)
	}
}

func mustSeal(t *testing.T, kr *keyring.Keyring, aad []byte) []byte {
	t.Helper()
	sealed, _, err := kr.Seal([]byte("default"), aad)
	if err != nil {
		t.Fatal(err)
	}
	return sealed
}
