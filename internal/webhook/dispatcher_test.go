package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rotor-secrets/rotor/internal/events"
	"github.com/rotor-secrets/rotor/internal/store"
	"github.com/rotor-secrets/rotor/internal/store/sqlite"
)

// openStore opens a SQLite store at path, closed at cleanup.
func openStore(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newStore(t *testing.T) *sqlite.Store {
	return openStore(t, filepath.Join(t.TempDir(), "rotor.db"))
}

// fast is a Config that retries within milliseconds.
func fast(st store.Store, targets ...Target) Config {
	return Config{
		Store: st, Targets: targets,
		MaxAttempts: 1000, BackoffBase: 5 * time.Millisecond, BackoffMax: 40 * time.Millisecond,
		PollInterval: 20 * time.Millisecond,
	}
}

func newDispatcher(t *testing.T, cfg Config) *Dispatcher {
	t.Helper()
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// start runs d until the returned stop is called (or the test ends); stop
// waits for Run to return.
func start(t *testing.T, d *Dispatcher) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run = %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Error("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// delivery is one request a receiver accepted.
type delivery struct {
	id      string
	attempt int
	body    []byte
	header  http.Header
}

// receiver is a webhook endpoint: it answers status (0: 204 after checking
// the signature) and records what it accepted.
type receiver struct {
	t      *testing.T
	secret []byte
	now    func() time.Time // the clock signatures are checked against
	status atomic.Int32
	hits   atomic.Int32 // every request, accepted or not
	got    chan delivery

	mu        sync.Mutex
	delivered []delivery
}

func newReceiver(t *testing.T, secret string) *receiver {
	return &receiver{t: t, secret: []byte(secret), now: time.Now, got: make(chan delivery, 1000)}
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	rc.hits.Add(1)
	if s := rc.status.Load(); s != 0 {
		w.WriteHeader(int(s))
		return
	}
	if err := Verify(rc.secret, r.Header, body, rc.now(), time.Minute); err != nil {
		rc.t.Errorf("receiver: %v", err)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	n, _ := strconv.Atoi(r.Header.Get(headerAttempt))
	dv := delivery{id: r.Header.Get(headerEventID), attempt: n, body: body, header: r.Header.Clone()}
	rc.mu.Lock()
	rc.delivered = append(rc.delivered, dv)
	rc.mu.Unlock()
	select {
	case rc.got <- dv:
	default: // nobody is reading: the deliveries list has it
	}
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) deliveries() []delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.delivered)
}

// ids returns the distinct event ids delivered, in first-delivery order,
// and the number of duplicates.
func (rc *receiver) ids() (ids []string, dups int) {
	seen := map[string]bool{}
	for _, dv := range rc.deliveries() {
		if seen[dv.id] {
			dups++
			continue
		}
		seen[dv.id] = true
		ids = append(ids, dv.id)
	}
	return ids, dups
}

// serve starts an HTTP server for rc, closed at cleanup; it returns a
// target for it.
func serve(t *testing.T, name string, rc *receiver) Target {
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	return Target{Name: name, URL: srv.URL + "/hook", Secret: rc.secret}
}

// labelEvents returns n label events with distinct ids, in order.
func labelEvents(n int) []Event {
	evs := make([]Event, n)
	for i := range evs {
		ev, _ := LabelEvent(events.LabelChange{SecretARN: testARN, Name: "prod/app/db", Label: "AWSCURRENT",
			VersionID: fmt.Sprintf("v%d", i+1), Time: time.Now()}, testAccount, testRegion, "")
		evs[i] = ev
	}
	return evs
}

func idsOf(evs []Event) []string {
	ids := make([]string, len(evs))
	for i, ev := range evs {
		ids[i] = ev.ID
	}
	return ids
}

func backlog(t *testing.T, d *Dispatcher) (pending, parked int) {
	t.Helper()
	p, k, err := d.Backlog(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return p, k
}

func TestNewValidates(t *testing.T) {
	st := newStore(t)
	ok := Target{Name: "a", URL: "https://hooks.example.com/rotor", Secret: []byte("k")}
	cases := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"ok", Config{Store: st, Targets: []Target{ok}}, ""},
		{"no targets", Config{Store: st}, ""},
		{"http", Config{Store: st, Targets: []Target{{Name: "a", URL: "http://127.0.0.1:9/x", Secret: []byte("k")}}}, ""},
		{"no store", Config{Targets: []Target{ok}}, "no store"},
		{"empty name", Config{Store: st, Targets: []Target{{URL: ok.URL, Secret: ok.Secret}}}, "empty name"},
		{"duplicate name", Config{Store: st, Targets: []Target{ok, ok}}, "duplicate name"},
		{"relative URL", Config{Store: st, Targets: []Target{{Name: "a", URL: "/hook", Secret: ok.Secret}}}, "absolute"},
		{"ftp URL", Config{Store: st, Targets: []Target{{Name: "a", URL: "ftp://h/x", Secret: ok.Secret}}}, "http or https"},
		{"no host", Config{Store: st, Targets: []Target{{Name: "a", URL: "https:///x", Secret: ok.Secret}}}, "absolute"},
		{"malformed URL", Config{Store: st, Targets: []Target{{Name: "a", URL: "http://h/%zz", Secret: ok.Secret}}}, "malformed"},
		{"empty secret", Config{Store: st, Targets: []Target{{Name: "a", URL: ok.URL}}}, "empty secret"},
		{"negative attempts", Config{Store: st, MaxAttempts: -1}, "MaxAttempts"},
		{"max below base", Config{Store: st, BackoffBase: time.Minute, BackoffMax: time.Second}, "BackoffMax"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(c.cfg)
			switch {
			case c.wantErr == "" && err != nil:
				t.Errorf("New = %v", err)
			case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
				t.Errorf("New = %v, want an error containing %q", err, c.wantErr)
			}
		})
	}
	// All errors at once, and no URL (it may hold credentials) in them.
	_, err := New(Config{Targets: []Target{{Name: "a", URL: "ftp://user:hunter2@h/x"}}})
	if err == nil || !strings.Contains(err.Error(), "no store") || !strings.Contains(err.Error(), "http or https") ||
		strings.Contains(err.Error(), "hunter2") {
		t.Errorf("New = %v", err)
	}
}

func TestDeliverySignedAndShaped(t *testing.T) {
	st := newStore(t)
	rc := newReceiver(t, "whsec_a")
	d := newDispatcher(t, fast(st, serve(t, "a", rc)))
	start(t, d)

	ev, _ := LabelEvent(events.LabelChange{SecretARN: testARN, Name: "prod/app/db", Label: "AWSCURRENT",
		VersionID: "v2", FromVersionID: "v1", Time: testTime}, testAccount, testRegion, "")
	if err := d.Enqueue(t.Context(), ev); err != nil {
		t.Fatal(err)
	}
	var dv delivery
	select {
	case dv = <-rc.got:
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery")
	}
	want, _ := marshal(ev)
	if string(dv.body) != string(want) {
		t.Errorf("body = %s\nwant %s", dv.body, want)
	}
	for k, w := range map[string]string{
		"Content-Type": "application/json", "User-Agent": "rotor-webhook/1",
		"X-Rotor-Event-Id": ev.ID, "X-Rotor-Delivery-Attempt": "1",
	} {
		if got := dv.header.Get(k); got != w {
			t.Errorf("%s = %q, want %q", k, got, w)
		}
	}
	if !strings.HasPrefix(dv.header.Get("X-Rotor-Signature"), "v1=") {
		t.Errorf("X-Rotor-Signature = %q", dv.header.Get("X-Rotor-Signature"))
	}
	// What a receiver must reject, from the real request's headers.
	if err := Verify(rc.secret, dv.header, append(dv.body[:len(dv.body):len(dv.body)], ' '), time.Now(), time.Minute); err == nil {
		t.Error("Verify accepted a tampered body")
	}
	if err := Verify(rc.secret, dv.header, dv.body, time.Now().Add(10*time.Minute), 5*time.Minute); err == nil {
		t.Error("Verify accepted a 10-minute-old delivery")
	}
	if err := Verify([]byte("whsec_other"), dv.header, dv.body, time.Now(), time.Minute); err == nil {
		t.Error("Verify accepted another target's secret")
	}
	waitFor(t, "an empty outbox", func() bool { p, k := backlog(t, d); return p == 0 && k == 0 })
}

// reopenable is a receiver whose listener can be closed (connections are
// refused) and reopened on the same address.
type reopenable struct {
	addr string
	h    http.Handler
	srv  *http.Server
}

func newReopenable(t *testing.T, h http.Handler) *reopenable {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &reopenable{addr: ln.Addr().String(), h: h}
	ln.Close() // down from the start
	t.Cleanup(func() {
		if r.srv != nil {
			r.srv.Close()
		}
	})
	return r
}

func (r *reopenable) up(t *testing.T) {
	t.Helper()
	var ln net.Listener
	var err error
	for range 50 { // the port was ours; retry briefly in case it lingers
		if ln, err = net.Listen("tcp", r.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("reopen %s: %v", r.addr, err)
	}
	r.srv = &http.Server{Handler: r.h}
	go r.srv.Serve(ln)
}

func TestReceiverDownThenUp(t *testing.T) {
	st := newStore(t)
	// "closed": the listener is closed (connection refused); "503": it
	// answers 503 Service Unavailable.
	rcClosed, rc503 := newReceiver(t, "k-closed"), newReceiver(t, "k-503")
	rc503.status.Store(http.StatusServiceUnavailable)
	down := newReopenable(t, rcClosed)
	targets := []Target{
		{Name: "closed", URL: "http://" + down.addr + "/hook", Secret: rcClosed.secret},
		serve(t, "503", rc503),
	}
	d := newDispatcher(t, fast(st, targets...))
	start(t, d)

	evs := labelEvents(20)
	for i := 0; i < len(evs); i += 5 {
		if err := d.Enqueue(t.Context(), evs[i:i+5]...); err != nil {
			t.Fatal(err)
		}
	}
	// Both targets fail for a while: the head entry of each is retried.
	waitFor(t, "failed attempts on both targets", func() bool {
		pending, err := d.Parked(t.Context(), 0, 1) // nothing parks with MaxAttempts 1000
		if err != nil || len(pending) != 0 {
			t.Fatalf("parked %v, %v", pending, err)
		}
		var heads []store.OutboxEntry
		err = st.Read(t.Context(), func(tx store.Tx) error {
			heads, err = tx.ListOutbox(t.Context(), false, 0, 100)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		n := map[string]int{}
		for _, e := range heads {
			n[e.Target] = max(n[e.Target], e.Attempts)
		}
		return n["closed"] >= 3 && n["503"] >= 3 && rc503.hits.Load() >= 3
	})
	if p, _ := backlog(t, d); p != 40 {
		t.Errorf("pending = %d, want 40", p)
	}

	began := time.Now()
	down.up(t)
	rc503.status.Store(0)
	want := idsOf(evs)
	for _, rc := range []*receiver{rcClosed, rc503} {
		waitFor(t, "every event", func() bool { ids, _ := rc.ids(); return len(ids) == len(want) })
	}
	t.Logf("20 events × 2 targets delivered %v after recovery", time.Since(began).Round(time.Millisecond))
	waitFor(t, "an empty outbox", func() bool { p, k := backlog(t, d); return p == 0 && k == 0 })
	for name, rc := range map[string]*receiver{"closed": rcClosed, "503": rc503} {
		ids, dups := rc.ids()
		if !slices.Equal(ids, want) {
			t.Errorf("%s: got events %v\nwant in order %v", name, ids, want)
		}
		if dups > 0 {
			t.Logf("%s: %d duplicate deliveries (allowed: at least once)", name, dups)
		}
		if first := rc.deliveries()[0]; first.attempt < 2 {
			t.Errorf("%s: first delivery attempt = %d, want a retry", name, first.attempt)
		}
	}
}

func TestPendingEntriesSurviveRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rotor.db")
	rc := newReceiver(t, "k")
	rc.status.Store(http.StatusInternalServerError)
	target := serve(t, "a", rc)
	evs := labelEvents(10)

	// First life: the receiver fails; some attempts are recorded.
	st1, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	d1 := newDispatcher(t, fast(st1, target))
	stop := start(t, d1)
	if err := d1.Enqueue(t.Context(), evs...); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "three failed attempts", func() bool { return rc.hits.Load() >= 3 })
	stop()
	var stored int
	err = st1.Read(t.Context(), func(tx store.Tx) error {
		es, err := tx.ListOutbox(t.Context(), false, 0, 1)
		if len(es) == 1 {
			stored = es[0].Attempts
		}
		return err
	})
	if err != nil || stored < 2 {
		t.Fatalf("stored attempts = %d, %v; want ≥ 2", stored, err)
	}
	if err := st1.Close(); err != nil {
		t.Fatal(err)
	}

	// Second life: a new store and dispatcher deliver what the first left.
	rc.status.Store(0)
	st2 := openStore(t, path)
	d2 := newDispatcher(t, fast(st2, target))
	if p, _ := backlog(t, d2); p != 10 {
		t.Fatalf("pending after reopen = %d, want 10", p)
	}
	start(t, d2)
	waitFor(t, "every event", func() bool { ids, _ := rc.ids(); return len(ids) == 10 })
	ids, dups := rc.ids()
	if !slices.Equal(ids, idsOf(evs)) {
		t.Errorf("got %v, want in order %v", ids, idsOf(evs))
	}
	if dups != 0 {
		t.Errorf("%d duplicates", dups)
	}
	if a := rc.deliveries()[0].attempt; a != stored+1 {
		t.Errorf("first delivery attempt = %d, want %d (attempts are stored)", a, stored+1)
	}
	waitFor(t, "an empty outbox", func() bool { p, k := backlog(t, d2); return p == 0 && k == 0 })
}

func TestParkAndRedrive(t *testing.T) {
	st := newStore(t)
	rc := newReceiver(t, "k")
	rc.status.Store(http.StatusInternalServerError)
	cfg := fast(st, serve(t, "a", rc))
	cfg.MaxAttempts = 3
	d := newDispatcher(t, cfg)
	start(t, d)

	evs := labelEvents(2)
	if err := d.Enqueue(t.Context(), evs...); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both entries parked", func() bool { _, k := backlog(t, d); return k == 2 })
	if p, k := backlog(t, d); p != 0 || k != 2 {
		t.Errorf("backlog = %d pending, %d parked; want 0, 2", p, k)
	}
	if n := rc.hits.Load(); n != 6 {
		t.Errorf("receiver saw %d attempts, want 3 per entry", n)
	}
	parked, err := d.Parked(t.Context(), 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(parked) != 2 {
		t.Fatalf("Parked = %d entries, want 2", len(parked))
	}
	for i, e := range parked {
		if !e.Parked || e.Attempts != 3 || e.EventID != evs[i].ID || e.Target != "a" ||
			!strings.HasPrefix(e.LastError, "http 500") {
			t.Errorf("parked[%d] = %+v", i, e)
		}
	}
	// Paging.
	if rest, err := d.Parked(t.Context(), parked[0].Seq, 10); err != nil || len(rest) != 1 || rest[0].Seq != parked[1].Seq {
		t.Errorf("Parked after %d = %v, %v", parked[0].Seq, rest, err)
	}

	rc.status.Store(0)
	time.Sleep(50 * time.Millisecond) // parked entries stay put
	if len(rc.deliveries()) != 0 {
		t.Fatal("a parked entry was delivered")
	}
	for i, e := range parked {
		if err := d.Redrive(t.Context(), e.Seq); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the redriven entry", func() bool { return len(rc.deliveries()) == i+1 })
		if dv := rc.deliveries()[i]; dv.id != evs[i].ID || dv.attempt != 1 {
			t.Errorf("delivery %d = %s attempt %d, want %s attempt 1", i, dv.id, dv.attempt, evs[i].ID)
		}
	}
	waitFor(t, "an empty outbox", func() bool { p, k := backlog(t, d); return p == 0 && k == 0 })

	err = d.Redrive(t.Context(), parked[0].Seq) // delivered, so gone
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Redrive of a delivered entry = %v, want ErrNotFound", err)
	}
}

func TestFailingTargetDoesNotBlockOthers(t *testing.T) {
	cases := []struct {
		name string
		bad  http.HandlerFunc
	}{
		{"500", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) }},
		{"hangs", func(w http.ResponseWriter, r *http.Request) {
			// Reading the body lets the server notice the client leaving.
			io.Copy(io.Discard, r.Body)
			<-r.Context().Done()
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := newStore(t)
			bad := httptest.NewServer(c.bad)
			t.Cleanup(bad.Close)
			good := newReceiver(t, "k")
			cfg := fast(st, Target{Name: "bad", URL: bad.URL, Secret: []byte("k")}, serve(t, "good", good))
			cfg.Client = &http.Client{Timeout: 5 * time.Second}
			d := newDispatcher(t, cfg)
			start(t, d)

			evs := labelEvents(10)
			for _, ev := range evs { // one transaction each, as events come
				if err := d.Enqueue(t.Context(), ev); err != nil {
					t.Fatal(err)
				}
			}
			began := time.Now()
			waitFor(t, "the healthy target", func() bool { ids, _ := good.ids(); return len(ids) == 10 })
			if el := time.Since(began); el > 2*time.Second {
				t.Errorf("healthy target took %v", el)
			}
			if ids, _ := good.ids(); !slices.Equal(ids, idsOf(evs)) {
				t.Errorf("healthy target got %v, want %v", ids, idsOf(evs))
			}
			// The last delete follows the receiver's answer.
			waitFor(t, "only the failing target's 10 pending", func() bool { p, _ := backlog(t, d); return p == 10 })
		})
	}
}

func TestLastErrorIsShortAndRedacted(t *testing.T) {
	long := strings.Repeat("x", 150) + "\n\tpanic: " + strings.Repeat("y", 5000)
	cases := []struct {
		name    string
		handler http.HandlerFunc
		prefix  string
	}{
		{"long body", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusBadGateway)
			io.WriteString(w, long)
		}, "http 502: " + strings.Repeat("x", 150)},
		{"redirect", func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/elsewhere" {
				t.Error("redirect followed")
			}
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		}, "http 302 (redirects are not followed)"},
		{"refused", nil, "dial tcp"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := newStore(t)
			var hostport string
			if c.handler != nil {
				srv := httptest.NewServer(c.handler)
				t.Cleanup(srv.Close)
				hostport = strings.TrimPrefix(srv.URL, "http://")
			} else {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				hostport = ln.Addr().String()
				ln.Close()
			}
			cfg := fast(st, Target{Name: "a", URL: "http://alice:hunter2@" + hostport + "/hook?token=s3cr3t-token",
				Secret: []byte("k")})
			cfg.MaxAttempts = 1
			d := newDispatcher(t, cfg)
			start(t, d)
			if err := d.Enqueue(t.Context(), labelEvents(1)...); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the entry parked", func() bool { _, k := backlog(t, d); return k == 1 })
			parked, err := d.Parked(t.Context(), 0, 1)
			if err != nil {
				t.Fatal(err)
			}
			msg := parked[0].LastError
			t.Logf("LastError = %q", msg)
			if !strings.HasPrefix(msg, c.prefix) {
				t.Errorf("LastError = %q, want prefix %q", msg, c.prefix)
			}
			// At most 200 bytes of the body, on one line.
			if len(msg) > len("http 502: ")+snippetBytes || strings.ContainsAny(msg, "\n\t") {
				t.Errorf("LastError too long or multi-line: %q", msg)
			}
			if strings.Contains(msg, "hunter2") || strings.Contains(msg, "s3cr3t") {
				t.Errorf("LastError leaks the URL's credentials: %q", msg)
			}
		})
	}
}

func TestUnconfiguredTargetIsParked(t *testing.T) {
	st := newStore(t)
	rc := newReceiver(t, "k")
	old := newDispatcher(t, fast(st, Target{Name: "gone", URL: "http://127.0.0.1:9/", Secret: []byte("k")},
		serve(t, "a", rc)))
	if err := old.Enqueue(t.Context(), labelEvents(3)...); err != nil {
		t.Fatal(err)
	}
	// The next configuration drops "gone".
	d := newDispatcher(t, fast(st, serve(t, "a", rc)))
	start(t, d)
	waitFor(t, "delivery and parking", func() bool {
		p, k := backlog(t, d)
		return p == 0 && k == 3
	})
	parked, err := d.Parked(t.Context(), 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range parked {
		if e.Target != "gone" || e.LastError != "target not configured" {
			t.Errorf("parked %+v", e)
		}
	}
	if err := d.Redrive(t.Context(), parked[0].Seq); err == nil || !strings.Contains(err.Error(), "not configured") {
		t.Errorf("Redrive to an unconfigured target = %v", err)
	}
	if ids, _ := rc.ids(); len(ids) != 3 {
		t.Errorf("configured target got %d events, want 3", len(ids))
	}
}

func TestEnqueue(t *testing.T) {
	st := newStore(t)
	t.Run("no targets", func(t *testing.T) {
		d := newDispatcher(t, Config{Store: st})
		if err := d.Enqueue(t.Context(), labelEvents(2)...); err != nil {
			t.Fatal(err)
		}
		if p, k := backlog(t, d); p != 0 || k != 0 {
			t.Errorf("backlog = %d, %d", p, k)
		}
	})
	t.Run("one row per event and target, normalised", func(t *testing.T) {
		d := newDispatcher(t, Config{Store: st, Targets: []Target{
			{Name: "a", URL: "http://127.0.0.1:9/", Secret: []byte("k")},
			{Name: "b", URL: "http://127.0.0.1:9/", Secret: []byte("k")},
		}})
		ev := Event{Version: "0", ID: "e1", Time: testTime} // hand-built: no resources, no detail
		if err := d.Enqueue(t.Context(), ev, labelEvents(1)[0]); err != nil {
			t.Fatal(err)
		}
		var rows []store.OutboxEntry
		err := st.Read(t.Context(), func(tx store.Tx) error {
			var err error
			rows, err = tx.ListOutbox(t.Context(), false, 0, 10)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 4 || rows[0].Target != "a" || rows[1].Target != "b" || rows[0].EventID != "e1" || rows[2].EventID == "e1" {
			t.Fatalf("rows = %+v", rows)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(rows[0].Body), &m); err != nil {
			t.Fatal(err)
		}
		if m["time"] != "2024-02-06T15:43:48Z" || fmt.Sprint(m["resources"]) != "[]" || fmt.Sprint(m["detail"]) != "map[]" {
			t.Errorf("stored %s", rows[0].Body)
		}
	})
	t.Run("no id", func(t *testing.T) {
		d := newDispatcher(t, Config{Store: st, Targets: []Target{{Name: "a", URL: "http://127.0.0.1:9/", Secret: []byte("k")}}})
		p0, _ := backlog(t, d)
		if err := d.Enqueue(t.Context(), labelEvents(1)[0], Event{}); err == nil {
			t.Error("Enqueue accepted an event without id")
		}
		if p, _ := backlog(t, d); p != p0 {
			t.Error("a failed Enqueue wrote entries")
		}
	})
}

func TestRunOnceAtATime(t *testing.T) {
	d := newDispatcher(t, Config{Store: newStore(t)})
	start(t, d)
	waitFor(t, "Run to start", d.running.Load)
	if err := d.Run(t.Context()); err == nil {
		t.Error("a second Run started")
	}
}

func TestBackoff(t *testing.T) {
	d := newDispatcher(t, Config{Store: newStore(t)}) // defaults: 1 s doubling to 5 min
	for n := 1; n <= 12; n++ {
		nominal := min(time.Second<<(n-1), 5*time.Minute)
		for range 200 {
			got := d.backoff(n)
			if got < nominal*3/4 || got > nominal*5/4 || got > 5*time.Minute {
				t.Fatalf("backoff(%d) = %v, want %v ±25 %% capped at 5m", n, got, nominal)
			}
		}
	}
}

// With an injected clock, a failed entry waits for the clock, not for
// real time.
func TestRetryWaitsForTheClock(t *testing.T) {
	st := newStore(t)
	var mu sync.Mutex
	clock := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	rc := newReceiver(t, "k")
	rc.now = now
	rc.status.Store(http.StatusServiceUnavailable)
	cfg := fast(st, serve(t, "a", rc))
	cfg.Now, cfg.BackoffBase, cfg.BackoffMax = now, time.Hour, time.Hour
	d := newDispatcher(t, cfg)
	start(t, d)
	if err := d.Enqueue(t.Context(), labelEvents(1)...); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first attempt", func() bool { return rc.hits.Load() == 1 })
	time.Sleep(100 * time.Millisecond) // five polls
	if n := rc.hits.Load(); n != 1 {
		t.Fatalf("%d attempts before the clock moved, want 1", n)
	}
	var next time.Time
	err := st.Read(t.Context(), func(tx store.Tx) error {
		es, err := tx.ListOutbox(t.Context(), false, 0, 1)
		if err == nil && len(es) == 1 {
			next = es[0].NextAttemptAt
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if wait := next.Sub(clock); wait < 45*time.Minute || wait > time.Hour {
		t.Errorf("next attempt in %v, want 1h -25 %%", wait)
	}
	rc.status.Store(0)
	mu.Lock()
	clock = clock.Add(time.Hour)
	mu.Unlock()
	select {
	case dv := <-rc.got:
		if dv.attempt != 2 {
			t.Errorf("attempt = %d, want 2", dv.attempt)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no retry after the clock moved")
	}
}

// TestEnqueueLatency measures the time from Enqueue to the receiver on
// loopback (reported, not asserted beyond a generous bound).
func TestEnqueueLatency(t *testing.T) {
	st := newStore(t)
	rc := newReceiver(t, "k")
	cfg := fast(st, serve(t, "a", rc))
	cfg.PollInterval = time.Second // the kick, not the poll, must wake the lane
	d := newDispatcher(t, cfg)
	start(t, d)
	const n = 200
	lat := make([]time.Duration, 0, n)
	for _, ev := range labelEvents(n) {
		began := time.Now()
		if err := d.Enqueue(t.Context(), ev); err != nil {
			t.Fatal(err)
		}
		select {
		case <-rc.got:
		case <-time.After(10 * time.Second):
			t.Fatal("no delivery")
		}
		lat = append(lat, time.Since(began))
	}
	slices.Sort(lat)
	p50, p99 := lat[n/2], lat[n*99/100]
	t.Logf("Enqueue → receiver over loopback, %d events: p50 %v, p99 %v, max %v", n, p50, p99, lat[n-1])
	if p50 > 500*time.Millisecond {
		t.Errorf("p50 latency %v: the kick does not wake the lane", p50)
	}
}
