package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/rotor-secrets/rotor/internal/store"
)

// testMasterKeys: master key versions, the re-wrap scan of versions, the
// usage count by key id and the scan of every access key.
func (h harness) testMasterKeys(t *testing.T) {
	t.Run("Versions", func(t *testing.T) {
		s := h.fresh(t)
		var got []store.MasterKeyVersion
		mustRead(t, s, func(tx store.Tx) (err error) { got, err = tx.MasterKeys(t.Context()); return })
		if len(got) != 0 {
			t.Fatalf("MasterKeys of an empty store = %+v", got)
		}
		root := store.MasterKeyVersion{ID: "mk-root", State: store.KeyRetired, RetiredAt: t0}
		v2 := store.MasterKeyVersion{ID: "mkv-2-aa", Wrapped: []byte{0, 1, 2}, State: store.KeyCurrent, CreatedAt: t0.In(adelaide)}
		mustWrite(t, s, func(tx store.Tx) error {
			if err := tx.PutMasterKey(t.Context(), v2); err != nil {
				return err
			}
			return tx.PutMasterKey(t.Context(), root)
		})
		mustRead(t, s, func(tx store.Tx) (err error) { got, err = tx.MasterKeys(t.Context()); return })
		want := []store.MasterKeyVersion{root, v2}
		if len(got) != len(want) {
			t.Fatalf("MasterKeys = %+v, want %+v", got, want)
		}
		for i := range want {
			g, w := got[i], want[i]
			if g.ID != w.ID || !bytes.Equal(g.Wrapped, w.Wrapped) || (g.Wrapped == nil) != (w.Wrapped == nil) || g.State != w.State ||
				diffTime("CreatedAt", g.CreatedAt, w.CreatedAt) != "" || diffTime("RetiredAt", g.RetiredAt, w.RetiredAt) != "" {
				t.Errorf("MasterKeys[%d] = %+v, want %+v", i, g, w)
			}
		}
		// Replace: destroy v2's material.
		v2.Wrapped, v2.State, v2.RetiredAt = nil, store.KeyDestroyed, t0.Add(time.Hour)
		mustWrite(t, s, func(tx store.Tx) error { return tx.PutMasterKey(t.Context(), v2) })
		mustRead(t, s, func(tx store.Tx) (err error) { got, err = tx.MasterKeys(t.Context()); return })
		if len(got) != 2 || got[1].Wrapped != nil || got[1].State != store.KeyDestroyed || diffTime("RetiredAt", got[1].RetiredAt, v2.RetiredAt) != "" {
			t.Errorf("after replacing: MasterKeys = %+v", got)
		}
		err := s.Read(t.Context(), func(tx store.Tx) error { return tx.PutMasterKey(t.Context(), root) })
		if err == nil {
			t.Error("PutMasterKey in a Read: no error")
		}
	})

	t.Run("SealedVersionsNotUnder", func(t *testing.T) {
		s := h.fresh(t)
		// Two secrets, versions under three keys, one placeholder.
		type row struct{ secret, id, key string }
		rows := []row{
			{"b", "v1", "k1"}, {"b", "v2", "k2"}, {"b", "v3", "k1"},
			{"a", "v2", "k2"}, {"a", "v1", "k3"}, {"a", "v9", ""},
		}
		mustWrite(t, s, func(tx store.Tx) error {
			for _, n := range []string{"a", "b"} {
				if err := tx.CreateSecret(t.Context(), newSecret(n)); err != nil {
					return err
				}
			}
			for i, r := range rows {
				v := store.Version{SecretARN: arnOf(r.secret), VersionID: r.id, CreatedAt: t0, KeyID: r.key,
					Binary: i%2 == 0, LastAccessedAt: t0.Add(time.Duration(i) * time.Hour)}
				if r.key != "" {
					v.Sealed = []byte("sealed " + r.secret + r.id)
				}
				if err := tx.CreateVersion(t.Context(), v); err != nil {
					return err
				}
			}
			return nil
		})
		// All not under k1, in pages of 2.
		var got []string
		afterARN, afterID := "", ""
		for range 10 {
			var page []store.Version
			mustRead(t, s, func(tx store.Tx) (err error) {
				page, err = tx.SealedVersionsNotUnder(t.Context(), "k1", afterARN, afterID, 2)
				return
			})
			for _, v := range page {
				name := map[string]string{arnOf("a"): "a", arnOf("b"): "b"}[v.SecretARN]
				got = append(got, fmt.Sprintf("%s/%s/%s", name, v.VersionID, v.KeyID))
				if string(v.Sealed) != "sealed "+name+v.VersionID {
					t.Errorf("%s/%s: Sealed = %q", name, v.VersionID, v.Sealed)
				}
				for i, r := range rows {
					if r.secret == name && r.id == v.VersionID && (v.Binary != (i%2 == 0) || diffTime("LastAccessedAt", v.LastAccessedAt, t0.Add(time.Duration(i)*time.Hour)) != "") {
						t.Errorf("%s/%s: Binary %v, LastAccessedAt %v", name, v.VersionID, v.Binary, v.LastAccessedAt)
					}
				}
			}
			if len(page) < 2 {
				break
			}
			afterARN, afterID = page[len(page)-1].SecretARN, page[len(page)-1].VersionID
		}
		want := []string{"a/v1/k3", "a/v2/k2", "b/v2/k2"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("SealedVersionsNotUnder(k1) pages = %v, want %v", got, want)
		}

		// Not under any of k1 and k2 (the current versions of two families).
		var anyPage []store.Version
		mustRead(t, s, func(tx store.Tx) (err error) {
			anyPage, err = tx.SealedVersionsNotUnderAny(t.Context(), []string{"k1", "k2"}, "", "", 10)
			return
		})
		if len(anyPage) != 1 || anyPage[0].SecretARN != arnOf("a") || anyPage[0].VersionID != "v1" || anyPage[0].KeyID != "k3" {
			t.Errorf("SealedVersionsNotUnderAny(k1, k2) = %+v, want a/v1 only", anyPage)
		}
		mustRead(t, s, func(tx store.Tx) (err error) {
			anyPage, err = tx.SealedVersionsNotUnderAny(t.Context(), nil, arnOf("a"), "v2", 10)
			return
		})
		if len(anyPage) != 3 {
			t.Errorf("SealedVersionsNotUnderAny(none) after a/v2 = %d versions, want 3", len(anyPage))
		}

		var usage map[string]int
		mustRead(t, s, func(tx store.Tx) (err error) { usage, err = tx.KeyUsage(t.Context()); return })
		if wantUsage := map[string]int{"k1": 2, "k2": 2, "k3": 1}; !maps.Equal(usage, wantUsage) {
			t.Errorf("KeyUsage = %v, want %v", usage, wantUsage)
		}
		mustWrite(t, s, func(tx store.Tx) error { return tx.DeleteSecret(t.Context(), arnOf("b")) })
		mustRead(t, s, func(tx store.Tx) (err error) { usage, err = tx.KeyUsage(t.Context()); return })
		if wantUsage := map[string]int{"k2": 1, "k3": 1}; !maps.Equal(usage, wantUsage) {
			t.Errorf("KeyUsage after DeleteSecret = %v, want %v", usage, wantUsage)
		}
	})

	t.Run("Families", func(t *testing.T) {
		s := h.fresh(t)
		// Each family has its own current version.
		mustWrite(t, s, func(tx store.Tx) error {
			for _, k := range []store.MasterKeyVersion{
				{ID: "mkv-2-aa", Wrapped: []byte{1}, State: store.KeyCurrent, CreatedAt: t0},
				{ID: "mkv-1-bb", Wrapped: []byte{2}, State: store.KeyCurrent, CreatedAt: t0.Add(time.Second), Family: "key-b"},
			} {
				if err := tx.PutMasterKey(t.Context(), k); err != nil {
					return err
				}
			}
			return nil
		})
		var got []store.MasterKeyVersion
		mustRead(t, s, func(tx store.Tx) (err error) { got, err = tx.MasterKeys(t.Context()); return })
		if len(got) != 2 || got[0].Family != "" || got[1].Family != "key-b" {
			t.Errorf("MasterKeys = %+v, want families \"\" and key-b", got)
		}
	})

	t.Run("KMSKeys", func(t *testing.T) {
		s := h.fresh(t)
		var got []store.KMSKey
		mustRead(t, s, func(tx store.Tx) (err error) { got, err = tx.KMSKeys(t.Context()); return })
		if len(got) != 0 {
			t.Fatalf("KMSKeys of an empty store = %+v", got)
		}
		a := store.KMSKey{ID: "1111", Alias: "alias/team-a", Description: "team a", Enabled: true, CreatedAt: t0.In(adelaide)}
		b := store.KMSKey{ID: "0000", CreatedAt: t0.Add(time.Second)}
		mustWrite(t, s, func(tx store.Tx) error {
			if err := tx.PutKMSKey(t.Context(), b); err != nil {
				return err
			}
			return tx.PutKMSKey(t.Context(), a)
		})
		mustRead(t, s, func(tx store.Tx) (err error) { got, err = tx.KMSKeys(t.Context()); return })
		want := []store.KMSKey{a, b}
		if len(got) != len(want) {
			t.Fatalf("KMSKeys = %+v, want %+v", got, want)
		}
		for i := range want {
			g, w := got[i], want[i]
			if g.ID != w.ID || g.Alias != w.Alias || g.Description != w.Description || g.Enabled != w.Enabled ||
				diffTime("CreatedAt", g.CreatedAt, w.CreatedAt) != "" {
				t.Errorf("KMSKeys[%d] = %+v, want %+v", i, g, w)
			}
		}
		// Replace: disable a.
		a.Enabled = false
		mustWrite(t, s, func(tx store.Tx) error { return tx.PutKMSKey(t.Context(), a) })
		mustRead(t, s, func(tx store.Tx) (err error) { got, err = tx.KMSKeys(t.Context()); return })
		if got[0].Enabled {
			t.Errorf("after disabling: KMSKeys[0] = %+v", got[0])
		}
		// A taken alias conflicts; two keys without an alias do not.
		err := s.Write(t.Context(), func(tx store.Tx) error {
			return tx.PutKMSKey(t.Context(), store.KMSKey{ID: "2222", Alias: "alias/team-a", CreatedAt: t0})
		})
		if !errors.Is(err, store.ErrConflict) {
			t.Errorf("PutKMSKey with a taken alias: err = %v, want ErrConflict", err)
		}
		mustWrite(t, s, func(tx store.Tx) error {
			return tx.PutKMSKey(t.Context(), store.KMSKey{ID: "3333", CreatedAt: t0})
		})
	})

	t.Run("AllAccessKeys", func(t *testing.T) {
		s := h.fresh(t)
		ids := []string{"AKIDCCCCCCCCCCCCCCCC", "AKIDAAAAAAAAAAAAAAAA", "AKIDBBBBBBBBBBBBBBBB"}
		mustWrite(t, s, func(tx store.Tx) error {
			for i, id := range ids {
				k := store.AccessKey{ID: id, SealedSecret: []byte("s" + id), PrincipalARN: iamPrefix + fmt.Sprintf("user/u%d", i%2),
					Active: true, CreatedAt: t0}
				if err := tx.PutAccessKey(t.Context(), k); err != nil {
					return err
				}
			}
			return nil
		})
		var got []string
		after := ""
		for range 10 {
			var page []store.AccessKey
			mustRead(t, s, func(tx store.Tx) (err error) { page, err = tx.AllAccessKeys(t.Context(), after, 2); return })
			for _, k := range page {
				if string(k.SealedSecret) != "s"+k.ID {
					t.Errorf("%s: SealedSecret = %q", k.ID, k.SealedSecret)
				}
				got = append(got, k.ID)
			}
			if len(page) < 2 {
				break
			}
			after = page[len(page)-1].ID
		}
		want := []string{ids[1], ids[2], ids[0]}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("AllAccessKeys pages = %v, want %v", got, want)
		}
	})
}
