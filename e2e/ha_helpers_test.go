package e2e

// Helpers of the high-availability tests (ha_test.go): several nodes on one
// PostgreSQL store, each with its own data dir and a copy of the first
// node's master.key; /healthz's view of the rotation lease; SIGKILL; and an
// HTTP transport that spreads a client's requests over every node and fails
// over when one is gone.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/rotor-secrets/rotor/internal/dbtest"
)

const (
	haLeaseTTL  = "3s"                    // --lease-ttl of every node
	haTimeout   = time.Minute             // generous bound on a takeover or a recovery, under load
	healthPoll  = 20 * time.Millisecond   // between two rounds of GET /healthz
	healthHTTPT = 2 * time.Second         // one GET /healthz
	haPoll      = 50 * time.Millisecond   // between two tries of a request that must work again
	haCacheWait = 5 * time.Second         // for an asynchronous change to reach another node
	haLogLimit  = 200                     // lines of each node's log in a failure message
	haReadEvery = 50 * time.Millisecond   // the reader's pace during a takeover
	haWorkTime  = 4 * time.Second         // the multi-node client's traffic
	haKillAfter = 1500 * time.Millisecond // into that traffic, a node is killed
)

// haStore creates a database on pg for a shared rotor store and returns its
// URL (the superuser's: the store creates its schema on first start).
func haStore(t testing.TB, pg *dbtest.Postgres) string {
	t.Helper()
	return pg.DSN(pg.SuperUser, pg.SuperPassword, pg.CreateDatabase(t, "rotor"))
}

// haCluster is a group of nodes sharing the store dsn. The first node added
// creates master.key; the others start with a copy of it.
type haCluster struct {
	dsn   string
	args  []string // extra server flags of every node
	nodes []*haNode
}

// haNode is one rotor server of a cluster.
type haNode struct {
	*server
	id string
	// mayDie is set when the node is killed or may kill itself: its
	// cleanup then wants no exit status 0.
	mayDie atomic.Bool
}

func newCluster(dsn string, args ...string) *haCluster {
	return &haCluster{dsn: dsn, args: args}
}

// startCluster starts nodes n1…nN on the store dsn, n1 first.
func startCluster(t testing.TB, dsn string, n int, args ...string) *haCluster {
	t.Helper()
	c := newCluster(dsn, args...)
	for i := range n {
		c.add(t, fmt.Sprintf("n%d", i+1))
	}
	return c
}

// nodeArgs are the server flags of node id.
func (c *haCluster) nodeArgs(id string) []string {
	return append([]string{"--store", c.dsn, "--node-id", id, "--lease-ttl", haLeaseTTL}, c.args...)
}

// add starts node id on a new data dir, with env added to its environment,
// and stops it when t ends (wanting exit status 0 unless it was killed).
func (c *haCluster) add(t testing.TB, id string, env ...string) *haNode {
	t.Helper()
	dir := t.TempDir()
	if len(c.nodes) > 0 {
		copyMasterKey(t, c.nodes[0].dataDir, dir)
	}
	s := &server{
		opts:    serverOptions{dataDir: dir, args: c.nodeArgs(id), env: env},
		dataDir: dir,
		logs:    newLogBuffer(),
	}
	if err := s.start(); err != nil {
		t.Fatalf("node %s: %v", id, err)
	}
	n := &haNode{server: s, id: id}
	c.nodes = append(c.nodes, n)
	t.Cleanup(func() {
		code, err := s.stop()
		switch {
		case n.mayDie.Load():
		case err != nil:
			t.Errorf("node %s: %v", id, err)
		case code != 0:
			t.Errorf("node %s exited with status %d; log:\n%s", id, code, s.logs)
		}
	})
	return n
}

// copyMasterKey copies master.key from one data dir to another, keeping its
// mode (0600).
func copyMasterKey(t testing.TB, fromDir, toDir string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fromDir, "master.key"))
	must(t, err)
	must(t, os.WriteFile(filepath.Join(toDir, "master.key"), b, 0o600))
}

// running is the nodes that have not been killed.
func (c *haCluster) running() []*haNode {
	var out []*haNode
	for _, n := range c.nodes {
		if !n.mayDie.Load() {
			out = append(out, n)
		}
	}
	return out
}

// dumpLogs logs every node's lines other than requests if t failed.
func (c *haCluster) dumpLogs(t testing.TB) {
	t.Helper()
	if !t.Failed() {
		return
	}
	for _, n := range c.nodes {
		lines := strings.Split(strings.TrimSpace(rotationLog(n.server)), "\n")
		if len(lines) > haLogLimit {
			lines = append([]string{"…"}, lines[len(lines)-haLogLimit:]...)
		}
		t.Logf("log of node %s (requests left out):\n%s", n.id, strings.Join(lines, "\n"))
	}
}

// nodeHealth is the answer of GET /healthz.
type nodeHealth struct {
	Status string `json:"status"`
	Node   string `json:"node"`
	Leader bool   `json:"leader"`
}

var healthClient = &http.Client{Timeout: healthHTTPT}

// nodeHealthz asks n's /healthz.
func nodeHealthz(ctx context.Context, n *haNode) (nodeHealth, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.endpoint()+"/healthz", nil)
	if err != nil {
		return nodeHealth{}, err
	}
	resp, err := healthClient.Do(req)
	if err != nil {
		return nodeHealth{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nodeHealth{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return nodeHealth{}, fmt.Errorf("GET /healthz: %s %s", resp.Status, b)
	}
	var h nodeHealth
	if err := json.Unmarshal(b, &h); err != nil {
		return nodeHealth{}, fmt.Errorf("GET /healthz: %v in %s", err, b)
	}
	if h.Status != "ok" || h.Node != n.id {
		return nodeHealth{}, fmt.Errorf("GET /healthz of node %s = %s", n.id, b)
	}
	return h, nil
}

// leaders asks every node of nodes whether it leads and returns those that
// say so; an unanswered /healthz is an error.
func leaders(ctx context.Context, nodes []*haNode) ([]*haNode, error) {
	var out []*haNode
	for _, n := range nodes {
		h, err := nodeHealthz(ctx, n)
		if err != nil {
			return nil, err
		}
		if h.Leader {
			out = append(out, n)
		}
	}
	return out, nil
}

// waitLeader polls the /healthz of nodes until exactly one of them says it
// leads, and returns it.
func waitLeader(t testing.TB, nodes ...*haNode) *haNode {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), haTimeout)
	defer cancel()
	var (
		last    []*haNode
		lastErr error
	)
	for {
		ls, err := leaders(ctx, nodes)
		if err == nil && len(ls) == 1 {
			return ls[0]
		}
		if err == nil {
			last = ls
		} else if ctx.Err() == nil {
			lastErr = err
		}
		select {
		case <-time.After(healthPoll):
		case <-ctx.Done():
			t.Fatalf("not exactly one leader among %s within %v: last leaders %s (last error %v)", nodeIDs(nodes), haTimeout, nodeIDs(last), lastErr)
		}
	}
}

// waitNoLeader polls the /healthz of nodes until none says it leads.
func waitNoLeader(t testing.TB, nodes ...*haNode) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), haTimeout)
	defer cancel()
	for {
		ls, err := leaders(ctx, nodes)
		if err == nil && len(ls) == 0 {
			return
		}
		select {
		case <-time.After(healthPoll):
		case <-ctx.Done():
			t.Fatalf("still leading after %v: %s (last error %v)", haTimeout, nodeIDs(ls), err)
		}
	}
}

func nodeIDs(nodes []*haNode) string {
	ids := make([]string, len(nodes))
	for i, n := range nodes {
		ids[i] = n.id
	}
	return "[" + strings.Join(ids, " ") + "]"
}

// kill sends SIGKILL to n and waits for it to exit; it returns when it
// saw the exit.
func (n *haNode) kill(t testing.TB) time.Time {
	t.Helper()
	n.mayDie.Store(true)
	exited := n.exited()
	must(t, syscall.Kill(n.pid(), syscall.SIGKILL))
	select {
	case <-exited:
	case <-time.After(stopTimeout):
		t.Fatalf("node %s did not exit within %v of SIGKILL", n.id, stopTimeout)
	}
	died := time.Now()
	_, _ = n.stop() // forgets the dead process
	return died
}

// eventually retries f every haPoll until it returns nil, for at most
// haTimeout, and fails t with f's last error otherwise. It returns how long
// it took.
func eventually(t testing.TB, what string, f func(ctx context.Context) error) time.Duration {
	t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), haTimeout)
	defer cancel()
	for {
		err := f(ctx)
		if err == nil {
			return time.Since(start)
		}
		select {
		case <-time.After(haPoll):
		case <-ctx.Done():
			t.Fatalf("%s: not within %v; last error: %v", what, haTimeout, err)
		}
	}
}

// spreadTransport sends a client's requests to every node in turn (round
// robin) and, when a node cannot be reached — connection refused, reset,
// or closed before the response — sends the same request to the next node:
// a client configured with every node's address. The URL's host changes,
// the Host header stays the one the SDK signed.
type spreadTransport struct {
	base  *http.Transport
	addrs []string

	next      atomic.Uint64
	requests  atomic.Int64
	failovers atomic.Int64

	mu      sync.Mutex
	reasons map[string]int // failovers by kind of connection error
}

func newSpreadTransport(addrs []string) *spreadTransport {
	return &spreadTransport{
		base:    &http.Transport{MaxIdleConnsPerHost: 16, IdleConnTimeout: 30 * time.Second},
		addrs:   addrs,
		reasons: map[string]int{},
	}
}

func (s *spreadTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
	}
	s.requests.Add(1)
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	first := s.next.Add(1)
	var err error
	for i := range uint64(len(s.addrs)) {
		r := req.Clone(req.Context())
		r.Host = host
		r.URL.Host = s.addrs[(first+i)%uint64(len(s.addrs))]
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		r.ContentLength = int64(len(body))
		var resp *http.Response
		resp, err = s.base.RoundTrip(r)
		if err == nil {
			return resp, nil
		}
		kind := connectionError(err)
		if kind == "" || req.Context().Err() != nil {
			return nil, err
		}
		s.failovers.Add(1)
		s.mu.Lock()
		s.reasons[kind]++
		s.mu.Unlock()
	}
	return nil, fmt.Errorf("every node failed; last: %w", err)
}

// connectionError names the kind of err if it means that the node is
// unreachable or went away before answering, and is "" otherwise.
func connectionError(err error) string {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.EPIPE):
		return "broken pipe"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "closed before the response"
	}
	var op *net.OpError
	if errors.As(err, &op) {
		return "network error"
	}
	return ""
}

// failoverReasons is a copy of the failovers by kind.
func (s *spreadTransport) failoverReasons() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.reasons))
	for k, v := range s.reasons {
		out[k] = v
	}
	return out
}

// credsReader is an application that, every haReadEvery, reads a database
// secret's AWSCURRENT from one node after the other and logs in with it.
type credsReader struct {
	d     *dbTarget
	id    string
	seen  *seenPasswords
	nodes []*haNode

	stopOnce sync.Once
	stopping chan struct{}
	done     chan struct{}

	mu       sync.Mutex
	tries    int
	okBy     map[string]int // successful logins by version
	failures []string
	changed  chan struct{} // closed and replaced after each try
}

func startCredsReader(t testing.TB, d *dbTarget, id string, seen *seenPasswords, nodes ...*haNode) *credsReader {
	r := &credsReader{d: d, id: id, seen: seen, nodes: nodes,
		stopping: make(chan struct{}), done: make(chan struct{}), okBy: map[string]int{}, changed: make(chan struct{})}
	clients := make([]*secretsmanager.Client, len(nodes))
	for i, n := range nodes {
		clients[i] = client(t, n.server)
	}
	go func() {
		defer close(r.done)
		tick := time.NewTicker(haReadEvery)
		defer tick.Stop()
		for i := 0; ; i++ {
			r.try(clients[i%len(clients)], nodes[i%len(nodes)].id)
			select {
			case <-tick.C:
			case <-r.stopping:
				return
			}
		}
	}()
	t.Cleanup(func() { r.stop() })
	return r
}

// try reads AWSCURRENT from node with c and logs in with it.
func (r *credsReader) try(c *secretsmanager.Client, node string) {
	ctx, cancel := context.WithTimeout(context.Background(), loginTimeout)
	defer cancel()
	start := time.Now()
	version, creds, err := secretCreds(ctx, c, r.id, "AWSCURRENT", "")
	if err == nil {
		r.seen.add(creds.Password)
		err = r.d.login(ctx, creds)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tries++
	if err != nil {
		r.failures = append(r.failures, fmt.Sprintf("at %s (read on %s, version %q): %v", start.Format("15:04:05.000"), node, version, err))
	} else {
		r.okBy[version]++
	}
	close(r.changed)
	r.changed = make(chan struct{})
}

// waitLogin waits until a login with version's credentials succeeded.
func (r *credsReader) waitLogin(ctx context.Context, version string) error {
	ctx, cancel := context.WithTimeout(ctx, fleetWarmup)
	defer cancel()
	for {
		r.mu.Lock()
		ok, changed := r.okBy[version] > 0, r.changed
		r.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("no successful login with version %s: %w", version, ctx.Err())
		}
	}
}

// stop ends the reader and returns the number of tries and the failures.
func (r *credsReader) stop() (int, []string) {
	r.stopOnce.Do(func() { close(r.stopping) })
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.tries, slices.Clone(r.failures)
}

// fmtDate formats a date of rotor.GetRotationStatus (epoch seconds).
func fmtDate(d *float64) string {
	if d == nil {
		return "-"
	}
	return time.UnixMilli(int64(*d * 1000)).UTC().Format("15:04:05.000")
}
