package e2e

// Custom rotation functions through the binary: rotor function register,
// list and delete; exec functions from the server's --function-dir (the
// scripts of testdata/functions, driving the AWS CLI and psql with the
// temporary credentials Rotor gives them) and webhook functions (signed
// POSTs to an httptest receiver) named by RotateSecret's Lambda ARN like the
// built-ins. A single-user PostgreSQL rotation written as a shell script
// rotates a real password; a function's credentials reach its own secret
// only and die with its step; its standard error is the failure's message,
// redacted; a function that outlives its timeout is killed with its
// children.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/rotor-secrets/rotor/internal/dbtest"
	"github.com/rotor-secrets/rotor/internal/webhook"
)

const (
	redactedMark = "[REDACTED]"     // what replaces a secret in a function's failure message
	procGoneWait = 10 * time.Second // for killed processes to disappear
)

// functionDir copies the scripts names of testdata/functions into a new
// directory, executable, and returns it: the server's --function-dir.
func functionDir(t testing.TB, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join("testdata", "functions", n))
		must(t, err)
		must(t, os.WriteFile(filepath.Join(dir, n), b, 0o755))
	}
	return dir
}

// needTools fails t unless every tool is on PATH. The server's exec
// functions run with the server's PATH, which is the test's.
func needTools(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not on PATH (%v): the exec functions of testdata/functions need it; "+
				"`make test` installs awscli and postgresql (scripts/test-deps.sh), or apt-get install awscli postgresql-client", tool, err)
		}
	}
}

// functionPath is the server's PATH, which its exec functions inherit: the
// test's, with the AWS CLI's real directory first. A version manager's shim
// (pyenv) costs about as much as the CLI's own start-up on every call, and
// the scripts call it a dozen times.
func functionPath(t testing.TB) option {
	t.Helper()
	awsBin.once.Do(func() { awsBin.path, awsBin.err = findAWS() })
	if awsBin.err != nil {
		t.Fatalf("the AWS CLI (aws) is not on PATH (%v): `make test` installs it (scripts/test-deps.sh), or apt-get install awscli", awsBin.err)
	}
	// The last PATH of the server's environment wins.
	return withEnv("PATH=" + filepath.Dir(awsBin.path) + string(os.PathListSeparator) + os.Getenv("PATH"))
}

// functionCLI runs `rotor function args…` against srv with the root key and
// returns its stdout, stderr and exit status.
func functionCLI(t testing.TB, srv *server, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, rotorBin, append([]string{"function"}, args...)...)
	cmd.Env = append(cleanEnv("AWS_", "ROTOR_", "HOME="),
		"HOME="+t.TempDir(),
		"AWS_ENDPOINT_URL_SECRETS_MANAGER="+srv.endpoint(),
		"AWS_ACCESS_KEY_ID="+testAccessKeyID,
		"AWS_SECRET_ACCESS_KEY="+testSecretAccessKey,
		"AWS_REGION="+region,
	)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ctx.Err() == nil:
		code = ee.ExitCode()
	default:
		t.Fatalf("rotor function %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String(), errb.String(), code
}

// cliFunction is a function as `rotor function … -o json` prints it.
type cliFunction struct {
	FunctionName, FunctionArn, Type, Command, Url string
	Args                                          []string
	TimeoutSeconds                                int64
	CreatedDate                                   *float64
	SigningKey                                    string
}

// registerFunction runs `rotor function register NAME args… -o json`, which
// must succeed, and checks the name and ARN of the answer.
func registerFunction(t testing.TB, srv *server, name string, args ...string) cliFunction {
	t.Helper()
	full := append(append([]string{"register", name}, args...), "-o", "json")
	out, errb, code := functionCLI(t, srv, full...)
	if code != 0 {
		t.Fatalf("rotor function %s: exit status %d\n%s", strings.Join(full, " "), code, errb)
	}
	var f cliFunction
	if err := json.Unmarshal([]byte(out), &f); err != nil {
		t.Fatalf("rotor function %s: output is not JSON: %v\n%s", strings.Join(full, " "), err, out)
	}
	if f.FunctionName != name || f.FunctionArn != lambdaARN(name) {
		t.Fatalf("rotor function register %s = %+v, want ARN %s", name, f, lambdaARN(name))
	}
	return f
}

// listFunctions runs `rotor function list -o json`.
func listFunctions(t testing.TB, srv *server) []cliFunction {
	t.Helper()
	out, errb, code := functionCLI(t, srv, "list", "-o", "json")
	if code != 0 {
		t.Fatalf("rotor function list: exit status %d\n%s", code, errb)
	}
	var l struct{ Functions []cliFunction }
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		t.Fatalf("rotor function list -o json: %v\n%s", err, out)
	}
	return l.Functions
}

// functionNames are the names of fs.
func functionNames(fs []cliFunction) []string {
	var names []string
	for _, f := range fs {
		names = append(names, f.FunctionName)
	}
	return names
}

// rotateNow calls RotateSecret with the function fn and RotateImmediately,
// and returns the new version's id.
func rotateNow(t testing.TB, c *secretsmanager.Client, id, fn string) string {
	t.Helper()
	out, err := c.RotateSecret(t.Context(), &secretsmanager.RotateSecretInput{
		SecretId: aws.String(id), RotationLambdaARN: aws.String(lambdaARN(fn)), RotateImmediately: aws.Bool(true),
	})
	if err != nil {
		t.Fatalf("RotateSecret %s with %s: %v", id, fn, err)
	}
	return aws.ToString(out.VersionId)
}

// waitGaveUp waits until the run of version has spent its attempts (the
// servers of these tests allow one) and returns the status.
func waitGaveUp(t testing.TB, srv *server, id, version string) rotationStatus {
	t.Helper()
	return waitStatus(t, srv, id, "the rotation to "+version+" to give up", func(st rotationStatus) bool {
		return st.InProgress != nil && st.InProgress.VersionId == version && st.InProgress.GaveUp
	})
}

// wantRotatedVersions fails t unless id has exactly two versions: before,
// AWSPREVIOUS, and after, AWSCURRENT. After keeps AWSPENDING, if the
// function left it, as on AWS (UpdateSecretVersionStage moves AWSCURRENT
// only).
func wantRotatedVersions(t testing.TB, c *secretsmanager.Client, id, before, after string) {
	t.Helper()
	stages := versionStages(t, c, id)
	cur := slices.DeleteFunc(slices.Clone(stages[after]), func(s string) bool { return s == "AWSPENDING" })
	if len(stages) != 2 || !sameSet(stages[before], []string{"AWSPREVIOUS"}) || !sameSet(cur, []string{"AWSCURRENT"}) {
		t.Errorf("versions after the rotation: %v, want exactly %s AWSPREVIOUS and %s AWSCURRENT (and perhaps AWSPENDING)", stages, before, after)
	}
}

// currentVersion is the id of id's AWSCURRENT version.
func currentVersion(t testing.TB, c *secretsmanager.Client, id string) string {
	t.Helper()
	out, err := c.GetSecretValue(t.Context(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
	if err != nil {
		t.Fatalf("GetSecretValue %s: %v", id, err)
	}
	return aws.ToString(out.VersionId)
}

// TestExecFunctionRotatesPostgres: a single-user PostgreSQL rotation written
// as a shell script (AWS CLI and psql, as AWS's Lambda template) rotates a
// real user's password. Its createSecret and setSecret fail once after doing
// their work, so that the engine's retries run them again: the steps are
// idempotent and the rotation ends with exactly one new version.
func TestExecFunctionRotatesPostgres(t *testing.T) {
	t.Parallel()
	needTools(t, "bash", "aws", "python3", "psql")
	pg := dbtest.StartPostgres(t)
	d := pgTarget(t, pg)
	dir := functionDir(t, "pg-single-user.sh")
	state := t.TempDir()
	srv := startRotationServer(t, 5, withArgs("--function-dir", dir), functionPath(t))
	c := client(t, srv)
	seen := newSeenPasswords()

	pw := initialPassword()
	seen.add(pw, pg.SuperPassword)
	user := pg.CreateUser(t, "fn", pw)
	initial := dbCreds{Engine: "postgres", Host: pg.Host, Port: pg.Port, Username: user, Password: pw, DBName: d.dbname}
	id := aws.ToString(createString(t, c, uniqueName(t), initial.json(t)).ARN)
	v0, _ := mustCreds(t, c, id, "AWSCURRENT")
	d.wantLogin(t, "the initial credentials", initial)

	f := registerFunction(t, srv, "pg-single", "--exec", "pg-single-user.sh", "--timeout", "60s",
		"--arg", state, "--arg", "createSecret", "--arg", "setSecret")
	if f.Type != "exec" || f.Command != "pg-single-user.sh" || f.TimeoutSeconds != 60 || !slices.Equal(f.Args, []string{state, "createSecret", "setSecret"}) {
		t.Errorf("rotor function register pg-single = %+v", f)
	}

	start := time.Now()
	version := rotateNow(t, c, id, "pg-single")
	st := waitRotation(t, srv, id, version)
	t.Logf("exec function rotation (4 steps, 2 of them twice, through the AWS CLI and psql) took %v; outcome %s after %d attempts",
		time.Since(start).Round(time.Millisecond), st.History[0].Outcome, st.History[0].Attempts)
	if h := st.History[0]; h.Outcome != "succeeded" || h.Function != "pg-single" {
		t.Fatalf("rotation to %s: outcome %q, function %q, error %q; server log:\n%s", version, h.Outcome, h.Function, h.Error, rotationLog(srv))
	}
	for _, step := range []string{"createSecret", "setSecret"} {
		if _, err := os.Stat(filepath.Join(state, step+".failed")); err != nil {
			t.Errorf("the script did not inject its failure after %s: %v", step, err)
		}
		logEntry(t, srv, "of the injected "+step+" failure", func(e map[string]any) bool {
			msg, _ := e["err"].(string)
			return e["msg"] == "rotation step failed" && e["step"] == step && e["version_id"] == version &&
				strings.Contains(msg, "injected failure after the work of "+step)
		})
	}

	cur, now := mustCreds(t, c, id, "AWSCURRENT")
	seen.add(now.Password)
	if cur != version {
		t.Errorf("AWSCURRENT is version %s, want the rotation's %s", cur, version)
	}
	if now.Password == initial.Password || len(now.Password) != 32 || strings.ContainsAny(now.Password, `/@"'\`) {
		t.Errorf("AWSCURRENT's password is unchanged or not a 32-character random one without /@\"'\\ (%d characters)", len(now.Password))
	}
	rest, want := now, initial
	rest.Password, want.Password = "", ""
	if rest != want {
		t.Errorf("AWSCURRENT's other fields changed: %+v, want %+v", rest, want)
	}
	d.wantLogin(t, "AWSCURRENT after the rotation", now)
	d.wantRefused(t, "the password before the rotation", initial)
	prevVersion, prev := mustCreds(t, c, id, "AWSPREVIOUS")
	if prevVersion != v0 || prev != initial {
		t.Errorf("AWSPREVIOUS = %s %+v, want the initial version %s", prevVersion, prev, v0)
	}
	wantRotatedVersions(t, c, id, v0, version)
	wantNoPasswordsInLogs(t, c, seen, []string{id}, srv)
}

// TestExecFunctionCredentialsAreScoped: the temporary credentials an exec
// function gets act on its secret only (DescribeSecret, GetSecretValue,
// ListSecretVersionIds and GetRandomPassword allowed; another secret,
// ListSecrets, CreateSecret, DeleteSecret, PutResourcePolicy and Rotor's
// own operations denied), are ASIA keys that no longer exist once the step
// ended, and the failure's message is the script's standard error with the
// secret's password and the secret access key redacted.
func TestExecFunctionCredentialsAreScoped(t *testing.T) {
	t.Parallel()
	needTools(t, "bash", "aws", "python3")
	dir := functionDir(t, "probe-credentials.sh")
	out := t.TempDir()
	srv := startRotationServer(t, 1, withArgs("--function-dir", dir), functionPath(t))
	c := client(t, srv)

	password := "Probe" + initialPassword()
	id := aws.ToString(createString(t, c, uniqueName(t), `{"username":"probe","password":"`+password+`"}`).ARN)
	other := uniqueName(t)
	createString(t, c, other, "someone else's")
	registerFunction(t, srv, "probe", "--exec", "probe-credentials.sh", "--arg", out, "--arg", other, "--arg", rotorBin, "--timeout", "60s")

	start := time.Now()
	version := rotateNow(t, c, id, "probe")
	st := waitGaveUp(t, srv, id, version)
	t.Logf("the probing step took %v (13 AWS CLI and rotor calls)", time.Since(start).Round(time.Millisecond))

	results, err := os.ReadFile(filepath.Join(out, "results"))
	if err != nil {
		t.Fatalf("the script wrote no results (%v); status %s", err, st.raw)
	}
	got := map[string]string{}
	for line := range strings.SplitSeq(strings.TrimSpace(string(results)), "\n") {
		name, outcome, _ := strings.Cut(line, " ")
		got[name] = outcome
	}
	const denied = "failed AccessDeniedException"
	want := map[string]string{
		"own-describe": "ok", "own-get": "ok", "own-versions": "ok", "random-password": "ok",
		"other-get": denied, "other-describe": denied, "other-put": denied,
		"list-secrets": denied, "create-secret": denied, "own-delete": denied, "own-policy": denied,
		"rotor-register-function": denied, "rotor-list-functions": denied,
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s with the function's credentials: %q, want %q", name, got[name], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("results: %q", results)
	}

	// What the denied calls would have changed is unchanged.
	if v, err := getValue(t, c, other); err != nil || v != "someone else's" {
		t.Errorf("the other secret: %q, %v", v, err)
	}
	if _, err := c.DescribeSecret(t.Context(), &secretsmanager.DescribeSecretInput{SecretId: aws.String("probe-created-" + version)}); apiCode(err) != "ResourceNotFoundException" {
		t.Errorf("DescribeSecret of the secret the function tried to create: %v, want ResourceNotFoundException", err)
	}
	if names := functionNames(listFunctions(t, srv)); !slices.Equal(names, []string{"probe"}) {
		t.Errorf("functions after the probe: %v, want only probe", names)
	}

	// The step's credentials no longer exist.
	creds, err := os.ReadFile(filepath.Join(out, "credentials"))
	must(t, err)
	keyID, secretKey, _ := strings.Cut(strings.TrimSpace(string(creds)), "\n")
	if !strings.HasPrefix(keyID, "ASIA") || keyID == testAccessKeyID || secretKey == "" {
		t.Fatalf("the function's credentials: key id %q (secret %d characters), want temporary ASIA… keys", keyID, len(secretKey))
	}
	stale := clientWithKey(srv, keyID, secretKey)
	ctx := t.Context()
	calls := map[string]func() error{
		"GetSecretValue": func() error {
			_, err := stale.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
			return err
		},
		"DescribeSecret": func() error {
			_, err := stale.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(id)})
			return err
		},
		"PutSecretValue": func() error {
			_, err := stale.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(id), SecretString: aws.String("late")})
			return err
		},
		"ListSecrets": func() error {
			_, err := stale.ListSecrets(ctx, &secretsmanager.ListSecretsInput{})
			return err
		},
		"GetRandomPassword": func() error {
			_, err := stale.GetRandomPassword(ctx, &secretsmanager.GetRandomPasswordInput{})
			return err
		},
	}
	for name, call := range calls {
		if code := apiCode(call()); code != "UnrecognizedClientException" && code != "InvalidClientTokenId" {
			t.Errorf("%s with the credentials of the finished step: %q, want UnrecognizedClientException or InvalidClientTokenId", name, code)
		}
	}
	if v, err := getValue(t, c, id); err != nil || !strings.Contains(v, password) {
		t.Errorf("the secret after the stale calls: %v (changed: %v)", err, !strings.Contains(v, password))
	}

	// The failure's message: the end of the script's standard error,
	// redacted, within what the engine stores.
	stderr, err := os.ReadFile(filepath.Join(out, "stderr.log"))
	must(t, err)
	msg := st.InProgress.LastError
	t.Logf("the script wrote %d bytes to standard error; LastError (%d bytes): %s", len(stderr), len(msg), msg)
	for _, want := range []string{
		"createSecret: function probe failed at step createSecret (exit status 1): ",
		"once more, the password is " + redactedMark + " (must be redacted)",
		"probe: and my secret access key is " + redactedMark + " (must be redacted)",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("LastError lacks %q: %s", want, msg)
		}
	}
	if strings.Contains(msg, password) || strings.Contains(msg, secretKey) {
		t.Errorf("LastError holds the secret's password or the secret access key: %s", msg)
	}
	// The script's last words are what explains a failure: they are kept.
	if last := "probe: failing on purpose"; !strings.HasSuffix(msg, last) {
		t.Errorf("LastError does not end with the script's last line %q; it ends %q", last, msg[max(0, len(msg)-120):])
	}
	logs := srv.logs.String()
	if strings.Contains(logs, password) || strings.Contains(logs, secretKey) {
		t.Errorf("the server's log holds the secret's password or the function's secret access key")
	}
	logEntry(t, srv, "of the failed step with the script's output", func(e map[string]any) bool {
		msg, _ := e["err"].(string)
		return e["msg"] == "rotation step failed" && e["version_id"] == version && strings.Contains(msg, "once more, the password is "+redactedMark)
	})
}

// hookEvent is one POST the receiver got.
type hookEvent struct {
	path      string
	verifyErr error
	header    http.Header
	ev        struct{ Step, SecretId, ClientRequestToken string }
}

// hookReceiver is a webhook rotation function: on /rotate it performs the
// rotation itself with its own (the root) credentials; on /down it answers
// 500 with the secret's current value in the body.
type hookReceiver struct {
	c *secretsmanager.Client

	mu     sync.Mutex
	keys   map[string][]byte // path → signing key
	events []hookEvent
}

// hookValue is the value the receiver gives the version token.
func hookValue(token string) string { return `{"password":"hook-` + token + `"}` }

func (h *hookReceiver) setKey(path, b64 string) error {
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(key) < 16 {
		return fmt.Errorf("SigningKey %q: %d bytes, %v", b64, len(key), err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.keys[path] = key
	return nil
}

func (h *hookReceiver) got(path string) []hookEvent {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []hookEvent
	for _, e := range h.events {
		if e.path == path {
			out = append(out, e)
		}
	}
	return out
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	key := h.keys[r.URL.Path]
	h.mu.Unlock()
	e := hookEvent{path: r.URL.Path, header: r.Header.Clone()}
	if key == nil {
		e.verifyErr = errors.New("no key for " + r.URL.Path)
	} else {
		e.verifyErr = webhook.Verify(key, r.Header, body, time.Now(), 0)
	}
	if err := json.Unmarshal(body, &e.ev); err != nil && e.verifyErr == nil {
		e.verifyErr = fmt.Errorf("body %q: %v", body, err)
	}
	h.mu.Lock()
	h.events = append(h.events, e)
	h.mu.Unlock()
	if e.verifyErr != nil {
		http.Error(w, e.verifyErr.Error(), http.StatusUnauthorized)
		return
	}
	ctx, id, token := r.Context(), aws.String(e.ev.SecretId), e.ev.ClientRequestToken
	switch r.URL.Path {
	case "/down":
		v, err := h.c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: id})
		if err == nil {
			err = errors.New("receiver down; the current value is " + aws.ToString(v.SecretString))
		}
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	case "/rotate":
	default:
		http.NotFound(w, r)
		return
	}
	switch e.ev.Step {
	case "createSecret":
		_, err = h.c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
			SecretId: id, ClientRequestToken: aws.String(token), SecretString: aws.String(hookValue(token)),
			VersionStages: []string{"AWSPENDING"},
		})
	case "setSecret":
	case "testSecret":
		var v *secretsmanager.GetSecretValueOutput
		v, err = h.c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: id, VersionId: aws.String(token), VersionStage: aws.String("AWSPENDING")})
		if err == nil && aws.ToString(v.SecretString) != hookValue(token) {
			err = errors.New("AWSPENDING does not hold the receiver's value")
		}
	case "finishSecret":
		var d *secretsmanager.DescribeSecretOutput
		d, err = h.c.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: id})
		if err != nil {
			break
		}
		for v, stages := range d.VersionIdsToStages {
			if v != token && slices.Contains(stages, "AWSCURRENT") {
				_, err = h.c.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
					SecretId: id, VersionStage: aws.String("AWSCURRENT"), MoveToVersionId: aws.String(token), RemoveFromVersionId: aws.String(v),
				})
			}
		}
	default:
		err = errors.New("unknown step " + e.ev.Step)
	}
	if err != nil {
		http.Error(w, "step "+e.ev.Step+": "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// TestWebhookFunction: a webhook function gets the four steps in order as
// signed POSTs (X-Rotor-Timestamp, X-Rotor-Signature with the key shown at
// registration) and, answering 2xx, completes a rotation it performed with
// its own credentials; one that answers 500 fails the step with the status
// and its body, redacted, as the error.
func TestWebhookFunction(t *testing.T) {
	t.Parallel()
	srv := startRotationServer(t, 1)
	c := client(t, srv)
	h := &hookReceiver{c: c, keys: map[string][]byte{}}
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)

	rot := registerFunction(t, srv, "hook-rotate", "--webhook", hs.URL+"/rotate", "--timeout", "10s")
	if rot.Type != "webhook" || rot.Url != hs.URL+"/rotate" || rot.TimeoutSeconds != 10 {
		t.Errorf("rotor function register hook-rotate = %+v", rot)
	}
	must(t, h.setKey("/rotate", rot.SigningKey))
	down := registerFunction(t, srv, "hook-down", "--webhook", hs.URL+"/down")
	must(t, h.setKey("/down", down.SigningKey))
	if down.SigningKey == rot.SigningKey {
		t.Errorf("two webhook functions got the same signing key")
	}
	for _, f := range listFunctions(t, srv) {
		if f.SigningKey != "" {
			t.Errorf("rotor function list shows %s's signing key", f.FunctionName)
		}
	}

	t.Run("rotates", func(t *testing.T) {
		id := aws.ToString(createString(t, c, uniqueName(t), `{"password":"before the webhook"}`).ARN)
		v0, _ := mustCreds(t, c, id, "AWSCURRENT")
		start := time.Now()
		version := rotateNow(t, c, id, "hook-rotate")
		st := waitRotation(t, srv, id, version)
		t.Logf("webhook rotation took %v", time.Since(start).Round(time.Millisecond))
		if h := st.History[0]; h.Outcome != "succeeded" || h.Function != "hook-rotate" {
			t.Fatalf("rotation to %s: outcome %q, function %q, error %q", version, h.Outcome, h.Function, h.Error)
		}
		evs := h.got("/rotate")
		var steps []string
		for i, e := range evs {
			steps = append(steps, e.ev.Step)
			if e.verifyErr != nil {
				t.Errorf("POST %d (%s): signature: %v", i, e.ev.Step, e.verifyErr)
			}
			if e.ev.SecretId != id || e.ev.ClientRequestToken != version {
				t.Errorf("POST %d: event %+v, want SecretId %s and ClientRequestToken %s", i, e.ev, id, version)
			}
			if ct := e.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("POST %d: Content-Type %q", i, ct)
			}
			if ts, err := strconv.ParseInt(e.header.Get("X-Rotor-Timestamp"), 10, 64); err != nil || time.Since(time.Unix(ts, 0)).Abs() > time.Minute {
				t.Errorf("POST %d: X-Rotor-Timestamp %q", i, e.header.Get("X-Rotor-Timestamp"))
			}
		}
		if want := []string{"createSecret", "setSecret", "testSecret", "finishSecret"}; !slices.Equal(steps, want) {
			t.Errorf("steps POSTed: %v, want %v", steps, want)
		}
		if v, _ := getValue(t, c, id); v != hookValue(version) {
			t.Errorf("AWSCURRENT after the webhook rotation: %q, want the receiver's %q", v, hookValue(version))
		}
		wantRotatedVersions(t, c, id, v0, version)
	})

	t.Run("answers 500", func(t *testing.T) {
		secret := "Down" + initialPassword()
		id := aws.ToString(createString(t, c, uniqueName(t), `{"password":"`+secret+`"}`).ARN)
		version := rotateNow(t, c, id, "hook-down")
		st := waitGaveUp(t, srv, id, version)
		msg := st.InProgress.LastError
		t.Logf("LastError: %s", msg)
		if want := "createSecret: function hook-down answered step createSecret with 500 Internal Server Error: receiver down; the current value is "; !strings.Contains(msg, want) {
			t.Errorf("LastError = %q, want it to contain %q", msg, want)
		}
		if !strings.Contains(msg, redactedMark) || strings.Contains(msg, secret) {
			t.Errorf("LastError = %q: the receiver's body must have the secret's value redacted", msg)
		}
		if evs := h.got("/down"); len(evs) != 1 || evs[0].verifyErr != nil || evs[0].ev.Step != "createSecret" {
			t.Errorf("/down got %d POSTs (want 1 createSecret, signed): %+v", len(evs), evs)
		}
		if currentVersion(t, c, id) == version {
			t.Errorf("AWSCURRENT moved to the failed rotation's version")
		}
		if strings.Contains(srv.logs.String(), secret) {
			t.Errorf("the server's log holds the secret's value")
		}
	})
}

// procAlive reports whether pid is a live process running one of cmds
// (a zombie, or a pid reused by another program, is not).
func procAlive(pid int, cmds ...string) (bool, string) {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false, "gone"
	}
	// pid (comm) state …: comm may hold spaces and parentheses.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	j := strings.IndexByte(s, '(')
	if i < 0 || j < 0 || i+2 >= len(s) {
		return false, "unreadable: " + s
	}
	comm, state := s[j+1:i], s[i+2]
	if state == 'Z' || state == 'X' {
		return false, "zombie " + comm
	}
	if !slices.Contains(cmds, comm) {
		return false, "reused by " + comm
	}
	return true, fmt.Sprintf("%s in state %c", comm, state)
}

// TestHangingFunctionIsKilled: an exec function that outlives its timeout
// is killed with its whole process group (a background child included) and
// the step fails with "killed" and the script's output.
func TestHangingFunctionIsKilled(t *testing.T) {
	t.Parallel()
	needTools(t, "bash", "sleep")
	dir := functionDir(t, "hang.sh")
	out := t.TempDir()
	srv := startRotationServer(t, 1, withArgs("--function-dir", dir))
	c := client(t, srv)
	registerFunction(t, srv, "hang", "--exec", "hang.sh", "--arg", out, "--timeout", "2s")
	id := aws.ToString(createString(t, c, uniqueName(t), "hanging").ARN)

	start := time.Now()
	version := rotateNow(t, c, id, "hang")
	st := waitGaveUp(t, srv, id, version)
	t.Logf("the hanging step failed %v after RotateSecret", time.Since(start).Round(time.Millisecond))
	msg := st.InProgress.LastError
	for _, want := range []string{"createSecret: function hang did not finish step createSecret within 2s: killed", "hang: started child"} {
		if !strings.Contains(msg, want) {
			t.Errorf("LastError = %q, want it to contain %q", msg, want)
		}
	}
	if strings.Contains(msg, "woke up") {
		t.Errorf("the script ran to its end: %q", msg)
	}

	pids := map[string]int{}
	for _, name := range []string{"script", "child"} {
		b, err := os.ReadFile(filepath.Join(out, name+".pid"))
		if err != nil {
			t.Fatalf("the script wrote no %s pid: %v", name, err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 1 {
			t.Fatalf("%s pid %q", name, b)
		}
		pids[name] = pid
	}
	deadline := time.Now().Add(procGoneWait)
	for name, pid := range pids {
		for {
			alive, how := procAlive(pid, "hang.sh", "bash", "sleep")
			if !alive {
				t.Logf("%s (pid %d): %s", name, pid, how)
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("%s (pid %d) still runs (%s) %v after the step failed", name, pid, how, procGoneWait)
				_ = syscall.Kill(pid, syscall.SIGKILL)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if currentVersion(t, c, id) == version {
		t.Errorf("AWSCURRENT moved to the killed rotation's version")
	}
}

// TestFunctionCLI: rotor function register, list and delete, and what the
// server refuses: commands with a path or outside --function-dir, reserved
// names, duplicates, bad timeouts and URLs, exec functions without
// --function-dir; RotateSecret naming an unknown function gets AWS's answer
// for a Lambda it cannot invoke.
func TestFunctionCLI(t *testing.T) {
	t.Parallel()
	dir := functionDir(t, "noop.sh")
	must(t, os.WriteFile(filepath.Join(dir, "not-executable.sh"), []byte("#!/bin/sh\n"), 0o644))
	must(t, os.Mkdir(filepath.Join(dir, "subdir"), 0o755))
	srv := startRotationServer(t, 1, withArgs("--function-dir", dir))
	c := client(t, srv)

	ex := registerFunction(t, srv, "noop", "--exec", "noop.sh", "--arg", "one", "--arg", "two words", "--timeout", "30s")
	if ex.Type != "exec" || ex.Command != "noop.sh" || !slices.Equal(ex.Args, []string{"one", "two words"}) || ex.TimeoutSeconds != 30 || ex.Url != "" || ex.SigningKey != "" || ex.CreatedDate == nil {
		t.Errorf("rotor function register noop = %+v", ex)
	}

	// A webhook, in text: the signing key is printed once.
	text, errb, code := functionCLI(t, srv, "register", "hook_1", "--webhook", "https://hooks.example/rotate")
	if code != 0 {
		t.Fatalf("rotor function register hook_1: exit status %d\n%s", code, errb)
	}
	for _, want := range []string{"name: hook_1\n", "arn: " + lambdaARN("hook_1") + "\n", "type: webhook\n", "runs: https://hooks.example/rotate\n", "timeout: 120s\n", "signing key: "} {
		if !strings.Contains(text, want) {
			t.Errorf("rotor function register hook_1 printed no %q:\n%s", want, text)
		}
	}
	_, keyLine, _ := strings.Cut(text, "signing key: ")
	keyLine, _, _ = strings.Cut(keyLine, "\n")
	if key, err := base64.StdEncoding.DecodeString(keyLine); err != nil || len(key) != 32 {
		t.Errorf("signing key %q: %d bytes, %v; want 32 bytes in base64", keyLine, len(key), err)
	}

	list, errb, code := functionCLI(t, srv, "list")
	if code != 0 {
		t.Fatalf("rotor function list: exit status %d\n%s", code, errb)
	}
	for _, want := range []string{"NAME", "noop", "exec", "noop.sh", "30s", lambdaARN("noop"), "hook_1", "webhook", "https://hooks.example/rotate", "120s", lambdaARN("hook_1")} {
		if !strings.Contains(list, want) {
			t.Errorf("rotor function list lacks %q:\n%s", want, list)
		}
	}
	if fs := listFunctions(t, srv); !slices.Equal(functionNames(fs), []string{"hook_1", "noop"}) {
		t.Errorf("rotor function list -o json: %+v", fs)
	}

	// Refusals: exit status and message.
	const invalid = "rotor: error: InvalidParameterException: "
	const noPath = invalid + "Command must be the name of an executable in the function directory, without a path."
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"x", "--exec", "../noop.sh"}, 1, noPath},
		{[]string{"x", "--exec", "/bin/sh"}, 1, noPath},
		{[]string{"x", "--exec", filepath.Join(dir, "noop.sh")}, 1, noPath},
		{[]string{"x", "--exec", "subdir/../noop.sh"}, 1, noPath},
		{[]string{"x", "--exec", ".."}, 1, noPath},
		{[]string{"x", "--exec", "missing.sh"}, 1, invalid + `Command "missing.sh" is not an executable file in the function directory.`},
		{[]string{"x", "--exec", "not-executable.sh"}, 1, invalid + `Command "not-executable.sh" is not an executable file in the function directory.`},
		{[]string{"x", "--exec", "subdir"}, 1, invalid + `Command "subdir" is not an executable file in the function directory.`},
		{[]string{"rotor-mine", "--exec", "noop.sh"}, 1, invalid + "Names starting with rotor- are Rotor's built-in functions."},
		{[]string{"bad/name", "--exec", "noop.sh"}, 1, invalid + "Name must be 1-64 letters, digits, '-' or '_' (a Lambda function name)."},
		{[]string{"noop", "--exec", "noop.sh"}, 1, "rotor: error: ResourceExistsException: A function named noop already exists."},
		{[]string{"x", "--exec", "noop.sh", "--timeout", "16m"}, 1, invalid + "TimeoutSeconds must be between 1 and 900."},
		{[]string{"x", "--webhook", "ftp://hooks.example/"}, 1, invalid + "Url must be an http or https URL without credentials."},
		{[]string{"x", "--webhook", "https://user:pw@hooks.example/"}, 1, invalid + "Url must be an http or https URL without credentials."},
		{[]string{"x"}, 2, "rotor: error: give --exec FILE (with --arg) or --webhook URL"},
		{[]string{"x", "--exec", "noop.sh", "--webhook", "https://hooks.example/"}, 2, "rotor: error: give --exec FILE (with --arg) or --webhook URL"},
		{[]string{"x", "--webhook", "https://hooks.example/", "--arg", "a"}, 2, "rotor: error: give --exec FILE (with --arg) or --webhook URL"},
	} {
		stdout, stderr, code := functionCLI(t, srv, append([]string{"register"}, tc.args...)...)
		if code != tc.code || !strings.Contains(stderr, tc.msg) || stdout != "" {
			t.Errorf("rotor function register %s: exit status %d, stdout %q, stderr %q; want status %d and %q",
				strings.Join(tc.args, " "), code, stdout, stderr, tc.code, tc.msg)
		}
		if strings.Contains(stderr, "rotor secret put") {
			t.Errorf("rotor function register %s: a hint about secrets, not functions: %q", strings.Join(tc.args, " "), stderr)
		}
	}
	if fs := listFunctions(t, srv); !slices.Equal(functionNames(fs), []string{"hook_1", "noop"}) {
		t.Errorf("functions after the refused registrations: %v", functionNames(fs))
	}

	// RotateSecret: a registered function is accepted, an unknown one gets
	// AWS's answer for a Lambda it cannot invoke.
	id := aws.ToString(createString(t, c, uniqueName(t), "v1").ARN)
	_, err := c.RotateSecret(t.Context(), &secretsmanager.RotateSecretInput{SecretId: aws.String(id), RotationLambdaARN: aws.String(lambdaARN("nobody"))})
	wantCode(t, err, "AccessDeniedException")
	if msg := apiMessage(err); !strings.Contains(msg, "cannot invoke the specified Lambda function") {
		t.Errorf("RotateSecret with an unknown function: message %q", msg)
	}
	_, err = c.RotateSecret(t.Context(), &secretsmanager.RotateSecretInput{SecretId: aws.String(id), RotationLambdaARN: aws.String("arn:aws:lambda:" + region + ":" + accountID + ":layer:noop")})
	wantCode(t, err, "InvalidParameterException")

	// An IAM user needs the rotor:*Function actions.
	reader := newUser(t, srv, uniqueUser("fn-reader"), newPolicy(t, srv, "fn-list-"+strconv.FormatInt(userSeq.Add(1), 10),
		policyDoc(`{"Effect":"Allow","Action":"rotor:ListFunctions","Resource":"*"}`)))
	if r := callRotor(t, srv, &reader, "rotor.ListFunctions", struct{}{}); r.status != http.StatusOK {
		t.Errorf("rotor.ListFunctions with rotor:ListFunctions: %d %s", r.status, r.body)
	}
	r := callRotor(t, srv, &reader, "rotor.RegisterFunction", map[string]string{"FunctionName": "sneaky", "Type": "webhook", "Url": "https://hooks.example/"})
	wantError(t, r, http.StatusBadRequest, "AccessDeniedException")
	r = callRotor(t, srv, &reader, "rotor.DeleteFunction", map[string]string{"FunctionName": "noop"})
	wantError(t, r, http.StatusBadRequest, "AccessDeniedException")

	// Delete.
	for _, name := range []string{"noop", "hook_1"} {
		stdout, stderr, code := functionCLI(t, srv, "delete", name)
		if code != 0 || stdout != "deleted "+name+"\n" {
			t.Errorf("rotor function delete %s: exit status %d, stdout %q, stderr %q; want 0 and %q", name, code, stdout, stderr, "deleted "+name+"\n")
		}
	}
	if fs := listFunctions(t, srv); len(fs) != 0 {
		t.Errorf("functions after deleting both: %v", functionNames(fs))
	}
	list, _, _ = functionCLI(t, srv, "list")
	if strings.TrimSpace(list) != "NAME  TYPE  RUNS  TIMEOUT  ARN" {
		t.Errorf("rotor function list with no function:\n%s", list)
	}
	if _, stderr, code := functionCLI(t, srv, "delete", "noop"); code != 1 || !strings.Contains(stderr, "rotor: error: ResourceNotFoundException: Rotor can't find the function noop.") {
		t.Errorf("rotor function delete of a deleted function: exit status %d, stderr %q", code, stderr)
	}
	_, err = c.RotateSecret(t.Context(), &secretsmanager.RotateSecretInput{SecretId: aws.String(id), RotationLambdaARN: aws.String(lambdaARN("noop"))})
	wantCode(t, err, "AccessDeniedException")

	t.Run("without --function-dir", func(t *testing.T) {
		plain := startServer(t)
		_, stderr, code := functionCLI(t, plain, "register", "noop", "--exec", "noop.sh")
		if code != 1 || !strings.Contains(stderr, invalid+"Exec functions are disabled: start the server with --function-dir DIR") {
			t.Errorf("exec registration without --function-dir: exit status %d, stderr %q", code, stderr)
		}
		registerFunction(t, plain, "hook", "--webhook", "https://hooks.example/rotate")
		if fs := listFunctions(t, plain); !slices.Equal(functionNames(fs), []string{"hook"}) {
			t.Errorf("functions: %v, want only the webhook", functionNames(fs))
		}
	})
}
