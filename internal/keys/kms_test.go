package keys_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rotor-secrets/rotor/internal/keys"
	"github.com/rotor-secrets/rotor/internal/secrets"
	"github.com/rotor-secrets/rotor/internal/store"
)

// kmsKeys is internal/server's adapter: secrets resolve KmsKeyId with the
// keys service.
type kmsKeys struct{ keys *keys.Service }

func (k kmsKeys) LookupKMSKey(ctx context.Context, id string) (secrets.KMSKey, bool, error) {
	key, err := k.keys.Lookup(ctx, id)
	if errors.Is(err, keys.ErrNotFound) {
		return secrets.KMSKey{}, false, nil
	}
	return secrets.KMSKey{ID: key.ID, ARN: key.ARN}, err == nil, err
}

func (w *world) createKey(alias string) keys.Key {
	w.t.Helper()
	k, err := w.keys.CreateKey(w.t.Context(), alias, "for "+alias)
	if err != nil {
		w.t.Fatal(err)
	}
	return k
}

func (w *world) get(name string) (string, error) {
	out, err := w.svc.GetSecretValue(w.t.Context(), secrets.GetSecretValueInput{SecretID: name})
	if err != nil {
		return "", err
	}
	return string(out.Value.Reveal()), nil
}

func TestNamedKeys(t *testing.T) {
	ctx := t.Context()
	w := newWorld(t)
	w.seed(2)
	k := w.createKey("alias/team-a")
	if k.ARN != "arn:aws:kms:us-east-1:123456789012:key/"+k.ID || !k.Enabled || k.Description != "for alias/team-a" {
		t.Errorf("CreateKey = %+v", k)
	}
	t.Run("invalid", func(t *testing.T) {
		if _, err := w.keys.CreateKey(ctx, "alias/team-a", ""); !errors.Is(err, keys.ErrAliasExists) {
			t.Errorf("taken alias: err = %v", err)
		}
		for _, alias := range []string{"team-b", "alias/", "alias/aws/mine", "alias/a b"} {
			var ie *keys.InvalidError
			if _, err := w.keys.CreateKey(ctx, alias, ""); !errors.As(err, &ie) {
				t.Errorf("alias %q: err = %v, want an InvalidError", alias, err)
			}
		}
	})
	t.Run("Lookup", func(t *testing.T) {
		for _, ref := range []string{k.ID, k.ARN, "alias/team-a", "arn:aws:kms:us-east-1:123456789012:alias/team-a"} {
			got, err := w.keys.Lookup(ctx, ref)
			if err != nil || got.ID != k.ID {
				t.Errorf("Lookup(%s) = %+v, %v", ref, got, err)
			}
		}
		for _, ref := range []string{"", "alias/aws/secretsmanager", "arn:aws:kms:us-east-1:123456789012:alias/aws/secretsmanager"} {
			if got, err := w.keys.Lookup(ctx, ref); err != nil || !got.Default {
				t.Errorf("Lookup(%q) = %+v, %v, want the default key", ref, got, err)
			}
		}
		for _, ref := range []string{"alias/nope", "arn:aws:kms:eu-west-1:123456789012:key/" + k.ID, "arn:aws:kms:us-east-1:123456789012:key/", "nope"} {
			if _, err := w.keys.Lookup(ctx, ref); !errors.Is(err, keys.ErrNotFound) {
				t.Errorf("Lookup(%q): err = %v, want ErrNotFound", ref, err)
			}
		}
	})

	for i, ref := range []string{"alias/team-a", k.ID, k.ARN} {
		name := fmt.Sprintf("team%d", i)
		if _, err := w.svc.CreateSecret(ctx, secrets.CreateSecretInput{Name: name, KmsKeyID: ref, Value: secrets.StringValue("v-" + name)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.svc.CreateSecret(ctx, secrets.CreateSecretInput{Name: "x", KmsKeyID: "alias/nope"}); secrets.KindOf(err) != secrets.KindInvalidParameter {
		t.Errorf("unknown key: err = %v, want InvalidParameter", err)
	}

	t.Run("disable", func(t *testing.T) {
		if _, err := w.keys.SetEnabled(ctx, "alias/team-a", false); err != nil {
			t.Fatal(err)
		}
		if _, err := w.get("team0"); secrets.KindOf(err) != secrets.KindDecryptionFailure {
			t.Errorf("team0 with its key disabled: err = %v, want DecryptionFailure", err)
		}
		w.verify(2) // default-key secrets are unaffected
		// A restarted server keeps the key disabled.
		w.open()
		if _, err := w.get("team1"); secrets.KindOf(err) != secrets.KindDecryptionFailure {
			t.Errorf("after a restart: err = %v, want DecryptionFailure", err)
		}
		if _, err := w.keys.SetEnabled(ctx, "alias/aws/secretsmanager", false); !errors.Is(err, keys.ErrDefaultKey) {
			t.Errorf("disabling the default key: err = %v", err)
		}
		if _, err := w.keys.SetEnabled(ctx, k.ARN, true); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			name := fmt.Sprintf("team%d", i)
			if got, err := w.get(name); err != nil || got != "v-"+name {
				t.Errorf("%s after enabling = %q, %v", name, got, err)
			}
		}
	})
	ks, err := w.keys.Keys(ctx)
	if err != nil || len(ks) != 1 || ks[0].ID != k.ID || !ks[0].Enabled {
		t.Errorf("Keys = %+v, %v", ks, err)
	}
}

// TestRotateNamedKey: rotating a named key re-wraps its envelopes to its new
// version, destroys its old one, and leaves the default key alone.
func TestRotateNamedKey(t *testing.T) {
	ctx := t.Context()
	w := newWorld(t)
	w.seed(3)
	k := w.createKey("alias/team-a")
	for i := range 10 {
		name := fmt.Sprintf("team%d", i)
		if _, err := w.svc.CreateSecret(ctx, secrets.CreateSecretInput{Name: name, KmsKeyID: k.ID, Value: secrets.StringValue("v-" + name)}); err != nil {
			t.Fatal(err)
		}
	}
	before, err := w.keys.StatusOf(ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(before.Versions) != 1 || before.Versions[0].Envelopes != 10 {
		t.Fatalf("team-a status = %+v, want one version wrapping 10", before)
	}
	v, err := w.keys.RotateKey(ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	// The default key's rotation status is untouched: no version retired.
	if st := w.status(); st.Current != w.root.ID || st.Rewrap.Running || len(st.Versions) != 1 {
		t.Errorf("default status after rotating team-a = %+v", st)
	}
	w.drain()
	st, err := w.keys.StatusOf(ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.Current != v.ID || len(st.Versions) != 2 || st.Versions[0].State != store.KeyDestroyed || envelopes(st)[v.ID] != 10 || st.Rewrap.Pending != 0 {
		t.Errorf("team-a status after the re-wrap = %+v", st)
	}
	if def := w.status(); def.Current != w.root.ID || envelopes(def)[w.root.ID] != 3*2+3+2 {
		t.Errorf("default status after the re-wrap = %+v", def)
	}
	w.verify(3)
	for i := range 10 {
		name := fmt.Sprintf("team%d", i)
		if got, err := w.get(name); err != nil || got != "v-"+name {
			t.Errorf("%s = %q, %v", name, got, err)
		}
	}
	// A new server knows the family's versions and their current one.
	w.open()
	if got, err := w.get("team3"); err != nil || got != "v-team3" {
		t.Errorf("team3 after a restart = %q, %v", got, err)
	}
	if _, err := w.keys.RotateKey(ctx, "no-such-key"); !errors.Is(err, keys.ErrNotFound) {
		t.Errorf("RotateKey(unknown): err = %v", err)
	}
}

// TestScheduledRotation: Run rotates every enabled key whose current
// version is older than RotationInterval, by the injected clock.
func TestScheduledRotation(t *testing.T) {
	w := newWorld(t)
	w.tune = func(c *keys.Config) {
		c.RotationInterval = 90 * 24 * time.Hour
		c.PollInterval = time.Millisecond
	}
	w.open()
	w.seed(1)
	a := w.createKey("alias/team-a")
	b := w.createKey("alias/team-b")
	if _, err := w.keys.SetEnabled(t.Context(), b.ID, false); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { w.keys.Run(ctx) })
	defer func() { cancel(); wg.Wait() }()

	versions := func(family string) int {
		st, err := w.keys.StatusOf(t.Context(), family)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, v := range st.Versions {
			if !v.Root {
				n++
			}
		}
		return n
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	// The root key used as the default key's master key has no age: it is
	// rotated at once. The new keys are not due.
	waitFor("the default key's first rotation", func() bool { return versions("") == 1 })
	time.Sleep(20 * time.Millisecond)
	if n := versions(a.ID); n != 1 {
		t.Errorf("team-a has %d versions before it is due, want 1", n)
	}
	w.advance(89 * 24 * time.Hour)
	time.Sleep(20 * time.Millisecond)
	if n := versions(""); n != 1 {
		t.Errorf("default key has %d versions after 89 days, want 1", n)
	}
	w.advance(2 * 24 * time.Hour)
	waitFor("the 90-day rotations", func() bool { return versions("") == 2 && versions(a.ID) == 2 })
	if n := versions(b.ID); n != 1 {
		t.Errorf("disabled team-b has %d versions, want 1 (not rotated)", n)
	}
	w.verify(1)
}
