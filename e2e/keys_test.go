package e2e

// Master key versions through the binary: rotation under load, a re-wrap
// killed with SIGKILL and finished after a restart, and a data dir copied
// without its key.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

type keyStatus struct {
	Current      string
	RootKey      string
	RootKeyWraps int
	Versions     []struct {
		Id        string
		State     string
		Root      bool
		Envelopes int
	}
	Rewrap struct {
		Pending, Done int
		Running       bool
	}
}

// runKey runs `rotor key args…` against srv with the root key and returns
// its stdout; it must succeed.
func runKey(t testing.TB, srv *server, args ...string) string {
	t.Helper()
	return runRotorAt(t, srv, append([]string{"key"}, args...)...)
}

func masterKeyStatus(t testing.TB, srv *server) keyStatus {
	t.Helper()
	var st keyStatus
	out := runKey(t, srv, "status", "-o", "json")
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("rotor key status -o json: %v\n%s", err, out)
	}
	return st
}

// waitRewrapped polls until no envelope is under an old version.
func waitRewrapped(t testing.TB, srv *server) keyStatus {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := masterKeyStatus(t, srv)
		old := 0
		for _, v := range st.Versions {
			if v.Id != st.Current {
				old += v.Envelopes
			}
		}
		if st.Rewrap.Pending == 0 && old == 0 {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("re-wrap did not finish: %+v", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestMasterKeyRotationUnderLoad(t *testing.T) {
	t.Parallel()
	srv := startServer(t, withEnv("ROTOR_TEST_REWRAP_BATCH=20"), withArgs("--rate-limit", "0"))
	c := client(t, srv)
	prefix := uniqueName(t)
	const n = 60
	for i := range n {
		createString(t, c, fmt.Sprintf("%s-%d", prefix, i), fmt.Sprintf("initial-%d", i))
	}

	var ops, errs atomic.Int64
	var last sync.Map  // secret name → last value written
	var maybe sync.Map // secret name → a later value whose write the end of the run cut off: it may have committed
	ctx, stop := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				name := fmt.Sprintf("%s-%d", prefix, (g*n/8+i)%n)
				var err error
				if i%4 == 0 && (g*n/8+i)%n%8 == g {
					// Each goroutine writes only its own secrets, so the last
					// value written is known.
					v := fmt.Sprintf("g%d-%d", g, i)
					_, err = c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(name), SecretString: aws.String(v)})
					switch {
					case err == nil:
						last.Store(name, v)
					case ctx.Err() != nil:
						maybe.Store(name, v)
					}
				} else {
					_, err = c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)})
				}
				if ctx.Err() != nil {
					return
				}
				ops.Add(1)
				if err != nil {
					errs.Add(1)
					t.Errorf("g%d %s: %v", g, name, err)
				}
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	first := runKey(t, srv, "rotate")
	time.Sleep(1200 * time.Millisecond)
	runKey(t, srv, "rotate")
	time.Sleep(1300 * time.Millisecond)
	stop()
	wg.Wait()
	t.Logf("%d requests during two rotations, %d errors; %s", ops.Load(), errs.Load(), strings.TrimSpace(first))
	if errs.Load() != 0 {
		t.Fatalf("%d errors", errs.Load())
	}

	st := waitRewrapped(t, srv)
	if len(st.Versions) != 3 || !strings.HasPrefix(st.Current, "mkv-3-") || st.RootKeyWraps < 1 {
		t.Errorf("status after two rotations = %+v", st)
	}
	for i := range n {
		name := fmt.Sprintf("%s-%d", prefix, i)
		want := fmt.Sprintf("initial-%d", i)
		if v, ok := last.Load(name); ok {
			want = v.(string)
		}
		got := getString(t, c, name)
		if m, ok := maybe.Load(name); ok && got == m.(string) {
			continue
		}
		if got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	text := runKey(t, srv, "status")
	if !strings.Contains(text, "current: "+st.Current) || !strings.Contains(text, "(root)") {
		t.Errorf("rotor key status:\n%s", text)
	}
	t.Logf("rotor key status:\n%s", text)

	// The versions survive a restart: everything still opens.
	srv.restart(t)
	c = client(t, srv)
	if got := getString(t, c, prefix+"-1"); got == "" {
		t.Error("empty value after restart")
	}
}

func TestMasterKeyRewrapSurvivesKill9(t *testing.T) {
	t.Parallel()
	srv := startServer(t, withEnv("ROTOR_TEST_REWRAP_BATCH=1", "ROTOR_TEST_REWRAP_DELAY=20ms"))
	c := client(t, srv)
	prefix := uniqueName(t)
	const n = 60
	for i := range n {
		createString(t, c, fmt.Sprintf("%s-%d", prefix, i), fmt.Sprintf("value-%d", i))
	}
	runKey(t, srv, "rotate")
	deadline := time.Now().Add(10 * time.Second)
	var st keyStatus
	for {
		st = masterKeyStatus(t, srv)
		if st.Rewrap.Done >= 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("re-wrap makes no progress: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st.Rewrap.Pending == 0 {
		t.Fatalf("re-wrap finished before the kill: %+v", st)
	}
	exited := srv.exited()
	must(t, syscall.Kill(srv.pid(), syscall.SIGKILL))
	<-exited
	_, _ = srv.stop()
	t.Logf("killed during the re-wrap: %d done, %d pending", st.Rewrap.Done, st.Rewrap.Pending)

	must(t, srv.start())
	c = client(t, srv)
	after := masterKeyStatus(t, srv)
	if after.Rewrap.Done < st.Rewrap.Done {
		t.Errorf("progress went back after the restart: %d done before, %d after", st.Rewrap.Done, after.Rewrap.Done)
	}
	waitRewrapped(t, srv)
	for i := range n {
		name := fmt.Sprintf("%s-%d", prefix, i)
		if got, want := getString(t, c, name), fmt.Sprintf("value-%d", i); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
}

func TestDataDirWithoutMasterKey(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	name := uniqueName(t)
	createString(t, client(t, srv), name, "only with the key")
	runKey(t, srv, "rotate")
	waitRewrapped(t, srv)
	_, err := srv.stop()
	must(t, err)

	// Copy everything but master.key.
	copyDir := t.TempDir()
	entries, err := os.ReadDir(srv.dataDir)
	must(t, err)
	for _, e := range entries {
		if e.IsDir() || e.Name() == "master.key" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(srv.dataDir, e.Name()))
		must(t, err)
		if strings.Contains(string(b), "only with the key") {
			t.Errorf("%s holds the value in plain text", e.Name())
		}
		must(t, os.WriteFile(filepath.Join(copyDir, e.Name()), b, 0o600))
	}
	out, code := runRotor(t, []string{"ROTOR_ROOT_ACCESS_KEY_ID=" + testAccessKeyID, "ROTOR_ROOT_SECRET_ACCESS_KEY=" + testSecretAccessKey},
		"server", "--listen", "127.0.0.1:0", "--data-dir", copyDir)
	if code == 0 || strings.Contains(out, "rotor server listening") {
		t.Fatalf("server started on a data dir without its master key; output:\n%s", out)
	}
	if !strings.Contains(out, "master.key") {
		t.Errorf("the refusal does not name master.key:\n%s", out)
	}
	t.Logf("refusal: %s", strings.TrimSpace(out))
	must(t, srv.start())
}

// TestRootKeyRotation replaces master.key after a leak: refused while the
// root key wraps data keys, then done online; the new master.key opens the
// data dir after a restart, and the old one opens nothing.
func TestRootKeyRotation(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	c := client(t, srv)
	prefix := uniqueName(t)
	const n = 10
	for i := range n {
		createString(t, c, fmt.Sprintf("%s-%d", prefix, i), fmt.Sprintf("value-%d", i))
	}
	keyPath := filepath.Join(srv.dataDir, "master.key")
	oldKey, err := os.ReadFile(keyPath)
	must(t, err)
	cliEnv := []string{"HOME=" + t.TempDir(), "AWS_ENDPOINT_URL_SECRETS_MANAGER=" + srv.endpoint(),
		"AWS_ACCESS_KEY_ID=" + testAccessKeyID, "AWS_SECRET_ACCESS_KEY=" + testSecretAccessKey, "AWS_REGION=" + region}

	out, code := runRotor(t, cliEnv, "key", "rotate-root")
	if code != 1 || !strings.Contains(out, "the root key still wraps") || !strings.Contains(out, "rotor key rotate") {
		t.Fatalf("rotate-root before rotate: exit %d\n%s", code, out)
	}
	before := masterKeyStatus(t, srv)

	runKey(t, srv, "rotate")
	waitRewrapped(t, srv)
	text := runKey(t, srv, "rotate-root")
	t.Logf("rotor key rotate-root: %s", strings.TrimSpace(text))
	st := masterKeyStatus(t, srv)
	if st.RootKey == before.RootKey || !strings.HasPrefix(st.RootKey, "mk-") || !strings.Contains(text, st.RootKey) {
		t.Fatalf("status after rotate-root: root %s (was %s)", st.RootKey, before.RootKey)
	}
	newKey, err := os.ReadFile(keyPath)
	must(t, err)
	if string(newKey) == string(oldKey) {
		t.Fatal("master.key did not change")
	}
	if _, err := os.Stat(keyPath + ".next"); err == nil {
		t.Error("master.key.next is left")
	}
	// The server keeps serving, and new versions use the new root key.
	for i := range n {
		if got, want := getString(t, c, fmt.Sprintf("%s-%d", prefix, i)), fmt.Sprintf("value-%d", i); got != want {
			t.Errorf("after rotate-root: %q, want %q", got, want)
		}
	}
	runKey(t, srv, "rotate")
	createString(t, c, prefix+"-new", "after the root rotation")

	srv.restart(t)
	c = client(t, srv)
	if got := masterKeyStatus(t, srv).RootKey; got != st.RootKey {
		t.Errorf("root key after restart: %s, want %s", got, st.RootKey)
	}
	for i := range n {
		if got, want := getString(t, c, fmt.Sprintf("%s-%d", prefix, i)), fmt.Sprintf("value-%d", i); got != want {
			t.Errorf("after restart: %q, want %q", got, want)
		}
	}
	if got := getString(t, c, prefix+"-new"); got != "after the root rotation" {
		t.Errorf("after restart: %q", got)
	}
	_, err = srv.stop()
	must(t, err)

	// Crash after master.key.next was written, before the store committed:
	// the pending key opens nothing and is dropped.
	foreign := make([]byte, 32)
	_, _ = rand.Read(foreign)
	must(t, os.WriteFile(keyPath+".next", []byte(base64.StdEncoding.EncodeToString(foreign)+"\n"), 0o600))
	must(t, srv.start())
	if got := getString(t, client(t, srv), prefix+"-1"); got != "value-1" {
		t.Errorf("after a crash before the commit: %q", got)
	}
	_, err = srv.stop()
	must(t, err)
	if _, err := os.Stat(keyPath + ".next"); err == nil {
		t.Error("the uncommitted master.key.next is left")
	}
	// Crash after the store committed, before the rename: the pending key
	// opens the versions and is installed.
	must(t, os.Rename(keyPath, keyPath+".next"))
	must(t, os.WriteFile(keyPath, oldKey, 0o600))
	must(t, srv.start())
	if got := getString(t, client(t, srv), prefix+"-1"); got != "value-1" {
		t.Errorf("after a crash before the rename: %q", got)
	}
	_, err = srv.stop()
	must(t, err)
	if b, err := os.ReadFile(keyPath); err != nil || string(b) != string(newKey) {
		t.Errorf("master.key after recovery is not the new key (%v)", err)
	}

	// A copy of the data dir with the OLD master.key is refused.
	copyDir := t.TempDir()
	entries, err := os.ReadDir(srv.dataDir)
	must(t, err)
	for _, e := range entries {
		if e.IsDir() || e.Name() == "master.key" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(srv.dataDir, e.Name()))
		must(t, err)
		must(t, os.WriteFile(filepath.Join(copyDir, e.Name()), b, 0o600))
	}
	must(t, os.WriteFile(filepath.Join(copyDir, "master.key"), oldKey, 0o600))
	out, code = runRotor(t, []string{"ROTOR_ROOT_ACCESS_KEY_ID=" + testAccessKeyID, "ROTOR_ROOT_SECRET_ACCESS_KEY=" + testSecretAccessKey},
		"server", "--listen", "127.0.0.1:0", "--data-dir", copyDir)
	if code == 0 || strings.Contains(out, "rotor server listening") || !strings.Contains(out, "does not belong to this store") {
		t.Fatalf("server with the old master.key: exit %d\n%s", code, out)
	}
	t.Logf("refusal: %s", strings.TrimSpace(out))
	must(t, srv.start())
}
