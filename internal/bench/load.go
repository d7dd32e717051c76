package bench

import (
	"context"
	"errors"
	"math"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
)

// Load says how Run drives an operation: Concurrency workers, each running
// the operation back to back, until Duration has passed or Count operations
// were started, whichever comes first (at least one of them must be set).
type Load struct {
	Concurrency int
	Duration    time.Duration
	Count       int64
	// Phase names the run in Progress reports.
	Phase string
	// Progress, when set, is called about five times a second from another
	// goroutine, and once more at the end.
	Progress func(Progress)
}

// Progress is a report on a running phase.
type Progress struct {
	Phase   string
	Done    int64         // operations completed (errors included)
	Errors  int64         // of which failed
	Total   int64         // operations planned; 0 when the phase runs for a duration
	Elapsed time.Duration // since the phase began
	Planned time.Duration // the phase's duration; 0 when it runs for a count
}

// Fraction is how far the phase is, from 0 to 1; -1 when unknown.
func (p Progress) Fraction() float64 {
	switch {
	case p.Total > 0:
		return min(1, float64(p.Done)/float64(p.Total))
	case p.Planned > 0:
		return min(1, float64(p.Elapsed)/float64(p.Planned))
	}
	return -1
}

// Op is one operation of a run; worker is the number of the goroutine
// calling it, from 0 to Concurrency-1, and seq numbers the operations of the
// whole run from 0.
type Op func(ctx context.Context, worker int, seq int64) error

// Stats is the outcome of a run. Latencies are of the successful operations
// only; failed ones are counted by error code in ErrorCodes.
type Stats struct {
	Requests   int64            `json:"requests"` // completed, failed ones included
	Errors     int64            `json:"errors"`
	ErrorCodes map[string]int64 `json:"error_codes,omitempty"`
	Elapsed    float64          `json:"elapsed_s"` // first start to last completion
	PerSecond  float64          `json:"req_per_s"` // successful operations per second of Elapsed
	Latency    Latency          `json:"latency"`
}

// Latency summarises a sample of durations, in milliseconds.
//
// The percentiles are exact: every duration is kept (8 bytes each, so 10
// million operations cost 80 MB), the sample is sorted, and the p-th
// percentile is the nearest-rank one, the smallest value that at least p %
// of the sample does not exceed: sorted[ceil(p/100·n)-1].
type Latency struct {
	Samples int     `json:"samples"`
	Mean    float64 `json:"mean_ms"`
	P50     float64 `json:"p50_ms"`
	P90     float64 `json:"p90_ms"`
	P99     float64 `json:"p99_ms"`
	Max     float64 `json:"max_ms"`
}

// Summarize computes the Latency of a sample, which it sorts in place.
func Summarize(sample []time.Duration) Latency {
	if len(sample) == 0 {
		return Latency{}
	}
	slices.Sort(sample)
	var sum time.Duration
	for _, d := range sample {
		sum += d
	}
	return Latency{
		Samples: len(sample),
		Mean:    ms(sum / time.Duration(len(sample))),
		P50:     ms(Percentile(sample, 50)),
		P90:     ms(Percentile(sample, 90)),
		P99:     ms(Percentile(sample, 99)),
		Max:     ms(sample[len(sample)-1]),
	}
}

// Percentile returns the nearest-rank p-th percentile (0 < p ≤ 100) of a
// sorted sample, 0 for an empty one.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	return sorted[min(max(rank, 1), n)-1]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// progressEvery is how often Run reports progress.
const progressEvery = 200 * time.Millisecond

// Run drives op as l says and returns what happened. When ctx ends it stops
// starting operations, cancels the running ones, and returns the Stats of
// the operations completed before, with ctx's error; failures caused by the
// cancellation are not counted.
func Run(ctx context.Context, l Load, op Op) (Stats, error) {
	if l.Concurrency < 1 {
		return Stats{}, errors.New("bench: concurrency must be at least 1")
	}
	if l.Duration <= 0 && l.Count <= 0 {
		return Stats{}, errors.New("bench: a run needs a duration or a count")
	}
	type worker struct {
		sample []time.Duration
		codes  map[string]int64
		errors int64
	}
	var (
		workers = make([]worker, l.Concurrency)
		seq     atomic.Int64
		done    atomic.Int64
		failed  atomic.Int64
		wg      sync.WaitGroup
		start   = time.Now()
	)
	report := func() {
		if l.Progress != nil {
			l.Progress(Progress{Phase: l.Phase, Done: done.Load(), Errors: failed.Load(), Total: l.Count,
				Elapsed: time.Since(start), Planned: l.Duration})
		}
	}
	stopProgress := make(chan struct{})
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		t := time.NewTicker(progressEvery)
		defer t.Stop()
		for {
			select {
			case <-stopProgress:
				return
			case <-t.C:
				report()
			}
		}
	}()
	for i := range workers {
		w := &workers[i]
		wg.Go(func() {
			for ctx.Err() == nil {
				if l.Duration > 0 && time.Since(start) >= l.Duration {
					return
				}
				n := seq.Add(1) - 1
				if l.Count > 0 && n >= l.Count {
					return
				}
				t0 := time.Now()
				err := op(ctx, i, n)
				d := time.Since(t0)
				if err != nil {
					if ctx.Err() != nil {
						return // cut short by the cancellation, not a failure
					}
					if w.codes == nil {
						w.codes = make(map[string]int64)
					}
					w.codes[ErrorCode(err)]++
					w.errors++
					failed.Add(1)
				} else {
					w.sample = append(w.sample, d)
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(stopProgress)
	<-progressDone
	report()

	var (
		st     = Stats{Elapsed: elapsed.Seconds()}
		sample []time.Duration
	)
	for _, w := range workers {
		sample = append(sample, w.sample...)
		st.Errors += w.errors
		for code, n := range w.codes {
			if st.ErrorCodes == nil {
				st.ErrorCodes = make(map[string]int64)
			}
			st.ErrorCodes[code] += n
		}
	}
	st.Requests = int64(len(sample)) + st.Errors
	st.Latency = Summarize(sample)
	if elapsed > 0 {
		st.PerSecond = float64(len(sample)) / elapsed.Seconds()
	}
	return st, ctx.Err()
}

// ErrorCode names the failure of one request for counting: the AWS error
// code of an API error (ResourceNotFoundException, LimitExceededException,
// …), else "HTTP <status>" for a response that was not an API error, else
// Timeout, ConnectionRefused, ConnectionReset, Network or Other.
func ErrorCode(err error) string {
	var (
		apiErr  smithy.APIError
		respErr *awshttp.ResponseError
		netErr  net.Error
	)
	switch {
	case errors.As(err, &apiErr) && apiErr.ErrorCode() != "" && apiErr.ErrorCode() != "UnknownError":
		return apiErr.ErrorCode()
	case errors.As(err, &respErr) && respErr.HTTPStatusCode() != 0:
		return "HTTP " + strconv.Itoa(respErr.HTTPStatusCode())
	case errors.Is(err, context.DeadlineExceeded):
		return "Timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "ConnectionRefused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "ConnectionReset"
	case errors.As(err, &netErr) && netErr.Timeout():
		return "Timeout"
	case errors.As(err, &netErr):
		return "Network"
	}
	return "Other"
}
