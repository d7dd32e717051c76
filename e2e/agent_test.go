package e2e

// `rotor agent` end to end: the built binary runs as an agent process
// against a real server and serves what the server holds. With push on, a
// new AWSCURRENT (PutSecretValue, or a rotation of a real PostgreSQL user)
// is served within 2s; with push off, within ttl_seconds. Its file output is
// rewritten on each change and its command runs exactly once per change,
// and not for a new version that renders to the same content.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/rotor-secrets/rotor/internal/dbtest"
)

const (
	agentToken    = "e2e-agent-ssrf-token-0123456789"
	agentPushWait = 2 * time.Second // the promise: push on, new AWSCURRENT served within this
	agentPoll     = 20 * time.Millisecond
)

// agentProc is one `rotor agent` process.
type agentProc struct {
	cmd    *exec.Cmd
	addr   string
	logs   *logBuffer
	exited chan struct{}
	dir    string // holds the config, the output file and the command's record
}

// startAgent writes config (TOML; http_port 0 is added) and runs
// `rotor agent --config` against srv with the test's root key and the SSRF
// token in AWS_TOKEN. The agent is stopped with SIGTERM when t ends and
// must exit 0.
func startAgent(t *testing.T, srv *server, config string) *agentProc {
	t.Helper()
	a := &agentProc{logs: newLogBuffer(), exited: make(chan struct{}), dir: t.TempDir()}
	cfgPath := filepath.Join(a.dir, "agent.toml")
	must(t, os.WriteFile(cfgPath, []byte("http_port = 0\nlog_level = \"debug\"\n"+config), 0o600))
	a.cmd = exec.Command(rotorBin, "agent", "--config", cfgPath)
	a.cmd.Env = append(cleanEnv("ROTOR_", "AWS_"),
		"AWS_ENDPOINT_URL_SECRETS_MANAGER="+srv.endpoint(),
		"AWS_ACCESS_KEY_ID="+testAccessKeyID, "AWS_SECRET_ACCESS_KEY="+testSecretAccessKey,
		"AWS_REGION="+region, "AWS_TOKEN="+agentToken,
		"AWS_CONFIG_FILE="+os.DevNull, "AWS_SHARED_CREDENTIALS_FILE="+os.DevNull,
	)
	stderr, err := a.cmd.StderrPipe()
	must(t, err)
	a.cmd.Stdout = a.logs
	must(t, a.cmd.Start())
	addrc := make(chan string, 1)
	go func() {
		defer func() {
			_ = a.cmd.Wait()
			close(a.exited)
		}()
		r := bufio.NewReader(stderr)
		for {
			line, err := r.ReadString('\n')
			if line != "" {
				a.logs.Write([]byte(line))
				var e struct{ Msg, Addr string }
				if json.Unmarshal([]byte(line), &e) == nil && e.Msg == "rotor agent listening" {
					select {
					case addrc <- e.Addr:
					default:
					}
				}
			}
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		_ = a.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-a.exited:
			if code := a.cmd.ProcessState.ExitCode(); code != 0 {
				t.Errorf("rotor agent exited with status %d; log:\n%s", code, a.logs)
			}
		case <-time.After(stopTimeout):
			_ = a.cmd.Process.Kill()
			<-a.exited
			t.Errorf("rotor agent did not exit within %v of SIGTERM; log:\n%s", stopTimeout, a.logs)
		}
	})
	select {
	case a.addr = <-addrc:
	case <-a.exited:
		t.Fatalf("rotor agent exited before listening; log:\n%s", a.logs)
	case <-time.After(startTimeout):
		t.Fatalf("rotor agent not listening within %v; log:\n%s", startTimeout, a.logs)
	}
	return a
}

// waitLog waits until the agent's log contains all of subs on one line.
func (a *agentProc) waitLog(t *testing.T, what string, subs ...string) {
	t.Helper()
	deadline := time.Now().Add(rotationTimeout)
	for time.Now().Before(deadline) {
		for line := range strings.SplitSeq(a.logs.String(), "\n") {
			ok := true
			for _, s := range subs {
				ok = ok && strings.Contains(line, s)
			}
			if ok {
				return
			}
		}
		time.Sleep(agentPoll)
	}
	t.Fatalf("the agent never logged %s within %v; log:\n%s", what, rotationTimeout, a.logs)
}

var agentHTTP = &http.Client{Timeout: httpTimeout}

// agentSecret is the agent's answer for a secret.
type agentSecret struct {
	ARN, Name, VersionId, SecretString string
	VersionStages                      []string
	CreatedDate                        string
}

// get asks the agent for secretID's AWSCURRENT with the token, through the
// query style or the path style.
func (a *agentProc) get(t *testing.T, secretID string, pathStyle bool) (int, agentSecret, string) {
	t.Helper()
	u := "http://" + a.addr + "/secretsmanager/get?secretId=" + secretID
	if pathStyle {
		u = "http://" + a.addr + "/v1/" + secretID
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	must(t, err)
	req.Header.Set("X-Aws-Parameters-Secrets-Token", agentToken)
	resp, err := agentHTTP.Do(req)
	must(t, err)
	defer resp.Body.Close()
	var b strings.Builder
	_, err = bufio.NewReader(resp.Body).WriteTo(&b)
	must(t, err)
	var s agentSecret
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal([]byte(b.String()), &s); err != nil {
			t.Fatalf("agent answer %s: %v", b.String(), err)
		}
	}
	return resp.StatusCode, s, b.String()
}

// waitVersion polls the agent until it serves version as secretID's
// AWSCURRENT and returns how long that took from since.
func (a *agentProc) waitVersion(t *testing.T, secretID, version string, since time.Time, limit time.Duration) time.Duration {
	t.Helper()
	deadline := since.Add(limit + 10*time.Second) // fail on limit below; keep polling to report how late
	for {
		status, s, body := a.get(t, secretID, false)
		if status == http.StatusOK && s.VersionId == version {
			took := time.Since(since)
			if took > limit {
				t.Errorf("the agent served version %s after %v, want within %v", version, took.Round(time.Millisecond), limit)
			}
			return took
		}
		if time.Now().After(deadline) {
			t.Fatalf("the agent still serves %d %s, want version %s; log:\n%s", status, body, version, a.logs)
		}
		time.Sleep(agentPoll)
	}
}

// paths are the output file and the command's record of a file agent.
func (a *agentProc) paths() (out, runs string) {
	return filepath.Join(a.dir, "out"), filepath.Join(a.dir, "runs")
}

// fileConfig is a [[file]] output of secretID rendered with template into
// <dir>/out, whose command appends $ROTOR_AGENT_VERSION_ID to <dir>/runs.
func fileConfig(dir, secretID, template string) string {
	out, runs := filepath.Join(dir, "out"), filepath.Join(dir, "runs")
	return fmt.Sprintf(`
[[file]]
secret_id = %q
path = %q
template = %q
command = ["sh", "-c", "echo \"$ROTOR_AGENT_VERSION_ID\" >> %s"]
command_timeout_seconds = 10
`, secretID, out, template, runs)
}

// startFileAgent is startAgent with one file output; the directory is made
// first so the config can name it.
func startFileAgent(t *testing.T, srv *server, config, secretID, template string) *agentProc {
	t.Helper()
	dir := t.TempDir()
	a := startAgent(t, srv, config+fileConfig(dir, secretID, template))
	a.dir = dir
	return a
}

func (a *agentProc) runs() []string {
	_, runs := a.paths()
	b, _ := os.ReadFile(runs)
	return strings.Fields(string(b))
}

// waitFile waits until the output file holds want.
func (a *agentProc) waitFile(t *testing.T, want string) {
	t.Helper()
	out, _ := a.paths()
	deadline := time.Now().Add(rotationTimeout)
	for {
		b, err := os.ReadFile(out)
		if err == nil && string(b) == want {
			fi, err := os.Stat(out)
			must(t, err)
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("output file mode %v, want 0600", fi.Mode().Perm())
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the output file holds %q (%v), want %q; log:\n%s", b, err, want, a.logs)
		}
		time.Sleep(agentPoll)
	}
}

// wantRuns checks that the command ran exactly once for each of versions,
// in order.
func (a *agentProc) wantRuns(t *testing.T, versions ...string) {
	t.Helper()
	// The command runs after the file is written: let it finish.
	deadline := time.Now().Add(10 * time.Second)
	for len(a.runs()) < len(versions) && time.Now().Before(deadline) {
		time.Sleep(agentPoll)
	}
	if got := a.runs(); strings.Join(got, " ") != strings.Join(versions, " ") {
		t.Errorf("the command ran for versions %v, want %v", got, versions)
	}
}

// TestAgentPush: with push on, each PutSecretValue is served within 2s, by
// query and by path; the file follows and the command runs once per change,
// not for a new version with the same value; the SSRF rules hold on the real
// process.
func TestAgentPush(t *testing.T) {
	srv := startServer(t)
	c := client(t, srv)
	name := uniqueName(t)
	v1 := aws.ToString(createString(t, c, name, "value-1").VersionId)
	a := startFileAgent(t, srv, "push = true\nttl_seconds = 300\n", name, "SECRET={{.SecretString}}\n")
	a.waitLog(t, "a connected push stream", `"msg":"push stream connected"`)

	status, s, body := a.get(t, name, false)
	if status != http.StatusOK || s.VersionId != v1 || s.SecretString != "value-1" || s.Name != name ||
		!strings.HasPrefix(s.ARN, "arn:aws:secretsmanager:"+region+":") || s.CreatedDate == "" {
		t.Fatalf("first read: %d %s", status, body)
	}
	a.waitFile(t, "SECRET=value-1\n")
	a.wantRuns(t, v1)

	versions := []string{v1}
	for i := 2; i <= 4; i++ {
		start := time.Now()
		v := aws.ToString(putString(t, c, name, fmt.Sprintf("value-%d", i)).VersionId)
		took := a.waitVersion(t, name, v, start, agentPushWait)
		t.Logf("change %d served after %v", i, took.Round(time.Millisecond))
		if _, s, _ := a.get(t, name, true); s.VersionId != v {
			t.Errorf("path style serves %s, want %s", s.VersionId, v)
		}
		a.waitFile(t, fmt.Sprintf("SECRET=value-%d\n", i))
		versions = append(versions, v)
		a.wantRuns(t, versions...)
	}

	// A new version with the same value renders the same file: no command.
	same := aws.ToString(putString(t, c, name, "value-4").VersionId)
	a.waitVersion(t, name, same, time.Now(), agentPushWait)
	a.waitLog(t, "the unchanged file", `"msg":"file unchanged"`, same)
	a.wantRuns(t, versions...)

	// The SSRF rules on the real process.
	u := "http://" + a.addr + "/secretsmanager/get?secretId=" + name
	for _, tc := range []struct {
		name   string
		header map[string]string
		want   int
	}{
		{"no token", nil, http.StatusForbidden},
		{"wrong token", map[string]string{"X-Aws-Parameters-Secrets-Token": "nope"}, http.StatusForbidden},
		{"forwarded", map[string]string{"X-Aws-Parameters-Secrets-Token": agentToken, "X-Forwarded-For": "10.1.2.3"}, http.StatusBadRequest},
	} {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		for k, v := range tc.header {
			req.Header.Set(k, v)
		}
		resp, err := agentHTTP.Do(req)
		must(t, err)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
	}
	for i := 1; i <= 4; i++ {
		if strings.Contains(a.logs.String(), fmt.Sprintf("value-%d", i)) {
			t.Errorf("the agent's log contains value-%d", i)
		}
	}
	if strings.Contains(a.logs.String(), agentToken) {
		t.Error("the agent's log contains the SSRF token")
	}
}

// TestAgentTTL: with push off and ttl_seconds = 2, a PutSecretValue is
// served within the TTL (plus the polling of this test), and the file and
// command follow.
func TestAgentTTL(t *testing.T) {
	srv := startServer(t)
	c := client(t, srv)
	name := uniqueName(t)
	v1 := aws.ToString(createString(t, c, name, "ttl-1").VersionId)
	a := startFileAgent(t, srv, "push = false\nttl_seconds = 2\n", name, "{{.SecretString}}")
	if status, s, body := a.get(t, name, false); status != http.StatusOK || s.VersionId != v1 {
		t.Fatalf("first read: %d %s", status, body)
	}
	a.waitFile(t, "ttl-1")
	a.wantRuns(t, v1)
	if strings.Contains(a.logs.String(), `"msg":"push stream connected"`) {
		t.Error("push = false, yet the agent subscribed")
	}

	versions := []string{v1}
	for i := 2; i <= 3; i++ {
		start := time.Now()
		v := aws.ToString(putString(t, c, name, fmt.Sprintf("ttl-%d", i)).VersionId)
		took := a.waitVersion(t, name, v, start, 2*time.Second+500*time.Millisecond)
		t.Logf("change %d served after %v", i, took.Round(time.Millisecond))
		a.waitFile(t, fmt.Sprintf("ttl-%d", i))
		versions = append(versions, v)
		a.wantRuns(t, versions...)
	}
}

// TestAgentRotationPostgres: a real PostgreSQL user's password rotates
// (alternating users); with push on the agent serves the new AWSCURRENT
// within 2s of the rotation's end, those credentials log in, and the
// .pgpass file and its command follow each rotation exactly once.
func TestAgentRotationPostgres(t *testing.T) {
	pg := dbtest.StartPostgres(t)
	d := pgTarget(t, pg)
	srv := startRotationServer(t, 5)
	c := client(t, srv)
	seen := newSeenPasswords()
	id, initial := d.app(t, c, "app", seen)
	v0, _ := mustCreds(t, c, id, "AWSCURRENT")

	pgpass := `{{pgpass .host}}:{{.port}}:{{pgpass .dbname}}:{{pgpass .username}}:{{pgpass .password}}` + "\n"
	a := startFileAgent(t, srv, "push = true\n", id, pgpass)
	a.waitLog(t, "a connected push stream", `"msg":"push stream connected"`)
	line := func(cr dbCreds) string {
		esc := strings.NewReplacer(`\`, `\\`, `:`, `\:`)
		return fmt.Sprintf("%s:%d:%s:%s:%s\n", esc.Replace(cr.Host), cr.Port, esc.Replace(cr.DBName), esc.Replace(cr.Username), esc.Replace(cr.Password))
	}
	a.waitFile(t, line(initial))
	a.wantRuns(t, v0)

	versions := []string{v0}
	for i := range 3 {
		v := rotateAndWait(t, c, srv, id, fnPGAlternating)
		st, err := getRotationStatus(t.Context(), srv, id)
		must(t, err)
		if len(st.History) == 0 || st.History[0].EndedDate == nil {
			t.Fatalf("rotation status without an end date: %s", st.raw)
		}
		ended := time.UnixMilli(int64(*st.History[0].EndedDate * 1000))
		took := a.waitVersion(t, id, v, ended, agentPushWait)
		t.Logf("rotation %d served by the agent at most %v after finishSecret", i+1, took.Round(time.Millisecond))

		_, s, _ := a.get(t, id, false)
		creds, err := parseCreds(s.SecretString)
		must(t, err)
		seen.add(creds.Password)
		d.wantLogin(t, "the credentials the agent serves", creds)
		a.waitFile(t, line(creds))
		versions = append(versions, v)
		a.wantRuns(t, versions...)
	}
	seen.wantAbsent(t, "the agent's log", []byte(a.logs.String()))
	wantNoPasswordsInLogs(t, c, seen, []string{id}, srv)
}

// TestAgentRefusesWithoutToken: no SSRF token in the environment, no agent.
func TestAgentRefusesWithoutToken(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), startTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, rotorBin, "agent")
	cmd.Env = append(cleanEnv("ROTOR_", "AWS_"), "AWS_ENDPOINT_URL_SECRETS_MANAGER=http://127.0.0.1:1")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "no SSRF token") {
		t.Errorf("rotor agent without a token: %v\n%s", err, out)
	}
}
