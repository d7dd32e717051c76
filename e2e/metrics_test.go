package e2e

// GET /metrics and the per-key rate limit through the built server.

import (
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

func TestMetrics(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	c := client(t, srv)
	ctx := t.Context()

	// Names and values that would stand out in the exposition.
	live, doomed := "metrics/"+randomText(t, 20), "metrics/"+randomText(t, 20)
	value := randomText(t, 40)
	created := createString(t, c, live, value)
	createString(t, c, doomed, value)
	_, err := c.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String(doomed)})
	must(t, err)
	for range 2 {
		if got := getString(t, c, live); got != value {
			t.Fatalf("GetSecretValue = %q", got)
		}
	}
	_, err = c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(live + "/missing")})
	wantCode(t, err, "ResourceNotFoundException")
	describe(t, c, live)

	exp := scrape(t, srv)
	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"rotor_requests_total", []string{"operation", "CreateSecret", "code", "OK"}, 2},
		{"rotor_requests_total", []string{"operation", "GetSecretValue", "code", "OK"}, 2},
		{"rotor_requests_total", []string{"operation", "GetSecretValue", "code", "ResourceNotFoundException"}, 1},
		{"rotor_requests_total", []string{"operation", "DescribeSecret", "code", "OK"}, 1},
		{"rotor_requests_total", []string{"operation", "DeleteSecret", "code", "OK"}, 1},
		{"rotor_requests_total", []string{"operation", "ListSecrets", "code", "OK"}, 0}, // pre-created
		{"rotor_request_duration_seconds_count", []string{"operation", "GetSecretValue"}, 3},
		{"rotor_request_duration_seconds_bucket", []string{"operation", "GetSecretValue", "le", "+Inf"}, 3},
		{"rotor_secrets", []string{"state", "live"}, 1},
		{"rotor_secrets", []string{"state", "pending_deletion"}, 1},
		{"rotor_audit_write_failures_total", nil, 0},
		{"rotor_throttled_requests_total", nil, 0},
	} {
		got, ok := metricValue(exp, tc.name, tc.labels...)
		if !ok || got != tc.want {
			t.Errorf("%s%v = %v (present %v), want %v", tc.name, tc.labels, got, ok, tc.want)
		}
	}
	if sum, ok := metricValue(exp, "rotor_request_duration_seconds_sum", "operation", "GetSecretValue"); !ok || sum <= 0 {
		t.Errorf("rotor_request_duration_seconds_sum{GetSecretValue} = %v (present %v)", sum, ok)
	}
	for _, s := range []string{value, live, doomed, aws.ToString(created.ARN), aws.ToString(created.VersionId), testAccessKeyID, testSecretAccessKey} {
		if strings.Contains(exp, s) {
			t.Errorf("the exposition contains %q", s)
		}
	}
	for _, leak := range findLeaks("the exposition", []byte(exp), []marker{{"a secret value", []byte(value)}}) {
		t.Error(leak)
	}

	t.Run("no-metrics", func(t *testing.T) {
		t.Parallel()
		off := startServer(t, withArgs("--no-metrics"))
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, off.endpoint()+"/metrics", nil)
		must(t, err)
		if r := do(t, req); r.status == http.StatusOK && strings.Contains(string(r.body), "rotor_requests_total") {
			t.Errorf("GET /metrics with --no-metrics: %d with metrics", r.status)
		}
	})
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	srv := startServer(t, withArgs("--rate-limit", "5", "--rate-burst", "5"))
	// Four requests of the root key's five.
	other := newUser(t, srv, "unthrottled", newPolicy(t, srv, "passwords", policyDoc(
		`{"Effect":"Allow","Action":"secretsmanager:GetRandomPassword","Resource":"*"}`)))
	root, user := client(t, srv), keyClient(srv, other)
	password := func(c *secretsmanager.Client) error {
		_, err := c.GetRandomPassword(t.Context(), &secretsmanager.GetRandomPasswordInput{PasswordLength: aws.Int64(16)})
		return err
	}

	throttled := 0
	for range 20 {
		err := password(root)
		switch apiCode(err) {
		case "":
		case "ThrottlingException":
			throttled++
			if msg := apiMessage(err); msg != "Rate exceeded" {
				t.Errorf("ThrottlingException message %q", msg)
			}
		default:
			t.Fatalf("GetRandomPassword: %v", err)
		}
	}
	// 20 requests in well under a second: the bucket holds 5, and refills
	// 5 a second.
	if throttled < 10 {
		t.Errorf("%d of 20 requests throttled, want at least 10", throttled)
	}
	for i := range 5 {
		if err := password(user); err != nil {
			t.Errorf("request %d of another key: %v", i, err)
		}
	}
	r := do(t, rawRequest{target: "secretsmanager.GetRandomPassword", body: []byte(`{}`), key: rootKey()}.build(t, srv))
	if r.status != http.StatusOK {
		wantError(t, r, http.StatusBadRequest, "ThrottlingException")
	}
	if n, _ := metricValue(scrape(t, srv), "rotor_throttled_requests_total"); n < float64(throttled) {
		t.Errorf("rotor_throttled_requests_total = %v, want at least %d", n, throttled)
	}
}
