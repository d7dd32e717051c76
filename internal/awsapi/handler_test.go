package awsapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/rotor-secrets/rotor/internal/auth"
	"github.com/rotor-secrets/rotor/internal/secrets"
)

// errorBody decodes an AWS JSON error response.
func errorBody(t *testing.T, w *httptest.ResponseRecorder) (code, msg string) {
	t.Helper()
	var b struct {
		Type    string `json:"__type"`
		Message string
	}
	if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil {
		t.Fatalf("error body %q is not JSON: %v", w.Body.String(), err)
	}
	if got := w.Header().Get("X-Amzn-ErrorType"); got != b.Type {
		t.Errorf("X-Amzn-ErrorType = %q, body __type = %q", got, b.Type)
	}
	if got := w.Header().Get("Content-Type"); got != contentType {
		t.Errorf("Content-Type = %q, want %q", got, contentType)
	}
	return b.Type, b.Message
}

func TestTargetDispatch(t *testing.T) {
	tests := []struct {
		name       string
		target     string
		wantStatus int
		wantCode   string
	}{
		{"missing", "", 400, "UnknownOperationException"},
		{"unknown operation", "secretsmanager.FrobnicateSecret", 400, "UnknownOperationException"},
		{"prefix only", "secretsmanager.", 400, "UnknownOperationException"},
		{"other service", "TrentService.Encrypt", 400, "UnknownOperationException"},
		{"wrong case", "SecretsManager.GetSecretValue", 400, "UnknownOperationException"},
		{"not served", "secretsmanager.ReplicateSecretToRegions", 400, "UnknownOperationException"},
		{"rotor operation under the AWS prefix", "secretsmanager.GetRotationStatus", 400, "UnknownOperationException"},
		{"known", "secretsmanager.DescribeSecret", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeBackend{out: secrets.Description{Name: "n"}}
			h, _ := testHandler(t, f, nil)
			w := post(h, tt.target, `{"SecretId":"n"}`)
			if w.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", w.Code, tt.wantStatus, w.Body)
			}
			if tt.wantCode == "" {
				if f.calls != 1 {
					t.Errorf("service called %d times, want 1", f.calls)
				}
				return
			}
			if code, _ := errorBody(t, w); code != tt.wantCode {
				t.Errorf("__type = %q, want %q", code, tt.wantCode)
			}
			if f.calls != 0 {
				t.Errorf("service called for an unknown target")
			}
		})
	}
}

func TestEveryServiceOperationIsServed(t *testing.T) {
	want := []string{"CreateSecret", "GetSecretValue", "BatchGetSecretValue", "PutSecretValue",
		"UpdateSecret", "DescribeSecret", "ListSecrets", "ListSecretVersionIds",
		"UpdateSecretVersionStage", "DeleteSecret", "RestoreSecret", "TagResource", "UntagResource",
		"GetRandomPassword", "PutResourcePolicy", "GetResourcePolicy", "DeleteResourcePolicy",
		"ValidateResourcePolicy", "RotateSecret", "CancelRotateSecret"}
	wantRotor := []string{"GetRotationStatus"}
	for prefix, names := range map[string][]string{"secretsmanager.": want, "rotor.": wantRotor} {
		for _, name := range names {
			o, ok := operations[prefix+name]
			if !ok || o.name != name {
				t.Errorf("operation %s%s not served", prefix, name)
			}
		}
	}
	if len(operations) != len(want)+len(wantRotor) {
		t.Errorf("%d operations served, want %d", len(operations), len(want)+len(wantRotor))
	}
}

func TestMethodCheck(t *testing.T) {
	for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodDelete, http.MethodHead, http.MethodOptions} {
		t.Run(method, func(t *testing.T) {
			f := &fakeBackend{}
			h, _ := testHandler(t, f, nil)
			r := httptest.NewRequest(method, "/", nil)
			r.Header.Set(headerTarget, "secretsmanager.ListSecrets")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != http.StatusMethodNotAllowed {
				t.Fatalf("status = %d, want 405", w.Code)
			}
			if got := w.Header().Get("Allow"); got != "POST" {
				t.Errorf("Allow = %q, want POST", got)
			}
			if method != http.MethodHead {
				if code, _ := errorBody(t, w); code != "InvalidAction" {
					t.Errorf("__type = %q", code)
				}
			}
			if f.calls != 0 {
				t.Error("service called")
			}
		})
	}
}

func TestContentTypeTolerated(t *testing.T) {
	for _, ct := range []string{"", contentType, "application/json", "application/x-amz-json-1.0", "text/plain"} {
		t.Run(ct, func(t *testing.T) {
			h, _ := testHandler(t, &fakeBackend{}, nil)
			w := post(h, "secretsmanager.ListSecrets", `{}`, func(r *http.Request) {
				if ct == "" {
					r.Header.Del("Content-Type")
				} else {
					r.Header.Set("Content-Type", ct)
				}
			})
			if w.Code != 200 {
				t.Errorf("status = %d, body %s", w.Code, w.Body)
			}
		})
	}
}

// failingReader fails the test if the handler reads a body it should have
// refused by its Content-Length.
type failingReader struct{ t *testing.T }

func (r failingReader) Read([]byte) (int, error) {
	r.t.Error("body read although Content-Length exceeds the limit")
	return 0, io.EOF
}

func TestBodyLimit(t *testing.T) {
	const limit = 64
	fits := `{"SecretId":"` + strings.Repeat("a", limit-15) + `"}` // exactly limit bytes
	if len(fits) != limit {
		t.Fatalf("fixture is %d bytes", len(fits))
	}
	over := `{"SecretId":"` + strings.Repeat("a", limit-14) + `"}`
	tests := []struct {
		name       string
		body       io.Reader
		length     int64 // -1: unknown (chunked)
		wantStatus int
	}{
		{"at limit", strings.NewReader(fits), limit, 200},
		{"at limit chunked", strings.NewReader(fits), -1, 200},
		{"content-length over limit", failingReader{t}, limit + 1, 413},
		{"content-length huge", failingReader{t}, 1 << 40, 413},
		{"chunked over limit", strings.NewReader(over), -1, 413},
		{"chunked far over limit", io.LimitReader(neverEnding('a'), 10<<20), -1, 413},
		{"empty", strings.NewReader(""), 0, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			authCalls := 0
			a := authFunc(func(context.Context, *http.Request, []byte) (auth.Principal, error) {
				authCalls++
				return testPrincipal, nil
			})
			h, _ := testHandler(t, &fakeBackend{}, a)
			h.maxBody = limit
			r := httptest.NewRequest(http.MethodPost, "/", tt.body)
			r.ContentLength = tt.length
			r.Header.Set(headerTarget, "secretsmanager.RestoreSecret")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", w.Code, tt.wantStatus, w.Body)
			}
			if tt.wantStatus != 413 {
				return
			}
			code, msg := errorBody(t, w)
			if code != "ValidationException" {
				t.Errorf("__type = %q", code)
			}
			if !strings.Contains(msg, "64 bytes") {
				t.Errorf("message %q does not state the limit", msg)
			}
			if authCalls != 0 {
				t.Error("oversized request was authenticated")
			}
		})
	}
}

type neverEnding byte

func (b neverEnding) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(b)
	}
	return len(p), nil
}

func TestUnreadableBody(t *testing.T) {
	h, _ := testHandler(t, &fakeBackend{}, nil)
	r := httptest.NewRequest(http.MethodPost, "/", io.MultiReader(strings.NewReader("{"), errReader{}))
	r.Header.Set(headerTarget, "secretsmanager.ListSecrets")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 400 {
		t.Fatalf("status = %d", w.Code)
	}
	if code, _ := errorBody(t, w); code != "SerializationException" {
		t.Errorf("__type = %q", code)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func TestSerializationErrors(t *testing.T) {
	const secret = "hunter2-TOPSECRET"
	tests := []struct {
		name      string
		target    string
		body      string
		wantInMsg string
	}{
		{"not json", "GetSecretValue", `SecretId=abc`, "not valid JSON"},
		{"truncated", "GetSecretValue", `{"SecretId":"abc"`, "not valid JSON"},
		{"trailing garbage", "GetSecretValue", `{"SecretId":"abc"} x`, "not valid JSON"},
		{"bad escape in secret", "CreateSecret", `{"Name":"n","SecretString":"` + secret + `\q"}`, "not valid JSON"},
		{"control char in secret", "CreateSecret", "{\"Name\":\"n\",\"SecretString\":\"" + secret + "\x01\"}", "not valid JSON"},
		{"array body", "ListSecrets", `[]`, "must be a JSON object"},
		{"string body", "ListSecrets", `"` + secret + `"`, "must be a JSON object"},
		{"number for string", "GetSecretValue", `{"SecretId":5}`, "member SecretId must be a string, not a number"},
		{"object for secret string", "CreateSecret", `{"Name":"n","SecretString":{"pw":"` + secret + `"}}`, "member SecretString must be a string, not an object"},
		{"number for secret string", "PutSecretValue", `{"SecretId":"n","SecretString":12345678}`, "member SecretString"},
		{"string for integer", "ListSecrets", `{"MaxResults":"10"}`, "member MaxResults must be an integer, not a string"},
		{"fraction for integer", "ListSecrets", `{"MaxResults":1.5}`, "member MaxResults must be an integer, not a number"},
		{"overflowing integer", "DeleteSecret", `{"SecretId":"n","RecoveryWindowInDays":1e400}`, "member RecoveryWindowInDays"},
		{"string for bool", "DeleteSecret", `{"SecretId":"n","ForceDeleteWithoutRecovery":"true"}`, "must be a boolean"},
		{"object for list", "PutSecretValue", `{"SecretId":"n","VersionStages":{"a":1}}`, "member VersionStages must be an array, not an object"},
		{"nested member", "TagResource", `{"SecretId":"n","Tags":[{"Key":1}]}`, "member Tags.Key must be a string"},
		{"bad base64", "CreateSecret", `{"Name":"n","SecretBinary":"` + secret + `!!"}`, "member SecretBinary must be base64-encoded"},
		{"number for binary", "UpdateSecret", `{"SecretId":"n","SecretBinary":42}`, "member SecretBinary must be a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeBackend{}
			h, logs := testHandler(t, f, nil)
			w := post(h, "secretsmanager."+tt.target, tt.body)
			if w.Code != 400 {
				t.Fatalf("status = %d, want 400; body %s", w.Code, w.Body)
			}
			code, msg := errorBody(t, w)
			if code != "SerializationException" {
				t.Errorf("__type = %q, want SerializationException", code)
			}
			if !strings.Contains(msg, tt.wantInMsg) {
				t.Errorf("message %q does not contain %q", msg, tt.wantInMsg)
			}
			logged, _ := logLines(t, logs.String())[0]["error"].(string)
			for _, leak := range []string{secret, "hunter", "12345678", "1e400", "1.5"} {
				if strings.Contains(w.Body.String(), leak) || strings.Contains(logged, leak) {
					t.Errorf("response or logged error echoes %q: %s / %s", leak, w.Body, logged)
				}
			}
			if strings.Contains(logs.String(), secret) {
				t.Errorf("log contains the secret: %s", logs)
			}
			if f.calls != 0 {
				t.Error("service called with an undecodable request")
			}
		})
	}
}

func TestDecodeInputs(t *testing.T) {
	i64 := func(n int64) *int64 { return &n }
	str := func(s string) *string { return &s }
	boolp := func(b bool) *bool { return &b }
	tests := []struct {
		name   string
		target string
		body   string
		want   any
	}{
		{"empty body is {}", "GetSecretValue", ``, secrets.GetSecretValueInput{}},
		{"whitespace body is {}", "GetSecretValue", " \n", secrets.GetSecretValueInput{}},
		{"null body is {}", "ListSecrets", `null`, secrets.ListSecretsInput{}},
		{"unknown members ignored", "GetSecretValue", `{"SecretId":"a","Frob":[1,{}]}`, secrets.GetSecretValueInput{SecretID: "a"}},
		{"get by stage", "GetSecretValue", `{"SecretId":"a","VersionId":"v","VersionStage":"AWSPREVIOUS"}`,
			secrets.GetSecretValueInput{SecretID: "a", VersionID: "v", VersionStage: "AWSPREVIOUS"}},
		{"create with string", "CreateSecret",
			`{"Name":"n","ClientRequestToken":"t","Description":"d","KmsKeyId":"k","SecretString":"s","Tags":[{"Key":"a","Value":"b"}],"AddReplicaRegions":[{"Region":"eu-west-1"}]}`,
			secrets.CreateSecretInput{Name: "n", ClientRequestToken: "t", Description: str("d"), KmsKeyID: "k",
				Value: secrets.StringValue("s"), Tags: []secrets.Tag{{Key: "a", Value: "b"}}, AddReplicaRegions: 1}},
		{"create without value", "CreateSecret", `{"Name":"n"}`, secrets.CreateSecretInput{Name: "n"}},
		{"create with null value", "CreateSecret", `{"Name":"n","SecretString":null}`, secrets.CreateSecretInput{Name: "n"}},
		{"create with empty description", "CreateSecret", `{"Name":"n","Description":""}`, secrets.CreateSecretInput{Name: "n", Description: str("")}},
		{"empty secret string is a value", "PutSecretValue", `{"SecretId":"n","SecretString":""}`,
			secrets.PutSecretValueInput{SecretID: "n", Value: secrets.StringValue("")}},
		{"empty secret binary is a value", "PutSecretValue", `{"SecretId":"n","SecretBinary":""}`,
			secrets.PutSecretValueInput{SecretID: "n", Value: secrets.BinaryValue([]byte{})}},
		{"binary padded", "PutSecretValue", `{"SecretId":"n","SecretBinary":"YmxvYg=="}`,
			secrets.PutSecretValueInput{SecretID: "n", Value: secrets.BinaryValue([]byte("blob"))}},
		{"binary unpadded", "PutSecretValue", `{"SecretId":"n","SecretBinary":"YmxvYg"}`,
			secrets.PutSecretValueInput{SecretID: "n", Value: secrets.BinaryValue([]byte("blob"))}},
		{"stages absent", "PutSecretValue", `{"SecretId":"n","SecretString":"x"}`,
			secrets.PutSecretValueInput{SecretID: "n", Value: secrets.StringValue("x")}},
		{"stages empty", "PutSecretValue", `{"SecretId":"n","SecretString":"x","VersionStages":[]}`,
			secrets.PutSecretValueInput{SecretID: "n", Value: secrets.StringValue("x"), VersionStages: []string{}}},
		{"put full", "PutSecretValue", `{"SecretId":"n","ClientRequestToken":"t","SecretString":"x","VersionStages":["AWSPENDING"],"RotationToken":"r"}`,
			secrets.PutSecretValueInput{SecretID: "n", ClientRequestToken: "t", Value: secrets.StringValue("x"), VersionStages: []string{"AWSPENDING"}, RotationToken: "r"}},
		{"update kms to default", "UpdateSecret", `{"SecretId":"n","KmsKeyId":""}`,
			secrets.UpdateSecretInput{SecretID: "n", KmsKeyID: str("")}},
		{"update description", "UpdateSecret", `{"SecretId":"n","Description":"d","ClientRequestToken":"t","SecretBinary":"AA=="}`,
			secrets.UpdateSecretInput{SecretID: "n", Description: str("d"), ClientRequestToken: "t", Value: secrets.BinaryValue([]byte{0})}},
		{"batch", "BatchGetSecretValue", `{"SecretIdList":["a","b"],"Filters":[{"Key":"name","Values":["x","!y"]}],"MaxResults":5,"NextToken":"tok"}`,
			secrets.BatchGetSecretValueInput{SecretIDList: []string{"a", "b"}, Filters: []secrets.Filter{{Key: "name", Values: []string{"x", "!y"}}}, MaxResults: i64(5), NextToken: "tok"}},
		{"describe", "DescribeSecret", `{"SecretId":"a"}`, "a"},
		{"list", "ListSecrets", `{"IncludePlannedDeletion":true,"MaxResults":100,"NextToken":"t","Filters":[{"Key":"all","Values":["db"]}],"SortOrder":"asc","SortBy":"name"}`,
			secrets.ListSecretsInput{IncludePlannedDeletion: true, MaxResults: i64(100), NextToken: "t", Filters: []secrets.Filter{{Key: "all", Values: []string{"db"}}}, SortOrder: "asc", SortBy: "name"}},
		{"list versions", "ListSecretVersionIds", `{"SecretId":"a","MaxResults":0,"NextToken":"t","IncludeDeprecated":true}`,
			secrets.ListSecretVersionIdsInput{SecretID: "a", MaxResults: i64(0), NextToken: "t", IncludeDeprecated: true}},
		{"stage", "UpdateSecretVersionStage", `{"SecretId":"a","VersionStage":"AWSCURRENT","RemoveFromVersionId":"r","MoveToVersionId":"m"}`,
			secrets.UpdateSecretVersionStageInput{SecretID: "a", VersionStage: "AWSCURRENT", RemoveFromVersionID: "r", MoveToVersionID: "m"}},
		{"delete", "DeleteSecret", `{"SecretId":"a","RecoveryWindowInDays":7,"ForceDeleteWithoutRecovery":true}`,
			secrets.DeleteSecretInput{SecretID: "a", RecoveryWindowInDays: i64(7), ForceDeleteWithoutRecovery: true}},
		{"restore", "RestoreSecret", `{"SecretId":"a"}`, "a"},
		{"tag", "TagResource", `{"SecretId":"a","Tags":[{"Key":"k","Value":""}]}`, tagArgs{"a", []secrets.Tag{{Key: "k"}}}},
		{"untag", "UntagResource", `{"SecretId":"a","TagKeys":["k"]}`, untagArgs{"a", []string{"k"}}},
		{"password defaults", "GetRandomPassword", `{}`, secrets.PasswordInput{}},
		{"password", "GetRandomPassword", `{"PasswordLength":20,"ExcludeCharacters":"\"'","ExcludeNumbers":true,"ExcludePunctuation":true,"ExcludeUppercase":true,"ExcludeLowercase":true,"IncludeSpace":true,"RequireEachIncludedType":false}`,
			secrets.PasswordInput{PasswordLength: i64(20), ExcludeCharacters: `"'`, ExcludeNumbers: true, ExcludePunctuation: true, ExcludeUppercase: true, ExcludeLowercase: true, IncludeSpace: true, RequireEachIncludedType: boolp(false)}},
		{"put policy", "PutResourcePolicy", `{"SecretId":"a","ResourcePolicy":"{}","BlockPublicPolicy":true}`, policyArgs{"a", "{}", true}},
		{"get policy", "GetResourcePolicy", `{"SecretId":"a"}`, "a"},
		{"delete policy", "DeleteResourcePolicy", `{"SecretId":"a"}`, "a"},
		{"validate policy", "ValidateResourcePolicy", `{"ResourcePolicy":"{}"}`, policyArgs{Policy: "{}"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeBackend{}
			h, _ := testHandler(t, f, nil)
			w := post(h, "secretsmanager."+tt.target, tt.body)
			if w.Code != 200 {
				t.Fatalf("status = %d; body %s", w.Code, w.Body)
			}
			if !reflect.DeepEqual(f.in, tt.want) { // reflect sees inside secrets.Value
				t.Errorf("service input\n got %#v\nwant %#v", f.in, tt.want)
			}
		})
	}
}

func TestBothValuesIsInvalidParameter(t *testing.T) {
	f := &fakeBackend{}
	h, _ := testHandler(t, f, nil)
	w := post(h, "secretsmanager.CreateSecret", `{"Name":"n","SecretString":"a","SecretBinary":"YQ=="}`)
	if w.Code != 400 {
		t.Fatalf("status = %d", w.Code)
	}
	if code, _ := errorBody(t, w); code != "InvalidParameterException" {
		t.Errorf("__type = %q", code)
	}
	if f.calls != 0 {
		t.Error("service called")
	}
}

func TestAuthFailures(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantCode   string
		wantMsg    string
	}{
		{"missing token", &auth.Error{Code: auth.CodeMissingToken, Msg: "Missing Authentication Token"}, 400, "MissingAuthenticationTokenException", "Missing Authentication Token"},
		{"unknown key", &auth.Error{Code: auth.CodeUnrecognizedClient, Msg: "The security token included in the request is invalid."}, 400, "UnrecognizedClientException", "security token"},
		{"bad signature", &auth.Error{Code: auth.CodeInvalidSignature, Msg: "Signature expired"}, 400, "InvalidSignatureException", "Signature expired"},
		{"malformed header", &auth.Error{Code: auth.CodeIncompleteSignature, Msg: "Authorization header requires 'Credential' parameter."}, 400, "IncompleteSignatureException", "Credential"},
		{"empty message gets a default", &auth.Error{Code: auth.CodeMissingToken}, 400, "MissingAuthenticationTokenException", "Missing Authentication Token"},
		{"unknown code is internal", &auth.Error{Code: 99, Msg: "detail"}, 500, "InternalServiceError", "Request id: 00000000-0000-4000-8000-000000000001"},
		{"verifier failure is internal", errors.New("key store unavailable"), 500, "InternalServiceError", "Request id:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeBackend{}
			a := authFunc(func(context.Context, *http.Request, []byte) (auth.Principal, error) { return auth.Principal{}, tt.err })
			h, logs := testHandler(t, f, a)
			w := post(h, "secretsmanager.GetSecretValue", `{"SecretId":"a"}`)
			if w.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d", w.Code, tt.wantStatus)
			}
			code, msg := errorBody(t, w)
			if code != tt.wantCode || !strings.Contains(msg, tt.wantMsg) {
				t.Errorf("got %s %q, want %s containing %q", code, msg, tt.wantCode, tt.wantMsg)
			}
			if strings.Contains(msg, "key store") {
				t.Errorf("internal detail leaked: %q", msg)
			}
			if f.calls != 0 {
				t.Error("service called for an unauthenticated request")
			}
			if tt.wantStatus == 500 && !strings.Contains(logs.String(), `"level":"ERROR"`) {
				t.Errorf("internal auth failure not logged as error: %s", logs)
			}
		})
	}
}

func TestAuthenticatorSeesBodyAndServiceSeesPrincipal(t *testing.T) {
	const body = `{"SecretId":"a"}`
	var seen []byte
	a := authFunc(func(_ context.Context, r *http.Request, b []byte) (auth.Principal, error) {
		seen = append([]byte(nil), b...)
		if r.Header.Get(headerTarget) != "secretsmanager.DescribeSecret" {
			t.Errorf("authenticator got request without target")
		}
		return testPrincipal, nil
	})
	f := &fakeBackend{}
	h, _ := testHandler(t, f, a)
	if w := post(h, "secretsmanager.DescribeSecret", body); w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
	if string(seen) != body {
		t.Errorf("authenticator saw body %q, want %q", seen, body)
	}
	p, ok := PrincipalFrom(f.ctx)
	if !ok || p != testPrincipal {
		t.Errorf("PrincipalFrom = %v, %v; want %v", p, ok, testPrincipal)
	}
	id, ok := RequestIDFrom(f.ctx)
	if !ok || id != "00000000-0000-4000-8000-000000000001" {
		t.Errorf("RequestIDFrom = %q, %v", id, ok)
	}
	if _, ok := PrincipalFrom(context.Background()); ok {
		t.Error("PrincipalFrom found a principal in an empty context")
	}
}

func TestNewRequiresServiceAndAuth(t *testing.T) {
	svc := secrets.New(secrets.Config{})
	for name, cfg := range map[string]Config{
		"no service": {Auth: allowAll()},
		"no auth":    {Service: svc},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("New did not panic")
				}
			}()
			New(cfg)
		})
	}
	h := New(Config{Service: svc, Auth: allowAll()})
	if h.maxBody != DefaultMaxBodyBytes {
		t.Errorf("default limit = %d", h.maxBody)
	}
}

// TestRealServiceWiring drives the real *secrets.Service (no store) to check
// that New wires it; the service's stubs answer with internal errors.
func TestRealServiceWiring(t *testing.T) {
	h := New(Config{Service: secrets.New(secrets.Config{}), Auth: allowAll()})
	w := post(h, "secretsmanager.GetRandomPassword", `{}`)
	if w.Code != 200 && w.Code != 500 {
		t.Fatalf("status = %d; body %s", w.Code, w.Body)
	}
	if w.Code == 500 {
		if code, msg := errorBody(t, w); code != codeInternal || !strings.Contains(msg, w.Header().Get(headerRequestID)) {
			t.Errorf("got %s %q", code, msg)
		}
	}
}

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestRequestIDOnEveryResponse(t *testing.T) {
	denied := authFunc(func(context.Context, *http.Request, []byte) (auth.Principal, error) {
		return auth.Principal{}, &auth.Error{Code: auth.CodeInvalidSignature, Msg: "no"}
	})
	tests := []struct {
		name   string
		method string
		target string
		body   string
		auth   Authenticator
		f      *fakeBackend
		status int
	}{
		{"success", "POST", "secretsmanager.ListSecrets", `{}`, nil, &fakeBackend{}, 200},
		{"method", "GET", "", ``, nil, &fakeBackend{}, 405},
		{"unknown target", "POST", "x", `{}`, nil, &fakeBackend{}, 400},
		{"too large", "POST", "secretsmanager.ListSecrets", strings.Repeat(" ", DefaultMaxBodyBytes+1), nil, &fakeBackend{}, 413},
		{"auth", "POST", "secretsmanager.ListSecrets", `{}`, denied, &fakeBackend{}, 400},
		{"serialization", "POST", "secretsmanager.ListSecrets", `{`, nil, &fakeBackend{}, 400},
		{"domain error", "POST", "secretsmanager.ListSecrets", `{}`, nil, &fakeBackend{err: &secrets.Error{Kind: secrets.KindNotFound, Msg: "x"}}, 400},
		{"internal error", "POST", "secretsmanager.ListSecrets", `{}`, nil, &fakeBackend{err: errors.New("boom")}, 500},
		{"panic", "POST", "secretsmanager.ListSecrets", `{}`, nil, &fakeBackend{panicWith: "boom"}, 500},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := tt.auth
			if a == nil {
				a = allowAll()
			}
			h := newHandler(tt.f, a, nil, 0) // the real id generator
			r := httptest.NewRequest(tt.method, "/", strings.NewReader(tt.body))
			if tt.target != "" {
				r.Header.Set(headerTarget, tt.target)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.status {
				t.Fatalf("status = %d, want %d", w.Code, tt.status)
			}
			id := w.Header().Get("x-amzn-RequestId")
			if !uuidV4.MatchString(id) {
				t.Fatalf("x-amzn-RequestId = %q, not a UUID v4", id)
			}
			if seen[id] {
				t.Errorf("request id %s repeated", id)
			}
			seen[id] = true
		})
	}
}

func TestPanicBecomesInternalError(t *testing.T) {
	const secret = "s3cr3t-value-in-body"
	f := &fakeBackend{panicWith: "something broke"}
	h, logs := testHandler(t, f, nil)
	w := post(h, "secretsmanager.PutSecretValue", `{"SecretId":"a","SecretString":"`+secret+`"}`)
	if w.Code != 500 {
		t.Fatalf("status = %d", w.Code)
	}
	code, msg := errorBody(t, w)
	if code != codeInternal {
		t.Errorf("__type = %q", code)
	}
	if strings.Contains(msg, "something broke") {
		t.Errorf("panic value leaked to client: %q", msg)
	}
	if !strings.Contains(msg, "00000000-0000-4000-8000-000000000001") {
		t.Errorf("message %q lacks the request id", msg)
	}
	lines := logLines(t, logs.String())
	if len(lines) != 2 {
		t.Fatalf("got %d log lines, want 2 (panic, request): %s", len(lines), logs)
	}
	p := lines[0]
	if p["msg"] != "handler panic" || p["level"] != "ERROR" || p["panic"] != "something broke" {
		t.Errorf("panic log line = %v", p)
	}
	if st, _ := p["stack"].(string); !strings.Contains(st, "awsapi") {
		t.Errorf("panic log has no stack: %v", p["stack"])
	}
	if req := lines[1]; req["status"] != float64(500) || req["level"] != "ERROR" || req["error_code"] != codeInternal {
		t.Errorf("request log line = %v", req)
	}
	if strings.Contains(logs.String(), secret) {
		t.Error("request body logged")
	}

	// http.ErrAbortHandler keeps its meaning.
	f.panicWith = http.ErrAbortHandler
	defer func() {
		if v := recover(); v != http.ErrAbortHandler {
			t.Errorf("recovered %v, want http.ErrAbortHandler", v)
		}
	}()
	post(h, "secretsmanager.ListSecrets", `{}`)
}

func logLines(t *testing.T, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(s) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func TestRequestLog(t *testing.T) {
	const secret = "pa55w0rd-in-flight"
	const authz = "AWS4-HMAC-SHA256 Credential=AKIAROTORTEST0000001/20260101/us-east-1/secretsmanager/aws4_request, SignedHeaders=host, Signature=deadbeef"
	tests := []struct {
		name      string
		target    string
		body      string
		f         *fakeBackend
		wantLevel string
		want      map[string]any
	}{
		{"success", "secretsmanager.GetSecretValue", `{"SecretId":"a"}`,
			&fakeBackend{out: secrets.SecretValue{Name: "a", Value: secrets.StringValue(secret)}}, "INFO",
			map[string]any{"operation": "GetSecretValue", "status": float64(200), "error_code": "",
				"principal": testPrincipal.ARN, "access_key_id": testPrincipal.AccessKeyID, "remote_addr": "192.0.2.1:1234"}},
		{"client error", "secretsmanager.PutSecretValue", `{"SecretId":"a","SecretString":"` + secret + `"}`,
			&fakeBackend{err: &secrets.Error{Kind: secrets.KindExists, Msg: "taken"}}, "INFO",
			map[string]any{"operation": "PutSecretValue", "status": float64(400), "error_code": "ResourceExistsException", "error": "taken"}},
		{"internal error", "secretsmanager.PutSecretValue", `{"SecretId":"a","SecretString":"` + secret + `"}`,
			&fakeBackend{err: &secrets.Error{Kind: secrets.KindInternal, Msg: "store write", Err: errors.New("disk full")}}, "ERROR",
			map[string]any{"status": float64(500), "error_code": codeInternal, "error": "store write: disk full"}},
		{"unknown target", "secretsmanager.Nope", `{}`, &fakeBackend{}, "INFO",
			map[string]any{"operation": "", "status": float64(400), "error_code": "UnknownOperationException", "target": "secretsmanager.Nope", "principal": ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, logs := testHandler(t, tt.f, nil)
			post(h, tt.target, tt.body, func(r *http.Request) { r.Header.Set("Authorization", authz) })
			lines := logLines(t, logs.String())
			if len(lines) != 1 {
				t.Fatalf("got %d log lines, want 1: %s", len(lines), logs)
			}
			l := lines[0]
			if l["msg"] != "request" || l["level"] != tt.wantLevel {
				t.Errorf("msg/level = %v/%v", l["msg"], l["level"])
			}
			for _, k := range []string{"request_id", "principal", "access_key_id", "operation", "status", "error_code", "duration_ms", "remote_addr"} {
				if _, ok := l[k]; !ok {
					t.Errorf("attribute %s missing", k)
				}
			}
			for k, v := range tt.want {
				if l[k] != v {
					t.Errorf("%s = %v, want %v", k, l[k], v)
				}
			}
			for _, leak := range []string{secret, "deadbeef", "Signature="} {
				if strings.Contains(logs.String(), leak) {
					t.Errorf("log contains %q: %s", leak, logs)
				}
			}
		})
	}
}
