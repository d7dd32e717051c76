package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"

	"github.com/rotor-secrets/rotor/internal/keyring"
)

// fastSeal keeps Argon2id cheap in tests.
var fastSeal = keyring.Argon2Params{Time: 1, Memory: 64, Threads: 1, KeyLen: 32}

func sealedConfig(dir string) func(*Config) {
	return func(c *Config) {
		c.DataDir = dir
		c.MasterKeySource = KeySourcePassphrase
		c.sealParams = fastSeal
	}
}

// runSealTest runs s until the test ends, then checks Run returned nil.
func runSealTest(t *testing.T, s *Server) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

type answer struct {
	status int
	header http.Header
	body   string
}

func (a answer) errorType() string {
	var e struct {
		Type string `json:"__type"`
	}
	_ = json.Unmarshal([]byte(a.body), &e)
	return e.Type
}

func do(t *testing.T, s *Server, method, path, target, body string) answer {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, "http://"+s.Addr().String()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if target != "" {
		req.Header.Set("X-Amz-Target", target)
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, string(b)}
}

func unsealReq(t *testing.T, s *Server, pass string) answer {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"Passphrase": pass})
	return do(t, s, http.MethodPost, "/", UnsealTarget, string(b))
}

// noThrottle lets the test try passphrases back to back.
func noThrottle(s *Server) {
	s.gate.throttle.mu.Lock()
	s.gate.throttle.every = 0
	s.gate.throttle.mu.Unlock()
}

func wantSealed(t *testing.T, s *Server) {
	t.Helper()
	if a := do(t, s, http.MethodGet, "/healthz", "", ""); a.status != 200 || strings.TrimSpace(a.body) != `{"status":"sealed"}` {
		t.Errorf("GET /healthz = %d %s, want 200 sealed", a.status, a.body)
	}
	if a := do(t, s, http.MethodGet, "/readyz", "", ""); a.status != 503 || strings.TrimSpace(a.body) != `{"status":"sealed"}` {
		t.Errorf("GET /readyz = %d %s, want 503 sealed", a.status, a.body)
	}
	a := do(t, s, http.MethodPost, "/", "secretsmanager.GetSecretValue", `{"SecretId":"x"}`)
	want := `{"__type":"ServiceUnavailableException","Message":"Rotor is sealed: unseal it with ` + "`rotor unseal`" + `"}`
	if a.status != 503 || a.body != want || a.header.Get("X-Amzn-ErrorType") != "ServiceUnavailableException" || a.header.Get("X-Amzn-RequestId") == "" {
		t.Errorf("sealed API answer = %d %v %s, want 503 %s", a.status, a.header, a.body, want)
	}
	for _, p := range []string{"/metrics", "/anything"} {
		if a := do(t, s, http.MethodGet, p, "", ""); a.status != 503 {
			t.Errorf("GET %s = %d while sealed, want 503", p, a.status)
		}
	}
	_, err := sdkClient(s).GetSecretValue(t.Context(), &secretsmanager.GetSecretValueInput{SecretId: aws.String("x")})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "ServiceUnavailableException" {
		t.Errorf("SDK while sealed: %v, want ServiceUnavailableException", err)
	}
}

func TestSealedServerOverHTTP(t *testing.T) {
	dir := t.TempDir()
	const pass = "correct horse battery staple"

	// First start: no master.seal yet; the first unseal creates it.
	s := openTestServer(t, sealedConfig(dir))
	stop := runSealTest(t, s)
	wantSealed(t, s)
	if a := unsealReq(t, s, "short"); a.status != 400 || a.errorType() != "InvalidPassphraseException" {
		t.Fatalf("short first passphrase: %d %s", a.status, a.body)
	}
	if exists(filepath.Join(dir, SealFile)) {
		t.Fatal("a refused passphrase created master.seal")
	}
	noThrottle(s)
	if a := unsealReq(t, s, pass); a.status != 200 || strings.TrimSpace(a.body) != unsealedBody {
		t.Fatalf("first unseal: %d %s", a.status, a.body)
	}
	if a := do(t, s, http.MethodGet, "/readyz", "", ""); a.status != 200 {
		t.Fatalf("readyz after unseal: %d %s", a.status, a.body)
	}
	c := sdkClient(s)
	if _, err := c.CreateSecret(t.Context(), &secretsmanager.CreateSecretInput{Name: aws.String("k"), SecretString: aws.String("v")}); err != nil {
		t.Fatal(err)
	}
	// Unsealed: rotor.Unseal is a no-op that checks nothing.
	if a := unsealReq(t, s, "anything at all"); a.status != 200 {
		t.Errorf("unseal while unsealed: %d %s", a.status, a.body)
	}
	stop()
	seal, err := os.ReadFile(filepath.Join(dir, SealFile))
	if err != nil {
		t.Fatal(err)
	}
	if exists(filepath.Join(dir, MasterKeyFile)) {
		t.Error("passphrase mode wrote master.key")
	}

	// Restart: sealed again; wrong passphrase refused, then throttled,
	// then the right one.
	s = openTestServer(t, sealedConfig(dir))
	runSealTest(t, s)
	wantSealed(t, s)
	a := unsealReq(t, s, "the wrong passphrase")
	if a.status != 400 || a.errorType() != "InvalidPassphraseException" || strings.Contains(a.body, "wrong passphrase\"") {
		t.Fatalf("wrong passphrase: %d %s", a.status, a.body)
	}
	if strings.Contains(a.body, "the wrong passphrase") {
		t.Error("the answer echoes the passphrase")
	}
	if a := unsealReq(t, s, pass); a.status != 429 || a.errorType() != "ThrottlingException" {
		t.Fatalf("second attempt at once: %d %s, want 429 ThrottlingException", a.status, a.body)
	}
	wantSealed(t, s)
	if got, _ := os.ReadFile(filepath.Join(dir, SealFile)); !bytes.Equal(got, seal) {
		t.Error("refused attempts changed master.seal")
	}
	noThrottle(s)
	// Concurrent unseals, right and wrong: all are safe, the store opens once.
	var wg sync.WaitGroup
	codes := make([]int, 8)
	for i := range codes {
		wg.Go(func() {
			p := pass
			if i%2 == 1 {
				p = "another wrong passphrase"
			}
			codes[i] = unsealReq(t, s, p).status
		})
	}
	wg.Wait()
	for i, code := range codes {
		if i%2 == 0 && code != 200 {
			t.Errorf("concurrent right unseal %d: %d", i, code)
		}
		if code != 200 && code != 400 {
			t.Errorf("concurrent unseal %d: %d", i, code)
		}
	}
	out, err := sdkClient(s).GetSecretValue(t.Context(), &secretsmanager.GetSecretValueInput{SecretId: aws.String("k")})
	if err != nil || aws.ToString(out.SecretString) != "v" {
		t.Fatalf("after unseal: %v %v", out, err)
	}
}

func TestPassphraseFileAtStart(t *testing.T) {
	dir := t.TempDir()
	pf := filepath.Join(t.TempDir(), "pass")
	if err := os.WriteFile(pf, []byte("a good passphrase\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	withFile := func(c *Config) { c.PassphraseFile = pf }
	s := openTestServer(t, sealedConfig(dir), withFile)
	stop := runSealTest(t, s)
	if _, err := sdkClient(s).CreateSecret(t.Context(), &secretsmanager.CreateSecretInput{Name: aws.String("k"), SecretString: aws.String("v")}); err != nil {
		t.Fatal(err)
	}
	stop()

	// The trailing newline is not part of the passphrase.
	if err := os.WriteFile(pf, []byte("a good passphrase"), 0o600); err != nil {
		t.Fatal(err)
	}
	s = openTestServer(t, sealedConfig(dir), withFile)
	runSealTest(t, s)
	out, err := sdkClient(s).GetSecretValue(t.Context(), &secretsmanager.GetSecretValueInput{SecretId: aws.String("k")})
	if err != nil || aws.ToString(out.SecretString) != "v" {
		t.Fatalf("after restart: %v %v", out, err)
	}

	bad := filepath.Join(t.TempDir(), "bad")
	if err := os.WriteFile(bad, []byte("not the passphrase"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	sealedConfig(dir)(&cfg)
	cfg.PassphraseFile = bad
	if _, err := Open(t.Context(), cfg, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "passphrase does not open master.seal") {
		t.Fatalf("wrong passphrase file: Open = %v", err)
	}
}

func testConfig(t *testing.T) Config {
	return Config{
		Listen: "127.0.0.1:0", DataDir: t.TempDir(), Region: DefaultRegion, AccountID: DefaultAccountID,
		RootAccessKeyID: testKeyID, RootSecretAccessKey: testSecret,
	}
}

func TestEnvKeySource(t *testing.T) {
	mk, err := keyring.NewMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	env := func(c *Config) {
		c.DataDir = dir
		c.MasterKeySource = KeySourceEnv
		c.MasterKey = base64.StdEncoding.EncodeToString(mk.Key)
	}
	s := openTestServer(t, env)
	stop := runSealTest(t, s)
	if _, err := sdkClient(s).CreateSecret(t.Context(), &secretsmanager.CreateSecretInput{Name: aws.String("k"), SecretString: aws.String("v")}); err != nil {
		t.Fatal(err)
	}
	stop()
	if exists(filepath.Join(dir, MasterKeyFile)) || exists(filepath.Join(dir, SealFile)) {
		t.Error("the env source wrote a key file")
	}
	s = openTestServer(t, env)
	runSealTest(t, s)
	if _, err := sdkClient(s).GetSecretValue(t.Context(), &secretsmanager.GetSecretValueInput{SecretId: aws.String("k")}); err != nil {
		t.Fatal(err)
	}

	other, _ := keyring.NewMasterKey()
	cfg := testConfig(t)
	env(&cfg)
	cfg.MasterKey = base64.StdEncoding.EncodeToString(other.Key)
	if _, err := Open(t.Context(), cfg, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "does not belong") {
		t.Fatalf("another env key: Open = %v", err)
	}
}

func TestMissingKeyFile(t *testing.T) {
	cfg := testConfig(t)
	s := openTestServer(t, func(c *Config) { *c = cfg })
	stop := runSealTest(t, s)
	stop()
	keyPath := filepath.Join(cfg.DataDir, MasterKeyFile)
	if err := os.Remove(keyPath); err != nil {
		t.Fatal(err)
	}
	_, err := Open(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "master.key is missing") || !strings.Contains(err.Error(), "restore master.key") {
		t.Fatalf("Open = %v, want master.key is missing", err)
	}
	if exists(keyPath) {
		t.Error("Open created a new master.key for a store that has data")
	}
}

func TestSealExistingKeyFile(t *testing.T) {
	cfg := testConfig(t)
	s := openTestServer(t, func(c *Config) { *c = cfg })
	stop := runSealTest(t, s)
	if _, err := sdkClient(s).CreateSecret(t.Context(), &secretsmanager.CreateSecretInput{Name: aws.String("k"), SecretString: aws.String("v")}); err != nil {
		t.Fatal(err)
	}
	stop()

	s = openTestServer(t, sealedConfig(cfg.DataDir))
	runSealTest(t, s)
	wantSealed(t, s)
	if a := unsealReq(t, s, "migrated passphrase"); a.status != 200 {
		t.Fatalf("unseal: %d %s", a.status, a.body)
	}
	if exists(filepath.Join(cfg.DataDir, MasterKeyFile)) || !exists(filepath.Join(cfg.DataDir, SealFile)) {
		t.Error("master.key was not moved into master.seal")
	}
	if _, err := sdkClient(s).GetSecretValue(t.Context(), &secretsmanager.GetSecretValueInput{SecretId: aws.String("k")}); err != nil {
		t.Fatal(err)
	}
	// File mode now explains where the key went.
	_, err := Open(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "--master-key-source passphrase") {
		t.Fatalf("file mode on a sealed data dir: Open = %v", err)
	}
}

func TestStopWhileSealed(t *testing.T) {
	s := openTestServer(t, sealedConfig(t.TempDir()))
	stop := runSealTest(t, s)
	wantSealed(t, s)
	stop() // Run returns nil: nothing but the listener was open
}

func TestConfigValidateKeySource(t *testing.T) {
	cases := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"unknown source", func(c *Config) { c.MasterKeySource = "kms" }, "master-key-source"},
		{"env without key", func(c *Config) { c.MasterKeySource = KeySourceEnv }, "ROTOR_MASTER_KEY"},
		{"key without env", func(c *Config) { c.MasterKey = "x" }, "ROTOR_MASTER_KEY is set"},
		{"passphrase file without passphrase", func(c *Config) { c.PassphraseFile = "p" }, "passphrase-file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := Config{Listen: DefaultListen, DataDir: "d", Region: DefaultRegion, AccountID: DefaultAccountID}
			c.mod(&cfg)
			if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Validate() = %v, want an error about %s", err, c.want)
			}
		})
	}
}
