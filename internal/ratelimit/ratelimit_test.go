package ratelimit

import (
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clock is a settable clock, safe for concurrent use.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestBurstThenDeny(t *testing.T) {
	c := newClock()
	l := New(1, 3, c.now)
	for i := range 3 {
		if ok, ra := l.Allow("AKIDEXAMPLE"); !ok || ra != 0 {
			t.Fatalf("request %d: Allow = %v, %v; want true, 0", i+1, ok, ra)
		}
	}
	ok, ra := l.Allow("AKIDEXAMPLE")
	if ok || ra != time.Second {
		t.Errorf("request 4: Allow = %v, %v; want false, 1s", ok, ra)
	}
	// A refused request takes nothing: still 1 s to wait.
	if ok, ra := l.Allow("AKIDEXAMPLE"); ok || ra != time.Second {
		t.Errorf("request 5: Allow = %v, %v; want false, 1s", ok, ra)
	}
	// Buckets are per key.
	if ok, _ := l.Allow("AKIDOTHER"); !ok {
		t.Error("another key was refused")
	}
}

func TestRetryAfter(t *testing.T) {
	tests := []struct {
		name  string
		rate  float64
		burst int
		first time.Duration // retryAfter right after the burst
	}{
		{"10/s", 10, 5, 100 * time.Millisecond},
		{"3/s", 3, 2, 333333334 * time.Nanosecond}, // ceil(1e9/3)
		{"1/min", 1.0 / 60, 1, time.Minute},
		{"0.7/s", 0.7, 4, 1428571429 * time.Nanosecond}, // ceil(1e9/0.7)
		{"1e6/s", 1e6, 100, time.Microsecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock()
			l := New(tt.rate, tt.burst, c.now)
			for range tt.burst {
				l.Allow("k")
			}
			for i := range 50 {
				ok, ra := l.Allow("k")
				if ok {
					t.Fatalf("step %d: allowed with an empty bucket", i)
				}
				if i == 0 && ra != tt.first {
					t.Errorf("retryAfter = %v, want %v", ra, tt.first)
				}
				// One nanosecond early is still too early ...
				c.advance(ra - 1)
				if ok, ra2 := l.Allow("k"); ok || ra2 != 1 {
					t.Fatalf("step %d: at retryAfter-1ns Allow = %v, %v; want false, 1ns", i, ok, ra2)
				}
				// ... and retryAfter is enough.
				c.advance(1)
				if ok, _ := l.Allow("k"); !ok {
					t.Fatalf("step %d: refused at retryAfter %v", i, ra)
				}
			}
		})
	}
}

// TestRefillRate checks that, under constant pressure, exactly
// burst + rate·T requests pass in T, with no drift from float rounding.
// (With burst 1 and ticks that miss the refill instants, a full bucket
// would waste the fraction of a token it cannot hold, as a token bucket
// should; the cases avoid that.)
func TestRefillRate(t *testing.T) {
	tests := []struct {
		rate  float64
		burst int
		step  time.Duration
		span  time.Duration
	}{
		{10, 5, 10 * time.Millisecond, 10 * time.Second},
		{3, 2, time.Millisecond, 10 * time.Second},
		{100, 20, 7 * time.Millisecond, 70 * time.Second},
		{0.5, 2, 100 * time.Millisecond, 10 * time.Minute},
		{1000, 1, 100 * time.Microsecond, 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("rate=%g,burst=%d", tt.rate, tt.burst), func(t *testing.T) {
			c := newClock()
			l := New(tt.rate, tt.burst, c.now)
			allowed := 0
			for elapsed := time.Duration(0); elapsed <= tt.span; elapsed += tt.step {
				// Several tries per tick: at most one more can pass.
				for range 3 {
					if ok, _ := l.Allow("k"); ok {
						allowed++
					}
				}
				c.advance(tt.step)
			}
			want := tt.burst + int(math.Round(tt.rate*tt.span.Seconds()))
			if allowed != want {
				t.Errorf("allowed %d in %v, want %d", allowed, tt.span, want)
			}
		})
	}
}

func TestRefillCappedAtBurst(t *testing.T) {
	c := newClock()
	l := New(10, 3, c.now)
	l.Allow("k")
	c.advance(time.Hour)
	allowed := 0
	for range 10 {
		if ok, _ := l.Allow("k"); ok {
			allowed++
		}
	}
	if allowed != 3 {
		t.Errorf("after an hour idle, %d allowed at once, want 3", allowed)
	}
}

func TestPartialRefill(t *testing.T) {
	c := newClock()
	l := New(2, 4, c.now) // one token per 500 ms
	for range 4 {
		l.Allow("k")
	}
	c.advance(1250 * time.Millisecond) // 2.5 tokens
	for i := range 2 {
		if ok, _ := l.Allow("k"); !ok {
			t.Fatalf("request %d refused after 1.25 s", i+1)
		}
	}
	if ok, ra := l.Allow("k"); ok || ra != 250*time.Millisecond {
		t.Errorf("third request: Allow = %v, %v; want false, 250ms", ok, ra)
	}
}

func TestDisabled(t *testing.T) {
	for _, rate := range []float64{0, -1, math.NaN(), math.Inf(1), math.Inf(-1)} {
		t.Run(fmt.Sprint(rate), func(t *testing.T) {
			l := New(rate, 1, nil)
			for range 1000 {
				if ok, ra := l.Allow("k"); !ok || ra != 0 {
					t.Fatalf("Allow = %v, %v; want true, 0", ok, ra)
				}
			}
			if n := l.size(); n != 0 {
				t.Errorf("disabled limiter holds %d buckets", n)
			}
		})
	}
}

func TestBurstBelowOne(t *testing.T) {
	c := newClock()
	l := New(1, 0, c.now)
	if ok, _ := l.Allow("k"); !ok {
		t.Error("first request refused with burst 0 (taken as 1)")
	}
	if ok, ra := l.Allow("k"); ok || ra != time.Second {
		t.Errorf("second request: Allow = %v, %v; want false, 1s", ok, ra)
	}
}

func TestClockStepsBack(t *testing.T) {
	c := newClock()
	l := New(1, 1, c.now)
	l.Allow("k")
	c.advance(-time.Hour)
	if ok, ra := l.Allow("k"); ok || ra <= 0 {
		t.Errorf("after the clock stepped back: Allow = %v, %v; want false, >0", ok, ra)
	}
}

func TestSlowRate(t *testing.T) {
	c := newClock()
	l := New(1e-12, 1, c.now)
	l.Allow("k")
	if ok, ra := l.Allow("k"); ok || ra != maxIdle {
		t.Errorf("Allow = %v, %v; want false, %v", ok, ra, maxIdle)
	}
}

func TestEviction(t *testing.T) {
	c := newClock()
	const rate, burst = 10, 20 // idle limit: 2 s + 1 min
	l := New(rate, burst, c.now)
	const keys = 100_000
	// 100 new keys per simulated second: about 6,200 are active within
	// any idle window.
	maxSize := 0
	for i := range keys {
		l.Allow(fmt.Sprintf("AKID%08d", i))
		c.advance(10 * time.Millisecond)
		maxSize = max(maxSize, l.size())
	}
	active := int((l.idle + time.Second) / (10 * time.Millisecond))
	if maxSize > 2*active+minSweep {
		t.Errorf("map grew to %d buckets, want at most %d", maxSize, 2*active+minSweep)
	}
	t.Logf("max buckets %d for %d keys (%d active per idle window)", maxSize, keys, active)

	// Once everything is idle, one round of calls empties the map.
	c.advance(l.idle + time.Second)
	for range maxSize {
		l.Allow("AKIDLAST")
	}
	if n := l.size(); n != 1 {
		t.Errorf("after all keys went idle: %d buckets, want 1", n)
	}
}

func TestEvictionKeepsState(t *testing.T) {
	c := newClock()
	l := New(1, 2, c.now)
	l.Allow("busy")
	l.Allow("busy")
	// Many other keys force sweeps while "busy" is empty and not idle.
	for i := range 1000 {
		l.Allow(fmt.Sprint(i))
	}
	if ok, _ := l.Allow("busy"); ok {
		t.Error("a sweep dropped a bucket that was not full")
	}
}

func TestConcurrentAllow(t *testing.T) {
	c := newClock()
	const burst = 100
	l := New(1, burst, c.now)
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 200 {
				if ok, _ := l.Allow("shared"); ok {
					allowed.Add(1)
				}
				l.Allow(fmt.Sprintf("own-%d-%d", g, i%10))
			}
		})
	}
	wg.Wait()
	// The clock did not move: exactly the burst passed.
	if got := allowed.Load(); got != burst {
		t.Errorf("allowed %d concurrent requests, want %d", got, burst)
	}
}

func BenchmarkAllow(b *testing.B) {
	for _, keys := range []int{1, 1000} {
		b.Run(fmt.Sprintf("keys=%d", keys), func(b *testing.B) {
			names := make([]string, keys)
			for i := range names {
				names[i] = fmt.Sprintf("AKID%016d", i)
			}
			l := New(1e9, 1000, time.Now)
			var next atomic.Uint64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := int(next.Add(1))
				for pb.Next() {
					l.Allow(names[i%keys])
					i++
				}
			})
		})
	}
}
