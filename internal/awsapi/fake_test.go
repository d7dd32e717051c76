package awsapi

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/rotor-secrets/rotor/internal/auth"
	"github.com/rotor-secrets/rotor/internal/secrets"
)

// fakeBackend records the input of the last call and answers with out/err.
// The real service needs a store; these tests are about the wire, so a fake
// stands in for it (end-to-end tests drive the real one).
type fakeBackend struct {
	mu        sync.Mutex
	calls     int
	ctx       context.Context
	in        any
	out       any
	err       error
	panicWith any
}

// Argument records for methods that take more than one input.
type (
	tagArgs struct {
		SecretID string
		Tags     []secrets.Tag
	}
	untagArgs struct {
		SecretID string
		Keys     []string
	}
	policyArgs struct {
		SecretID    string
		Policy      string
		BlockPublic bool
	}
)

func answer[O any](f *fakeBackend, ctx context.Context, in any) (O, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	f.ctx, f.in = ctx, in
	if f.panicWith != nil {
		panic(f.panicWith)
	}
	var zero O
	if f.err != nil {
		return zero, f.err
	}
	if f.out == nil {
		return zero, nil
	}
	return f.out.(O), nil
}

func (f *fakeBackend) CreateSecret(ctx context.Context, in secrets.CreateSecretInput) (secrets.CreateSecretOutput, error) {
	return answer[secrets.CreateSecretOutput](f, ctx, in)
}
func (f *fakeBackend) GetSecretValue(ctx context.Context, in secrets.GetSecretValueInput) (secrets.SecretValue, error) {
	return answer[secrets.SecretValue](f, ctx, in)
}
func (f *fakeBackend) BatchGetSecretValue(ctx context.Context, in secrets.BatchGetSecretValueInput) (secrets.BatchGetSecretValueOutput, error) {
	return answer[secrets.BatchGetSecretValueOutput](f, ctx, in)
}
func (f *fakeBackend) PutSecretValue(ctx context.Context, in secrets.PutSecretValueInput) (secrets.PutSecretValueOutput, error) {
	return answer[secrets.PutSecretValueOutput](f, ctx, in)
}
func (f *fakeBackend) UpdateSecret(ctx context.Context, in secrets.UpdateSecretInput) (secrets.UpdateSecretOutput, error) {
	return answer[secrets.UpdateSecretOutput](f, ctx, in)
}
func (f *fakeBackend) DescribeSecret(ctx context.Context, id string) (secrets.Description, error) {
	return answer[secrets.Description](f, ctx, id)
}
func (f *fakeBackend) ListSecrets(ctx context.Context, in secrets.ListSecretsInput) (secrets.ListSecretsOutput, error) {
	return answer[secrets.ListSecretsOutput](f, ctx, in)
}
func (f *fakeBackend) ListSecretVersionIds(ctx context.Context, in secrets.ListSecretVersionIdsInput) (secrets.ListSecretVersionIdsOutput, error) {
	return answer[secrets.ListSecretVersionIdsOutput](f, ctx, in)
}
func (f *fakeBackend) UpdateSecretVersionStage(ctx context.Context, in secrets.UpdateSecretVersionStageInput) (secrets.Ref, error) {
	return answer[secrets.Ref](f, ctx, in)
}
func (f *fakeBackend) DeleteSecret(ctx context.Context, in secrets.DeleteSecretInput) (secrets.DeleteSecretOutput, error) {
	return answer[secrets.DeleteSecretOutput](f, ctx, in)
}
func (f *fakeBackend) RestoreSecret(ctx context.Context, id string) (secrets.Ref, error) {
	return answer[secrets.Ref](f, ctx, id)
}
func (f *fakeBackend) TagResource(ctx context.Context, id string, tags []secrets.Tag) error {
	_, err := answer[struct{}](f, ctx, tagArgs{id, tags})
	return err
}
func (f *fakeBackend) UntagResource(ctx context.Context, id string, keys []string) error {
	_, err := answer[struct{}](f, ctx, untagArgs{id, keys})
	return err
}
func (f *fakeBackend) GetRandomPassword(ctx context.Context, in secrets.PasswordInput) (string, error) {
	return answer[string](f, ctx, in)
}
func (f *fakeBackend) PutResourcePolicy(ctx context.Context, id, policy string, block bool) (secrets.Ref, error) {
	return answer[secrets.Ref](f, ctx, policyArgs{id, policy, block})
}
func (f *fakeBackend) GetResourcePolicy(ctx context.Context, id string) (secrets.ResourcePolicy, error) {
	return answer[secrets.ResourcePolicy](f, ctx, id)
}
func (f *fakeBackend) DeleteResourcePolicy(ctx context.Context, id string) (secrets.Ref, error) {
	return answer[secrets.Ref](f, ctx, id)
}
func (f *fakeBackend) ValidateResourcePolicy(ctx context.Context, id, policy string) (secrets.PolicyValidation, error) {
	return answer[secrets.PolicyValidation](f, ctx, policyArgs{SecretID: id, Policy: policy})
}

// rotateResult is the canned answer of RotateSecret and CancelRotateSecret.
type rotateResult struct {
	Ref     secrets.Ref
	Version string
}

func (f *fakeBackend) RotateSecret(ctx context.Context, in secrets.RotateSecretInput) (secrets.Ref, string, error) {
	r, err := answer[rotateResult](f, ctx, in)
	return r.Ref, r.Version, err
}

func (f *fakeBackend) CancelRotateSecret(ctx context.Context, id string) (secrets.Ref, string, error) {
	r, err := answer[rotateResult](f, ctx, id)
	return r.Ref, r.Version, err
}

func (f *fakeBackend) RotationStatus(ctx context.Context, id string) (secrets.RotationStatus, error) {
	return answer[secrets.RotationStatus](f, ctx, id)
}

// authFunc is a function-field Authenticator.
type authFunc func(ctx context.Context, r *http.Request, body []byte) (auth.Principal, error)

func (f authFunc) Verify(ctx context.Context, r *http.Request, body []byte) (auth.Principal, error) {
	return f(ctx, r, body)
}

var testPrincipal = auth.Principal{
	ARN:         "arn:aws:iam::000000000000:user/alice",
	AccessKeyID: "AKIAROTORTEST0000001",
}

func allowAll() authFunc {
	return func(context.Context, *http.Request, []byte) (auth.Principal, error) { return testPrincipal, nil }
}

// testHandler returns a handler over f with deterministic request ids and a
// JSON log captured in the returned buffer.
func testHandler(t testing.TB, f *fakeBackend, a Authenticator) (*Handler, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	if a == nil {
		a = allowAll()
	}
	h := newHandler(f, a, slog.New(slog.NewJSONHandler(logs, nil)), 0)
	var mu sync.Mutex
	n := 0
	h.newID = func() string {
		mu.Lock()
		defer mu.Unlock()
		n++
		return fmt.Sprintf("00000000-0000-4000-8000-%012d", n)
	}
	return h, logs
}

// post sends one API request through h.
func post(h http.Handler, target, body string, mods ...func(*http.Request)) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	r.Header.Set("Content-Type", contentType)
	if target != "" {
		r.Header.Set(headerTarget, target)
	}
	for _, m := range mods {
		m(r)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
