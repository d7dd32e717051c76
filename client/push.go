package client

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Push invalidation (Rotor only; AWS Secrets Manager has no equivalent).
//
// StartPush subscribes to a Rotor server's stream of staging-label changes
// (rotor.SubscribeLabelChanges) and keeps a Cache in step with it: when a
// label moves, every cached entry of that secret is invalidated, and for
// the secrets listed in PushConfig.SecretIDs an AWSCURRENT move starts a
// background RefreshNow, so the next Get is answered from memory with the
// new value — typically well within a second of a rotation's finishSecret.
//
// The stream is a convenience, not a dependency: while it is down the
// cache's TTL polling keeps values fresh as before, and StartPush
// reconnects with exponential backoff and jitter. Changes made while it was
// disconnected are lost, so on every (re)connection, and when the server
// reports that it dropped changes (resync), the listed SecretIDs are
// invalidated and refreshed. Without SecretIDs every secret's changes are
// received and invalidate the cache, but nothing is refreshed ahead of the
// next Get, and after a gap only the TTL catches up.

// Defaults for the zero fields of PushConfig.
const (
	DefaultPushMinBackoff  = 500 * time.Millisecond
	DefaultPushMaxBackoff  = 30 * time.Second
	DefaultPushIdleTimeout = 45 * time.Second // three missed server heartbeats
)

// pushTarget is the X-Amz-Target of the label-change stream.
const pushTarget = "rotor.SubscribeLabelChanges"

// PushConfig configures StartPush. Endpoint, Region and Credentials are
// required.
type PushConfig struct {
	// Endpoint is the Rotor server's base URL, e.g. http://127.0.0.1:7300,
	// as given to the SDK client's BaseEndpoint.
	Endpoint string
	// Region and Credentials sign the subscription (SigV4, service
	// "secretsmanager"), as the SDK client signs its requests.
	Region      string
	Credentials aws.CredentialsProvider
	// HTTPClient sends the subscription. Nil: a client without a timeout.
	// A Timeout on it ends every stream after that long (it then
	// reconnects); prefer IdleTimeout.
	HTTPClient *http.Client
	// SecretIDs limits the stream to these secrets (names or ARNs, as the
	// application passes them to Get) and are the ids refreshed ahead of
	// reads; at most 100. Empty: every secret's changes.
	SecretIDs []string
	// Logger receives connection state changes (never values). Nil: discard.
	Logger *slog.Logger
	// MinBackoff and MaxBackoff bound the delay between reconnection
	// attempts, which doubles with each failure, with jitter (defaults
	// DefaultPushMinBackoff and DefaultPushMaxBackoff).
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// IdleTimeout is how long a stream may stay silent (the server sends a
	// heartbeat every 15s) before it is dropped and reconnected (default
	// DefaultPushIdleTimeout).
	IdleTimeout time.Duration
	// OnChange, if set, is called after the cache has been invalidated for
	// a change, on the stream's goroutine (do not block). A Change with
	// Resync set means changes may have been missed.
	OnChange func(Change)
}

// Change is one staging label that moved, as the stream reports it.
type Change struct {
	ARN          string
	Name         string
	VersionStage string
	// VersionID carries the stage now; "" when it was removed.
	VersionID string
	// RemovedFromVersionID carried it before; "" when none did.
	RemovedFromVersionID string
	Time                 time.Time
	// Resync reports a (re)connection or dropped changes rather than one
	// change; the other fields are zero.
	Resync bool
}

// Push is a running subscription. Stop it with Stop.
type Push struct {
	cache invalidator
	cfg   PushConfig
	log   *slog.Logger
	body  []byte

	ctx       context.Context
	cancel    context.CancelFunc
	done      chan struct{}
	connected atomic.Bool

	mu      sync.Mutex
	pending map[string]bool // id → refresh running; true: run it again after
	wg      sync.WaitGroup  // refresh goroutines
}

// invalidator is the part of *Cache push uses.
type invalidator interface {
	Invalidate(secretID string)
	RefreshNow(ctx context.Context, secretID string) (*Secret, error)
}

// StartPush starts keeping c in step with the label-change stream of the
// Rotor server at cfg.Endpoint, until ctx ends or Stop is called. It
// returns at once; the connection is made in the background (see
// Connected). An error means cfg is unusable.
func StartPush(ctx context.Context, c *Cache, cfg PushConfig) (*Push, error) {
	if c == nil {
		return nil, errors.New("client: StartPush: nil cache")
	}
	return startPush(ctx, c, cfg)
}

func startPush(ctx context.Context, c invalidator, cfg PushConfig) (*Push, error) {
	var errs []error
	if cfg.Endpoint == "" {
		errs = append(errs, errors.New("client: push: Endpoint is empty"))
	} else if !strings.HasPrefix(cfg.Endpoint, "http://") && !strings.HasPrefix(cfg.Endpoint, "https://") {
		errs = append(errs, errors.New("client: push: Endpoint must be an http:// or https:// URL"))
	}
	if cfg.Region == "" {
		errs = append(errs, errors.New("client: push: Region is empty"))
	}
	if cfg.Credentials == nil {
		errs = append(errs, errors.New("client: push: Credentials is nil"))
	}
	if len(cfg.SecretIDs) > 100 {
		errs = append(errs, errors.New("client: push: more than 100 SecretIDs"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{}
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = DefaultPushMinBackoff
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultPushMaxBackoff
	}
	cfg.MaxBackoff = max(cfg.MaxBackoff, cfg.MinBackoff)
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultPushIdleTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ids := cfg.SecretIDs
	if ids == nil {
		ids = []string{}
	}
	body, err := json.Marshal(struct{ SecretIds []string }{ids})
	if err != nil {
		return nil, err
	}
	p := &Push{cache: c, cfg: cfg, log: log, body: body, done: make(chan struct{}), pending: make(map[string]bool)}
	p.ctx, p.cancel = context.WithCancel(ctx)
	go p.run()
	return p, nil
}

// Stop ends the subscription and waits for its goroutines, refreshes in
// flight included. It may be called more than once.
func (p *Push) Stop() {
	p.cancel()
	<-p.done
	p.wg.Wait()
}

// Connected reports whether the stream is up: the server confirmed the
// subscription and it has not dropped since.
func (p *Push) Connected() bool { return p.connected.Load() }

// errPermanent marks an answer retrying cannot change (the server does not
// serve the stream, as AWS Secrets Manager does not).
type errPermanent struct{ error }

func (p *Push) run() {
	defer close(p.done)
	failures := 0
	for {
		err := p.stream()
		wasUp := p.connected.Swap(false)
		if p.ctx.Err() != nil {
			return
		}
		var perm errPermanent
		if errors.As(err, &perm) {
			p.log.Warn("push invalidation unavailable; the cache relies on its TTL", "endpoint", p.cfg.Endpoint, "err", err)
			return
		}
		if wasUp {
			failures = 0 // the server accepted us: start backing off afresh
		}
		delay := p.backoff(failures)
		failures++
		p.log.Info("push stream lost; reconnecting", "endpoint", p.cfg.Endpoint, "err", err, "retry_in", delay.String())
		t := time.NewTimer(delay)
		select {
		case <-p.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// backoff is the delay before reconnection attempt n (0-based): doubling
// from MinBackoff, capped at MaxBackoff, drawn in [d/2, d].
func (p *Push) backoff(n int) time.Duration {
	d := float64(p.cfg.MinBackoff) * math.Pow(2, float64(min(n, 30)))
	d = min(d, float64(p.cfg.MaxBackoff))
	return time.Duration(d/2 + rand.Float64()*d/2)
}

// stream runs one connection until it fails or p.ctx ends.
func (p *Push) stream() error {
	ctx, cancel := context.WithCancel(p.ctx)
	defer cancel()
	req, err := p.request(ctx)
	if err != nil {
		return err
	}
	resp, err := p.cfg.HTTPClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return answerError(resp)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		return errPermanent{fmt.Errorf("the server answered %s, not an event stream", ct)}
	}
	// A silent connection (a dead peer, a proxy that swallowed it) is
	// dropped after IdleTimeout; every line read resets the clock.
	idle := time.AfterFunc(p.cfg.IdleTimeout, cancel)
	defer idle.Stop()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	var event, data string
	for sc.Scan() {
		idle.Reset(p.cfg.IdleTimeout)
		line := sc.Text()
		switch {
		case line == "":
			if event != "" || data != "" {
				p.dispatch(event, data)
			}
			event, data = "", ""
		case strings.HasPrefix(line, ":"): // comment: heartbeat
		default:
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "event":
				event = value
			case "data":
				if data != "" {
					data += "\n"
				}
				data += value
			}
		}
	}
	if err := sc.Err(); err != nil {
		if ctx.Err() != nil && p.ctx.Err() == nil {
			return fmt.Errorf("no data for %v", p.cfg.IdleTimeout)
		}
		return err
	}
	return io.ErrUnexpectedEOF // the server ended the stream (shutdown)
}

// request builds the signed subscription request.
func (p *Push) request(ctx context.Context) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(p.cfg.Endpoint, "/")+"/", bytes.NewReader(p.body))
	if err != nil {
		return nil, errPermanent{err}
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", pushTarget)
	req.Header.Set("Accept", "text/event-stream")
	creds, err := p.cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return nil, fmt.Errorf("retrieve credentials: %w", err)
	}
	sum := sha256.Sum256(p.body)
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "secretsmanager", p.cfg.Region, time.Now()); err != nil {
		return nil, fmt.Errorf("sign subscription: %w", err)
	}
	return req, nil
}

// answerError describes a refused subscription from its AWS JSON error.
func answerError(resp *http.Response) error {
	var e struct {
		Type    string `json:"__type"`
		Message string
	}
	_ = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&e)
	code := e.Type
	if i := strings.LastIndexByte(code, '#'); i >= 0 {
		code = code[i+1:]
	}
	err := fmt.Errorf("subscription refused: %s %s: %s", resp.Status, code, e.Message)
	if code == "UnknownOperationException" || resp.StatusCode == http.StatusNotFound {
		return errPermanent{err}
	}
	return err
}

type changeWire struct {
	ARN                  string
	Name                 string
	VersionStage         string
	VersionId            string
	RemovedFromVersionId string
	Date                 float64
}

// dispatch acts on one event.
func (p *Push) dispatch(event, data string) {
	switch event {
	case "ready":
		if !p.connected.Swap(true) {
			// Connected or reconnected: whatever moved before is unknown.
			p.log.Debug("push stream connected", "endpoint", p.cfg.Endpoint)
			p.resync()
		}
	case "resync":
		p.log.Info("push stream dropped changes; refreshing", "endpoint", p.cfg.Endpoint)
		p.resync()
	case "label":
		var w changeWire
		if err := json.Unmarshal([]byte(data), &w); err != nil || w.ARN == "" {
			p.log.Warn("push stream: malformed label event", "err", err)
			return
		}
		sec, frac := math.Modf(w.Date)
		c := Change{
			ARN: w.ARN, Name: w.Name, VersionStage: w.VersionStage, VersionID: w.VersionId,
			RemovedFromVersionID: w.RemovedFromVersionId, Time: time.Unix(int64(sec), int64(frac*1e9)),
		}
		p.apply(c)
	}
}

// apply invalidates the changed secret and refreshes the listed ids that
// name it.
func (p *Push) apply(c Change) {
	p.cache.Invalidate(c.ARN)
	if c.Name != "" {
		p.cache.Invalidate(c.Name)
	}
	for _, id := range p.cfg.SecretIDs {
		if !names(id, c.ARN, c.Name) {
			continue
		}
		p.cache.Invalidate(id)
		if c.VersionStage == DefaultStage {
			p.refresh(id)
		}
	}
	if p.cfg.OnChange != nil {
		p.cfg.OnChange(c)
	}
}

// resync treats every listed secret as changed: after a gap in the stream
// any of them may have moved.
func (p *Push) resync() {
	for _, id := range p.cfg.SecretIDs {
		p.cache.Invalidate(id)
		p.refresh(id)
	}
	if p.cfg.OnChange != nil {
		p.cfg.OnChange(Change{Resync: true})
	}
}

// names reports whether id (a name, ARN or partial ARN) names the secret.
func names(id, arn, name string) bool {
	if id == arn || id == name {
		return true
	}
	// A partial ARN: the full one without "-" and six random characters.
	return len(arn) == len(id)+7 && strings.HasPrefix(arn, id) && arn[len(id)] == '-'
}

// refreshTimeout bounds one background refresh.
const refreshTimeout = 30 * time.Second

// refresh runs RefreshNow(id) in the background: one at a time per id, and
// once more after the running one if a change arrived meanwhile (the
// running fetch may predate it).
func (p *Push) refresh(id string) {
	p.mu.Lock()
	if _, running := p.pending[id]; running {
		p.pending[id] = true
		p.mu.Unlock()
		return
	}
	p.pending[id] = false
	p.wg.Add(1)
	p.mu.Unlock()
	go func() {
		defer p.wg.Done()
		for {
			ctx, cancel := context.WithTimeout(p.ctx, refreshTimeout)
			_, err := p.cache.RefreshNow(ctx, id)
			cancel()
			if err != nil && p.ctx.Err() == nil {
				p.log.Warn("push refresh failed; the next read fetches", "secret_id", id, "err", err)
			}
			p.mu.Lock()
			again := p.pending[id] && p.ctx.Err() == nil
			if !again {
				delete(p.pending, id)
				p.mu.Unlock()
				return
			}
			p.pending[id] = false
			p.mu.Unlock()
		}
	}()
}
