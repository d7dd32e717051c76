package agent

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestSSRF drives each SSRF rule through a real HTTP request.
func TestSSRF(t *testing.T) {
	api := newFakeAPI()
	api.put("app/db", "v1")
	ta := startAgent(t, nil, api, Options{})
	secretURL := ta.url + "/secretsmanager/get?secretId=app/db"

	tests := []struct {
		name       string
		method     string
		url        string
		header     map[string]string
		wantStatus int
		wantType   string
	}{
		{"token", "GET", secretURL, map[string]string{"X-Aws-Parameters-Secrets-Token": testToken}, 200, ""},
		{"alternate header", "GET", secretURL, map[string]string{"X-Vault-Token": testToken}, 200, ""},
		{"path style", "GET", ta.url + "/v1/app/db", map[string]string{"X-Aws-Parameters-Secrets-Token": testToken}, 200, ""},
		{"missing token", "GET", secretURL, nil, 403, "AccessDeniedException"},
		{"wrong token", "GET", secretURL, map[string]string{"X-Aws-Parameters-Secrets-Token": "guess"}, 403, "AccessDeniedException"},
		{"token prefix", "GET", secretURL, map[string]string{"X-Aws-Parameters-Secrets-Token": testToken[:5]}, 403, "AccessDeniedException"},
		{"token in another header", "GET", secretURL, map[string]string{"Authorization": testToken}, 403, "AccessDeniedException"},
		{"forwarded", "GET", secretURL, map[string]string{"X-Aws-Parameters-Secrets-Token": testToken, "X-Forwarded-For": "10.0.0.1"}, 400, "InvalidRequestException"},
		{"forwarded empty", "GET", secretURL, map[string]string{"X-Aws-Parameters-Secrets-Token": testToken, "X-Forwarded-For": ""}, 400, "InvalidRequestException"},
		{"post", "POST", secretURL, map[string]string{"X-Aws-Parameters-Secrets-Token": testToken}, 405, "InvalidRequestException"},
		{"put", "PUT", secretURL, map[string]string{"X-Aws-Parameters-Secrets-Token": testToken}, 405, "InvalidRequestException"},
		{"post without token", "POST", secretURL, nil, 403, "AccessDeniedException"},
		{"ping without token", "GET", ta.url + "/ping", nil, 200, ""},
		{"ping forwarded", "GET", ta.url + "/ping", map[string]string{"X-Forwarded-For": "10.0.0.1"}, 200, ""},
		{"unknown path without token", "GET", ta.url + "/other", nil, 403, "AccessDeniedException"},
		{"unknown path", "GET", ta.url + "/other", map[string]string{"X-Aws-Parameters-Secrets-Token": testToken}, 404, "UnknownOperationException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := do(t, tt.method, tt.url, tt.header)
			if status != tt.wantStatus {
				t.Fatalf("status = %d, want %d (body %s)", status, tt.wantStatus, body)
			}
			if tt.wantType == "" {
				return
			}
			var e struct {
				Type    string `json:"__type"`
				Message string `json:"message"`
			}
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.Type != tt.wantType {
				t.Errorf("body = %s, want __type %q", body, tt.wantType)
			}
		})
	}
	if status, body := do(t, "GET", ta.url+"/ping", nil); body != "healthy" {
		t.Errorf("/ping = %d %q, want healthy", status, body)
	}
}

// TestSSRFConfiguredHeaders: only the headers of ssrf_headers carry the
// token.
func TestSSRFConfiguredHeaders(t *testing.T) {
	api := newFakeAPI()
	api.put("s", "v")
	ta := startAgent(t, mustConfig(t, `ssrf_headers = ["X-My-Token"]`), api, Options{})
	u := ta.url + "/secretsmanager/get?secretId=s"
	if st, _ := do(t, "GET", u, map[string]string{"X-My-Token": testToken}); st != 200 {
		t.Errorf("X-My-Token: status %d, want 200", st)
	}
	if st, _ := do(t, "GET", u, map[string]string{"X-Aws-Parameters-Secrets-Token": testToken}); st != 403 {
		t.Errorf("X-Aws-Parameters-Secrets-Token when not configured: status %d, want 403", st)
	}
}

// TestMaxConn: with max_conn requests held in the handler, one more gets
// 429, a health check still passes, and the held ones complete.
func TestMaxConn(t *testing.T) {
	api := newFakeAPI()
	api.put("a", "va")
	api.put("b", "vb")
	api.block = make(chan struct{})
	ta := startAgent(t, mustConfig(t, "max_conn = 2"), api, Options{})

	var wg sync.WaitGroup
	results := make([]int, 2)
	for i, id := range []string{"a", "b"} {
		wg.Go(func() { results[i], _ = get(t, ta.url+"/secretsmanager/get?secretId="+id) })
	}
	waitFor(t, "two requests held", func() bool { return api.waiting.Load() == 2 })

	status, body := get(t, ta.url+"/secretsmanager/get?secretId=a")
	if status != http.StatusTooManyRequests || !contains(body, `"__type":"ThrottlingException"`) {
		t.Errorf("third request: %d %s, want 429 ThrottlingException", status, body)
	}
	if status, body := do(t, "GET", ta.url+"/ping", nil); status != 200 {
		t.Errorf("/ping at the limit: %d %s, want 200", status, body)
	}

	close(api.block)
	wg.Wait()
	if !slices.Equal(results, []int{200, 200}) {
		t.Errorf("held requests: %v, want both 200", results)
	}
	if status, _ := get(t, ta.url+"/secretsmanager/get?secretId=a"); status != 200 {
		t.Errorf("after the held requests: %d, want 200", status)
	}
}

// TestTokenFromFile: AWS_TOKEN=file://PATH; the file's content, trimmed,
// is the token the agent requires.
func TestTokenFromFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "awssmatoken")
	if err := os.WriteFile(path, []byte("  from-file-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"AWS_TOKEN": "file://" + path, "AWS_SESSION_TOKEN": "session"}
	tok, err := ResolveToken(DefaultSSRFEnvVariables, func(k string) string { return env[k] })
	if err != nil || tok != "from-file-token" {
		t.Fatalf("ResolveToken = %q, %v; want from-file-token", tok, err)
	}

	api := newFakeAPI()
	api.put("s", "v")
	ta := startAgent(t, nil, api, Options{Token: tok})
	u := ta.url + "/secretsmanager/get?secretId=s"
	if st, _ := do(t, "GET", u, map[string]string{"X-Aws-Parameters-Secrets-Token": "from-file-token"}); st != 200 {
		t.Errorf("token from the file: status %d, want 200", st)
	}
	if st, _ := do(t, "GET", u, map[string]string{"X-Aws-Parameters-Secrets-Token": "file://" + path}); st != 403 {
		t.Errorf("the file reference as token: status %d, want 403", st)
	}
}

func TestResolveToken(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		env     map[string]string
		want    string
		wantErr error
	}{
		{"first set wins", map[string]string{"AWS_TOKEN": "one", "AWS_SESSION_TOKEN": "two"}, "one", nil},
		{"second", map[string]string{"AWS_SESSION_TOKEN": "two"}, "two", nil},
		{"container", map[string]string{"AWS_CONTAINER_AUTHORIZATION_TOKEN": "three"}, "three", nil},
		{"none", nil, "", ErrNoToken},
		{"missing file", map[string]string{"AWS_TOKEN": "file://" + filepath.Join(dir, "nope")}, "", os.ErrNotExist},
		{"empty file", map[string]string{"AWS_TOKEN": "file://" + empty}, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ResolveToken(DefaultSSRFEnvVariables, func(k string) string { return tt.env[k] })
			if got != tt.want {
				t.Errorf("token = %q, want %q", got, tt.want)
			}
			if tt.want == "" && err == nil {
				t.Error("no error")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error %v, want %v", err, tt.wantErr)
			}
		})
	}
}

type secretBody struct {
	ARN           string
	Name          string
	VersionId     string
	SecretString  *string
	SecretBinary  *string
	VersionStages []string
	CreatedDate   any
}

func decodeSecret(t *testing.T, body string) secretBody {
	t.Helper()
	var s secretBody
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		t.Fatalf("response %s: %v", body, err)
	}
	return s
}

// TestResponseShape checks the JSON of GetSecretValue as the AWS agent
// writes it, for strings and binaries, by stage, version and path.
func TestResponseShape(t *testing.T) {
	api := newFakeAPI()
	v1 := api.put("prod/app/db", `{"password":"p1"}`)
	v2 := api.put("prod/app/db", `{"password":"p2"}`)
	vb := api.putBinary("bin", []byte{0, 1, 2, 0xff})
	ta := startAgent(t, nil, api, Options{})

	status, body := get(t, ta.url+"/secretsmanager/get?secretId=prod/app/db")
	if status != 200 {
		t.Fatalf("status %d: %s", status, body)
	}
	var raw map[string]any
	if err := json.Unmarshal([]byte(body), &raw); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range raw {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"ARN", "CreatedDate", "Name", "SecretString", "VersionId", "VersionStages"}; !slices.Equal(keys, want) {
		t.Errorf("keys = %v, want %v", keys, want)
	}
	s := decodeSecret(t, body)
	if s.Name != "prod/app/db" || s.VersionId != v2 || *s.SecretString != `{"password":"p2"}` ||
		!slices.Equal(s.VersionStages, []string{"AWSCURRENT"}) || s.ARN != "arn:aws:secretsmanager:us-east-1:000000000000:secret:prod/app/db-AbCdEf" {
		t.Errorf("AWSCURRENT = %+v", s)
	}
	if s.CreatedDate != "1700000002.123" {
		t.Errorf("CreatedDate = %#v, want the string \"1700000002.123\"", s.CreatedDate)
	}

	if _, body := get(t, ta.url+"/secretsmanager/get?secretId=prod/app/db&versionStage=AWSPREVIOUS"); decodeSecret(t, body).VersionId != v1 {
		t.Errorf("AWSPREVIOUS: %s", body)
	}
	if _, body := get(t, ta.url+"/secretsmanager/get?secretId=prod/app/db&versionId="+v1); *decodeSecret(t, body).SecretString != `{"password":"p1"}` {
		t.Errorf("by versionId: %s", body)
	}
	if _, body := get(t, ta.url+"/v1/prod/app/db?versionStage=AWSPREVIOUS"); decodeSecret(t, body).VersionId != v1 {
		t.Errorf("path style, AWSPREVIOUS: %s", body)
	}
	arn := url.PathEscape("arn:aws:secretsmanager:us-east-1:000000000000:secret:prod/app/db-AbCdEf")
	if _, body := get(t, ta.url+"/v1/"+arn); decodeSecret(t, body).VersionId != v2 {
		t.Errorf("path style by ARN: %s", body)
	}

	status, body = get(t, ta.url+"/v1/bin")
	b := decodeSecret(t, body)
	if status != 200 || b.SecretString != nil || b.SecretBinary == nil || b.VersionId != vb {
		t.Fatalf("binary: %d %s", status, body)
	}
	if got, _ := base64.StdEncoding.DecodeString(*b.SecretBinary); string(got) != "\x00\x01\x02\xff" {
		t.Errorf("SecretBinary decodes to %q", got)
	}
}

// TestCacheAndRefreshNow: a new version is not seen until the TTL or
// refreshNow; ttl_seconds = 0 reads the service every time.
func TestCacheAndRefreshNow(t *testing.T) {
	api := newFakeAPI()
	api.put("s", "one")
	ta := startAgent(t, nil, api, Options{})
	u := ta.url + "/secretsmanager/get?secretId=s"
	get(t, u)
	api.put("s", "two")
	gets := api.gets.Load()
	if _, body := get(t, u); *decodeSecret(t, body).SecretString != "one" {
		t.Errorf("cached read: %s, want the cached value", body)
	}
	if api.gets.Load() != gets {
		t.Errorf("a cached read called GetSecretValue")
	}
	if _, body := get(t, u+"&refreshNow=true"); *decodeSecret(t, body).SecretString != "two" {
		t.Errorf("refreshNow=true: %s, want the new value", body)
	}
	if _, body := get(t, u); *decodeSecret(t, body).SecretString != "two" {
		t.Errorf("after refreshNow: %s", body)
	}
	if _, body := get(t, ta.url+"/v1/s?versionStage=AWSPREVIOUS&refreshNow=1"); *decodeSecret(t, body).SecretString != "one" {
		t.Errorf("refreshNow on AWSPREVIOUS: %s", body)
	}

	nocache := startAgent(t, mustConfig(t, "ttl_seconds = 0"), api, Options{})
	before := api.gets.Load()
	for range 3 {
		get(t, nocache.url+"/secretsmanager/get?secretId=s")
	}
	if n := api.gets.Load() - before; n != 3 {
		t.Errorf("ttl_seconds = 0: %d GetSecretValue calls for 3 reads, want 3", n)
	}
}

// TestErrors checks status and AWS-shaped body of each kind of failure.
func TestErrors(t *testing.T) {
	api := newFakeAPI()
	api.put("s", "v")
	ta := startAgent(t, nil, api, Options{})

	tests := []struct {
		name       string
		path       string
		wantStatus int
		wantType   string
		wantMsg    string
	}{
		{"not found", "/secretsmanager/get?secretId=nope", 400, "ResourceNotFoundException", "Secrets Manager can't find the specified secret."},
		{"unknown parameter", "/secretsmanager/get?secretId=s&abc=1", 400, "InvalidParameterException", "unknown parameter: abc"},
		{"missing secretId", "/secretsmanager/get?versionStage=AWSCURRENT", 400, "InvalidParameterException", "missing parameter secretId"},
		{"bad refreshNow", "/secretsmanager/get?secretId=s&refreshNow=yes", 400, "InvalidParameterException", "invalid refreshNow value"},
		{"secretId in path style", "/v1/s?secretId=s", 400, "InvalidParameterException", "unknown parameter: secretId"},
		{"empty path id", "/v1/", 400, "InvalidParameterException", "missing secret ID"},
		{"malformed query", "/secretsmanager/get?secretId=%zz", 400, "InvalidParameterException", "malformed query string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := get(t, ta.url+tt.path)
			var e struct {
				Type    string `json:"__type"`
				Message string `json:"message"`
			}
			_ = json.Unmarshal([]byte(body), &e)
			if status != tt.wantStatus || e.Type != tt.wantType || e.Message != tt.wantMsg {
				t.Errorf("got %d %s, want %d %s %q", status, body, tt.wantStatus, tt.wantType, tt.wantMsg)
			}
		})
	}

	t.Run("timeout", func(t *testing.T) {
		slow := newFakeAPI()
		slow.put("s", "v")
		slow.block = make(chan struct{})
		defer close(slow.block)
		ta := startAgent(t, nil, slow, Options{UpstreamTimeout: 50 * time.Millisecond})
		status, body := get(t, ta.url+"/secretsmanager/get?secretId=s")
		if status != http.StatusGatewayTimeout || !contains(body, `"__type":"TimeoutError"`) {
			t.Errorf("got %d %s, want 504 TimeoutError", status, body)
		}
	})
	t.Run("connection refused", func(t *testing.T) {
		down := newFakeAPI()
		down.getErr = &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
		ta := startAgent(t, nil, down, Options{})
		status, body := get(t, ta.url+"/secretsmanager/get?secretId=s")
		if status != http.StatusBadGateway || !contains(body, `"__type":"ConnectionError"`) {
			t.Errorf("got %d %s, want 502 ConnectionError", status, body)
		}
	})
}

// TestNoValueOrTokenInLog: with debug logging, after reads, refusals and
// errors, neither a value nor the token appears in the log.
func TestNoValueOrTokenInLog(t *testing.T) {
	api := newFakeAPI()
	api.put("s", "the-value-must-not-be-logged")
	ta := startAgent(t, nil, api, Options{})
	get(t, ta.url+"/secretsmanager/get?secretId=s")
	get(t, ta.url+"/v1/s?refreshNow=true")
	get(t, ta.url+"/secretsmanager/get?secretId=nope")
	do(t, "GET", ta.url+"/v1/s", map[string]string{"X-Aws-Parameters-Secrets-Token": testToken + "x"})
	do(t, "GET", ta.url+"/v1/s", map[string]string{"X-Aws-Parameters-Secrets-Token": testToken, "X-Forwarded-For": "1.2.3.4"})
	logs := ta.logs.String()
	if !contains(logs, `"msg":"request"`, `"msg":"request refused"`) {
		t.Fatalf("the log has no request lines:\n%s", logs)
	}
	for _, secret := range []string{"the-value-must-not-be-logged", testToken} {
		if contains(logs, secret) {
			t.Errorf("the log contains %q:\n%s", secret, logs)
		}
	}
}
