// Package metrics exposes Rotor's Prometheus metrics on a private registry.
//
// Callers create one Metrics with New, passing the closed set of API
// operation names, serve Handler at GET /metrics, and report events through
// the Observe… and counter methods. Gauges that need the store (secret
// counts, webhook backlog) are computed at scrape time from the functions
// given to SetStats and SetBacklog.
//
// Label values are bounded so that no client input can grow the number of
// series: an operation not given to New is recorded as "other"; an error
// code that is not 1–64 ASCII letters, or that would exceed 128 distinct
// codes, is recorded as "other"; a rotation function name beyond 64
// distinct names (or longer than 128 bytes, or not UTF-8) is recorded as
// "other". No metric carries a secret name, ARN, version id or value.
//
// A scrape never fails because of the store: an error or a 2 s timeout in
// a SetStats or SetBacklog function increments
// rotor_stats_scrape_errors_total{source} and omits that function's
// gauges. Every method is safe for concurrent use; ObserveRequest, called
// on every request, does not allocate once the (operation, code) pair has
// been seen.
package metrics

import (
	"context"
	"net/http"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rotor-secrets/rotor/internal/store"
)

// Other is the label value that replaces any value outside a bounded set.
const Other = "other"

const (
	maxCodes        = 128 // distinct error codes before "other"
	maxFunctions    = 64  // distinct rotation function names before "other"
	maxFunctionName = 128 // bytes
	scrapeTimeout   = 2 * time.Second
	maxScrapes      = 4 // concurrent /metrics requests; each may query the store
)

// durationBuckets span 50 µs (a cached read) to 5 s (a slow store).
var durationBuckets = []float64{
	0.00005, 0.0001, 0.00025, 0.0005,
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 0.5, 1, 2.5, 5,
}

// rotationEvents maps CloudTrail rotation event names to the event label.
var rotationEvents = map[string]string{
	"RotationStarted":       "started",
	"RotationSucceeded":     "succeeded",
	"RotationFailed":        "failed",
	"RotationAbandoned":     "abandoned",
	"TestRotationStarted":   "test_started",
	"TestRotationSucceeded": "test_succeeded",
	"TestRotationFailed":    "test_failed",
}

// Metrics holds Rotor's metrics and the registry that serves them.
// The zero value is not usable; call New.
type Metrics struct {
	reg     *prometheus.Registry
	handler http.Handler

	requests *prometheus.CounterVec
	ops      map[string]*opMetrics // read-only after New; includes Other

	codesMu sync.Mutex
	codes   map[string]struct{} // distinct codes admitted, ≤ maxCodes

	rotationEvents *prometheus.CounterVec
	attempted      *prometheus.CounterVec
	succeeded      *prometheus.CounterVec
	failed         *prometheus.CounterVec
	functionsMu    sync.Mutex
	functions      map[string]struct{} // distinct functions admitted, ≤ maxFunctions

	auditFailures prometheus.Counter
	throttled     prometheus.Counter

	scrape *scrapeCollector
}

// opMetrics are one operation's pre-resolved series.
type opMetrics struct {
	name     string
	duration prometheus.Observer
	codes    sync.Map // normalised code → prometheus.Counter
}

// New returns Metrics with a private registry holding Rotor's metrics and
// the Go and process collectors. ops is the closed set of operation names
// ObserveRequest accepts; names that are not valid UTF-8 are ignored.
func New(ops []string) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rotor_requests_total",
			Help: "API requests by operation and error code (OK for success).",
		}, []string{"operation", "code"}),
		ops:   make(map[string]*opMetrics, len(ops)+1),
		codes: make(map[string]struct{}),
		rotationEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rotor_rotation_events_total",
			Help: "Rotation events by rotation function and event.",
		}, []string{"function", "event"}),
		attempted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rotor_rotations_attempted_total",
			Help: "Rotations started (RotationStarted events), by rotation function.",
		}, []string{"function"}),
		succeeded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rotor_rotations_succeeded_total",
			Help: "Rotations that succeeded (RotationSucceeded events), by rotation function.",
		}, []string{"function"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rotor_rotations_failed_total",
			Help: "Rotations that failed (RotationFailed events), by rotation function.",
		}, []string{"function"}),
		functions: make(map[string]struct{}),
		auditFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rotor_audit_write_failures_total",
			Help: "Audit events that could not be written.",
		}),
		throttled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rotor_throttled_requests_total",
			Help: "Requests refused by the per-access-key rate limit.",
		}),
		scrape: newScrapeCollector(),
	}
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "rotor_request_duration_seconds",
		Help:    "API request latency by operation.",
		Buckets: durationBuckets,
	}, []string{"operation"})

	for _, op := range append([]string{Other}, ops...) {
		if _, dup := m.ops[op]; dup || !utf8.ValidString(op) {
			continue
		}
		om := &opMetrics{name: op, duration: duration.WithLabelValues(op)}
		// Pre-create the success series so rates start from zero.
		om.codes.Store("OK", m.requests.WithLabelValues(op, "OK"))
		m.ops[op] = om
	}
	m.codes["OK"] = struct{}{}

	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, duration,
		m.rotationEvents, m.attempted, m.succeeded, m.failed,
		m.auditFailures, m.throttled,
		m.scrape,
	)
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorHandling:       promhttp.ContinueOnError,
		Registry:            m.reg,
		MaxRequestsInFlight: maxScrapes,
	})
	return m
}

// Handler serves the metrics in the Prometheus exposition formats, for
// GET /metrics. At most 4 scrapes run at once; more get 503.
func (m *Metrics) Handler() http.Handler { return m.handler }

// ObserveRequest records one API request: its operation (one of the names
// given to New, else "other"), its error code ("" for success, recorded as
// "OK") and its duration.
func (m *Metrics) ObserveRequest(operation, errorCode string, d time.Duration) {
	om := m.ops[operation]
	if om == nil {
		om = m.ops[Other]
	}
	if errorCode == "" {
		errorCode = "OK"
	}
	c, ok := om.codes.Load(errorCode)
	if !ok {
		c = m.requestCounter(om, errorCode)
	}
	c.(prometheus.Counter).Inc()
	om.duration.Observe(d.Seconds())
}

// requestCounter is ObserveRequest's slow path: the first time an
// (operation, code) pair is seen. The cache is keyed by the code as given
// only when it is admitted as-is, so it stays bounded by the number of
// operations times maxCodes+1.
func (m *Metrics) requestCounter(om *opMetrics, code string) prometheus.Counter {
	label := Other
	if validCode(code) {
		m.codesMu.Lock()
		if _, seen := m.codes[code]; seen || len(m.codes) < maxCodes {
			m.codes[code] = struct{}{}
			label = code
		}
		m.codesMu.Unlock()
	}
	if label == Other {
		if c, ok := om.codes.Load(Other); ok {
			return c.(prometheus.Counter)
		}
	}
	c, _ := om.codes.LoadOrStore(label, m.requests.WithLabelValues(om.name, label))
	return c.(prometheus.Counter)
}

// validCode reports whether s matches ^[A-Za-z]{1,64}$.
func validCode(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i] | 0x20; c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

// ObserveRotation records a rotation event for a rotation function. event
// is the CloudTrail event name (RotationStarted, RotationSucceeded,
// RotationFailed, RotationAbandoned, TestRotationStarted,
// TestRotationSucceeded, TestRotationFailed); any other is recorded as
// event "other". An empty function name is recorded as "none".
// RotationStarted, RotationSucceeded and RotationFailed also count in
// rotor_rotations_attempted_total, _succeeded_total and _failed_total.
func (m *Metrics) ObserveRotation(function, event string) {
	fn := m.functionLabel(function)
	ev, ok := rotationEvents[event]
	if !ok {
		ev = Other
	}
	m.rotationEvents.WithLabelValues(fn, ev).Inc()
	switch ev {
	case "started":
		m.attempted.WithLabelValues(fn).Inc()
	case "succeeded":
		m.succeeded.WithLabelValues(fn).Inc()
	case "failed":
		m.failed.WithLabelValues(fn).Inc()
	}
}

// functionLabel bounds rotation function names to maxFunctions values.
func (m *Metrics) functionLabel(name string) string {
	if name == "" {
		return "none"
	}
	if len(name) > maxFunctionName || !utf8.ValidString(name) {
		return Other
	}
	m.functionsMu.Lock()
	defer m.functionsMu.Unlock()
	if _, seen := m.functions[name]; seen {
		return name
	}
	if len(m.functions) >= maxFunctions {
		return Other
	}
	m.functions[name] = struct{}{}
	return name
}

// AuditWriteFailure counts an audit event that could not be written.
func (m *Metrics) AuditWriteFailure() { m.auditFailures.Inc() }

// RateLimited counts a request refused by the rate limit.
func (m *Metrics) RateLimited() { m.throttled.Inc() }

// SetStats sets the function that counts secrets at scrape time, for
// rotor_secrets{state}, rotor_secrets_rotation_enabled and
// rotor_rotations_overdue. fn is called with a context that expires after
// 2 s; on error or timeout the gauges are omitted from that scrape and
// rotor_stats_scrape_errors_total{source="secrets"} is incremented. nil
// removes the gauges.
func (m *Metrics) SetStats(fn func(ctx context.Context) (store.SecretStats, error)) {
	m.scrape.mu.Lock()
	m.scrape.stats = fn
	m.scrape.mu.Unlock()
}

// SetLeader sets the function that tells, at scrape time, whether this
// node runs rotations and the other background work, for rotor_leader (1
// or 0). Without it the gauge is omitted.
func (m *Metrics) SetLeader(fn func() bool) {
	g := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "rotor_leader",
		Help: "1 while this node holds the lease that runs rotations, schedules, purges, key jobs and webhook deliveries.",
	}, func() float64 {
		if fn() {
			return 1
		}
		return 0
	})
	m.reg.MustRegister(g)
}

// SetBacklog sets the function that counts webhook deliveries at scrape
// time, for rotor_webhook_backlog{state="pending"|"parked"}, with the same
// timeout and error handling as SetStats (source="webhook_backlog").
func (m *Metrics) SetBacklog(fn func(ctx context.Context) (pending, parked int, err error)) {
	m.scrape.mu.Lock()
	m.scrape.backlog = fn
	m.scrape.mu.Unlock()
}
