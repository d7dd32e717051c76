package e2e

// The server process's life: first start, restarts, lost credentials,
// graceful shutdown, a foreign master key, and its configuration surface.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// credentialsFile is the parsed <data-dir>/credentials.
type credentialsFile struct {
	profile, id, secret string
}

func readCredentials(t testing.TB, dir string) (credentialsFile, []byte) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "credentials"))
	must(t, err)
	var cf credentialsFile
	for line := range strings.Lines(string(raw)) {
		line = strings.TrimSpace(line)
		if p, ok := strings.CutPrefix(line, "["); ok {
			cf.profile = strings.TrimSuffix(p, "]")
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "aws_access_key_id":
			cf.id = strings.TrimSpace(v)
		case "aws_secret_access_key":
			cf.secret = strings.TrimSpace(v)
		}
	}
	if cf.profile != "rotor" || cf.id == "" || cf.secret == "" {
		t.Fatalf("credentials file is not one [rotor] profile with a key pair:\n%s", raw)
	}
	return cf, raw
}

func wantMode(t testing.TB, path string, want fs.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Error(err)
		return
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s has mode %v, want %v", filepath.Base(path), got, want)
	}
}

// rootKeyLogs returns the access_key_id attributes of the server's
// "root access key" log lines, one per start, checking each names the
// credentials file.
func rootKeyLogs(t testing.TB, srv *server) []string {
	t.Helper()
	var ids []string
	for _, e := range srv.logs.entries() {
		if e["msg"] != "root access key" {
			continue
		}
		id, _ := e["access_key_id"].(string)
		ids = append(ids, id)
		if e["credentials_file"] != filepath.Join(srv.dataDir, "credentials") || e["profile"] != "rotor" {
			t.Errorf("root access key log line %v: want credentials_file %s and profile rotor", e, filepath.Join(srv.dataDir, "credentials"))
		}
	}
	return ids
}

func TestFirstStartAndRestart(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data") // the server creates it
	srv := startServer(t, withoutRootKey(), withDataDir(dir))

	wantMode(t, dir, 0o700)
	wantMode(t, filepath.Join(dir, "master.key"), 0o600)
	wantMode(t, filepath.Join(dir, "credentials"), 0o600)
	if _, err := os.Stat(filepath.Join(dir, "rotor.db")); err != nil {
		t.Error(err)
	}
	cred, credRaw := readCredentials(t, dir)
	masterKey, err := os.ReadFile(filepath.Join(dir, "master.key"))
	must(t, err)
	if ids := rootKeyLogs(t, srv); len(ids) != 1 || ids[0] != cred.id {
		t.Errorf("first start logged root access key ids %q, want [%s]", ids, cred.id)
	}

	c := clientWithKey(srv, cred.id, cred.secret)
	name := uniqueName(t)
	createString(t, c, name, "survives restarts")
	_, err = clientWithKey(srv, testAccessKeyID, testSecretAccessKey).ListSecrets(t.Context(), &secretsmanager.ListSecretsInput{})
	wantCode(t, err, "UnrecognizedClientException") // no key from the environment this time

	t.Run("restart reuses everything", func(t *testing.T) {
		srv.restart(t)
		_, raw := readCredentials(t, dir)
		if !bytes.Equal(raw, credRaw) {
			t.Errorf("credentials file changed on restart:\n%s\nwas\n%s", raw, credRaw)
		}
		if mk, err := os.ReadFile(filepath.Join(dir, "master.key")); err != nil || !bytes.Equal(mk, masterKey) {
			t.Errorf("master.key changed on restart (err %v)", err)
		}
		if ids := rootKeyLogs(t, srv); len(ids) != 2 || ids[1] != cred.id {
			t.Errorf("root access key ids logged = %q, want %s twice", ids, cred.id)
		}
		if got := getString(t, clientWithKey(srv, cred.id, cred.secret), name); got != "survives restarts" {
			t.Errorf("value after restart = %q", got)
		}
	})

	t.Run("lost credentials file is written again", func(t *testing.T) {
		must(t, os.Remove(filepath.Join(dir, "credentials")))
		srv.restart(t)
		_, raw := readCredentials(t, dir)
		if !bytes.Equal(raw, credRaw) {
			t.Errorf("rewritten credentials file differs:\n%s\nwas\n%s", raw, credRaw)
		}
		wantMode(t, filepath.Join(dir, "credentials"), 0o600)
		if got := getString(t, clientWithKey(srv, cred.id, cred.secret), name); got != "survives restarts" {
			t.Errorf("value after restart = %q", got)
		}
	})

	_, err = srv.stop() // the whole log
	must(t, err)
	if strings.Contains(srv.logs.String(), cred.secret) {
		t.Errorf("the log contains the root secret access key:\n%s", srv.logs)
	}
}

func TestRootKeyFromEnvironment(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	if _, err := os.Stat(filepath.Join(srv.dataDir, "credentials")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("credentials file written for a key given in the environment (stat: %v)", err)
	}
	found := false
	for _, e := range srv.logs.entries() {
		found = found || e["access_key_id"] == testAccessKeyID && strings.Contains(fmt.Sprint(e["msg"]), "root access key")
	}
	if !found {
		t.Errorf("no log line names the root access key id %s:\n%s", testAccessKeyID, srv.logs)
	}
	createString(t, client(t, srv), uniqueName(t), "v")
	_, err := srv.stop() // the whole log
	must(t, err)
	if strings.Contains(srv.logs.String(), testSecretAccessKey) {
		t.Errorf("the log contains the root secret access key:\n%s", srv.logs)
	}
}

// TestGracefulShutdown sends SIGTERM while a request is in flight: the
// server stops accepting connections, finishes the request, and exits 0.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	c := client(t, srv)
	name := uniqueName(t)
	createString(t, c, name, "before")

	// A PutSecretValue whose handler is running when SIGTERM arrives: with
	// "Expect: 100-continue" the server answers 100 only once the handler
	// reads the body, so the request is in flight, not merely connected.
	tok := token(t)
	body := []byte(`{"SecretId":"` + name + `","ClientRequestToken":"` + tok + `","SecretString":"in flight"}`)
	req := rawRequest{target: "secretsmanager.PutSecretValue", body: body, key: rootKey()}.build(t, srv)
	conn, err := (&net.Dialer{Timeout: 5 * time.Second}).DialContext(t.Context(), "tcp", srv.addr())
	must(t, err)
	defer conn.Close()
	writeHead(t, conn, req, fmt.Sprint("Content-Length: ", len(body)), "Expect: 100-continue")
	must(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	br := bufio.NewReader(conn)
	cont, err := http.ReadResponse(br, req)
	if err != nil || cont.StatusCode != http.StatusContinue {
		t.Fatalf("want 100 Continue before the body, got %v %v", cont, err)
	}
	_, err = conn.Write(body[:len(body)/2])
	must(t, err)

	addr, exited := srv.addr(), srv.exited()
	must(t, syscall.Kill(srv.pid(), syscall.SIGTERM))
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	must(t, srv.logs.waitFor(ctx, `"msg":"shutting down"`))

	// Shutdown stops accepting connections (the log line comes just
	// before, so poll).
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		c2, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break
		}
		c2.Close()
		select {
		case <-tick.C:
			continue
		case <-ctx.Done():
			t.Error("the server still accepts connections 10s after SIGTERM")
		}
		break
	}

	_, err = conn.Write(body[len(body)/2:])
	must(t, err)
	must(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		t.Fatalf("the in-flight request got no response: %v", err)
	}
	respBody, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Contains(respBody, []byte(tok)) {
		t.Errorf("in-flight PutSecretValue: %d %s, want 200 with VersionId %s", resp.StatusCode, respBody, tok)
	}

	select {
	case <-exited:
	case <-time.After(stopTimeout):
		t.Fatalf("server did not exit after SIGTERM; log:\n%s", srv.logs)
	}
	code, err := srv.stop()
	must(t, err)
	if code != 0 {
		t.Errorf("exit status %d after SIGTERM, want 0; log:\n%s", code, srv.logs)
	}
	if !strings.Contains(srv.logs.String(), `"msg":"rotor server stopped"`) {
		t.Errorf("no %q log line:\n%s", "rotor server stopped", srv.logs)
	}

	// What the in-flight request wrote is durable.
	must(t, srv.start())
	out, err := client(t, srv).GetSecretValue(t.Context(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)})
	must(t, err)
	if aws.ToString(out.SecretString) != "in flight" || aws.ToString(out.VersionId) != tok {
		t.Errorf("after restart: %q (%s), want the in-flight write", aws.ToString(out.SecretString), aws.ToString(out.VersionId))
	}
}

// runRotor runs the binary to completion and returns its combined output
// and exit status.
func runRotor(t testing.TB, env []string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), startTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, rotorBin, args...)
	cmd.Env = append(cleanEnv("ROTOR_", "AWS_"), env...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee) && ctx.Err() == nil:
		return string(out), ee.ExitCode()
	}
	t.Fatalf("rotor %s: %v\n%s", strings.Join(args, " "), err, out)
	return "", 0
}

func TestForeignMasterKeyIsRefused(t *testing.T) {
	t.Parallel()
	a := startServer(t)
	name := uniqueName(t)
	createString(t, client(t, a), name, "sealed with a's key")
	_, err := a.stop()
	must(t, err)
	b := startServer(t)
	_, err = b.stop()
	must(t, err)

	aKey := filepath.Join(a.dataDir, "master.key")
	own, err := os.ReadFile(aKey)
	must(t, err)
	foreign, err := os.ReadFile(filepath.Join(b.dataDir, "master.key"))
	must(t, err)
	must(t, os.WriteFile(aKey, foreign, 0o600))

	out, code := runRotor(t, []string{"ROTOR_ROOT_ACCESS_KEY_ID=" + testAccessKeyID, "ROTOR_ROOT_SECRET_ACCESS_KEY=" + testSecretAccessKey},
		"server", "--listen", "127.0.0.1:0", "--data-dir", a.dataDir)
	if code == 0 {
		t.Errorf("server started with another store's master key; output:\n%s", out)
	}
	if !strings.Contains(out, "master key") || !strings.Contains(out, "does not belong") || strings.Contains(out, "rotor server listening") {
		t.Errorf("output does not explain the foreign master key clearly:\n%s", out)
	}
	if got, _ := os.ReadFile(aKey); !bytes.Equal(got, foreign) {
		t.Error("the refused start rewrote master.key")
	}

	must(t, os.WriteFile(aKey, own, 0o600))
	must(t, a.start())
	if got := getString(t, client(t, a), name); got != "sealed with a's key" {
		t.Errorf("value with the right key back = %q", got)
	}
}

func TestLogFormatText(t *testing.T) {
	t.Parallel()
	srv := startServer(t, withArgs("--log-format", "text"))
	createString(t, client(t, srv), uniqueName(t), "v")
	// The request's log line follows its response.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := srv.logs.waitFor(ctx, "operation=CreateSecret"); err != nil {
		t.Errorf("%v:\n%s", err, srv.logs)
	}
	if len(srv.logs.entries()) != 0 {
		t.Errorf("JSON lines in a text-format log:\n%s", srv.logs)
	}
	logs := srv.logs.String()
	if !strings.Contains(logs, `msg="rotor server listening"`) || !strings.Contains(logs, "level=INFO") {
		t.Errorf("text log lacks the expected lines:\n%s", logs)
	}
}

func TestConfigurationFromEnvironment(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "from-env")
	srv := startServer(t, viaEnv(), withDataDir(dir), withEnv("ROTOR_REGION=eu-west-1", "ROTOR_LOG_FORMAT=text"))
	if _, err := os.Stat(filepath.Join(dir, "rotor.db")); err != nil {
		t.Errorf("ROTOR_DATA_DIR not used: %v", err)
	}
	if !strings.Contains(srv.logs.String(), `msg="rotor server listening"`) {
		t.Errorf("ROTOR_LOG_FORMAT=text not used:\n%s", srv.logs)
	}
	c := clientWithKey(srv, testAccessKeyID, testSecretAccessKey, func(o *secretsmanager.Options) { o.Region = "eu-west-1" })
	out := createString(t, c, uniqueName(t), "v")
	if !strings.HasPrefix(aws.ToString(out.ARN), "arn:aws:secretsmanager:eu-west-1:") {
		t.Errorf("ARN = %s, want region eu-west-1 from ROTOR_REGION", aws.ToString(out.ARN))
	}
}

func TestInvalidConfiguration(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc string
		env  []string
		args []string
		want string // in the output
	}{
		{"log format", nil, []string{"--log-format", "xml"}, "log-format"},
		{"region", nil, []string{"--region", "mars"}, "region"},
		{"listen", nil, []string{"--listen", "no-port"}, "listen"},
		{"half a root key", []string{"ROTOR_ROOT_ACCESS_KEY_ID=" + testAccessKeyID}, nil, "ROTOR_ROOT_SECRET_ACCESS_KEY"},
		{"env var", []string{"ROTOR_LOG_LEVEL=loud"}, nil, "log"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			args := append([]string{"server", "--data-dir", dir}, tc.args...)
			if !slices.Contains(tc.args, "--listen") {
				args = append(args, "--listen", "127.0.0.1:0")
			}
			out, code := runRotor(t, tc.env, args...)
			if code == 0 || !strings.Contains(out, "rotor: error:") || !strings.Contains(out, tc.want) {
				t.Errorf("exit status %d, output:\n%s\nwant a non-zero status and a rotor: error: line naming %s", code, out, tc.want)
			}
			if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("a refused configuration created the data dir (stat: %v)", err)
			}
		})
	}
}
