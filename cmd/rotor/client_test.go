package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/smithy-go"
)

// isolateProcessEnv clears the AWS variables of the process, which the SDK
// reads on its own, so that only the injected getenv decides.
func isolateProcessEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "AWS_") {
			t.Setenv(k, "")
		}
	}
	t.Setenv("HOME", t.TempDir())
}

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func getenvFrom(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestOpenClientEndpoint(t *testing.T) {
	isolateProcessEnv(t)
	const profiles = `[default]
region = eu-west-1

[profile svc]
services = local

[services local]
secrets_manager =
  endpoint_url = http://svc.example:1

[profile global]
endpoint_url = http://global.example:2

[profile ignoring]
endpoint_url = http://global.example:2
ignore_configured_endpoint_urls = true
`
	home := t.TempDir()
	writeFile(t, filepath.Join(home, ".aws", "config"), profiles)
	keys := map[string]string{"HOME": home, "AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "s"}

	tests := []struct {
		name     string
		vars     map[string]string
		flags    connFlags
		want     string
		wantFrom string
	}{
		{name: "nothing configured", want: defaultEndpoint, wantFrom: "default"},
		{
			name:     "service variable",
			vars:     map[string]string{"AWS_ENDPOINT_URL_SECRETS_MANAGER": "http://a:1", "AWS_ENDPOINT_URL": "http://b:2"},
			want:     "http://a:1",
			wantFrom: "AWS_ENDPOINT_URL_SECRETS_MANAGER",
		},
		{
			name:     "global variable",
			vars:     map[string]string{"AWS_ENDPOINT_URL": "http://b:2"},
			want:     "http://b:2",
			wantFrom: "AWS_ENDPOINT_URL",
		},
		{
			name:     "flag beats variables",
			vars:     map[string]string{"AWS_ENDPOINT_URL_SECRETS_MANAGER": "http://a:1"},
			flags:    connFlags{endpointURL: "https://flag:3"},
			want:     "https://flag:3",
			wantFrom: "--endpoint-url",
		},
		{
			name:     "profile services section",
			flags:    connFlags{profile: "svc"},
			want:     "http://svc.example:1",
			wantFrom: `the services section of profile "svc"`,
		},
		{
			name:     "profile endpoint_url",
			vars:     map[string]string{"AWS_PROFILE": "global"},
			want:     "http://global.example:2",
			wantFrom: `endpoint_url of profile "global"`,
		},
		{
			name:     "variable beats profile",
			vars:     map[string]string{"AWS_PROFILE": "global", "AWS_ENDPOINT_URL": "http://b:2"},
			want:     "http://b:2",
			wantFrom: "AWS_ENDPOINT_URL",
		},
		{
			name:     "ignore configured endpoints in profile",
			vars:     map[string]string{"AWS_PROFILE": "ignoring"},
			want:     "",
			wantFrom: "the SDK's default for region us-east-1",
		},
		{
			name:     "ignore configured endpoints variable",
			vars:     map[string]string{"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true", "AWS_ENDPOINT_URL": "http://b:2", "AWS_REGION": "us-west-2"},
			want:     "",
			wantFrom: "the SDK's default for region us-west-2",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vars := map[string]string{}
			for k, v := range keys {
				vars[k] = v
			}
			for k, v := range tt.vars {
				vars[k] = v
			}
			c, err := openClient(t.Context(), getenvFrom(vars), tt.flags)
			if err != nil {
				t.Fatal(err)
			}
			if c.endpoint != tt.want || c.endpointFrom != tt.wantFrom {
				t.Errorf("endpoint = %q from %q, want %q from %q", c.endpoint, c.endpointFrom, tt.want, tt.wantFrom)
			}
		})
	}
}

func TestOpenClientInvalidEndpoint(t *testing.T) {
	isolateProcessEnv(t)
	vars := map[string]string{"HOME": t.TempDir(), "AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "s"}

	_, err := openClient(t.Context(), getenvFrom(vars), connFlags{endpointURL: "127.0.0.1:7300"})
	if err == nil || exitCode(err) != 2 {
		t.Errorf("flag: err = %v (exit %d), want a usage error", err, exitCode(err))
	}
	vars["AWS_ENDPOINT_URL"] = "ftp://x"
	_, err = openClient(t.Context(), getenvFrom(vars), connFlags{})
	if err == nil || exitCode(err) != 1 || !strings.Contains(err.Error(), "AWS_ENDPOINT_URL") {
		t.Errorf("variable: err = %v (exit %d), want an error naming AWS_ENDPOINT_URL with exit 1", err, exitCode(err))
	}
}

func TestOpenClientRegion(t *testing.T) {
	isolateProcessEnv(t)
	home := t.TempDir()
	writeFile(t, filepath.Join(home, ".aws", "config"), "[profile eu]\nregion = eu-central-1\n")
	tests := []struct {
		name  string
		vars  map[string]string
		flags connFlags
		want  string
	}{
		{name: "default", want: "us-east-1"},
		{name: "AWS_REGION", vars: map[string]string{"AWS_REGION": "ap-south-1", "AWS_DEFAULT_REGION": "sa-east-1"}, want: "ap-south-1"},
		{name: "AWS_DEFAULT_REGION", vars: map[string]string{"AWS_DEFAULT_REGION": "sa-east-1"}, want: "sa-east-1"},
		{name: "profile", vars: map[string]string{"AWS_PROFILE": "eu"}, want: "eu-central-1"},
		{name: "flag", vars: map[string]string{"AWS_REGION": "ap-south-1"}, flags: connFlags{region: "ca-central-1"}, want: "ca-central-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vars := map[string]string{"HOME": home, "AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "s"}
			for k, v := range tt.vars {
				vars[k] = v
			}
			c, err := openClient(t.Context(), getenvFrom(vars), tt.flags)
			if err != nil {
				t.Fatal(err)
			}
			if c.region != tt.want {
				t.Errorf("region = %q, want %q", c.region, tt.want)
			}
		})
	}
}

func TestOpenClientCredentials(t *testing.T) {
	isolateProcessEnv(t)
	home := t.TempDir()
	writeFile(t, filepath.Join(home, ".aws", "credentials"),
		"[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = d\n\n"+
			"[work]\naws_access_key_id = AKIDWORK\naws_secret_access_key = w\n")
	emptyHome := t.TempDir()
	dataDir := t.TempDir()
	rotorCreds := writeFile(t, filepath.Join(dataDir, "credentials"), "[rotor]\naws_access_key_id = AKIDROTOR\naws_secret_access_key = r\n")
	otherCreds := filepath.Join(t.TempDir(), "creds")
	writeFile(t, otherCreds, "[ci]\naws_access_key_id = AKIDCI\naws_secret_access_key = c\n")
	wrongDir := t.TempDir()
	writeFile(t, filepath.Join(wrongDir, "credentials"), "[other]\naws_access_key_id = X\naws_secret_access_key = Y\n")

	tests := []struct {
		name      string
		vars      map[string]string
		flags     connFlags
		wantKey   string
		wantFrom  string
		wantError string
	}{
		{
			name:     "environment",
			vars:     map[string]string{"HOME": home, "AWS_ACCESS_KEY_ID": "AKIDENV", "AWS_SECRET_ACCESS_KEY": "e"},
			wantKey:  "AKIDENV",
			wantFrom: "the environment (AWS_ACCESS_KEY_ID)",
		},
		{
			name:     "environment beats AWS_PROFILE",
			vars:     map[string]string{"HOME": home, "AWS_PROFILE": "work", "AWS_ACCESS_KEY_ID": "AKIDENV", "AWS_SECRET_ACCESS_KEY": "e"},
			wantKey:  "AKIDENV",
			wantFrom: "the environment (AWS_ACCESS_KEY_ID)",
		},
		{
			name:     "--profile beats environment",
			vars:     map[string]string{"HOME": home, "AWS_ACCESS_KEY_ID": "AKIDENV", "AWS_SECRET_ACCESS_KEY": "e"},
			flags:    connFlags{profile: "work"},
			wantKey:  "AKIDWORK",
			wantFrom: `profile "work"`,
		},
		{
			name:     "default profile",
			vars:     map[string]string{"HOME": home, "ROTOR_DATA_DIR": dataDir},
			wantKey:  "AKIDDEFAULT",
			wantFrom: "the default profile",
		},
		{
			name:     "AWS_SHARED_CREDENTIALS_FILE and AWS_PROFILE",
			vars:     map[string]string{"HOME": home, "AWS_SHARED_CREDENTIALS_FILE": otherCreds, "AWS_PROFILE": "ci"},
			wantKey:  "AKIDCI",
			wantFrom: `profile "ci"`,
		},
		{
			name:     "nothing configured: the local server's file",
			vars:     map[string]string{"HOME": emptyHome, "ROTOR_DATA_DIR": dataDir},
			wantKey:  "AKIDROTOR",
			wantFrom: rotorCreds + " (profile rotor)",
		},
		{
			name:      "nothing configured and no file",
			vars:      map[string]string{"HOME": emptyHome, "ROTOR_DATA_DIR": t.TempDir()},
			wantError: "no credentials found",
		},
		{
			name:      "file without profile rotor",
			vars:      map[string]string{"HOME": emptyHome, "ROTOR_DATA_DIR": wrongDir},
			wantError: `no access key in profile "rotor" of ` + filepath.Join(wrongDir, "credentials"),
		},
		{
			name:     "explicit endpoint and no file: instance metadata",
			vars:     map[string]string{"HOME": emptyHome, "ROTOR_DATA_DIR": t.TempDir(), "AWS_ENDPOINT_URL": "https://secretsmanager.us-east-1.amazonaws.com"},
			wantFrom: "EC2 instance metadata",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := openClient(t.Context(), getenvFrom(tt.vars), tt.flags)
			if tt.wantError != "" {
				if err == nil || err.Error() != tt.wantError {
					t.Fatalf("err = %v, want %q", err, tt.wantError)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.credsFrom != tt.wantFrom {
				t.Errorf("credentials from %q, want %q", c.credsFrom, tt.wantFrom)
			}
			if tt.wantKey == "" {
				return
			}
			creds, err := c.creds.Retrieve(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if creds.AccessKeyID != tt.wantKey {
				t.Errorf("access key = %q, want %q", creds.AccessKeyID, tt.wantKey)
			}
		})
	}
}

func TestOpenClientDefaultDataDir(t *testing.T) {
	isolateProcessEnv(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "rotor-data", "credentials"), "[rotor]\naws_access_key_id = AKIDCWD\naws_secret_access_key = r\n")
	t.Chdir(dir)
	c, err := openClient(t.Context(), getenvFrom(map[string]string{"HOME": t.TempDir()}), connFlags{})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join("rotor-data", "credentials") + " (profile rotor)"; c.credsFrom != want {
		t.Errorf("credentials from %q, want %q", c.credsFrom, want)
	}
}

func TestOpenClientMissingProfile(t *testing.T) {
	isolateProcessEnv(t)
	_, err := openClient(t.Context(), getenvFrom(map[string]string{"HOME": t.TempDir()}), connFlags{profile: "nope"})
	var he *hintError
	if !errors.As(err, &he) || he.Error() != `profile "nope" not found in the shared config or credentials file` || he.Hint() == "" {
		t.Errorf("err = %v, want a hinted profile-not-found error", err)
	}
}

func TestExplain(t *testing.T) {
	c := &clientConn{endpoint: "http://127.0.0.1:7300", endpointFrom: "default", region: "us-east-1", credsFrom: "the environment (AWS_ACCESS_KEY_ID)", timeout: 5 * time.Second}
	op := func(err error) error {
		return &smithy.OperationError{ServiceID: "Secrets Manager", OperationName: "GetSecretValue", Err: err}
	}
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	tests := []struct {
		name     string
		err      error
		wantMsg  string
		wantHint string
	}{
		{
			name:    "API error",
			err:     op(&smithy.GenericAPIError{Code: "ResourceNotFoundException", Message: "Secrets Manager can't find the specified secret."}),
			wantMsg: "ResourceNotFoundException: Secrets Manager can't find the specified secret.",
		},
		{
			name:    "API error without message",
			err:     op(&smithy.GenericAPIError{Code: "InternalFailure"}),
			wantMsg: "InternalFailure",
		},
		{
			name:     "signature",
			err:      op(&smithy.GenericAPIError{Code: "UnrecognizedClientException", Message: "The security token included in the request is invalid."}),
			wantMsg:  "UnrecognizedClientException: The security token included in the request is invalid.",
			wantHint: "the request was signed with credentials from the environment (AWS_ACCESS_KEY_ID); check them, or choose others with --profile or AWS_PROFILE",
		},
		{
			name:     "connection refused",
			err:      op(fmt.Errorf("send: %w", refused)),
			wantMsg:  "cannot connect to http://127.0.0.1:7300: connection refused",
			wantHint: "is the server running? start it with `rotor server` or set AWS_ENDPOINT_URL_SECRETS_MANAGER",
		},
		{
			name:     "timeout",
			err:      op(fmt.Errorf("send: %w", context.DeadlineExceeded)),
			wantMsg:  "no answer from http://127.0.0.1:7300 within 5s",
			wantHint: "check that the server is healthy, or allow more time with --timeout",
		},
		{
			name:    "interrupted",
			err:     op(context.Canceled),
			wantMsg: "interrupted",
		},
		{
			name:     "credentials",
			err:      &credentialsError{err: errors.New("boom")},
			wantMsg:  "cannot get credentials from the environment (AWS_ACCESS_KEY_ID)",
			wantHint: "set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or ROTOR_DATA_DIR for a local server's credentials",
		},
		{
			name:    "other",
			err:     op(errors.New("something odd")),
			wantMsg: "something odd",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := c.explain(tt.err)
			if err.Error() != tt.wantMsg {
				t.Errorf("message = %q, want %q", err.Error(), tt.wantMsg)
			}
			var h interface{ Hint() string }
			hint := ""
			if errors.As(err, &h) {
				hint = h.Hint()
			}
			if hint != tt.wantHint {
				t.Errorf("hint = %q, want %q", hint, tt.wantHint)
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("explained error does not wrap the original")
			}
		})
	}
}

func TestRetryerDoesNotRetryRefusedConnections(t *testing.T) {
	r := newRetryer()
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	if r.IsErrorRetryable(refused) {
		t.Error("refused connection is retryable")
	}
	if !r.IsErrorRetryable(&smithy.GenericAPIError{Code: "ThrottlingException"}) {
		t.Error("throttling is not retryable")
	}
	if r.MaxAttempts() != 3 {
		t.Errorf("max attempts = %d, want the standard 3", r.MaxAttempts())
	}
}
