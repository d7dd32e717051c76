package awsapi

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rotor-secrets/rotor/internal/audit"
	"github.com/rotor-secrets/rotor/internal/auth"
	"github.com/rotor-secrets/rotor/internal/secrets"
)

// memAudit keeps records, or fails every append when fail is set.
type memAudit struct {
	mu   sync.Mutex
	recs []audit.Record
	fail error
}

func (m *memAudit) Append(_ context.Context, r audit.Record) (audit.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return audit.Record{}, m.fail
	}
	m.recs = append(m.recs, r)
	return r, nil
}

func (m *memAudit) records() []audit.Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]audit.Record(nil), m.recs...)
}

// countObserver counts what the handler reports.
type countObserver struct {
	mu                            sync.Mutex
	requests                      map[string]int
	auditFailures, throttledCalls int
}

func (o *countObserver) ObserveRequest(op, code string, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.requests == nil {
		o.requests = map[string]int{}
	}
	o.requests[op+"/"+code]++
}
func (o *countObserver) AuditWriteFailure() { o.mu.Lock(); o.auditFailures++; o.mu.Unlock() }
func (o *countObserver) RateLimited()       { o.mu.Lock(); o.throttledCalls++; o.mu.Unlock() }

var userPrincipal = auth.Principal{ARN: "arn:aws:iam::000000000000:user/app", AccessKeyID: "AKRTAPPKEY0000000001"}

func principalAuth(p auth.Principal) authFunc {
	return func(context.Context, *http.Request, []byte) (auth.Principal, error) { return p, nil }
}

func TestAuditRecordsEveryOutcome(t *testing.T) {
	const value = "s3cr3t-value-never-audited"
	tests := []struct {
		name        string
		auth        Authenticator
		target      string
		body        string
		backendErr  error
		wantOutcome string
		wantCode    string
		wantPrinc   string
		wantKey     string
	}{
		{"success", principalAuth(userPrincipal), "secretsmanager.GetSecretValue", `{"SecretId":"a"}`, nil,
			audit.OutcomeSuccess, "", userPrincipal.ARN, userPrincipal.AccessKeyID},
		{"denied", principalAuth(userPrincipal), "secretsmanager.GetSecretValue", `{"SecretId":"a"}`,
			secrets.AccessDenied("User: x is not authorized"), audit.OutcomeDenied, "AccessDeniedException", userPrincipal.ARN, userPrincipal.AccessKeyID},
		{"auth failed", authFunc(func(context.Context, *http.Request, []byte) (auth.Principal, error) {
			return auth.Principal{}, &auth.Error{Code: auth.CodeInvalidSignature, Msg: "bad"}
		}), "secretsmanager.GetSecretValue", `{"SecretId":"a"}`, nil, audit.OutcomeAuthFailed, "InvalidSignatureException", "", "AKRTCLAIMED000000001"},
		{"invalid body", principalAuth(userPrincipal), "secretsmanager.GetSecretValue", `{"SecretId":`, nil,
			audit.OutcomeInvalid, "SerializationException", userPrincipal.ARN, userPrincipal.AccessKeyID},
		{"not found", principalAuth(userPrincipal), "secretsmanager.DescribeSecret", `{"SecretId":"a"}`,
			&secrets.Error{Kind: secrets.KindNotFound, Msg: "nope"}, audit.OutcomeError, "ResourceNotFoundException", userPrincipal.ARN, userPrincipal.AccessKeyID},
		{"unknown operation", principalAuth(userPrincipal), "secretsmanager.Nope", `{}`, nil,
			audit.OutcomeInvalid, "UnknownOperationException", "", "AKRTCLAIMED000000001"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeBackend{err: tt.backendErr, out: secrets.SecretValue{ARN: "arn:x", Name: "a", VersionID: "v1", Value: secrets.StringValue(value)}}
			h, _ := testHandler(t, f, tt.auth)
			mem := &memAudit{}
			h.audit = mem
			w := post(h, tt.target, tt.body, func(r *http.Request) {
				r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKRTCLAIMED000000001/20260101/us-east-1/secretsmanager/aws4_request, SignedHeaders=host, Signature=00")
				r.Header.Set("User-Agent", "test-agent/1")
			})
			recs := mem.records()
			if len(recs) != 1 {
				t.Fatalf("%d records, want 1", len(recs))
			}
			r := recs[0]
			if r.Outcome != tt.wantOutcome || r.ErrorCode != tt.wantCode || r.PrincipalARN != tt.wantPrinc || r.AccessKeyID != tt.wantKey {
				t.Errorf("record = %+v; want outcome %s code %q principal %q key %q", r, tt.wantOutcome, tt.wantCode, tt.wantPrinc, tt.wantKey)
			}
			if r.RequestID != w.Header().Get(headerRequestID) || r.UserAgent != "test-agent/1" || r.SourceIP != "192.0.2.1" || r.EventName == "" {
				t.Errorf("record = %+v; want request id %s, agent, source 192.0.2.1, an event name", r, w.Header().Get(headerRequestID))
			}
			if strings.Contains(strings.Join([]string{r.Message, r.EventName, r.UserAgent}, " "), value) {
				t.Errorf("record carries the value: %+v", r)
			}
		})
	}
}

func TestAuditFailClosed(t *testing.T) {
	const value = "s3cr3t-value-must-not-leave"
	f := &fakeBackend{out: secrets.SecretValue{ARN: "arn:x", Name: "a", VersionID: "v1", Value: secrets.StringValue(value)}}
	h, logs := testHandler(t, f, principalAuth(userPrincipal))
	obs := &countObserver{}
	h.audit, h.metrics = &memAudit{fail: errors.New("disk full")}, obs
	w := post(h, "secretsmanager.GetSecretValue", `{"SecretId":"a"}`)
	if w.Code != http.StatusInternalServerError {
		t.Fatalf("status = %d, want 500", w.Code)
	}
	if code, _ := errorBody(t, w); code != codeInternal {
		t.Errorf("code = %s, want %s", code, codeInternal)
	}
	if strings.Contains(w.Body.String(), value) || strings.Contains(logs.String(), value) {
		t.Error("the value left the server although its access could not be audited")
	}
	if obs.auditFailures != 1 {
		t.Errorf("audit failures observed = %d, want 1", obs.auditFailures)
	}
	if !strings.Contains(logs.String(), "audit write failed") {
		t.Errorf("no log line for the audit failure: %s", logs)
	}
}

func TestThrottling(t *testing.T) {
	f := &fakeBackend{}
	h, _ := testHandler(t, f, principalAuth(userPrincipal))
	obs := &countObserver{}
	h.metrics = obs
	var keys []string
	h.limiter = limiterFunc(func(key string) (bool, time.Duration) {
		keys = append(keys, key)
		return len(keys) < 2, time.Second
	})
	if w := post(h, "secretsmanager.DescribeSecret", `{"SecretId":"a"}`); w.Code != http.StatusOK {
		t.Fatalf("first request: status %d", w.Code)
	}
	w := post(h, "secretsmanager.DescribeSecret", `{"SecretId":"a"}`)
	if code, msg := errorBody(t, w); w.Code != http.StatusBadRequest || code != "ThrottlingException" || msg != "Rate exceeded" {
		t.Errorf("second request: %d %s %q, want 400 ThrottlingException", w.Code, code, msg)
	}
	if f.calls != 1 || obs.throttledCalls != 1 || keys[1] != userPrincipal.AccessKeyID {
		t.Errorf("calls %d, throttled %d, keys %v", f.calls, obs.throttledCalls, keys)
	}
	if obs.requests["DescribeSecret/ThrottlingException"] != 1 || obs.requests["DescribeSecret/"] != 1 {
		t.Errorf("observed requests = %v", obs.requests)
	}
}

type limiterFunc func(string) (bool, time.Duration)

func (f limiterFunc) Allow(key string) (bool, time.Duration) { return f(key) }
