package storetest

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rotor-secrets/rotor/internal/store"
)

// hangGuard bounds waits that only a broken backend would exceed.
const hangGuard = 30 * time.Second

func (h harness) testAccessKeys(t *testing.T) {
	get := func(t *testing.T, s store.Store, id string) (store.AccessKey, error) {
		t.Helper()
		var k store.AccessKey
		err := s.Read(t.Context(), func(tx store.Tx) error {
			var err error
			k, err = tx.AccessKey(t.Context(), id)
			return err
		})
		return k, err
	}
	put := func(t *testing.T, s store.Store, k store.AccessKey) {
		t.Helper()
		mustWrite(t, s, func(tx store.Tx) error { return tx.PutAccessKey(t.Context(), k) })
	}
	check := func(t *testing.T, got, want store.AccessKey) {
		t.Helper()
		if got.ID != want.ID || !bytes.Equal(got.SealedSecret, want.SealedSecret) ||
			got.PrincipalARN != want.PrincipalARN || got.Active != want.Active {
			t.Errorf("AccessKey: got %+v, want %+v", got, want)
		}
		if d := diffTime("CreatedAt", got.CreatedAt, want.CreatedAt); d != "" {
			t.Errorf("AccessKey %s: %s", want.ID, d)
		}
	}
	key := store.AccessKey{
		ID:           "AKIAROTOREXAMPLE0001",
		SealedSecret: []byte{0x01, 0x04, 'm', 'k', '-', '1', 0x00, 0xff},
		PrincipalARN: "arn:aws:iam::123456789012:user/ci",
		Active:       true,
		CreatedAt:    t0.In(adelaide),
	}

	t.Run("PutThenGet", func(t *testing.T) {
		s := h.fresh(t)
		put(t, s, key)
		other := key
		other.ID, other.Active = "AKIAROTOREXAMPLE0002", false
		put(t, s, other)
		got, err := get(t, s, key.ID)
		if err != nil {
			t.Fatalf("AccessKey: %v", err)
		}
		check(t, got, key)
		got, err = get(t, s, other.ID)
		if err != nil {
			t.Fatalf("AccessKey: %v", err)
		}
		check(t, got, other)
	})

	t.Run("PutReplaces", func(t *testing.T) {
		s := h.fresh(t)
		put(t, s, key)
		repl := key
		repl.SealedSecret = []byte("rewrapped")
		repl.PrincipalARN = "arn:aws:iam::123456789012:role/admin"
		repl.Active = false
		repl.CreatedAt = t0.Add(time.Hour)
		put(t, s, repl)
		got, err := get(t, s, key.ID)
		if err != nil {
			t.Fatalf("AccessKey: %v", err)
		}
		check(t, got, repl)
	})

	t.Run("MissingIsNotFound", func(t *testing.T) {
		s := h.fresh(t)
		put(t, s, key)
		_, err := get(t, s, "AKIAROTOREXAMPLE9999")
		wantErr(t, "AccessKey", err, store.ErrNotFound)
		_, err = get(t, s, "akiarotorexample0001")
		wantErr(t, "AccessKey(other case)", err, store.ErrNotFound)
	})
}

func (h harness) testMeta(t *testing.T) {
	put := func(t *testing.T, s store.Store, key, value string) {
		t.Helper()
		mustWrite(t, s, func(tx store.Tx) error { return tx.PutMeta(t.Context(), key, value) })
	}
	want := func(t *testing.T, s store.Store, key, value string) {
		t.Helper()
		got, err := getMeta(t, s, key)
		if err != nil || got != value {
			t.Errorf("Meta(%s) = %q, %v; want %q", key, got, err, value)
		}
	}

	t.Run("MissingIsNotFound", func(t *testing.T) {
		s := h.fresh(t)
		_, err := getMeta(t, s, "absent")
		wantErr(t, "Meta", err, store.ErrNotFound)
	})

	t.Run("PutThenGet", func(t *testing.T) {
		s := h.fresh(t)
		put(t, s, "schema", "1")
		put(t, s, "keycheck/mk-1", `{"sealed":"AQRtay0x…"}`)
		put(t, s, "empty", "")
		// Sealed envelopes are kept as they are: any bytes, not only UTF-8.
		binary := string([]byte{0x01, 0x96, 0x00, 0xff, 'x'})
		put(t, s, "sealed", binary)
		want(t, s, "sealed", binary)
		want(t, s, "schema", "1")
		want(t, s, "keycheck/mk-1", `{"sealed":"AQRtay0x…"}`)
		want(t, s, "empty", "")
	})

	t.Run("PutReplaces", func(t *testing.T) {
		s := h.fresh(t)
		put(t, s, "k", "old")
		put(t, s, "k", "new")
		want(t, s, "k", "new")
	})
}

func (h harness) testTransactions(t *testing.T) {
	t.Run("WriteReturnsFnErrorAndCommitsNothing", func(t *testing.T) {
		s := h.fresh(t)
		sec := newSecret("s")
		createSecrets(t, s, sec)
		err := s.Write(t.Context(), func(tx store.Tx) error {
			ctx := t.Context()
			if err := tx.CreateSecret(ctx, newSecret("new")); err != nil {
				return err
			}
			if err := tx.CreateVersion(ctx, newVersion(sec.ARN, "v1", t0)); err != nil {
				return err
			}
			if err := tx.PutMeta(ctx, "k", "v"); err != nil {
				return err
			}
			changed := sec
			changed.Description = "changed"
			if err := tx.UpdateSecret(ctx, changed); err != nil {
				return err
			}
			return errBoom
		})
		if !errors.Is(err, errBoom) {
			t.Fatalf("Write: got %v, want fn's error", err)
		}
		_, err = getSecretByName(t, s, "new")
		wantErr(t, "SecretByName(new)", err, store.ErrNotFound)
		_, err = getVersion(t, s, sec.ARN, "v1")
		wantErr(t, "Version", err, store.ErrNotFound)
		_, err = getMeta(t, s, "k")
		wantErr(t, "Meta", err, store.ErrNotFound)
		checkSecret(t, mustSecret(t, s, sec.ARN), sec)
	})

	t.Run("ReadReturnsFnError", func(t *testing.T) {
		s := h.fresh(t)
		if err := s.Read(t.Context(), func(store.Tx) error { return errBoom }); !errors.Is(err, errBoom) {
			t.Errorf("Read: got %v, want fn's error", err)
		}
	})

	t.Run("WriteSeesItsOwnChanges", func(t *testing.T) {
		s := h.fresh(t)
		mustWrite(t, s, func(tx store.Tx) error {
			ctx := t.Context()
			sec := newSecret("s")
			if err := tx.CreateSecret(ctx, sec); err != nil {
				return err
			}
			if _, err := tx.SecretByName(ctx, "s"); err != nil {
				return err
			}
			if err := tx.CreateVersion(ctx, newVersion(sec.ARN, "v1", t0)); err != nil {
				return err
			}
			if err := tx.SetStage(ctx, sec.ARN, "AWSCURRENT", "v1"); err != nil {
				return err
			}
			v, err := tx.VersionByStage(ctx, sec.ARN, "AWSCURRENT")
			if err != nil {
				return err
			}
			if v.VersionID != "v1" {
				t.Errorf("VersionByStage inside the Write: %s, want v1", v.VersionID)
			}
			return nil
		})
	})

	t.Run("FailedWriteLeavesTransactionUsable", func(t *testing.T) {
		// The domain handles ErrConflict and ErrNotFound inside a Write
		// (idempotent retries, races) and carries on; a backend whose
		// transaction dies on the first failed statement must isolate it.
		s := h.fresh(t)
		sec := fullSecret("s")
		createSecrets(t, s, sec, newSecret("taken"))
		createVersions(t, s, newVersion(sec.ARN, "v1", t0))
		mustWrite(t, s, func(tx store.Tx) error {
			ctx := t.Context()
			dup := newSecret("s")
			wantErr(t, "CreateSecret(duplicate)", tx.CreateSecret(ctx, dup), store.ErrConflict)
			wantErr(t, "CreateVersion(duplicate)", tx.CreateVersion(ctx, newVersion(sec.ARN, "v1", t0)), store.ErrConflict)
			renamed := sec
			renamed.Name = "taken"
			wantErr(t, "UpdateSecret(taken name)", tx.UpdateSecret(ctx, renamed), store.ErrConflict)
			wantErr(t, "SetStage(missing version)", tx.SetStage(ctx, sec.ARN, "AWSCURRENT", "absent"), store.ErrNotFound)
			wantErr(t, "UpdateVersion(missing)", tx.UpdateVersion(ctx, newVersion(sec.ARN, "absent", t0)), store.ErrNotFound)
			_, err := tx.Secret(ctx, arnOf("absent"))
			wantErr(t, "Secret(missing)", err, store.ErrNotFound)
			return tx.PutMeta(ctx, "after-errors", "committed")
		})
		if v, err := getMeta(t, s, "after-errors"); err != nil || v != "committed" {
			t.Errorf("Meta after the failed writes: %q, %v; want the write after them committed", v, err)
		}
		checkSecret(t, mustSecret(t, s, sec.ARN), sec)
	})

	t.Run("ReadCannotWrite", func(t *testing.T) {
		s := h.fresh(t)
		sec := newSecret("s")
		createSecrets(t, s, sec)
		createVersions(t, s, newVersion(sec.ARN, "v1", t0))
		setStage(t, s, sec.ARN, "AWSCURRENT", "v1")
		ctx := t.Context()
		changed := sec
		changed.Description = "changed"
		writes := []struct {
			name string
			call func(tx store.Tx) error
		}{
			{"CreateSecret", func(tx store.Tx) error { return tx.CreateSecret(ctx, newSecret("new")) }},
			{"UpdateSecret", func(tx store.Tx) error { return tx.UpdateSecret(ctx, changed) }},
			{"DeleteSecret", func(tx store.Tx) error { return tx.DeleteSecret(ctx, sec.ARN) }},
			{"CreateVersion", func(tx store.Tx) error { return tx.CreateVersion(ctx, newVersion(sec.ARN, "v2", t0)) }},
			{"UpdateVersion", func(tx store.Tx) error {
				v := newVersion(sec.ARN, "v1", t0)
				v.Sealed = []byte("changed")
				return tx.UpdateVersion(ctx, v)
			}},
			{"DeleteVersion", func(tx store.Tx) error { return tx.DeleteVersion(ctx, sec.ARN, "v1") }},
			{"SetStage", func(tx store.Tx) error { return tx.SetStage(ctx, sec.ARN, "custom", "v1") }},
			{"RemoveStage", func(tx store.Tx) error { return tx.RemoveStage(ctx, sec.ARN, "AWSCURRENT") }},
			{"PutAccessKey", func(tx store.Tx) error {
				return tx.PutAccessKey(ctx, store.AccessKey{ID: "AKIA1", SealedSecret: []byte("x"), CreatedAt: t0})
			}},
			{"PutMeta", func(tx store.Tx) error { return tx.PutMeta(ctx, "k", "v") }},
		}
		for _, w := range writes {
			t.Run(w.name, func(t *testing.T) {
				_ = s.Read(ctx, func(tx store.Tx) error {
					if err := w.call(tx); err == nil {
						t.Errorf("%s inside Read: got nil error", w.name)
					}
					return nil
				})
			})
		}
		// Nothing changed.
		checkSecret(t, mustSecret(t, s, sec.ARN), sec)
		_, err := getSecretByName(t, s, "new")
		wantErr(t, "SecretByName(new)", err, store.ErrNotFound)
		checkVersion(t, mustVersion(t, s, sec.ARN, "v1"), newVersion(sec.ARN, "v1", t0), true)
		checkStages(t, "v1", mustVersion(t, s, sec.ARN, "v1").Stages, []string{"AWSCURRENT"})
		_, err = getVersion(t, s, sec.ARN, "v2")
		wantErr(t, "Version(v2)", err, store.ErrNotFound)
		_, err = getMeta(t, s, "k")
		wantErr(t, "Meta", err, store.ErrNotFound)
		err = s.Read(ctx, func(tx store.Tx) error { _, err := tx.AccessKey(ctx, "AKIA1"); return err })
		wantErr(t, "AccessKey", err, store.ErrNotFound)
	})

	t.Run("PanicRollsBackAndPropagates", func(t *testing.T) {
		s := h.fresh(t)
		recovered := func(name string, run func()) {
			t.Helper()
			defer func() {
				if r := recover(); r != "storetest panic" {
					t.Errorf("%s: recovered %v, want fn's panic", name, r)
				}
			}()
			run()
		}
		recovered("Write", func() {
			_ = s.Write(t.Context(), func(tx store.Tx) error {
				if err := tx.PutMeta(t.Context(), "k", "v"); err != nil {
					return err
				}
				panic("storetest panic")
			})
		})
		recovered("Read", func() {
			_ = s.Read(t.Context(), func(tx store.Tx) error { panic("storetest panic") })
		})
		_, err := getMeta(t, s, "k")
		wantErr(t, "Meta after the panic", err, store.ErrNotFound)
		// The store still works: the write lock and connections were freed.
		done := make(chan error, 1)
		go func() {
			done <- s.Write(t.Context(), func(tx store.Tx) error { return tx.PutMeta(t.Context(), "k", "after") })
		}()
		if err := within(t, "Write after a panic", hangGuard, done); err != nil {
			t.Fatalf("Write after a panic: %v", err)
		}
		if v, err := getMeta(t, s, "k"); err != nil || v != "after" {
			t.Errorf("Meta = %q, %v; want after", v, err)
		}
	})

	t.Run("TxIsUnusableAfterFnReturns", func(t *testing.T) {
		s := h.fresh(t)
		var kept store.Tx
		mustWrite(t, s, func(tx store.Tx) error {
			kept = tx
			return tx.PutMeta(t.Context(), "k", "v")
		})
		if err := kept.PutMeta(t.Context(), "k", "late"); err == nil {
			t.Error("PutMeta on a committed Write's tx: got nil error")
		}
		mustRead(t, s, func(tx store.Tx) error { kept = tx; return nil })
		if _, err := kept.Meta(t.Context(), "k"); err == nil {
			t.Error("Meta on a finished Read's tx: got nil error")
		}
		if v, err := getMeta(t, s, "k"); err != nil || v != "v" {
			t.Errorf("Meta = %q, %v; want v", v, err)
		}
	})

	t.Run("ReadRunsAlongsideWriteAndSeesOnlyCommits", func(t *testing.T) {
		s := h.fresh(t)
		mustWrite(t, s, func(tx store.Tx) error { return tx.PutMeta(t.Context(), "k", "old") })
		inside, release := make(chan struct{}), make(chan struct{})
		writeDone := make(chan error, 1)
		go func() {
			writeDone <- s.Write(t.Context(), func(tx store.Tx) error {
				if err := tx.PutMeta(t.Context(), "k", "new"); err != nil {
					return err
				}
				close(inside)
				<-release
				return nil
			})
		}()
		within(t, "Write start", hangGuard, inside)
		readDone := make(chan error, 1)
		go func() {
			readDone <- s.Read(t.Context(), func(tx store.Tx) error {
				v, err := tx.Meta(t.Context(), "k")
				if err == nil && v != "old" {
					t.Errorf("Read during a Write saw %q, want the committed %q", v, "old")
				}
				return err
			})
		}()
		if err := within(t, "Read while a Write is open", hangGuard, readDone); err != nil {
			t.Errorf("Read: %v", err)
		}
		close(release)
		if err := within(t, "Write", hangGuard, writeDone); err != nil {
			t.Fatalf("Write: %v", err)
		}
		if v, err := getMeta(t, s, "k"); err != nil || v != "new" {
			t.Errorf("Meta after the commit = %q, %v; want new", v, err)
		}
	})

	t.Run("ReadSnapshotIsStable", func(t *testing.T) {
		s := h.fresh(t)
		sec := newSecret("s")
		createSecrets(t, s, sec)
		mustWrite(t, s, func(tx store.Tx) error { return tx.PutMeta(t.Context(), "k", "1") })
		mustRead(t, s, func(tx store.Tx) error {
			ctx := t.Context()
			before, err := tx.Meta(ctx, "k")
			if err != nil {
				return err
			}
			// A Write commits while this Read is open.
			done := make(chan error, 1)
			go func() {
				done <- s.Write(ctx, func(tx store.Tx) error {
					if err := tx.PutMeta(ctx, "k", "2"); err != nil {
						return err
					}
					return tx.DeleteSecret(ctx, sec.ARN)
				})
			}()
			if err := within(t, "Write during a Read", hangGuard, done); err != nil {
				return err
			}
			after, err := tx.Meta(ctx, "k")
			if err != nil {
				return err
			}
			if after != before {
				t.Errorf("Meta changed inside one Read: %q then %q", before, after)
			}
			if _, err := tx.Secret(ctx, sec.ARN); err != nil {
				t.Errorf("Secret deleted by a later Write vanished inside the Read: %v", err)
			}
			return nil
		})
		if v, err := getMeta(t, s, "k"); err != nil || v != "2" {
			t.Errorf("Meta after the Read = %q, %v; want 2", v, err)
		}
	})
}

func (h harness) testConcurrency(t *testing.T) {
	t.Run("WritesAreSerialisedAndReadsNeverTorn", func(t *testing.T) {
		s := h.fresh(t)
		const writers, perWriter, readers = 8, 25, 4
		ctx := t.Context()
		// Each Write bumps "counter" and then "mirror" to the same value; a
		// Read must always see them equal, and never going backwards.
		meta := func(tx store.Tx, key string) (int, error) {
			v, err := tx.Meta(ctx, key)
			if errors.Is(err, store.ErrNotFound) {
				return 0, nil
			}
			if err != nil {
				return 0, err
			}
			return strconv.Atoi(v)
		}
		var (
			wg       sync.WaitGroup
			readerWG sync.WaitGroup
			stop     = make(chan struct{})
		)
		for range readers {
			readerWG.Go(func() {
				last := 0
				for {
					select {
					case <-stop:
						return
					default:
					}
					err := s.Read(ctx, func(tx store.Tx) error {
						c, err := meta(tx, "counter")
						if err != nil {
							return err
						}
						m, err := meta(tx, "mirror")
						if err != nil {
							return err
						}
						if c != m {
							t.Errorf("torn read: counter %d, mirror %d", c, m)
						}
						if c < last {
							t.Errorf("counter went back from %d to %d", last, c)
						}
						last = c
						return nil
					})
					if err != nil {
						t.Errorf("Read: %v", err)
						return
					}
				}
			})
		}
		for range writers {
			wg.Go(func() {
				for range perWriter {
					err := s.Write(ctx, func(tx store.Tx) error {
						c, err := meta(tx, "counter")
						if err != nil {
							return err
						}
						if err := tx.PutMeta(ctx, "counter", strconv.Itoa(c+1)); err != nil {
							return err
						}
						return tx.PutMeta(ctx, "mirror", strconv.Itoa(c+1))
					})
					if err != nil {
						t.Errorf("Write: %v", err)
						return
					}
				}
			})
		}
		wg.Wait()
		close(stop)
		readerWG.Wait()
		if v, err := getMeta(t, s, "counter"); err != nil || v != strconv.Itoa(writers*perWriter) {
			t.Errorf("counter = %q, %v; want %d", v, err, writers*perWriter)
		}
	})
}

func (h harness) testContext(t *testing.T) {
	cancelled := func(t *testing.T) context.Context {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		return ctx
	}

	t.Run("CancelledBeforeRead", func(t *testing.T) {
		s := h.fresh(t)
		ctx := cancelled(t)
		err := s.Read(ctx, func(tx store.Tx) error {
			_, err := tx.Meta(ctx, "k")
			if errors.Is(err, store.ErrNotFound) {
				return nil // the Read must still fail
			}
			return err
		})
		ctxErr(t, "Read", err)
	})

	t.Run("CancelledBeforeWrite", func(t *testing.T) {
		s := h.fresh(t)
		ctx := cancelled(t)
		err := s.Write(ctx, func(tx store.Tx) error {
			_ = tx.PutMeta(ctx, "k", "v")
			return nil
		})
		ctxErr(t, "Write", err)
		_, err = getMeta(t, s, "k")
		wantErr(t, "Meta", err, store.ErrNotFound)
	})

	t.Run("CancelledDuringWrite", func(t *testing.T) {
		s := h.fresh(t)
		ctx, cancel := context.WithCancel(t.Context())
		err := s.Write(ctx, func(tx store.Tx) error {
			if err := tx.PutMeta(ctx, "k", "v"); err != nil {
				return err
			}
			cancel()
			_ = tx.PutMeta(ctx, "k2", "v2")
			return nil // even when fn ignores it, the cancellation wins
		})
		ctxErr(t, "Write", err)
		for _, key := range []string{"k", "k2"} {
			_, err = getMeta(t, s, key)
			wantErr(t, "Meta("+key+")", err, store.ErrNotFound)
		}
	})

	t.Run("CancelledDuringRead", func(t *testing.T) {
		s := h.fresh(t)
		mustWrite(t, s, func(tx store.Tx) error { return tx.PutMeta(t.Context(), "k", "v") })
		ctx, cancel := context.WithCancel(t.Context())
		err := s.Read(ctx, func(tx store.Tx) error {
			cancel()
			_, _ = tx.Meta(ctx, "k")
			return nil
		})
		ctxErr(t, "Read", err)
	})

	t.Run("CancelledWhileWaitingForTheWriteLock", func(t *testing.T) {
		s := h.fresh(t)
		inside, release := make(chan struct{}), make(chan struct{})
		firstDone := make(chan error, 1)
		go func() {
			firstDone <- s.Write(t.Context(), func(tx store.Tx) error {
				if err := tx.PutMeta(t.Context(), "first", "v"); err != nil {
					return err
				}
				close(inside)
				<-release
				return nil
			})
		}()
		within(t, "first Write start", hangGuard, inside)
		defer func() {
			close(release)
			if err := within(t, "first Write", hangGuard, firstDone); err != nil {
				t.Errorf("first Write: %v", err)
			}
		}()

		ctx, cancel := context.WithCancel(t.Context())
		secondDone := make(chan error, 1)
		go func() {
			secondDone <- s.Write(ctx, func(tx store.Tx) error { return tx.PutMeta(ctx, "second", "v") })
		}()
		cancel()
		ctxErr(t, "second Write", within(t, "cancelled Write waiting for the lock", hangGuard, secondDone))
	})
}

func (h harness) testClose(t *testing.T) {
	t.Run("PingBeforeClose", func(t *testing.T) {
		s := h.fresh(t)
		if err := s.Ping(t.Context()); err != nil {
			t.Errorf("Ping: %v", err)
		}
	})

	t.Run("WaitsForRunningTransactions", func(t *testing.T) {
		s, closeStore := h.freshClosable(t)
		inside, release := make(chan struct{}), make(chan struct{})
		writeDone := make(chan error, 1)
		go func() {
			writeDone <- s.Write(t.Context(), func(tx store.Tx) error {
				close(inside)
				<-release
				return tx.PutMeta(t.Context(), "k", "v")
			})
		}()
		within(t, "Write start", hangGuard, inside)
		closed := make(chan error, 1)
		go func() { closed <- closeStore() }()
		// Close must not return while the Write runs. Waiting a moment can
		// only miss a bug, never invent one.
		select {
		case err := <-closed:
			t.Errorf("Close returned (%v) while a Write was running", err)
		case <-time.After(100 * time.Millisecond):
		}
		close(release)
		if err := within(t, "Write", hangGuard, writeDone); err != nil {
			t.Errorf("Write running when Close was called: %v", err)
		}
		if err := within(t, "Close", hangGuard, closed); err != nil {
			t.Errorf("Close: %v", err)
		}
	})

	t.Run("TransactionsAfterCloseFail", func(t *testing.T) {
		s, closeStore := h.freshClosable(t)
		if err := closeStore(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		called := false
		if err := s.Read(t.Context(), func(store.Tx) error { called = true; return nil }); err == nil {
			t.Error("Read after Close: got nil error")
		}
		if err := s.Write(t.Context(), func(store.Tx) error { called = true; return nil }); err == nil {
			t.Error("Write after Close: got nil error")
		}
		if called {
			t.Error("fn ran after Close")
		}
	})
}
