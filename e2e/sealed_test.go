package e2e

// Master key sources and sealed mode through the built binary: a server
// started with a passphrase and no passphrase file answers sealed until
// `rotor unseal`; the environment source; a data dir copied without its key.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

var passphraseArgs = []string{"--master-key-source", "passphrase"}

// startSealed starts s's process and returns once it listens and
// /healthz says sealed; s.stop stops it as usual.
func startSealed(t testing.TB, s *server) {
	t.Helper()
	cmd := s.command()
	stderr, err := cmd.StderrPipe()
	must(t, err)
	cmd.Stdout = s.logs
	must(t, cmd.Start())
	p := &process{cmd: cmd, exited: make(chan struct{})}
	addrc := make(chan string, 1)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		r := bufio.NewReader(stderr)
		for {
			line, err := r.ReadString('\n')
			if line != "" {
				s.logs.Write([]byte(line))
				if a, ok := listeningAddr(line); ok {
					select {
					case addrc <- a:
					default:
					}
				}
			}
			if err != nil {
				return
			}
		}
	}()
	go func() {
		<-readDone
		_ = cmd.Wait()
		p.code = cmd.ProcessState.ExitCode()
		s.mu.Lock()
		s.lastCode = p.code
		s.mu.Unlock()
		close(p.exited)
	}()
	select {
	case p.addr = <-addrc:
	case <-p.exited:
		t.Fatalf("rotor server exited with status %d before listening; log:\n%s", p.code, s.logs)
	case <-time.After(startTimeout):
		_ = cmd.Process.Kill()
		<-p.exited
		t.Fatalf("rotor server did not listen within %v; log:\n%s", startTimeout, s.logs)
	}
	s.mu.Lock()
	s.cur = p
	s.mu.Unlock()
	if got := health(t, s, "/healthz"); got != `200 {"status":"sealed"}` {
		t.Fatalf("GET /healthz = %s, want sealed", got)
	}
}

func newSealedServer(t testing.TB, dir string) *server {
	s := &server{opts: serverOptions{dataDir: dir, args: passphraseArgs}, dataDir: dir, logs: newLogBuffer()}
	t.Cleanup(func() {
		if code, err := s.stop(); err != nil || code != 0 {
			t.Errorf("rotor server: status %d, %v; log:\n%s", code, err, s.logs)
		}
	})
	return s
}

func health(t testing.TB, s *server, path string) string {
	t.Helper()
	resp, err := (&http.Client{Timeout: httpTimeout}).Get(s.endpoint() + path)
	must(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(b)))
}

// wantSealed checks the server answers as a sealed one: health sealed, not
// ready, the API 503 ServiceUnavailableException.
func wantSealed(t testing.TB, s *server) {
	t.Helper()
	if got := health(t, s, "/healthz"); got != `200 {"status":"sealed"}` {
		t.Errorf("GET /healthz = %s, want 200 sealed", got)
	}
	if got := health(t, s, "/readyz"); got != `503 {"status":"sealed"}` {
		t.Errorf("GET /readyz = %s, want 503 sealed", got)
	}
	_, err := client(t, s).GetSecretValue(t.Context(), &secretsmanager.GetSecretValueInput{SecretId: aws.String("any")})
	wantCode(t, err, "ServiceUnavailableException")
	if err != nil && !strings.Contains(err.Error(), "rotor unseal") {
		t.Errorf("the sealed answer does not say how to unseal: %v", err)
	}
}

// unsealCLI runs `rotor unseal` against s with stdin and extra args.
func unsealCLI(t testing.TB, s *server, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), startTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, rotorBin, append([]string{"unseal", "--endpoint", s.endpoint()}, args...)...)
	cmd.Env = cleanEnv("ROTOR_", "AWS_")
	cmd.Stdin = strings.NewReader(stdin)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ctx.Err() == nil:
		code = ee.ExitCode()
	default:
		t.Fatalf("rotor unseal: %v\n%s", err, e.String())
	}
	return o.String(), e.String(), code
}

func writePassphrase(t testing.TB, pass string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "passphrase")
	must(t, os.WriteFile(path, []byte(pass+"\n"), 0o600))
	return path
}

func TestSealedServer(t *testing.T) {
	t.Parallel()
	const right = "e2e right passphrase"
	dir := t.TempDir()

	// First start, sealed with no master.seal: the first unseal creates it.
	s := newSealedServer(t, dir)
	startSealed(t, s)
	wantSealed(t, s)
	out, errOut, code := unsealCLI(t, s, right+"\n")
	if code != 0 || strings.TrimSpace(out) != "unsealed" {
		t.Fatalf("first rotor unseal: status %d, stdout %q, stderr %q", code, out, errOut)
	}
	name := uniqueName(t)
	createString(t, client(t, s), name, "behind a passphrase")
	if _, err := os.Stat(filepath.Join(dir, "master.key")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("passphrase mode left a master.key (%v)", err)
	}
	wantMode(t, filepath.Join(dir, "master.seal"), 0o600)
	_, err := s.stop()
	must(t, err)

	// Restart: sealed again. A wrong passphrase exits 1 and changes nothing.
	seal, err := os.ReadFile(filepath.Join(dir, "master.seal"))
	must(t, err)
	startSealed(t, s)
	wantSealed(t, s)
	wrongFile := writePassphrase(t, "a wrong passphrase")
	out, errOut, code = unsealCLI(t, s, "", "--passphrase-file", wrongFile)
	if code != 1 || !strings.Contains(errOut, "InvalidPassphraseException") || !strings.HasPrefix(errOut, "rotor: error: ") {
		t.Errorf("wrong passphrase: status %d, stdout %q, stderr %q; want 1 and InvalidPassphraseException", code, out, errOut)
	}
	if strings.Contains(errOut, "a wrong passphrase") || strings.Contains(s.logs.String(), "a wrong passphrase") {
		t.Error("the wrong passphrase was echoed")
	}
	wantSealed(t, s)
	if got, _ := os.ReadFile(filepath.Join(dir, "master.seal")); !bytes.Equal(got, seal) {
		t.Error("a wrong passphrase changed master.seal")
	}

	// The right one, from stdin; attempts are throttled per client, so
	// retry while the server says so.
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, errOut, code = unsealCLI(t, s, right+"\n")
		if code == 0 || !strings.Contains(errOut, "ThrottlingException") || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code != 0 {
		t.Fatalf("right passphrase: status %d, stdout %q, stderr %q", code, out, errOut)
	}
	if got := health(t, s, "/readyz"); !strings.HasPrefix(got, "200 ") {
		t.Errorf("GET /readyz after unseal = %s", got)
	}
	if got := getString(t, client(t, s), name); got != "behind a passphrase" {
		t.Errorf("value after unseal = %q", got)
	}
	if strings.Contains(s.logs.String(), right) {
		t.Error("the passphrase is in the server's log")
	}

	// Restart with --passphrase-file: unsealed at start.
	_, err = s.stop()
	must(t, err)
	s.opts.args = append(passphraseArgs, "--passphrase-file", writePassphrase(t, right))
	must(t, s.start())
	if got := getString(t, client(t, s), name); got != "behind a passphrase" {
		t.Errorf("value after unseal at start = %q", got)
	}
	// And the CLI on an unsealed server says so and succeeds.
	if out, errOut, code := unsealCLI(t, s, "whatever it is\n"); code != 0 {
		t.Errorf("unseal of an unsealed server: status %d, %q %q", code, out, errOut)
	}

	// A wrong passphrase file at start is refused before anything is served.
	_, err = s.stop()
	must(t, err)
	outText, code := runRotor(t, nil, "server", "--listen", "127.0.0.1:0", "--data-dir", dir,
		"--master-key-source", "passphrase", "--passphrase-file", wrongFile)
	if code != 1 || !strings.Contains(outText, "passphrase does not open master.seal") || strings.Contains(outText, "rotor server listening") {
		t.Errorf("wrong passphrase file at start: status %d, output:\n%s", code, outText)
	}
}

func TestUnsealUsage(t *testing.T) {
	t.Parallel()
	out, code := runRotor(t, nil, "unseal", "--no-such-flag")
	if code != 2 {
		t.Errorf("unknown flag: status %d, want 2; output:\n%s", code, out)
	}
	out, code = runRotor(t, nil, "unseal", "--endpoint", "127.0.0.1:1")
	if code != 2 {
		t.Errorf("endpoint without scheme: status %d, want 2; output:\n%s", code, out)
	}
}

func TestEnvMasterKey(t *testing.T) {
	t.Parallel()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	env := "ROTOR_MASTER_KEY=" + base64.StdEncoding.EncodeToString(key)
	srv := startServer(t, withArgs("--master-key-source", "env"), withEnv(env))
	name := uniqueName(t)
	createString(t, client(t, srv), name, "under an env key")
	srv.restart(t)
	if got := getString(t, client(t, srv), name); got != "under an env key" {
		t.Errorf("after restart = %q", got)
	}
	if _, err := os.Stat(filepath.Join(srv.dataDir, "master.key")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the env source wrote master.key (%v)", err)
	}
	if strings.Contains(srv.logs.String(), base64.StdEncoding.EncodeToString(key)) {
		t.Error("the master key is in the log")
	}
}

func TestDataDirWithoutKeyFile(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	createString(t, client(t, srv), uniqueName(t), "v")
	_, err := srv.stop()
	must(t, err)
	keyPath := filepath.Join(srv.dataDir, "master.key")
	must(t, os.Remove(keyPath))

	out, code := runRotor(t, []string{"ROTOR_ROOT_ACCESS_KEY_ID=" + testAccessKeyID, "ROTOR_ROOT_SECRET_ACCESS_KEY=" + testSecretAccessKey},
		"server", "--listen", "127.0.0.1:0", "--data-dir", srv.dataDir)
	if code == 0 || !strings.Contains(out, "master.key is missing") || !strings.Contains(out, "restore master.key") ||
		strings.Contains(out, "rotor server listening") {
		t.Errorf("start without master.key: status %d, output:\n%s", code, out)
	}
	if _, err := os.Stat(keyPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused start created a new master.key (%v)", err)
	}
}
