package metrics

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rotor-secrets/rotor/internal/store"
)

// scrapeCollector computes the store-backed gauges at scrape time. It
// emits its own error counter, rather than incrementing a registered one,
// so that a failure shows in the same scrape it happened in.
type scrapeCollector struct {
	mu      sync.Mutex
	stats   func(ctx context.Context) (store.SecretStats, error)
	backlog func(ctx context.Context) (pending, parked int, err error)

	statsErrors   atomic.Uint64
	backlogErrors atomic.Uint64

	secrets, rotationEnabled, overdue, webhookBacklog, errorsDesc *prometheus.Desc
}

func newScrapeCollector() *scrapeCollector {
	return &scrapeCollector{
		secrets: prometheus.NewDesc("rotor_secrets",
			"Secrets by state.", []string{"state"}, nil),
		rotationEnabled: prometheus.NewDesc("rotor_secrets_rotation_enabled",
			"Live secrets with rotation enabled.", nil, nil),
		overdue: prometheus.NewDesc("rotor_rotations_overdue",
			"Live secrets with rotation enabled whose next rotation is past due.", nil, nil),
		webhookBacklog: prometheus.NewDesc("rotor_webhook_backlog",
			"Webhook deliveries not yet delivered, by state.", []string{"state"}, nil),
		errorsDesc: prometheus.NewDesc("rotor_stats_scrape_errors_total",
			"Scrape-time store queries that failed or timed out; their gauges were omitted.", []string{"source"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *scrapeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.secrets
	ch <- c.rotationEnabled
	ch <- c.overdue
	ch <- c.webhookBacklog
	ch <- c.errorsDesc
}

// Collect implements prometheus.Collector. The two queries run
// concurrently under one 2 s deadline.
func (c *scrapeCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	statsFn, backlogFn := c.stats, c.backlog
	c.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	var wg sync.WaitGroup
	if statsFn != nil {
		wg.Go(func() {
			s, err := call(ctx, statsFn)
			if err != nil {
				c.statsErrors.Add(1)
			} else {
				ch <- prometheus.MustNewConstMetric(c.secrets, prometheus.GaugeValue, float64(s.Live), "live")
				ch <- prometheus.MustNewConstMetric(c.secrets, prometheus.GaugeValue, float64(s.PendingDeletion), "pending_deletion")
				ch <- prometheus.MustNewConstMetric(c.rotationEnabled, prometheus.GaugeValue, float64(s.RotationEnabled))
				ch <- prometheus.MustNewConstMetric(c.overdue, prometheus.GaugeValue, float64(s.RotationOverdue))
			}
			ch <- prometheus.MustNewConstMetric(c.errorsDesc, prometheus.CounterValue, float64(c.statsErrors.Load()), "secrets")
		})
	}
	if backlogFn != nil {
		wg.Go(func() {
			b, err := call(ctx, func(ctx context.Context) ([2]int, error) {
				p, q, err := backlogFn(ctx)
				return [2]int{p, q}, err
			})
			if err != nil {
				c.backlogErrors.Add(1)
			} else {
				ch <- prometheus.MustNewConstMetric(c.webhookBacklog, prometheus.GaugeValue, float64(b[0]), "pending")
				ch <- prometheus.MustNewConstMetric(c.webhookBacklog, prometheus.GaugeValue, float64(b[1]), "parked")
			}
			ch <- prometheus.MustNewConstMetric(c.errorsDesc, prometheus.CounterValue, float64(c.backlogErrors.Load()), "webhook_backlog")
		})
	}
	wg.Wait()
}

// call runs fn and returns its result, or ctx's error if ctx ends first,
// so that a function ignoring its context cannot hold up the scrape; such
// a function's goroutine finishes in the background.
func call[T any](ctx context.Context, fn func(context.Context) (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := fn(ctx)
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}
