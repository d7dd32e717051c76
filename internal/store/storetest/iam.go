package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/rotor-secrets/rotor/internal/store"
)

const iamPrefix = "arn:aws:iam::123456789012:"

func newUser(name string) store.User {
	return store.User{Name: name, ARN: iamPrefix + "user/" + name, ID: "AIDA" + name, CreatedAt: t0.In(adelaide)}
}

func newPolicy(name string) store.Policy {
	return store.Policy{Name: name, ARN: iamPrefix + "policy/" + name, ID: "ANPA" + name,
		Description: "d " + name, Document: `{"Version":"2012-10-17","Statement":[]}`,
		CreatedAt: t0, UpdatedAt: t0.Add(time.Second).In(newYork)}
}

func (h harness) testIAM(t *testing.T) {
	read := func(t *testing.T, s store.Store, fn func(tx store.Tx) error) error {
		t.Helper()
		return s.Read(t.Context(), fn)
	}
	names := func(ps []store.Policy) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.Name)
		}
		return out
	}

	t.Run("Users", func(t *testing.T) {
		s := h.fresh(t)
		mustWrite(t, s, func(tx store.Tx) error {
			for _, n := range []string{"carol", "alice", "bob"} {
				if err := tx.CreateUser(t.Context(), newUser(n)); err != nil {
					return err
				}
			}
			return nil
		})
		err := s.Write(t.Context(), func(tx store.Tx) error { return tx.CreateUser(t.Context(), newUser("alice")) })
		wantErr(t, "CreateUser(existing)", err, store.ErrConflict)
		var got store.User
		mustRead(t, s, func(tx store.Tx) (err error) { got, err = tx.User(t.Context(), "alice"); return })
		want := newUser("alice")
		if got.Name != want.Name || got.ARN != want.ARN || got.ID != want.ID || diffTime("CreatedAt", got.CreatedAt, want.CreatedAt) != "" {
			t.Errorf("User = %+v, want %+v", got, want)
		}
		err = read(t, s, func(tx store.Tx) error { _, err := tx.User(t.Context(), "nobody"); return err })
		wantErr(t, "User(missing)", err, store.ErrNotFound)

		var page1, page2 []store.User
		mustRead(t, s, func(tx store.Tx) (err error) {
			if page1, err = tx.ListUsers(t.Context(), "", 2); err != nil {
				return err
			}
			page2, err = tx.ListUsers(t.Context(), page1[len(page1)-1].Name, 2)
			return err
		})
		if len(page1) != 2 || page1[0].Name != "alice" || page1[1].Name != "bob" || len(page2) != 1 || page2[0].Name != "carol" {
			t.Errorf("ListUsers pages = %v, %v", page1, page2)
		}
		mustWrite(t, s, func(tx store.Tx) error { return tx.DeleteUser(t.Context(), "bob") })
		err = s.Write(t.Context(), func(tx store.Tx) error { return tx.DeleteUser(t.Context(), "bob") })
		wantErr(t, "DeleteUser(missing)", err, store.ErrNotFound)
	})

	t.Run("PoliciesAndAttachments", func(t *testing.T) {
		s := h.fresh(t)
		mustWrite(t, s, func(tx store.Tx) error {
			for _, u := range []string{"app", "ops"} {
				if err := tx.CreateUser(t.Context(), newUser(u)); err != nil {
					return err
				}
			}
			for _, p := range []string{"read", "admin", "write"} {
				if err := tx.CreatePolicy(t.Context(), newPolicy(p)); err != nil {
					return err
				}
			}
			return nil
		})
		err := s.Write(t.Context(), func(tx store.Tx) error { return tx.CreatePolicy(t.Context(), newPolicy("read")) })
		wantErr(t, "CreatePolicy(existing)", err, store.ErrConflict)

		upd := newPolicy("read")
		upd.Document = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`
		upd.Description = "new"
		upd.UpdatedAt = t0.Add(time.Hour)
		mustWrite(t, s, func(tx store.Tx) error { return tx.UpdatePolicy(t.Context(), upd) })
		var got store.Policy
		mustRead(t, s, func(tx store.Tx) (err error) { got, err = tx.Policy(t.Context(), "read"); return })
		if got.Document != upd.Document || got.Description != "new" || got.ARN != upd.ARN || got.ID != upd.ID ||
			diffTime("UpdatedAt", got.UpdatedAt, upd.UpdatedAt) != "" || diffTime("CreatedAt", got.CreatedAt, t0) != "" {
			t.Errorf("Policy after update = %+v, want %+v", got, upd)
		}
		err = s.Write(t.Context(), func(tx store.Tx) error { return tx.UpdatePolicy(t.Context(), newPolicy("nope")) })
		wantErr(t, "UpdatePolicy(missing)", err, store.ErrNotFound)

		mustWrite(t, s, func(tx store.Tx) error {
			for _, a := range [][2]string{{"app", "write"}, {"app", "read"}, {"app", "read"}, {"ops", "read"}} {
				if err := tx.AttachUserPolicy(t.Context(), a[0], a[1]); err != nil {
					return err
				}
			}
			return nil
		})
		err = s.Write(t.Context(), func(tx store.Tx) error { return tx.AttachUserPolicy(t.Context(), "ghost", "read") })
		wantErr(t, "Attach(missing user)", err, store.ErrNotFound)
		err = s.Write(t.Context(), func(tx store.Tx) error { return tx.AttachUserPolicy(t.Context(), "app", "ghost") })
		wantErr(t, "Attach(missing policy)", err, store.ErrNotFound)

		var ps []store.Policy
		var us []string
		mustRead(t, s, func(tx store.Tx) (err error) {
			if ps, err = tx.UserPolicies(t.Context(), "app"); err != nil {
				return err
			}
			us, err = tx.PolicyUsers(t.Context(), "read")
			return err
		})
		if !slices.Equal(names(ps), []string{"read", "write"}) || ps[0].Document != upd.Document {
			t.Errorf("UserPolicies(app) = %v", names(ps))
		}
		if !slices.Equal(us, []string{"app", "ops"}) {
			t.Errorf("PolicyUsers(read) = %v", us)
		}

		mustWrite(t, s, func(tx store.Tx) error { return tx.DetachUserPolicy(t.Context(), "app", "write") })
		err = s.Write(t.Context(), func(tx store.Tx) error { return tx.DetachUserPolicy(t.Context(), "app", "write") })
		wantErr(t, "Detach(not attached)", err, store.ErrNotFound)

		// Deleting a policy or a user deletes its attachments.
		mustWrite(t, s, func(tx store.Tx) error { return tx.DeletePolicy(t.Context(), "read") })
		mustWrite(t, s, func(tx store.Tx) error { return tx.AttachUserPolicy(t.Context(), "ops", "admin") })
		mustWrite(t, s, func(tx store.Tx) error { return tx.DeleteUser(t.Context(), "ops") })
		mustRead(t, s, func(tx store.Tx) (err error) {
			if ps, err = tx.UserPolicies(t.Context(), "app"); err != nil {
				return err
			}
			us, err = tx.PolicyUsers(t.Context(), "admin")
			return err
		})
		if len(ps) != 0 || len(us) != 0 {
			t.Errorf("after deletes: UserPolicies(app) = %v, PolicyUsers(admin) = %v", names(ps), us)
		}
		var all []store.Policy
		mustRead(t, s, func(tx store.Tx) (err error) { all, err = tx.ListPolicies(t.Context(), "", 10); return })
		if !slices.Equal(names(all), []string{"admin", "write"}) {
			t.Errorf("ListPolicies = %v", names(all))
		}
		err = s.Write(t.Context(), func(tx store.Tx) error { return tx.DeletePolicy(t.Context(), "read") })
		wantErr(t, "DeletePolicy(missing)", err, store.ErrNotFound)
	})

	t.Run("AccessKeysOf", func(t *testing.T) {
		s := h.fresh(t)
		app, ops := iamPrefix+"user/app", iamPrefix+"user/ops"
		mustWrite(t, s, func(tx store.Tx) error {
			for i, k := range []store.AccessKey{
				{ID: "AKIAROTOREXAMPLE0002", PrincipalARN: app, Active: true},
				{ID: "AKIAROTOREXAMPLE0001", PrincipalARN: app, Active: false},
				{ID: "AKIAROTOREXAMPLE0003", PrincipalARN: ops, Active: true},
			} {
				k.SealedSecret, k.CreatedAt = []byte{byte(i)}, t0
				if err := tx.PutAccessKey(t.Context(), k); err != nil {
					return err
				}
			}
			return nil
		})
		var ks []store.AccessKey
		mustRead(t, s, func(tx store.Tx) (err error) { ks, err = tx.AccessKeysOf(t.Context(), app); return })
		if len(ks) != 2 || ks[0].ID != "AKIAROTOREXAMPLE0001" || ks[0].Active || ks[1].ID != "AKIAROTOREXAMPLE0002" ||
			!ks[1].Active || len(ks[1].SealedSecret) != 1 {
			t.Errorf("AccessKeysOf(app) = %+v", ks)
		}
		mustWrite(t, s, func(tx store.Tx) error { return tx.DeleteAccessKey(t.Context(), "AKIAROTOREXAMPLE0001") })
		err := s.Write(t.Context(), func(tx store.Tx) error { return tx.DeleteAccessKey(t.Context(), "AKIAROTOREXAMPLE0001") })
		wantErr(t, "DeleteAccessKey(missing)", err, store.ErrNotFound)
		mustRead(t, s, func(tx store.Tx) (err error) { ks, err = tx.AccessKeysOf(t.Context(), app); return })
		if len(ks) != 1 {
			t.Errorf("AccessKeysOf(app) after delete = %+v", ks)
		}
	})
}
