package keys_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rotor-secrets/rotor/internal/auth"
	"github.com/rotor-secrets/rotor/internal/keyring"
	"github.com/rotor-secrets/rotor/internal/keys"
	"github.com/rotor-secrets/rotor/internal/secrets"
	"github.com/rotor-secrets/rotor/internal/store"
	"github.com/rotor-secrets/rotor/internal/store/sqlite"
)

var metaItems = []keys.MetaItem{{Key: "keyring.check", AAD: []byte("rotor/key-check")}, {Key: "audit.signing_key", AAD: []byte("rotor/audit-signing-key")}}

// world is a store with secrets, access keys and sealed meta items, and the
// services over it.
type world struct {
	t    *testing.T
	path string
	st   store.Store
	root keyring.MasterKey
	kr   *keyring.Keyring
	svc  *secrets.Service
	keys *keys.Service
	now  atomic.Int64 // the keys service's clock, Unix ns
	// tune, when set, changes the keys service's Config at open.
	tune func(*keys.Config)
}

func newWorld(t *testing.T) *world {
	t.Helper()
	root, err := keyring.NewMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, path: filepath.Join(t.TempDir(), "rotor.db"), root: root}
	w.now.Store(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	w.open()
	return w
}

// open opens the store and the services afresh, as a restarted server
// does: a keyring with the root key only.
func (w *world) open() {
	t := w.t
	t.Helper()
	st, err := sqlite.Open(t.Context(), w.path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	kr, err := keyring.New(w.root)
	if err != nil {
		t.Fatal(err)
	}
	w.st, w.kr = st, kr
	cfg := keys.Config{
		Store: st, Keyring: kr, Root: w.root, Meta: metaItems, BatchSize: 7,
		Grace: time.Second, Now: func() time.Time { return time.Unix(0, w.now.Load()) },
		Region: "us-east-1", AccountID: "123456789012",
	}
	if w.tune != nil {
		w.tune(&cfg)
	}
	w.keys, err = keys.Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	w.svc = secrets.New(secrets.Config{Region: "us-east-1", AccountID: "123456789012", Store: st, Keyring: kr,
		KMSKeys: kmsKeys{w.keys}})
}

func (w *world) advance(d time.Duration) { w.now.Add(int64(d)) }

// seed creates n secrets with two versions each, three access keys and
// the meta items.
func (w *world) seed(n int) {
	t, ctx := w.t, w.t.Context()
	t.Helper()
	for i := range n {
		name := fmt.Sprintf("s%03d", i)
		if _, err := w.svc.CreateSecret(ctx, secrets.CreateSecretInput{Name: name, Value: secrets.StringValue("v1-" + name)}); err != nil {
			t.Fatal(err)
		}
		if _, err := w.svc.PutSecretValue(ctx, secrets.PutSecretValueInput{SecretID: name, Value: secrets.StringValue("v2-" + name)}); err != nil {
			t.Fatal(err)
		}
	}
	ak := auth.NewStoreKeys(w.st, w.kr)
	for i := range 3 {
		id := fmt.Sprintf("AKRTTESTKEY%05d", i)
		if err := ak.Put(ctx, id, "secret-"+id, "arn:aws:iam::123456789012:root", true); err != nil {
			t.Fatal(err)
		}
	}
	err := w.st.Write(ctx, func(tx store.Tx) error {
		for _, it := range metaItems {
			sealed, _, err := w.kr.Seal([]byte("meta-"+it.Key), it.AAD)
			if err != nil {
				return err
			}
			if err := tx.PutMeta(ctx, it.Key, string(sealed)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// verify reads every value back through the services' public paths.
func (w *world) verify(n int) {
	t, ctx := w.t, w.t.Context()
	t.Helper()
	for i := range n {
		name := fmt.Sprintf("s%03d", i)
		for stage, want := range map[string]string{"AWSCURRENT": "v2-" + name, "AWSPREVIOUS": "v1-" + name} {
			out, err := w.svc.GetSecretValue(ctx, secrets.GetSecretValueInput{SecretID: name, VersionStage: stage})
			if err != nil {
				t.Fatalf("GetSecretValue(%s, %s): %v", name, stage, err)
			}
			if got := string(out.Value.Reveal()); got != want {
				t.Fatalf("GetSecretValue(%s, %s) = %q, want %q", name, stage, got, want)
			}
		}
	}
	ak := auth.NewStoreKeys(w.st, w.kr)
	for i := range 3 {
		id := fmt.Sprintf("AKRTTESTKEY%05d", i)
		sec, _, err := ak.SecretKey(ctx, id)
		if err != nil || sec != "secret-"+id {
			t.Fatalf("SecretKey(%s) = %q, %v", id, sec, err)
		}
	}
	err := w.st.Read(ctx, func(tx store.Tx) error {
		for _, it := range metaItems {
			v, err := tx.Meta(ctx, it.Key)
			if err != nil {
				return err
			}
			pt, err := w.kr.Open([]byte(v), it.AAD)
			if err != nil || string(pt) != "meta-"+it.Key {
				return fmt.Errorf("meta %s: %q, %v", it.Key, pt, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// drain runs the job's steps until it has nothing left to do, advancing
// the clock over grace periods; it returns the number of steps.
func (w *world) drain() int {
	w.t.Helper()
	for i := 1; i < 10_000; i++ {
		res, err := w.keys.Step(w.t.Context())
		if err != nil {
			w.t.Fatal(err)
		}
		switch {
		case res.More:
		case res.Wait > 0:
			w.advance(res.Wait)
		default:
			return i
		}
	}
	w.t.Fatal("re-wrap does not end")
	return 0
}

func (w *world) status() keys.Status {
	w.t.Helper()
	st, err := w.keys.Status(w.t.Context())
	if err != nil {
		w.t.Fatal(err)
	}
	return st
}

func envelopes(st keys.Status) map[string]int {
	m := make(map[string]int)
	for _, v := range st.Versions {
		m[v.ID] = v.Envelopes
	}
	return m
}

func TestRotateRewrapsEverything(t *testing.T) {
	w := newWorld(t)
	const n = 20
	w.seed(n)
	const total = 2*n + 3 + 2 // versions, access keys, meta items

	st := w.status()
	if st.Current != w.root.ID || len(st.Versions) != 1 || !st.Versions[0].Root || st.Versions[0].Envelopes != total || st.Rewrap.Running {
		t.Fatalf("status before rotation = %+v", st)
	}

	v, err := w.keys.Rotate(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(v.ID, "mkv-2-") || v.State != store.KeyCurrent || w.kr.CurrentKeyID() != v.ID {
		t.Fatalf("Rotate = %+v; keyring current %s", v, w.kr.CurrentKeyID())
	}
	// New writes are under the new version at once.
	out, err := w.svc.CreateSecret(t.Context(), secrets.CreateSecretInput{Name: "extra", Value: secrets.StringValue("x")})
	if err != nil {
		t.Fatal(err)
	}
	var ver store.Version
	if err := w.st.Read(t.Context(), func(tx store.Tx) (err error) { ver, err = tx.Version(t.Context(), out.ARN, out.VersionID); return }); err != nil {
		t.Fatal(err)
	}
	if ver.KeyID != v.ID {
		t.Errorf("new version's key id = %s, want %s", ver.KeyID, v.ID)
	}
	st = w.status()
	if got := envelopes(st); got[w.root.ID] != total || got[v.ID] != 1 || st.Rewrap.Pending != total || !st.Rewrap.Running || st.RootWraps != 1 {
		t.Fatalf("status after rotation = %+v", st)
	}

	w.drain()
	st = w.status()
	if got := envelopes(st); got[w.root.ID] != 0 || got[v.ID] != total+1 {
		t.Errorf("envelopes after re-wrap = %v", got)
	}
	if st.Rewrap.Pending != 0 || st.Rewrap.Running || st.Rewrap.Done != total {
		t.Errorf("progress after re-wrap = %+v, want 0 pending, %d done, not running", st.Rewrap, total)
	}
	if st.Versions[0].ID != w.root.ID || st.Versions[0].State != store.KeyDestroyed {
		t.Errorf("root version = %+v, want destroyed", st.Versions[0])
	}
	w.verify(n)

	// A restart loads the version through the root key.
	w.st.Close()
	w.open()
	if w.kr.CurrentKeyID() != v.ID || w.kr.Has(w.root.ID) {
		t.Errorf("after restart: current %s, holds root %v", w.kr.CurrentKeyID(), w.kr.Has(w.root.ID))
	}
	w.verify(n)

	// A second rotation retires the first version; the root wraps both
	// until the first is destroyed.
	v3, err := w.keys.Rotate(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(v3.ID, "mkv-3-") {
		t.Errorf("second version id = %s, want mkv-3-…", v3.ID)
	}
	if st := w.status(); st.RootWraps != 2 {
		t.Errorf("RootWraps = %d, want 2", st.RootWraps)
	}
	w.drain()
	if st := w.status(); st.RootWraps != 1 || envelopes(st)[v3.ID] != total+1 {
		t.Errorf("after the second re-wrap: %+v", st)
	}
	w.verify(n)
}

func TestRewrapResumesAfterCrash(t *testing.T) {
	w := newWorld(t)
	const n = 30
	w.seed(n)
	v, err := w.keys.Rotate(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := w.keys.Step(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	// Crash: drop the services without a word, open them again.
	w.st.Close()
	w.open()
	if w.kr.CurrentKeyID() != v.ID {
		t.Fatalf("after restart the current key is %s, want %s", w.kr.CurrentKeyID(), v.ID)
	}
	st := w.status()
	if st.Rewrap.Done != 3*7 || st.Rewrap.Pending != 2*n+5-3*7 {
		t.Fatalf("progress after the crash = %+v", st.Rewrap)
	}
	// The rest takes the remaining batches, not a pass from the start.
	steps := w.drain()
	if want := (2*n-3*7)/7 + 1 + 1 + 1 + 1; steps > want+1 {
		t.Errorf("resumed job took %d steps, want about %d", steps, want)
	}
	st = w.status()
	if st.Rewrap.Pending != 0 || st.Rewrap.Done != 2*n+5 || st.Versions[0].State != store.KeyDestroyed {
		t.Errorf("status after resuming = %+v", st)
	}
	w.verify(n)
}

func TestRotateCrashBeforeKeyringUpdate(t *testing.T) {
	w := newWorld(t)
	w.seed(2)
	v, err := w.keys.Rotate(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// Another process (a restart) sees the stored current version.
	kr, err := keyring.New(w.root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keys.Open(t.Context(), keys.Config{Store: w.st, Keyring: kr, Root: w.root}); err != nil {
		t.Fatal(err)
	}
	if kr.CurrentKeyID() != v.ID {
		t.Errorf("current after Open = %s, want %s", kr.CurrentKeyID(), v.ID)
	}
}

func TestDestroyOnlyWhenUnused(t *testing.T) {
	w := newWorld(t)
	w.seed(3)
	_, err := w.keys.Rotate(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// Run the pass, but not the grace.
	var res keys.StepResult
	for res, err = w.keys.Step(t.Context()); err == nil && res.More; res, err = w.keys.Step(t.Context()) {
	}
	if err != nil {
		t.Fatal(err)
	}
	if res.Wait <= 0 {
		t.Fatalf("last step = %+v, want a wait for the grace", res)
	}
	if st := w.status(); st.Versions[0].State != store.KeyRetired {
		t.Fatalf("root version state = %s during the grace, want retired", st.Versions[0].State)
	}
	// A late envelope under the retired version (sealed before the
	// rotation, written after the pass).
	old, err := keyring.New(w.root)
	if err != nil {
		t.Fatal(err)
	}
	ak := auth.NewStoreKeys(w.st, old)
	if err := ak.Put(t.Context(), "AKRTLATEKEY000000", "late-secret", "arn:aws:iam::123456789012:root", true); err != nil {
		t.Fatal(err)
	}
	w.advance(2 * time.Second)
	res, err = w.keys.Step(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Destroyed) != 0 || !res.More {
		t.Fatalf("step with a late envelope = %+v, want another pass, nothing destroyed", res)
	}
	w.drain()
	st := w.status()
	if st.Versions[0].State != store.KeyDestroyed || envelopes(st)[w.root.ID] != 0 {
		t.Errorf("status = %+v, want the root version destroyed", st)
	}
	sec, _, err := auth.NewStoreKeys(w.st, w.kr).SecretKey(t.Context(), "AKRTLATEKEY000000")
	if err != nil || sec != "late-secret" {
		t.Errorf("late key = %q, %v", sec, err)
	}
	w.verify(3)
}

func TestRunForgetsDestroyedAfterGrace(t *testing.T) {
	w := newWorld(t)
	w.seed(2)
	// Real time for Run.
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "x.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	kr, _ := keyring.New(w.root)
	ks, err := keys.Open(t.Context(), keys.Config{Store: st, Keyring: kr, Root: w.root, Grace: 20 * time.Millisecond, PollInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { ks.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	if _, err := ks.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for kr.Has(w.root.ID) {
		if time.Now().After(deadline) {
			t.Fatal("the keyring still holds the destroyed root version")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRewrapUnderLoad(t *testing.T) {
	w := newWorld(t)
	const n = 40
	w.seed(n)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { w.keys.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	var errs atomic.Int64
	var ops atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("s%03d", (g*7+i)%n)
				var err error
				if i%3 == 0 {
					_, err = w.svc.PutSecretValue(t.Context(), secrets.PutSecretValueInput{
						SecretID: name, Value: secrets.StringValue(fmt.Sprintf("load-%d-%d", g, i)),
						VersionStages: []string{fmt.Sprintf("L%d", g)},
					})
				} else {
					var out secrets.SecretValue
					out, err = w.svc.GetSecretValue(t.Context(), secrets.GetSecretValueInput{SecretID: name, VersionStage: "AWSPREVIOUS"})
					if err == nil && string(out.Value.Reveal()) != "v1-"+name {
						err = fmt.Errorf("%s = %q", name, out.Value.Reveal())
					}
				}
				ops.Add(1)
				if err != nil {
					errs.Add(1)
					t.Errorf("g%d: %v", g, err)
					return
				}
			}
		}()
	}
	for range 3 {
		time.Sleep(100 * time.Millisecond)
		if _, err := w.keys.Rotate(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()
	if errs.Load() != 0 {
		t.Fatalf("%d errors in %d operations", errs.Load(), ops.Load())
	}
	// Finish: everything ends under the current version.
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := w.status()
		if st.Rewrap.Pending == 0 {
			for _, v := range st.Versions {
				if v.ID != st.Current && v.Envelopes != 0 {
					t.Errorf("version %s still wraps %d", v.ID, v.Envelopes)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("re-wrap did not finish: %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("%d operations, 0 errors", ops.Load())
	w.verify(n)
}

func TestOpenWithWrongRootKey(t *testing.T) {
	w := newWorld(t)
	w.seed(1)
	if _, err := w.keys.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	other, _ := keyring.NewMasterKey()
	kr, _ := keyring.New(other)
	_, err := keys.Open(t.Context(), keys.Config{Store: w.st, Keyring: kr, Root: other})
	if err == nil || !strings.Contains(err.Error(), "does not belong to this store") {
		t.Fatalf("Open with another root key: %v", err)
	}
}
