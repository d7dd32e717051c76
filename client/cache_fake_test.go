package client

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"
)

// fakeAPI stands in for the service: it keeps secrets with versions and
// staging labels, counts calls, and fails or blocks on demand.
type fakeAPI struct {
	mu        sync.Mutex
	secrets   map[string]*fakeSecret // by name
	nextVer   int
	getErr    error         // returned by GetSecretValue when set
	descErr   error         // returned by DescribeSecret when set
	gate      chan struct{} // when set, calls block until it is closed or ctx ends
	gets      int
	describes int
	inflight  int
	getIns    []secretsmanager.GetSecretValueInput
}

type fakeSecret struct {
	arn, name string
	values    map[string]string   // version id → value
	stages    map[string][]string // version id → stages
}

func newFakeAPI() *fakeAPI { return &fakeAPI{secrets: make(map[string]*fakeSecret)} }

func arnOf(name string) string {
	return "arn:aws:secretsmanager:us-east-1:000000000000:secret:" + name + "-AbCdEf"
}

// put stores a new AWSCURRENT version of name, as PutSecretValue does, and
// returns its version id.
func (f *fakeAPI) put(name, value string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.secrets[name]
	if s == nil {
		s = &fakeSecret{arn: arnOf(name), name: name, values: map[string]string{}, stages: map[string][]string{}}
		f.secrets[name] = s
	}
	f.nextVer++
	vid := fmt.Sprintf("v%d", f.nextVer)
	for v, st := range s.stages {
		st = slices.DeleteFunc(st, func(x string) bool { return x == "AWSPREVIOUS" })
		if i := slices.Index(st, "AWSCURRENT"); i >= 0 {
			st[i] = "AWSPREVIOUS"
		}
		s.stages[v] = st
	}
	s.values[vid] = value
	s.stages[vid] = []string{"AWSCURRENT"}
	return vid
}

func (f *fakeAPI) setErrs(get, describe error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.getErr, f.descErr = get, describe
}

// hold makes calls block until release.
func (f *fakeAPI) hold() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gate = make(chan struct{})
}

func (f *fakeAPI) release() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gate != nil {
		close(f.gate)
		f.gate = nil
	}
}

// counts returns the numbers of GetSecretValue and DescribeSecret calls.
func (f *fakeAPI) counts() (gets, describes int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gets, f.describes
}

func (f *fakeAPI) lastGet() secretsmanager.GetSecretValueInput {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.getIns[len(f.getIns)-1]
}

// enter counts a call and blocks while the gate is shut.
func (f *fakeAPI) enter(ctx context.Context, n *int) error {
	f.mu.Lock()
	*n++
	gate := f.gate
	f.inflight++
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inflight--
		f.mu.Unlock()
	}()
	if gate == nil {
		return ctx.Err()
	}
	select {
	case <-gate:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (f *fakeAPI) lookup(id string) *fakeSecret {
	for _, s := range f.secrets {
		if s.name == id || s.arn == id {
			return s
		}
	}
	return nil
}

func notFound() error {
	return &types.ResourceNotFoundException{Message: aws.String("Secrets Manager can't find the specified secret.")}
}

func (f *fakeAPI) GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	if err := f.enter(ctx, &f.gets); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.getIns = append(f.getIns, *in)
	if f.getErr != nil {
		return nil, f.getErr
	}
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
		vid = versionWithStage(s.stages, stage)
	}
	value, ok := s.values[vid]
	if !ok {
		return nil, notFound()
	}
	created := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	return &secretsmanager.GetSecretValueOutput{
		ARN:           aws.String(s.arn),
		Name:          aws.String(s.name),
		VersionId:     aws.String(vid),
		VersionStages: slices.Clone(s.stages[vid]),
		SecretString:  aws.String(value),
		CreatedDate:   &created,
	}, nil
}

func (f *fakeAPI) DescribeSecret(ctx context.Context, in *secretsmanager.DescribeSecretInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error) {
	if err := f.enter(ctx, &f.describes); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.descErr != nil {
		return nil, f.descErr
	}
	s := f.lookup(aws.ToString(in.SecretId))
	if s == nil {
		return nil, notFound()
	}
	v2s := make(map[string][]string, len(s.stages))
	for v, st := range s.stages {
		if len(st) > 0 {
			v2s[v] = slices.Clone(st)
		}
	}
	return &secretsmanager.DescribeSecretOutput{ARN: aws.String(s.arn), Name: aws.String(s.name), VersionIdsToStages: v2s}, nil
}

func apiError(code, msg string) error {
	return &smithy.GenericAPIError{Code: code, Message: msg}
}

// fakeClock is an injected clock that moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newTestCache returns a cache over api with a fixed jitter seed, closed
// when the test ends. A nil cfg.Now is given a fake clock, returned.
func newTestCache(t *testing.T, api API, cfg Config) (*Cache, *fakeClock) {
	t.Helper()
	clk := newFakeClock()
	if cfg.Now == nil {
		cfg.Now = clk.Now
	}
	c := newCache(api, cfg, rand.NewPCG(1, 2))
	t.Cleanup(func() { c.Close() })
	return c, clk
}

// settle waits until no fetch is under way in c.
func settle(c *Cache) {
	for {
		c.mu.Lock()
		var fs []*flight
		for _, f := range c.flights {
			fs = append(fs, f)
		}
		c.mu.Unlock()
		if len(fs) == 0 {
			return
		}
		for _, f := range fs {
			<-f.done
		}
	}
}

// mustGet reads id and fails the test on error.
func mustGet(t *testing.T, c *Cache, id string) *Secret {
	t.Helper()
	s, err := c.Get(t.Context(), id)
	if err != nil {
		t.Fatalf("Get(%q): %v", id, err)
	}
	return s
}

// fixed is a Config without jitter or refresh ahead, so entries expire at
// exactly TTL.
func fixed(ttl time.Duration) Config {
	return Config{TTL: ttl, Jitter: -1, RefreshAhead: -1}
}
