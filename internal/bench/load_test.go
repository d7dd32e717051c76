package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

func TestPercentile(t *testing.T) {
	// 1..100 ms: the nearest-rank p-th percentile is exactly p ms.
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	ten := []time.Duration{10, 20, 30, 40, 50, 60, 70, 80, 90, 100}
	for _, tc := range []struct {
		name   string
		sample []time.Duration
		p      float64
		want   time.Duration
	}{
		{"p50 of 1..100", hundred, 50, 50 * time.Millisecond},
		{"p90 of 1..100", hundred, 90, 90 * time.Millisecond},
		{"p99 of 1..100", hundred, 99, 99 * time.Millisecond},
		{"p100 of 1..100", hundred, 100, 100 * time.Millisecond},
		{"p1 of 1..100", hundred, 1, 1 * time.Millisecond},
		{"p0.5 rounds up to the first", hundred, 0.5, 1 * time.Millisecond},
		{"p99.5 of 1..100", hundred, 99.5, 100 * time.Millisecond},
		{"p50 of ten", ten, 50, 50},
		{"p55 of ten", ten, 55, 60},
		{"p99 of ten is the max", ten, 99, 100},
		{"one sample", []time.Duration{7}, 99, 7},
		{"empty", nil, 50, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Percentile(tc.sample, tc.p); got != tc.want {
				t.Errorf("Percentile(%v) = %v, want %v", tc.p, got, tc.want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	// 1..1000 µs, shuffled: Summarize sorts.
	sample := make([]time.Duration, 1000)
	for i := range sample {
		sample[i] = time.Duration((i*7919)%1000+1) * time.Microsecond
	}
	got := Summarize(sample)
	want := Latency{Samples: 1000, Mean: 0.5005, P50: 0.5, P90: 0.9, P99: 0.99, Max: 1}
	if got != want {
		t.Errorf("Summarize = %+v, want %+v", got, want)
	}
	if !slices.IsSorted(sample) {
		t.Error("the sample was not sorted in place")
	}
	if got := Summarize(nil); got != (Latency{}) {
		t.Errorf("Summarize(nil) = %+v, want zero", got)
	}
}

func TestRunCount(t *testing.T) {
	var calls atomic.Int64
	seen := make([]atomic.Bool, 1000)
	st, err := Run(t.Context(), Load{Concurrency: 7, Count: 1000}, func(_ context.Context, worker int, seq int64) error {
		if worker < 0 || worker >= 7 {
			t.Errorf("worker %d out of range", worker)
		}
		if seen[seq].Swap(true) {
			t.Errorf("seq %d given twice", seq)
		}
		calls.Add(1)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 1000 || st.Requests != 1000 || st.Errors != 0 || st.Latency.Samples != 1000 {
		t.Errorf("calls %d, stats %+v; want exactly 1000 successful operations", calls.Load(), st)
	}
	if st.PerSecond <= 0 || st.Elapsed <= 0 {
		t.Errorf("rate %v over %v s, want positive", st.PerSecond, st.Elapsed)
	}
}

func TestRunDuration(t *testing.T) {
	const d = 300 * time.Millisecond
	t0 := time.Now()
	st, err := Run(t.Context(), Load{Concurrency: 4, Duration: d}, func(ctx context.Context, _ int, _ int64) error {
		time.Sleep(10 * time.Millisecond)
		return nil
	})
	took := time.Since(t0)
	if err != nil {
		t.Fatal(err)
	}
	// Operations in flight at the deadline finish: at most one more each.
	if took < d || took > d+200*time.Millisecond {
		t.Errorf("a %v run took %v", d, took)
	}
	if st.Requests < 40 || st.Requests > 4*(30+2) {
		t.Errorf("%d operations of 10 ms by 4 workers in %v", st.Requests, d)
	}
	if st.Latency.P50 < 10 {
		t.Errorf("p50 %v ms, want at least the 10 ms each operation sleeps", st.Latency.P50)
	}
}

func TestRunCountsErrorsByCode(t *testing.T) {
	st, err := Run(t.Context(), Load{Concurrency: 3, Count: 100}, func(_ context.Context, _ int, seq int64) error {
		switch {
		case seq%10 == 0:
			return &smithy.GenericAPIError{Code: "ResourceNotFoundException", Message: "no"}
		case seq%10 == 1:
			return fmt.Errorf("wrapped: %w", &smithy.GenericAPIError{Code: "ThrottlingException"})
		case seq%25 == 2:
			return errors.New("boom")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"ResourceNotFoundException": 10, "ThrottlingException": 10, "Other": 4}
	if st.Errors != 24 || st.Requests != 100 || st.Latency.Samples != 76 {
		t.Errorf("requests %d, errors %d, latency samples %d; want 100, 24, 76", st.Requests, st.Errors, st.Latency.Samples)
	}
	if fmt.Sprint(st.ErrorCodes) != fmt.Sprint(want) {
		t.Errorf("error codes %v, want %v", st.ErrorCodes, want)
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	var started atomic.Int64
	done := make(chan struct{})
	var (
		st  Stats
		err error
	)
	go func() {
		defer close(done)
		st, err = Run(ctx, Load{Concurrency: 4, Duration: time.Hour}, func(ctx context.Context, _ int, _ int64) error {
			if started.Add(1) > 20 {
				<-ctx.Done() // a request in flight when the run is cancelled
				return ctx.Err()
			}
			return nil
		})
	}()
	for started.Load() <= 20 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v, want context.Canceled", err)
	}
	if st.Requests != 20 || st.Errors != 0 {
		t.Errorf("requests %d, errors %d; want the 20 completed and no error for the cancelled ones", st.Requests, st.Errors)
	}
}

func TestRunProgress(t *testing.T) {
	var last Progress
	var calls atomic.Int64
	_, err := Run(t.Context(), Load{Concurrency: 2, Count: 50, Phase: "p", Progress: func(p Progress) {
		calls.Add(1)
		last = p
	}}, func(context.Context, int, int64) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if calls.Load() < 1 || last.Phase != "p" || last.Done != 50 || last.Total != 50 || last.Fraction() != 1 {
		t.Errorf("%d reports, last %+v; want a final report of 50 of 50", calls.Load(), last)
	}
}

func TestRunRefusesBadLoads(t *testing.T) {
	op := func(context.Context, int, int64) error { return nil }
	for _, l := range []Load{{Concurrency: 0, Count: 1}, {Concurrency: 1}} {
		if _, err := Run(t.Context(), l, op); err == nil {
			t.Errorf("Run(%+v) succeeded", l)
		}
	}
}

func TestErrorCode(t *testing.T) {
	resp := &awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{
		Response: &smithyhttp.Response{Response: &http.Response{StatusCode: 502}}, Err: errors.New("bad gateway")}}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&smithy.GenericAPIError{Code: "LimitExceededException"}, "LimitExceededException"},
		{&smithy.OperationError{ServiceID: "Secrets Manager", OperationName: "GetSecretValue", Err: &smithy.GenericAPIError{Code: "AccessDeniedException"}}, "AccessDeniedException"},
		{resp, "HTTP 502"},
		{context.DeadlineExceeded, "Timeout"},
		{&net.OpError{Op: "dial", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}, "ConnectionRefused"},
		{&net.OpError{Op: "read", Err: &os.SyscallError{Syscall: "read", Err: syscall.ECONNRESET}}, "ConnectionReset"},
		{&net.OpError{Op: "read", Err: errors.New("odd")}, "Network"},
		{errors.New("boom"), "Other"},
	} {
		if got := ErrorCode(tc.err); got != tc.want {
			t.Errorf("ErrorCode(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
