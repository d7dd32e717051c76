package awsapi

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rotor-secrets/rotor/internal/audit"
)

// searchFunc is a function-field AuditSearcher.
type searchFunc func(ctx context.Context, f audit.Filter, limit int, after uint64) ([]audit.Record, uint64, error)

func (s searchFunc) Search(ctx context.Context, f audit.Filter, limit int, after uint64) ([]audit.Record, uint64, error) {
	return s(ctx, f, limit, after)
}

// searchCall is what the handler asked the searcher.
type searchCall struct {
	filter audit.Filter
	limit  int
	after  uint64
}

func auditHandler(t *testing.T, recs []audit.Record, next uint64, err error) (*Handler, *[]searchCall) {
	t.Helper()
	var calls []searchCall
	h, _ := testHandler(t, &fakeBackend{}, nil)
	h.auditLog = searchFunc(func(_ context.Context, f audit.Filter, limit int, after uint64) ([]audit.Record, uint64, error) {
		calls = append(calls, searchCall{f, limit, after})
		return recs, next, err
	})
	return h, &calls
}

var testRecord = audit.Record{
	Seq: 41, Time: time.Date(2024, 5, 1, 12, 0, 0, 500e6, time.UTC), Type: audit.TypeRequest,
	EventName: "GetSecretValue", RequestID: "00000000-0000-4000-8000-000000000001",
	PrincipalARN: testPrincipal.ARN, AccessKeyID: testPrincipal.AccessKeyID, SourceIP: "192.0.2.1",
	UserAgent: "aws-cli/2", SecretARN: "arn:aws:secretsmanager:us-east-1:000000000000:secret:db-AbCdEf",
	VersionID: "v1", VersionStage: "AWSCURRENT", Outcome: audit.OutcomeDenied, ErrorCode: "AccessDeniedException",
	Message: "User: … is not authorized", PrevHash: "p", Hash: "h",
}

func TestLookupEvents(t *testing.T) {
	h, calls := auditHandler(t, []audit.Record{testRecord}, 41, nil)
	w := post(h, "rotor.LookupEvents", `{"PrincipalArn":"`+testPrincipal.ARN+`","SecretId":"db","EventName":"GetSecretValue",`+
		`"Outcome":"denied","StartTime":1714564800.5,"EndTime":1714651200,"MaxResults":1}`)
	const want = `{"Events":[{"Seq":41,"Time":1714564800.5,"Type":"request","EventName":"GetSecretValue",` +
		`"RequestId":"00000000-0000-4000-8000-000000000001","PrincipalArn":"arn:aws:iam::000000000000:user/alice",` +
		`"AccessKeyId":"AKIAROTORTEST0000001","SourceIp":"192.0.2.1","UserAgent":"aws-cli/2",` +
		`"SecretArn":"arn:aws:secretsmanager:us-east-1:000000000000:secret:db-AbCdEf","VersionId":"v1",` +
		`"VersionStage":"AWSCURRENT","Outcome":"denied","ErrorCode":"AccessDeniedException",` +
		`"Message":"User: … is not authorized"}],"NextToken":"NDE"}`
	if w.Code != 200 || w.Body.String() != want {
		t.Fatalf("got %d %s\nwant %s", w.Code, w.Body, want)
	}
	wantCall := searchCall{
		filter: audit.Filter{Principal: testPrincipal.ARN, SecretARN: "db", EventName: "GetSecretValue", Outcome: "denied",
			Start: time.Date(2024, 5, 1, 12, 0, 0, 500e6, time.UTC), End: time.Date(2024, 5, 2, 12, 0, 0, 0, time.UTC)},
		limit: 1,
	}
	if len(*calls) != 1 || (*calls)[0] != wantCall {
		t.Fatalf("Search calls = %+v, want %+v", *calls, wantCall)
	}

	// The token continues after the seq it carries.
	expect(t, post(h, "rotor.LookupEvents", `{"NextToken":"NDE"}`), 200)
	if got := (*calls)[1]; got.after != 41 || got.limit != defaultLookupResults || got.filter != (audit.Filter{}) {
		t.Errorf("continued Search = %+v", got)
	}
}

func TestLookupEventsLastPage(t *testing.T) {
	h, _ := auditHandler(t, nil, 0, nil)
	w := post(h, "rotor.LookupEvents", `{}`)
	if w.Code != 200 || w.Body.String() != `{"Events":[]}` {
		t.Fatalf("got %d %s", w.Code, w.Body)
	}
}

func TestLookupEventsInvalid(t *testing.T) {
	b64 := base64.RawURLEncoding.EncodeToString
	tests := []struct {
		name, body, code string
	}{
		{"max results zero", `{"MaxResults":0}`, "ValidationException"},
		{"max results too many", `{"MaxResults":1001}`, "ValidationException"},
		{"unknown outcome", `{"Outcome":"maybe"}`, "ValidationException"},
		{"negative time", `{"StartTime":-5}`, "ValidationException"},
		{"time past 9999", `{"EndTime":1e15}`, "ValidationException"},
		{"end before start", `{"StartTime":100,"EndTime":99}`, "InvalidParameterException"},
		{"long filter", `{"EventName":"` + strings.Repeat("e", audit.MaxFieldLen+1) + `"}`, "ValidationException"},
		{"token not base64", `{"NextToken":"!!"}`, "InvalidNextTokenException"},
		{"token not a number", `{"NextToken":"` + b64([]byte("abc")) + `"}`, "InvalidNextTokenException"},
		{"token zero", `{"NextToken":"` + b64([]byte("0")) + `"}`, "InvalidNextTokenException"},
		{"token with leading zero", `{"NextToken":"` + b64([]byte("041")) + `"}`, "InvalidNextTokenException"},
		{"token signed", `{"NextToken":"` + b64([]byte("+41")) + `"}`, "InvalidNextTokenException"},
		{"token too large", `{"NextToken":"` + b64([]byte("9223372036854775808")) + `"}`, "InvalidNextTokenException"},
		{"token too long", `{"NextToken":"` + strings.Repeat("N", 65) + `"}`, "InvalidNextTokenException"},
		{"time as string", `{"StartTime":"2024-05-01"}`, "SerializationException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, calls := auditHandler(t, nil, 0, nil)
			wantError(t, post(h, "rotor.LookupEvents", tt.body), 400, tt.code)
			if len(*calls) != 0 {
				t.Errorf("Search called for an invalid request")
			}
		})
	}
}

func TestLookupEventsServedOnlyWithAuditLog(t *testing.T) {
	h, _ := testHandler(t, &fakeBackend{}, nil)
	wantError(t, post(h, "rotor.LookupEvents", `{}`), 400, "UnknownOperationException")
}

func TestLookupEventsSearchFailure(t *testing.T) {
	h, _ := auditHandler(t, nil, 0, errors.New("read audit.log: input/output error"))
	msg := wantError(t, post(h, "rotor.LookupEvents", `{}`), 500, codeInternal)
	if strings.Contains(msg, "audit.log") {
		t.Errorf("internal detail leaked: %q", msg)
	}
}

func TestLookupEventsAuthorization(t *testing.T) {
	t.Run("user without policy", func(t *testing.T) {
		h, calls := auditHandler(t, nil, 0, nil)
		h.iam = newIAMFixture(t, allowAll()).iam
		msg := wantError(t, post(h, "rotor.LookupEvents", `{}`), 400, "AccessDeniedException")
		if !strings.Contains(msg, "rotor:LookupEvents") {
			t.Errorf("message %q does not name the action", msg)
		}
		if len(*calls) != 0 {
			t.Errorf("Search called for a refused caller")
		}
	})
	t.Run("root", func(t *testing.T) {
		h, calls := auditHandler(t, nil, 0, nil)
		h.auth = asRoot()
		h.iam = newIAMFixture(t, asRoot()).iam
		expect(t, post(h, "rotor.LookupEvents", `{}`), 200)
		if len(*calls) != 1 {
			t.Errorf("Search called %d times", len(*calls))
		}
	})
}
