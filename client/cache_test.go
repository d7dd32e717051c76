package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

func TestDefaults(t *testing.T) {
	c := New(newFakeAPI(), Config{})
	defer c.Close()
	if c.ttl != DefaultTTL || c.jitter != DefaultJitter || c.refreshAhead != DefaultRefreshAhead ||
		c.maxEntries != DefaultMaxEntries || c.maxStale != DefaultMaxStale {
		t.Errorf("defaults: ttl %v jitter %v refreshAhead %v maxEntries %d maxStale %v",
			c.ttl, c.jitter, c.refreshAhead, c.maxEntries, c.maxStale)
	}
	d := New(newFakeAPI(), Config{Jitter: -1, RefreshAhead: -1, MaxStale: -1})
	defer d.Close()
	if d.jitter != 0 || d.refreshAhead != 0 || d.maxStale != 0 {
		t.Errorf("negative values: jitter %v refreshAhead %v maxStale %v, want all off", d.jitter, d.refreshAhead, d.maxStale)
	}
}

func TestTTLExpiry(t *testing.T) {
	api := newFakeAPI()
	api.put("app/db", "one")
	c, clk := newTestCache(t, api, fixed(100*time.Second))

	steps := []struct {
		name          string
		advance       time.Duration
		put           string // a new value stored before the read
		want          string
		wantGets      int
		wantDescribes int
	}{
		{name: "miss", want: "one", wantGets: 1},
		{name: "hit", advance: 50 * time.Second, want: "one", wantGets: 1},
		{name: "last instant", advance: 49*time.Second + 999*time.Millisecond, put: "two", want: "one", wantGets: 1},
		{name: "expired, moved", advance: time.Millisecond, want: "two", wantGets: 2, wantDescribes: 1},
		{name: "hit after refresh", advance: 99 * time.Second, want: "two", wantGets: 2, wantDescribes: 1},
		{name: "expired, unchanged", advance: time.Second, want: "two", wantGets: 2, wantDescribes: 2},
	}
	for _, st := range steps {
		clk.Advance(st.advance)
		if st.put != "" {
			api.put("app/db", st.put)
		}
		got := mustGet(t, c, "app/db")
		gets, describes := api.counts()
		if got.SecretString != st.want || gets != st.wantGets || describes != st.wantDescribes {
			t.Errorf("%s: got %q, %d gets, %d describes; want %q, %d, %d",
				st.name, got.SecretString, gets, describes, st.want, st.wantGets, st.wantDescribes)
		}
	}
}

func TestJitterBounds(t *testing.T) {
	const n = 1000
	api := newFakeAPI()
	for i := range n {
		api.put(fmt.Sprintf("s%d", i), "x")
	}
	ttls := func(seed uint64) []time.Duration {
		c := newCache(api, Config{TTL: 100 * time.Second, Jitter: 0.2, MaxEntries: n}, rand.NewPCG(seed, seed))
		defer c.Close()
		var out []time.Duration
		for i := range n {
			id := fmt.Sprintf("s%d", i)
			mustGet(t, c, id)
			e := c.entries[key{id, DefaultStage}]
			out = append(out, e.ttl)
			if got, want := e.refreshAt.Sub(e.expires.Add(-e.ttl)), time.Duration(0.75*float64(e.ttl)); got != want {
				t.Fatalf("%s: refresh ahead after %v, want %v", id, got, want)
			}
		}
		return out
	}
	got := ttls(1)
	lo, hi := slices.Min(got), slices.Max(got)
	if lo < 80*time.Second || hi > 100*time.Second {
		t.Errorf("TTLs in [%v, %v], want within [80s, 100s]", lo, hi)
	}
	if lo > 81*time.Second || hi < 99*time.Second {
		t.Errorf("TTLs in [%v, %v], want spread over most of [80s, 100s]", lo, hi)
	}
	if !slices.Equal(got, ttls(1)) {
		t.Error("same seed drew different TTLs")
	}
	if slices.Equal(got, ttls(2)) {
		t.Error("different seeds drew the same TTLs")
	}
}

func TestRefreshAhead(t *testing.T) {
	api := newFakeAPI()
	api.put("app/db", "one")
	c, clk := newTestCache(t, api, Config{TTL: 100 * time.Second, Jitter: -1, RefreshAhead: 0.75})

	mustGet(t, c, "app/db")
	vid := api.put("app/db", "two")
	clk.Advance(74 * time.Second)
	if got := mustGet(t, c, "app/db").SecretString; got != "one" {
		t.Fatalf("before refresh-ahead point: got %q, want one", got)
	}
	if gets, describes := api.counts(); gets != 1 || describes != 0 {
		t.Fatalf("before refresh-ahead point: %d gets, %d describes; want 1, 0", gets, describes)
	}

	clk.Advance(time.Second)
	api.hold()
	for range 5 {
		if got := mustGet(t, c, "app/db").SecretString; got != "one" {
			t.Fatalf("during refresh: got %q, want the cached one", got)
		}
	}
	api.release()
	settle(c)
	if gets, describes := api.counts(); gets != 2 || describes != 1 {
		t.Errorf("after 5 reads in the refresh window: %d gets, %d describes; want 2, 1 (one refresh)", gets, describes)
	}
	got := mustGet(t, c, "app/db")
	if got.SecretString != "two" || got.VersionID != vid {
		t.Errorf("after refresh: got %q %s, want two %s", got.SecretString, got.VersionID, vid)
	}
	if gets, _ := api.counts(); gets != 2 {
		t.Errorf("read after refresh went to the service: %d gets", gets)
	}
}

func TestSingleflightMiss(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := newFakeAPI()
		api.put("app/db", "one")
		c, _ := newTestCache(t, api, Config{})
		api.hold()

		const n = 100
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for range n {
			wg.Go(func() {
				s, err := c.Get(context.Background(), "app/db")
				if err == nil && s.SecretString != "one" {
					err = fmt.Errorf("got %q", s.SecretString)
				}
				errs <- err
			})
		}
		synctest.Wait() // all 100 are waiting
		api.release()
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if gets, describes := api.counts(); gets != 1 || describes != 0 {
			t.Errorf("%d concurrent misses: %d gets, %d describes; want 1, 0", n, gets, describes)
		}
	})
}

func TestWaiterCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := newFakeAPI()
		api.put("app/db", "one")
		c, _ := newTestCache(t, api, Config{})
		api.hold()

		ctx, cancel := context.WithCancel(context.Background())
		var err1, err2 error
		var s2 *Secret
		var wg sync.WaitGroup
		wg.Go(func() { _, err1 = c.Get(ctx, "app/db") })
		wg.Go(func() { s2, err2 = c.Get(context.Background(), "app/db") })
		synctest.Wait()
		cancel()
		synctest.Wait()
		if !errors.Is(err1, context.Canceled) {
			t.Errorf("cancelled waiter: err %v, want context.Canceled", err1)
		}
		api.release()
		wg.Wait()
		if err2 != nil || s2.SecretString != "one" {
			t.Errorf("other waiter: %v, %v; want one", s2, err2)
		}
		if gets, _ := api.counts(); gets != 1 {
			t.Errorf("%d gets, want 1", gets)
		}
	})
}

func TestFetchTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := newFakeAPI()
		api.put("app/db", "one")
		c, _ := newTestCache(t, api, Config{})
		api.hold()
		defer api.release()

		start := time.Now()
		_, err := c.Get(context.Background(), "app/db")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err %v, want context.DeadlineExceeded", err)
		}
		if waited := time.Since(start); waited != defaultFetchTimeout {
			t.Errorf("waited %v, want the fetch timeout %v", waited, defaultFetchTimeout)
		}
	})
}

func TestVersionAwareRefresh(t *testing.T) {
	tests := []struct {
		name          string
		moved         bool
		describeErr   error
		wantGets      int
		wantDescribes int
	}{
		{name: "unchanged: describe only", wantGets: 1, wantDescribes: 1},
		{name: "moved: fetch by version id", moved: true, wantGets: 2, wantDescribes: 1},
		{name: "describe denied: fetch by stage", moved: true, describeErr: apiError("AccessDeniedException", "not allowed"), wantGets: 2, wantDescribes: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := newFakeAPI()
			v1 := api.put("app/db", "one")
			c, clk := newTestCache(t, api, fixed(100*time.Second))
			mustGet(t, c, "app/db")
			want, wantVID := "one", v1
			if tt.moved {
				want, wantVID = "two", api.put("app/db", "two")
			}
			api.setErrs(nil, tt.describeErr)
			clk.Advance(100 * time.Second)

			got := mustGet(t, c, "app/db")
			if got.SecretString != want || got.VersionID != wantVID {
				t.Errorf("got %q %s, want %q %s", got.SecretString, got.VersionID, want, wantVID)
			}
			gets, describes := api.counts()
			if gets != tt.wantGets || describes != tt.wantDescribes {
				t.Errorf("%d gets, %d describes; want %d, %d", gets, describes, tt.wantGets, tt.wantDescribes)
			}
			if gets < 2 {
				return
			}
			in := api.lastGet()
			switch {
			case tt.describeErr != nil:
				if aws.ToString(in.VersionStage) != DefaultStage || in.VersionId != nil {
					t.Errorf("fallback fetched VersionStage %q VersionId %q, want by stage", aws.ToString(in.VersionStage), aws.ToString(in.VersionId))
				}
				// Denied once: later refreshes skip DescribeSecret.
				clk.Advance(100 * time.Second)
				mustGet(t, c, "app/db")
				if gets, describes := api.counts(); gets != 3 || describes != 1 {
					t.Errorf("next refresh: %d gets, %d describes; want 3, 1", gets, describes)
				}
			default:
				if aws.ToString(in.VersionId) != wantVID || in.VersionStage != nil {
					t.Errorf("fetched VersionId %q VersionStage %q, want by version id %s", aws.ToString(in.VersionId), aws.ToString(in.VersionStage), wantVID)
				}
			}
		})
	}
}

func TestVersionStagesFollowDescribe(t *testing.T) {
	api := newFakeAPI()
	api.put("app/db", "one")
	c, clk := newTestCache(t, api, fixed(100*time.Second))
	mustGet(t, c, "app/db")
	api.mu.Lock()
	api.secrets["app/db"].stages["v1"] = []string{"AWSCURRENT", "blue"}
	api.mu.Unlock()
	clk.Advance(100 * time.Second)
	if got := mustGet(t, c, "app/db").VersionStages; !slices.Equal(got, []string{"AWSCURRENT", "blue"}) {
		t.Errorf("stages %v, want those DescribeSecret reported", got)
	}
	if gets, _ := api.counts(); gets != 1 {
		t.Errorf("%d gets, want 1", gets)
	}
}

func TestStaleOnError(t *testing.T) {
	throttled := apiError("ThrottlingException", "rate exceeded")
	api := newFakeAPI()
	api.put("app/db", "one")
	cfg := fixed(100 * time.Second)
	cfg.MaxStale = 60 * time.Second
	c, clk := newTestCache(t, api, cfg)
	mustGet(t, c, "app/db")
	start := clk.Now()
	api.setErrs(throttled, throttled)

	// Times are from the first fetch; the entry expires at 100s and may be
	// served stale until 160s. Retries back off 1s, 2s, 4s, 8s, 16s.
	steps := []struct {
		at            time.Duration
		recover       bool
		wantErr       bool
		wantDescribes int
	}{
		{at: 100 * time.Second, wantDescribes: 1},                // expired: refresh fails, stale served; retry at 101
		{at: 100 * time.Second, wantDescribes: 1},                // backing off
		{at: 101 * time.Second, wantDescribes: 2},                // retried behind the stale value; next at 103
		{at: 102 * time.Second, wantDescribes: 2},                // backing off
		{at: 103 * time.Second, wantDescribes: 3},                // next at 107
		{at: 106 * time.Second, wantDescribes: 3},                // backing off
		{at: 107 * time.Second, wantDescribes: 4},                // next at 115
		{at: 159 * time.Second, wantDescribes: 5},                // last stale read; next at 175
		{at: 160 * time.Second, wantErr: true, wantDescribes: 6}, // beyond MaxStale: waits for a fetch, which fails
		{at: 160 * time.Second, wantErr: true, wantDescribes: 7}, // and again: nothing else to answer with
		{at: 200 * time.Second, recover: true, wantDescribes: 8}, // service back
		{at: 201 * time.Second, wantDescribes: 8},                // fresh again
	}
	for _, st := range steps {
		clk.Advance(start.Add(st.at).Sub(clk.Now()))
		if st.recover {
			api.setErrs(nil, nil)
		}
		s, err := c.Get(t.Context(), "app/db")
		settle(c)
		_, describes := api.counts()
		switch {
		case st.wantErr && errorCode(err) != "ThrottlingException":
			t.Errorf("at %v: err %v, want the throttling error", st.at, err)
		case !st.wantErr && (err != nil || s.SecretString != "one"):
			t.Errorf("at %v: %v, %v; want the cached value", st.at, s, err)
		}
		if describes != st.wantDescribes {
			t.Errorf("at %v: %d describes, want %d", st.at, describes, st.wantDescribes)
		}
	}
}

func TestStaleDisabled(t *testing.T) {
	api := newFakeAPI()
	api.put("app/db", "one")
	cfg := fixed(100 * time.Second)
	cfg.MaxStale = -1
	c, clk := newTestCache(t, api, cfg)
	mustGet(t, c, "app/db")
	api.setErrs(nil, apiError("ThrottlingException", "rate exceeded"))
	clk.Advance(100 * time.Second)
	if s, err := c.Get(t.Context(), "app/db"); err == nil {
		t.Errorf("got %v with MaxStale off, want the error", s)
	}
}

func TestBackoff(t *testing.T) {
	c, _ := newTestCache(t, newFakeAPI(), fixed(100*time.Second))
	want := []time.Duration{1, 2, 4, 8, 16, 32, 64, 100, 100}
	for i, w := range want {
		if got := c.backoff(i + 1); got != w*time.Second {
			t.Errorf("backoff after %d failures: %v, want %v", i+1, got, w*time.Second)
		}
	}
	if got := c.backoff(1000); got != 100*time.Second {
		t.Errorf("backoff after 1000 failures: %v, want the TTL", got)
	}
}

func TestGoneDropsEntry(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		wantGone bool
	}{
		{"not found", notFound(), true},
		{"marked for deletion", &types.InvalidRequestException{Message: aws.String("You can't perform this operation on the secret because it was marked for deletion.")}, true},
		{"access denied", apiError("AccessDeniedException", "not authorized"), true},
		{"other invalid request", &types.InvalidRequestException{Message: aws.String("something else")}, false},
		{"internal error", &types.InternalServiceError{Message: aws.String("oops")}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := newFakeAPI()
			api.put("app/db", "one")
			c, clk := newTestCache(t, api, fixed(100*time.Second))
			mustGet(t, c, "app/db")
			api.setErrs(tt.err, tt.err)
			clk.Advance(100 * time.Second) // expired, well within MaxStale

			s, err := c.Get(t.Context(), "app/db")
			if tt.wantGone {
				if !errors.Is(err, tt.err) || c.Len() != 0 {
					t.Errorf("got %v, %v, %d entries; want the error and no entry", s, err, c.Len())
				}
				return
			}
			if err != nil || s.SecretString != "one" || c.Len() != 1 {
				t.Errorf("got %v, %v, %d entries; want the stale value", s, err, c.Len())
			}
		})
	}
}

func TestGoneDuringRefreshAhead(t *testing.T) {
	api := newFakeAPI()
	api.put("app/db", "one")
	c, clk := newTestCache(t, api, Config{TTL: 100 * time.Second, Jitter: -1})
	mustGet(t, c, "app/db")
	api.setErrs(notFound(), notFound())
	clk.Advance(80 * time.Second)
	mustGet(t, c, "app/db") // cached, refresh behind
	settle(c)
	if _, err := c.Get(t.Context(), "app/db"); !errors.As(err, new(*types.ResourceNotFoundException)) {
		t.Errorf("after the secret vanished: err %v, want ResourceNotFoundException", err)
	}
}

func TestLRUEviction(t *testing.T) {
	tests := []struct {
		name  string
		reads []string
		want  []string
	}{
		{"oldest goes", []string{"a", "b", "c", "d"}, []string{"b", "c", "d"}},
		{"a hit makes it young", []string{"a", "b", "c", "a", "d"}, []string{"a", "c", "d"}},
		{"repeated hits", []string{"a", "b", "c", "b", "b", "a", "d", "e"}, []string{"a", "d", "e"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := newFakeAPI()
			for _, id := range []string{"a", "b", "c", "d", "e"} {
				api.put(id, "value of "+id)
			}
			cfg := fixed(time.Hour)
			cfg.MaxEntries = 3
			c, _ := newTestCache(t, api, cfg)
			for _, id := range tt.reads {
				mustGet(t, c, id)
			}
			var got []string
			for k := range c.entries {
				got = append(got, k.id)
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("cached %v, want %v", got, tt.want)
			}
			known := map[string]bool{}
			for _, id := range tt.want {
				known[id], known[arnOf(id)] = true, true
			}
			for id := range c.ids {
				if !known[id] {
					t.Errorf("index still holds evicted %q", id)
				}
			}
		})
	}
}

func TestInvalidate(t *testing.T) {
	type read struct{ id, stage string }
	tests := []struct {
		name       string
		reads      []read
		invalidate string
		wantLeft   int
		wantFetch  bool // whether reading reads[0] again goes to the service
	}{
		{"by the id used", []read{{"app/db", ""}}, "app/db", 0, true},
		{"by ARN, cached by name", []read{{"app/db", ""}}, arnOf("app/db"), 0, true},
		{"by name, cached by ARN", []read{{arnOf("app/db"), ""}}, "app/db", 0, true},
		{"every stage and alias", []read{{"app/db", ""}, {"app/db", "AWSPREVIOUS"}, {arnOf("app/db"), ""}}, arnOf("app/db"), 0, true},
		{"other secrets stay", []read{{"other", ""}, {"app/db", ""}}, "app/db", 1, false},
		{"unknown id", []read{{"app/db", ""}}, "nope", 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := newFakeAPI()
			api.put("app/db", "one")
			api.put("app/db", "two")
			api.put("other", "x")
			c, _ := newTestCache(t, api, fixed(time.Hour))
			for _, r := range tt.reads {
				if _, err := c.GetStage(t.Context(), r.id, r.stage); err != nil {
					t.Fatal(err)
				}
			}
			c.Invalidate(tt.invalidate)
			if c.Len() != tt.wantLeft {
				t.Errorf("%d entries left, want %d", c.Len(), tt.wantLeft)
			}
			before, _ := api.counts()
			mustGet(t, c, tt.reads[0].id)
			after, _ := api.counts()
			if (after > before) != tt.wantFetch {
				t.Errorf("next read fetched: %v, want %v", after > before, tt.wantFetch)
			}
		})
	}
}

func TestInvalidateDuringFetch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := newFakeAPI()
		api.put("app/db", "one")
		c, _ := newTestCache(t, api, Config{})
		api.hold()
		var wg sync.WaitGroup
		wg.Go(func() { c.Get(context.Background(), "app/db") })
		synctest.Wait()
		c.Invalidate("app/db")
		api.release()
		wg.Wait()
		if c.Len() != 0 {
			t.Errorf("a fetch begun before Invalidate was cached")
		}
	})
}

func TestRefreshNow(t *testing.T) {
	api := newFakeAPI()
	api.put("app/db", "one")
	c, _ := newTestCache(t, api, fixed(time.Hour))
	mustGet(t, c, "app/db")
	if _, err := c.GetStage(t.Context(), "app/db", "AWSPREVIOUS"); err == nil {
		t.Fatal("AWSPREVIOUS of a one-version secret: want an error")
	}
	mustGet(t, c, arnOf("app/db"))
	v2 := api.put("app/db", "two")
	if _, err := c.GetStage(t.Context(), "app/db", "AWSPREVIOUS"); err != nil {
		t.Fatal(err)
	}
	gets0, _ := api.counts()

	s, err := c.RefreshNow(t.Context(), "app/db")
	if err != nil || s.SecretString != "two" || s.VersionID != v2 {
		t.Fatalf("RefreshNow: %v, %v; want two %s", s, err, v2)
	}
	gets, describes := api.counts()
	if gets != gets0+1 || describes != 0 {
		t.Errorf("RefreshNow: %d gets, %d describes; want %d, 0", gets, describes, gets0+1)
	}
	if in := api.lastGet(); aws.ToString(in.VersionStage) != DefaultStage {
		t.Errorf("RefreshNow fetched %+v, want by AWSCURRENT", in)
	}
	for _, id := range []string{"app/db", arnOf("app/db")} {
		if got := mustGet(t, c, id).SecretString; got != "two" {
			t.Errorf("Get(%s) after RefreshNow: %q, want two", id, got)
		}
	}
	if _, ok := c.entries[key{"app/db", "AWSPREVIOUS"}]; ok {
		t.Error("AWSPREVIOUS entry kept after RefreshNow saw a new version")
	}
	if g, _ := api.counts(); g != gets {
		t.Errorf("reads after RefreshNow went to the service")
	}

	api.setErrs(apiError("ThrottlingException", "rate exceeded"), nil)
	if s, err := c.RefreshNow(t.Context(), "app/db"); err == nil {
		t.Errorf("RefreshNow with the service failing: %v, want the error", s)
	}
	if got := mustGet(t, c, "app/db").SecretString; got != "two" {
		t.Errorf("failed RefreshNow changed the entry: %q", got)
	}
}

func TestRefreshNowSingleflight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := newFakeAPI()
		api.put("app/db", "one")
		c, _ := newTestCache(t, api, Config{})
		if _, err := c.Get(context.Background(), "app/db"); err != nil {
			t.Fatal(err)
		}
		api.put("app/db", "two")
		api.hold()
		const n = 20
		var wg sync.WaitGroup
		got := make([]string, n)
		for i := range n {
			wg.Go(func() {
				if s, err := c.RefreshNow(context.Background(), "app/db"); err == nil {
					got[i] = s.SecretString
				}
			})
		}
		synctest.Wait()
		api.release()
		wg.Wait()
		for i, g := range got {
			if g != "two" {
				t.Fatalf("caller %d got %q, want two", i, g)
			}
		}
		if gets, _ := api.counts(); gets != 2 {
			t.Errorf("%d gets, want 2 (the first read and one refresh)", gets)
		}
	})
}

func TestRefreshNowSupersedesRefresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := newFakeAPI()
		api.put("app/db", "one")
		c, clk := newTestCache(t, api, Config{TTL: 100 * time.Second, Jitter: -1})
		if _, err := c.Get(context.Background(), "app/db"); err != nil {
			t.Fatal(err)
		}
		clk.Advance(80 * time.Second)
		api.hold()
		c.Get(context.Background(), "app/db") // starts a background refresh, held
		synctest.Wait()
		api.put("app/db", "two")
		var s *Secret
		var wg sync.WaitGroup
		wg.Go(func() { s, _ = c.RefreshNow(context.Background(), "app/db") })
		synctest.Wait()
		api.release()
		wg.Wait()
		if s == nil || s.SecretString != "two" {
			t.Errorf("RefreshNow joined an older refresh: got %v", s)
		}
	})
}

func TestClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := newFakeAPI()
		api.put("a", "one")
		api.put("b", "two")
		c, clk := newTestCache(t, api, Config{TTL: 100 * time.Second, Jitter: -1})
		if _, err := c.Get(context.Background(), "a"); err != nil {
			t.Fatal(err)
		}
		clk.Advance(80 * time.Second)
		api.hold()
		defer api.release()
		c.Get(context.Background(), "a") // background refresh, held
		var werr error
		var wg sync.WaitGroup
		wg.Go(func() { _, werr = c.Get(context.Background(), "b") }) // a waiting miss
		synctest.Wait()

		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		if !errors.Is(werr, ErrClosed) {
			t.Errorf("read waiting during Close: %v, want ErrClosed", werr)
		}
		api.mu.Lock()
		inflight := api.inflight
		api.mu.Unlock()
		if inflight != 0 || len(c.flights) != 0 {
			t.Errorf("after Close: %d calls in the service, %d fetches; want none", inflight, len(c.flights))
		}
		if _, err := c.Get(context.Background(), "a"); !errors.Is(err, ErrClosed) {
			t.Errorf("Get after Close: %v, want ErrClosed", err)
		}
		if _, err := c.RefreshNow(context.Background(), "a"); !errors.Is(err, ErrClosed) {
			t.Errorf("RefreshNow after Close: %v, want ErrClosed", err)
		}
		if err := c.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		// synctest.Test fails if any goroutine of the bubble is left.
	})
}

func TestGetArguments(t *testing.T) {
	api := newFakeAPI()
	api.put("app/db", "one")
	c, _ := newTestCache(t, api, Config{})
	if _, err := c.Get(t.Context(), ""); err == nil {
		t.Error("empty id: want an error")
	}
	if _, err := c.RefreshNow(t.Context(), ""); err == nil {
		t.Error("RefreshNow of empty id: want an error")
	}
	a, err := c.GetStage(t.Context(), "app/db", "")
	if err != nil {
		t.Fatal(err)
	}
	if b := mustGet(t, c, "app/db"); a != b {
		t.Error(`stage "" is not the AWSCURRENT entry`)
	}
	if s, err := c.GetString(t.Context(), "app/db"); s != "one" || err != nil {
		t.Errorf("GetString: %q, %v", s, err)
	}
	if _, err := c.Get(t.Context(), "missing"); !errors.As(err, new(*types.ResourceNotFoundException)) {
		t.Errorf("missing secret: %v, want ResourceNotFoundException", err)
	}
}

func TestSecretRedacts(t *testing.T) {
	const value = "hunter2-very-secret"
	s := &Secret{ARN: arnOf("app/db"), Name: "app/db", VersionID: "v1", VersionStages: []string{"AWSCURRENT"},
		SecretString: value, SecretBinary: []byte(value)}
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		outs = append(outs, fmt.Sprintf(verb, s), fmt.Sprintf(verb, *s))
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	log.Info("m", "secret", s, "value", *s)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("m", "secret", s)
	outs = append(outs, logs.String())
	for _, v := range []any{s, *s} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, string(b))
	}
	for _, out := range outs {
		if strings.Contains(out, value) || strings.Contains(out, fmt.Sprint([]byte(value))[1:10]) ||
			strings.Contains(out, fmt.Sprintf("%x", value)) {
			t.Errorf("value leaked: %s", out)
		}
		if !strings.Contains(out, "REDACTED") {
			t.Errorf("no redaction marker: %s", out)
		}
	}
	var nilSecret *Secret
	if got := fmt.Sprint(nilSecret); got != "<nil>" {
		t.Errorf("nil secret printed %q", got)
	}
}

// BenchmarkGetHit measures a read answered from memory.
func BenchmarkGetHit(b *testing.B) {
	api := newFakeAPI()
	api.put("app/db", "one")
	c := New(api, Config{TTL: time.Hour})
	defer c.Close()
	ctx := context.Background()
	if _, err := c.Get(ctx, "app/db"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Get(ctx, "app/db"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetHitParallel measures reads answered from memory by many
// goroutines, spread over a few secrets.
func BenchmarkGetHitParallel(b *testing.B) {
	api := newFakeAPI()
	ids := []string{"a", "b", "c", "d"}
	for _, id := range ids {
		api.put(id, "value")
	}
	c := New(api, Config{TTL: time.Hour})
	defer c.Close()
	ctx := context.Background()
	for _, id := range ids {
		if _, err := c.Get(ctx, id); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := c.Get(ctx, ids[i%len(ids)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}
