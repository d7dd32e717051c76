package custom_test

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rotor-secrets/rotor/internal/keyring"
	"github.com/rotor-secrets/rotor/internal/rotation"
	"github.com/rotor-secrets/rotor/internal/rotation/custom"
	"github.com/rotor-secrets/rotor/internal/store/sqlite"
	"github.com/rotor-secrets/rotor/internal/webhook"
)

// runtime returns a Runtime over a fresh store whose function directory
// holds the given scripts, and the credentials it issued.
type issued struct {
	mu      sync.Mutex
	creds   []custom.Credentials
	revoked int
	policy  []string
}

func newRuntime(t *testing.T, scripts map[string]string) (*custom.Runtime, *issued, string) {
	t.Helper()
	return newRuntimeTB(t, scripts)
}

func newRuntimeTB(t testing.TB, scripts map[string]string) (*custom.Runtime, *issued, string) {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "rotor.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	mk, _ := keyring.NewMasterKey()
	kr, _ := keyring.New(mk)
	dir := t.TempDir()
	for name, body := range scripts {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	is := &issued{}
	n := 0
	rt := &custom.Runtime{
		Catalog:  &custom.Catalog{Store: st, Keyring: kr, Dir: dir},
		Endpoint: func() string { return "http://127.0.0.1:7300" },
		Region:   "eu-west-1",
		Issue: func(name, arn string, ttl time.Duration) (custom.Credentials, func(), error) {
			is.mu.Lock()
			defer is.mu.Unlock()
			n++
			c := custom.Credentials{AccessKeyID: "ASIATEST" + strconv.Itoa(n), SecretAccessKey: "temp-secret-" + strconv.Itoa(n)}
			is.creds = append(is.creds, c)
			is.policy = append(is.policy, custom.SessionPolicy(arn))
			return c, func() { is.mu.Lock(); is.revoked++; is.mu.Unlock() }, nil
		},
		Values: func(context.Context, string) []string {
			return []string{`{"username":"app","password":"hunter2-very-secret"}`}
		},
	}
	return rt, is, dir
}

const secretARN = "arn:aws:secretsmanager:eu-west-1:000000000000:secret:db-AbCdEf"

func register(t *testing.T, rt *custom.Runtime, d custom.Definition) (custom.Definition, string) {
	t.Helper()
	got, key, err := rt.Catalog.Register(t.Context(), d)
	if err != nil {
		t.Fatalf("Register(%+v): %v", d, err)
	}
	return got, key
}

func invoke(t *testing.T, rt *custom.Runtime, name string, step rotation.Step) error {
	t.Helper()
	fn, ok := rt.Lookup(name)
	if !ok {
		t.Fatalf("Lookup(%s): not found", name)
	}
	return fn.Invoke(t.Context(), rotation.Event{Step: step, SecretID: secretARN, ClientRequestToken: "tok-1"})
}

func TestExecRunsWithEventAndEnvironment(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	rt, is, _ := newRuntime(t, map[string]string{"fn.sh": `#!/bin/sh
cat > "$1.event"
env > "$1.env"
pwd > "$1.pwd"
exit 0
`})
	register(t, rt, custom.Definition{Name: "fn", Kind: custom.KindExec, Command: "fn.sh", Args: []string{out}})
	if err := invoke(t, rt, "fn", rotation.StepCreate); err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	ev, _ := os.ReadFile(out + ".event")
	if string(ev) != `{"Step":"createSecret","SecretId":"`+secretARN+`","ClientRequestToken":"tok-1","RotationToken":"tok-1"}` {
		t.Errorf("stdin = %s", ev)
	}
	env, _ := os.ReadFile(out + ".env")
	for _, want := range []string{
		"AWS_ENDPOINT_URL_SECRETS_MANAGER=http://127.0.0.1:7300", "SECRETS_MANAGER_ENDPOINT=http://127.0.0.1:7300",
		"AWS_REGION=eu-west-1", "AWS_DEFAULT_REGION=eu-west-1", "AWS_ACCESS_KEY_ID=ASIATEST1",
		"AWS_SECRET_ACCESS_KEY=temp-secret-1", "AWS_LAMBDA_FUNCTION_NAME=fn",
	} {
		if !strings.Contains(string(env), want+"\n") {
			t.Errorf("environment lacks %s:\n%s", want, env)
		}
	}
	// Nothing of the server's own environment but PATH.
	if strings.Contains(string(env), "GOPATH=") || strings.Contains(string(env), "USER=") {
		t.Errorf("the server's environment leaked:\n%s", env)
	}
	pwd, _ := os.ReadFile(out + ".pwd")
	if home := strings.TrimSpace(string(pwd)); !strings.Contains(string(env), "HOME="+home+"\n") {
		t.Errorf("HOME is not the step's own directory %s", home)
	} else if _, err := os.Stat(home); !os.IsNotExist(err) {
		t.Errorf("the step's directory %s outlived it: %v", home, err)
	}
	if is.revoked != 1 || !strings.Contains(is.policy[0], `"Resource":"`+secretARN+`"`) {
		t.Errorf("credentials revoked %d times, policy %s", is.revoked, is.policy[0])
	}
}

func TestExecFailureCarriesRedactedStderr(t *testing.T) {
	rt, is, _ := newRuntime(t, map[string]string{"fail.sh": `#!/bin/sh
echo "connecting with password hunter2-very-secret" >&2
echo "key $AWS_SECRET_ACCESS_KEY" >&2
echo 'config: {"password": "other-pass"}' >&2
echo "ALTER ROLE failed" >&2
exit 3
`})
	register(t, rt, custom.Definition{Name: "fail", Kind: custom.KindExec, Command: "fail.sh"})
	err := invoke(t, rt, "fail", rotation.StepSet)
	if err == nil {
		t.Fatal("a failing function succeeded")
	}
	msg := err.Error()
	for _, want := range []string{"function fail failed at step setSecret", "exit status 3", "ALTER ROLE failed", custom.Redacted} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	for _, leak := range []string{"hunter2-very-secret", "temp-secret-1", "other-pass"} {
		if strings.Contains(msg, leak) {
			t.Errorf("error %q leaks %q", msg, leak)
		}
	}
	if is.revoked != 1 {
		t.Errorf("credentials revoked %d times, want 1", is.revoked)
	}
}

func TestExecTimeoutKillsTheProcessGroup(t *testing.T) {
	pids := filepath.Join(t.TempDir(), "pids")
	rt, _, _ := newRuntime(t, map[string]string{"hang.sh": `#!/bin/sh
sleep 300 &
echo $$ $! > "$1"
echo "still working" >&2
wait
`})
	register(t, rt, custom.Definition{Name: "hang", Kind: custom.KindExec, Command: "hang.sh", Args: []string{pids}, Timeout: time.Second})
	err := invoke(t, rt, "hang", rotation.StepTest)
	if err == nil || !strings.Contains(err.Error(), "did not finish step testSecret within 1s: killed") || !strings.Contains(err.Error(), "still working") {
		t.Fatalf("Invoke = %v, want a timeout that names the step and carries stderr", err)
	}
	b, _ := os.ReadFile(pids)
	for _, f := range strings.Fields(string(b)) {
		pid, _ := strconv.Atoi(f)
		deadline := time.Now().Add(5 * time.Second)
		for syscall.Kill(pid, 0) == nil {
			// A zombie until reaped: its parent is gone, init reaps it.
			if st, err := os.ReadFile("/proc/" + f + "/stat"); err == nil && strings.Contains(string(st), ") Z ") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("process %d of the hung function is still alive", pid)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if len(strings.Fields(string(b))) != 2 {
		t.Fatalf("pids file %q", b)
	}
}

func TestWebhookFunction(t *testing.T) {
	rt, _, _ := newRuntime(t, nil)
	var mu sync.Mutex
	var got []string
	var key []byte
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if err := webhook.Verify(key, r.Header, body, time.Now(), 0); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		got = append(got, string(body))
		w.WriteHeader(status)
		w.Write([]byte("password=hunter2-very-secret, the database said no"))
	}))
	defer srv.Close()
	_, k := register(t, rt, custom.Definition{Name: "hook", Kind: custom.KindWebhook, URL: srv.URL, Timeout: time.Second})
	var err error
	if key, err = base64.StdEncoding.DecodeString(k); err != nil || len(key) != 32 {
		t.Fatalf("signing key %q: %v", k, err)
	}
	if err := invoke(t, rt, "hook", rotation.StepFinish); err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	if len(got) != 1 || !strings.Contains(got[0], `"Step":"finishSecret"`) {
		t.Errorf("receiver got %q", got)
	}
	mu.Lock()
	status = http.StatusInternalServerError
	mu.Unlock()
	err = invoke(t, rt, "hook", rotation.StepSet)
	if err == nil || !strings.Contains(err.Error(), "500") || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("a 500: %v, want a failure naming the status without the password", err)
	}

	// A receiver slower than the timeout fails the step.
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body) // then the server notices the client hanging up
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}))
	defer slow.Close()
	register(t, rt, custom.Definition{Name: "slow", Kind: custom.KindWebhook, URL: slow.URL, Timeout: time.Second})
	if err := invoke(t, rt, "slow", rotation.StepTest); err == nil || !strings.Contains(err.Error(), "did not answer step testSecret within 1s") {
		t.Errorf("a slow receiver: %v", err)
	}
}

func TestCatalog(t *testing.T) {
	rt, _, dir := newRuntime(t, map[string]string{"ok.sh": "#!/bin/sh\n"})
	if err := os.WriteFile(filepath.Join(dir, "data.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := rt.Catalog
	ctx := t.Context()
	bad := []struct {
		d    custom.Definition
		want string
	}{
		{custom.Definition{Name: "", Kind: custom.KindExec, Command: "ok.sh"}, "Name"},
		{custom.Definition{Name: "has space", Kind: custom.KindExec, Command: "ok.sh"}, "Name"},
		{custom.Definition{Name: "rotor-mine", Kind: custom.KindExec, Command: "ok.sh"}, "built-in"},
		{custom.Definition{Name: "x", Kind: "lambda"}, "Type"},
		{custom.Definition{Name: "x", Kind: custom.KindExec, Command: "../ok.sh"}, "without a path"},
		{custom.Definition{Name: "x", Kind: custom.KindExec, Command: "/bin/sh"}, "without a path"},
		{custom.Definition{Name: "x", Kind: custom.KindExec, Command: "missing.sh"}, "not an executable"},
		{custom.Definition{Name: "x", Kind: custom.KindExec, Command: "data.txt"}, "not an executable"},
		{custom.Definition{Name: "x", Kind: custom.KindExec, Command: "ok.sh", Timeout: time.Hour}, "Timeout"},
		{custom.Definition{Name: "x", Kind: custom.KindWebhook, URL: "ftp://example.com/"}, "Url"},
		{custom.Definition{Name: "x", Kind: custom.KindWebhook, URL: "https://user:pw@example.com/"}, "Url"},
		{custom.Definition{Name: "x", Kind: custom.KindWebhook, URL: "https://example.com/", Command: "ok.sh"}, "no Command"},
	}
	for _, b := range bad {
		_, _, err := c.Register(ctx, b.d)
		var ie *custom.InvalidError
		if !errors.As(err, &ie) || !strings.Contains(ie.Msg, b.want) {
			t.Errorf("Register(%+v) = %v, want an InvalidError about %s", b.d, err, b.want)
		}
	}
	d, key := register(t, rt, custom.Definition{Name: "b", Kind: custom.KindExec, Command: "ok.sh"})
	if key != "" || d.Timeout != custom.DefaultTimeout || d.Created.IsZero() {
		t.Errorf("registered %+v, key %q", d, key)
	}
	register(t, rt, custom.Definition{Name: "a", Kind: custom.KindWebhook, URL: "https://example.com/rotate"})
	if _, _, err := c.Register(ctx, custom.Definition{Name: "a", Kind: custom.KindWebhook, URL: "https://example.com/"}); !errors.Is(err, custom.ErrExists) {
		t.Errorf("a second a: %v, want ErrExists", err)
	}
	list, err := c.List(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "a" || list[1].Name != "b" {
		t.Fatalf("List = %+v, %v", list, err)
	}
	if _, ok := rt.Lookup("rotor-postgres-single-user"); ok {
		t.Error("Lookup answered for a built-in name")
	}
	if err := c.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, "a"); !errors.Is(err, custom.ErrNotFound) {
		t.Errorf("second Delete: %v", err)
	}
	if _, ok := rt.Lookup("a"); ok {
		t.Error("a deleted function is still found")
	}
	// Without a function directory exec functions are refused.
	off := &custom.Catalog{Store: c.Store, Keyring: c.Keyring}
	if _, _, err := off.Register(ctx, custom.Definition{Name: "c", Kind: custom.KindExec, Command: "ok.sh"}); err == nil || !strings.Contains(err.Error(), "--function-dir") {
		t.Errorf("exec without a directory: %v", err)
	}
}

func TestRedact(t *testing.T) {
	got := custom.Redact(`user app, pass s3cr3t-pass; {"password":"x1"} token=abc password: 'q w'`, []string{`{"username":"app","password":"s3cr3t-pass"}`})
	for _, leak := range []string{"s3cr3t-pass", `"x1"`, "abc", "'q w'"} {
		if strings.Contains(got, leak) {
			t.Errorf("Redact left %q in %q", leak, got)
		}
	}
	if !strings.Contains(got, "user app") {
		t.Errorf("Redact hid the user name: %q", got)
	}
}

// TestExecBackgroundChildAndLongOutput: a function that exits 0 with a
// child still running succeeds at once (the child is killed), and a long
// failure keeps the end of its output without a fragment of a value cut
// at the start of what was read.
func TestExecBackgroundChildAndLongOutput(t *testing.T) {
	pid := filepath.Join(t.TempDir(), "pid")
	rt, _, _ := newRuntime(t, map[string]string{
		"bg.sh": `#!/bin/sh
sleep 300 &
echo $! > "$1"
exit 0
`,
		"long.sh": `#!/bin/sh
echo "AAAAAAAAAAAAAAAAAAAAhunter2-very-secret" >&2
i=0
while [ $i -lt 600 ]; do echo "filler line $i xxxxxxxxxxxxxxxxxxxxxxxxxxx" >&2; i=$((i+1)); done
echo "the real reason: permission denied" >&2
exit 1
`})
	register(t, rt, custom.Definition{Name: "bg", Kind: custom.KindExec, Command: "bg.sh", Args: []string{pid}, Timeout: 30 * time.Second})
	start := time.Now()
	if err := invoke(t, rt, "bg", rotation.StepCreate); err != nil {
		t.Fatalf("a function that exited 0: %v", err)
	}
	t.Logf("returned after %v", time.Since(start))
	b, _ := os.ReadFile(pid)
	child, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if child == 0 {
		t.Fatalf("pid file %q", b)
	}
	for deadline := time.Now().Add(5 * time.Second); syscall.Kill(child, 0) == nil; time.Sleep(20 * time.Millisecond) {
		if st, err := os.ReadFile("/proc/" + strconv.Itoa(child) + "/stat"); err == nil && strings.Contains(string(st), ") Z ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the background child %d outlived its function", child)
		}
	}

	register(t, rt, custom.Definition{Name: "long", Kind: custom.KindExec, Command: "long.sh"})
	err := invoke(t, rt, "long", rotation.StepSet)
	if err == nil || !strings.Contains(err.Error(), "the real reason: permission denied") {
		t.Fatalf("Invoke = %v, want the end of the output", err)
	}
	if strings.Contains(err.Error(), "very-secret") || len(err.Error()) > 1000 {
		t.Errorf("message of %d bytes: %q", len(err.Error()), err.Error())
	}
	if got := rotation.ErrorText(err); !strings.Contains(got, "permission denied") {
		t.Errorf("as stored: %q lost the end", got)
	}
}

// BenchmarkExecStep: what running one step of an exec function costs
// Rotor (session credentials, a fresh HOME, fork/exec of a trivial
// /bin/sh script, collecting its exit), without the function's own work.
func BenchmarkExecStep(b *testing.B) {
	rt, _, _ := newRuntimeTB(b, map[string]string{"noop.sh": "#!/bin/sh\ncat >/dev/null\n"})
	if _, _, err := rt.Catalog.Register(b.Context(), custom.Definition{Name: "noop", Kind: custom.KindExec, Command: "noop.sh"}); err != nil {
		b.Fatal(err)
	}
	fn, _ := rt.Lookup("noop")
	b.ResetTimer()
	for range b.N {
		if err := fn.Invoke(b.Context(), rotation.Event{Step: rotation.StepTest, SecretID: secretARN, ClientRequestToken: "tok-1"}); err != nil {
			b.Fatal(err)
		}
	}
}
