package client

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
)

// fakeCache records what push asks of the cache.
type fakeCache struct {
	mu          sync.Mutex
	invalidated []string
	refreshed   []string
	block       chan struct{} // RefreshNow waits for it (or ctx) when set
}

func (f *fakeCache) Invalidate(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.invalidated = append(f.invalidated, id)
}

func (f *fakeCache) RefreshNow(ctx context.Context, id string) (*Secret, error) {
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refreshed = append(f.refreshed, id)
	return &Secret{}, nil
}

func (f *fakeCache) calls() (invalidated, refreshed []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.invalidated), slices.Clone(f.refreshed)
}

var testCreds = credentials.NewStaticCredentialsProvider("AKIDPUSHTEST00000001", "push-test-secret-key-0123456789", "")

// sseServer serves each subscription with handle, counting connections
// and checking that they are signed.
func sseServer(t *testing.T, handle func(w http.ResponseWriter, r *http.Request, n int)) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var conns atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("X-Amz-Target") != pushTarget ||
			!strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential=AKIDPUSHTEST00000001/") {
			t.Errorf("unexpected request: %s %v", r.Method, r.Header)
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		handle(w, r, int(conns.Add(1)))
	}))
	t.Cleanup(srv.Close)
	return srv, &conns
}

func streamHeader(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
}

func emit(w http.ResponseWriter, s string) {
	fmt.Fprint(w, s)
	w.(http.Flusher).Flush()
}

func startTestPush(t *testing.T, c invalidator, cfg PushConfig) *Push {
	t.Helper()
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.Credentials == nil {
		cfg.Credentials = testCreds
	}
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff = time.Millisecond
		cfg.MaxBackoff = 10 * time.Millisecond
	}
	p, err := startPush(t.Context(), c, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return p
}

// eventually polls cond for up to 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

const (
	testARN  = "arn:aws:secretsmanager:us-east-1:000000000000:secret:app/db-AbCdEf"
	testName = "app/db"
)

func TestPushAppliesEvents(t *testing.T) {
	sent := make(chan struct{})
	srv, _ := sseServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n > 1 {
			<-r.Context().Done()
			return
		}
		streamHeader(w)
		emit(w, "event: ready\ndata: {}\n\n")
		emit(w, ": heartbeat\n\n")
		emit(w, "event: label\ndata: {\"ARN\":\""+testARN+"\",\"Name\":\"app/db\",\"VersionStage\":\"AWSPENDING\",\"VersionId\":\"v2\",\"Date\":1767225600.5}\n\n")
		emit(w, "event: label\ndata: {\"ARN\":\""+testARN+"\",\"Name\":\"app/db\",\"VersionStage\":\"AWSCURRENT\",\"VersionId\":\"v2\",\n")
		emit(w, "data: \"RemovedFromVersionId\":\"v1\",\"Date\":1767225601}\n\n")
		emit(w, "event: label\ndata: not json\n\n")
		close(sent)
		<-r.Context().Done()
	})
	fc := &fakeCache{}
	var mu sync.Mutex
	var changes []Change
	p := startTestPush(t, fc, PushConfig{
		Endpoint: srv.URL, SecretIDs: []string{"app/db", "arn:aws:secretsmanager:us-east-1:000000000000:secret:app/db", "other"},
		OnChange: func(c Change) { mu.Lock(); changes = append(changes, c); mu.Unlock() },
	})
	<-sent
	eventually(t, "three changes", func() bool { mu.Lock(); defer mu.Unlock(); return len(changes) == 3 })
	if !p.Connected() {
		t.Error("Connected() = false while the stream is up")
	}
	mu.Lock()
	got := slices.Clone(changes)
	mu.Unlock()
	want := []Change{
		{Resync: true},
		{ARN: testARN, Name: testName, VersionStage: "AWSPENDING", VersionID: "v2", Time: time.Unix(1767225600, 5e8)},
		{ARN: testARN, Name: testName, VersionStage: "AWSCURRENT", VersionID: "v2", RemovedFromVersionID: "v1", Time: time.Unix(1767225601, 0)},
	}
	for i := range want {
		if !got[i].Time.Equal(want[i].Time) {
			t.Errorf("change %d time = %v, want %v", i, got[i].Time, want[i].Time)
		}
		got[i].Time, want[i].Time = time.Time{}, time.Time{}
	}
	if !slices.Equal(got, want) {
		t.Errorf("changes = %+v\nwant %+v", got, want)
	}
	eventually(t, "refreshes", func() bool { _, r := fc.calls(); return len(r) == 5 })
	inv, ref := fc.calls()
	// Connect: every listed id. AWSPENDING: invalidate only. AWSCURRENT:
	// invalidate and refresh the ids that name the secret.
	partial := "arn:aws:secretsmanager:us-east-1:000000000000:secret:app/db"
	wantInv := []string{"app/db", partial, "other",
		testARN, testName, "app/db", partial,
		testARN, testName, "app/db", partial}
	if !slices.Equal(inv, wantInv) {
		t.Errorf("invalidated %q\nwant %q", inv, wantInv)
	}
	slices.Sort(ref)
	if wantRef := []string{"app/db", "app/db", partial, partial, "other"}; !slices.Equal(ref, wantRef) {
		t.Errorf("refreshed %q, want %q", ref, wantRef)
	}
}

func TestPushReconnectsWithBackoff(t *testing.T) {
	srv, conns := sseServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		switch n % 3 {
		case 1: // accepted, then dropped
			streamHeader(w)
			emit(w, "event: ready\ndata: {}\n\n")
		case 2: // refused for a while
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprint(w, `{"__type":"InternalServiceError","Message":"try later"}`)
		default: // dropped before ready
			streamHeader(w)
		}
	})
	var resyncs atomic.Int32
	startTestPush(t, &fakeCache{}, PushConfig{Endpoint: srv.URL, OnChange: func(c Change) {
		if c.Resync {
			resyncs.Add(1)
		}
	}})
	eventually(t, "several reconnections", func() bool { return conns.Load() >= 7 && resyncs.Load() >= 3 })
}

func TestPushDropsSilentStream(t *testing.T) {
	srv, conns := sseServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		streamHeader(w)
		emit(w, "event: ready\ndata: {}\n\n")
		<-r.Context().Done() // then silence: no heartbeat
	})
	startTestPush(t, &fakeCache{}, PushConfig{Endpoint: srv.URL, IdleTimeout: 50 * time.Millisecond})
	eventually(t, "a reconnection after the idle timeout", func() bool { return conns.Load() >= 3 })
}

func TestPushGivesUpWhenNotServed(t *testing.T) {
	srv, conns := sseServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"__type":"UnknownOperationException","Message":"unrecognized operation"}`)
	})
	p := startTestPush(t, &fakeCache{}, PushConfig{Endpoint: srv.URL})
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatal("push kept retrying an endpoint without the operation")
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d attempts, want 1", n)
	}
}

// TestPushStopWaitsForRefreshes: Stop cancels refreshes under way and
// returns only once they have, with the stream goroutine gone too.
func TestPushStopWaitsForRefreshes(t *testing.T) {
	srv, _ := sseServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		streamHeader(w)
		emit(w, "event: ready\ndata: {}\n\n")
		<-r.Context().Done()
	})
	fc := &fakeCache{block: make(chan struct{})}
	p, err := startPush(t.Context(), fc, PushConfig{Endpoint: srv.URL, Region: "us-east-1", Credentials: testCreds, SecretIDs: []string{"a", "b"}})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "connection", p.Connected)
	p.Stop()
	p.Stop() // idempotent
	select {
	case <-p.done:
	default:
		t.Fatal("stream goroutine still running after Stop")
	}
	p.mu.Lock()
	n := len(p.pending)
	p.mu.Unlock()
	if n != 0 {
		t.Errorf("%d refreshes still pending after Stop", n)
	}
	if p.Connected() {
		t.Error("Connected() after Stop")
	}
}

func TestPushContextEndStops(t *testing.T) {
	srv, _ := sseServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		streamHeader(w)
		emit(w, "event: ready\ndata: {}\n\n")
		<-r.Context().Done()
	})
	ctx, cancel := context.WithCancel(t.Context())
	p, err := startPush(ctx, &fakeCache{}, PushConfig{Endpoint: srv.URL, Region: "us-east-1", Credentials: testCreds})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "connection", p.Connected)
	cancel()
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatal("push still running after its context ended")
	}
	p.Stop()
}

func TestStartPushConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  PushConfig
		want string // "" for success
	}{
		{"ok", PushConfig{Endpoint: "http://127.0.0.1:1", Region: "us-east-1", Credentials: testCreds}, ""},
		{"no endpoint", PushConfig{Region: "us-east-1", Credentials: testCreds}, "Endpoint is empty"},
		{"bad endpoint", PushConfig{Endpoint: "127.0.0.1:7300", Region: "us-east-1", Credentials: testCreds}, "Endpoint must be"},
		{"no region", PushConfig{Endpoint: "http://h", Credentials: testCreds}, "Region"},
		{"no credentials", PushConfig{Endpoint: "http://h", Region: "us-east-1"}, "Credentials"},
		{"too many ids", PushConfig{Endpoint: "http://h", Region: "us-east-1", Credentials: testCreds, SecretIDs: make([]string, 101)}, "100"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := startPush(t.Context(), &fakeCache{}, tt.cfg)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				p.Stop()
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one about %q", err, tt.want)
			}
		})
	}
	if _, err := StartPush(t.Context(), nil, PushConfig{}); err == nil {
		t.Error("StartPush accepted a nil cache")
	}
}

func TestPushBackoffBounds(t *testing.T) {
	p := &Push{cfg: PushConfig{MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second}}
	for n, want := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		want *= time.Millisecond
		for range 50 {
			if d := p.backoff(n); d < want/2 || d > want {
				t.Fatalf("backoff(%d) = %v, want in [%v, %v]", n, d, want/2, want)
			}
		}
	}
	if d := p.backoff(1000); d > time.Second {
		t.Fatalf("backoff(1000) = %v, over the maximum", d)
	}
}

func TestNames(t *testing.T) {
	tests := []struct {
		id   string
		want bool
	}{
		{testName, true},
		{testARN, true},
		{"arn:aws:secretsmanager:us-east-1:000000000000:secret:app/db", true},
		{"app/d", false},
		{"arn:aws:secretsmanager:us-east-1:000000000000:secret:app", false},
		{"app/db-AbCdEf", false},
	}
	for _, tt := range tests {
		if got := names(tt.id, testARN, testName); got != tt.want {
			t.Errorf("names(%q) = %v, want %v", tt.id, got, tt.want)
		}
	}
}
