package keys_test

import (
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rotor-secrets/rotor/internal/keyring"
	"github.com/rotor-secrets/rotor/internal/keys"
)

// keyFile writes the world's root key to <dir>/master.key and returns its
// source.
func (w *world) keyFile() keyring.FileSource {
	w.t.Helper()
	path := filepath.Join(filepath.Dir(w.path), "master.key")
	if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(w.root.Key)+"\n"), 0o600); err != nil {
		w.t.Fatal(err)
	}
	return keyring.FileSource{Path: path, NoCreate: true}
}

// rotateAndDrain moves every data key off the root key.
func (w *world) rotateAndDrain() {
	w.t.Helper()
	if _, err := w.keys.Rotate(w.t.Context()); err != nil {
		w.t.Fatal(err)
	}
	w.drain()
}

func newRoot(t *testing.T) keyring.MasterKey {
	t.Helper()
	mk, err := keyring.NewMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	return mk
}

func rootOf(t *testing.T, src keyring.Source) keyring.MasterKey {
	t.Helper()
	mk, err := src.RootKey(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return mk
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func TestRotateRootRefusedWhileRootWrapsData(t *testing.T) {
	w := newWorld(t)
	w.seed(3)
	src := w.keyFile()
	for _, step := range []string{"never rotated", "rotated, not re-wrapped"} {
		t.Run(step, func(t *testing.T) {
			_, err := w.keys.RotateRoot(t.Context(), src, newRoot(t))
			var pe *keys.PreconditionError
			if !errors.As(err, &pe) || !strings.Contains(pe.Msg, "the root key still wraps") || !strings.Contains(pe.Msg, "rotor key rotate") {
				t.Fatalf("RotateRoot: %v, want a *PreconditionError", err)
			}
			if exists(src.Path + keyring.PendingSuffix) {
				t.Fatal("a refused rotation left master.key.next")
			}
			if got := rootOf(t, src); got.ID != w.root.ID {
				t.Fatalf("master.key changed to %s", got.ID)
			}
		})
		if _, err := w.keys.Rotate(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	w.verify(3)
}

func TestRotateRoot(t *testing.T) {
	w := newWorld(t)
	w.seed(5)
	if _, err := w.keys.CreateKey(t.Context(), "alias/team-a", ""); err != nil {
		t.Fatal(err)
	}
	src := w.keyFile()
	old := w.root
	w.rotateAndDrain()

	next := newRoot(t)
	r, err := w.keys.RotateRoot(t.Context(), src, next)
	if err != nil {
		t.Fatal(err)
	}
	if r.Old != old.ID || r.New != next.ID || r.Rewrapped != 2 || r.Warning != "" {
		t.Fatalf("RotateRoot = %+v, want %s -> %s, 2 versions", r, old.ID, next.ID)
	}
	if got := rootOf(t, src); got.ID != next.ID {
		t.Fatalf("master.key holds %s, want %s", got.ID, next.ID)
	}
	if exists(src.Path + keyring.PendingSuffix) {
		t.Fatal("master.key.next is left")
	}
	st := w.status()
	if st.Root != next.ID || st.RootWraps != 2 {
		t.Fatalf("status: root %s wrapping %d, want %s wrapping 2", st.Root, st.RootWraps, next.ID)
	}
	w.verify(5)
	// New versions are wrapped with the new root key.
	w.rotateAndDrain()
	w.verify(5)

	w.root = next
	w.open()
	w.verify(5)
	if got := w.status(); got.Root != next.ID || got.RootWraps != 2 {
		t.Fatalf("after restart: root %s wrapping %d", got.Root, got.RootWraps)
	}
	if ok, _, err := keys.RootOpens(t.Context(), w.st, old); err != nil || ok {
		t.Fatalf("the old root key opens the stored versions: %v, %v", ok, err)
	}
	_, err = keys.Open(t.Context(), keys.Config{Store: w.st, Keyring: mustKeyring(t, old), Root: old})
	if err == nil || !strings.Contains(err.Error(), "does not belong to this store") {
		t.Fatalf("Open with the old root key: %v", err)
	}
}

func mustKeyring(t *testing.T, mk keyring.MasterKey) *keyring.Keyring {
	t.Helper()
	kr, err := keyring.New(mk)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// crashAt is a root key source that stops (fails, as a crash would) at
// one step of the protocol.
type crashAt struct {
	keyring.RootReplacer
	step string // "stage" (after writing the pending file) or "commit" (before the rename)
}

var errCrash = errors.New("crash")

func (c crashAt) StageRoot(ctx context.Context, next keyring.MasterKey) error {
	if err := c.RootReplacer.StageRoot(ctx, next); err != nil {
		return err
	}
	if c.step == "stage" {
		return errCrash
	}
	return nil
}

func (c crashAt) DiscardRoot(ctx context.Context) error {
	if c.step == "stage" {
		return errCrash // the process is gone: nothing cleans up
	}
	return c.RootReplacer.DiscardRoot(ctx)
}

func (c crashAt) CommitRoot(ctx context.Context) error {
	if c.step == "commit" {
		return errCrash
	}
	return c.RootReplacer.CommitRoot(ctx)
}

func TestRotateRootCrash(t *testing.T) {
	sources := map[string]func(w *world) keyring.RootReplacer{
		"file": func(w *world) keyring.RootReplacer { return w.keyFile() },
		"passphrase": func(w *world) keyring.RootReplacer {
			path := filepath.Join(filepath.Dir(w.path), "master.seal")
			pass := []byte("correct horse battery")
			params := keyring.Argon2Params{Time: 1, Memory: 64, Threads: 1, KeyLen: 32}
			if err := keyring.WriteSealFile(path, pass, w.root, params); err != nil {
				w.t.Fatal(err)
			}
			return keyring.PassphraseSource{Path: path, Passphrase: pass}
		},
	}
	for name, newSource := range sources {
		for _, step := range []string{"stage", "commit"} {
			t.Run(name+"/after "+step, func(t *testing.T) {
				w := newWorld(t)
				w.seed(3)
				src := newSource(w)
				old := w.root
				w.rotateAndDrain()
				next := newRoot(t)
				r, err := w.keys.RotateRoot(t.Context(), crashAt{src, step}, next)
				switch step {
				case "stage":
					if !errors.Is(err, errCrash) {
						t.Fatalf("RotateRoot: %v, want the crash", err)
					}
				case "commit":
					if err != nil || r.Warning == "" {
						t.Fatalf("RotateRoot = %+v, %v; want a warning", r, err)
					}
				}
				if _, ok, _ := src.PendingRoot(t.Context()); !ok {
					t.Fatal("no pending root key after the crash")
				}
				// Restart: recover first, as the server does.
				got, committed, err := keys.RecoverRoot(t.Context(), w.st, src, rootOf(t, src))
				if err != nil {
					t.Fatal(err)
				}
				want := old
				if step == "commit" {
					want = next
				}
				if got.ID != want.ID || committed != (step == "commit") {
					t.Fatalf("RecoverRoot = %s (committed %v), want %s", got.ID, committed, want.ID)
				}
				if _, ok, _ := src.PendingRoot(t.Context()); ok {
					t.Fatal("pending root key left after recovery")
				}
				if cur := rootOf(t, src); cur.ID != want.ID {
					t.Fatalf("source's root key %s, want %s", cur.ID, want.ID)
				}
				w.root = got
				w.open()
				w.verify(3)
				if st := w.status(); st.Root != want.ID {
					t.Fatalf("status root %s, want %s", st.Root, want.ID)
				}
				// The rotation can be done again after an undone one.
				if step == "stage" {
					if _, err := w.keys.RotateRoot(t.Context(), src, newRoot(t)); err != nil {
						t.Fatal(err)
					}
				}
			})
		}
	}
}

func TestRecoverRootNeitherOpens(t *testing.T) {
	w := newWorld(t)
	w.seed(1)
	src := w.keyFile()
	w.rotateAndDrain()
	if err := src.StageRoot(t.Context(), newRoot(t)); err != nil {
		t.Fatal(err)
	}
	_, _, err := keys.RecoverRoot(t.Context(), w.st, src, newRoot(t))
	if err == nil {
		t.Fatal("RecoverRoot with two foreign keys succeeded")
	}
	if _, ok, _ := src.PendingRoot(t.Context()); !ok {
		t.Fatal("RecoverRoot deleted the pending key though nothing opens")
	}
}
