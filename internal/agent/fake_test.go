package agent

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"
)

const testToken = "s3cr3t-ssrf-token-for-tests"

// fakeAPI is an in-memory Secrets Manager for the cache under the agent.
type fakeAPI struct {
	mu      sync.Mutex
	secrets map[string]*fakeSecret // by name
	seq     int
	// block, when not nil, holds every GetSecretValue until it is closed
	// or the call's ctx ends.
	block  chan struct{}
	getErr error // returned by GetSecretValue when set

	gets, waiting atomic.Int64
}

type fakeSecret struct {
	arn, name string
	values    map[string]fakeValue // by version id
	stages    map[string]string    // stage → version id
}

type fakeValue struct {
	str     *string
	bin     []byte
	created time.Time
}

func newFakeAPI() *fakeAPI { return &fakeAPI{secrets: map[string]*fakeSecret{}} }

// put stores a new AWSCURRENT version of name and returns its id.
func (f *fakeAPI) put(name, value string) string { return f.putValue(name, fakeValue{str: &value}) }

func (f *fakeAPI) putBinary(name string, b []byte) string { return f.putValue(name, fakeValue{bin: b}) }

func (f *fakeAPI) putValue(name string, v fakeValue) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.secrets[name]
	if s == nil {
		s = &fakeSecret{arn: "arn:aws:secretsmanager:us-east-1:000000000000:secret:" + name + "-AbCdEf", name: name,
			values: map[string]fakeValue{}, stages: map[string]string{}}
		f.secrets[name] = s
	}
	f.seq++
	vid := fmt.Sprintf("00000000-0000-4000-8000-%012d", f.seq)
	v.created = time.Unix(1700000000, 123e6).Add(time.Duration(f.seq) * time.Second)
	s.values[vid] = v
	if cur, ok := s.stages["AWSCURRENT"]; ok {
		s.stages["AWSPREVIOUS"] = cur
	}
	s.stages["AWSCURRENT"] = vid
	return vid
}

func (f *fakeAPI) lookup(id string) *fakeSecret {
	for _, s := range f.secrets {
		if s.name == id || s.arn == id {
			return s
		}
	}
	return nil
}

func (f *fakeAPI) stagesOf(s *fakeSecret, vid string) []string {
	var out []string
	for st, v := range s.stages {
		if v == vid {
			out = append(out, st)
		}
	}
	return out
}

func notFound() error {
	return &smithy.GenericAPIError{Code: "ResourceNotFoundException", Message: "Secrets Manager can't find the specified secret."}
}

func (f *fakeAPI) GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	f.gets.Add(1)
	f.mu.Lock()
	block, getErr := f.block, f.getErr
	f.mu.Unlock()
	if block != nil {
		f.waiting.Add(1)
		select {
		case <-block:
			f.waiting.Add(-1)
		case <-ctx.Done():
			f.waiting.Add(-1)
			return nil, ctx.Err()
		}
	}
	if getErr != nil {
		return nil, getErr
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.lookup(aws.ToString(in.SecretId))
	if s == nil {
		return nil, notFound()
	}
	vid := aws.ToString(in.VersionId)
	if vid == "" {
		stage := aws.ToString(in.VersionStage)
		if stage == "" {
			stage = "AWSCURRENT"
		}
		vid = s.stages[stage]
	}
	v, ok := s.values[vid]
	if !ok {
		return nil, notFound()
	}
	return &secretsmanager.GetSecretValueOutput{
		ARN: aws.String(s.arn), Name: aws.String(s.name), VersionId: aws.String(vid),
		SecretString: v.str, SecretBinary: v.bin, VersionStages: f.stagesOf(s, vid), CreatedDate: aws.Time(v.created),
	}, nil
}

func (f *fakeAPI) DescribeSecret(ctx context.Context, in *secretsmanager.DescribeSecretInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.lookup(aws.ToString(in.SecretId))
	if s == nil {
		return nil, notFound()
	}
	m := map[string][]string{}
	for vid := range s.values {
		if st := f.stagesOf(s, vid); len(st) > 0 {
			m[vid] = st
		}
	}
	return &secretsmanager.DescribeSecretOutput{ARN: aws.String(s.arn), Name: aws.String(s.name), VersionIdsToStages: m}, nil
}

// syncBuffer is a log sink safe for concurrent use.
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

// testAgent is an agent serving on a loopback listener for one test.
type testAgent struct {
	*Agent
	url  string
	logs *syncBuffer
}

// startAgent runs an agent over api with cfg (DefaultConfig when nil) on
// 127.0.0.1:0 until the test ends.
func startAgent(t testing.TB, cfg *Config, api *fakeAPI, opts Options) *testAgent {
	t.Helper()
	if cfg == nil {
		cfg = DefaultConfig()
	}
	logs := &syncBuffer{}
	opts.API = api
	if opts.Token == "" {
		opts.Token = testToken
	}
	opts.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if opts.CommandOutput == nil {
		opts.CommandOutput = io.Discard
	}
	a, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		a.Close()
	})
	return &testAgent{Agent: a, url: "http://" + ln.Addr().String(), logs: logs}
}

var testHTTP = &http.Client{Timeout: 10 * time.Second}

// do sends one request and returns the status and the body.
func do(t testing.TB, method, url string, header map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := testHTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// get is an authorized GET.
func get(t testing.TB, url string) (int, string) {
	t.Helper()
	return do(t, http.MethodGet, url, map[string]string{"X-Aws-Parameters-Secrets-Token": testToken})
}

// waitFor polls cond every 5ms for up to 10s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func mustConfig(t testing.TB, toml string) *Config {
	t.Helper()
	cfg, err := ParseConfig(toml)
	if err != nil {
		t.Fatalf("ParseConfig: %v", err)
	}
	return cfg
}

func contains(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
