package metrics

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rotor-secrets/rotor/internal/store"
)

var testOps = []string{"GetSecretValue", "CreateSecret", "PutSecretValue"}

// scrape serves GET /metrics and returns the exposition text.
func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: status %d, body:\n%s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

// wantLines fails the test for each line missing from the exposition.
func wantLines(t *testing.T, body string, lines ...string) {
	t.Helper()
	have := make(map[string]bool)
	for l := range strings.SplitSeq(body, "\n") {
		have[l] = true
	}
	for _, l := range lines {
		if !have[l] {
			t.Errorf("exposition lacks %q", l)
		}
	}
}

// labelValues returns the distinct values of label in metric family name.
func labelValues(t *testing.T, m *Metrics, name, label string) map[string]bool {
	t.Helper()
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := make(map[string]bool)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, mt := range mf.GetMetric() {
			for _, lp := range mt.GetLabel() {
				if lp.GetName() == label {
					got[lp.GetValue()] = true
				}
			}
		}
	}
	return got
}

func TestObserveRequest(t *testing.T) {
	m := New(testOps)
	m.ObserveRequest("GetSecretValue", "", time.Millisecond)
	m.ObserveRequest("GetSecretValue", "", 3*time.Millisecond)
	m.ObserveRequest("GetSecretValue", "ResourceNotFoundException", 40*time.Microsecond)
	m.ObserveRequest("CreateSecret", "ResourceExistsException", 2*time.Second)

	body := scrape(t, m)
	wantLines(t, body,
		`rotor_requests_total{code="OK",operation="GetSecretValue"} 2`,
		`rotor_requests_total{code="ResourceNotFoundException",operation="GetSecretValue"} 1`,
		`rotor_requests_total{code="ResourceExistsException",operation="CreateSecret"} 1`,
		// Known operations start at zero.
		`rotor_requests_total{code="OK",operation="PutSecretValue"} 0`,
		`rotor_request_duration_seconds_count{operation="GetSecretValue"} 3`,
		`rotor_request_duration_seconds_bucket{operation="GetSecretValue",le="5e-05"} 1`,
		`rotor_request_duration_seconds_bucket{operation="GetSecretValue",le="0.001"} 2`,
		`rotor_request_duration_seconds_bucket{operation="GetSecretValue",le="0.005"} 3`,
		`rotor_request_duration_seconds_bucket{operation="CreateSecret",le="1"} 0`,
		`rotor_request_duration_seconds_bucket{operation="CreateSecret",le="2.5"} 1`,
		`rotor_request_duration_seconds_count{operation="PutSecretValue"} 0`,
	)
	// Go and process collectors are registered.
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if !strings.Contains(body, "\n"+name+" ") {
			t.Errorf("exposition lacks %s", name)
		}
	}
}

func TestRequestLabelsBounded(t *testing.T) {
	tests := []struct {
		name         string
		op, code     string
		wantOp, want string
	}{
		{"known", "GetSecretValue", "", "GetSecretValue", "OK"},
		{"unknown operation", "DropAllTables", "", "other", "OK"},
		{"empty operation", "", "", "other", "OK"},
		{"crafted code", "GetSecretValue", "x\"} 1\nfoo", "GetSecretValue", "other"},
		{"code with digits", "GetSecretValue", "Error500", "GetSecretValue", "other"},
		{"code too long", "GetSecretValue", strings.Repeat("A", 65), "GetSecretValue", "other"},
		{"code at limit", "GetSecretValue", strings.Repeat("A", 64), "GetSecretValue", strings.Repeat("A", 64)},
		{"code not UTF-8", "GetSecretValue", "Bad\xff", "GetSecretValue", "other"},
		{"both", "Evil\xff", "x y", "other", "other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New(testOps)
			m.ObserveRequest(tt.op, tt.code, time.Millisecond)
			m.ObserveRequest(tt.op, tt.code, time.Millisecond)
			wantLines(t, scrape(t, m),
				fmt.Sprintf(`rotor_requests_total{code=%q,operation=%q} 2`, tt.want, tt.wantOp))
		})
	}
}

func TestOperationCardinality(t *testing.T) {
	m := New(testOps)
	for range 10_000 {
		m.ObserveRequest(fmt.Sprintf("Op%016x", rand.Uint64()), "", time.Millisecond)
	}
	m.ObserveRequest("GetSecretValue", "", time.Millisecond)
	for _, name := range []string{"rotor_requests_total", "rotor_request_duration_seconds"} {
		got := labelValues(t, m, name, "operation")
		if len(got) > len(testOps)+1 {
			t.Errorf("%s: %d operation values, want at most %d", name, len(got), len(testOps)+1)
		}
		if !got["other"] {
			t.Errorf("%s: no operation=\"other\"", name)
		}
	}
	wantLines(t, scrape(t, m), `rotor_requests_total{code="OK",operation="other"} 10000`)
}

func TestCodeCardinality(t *testing.T) {
	m := New(testOps)
	const n = 1000
	for i := range n {
		// Valid codes: letters only.
		code := strings.Map(func(r rune) rune { return 'a' + (r - '0') }, fmt.Sprintf("%08d", i))
		m.ObserveRequest("GetSecretValue", code, time.Millisecond)
	}
	got := labelValues(t, m, "rotor_requests_total", "code")
	if len(got) > maxCodes+1 {
		t.Errorf("%d code values, want at most %d", len(got), maxCodes+1)
	}
	if !got["other"] {
		t.Error(`no code="other"`)
	}
	// A code admitted before the limit keeps its own series.
	m.ObserveRequest("GetSecretValue", "aaaaaaaa", time.Millisecond)
	wantLines(t, scrape(t, m), `rotor_requests_total{code="aaaaaaaa",operation="GetSecretValue"} 2`)
}

func TestNoSecretInOutput(t *testing.T) {
	secrets := []string{
		"arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-password-AbCdEf",
		"hunter2-S3cr3tV@lue",
		"SuperSecretPasswordValue",
	}
	m := New(testOps)
	for _, s := range secrets {
		m.ObserveRequest(s, "", time.Millisecond)
		m.ObserveRequest(s, "InternalFailure", time.Millisecond)
	}
	// Codes come from the server's closed set, but one built from a value
	// with any non-letter is still dropped.
	m.ObserveRequest("GetSecretValue", secrets[0], time.Millisecond)
	m.ObserveRequest("GetSecretValue", secrets[1], time.Millisecond)
	body := scrape(t, m)
	for _, s := range secrets {
		if strings.Contains(body, s) {
			t.Errorf("exposition contains %q", s)
		}
	}
}

func TestObserveRotation(t *testing.T) {
	m := New(testOps)
	for _, ev := range []string{"RotationStarted", "RotationSucceeded", "RotationStarted", "RotationFailed", "RotationStarted", "RotationAbandoned"} {
		m.ObserveRotation("postgres-single-user", ev)
	}
	m.ObserveRotation("postgres-single-user", "TestRotationStarted")
	m.ObserveRotation("postgres-single-user", "TestRotationSucceeded")
	m.ObserveRotation("mysql", "TestRotationFailed")
	m.ObserveRotation("mysql", "SomethingElse")
	m.ObserveRotation("", "RotationAbandoned")

	wantLines(t, scrape(t, m),
		`rotor_rotation_events_total{event="started",function="postgres-single-user"} 3`,
		`rotor_rotation_events_total{event="succeeded",function="postgres-single-user"} 1`,
		`rotor_rotation_events_total{event="failed",function="postgres-single-user"} 1`,
		`rotor_rotation_events_total{event="abandoned",function="postgres-single-user"} 1`,
		`rotor_rotation_events_total{event="test_started",function="postgres-single-user"} 1`,
		`rotor_rotation_events_total{event="test_succeeded",function="postgres-single-user"} 1`,
		`rotor_rotation_events_total{event="test_failed",function="mysql"} 1`,
		`rotor_rotation_events_total{event="other",function="mysql"} 1`,
		`rotor_rotation_events_total{event="abandoned",function="none"} 1`,
		`rotor_rotations_attempted_total{function="postgres-single-user"} 3`,
		`rotor_rotations_succeeded_total{function="postgres-single-user"} 1`,
		`rotor_rotations_failed_total{function="postgres-single-user"} 1`,
	)
}

func TestRotationFunctionCardinality(t *testing.T) {
	m := New(testOps)
	for i := range 1000 {
		m.ObserveRotation(fmt.Sprintf("fn-%d", i), "RotationStarted")
	}
	m.ObserveRotation(strings.Repeat("f", maxFunctionName+1), "RotationStarted")
	m.ObserveRotation("fn-0", "RotationStarted")
	got := labelValues(t, m, "rotor_rotations_attempted_total", "function")
	if len(got) != maxFunctions+1 {
		t.Errorf("%d function values, want %d", len(got), maxFunctions+1)
	}
	wantLines(t, scrape(t, m),
		`rotor_rotations_attempted_total{function="fn-0"} 2`,
		fmt.Sprintf(`rotor_rotations_attempted_total{function="other"} %d`, 1000-maxFunctions+1),
	)
}

func TestCounters(t *testing.T) {
	m := New(testOps)
	wantLines(t, scrape(t, m),
		`rotor_audit_write_failures_total 0`,
		`rotor_throttled_requests_total 0`,
	)
	m.AuditWriteFailure()
	m.RateLimited()
	m.RateLimited()
	wantLines(t, scrape(t, m),
		`rotor_audit_write_failures_total 1`,
		`rotor_throttled_requests_total 2`,
	)
}

func TestScrapeTimeGauges(t *testing.T) {
	m := New(testOps)
	body := scrape(t, m)
	if strings.Contains(body, "rotor_secrets") || strings.Contains(body, "rotor_webhook_backlog") {
		t.Errorf("gauges present before SetStats/SetBacklog:\n%s", body)
	}

	var gotDeadline bool
	m.SetStats(func(ctx context.Context) (store.SecretStats, error) {
		_, gotDeadline = ctx.Deadline()
		return store.SecretStats{Live: 7, PendingDeletion: 2, RotationEnabled: 4, RotationOverdue: 1}, nil
	})
	m.SetBacklog(func(ctx context.Context) (int, int, error) { return 12, 3, nil })
	wantLines(t, scrape(t, m),
		`rotor_secrets{state="live"} 7`,
		`rotor_secrets{state="pending_deletion"} 2`,
		`rotor_secrets_rotation_enabled 4`,
		`rotor_rotations_overdue 1`,
		`rotor_webhook_backlog{state="pending"} 12`,
		`rotor_webhook_backlog{state="parked"} 3`,
		`rotor_stats_scrape_errors_total{source="secrets"} 0`,
		`rotor_stats_scrape_errors_total{source="webhook_backlog"} 0`,
	)
	if !gotDeadline {
		t.Error("stats function called without a deadline")
	}
}

func TestScrapeErrors(t *testing.T) {
	m := New(testOps)
	m.ObserveRequest("GetSecretValue", "", time.Millisecond)
	m.SetStats(func(ctx context.Context) (store.SecretStats, error) {
		return store.SecretStats{Live: 99}, errors.New("database is locked")
	})
	m.SetBacklog(func(ctx context.Context) (int, int, error) { return 0, 0, errors.New("no such table") })

	scrape(t, m)
	body := scrape(t, m)
	wantLines(t, body,
		`rotor_stats_scrape_errors_total{source="secrets"} 2`,
		`rotor_stats_scrape_errors_total{source="webhook_backlog"} 2`,
		`rotor_requests_total{code="OK",operation="GetSecretValue"} 1`,
	)
	for _, name := range []string{"rotor_secrets{", "rotor_secrets_rotation_enabled ", "rotor_rotations_overdue ", "rotor_webhook_backlog{"} {
		if strings.Contains(body, "\n"+name) {
			t.Errorf("exposition has %s after an error", name)
		}
	}
}

func TestScrapeTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := New(testOps)
		release := make(chan struct{})
		// One function ignores its context; the other honours it.
		m.SetStats(func(ctx context.Context) (store.SecretStats, error) {
			<-release
			return store.SecretStats{Live: 1}, nil
		})
		m.SetBacklog(func(ctx context.Context) (int, int, error) {
			<-ctx.Done()
			return 0, 0, ctx.Err()
		})
		start := time.Now()
		body := scrape(t, m)
		if d := time.Since(start); d != scrapeTimeout {
			t.Errorf("scrape took %v, want %v", d, scrapeTimeout)
		}
		wantLines(t, body,
			`rotor_stats_scrape_errors_total{source="secrets"} 1`,
			`rotor_stats_scrape_errors_total{source="webhook_backlog"} 1`,
		)
		if strings.Contains(body, "\nrotor_secrets{") {
			t.Error("exposition has rotor_secrets after a timeout")
		}
		close(release)
		synctest.Wait()
	})
}

func TestConcurrentUse(t *testing.T) {
	m := New(testOps)
	m.SetStats(func(ctx context.Context) (store.SecretStats, error) { return store.SecretStats{Live: 1}, nil })
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				m.ObserveRequest(testOps[i%len(testOps)], []string{"", "ThrottlingException", "x y"}[i%3], time.Duration(i)*time.Microsecond)
				m.ObserveRotation(fmt.Sprintf("fn-%d", g), "RotationStarted")
				if i%100 == 0 {
					m.RateLimited()
				}
			}
		})
	}
	wg.Go(func() {
		for range 5 {
			scrape(t, m)
		}
	})
	wg.Wait()
	wantLines(t, scrape(t, m), `rotor_throttled_requests_total 40`)
}

func BenchmarkObserveRequest(b *testing.B) {
	for _, bb := range []struct{ name, op, code string }{
		{"ok", "GetSecretValue", ""},
		{"error", "GetSecretValue", "ResourceNotFoundException"},
		{"unknown-op", "NoSuchOperation", ""},
		{"invalid-code", "GetSecretValue", "x\"} 1\nfoo"},
	} {
		b.Run(bb.name, func(b *testing.B) {
			m := New(testOps)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					m.ObserveRequest(bb.op, bb.code, 1500*time.Microsecond)
				}
			})
		})
	}
}

func TestLeaderGauge(t *testing.T) {
	m := New(nil)
	if strings.Contains(scrape(t, m), "rotor_leader") {
		t.Error("rotor_leader served before SetLeader")
	}
	var leading atomic.Bool
	m.SetLeader(leading.Load)
	wantLines(t, scrape(t, m), `rotor_leader 0`)
	leading.Store(true)
	wantLines(t, scrape(t, m), `rotor_leader 1`)
}
