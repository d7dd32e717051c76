// Package ratelimit limits requests per key (an access key id) with token
// buckets.
//
// Each key has a bucket of capacity burst that refills continuously at
// rate tokens per second and starts full; a request takes one token or is
// refused with the time until one is available. Time comes only from the
// clock given to New, so callers and tests control it; a clock that steps
// back refills nothing until it catches up. The arithmetic does not drift:
// a bucket counts tokens taken since it was last full rather than adding
// float refills, so under steady pressure exactly burst + rate·T requests
// pass in T.
//
// One mutex guards all buckets: a sharded variant measured no faster on
// the benchmark (Allow costs about 100 ns either way).
//
// Memory is bounded by the keys active recently, not by every key ever
// seen: a bucket idle for longer than burst/rate plus one minute is full
// again, so dropping it changes nothing, and such buckets are swept out.
// The sweep is amortised: it runs once the calls since the last sweep
// reach the number of buckets the last sweep left (at least 64), so it
// costs O(1) per call, and the map never holds more than about twice the
// keys active within that idle window (plus 64).
//
// A Limiter is safe for concurrent use.
package ratelimit

import (
	"math"
	"sync"
	"time"
)

// idleMargin is added to the refill time of a whole bucket before an idle
// bucket may be dropped.
const idleMargin = time.Minute

// minSweep is the fewest calls between sweeps, so that a small map is
// not walked on every call.
const minSweep = 64

// maxIdle caps the idle time for very slow rates, where burst/rate would
// overflow a time.Duration.
const maxIdle = 100 * 365 * 24 * time.Hour

// Limiter is a set of per-key token buckets.
// The zero value is not usable; call New.
type Limiter struct {
	rate  float64 // tokens per second; 0 when disabled
	burst float64
	idle  time.Duration
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]bucket
	calls   int // since the last sweep
	swept   int // len(buckets) after the last sweep
}

// bucket is one key's state. Rather than a running token count, which
// would gather float rounding with every refill, it holds the tokens taken
// since base: available = burst - taken + (now-base)·rate, computed afresh
// each time with one rounding. Whenever the bucket is full, base moves to
// now and taken to 0.
type bucket struct {
	base  time.Time
	taken int64
	last  time.Time // last call, for eviction
}

// New returns a Limiter whose buckets hold burst tokens and refill at rate
// tokens per second. A rate that is not a positive finite number disables
// limiting: Allow always succeeds. A burst below 1 is taken as 1. now is
// the clock; nil means time.Now.
func New(rate float64, burst int, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	l := &Limiter{now: now}
	if !(rate > 0) || math.IsInf(rate, 1) {
		return l
	}
	l.rate = rate
	l.burst = float64(max(burst, 1))
	if full := l.burst / rate; full >= maxIdle.Seconds() {
		l.idle = maxIdle
	} else {
		l.idle = time.Duration(full*float64(time.Second)) + idleMargin
	}
	l.buckets = make(map[string]bucket)
	return l
}

// Allow takes a token from key's bucket. If none is available it returns
// false and how long until one will be (always positive); a call at
// now+retryAfter succeeds if no other call for key comes first.
func (l *Limiter) Allow(key string) (ok bool, retryAfter time.Duration) {
	if l.rate == 0 {
		return true, 0
	}
	now := l.now()

	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls++
	if l.calls >= max(l.swept, minSweep) {
		l.sweep(now)
	}
	b, found := l.buckets[key]
	// A clock that steps back before base refills nothing.
	elapsed := max(now.Sub(b.base), 0)
	if !found || l.available(b.taken, elapsed) >= l.burst {
		b.base, b.taken, elapsed = now, 0, 0
	}
	b.last = now
	if l.available(b.taken, elapsed) >= 1 {
		b.taken++
		l.buckets[key] = b
		return true, 0
	}
	l.buckets[key] = b
	return false, l.wait(b.taken, elapsed)
}

// available returns the tokens in a bucket elapsed after its base, before
// the cap at burst.
func (l *Limiter) available(taken int64, elapsed time.Duration) float64 {
	return l.burst - float64(taken) + float64(elapsed)*l.rate/float64(time.Second)
}

// wait returns the shortest d such that available(taken, elapsed+d) >= 1.
// The estimate is rounded up and then corrected by a few nanoseconds
// against available itself, so that the promise of Allow holds whatever
// the float rounding. (The correction is bounded: at rates so slow that a
// nanosecond is below float resolution it could otherwise spin.)
func (l *Limiter) wait(taken int64, elapsed time.Duration) time.Duration {
	need := (1-l.burst+float64(taken))*float64(time.Second)/l.rate - float64(elapsed)
	if need >= float64(maxIdle) {
		return maxIdle
	}
	d := max(time.Duration(math.Ceil(need)), 1)
	for i := 0; i < 8 && l.available(taken, elapsed+d) < 1; i++ {
		d++
	}
	for i := 0; i < 8 && d > 1 && l.available(taken, elapsed+d-1) >= 1; i++ {
		d--
	}
	return d
}

// sweep drops buckets with no call for longer than l.idle; they are full,
// so a new bucket would be the same. Callers hold l.mu.
func (l *Limiter) sweep(now time.Time) {
	for k, b := range l.buckets {
		if now.Sub(b.last) > l.idle {
			delete(l.buckets, k)
		}
	}
	l.calls = 0
	l.swept = len(l.buckets)
}

// size returns the number of buckets held, for tests.
func (l *Limiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
