package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rotor-secrets/rotor/internal/dbtest"
	"github.com/rotor-secrets/rotor/internal/lease"
	"github.com/rotor-secrets/rotor/internal/server"
)

func validClusterOptions() ClusterOptions {
	return ClusterOptions{Nodes: 3, Secrets: 10, Size: 20, Concurrency: 2, Duration: Duration(time.Second),
		Rounds: 10, LeaseTTL: Duration(time.Second), Executable: "/nonexistent/rotor"}
}

func TestClusterOptions(t *testing.T) {
	o := validClusterOptions()
	if err := o.check(); err != nil {
		t.Fatalf("valid options refused: %v", err)
	}
	for name, tc := range map[string]struct {
		change func(*ClusterOptions)
		want   string
	}{
		"one node":         {func(o *ClusterOptions) { o.Nodes = 1 }, "nodes"},
		"too many nodes":   {func(o *ClusterOptions) { o.Nodes = maxClusterNodes + 1 }, "nodes"},
		"no secrets":       {func(o *ClusterOptions) { o.Secrets = 0 }, "secrets"},
		"value too large":  {func(o *ClusterOptions) { o.Size = maxValueSize + 1 }, "size"},
		"no workers":       {func(o *ClusterOptions) { o.Concurrency = 0 }, "concurrency"},
		"no duration":      {func(o *ClusterOptions) { o.Duration = 0 }, "duration"},
		"no rounds":        {func(o *ClusterOptions) { o.Rounds = 0 }, "rounds"},
		"short lease":      {func(o *ClusterOptions) { o.LeaseTTL = Duration(100 * time.Millisecond) }, "lease-ttl"},
		"no executable":    {func(o *ClusterOptions) { o.Executable = "" }, "executable"},
		"negative warm-up": {func(o *ClusterOptions) { o.Warmup = -1 }, "duration"},
	} {
		t.Run(name, func(t *testing.T) {
			o := validClusterOptions()
			tc.change(&o)
			// Cluster refuses them before it starts anything.
			_, err := Cluster(t.Context(), o)
			var oe *OptionsError
			if !errors.As(err, &oe) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Cluster = %v, want an OptionsError about %s", err, tc.want)
			}
		})
	}
	o = validClusterOptions()
	o.Nodes, o.Rounds = 0, 0
	if err := o.check(); err == nil || !strings.Contains(err.Error(), "nodes") || !strings.Contains(err.Error(), "rounds") {
		t.Errorf("check = %v, want every problem at once", err)
	}
}

// fakeNode answers GET /healthz as a node that leads from a given time on
// (never when zero), or fails with status.
type fakeNode struct {
	id     string
	leads  atomic.Int64 // Unix nanoseconds from which it leads; 0: never
	status int          // not 0: answer with this status instead
	asked  atomic.Int64
}

func (f *fakeNode) start(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.asked.Add(1)
		if r.URL.Path != "/healthz" || r.Method != http.MethodGet {
			http.NotFound(w, r)
			return
		}
		if f.status != 0 {
			w.WriteHeader(f.status)
			return
		}
		from := f.leads.Load()
		leading := from != 0 && time.Now().UnixNano() >= from
		fmt.Fprintf(w, `{"status":"ok","node":%q,"leader":%t}`+"\n", f.id, leading)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestWaitLeader(t *testing.T) {
	const after = 200 * time.Millisecond
	follower, failing, leader := &fakeNode{id: "n1"}, &fakeNode{id: "n2", status: http.StatusServiceUnavailable}, &fakeNode{id: "n3"}
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close() // connection refused: a killed node
	eps := []string{follower.start(t), failing.start(t), dead.URL, leader.start(t)}
	t0 := time.Now()
	leader.leads.Store(t0.Add(after).UnixNano())
	seen, err := waitLeader(t.Context(), healthClient(), eps, 10*time.Millisecond, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	took := seen.At.Sub(t0)
	if len(seen.Leaders) != 1 || seen.Leaders[0] != 3 {
		t.Errorf("leaders %v, want [3]", seen.Leaders)
	}
	// Never before it leads (how soon after depends on the machine).
	if took < after {
		t.Errorf("leader seen %v after the start, before it led (%v)", took, after)
	}
	if seen.Polls < 2 || follower.asked.Load() != int64(seen.Polls) || failing.asked.Load() != int64(seen.Polls) {
		t.Errorf("%d polls; follower asked %d times, failing node %d; want every node asked every 10 ms round",
			seen.Polls, follower.asked.Load(), failing.asked.Load())
	}

	// Two leaders in one round are both reported (a server bug).
	other := &fakeNode{id: "n4"}
	other.leads.Store(1)
	leader.leads.Store(1)
	seen, err = waitLeader(t.Context(), healthClient(), []string{other.start(t), eps[3]}, 10*time.Millisecond, time.Second)
	if err != nil || len(seen.Leaders) != 2 || seen.Polls != 1 {
		t.Errorf("waitLeader = %+v, %v; want both leaders in the first round", seen, err)
	}
}

func TestWaitLeaderTimeout(t *testing.T) {
	none := &fakeNode{id: "n1"}
	failing := &fakeNode{id: "n2", status: http.StatusInternalServerError}
	t0 := time.Now()
	_, err := waitLeader(t.Context(), healthClient(), []string{none.start(t), failing.start(t)}, 10*time.Millisecond, 150*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "no node led within 150ms") || !strings.Contains(err.Error(), "500") {
		t.Errorf("waitLeader = %v, want a timeout naming the last failure", err)
	}
	if took := time.Since(t0); took < 150*time.Millisecond {
		t.Errorf("a 150ms timeout ended after %v", took)
	}
}

// fakeSecrets is a Secrets Manager with PutSecretValue and GetSecretValue,
// shared by every node; a lagging node serves the previous value.
type fakeSecrets struct {
	mu       sync.Mutex
	versions map[string][]string // name: values, newest last
}

func (f *fakeSecrets) node(t *testing.T, lagging bool) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct{ SecretId, SecretString string }
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &in); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		vs := f.versions[in.SecretId]
		switch op := r.Header.Get("X-Amz-Target"); {
		case strings.HasSuffix(op, ".PutSecretValue"):
			f.versions[in.SecretId] = append(vs, in.SecretString)
			json.NewEncoder(w).Encode(map[string]any{"Name": in.SecretId, "VersionId": fmt.Sprintf("v%d", len(vs)+1)})
		case strings.HasSuffix(op, ".GetSecretValue"):
			n := len(vs)
			if lagging && n > 1 {
				n--
			}
			json.NewEncoder(w).Encode(map[string]any{"Name": in.SecretId, "VersionId": fmt.Sprintf("v%d", n), "SecretString": vs[n-1]})
		default:
			http.Error(w, "unexpected "+op, http.StatusBadRequest)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestReadYourWrites(t *testing.T) {
	for _, tc := range []struct {
		name      string
		lagging   []bool
		wantStale int64
	}{
		{"consistent", []bool{false, false, false}, 0},
		// Round i reads on node i+1: with node 2 (index 1) lagging, rounds
		// 0, 3, 6, … of 30 read the value before the one just written.
		{"one node lagging", []bool{false, true, false}, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeSecrets{versions: map[string][]string{"s0": {"initial"}, "s1": {"initial"}}}
			var clients []*secretsmanager.Client
			for _, lag := range tc.lagging {
				clients = append(clients, NewClient(f.node(t, lag), server.DefaultRegion, staticCreds("AKRTBENCHTEST0000000", "secret"), 1))
			}
			res, err := readYourWrites(t.Context(), clients, []string{"s0", "s1"}, 30, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.Rounds != 30 || res.Round.Requests != 30 || res.Round.Errors != 0 || res.Stale != tc.wantStale {
				t.Errorf("result %+v, want 30 rounds and %d stale reads", res, tc.wantStale)
			}
			if (res.StaleExample != "") != (tc.wantStale > 0) || tc.wantStale > 0 && !strings.Contains(res.StaleExample, "round 0: put version v2 on node 1, node 2 returned version v1") {
				t.Errorf("stale example %q", res.StaleExample)
			}
			if got := len(f.versions["s0"]) + len(f.versions["s1"]); got != 32 {
				t.Errorf("%d versions stored, want the 2 initial ones and 30 puts", got)
			}
		})
	}
}

func TestParseProcStat(t *testing.T) {
	// A command name with spaces and parentheses; ppid 4242, utime 150,
	// stime 50, cutime 30, cstime 20 ticks.
	stat := "1234 (post (gres) x) S 4242 1234 1234 0 -1 4194560 100 0 0 0 150 50 30 20 20 0 1 0 100 1000 100\n"
	got, err := parseProcStat([]byte(stat))
	if err != nil {
		t.Fatal(err)
	}
	want := procStat{ppid: 4242, cpu: 2 * time.Second, children: 500 * time.Millisecond}
	if got != want {
		t.Errorf("parseProcStat = %+v, want %+v", got, want)
	}
	for _, bad := range []string{"1234 no parens", "1234 (x) S 1 2 3", "1234 (x) S x 1 1 0 -1 0 0 0 0 0 1 1 1 1"} {
		if _, err := parseProcStat([]byte(bad)); err == nil {
			t.Errorf("parseProcStat(%q) succeeded", bad)
		}
	}
}

func TestRedactArgs(t *testing.T) {
	args := []string{"server", "--store", "postgres://postgres:s3cret@127.0.0.1:5432/rotor?sslmode=disable", "--node-id", "n1"}
	got := redactArgs(args)
	if strings.Contains(strings.Join(got, " "), "s3cret") || got[2] != "postgres://postgres:xxxxx@127.0.0.1:5432/rotor?sslmode=disable" {
		t.Errorf("redactArgs = %q", got)
	}
	if args[2] != "postgres://postgres:s3cret@127.0.0.1:5432/rotor?sslmode=disable" {
		t.Error("redactArgs changed its argument")
	}
}

// TestPostgresFigures checks what the mode reads of a PostgreSQL server
// beside the API: the postmaster's CPU with its backends', and the rotation
// lease's time left in the table internal/lease keeps.
func TestPostgresFigures(t *testing.T) {
	pg := dbtest.StartPostgres(t)
	ctx := t.Context()
	dsn := pg.DSN(pg.SuperUser, pg.SuperPassword, "")
	db, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)

	pm, err := postmasterPID(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if pm == os.Getpid() {
		t.Fatalf("postmaster pid %d is this process", pm)
	}
	cpu0, err := treeCPU(pm)
	if err != nil {
		t.Fatal(err)
	}
	// Work done by this session's backend, a child of the postmaster.
	var n int64
	if err := db.QueryRow(ctx, "SELECT count(*) FROM generate_series(1, 3000000) g WHERE g % 7 = 0").Scan(&n); err != nil {
		t.Fatal(err)
	}
	cpu1, err := treeCPU(pm)
	if err != nil {
		t.Fatal(err)
	}
	if cpu1-cpu0 < 10*time.Millisecond {
		t.Errorf("postgres CPU went from %v to %v over a query of 3 million rows", cpu0, cpu1)
	}

	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	const ttl = 10 * time.Second
	l, err := lease.Open(ctx, pool, lease.Options{Name: server.RotationLease, Holder: "n1/0123abcd", TTL: ttl, Renew: ttl / 3})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := l.TryAcquire(ctx); err != nil || !ok {
		t.Fatalf("TryAcquire = %v, %v", ok, err)
	}
	left, err := leaseLeft(ctx, db, "n1")
	if err != nil || left <= ttl-2*time.Second || left > ttl {
		t.Errorf("leaseLeft = %v, %v; want just under %v", left, err, ttl)
	}
	if _, err := leaseLeft(ctx, db, "n"); err == nil {
		t.Error("leaseLeft of a node that does not hold the lease succeeded")
	}
}

// buildRotor builds ./cmd/rotor of this module into a temporary directory,
// as e2e does: the mode starts rotor's binary as every node.
func buildRotor(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	gomod, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(gomod)) == "" || strings.TrimSpace(string(gomod)) == os.DevNull {
		t.Fatalf("go env GOMOD: %q, %v", gomod, err)
	}
	exe := filepath.Join(t.TempDir(), "rotor")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", exe, "./cmd/rotor")
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(gomod)))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/rotor: %v\n%s", err, out)
	}
	return exe
}

// TestClusterSmall runs the whole mode on 3 nodes with tiny passes and a
// lease TTL of 1s.
func TestClusterSmall(t *testing.T) {
	exe := buildRotor(t)
	o := ClusterOptions{Nodes: 3, Secrets: 50, Size: 100, Concurrency: 4, Duration: Duration(300 * time.Millisecond),
		Rounds: 60, LeaseTTL: Duration(time.Second), Executable: exe}
	var phases []string
	var mu sync.Mutex
	o.Progress = func(p Progress) {
		mu.Lock()
		defer mu.Unlock()
		if !slices.Contains(phases, p.Phase) {
			phases = append(phases, p.Phase)
		}
	}
	res, err := Cluster(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range res.Warnings {
		t.Logf("warning: %s", w)
	}
	for _, x := range []*Takeover{res.Failover, res.Handover} {
		if x != nil {
			b, _ := json.Marshal(x)
			t.Logf("%s", b)
		}
	}
	if res.Mode != "cluster" || res.Machine.CPUs < 1 || res.Postgres.Version == "" || res.Options.Warmup != Duration(30*time.Millisecond) {
		t.Errorf("mode %q, machine %+v, postgres %+v, options %+v", res.Mode, res.Machine, res.Postgres, res.Options)
	}
	if res.PostgresSettings["fsync"] == "" || res.PostgresSettings["synchronous_commit"] == "" {
		t.Errorf("postgres settings %v", res.PostgresSettings)
	}
	if res.Setup.Requests != 2*50+2 || res.Setup.Errors != 0 {
		t.Errorf("setup %+v, want 102 secrets created (two sets of 50, 2 for read-your-writes)", res.Setup)
	}
	for name, c := range map[string]ClusterCompare{"get": res.Get, "put": res.Put} {
		for _, p := range []ClusterPass{c.Cluster, c.Single} {
			if p.Requests == 0 || p.Errors != 0 || p.Latency.P99 <= 0 || p.NodesCPU <= 0 || p.PostgresCPU == nil || p.ServerCPUPer1000 < p.NodesCPUPer1000 {
				t.Errorf("%s ×%d nodes: %+v, want requests without errors and the CPU of the nodes and postgres", name, p.Nodes, p)
			}
		}
		if c.Cluster.Nodes != 3 || c.Single.Nodes != 1 || c.Ratio <= 0 {
			t.Errorf("%s: %d and %d nodes, ratio %v", name, c.Cluster.Nodes, c.Single.Nodes, c.Ratio)
		}
	}
	if y := res.ReadYourWrites; y.Rounds != 60 || y.Round.Requests != 60 || y.Round.Errors != 0 || y.Stale != 0 {
		t.Errorf("read-your-writes %+v, want 60 rounds without an error or a stale read", y)
	}
	if len(res.Nodes) != 3 {
		t.Fatalf("%d nodes", len(res.Nodes))
	}
	for _, n := range res.Nodes {
		if n.Startup <= 0 || n.RSS <= 0 || n.RSSPeak < n.RSS || !strings.Contains(strings.Join(n.Args, " "), ":xxxxx@") {
			t.Errorf("node %+v, want its startup, RSS and its args with the store's password hidden", n)
		}
	}
	f, h := res.Failover, res.Handover
	if f == nil || h == nil {
		t.Fatalf("failover %+v, handover %+v; want both with 3 nodes", f, h)
	}
	if f.Signal != "SIGKILL" || h.Signal != "SIGTERM" || h.From != f.To || f.From == f.To || h.To == h.From || h.To == f.From {
		t.Errorf("failover %s→%s by %s, handover %s→%s by %s", f.From, f.To, f.Signal, h.From, h.To, h.Signal)
	}
	// No takeover before the lease could have expired (after a SIGKILL);
	// how long after depends on the machine, so there is no upper bound.
	for _, x := range []*Takeover{f, h} {
		if x.Seconds < x.ExpectedMin || x.Polls < 1 {
			t.Errorf("%s: takeover in %v s after %d polls, want at least %v s", x.Signal, x.Seconds, x.Polls, x.ExpectedMin)
		}
		if x.Reads.Requests == 0 || x.Reads.Errors != 0 {
			t.Errorf("%s: reads on %v meanwhile: %+v, want some and no failure", x.Signal, x.ReadNodes, x.Reads)
		}
	}
	if f.LeaseExpiredAfter == nil || *f.LeaseExpiredAfter > f.Seconds || h.ExitedAfter == nil || len(f.ReadNodes) != 2 || len(h.ReadNodes) != 1 {
		t.Errorf("failover %+v, handover %+v", f, h)
	}
	for _, want := range []string{"start postgres", "create", "first reads", "get ×3 nodes", "put ×1 node", "read-your-writes", "SIGKILL of leader " + f.From} {
		if !slices.Contains(phases, want) {
			t.Errorf("no progress report of phase %q in %q", want, phases)
		}
	}

	// Everything is gone: the nodes and their data dirs.
	for _, n := range res.Nodes {
		i := slices.Index(n.Args, "--data-dir")
		if i < 0 || i+1 >= len(n.Args) {
			t.Fatalf("node %s: no --data-dir in %q", n.ID, n.Args)
		}
		if _, err := os.Stat(filepath.Dir(n.Args[i+1])); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("node %s: the benchmark's directory is still there (%v)", n.ID, err)
		}
		if conn, err := net.DialTimeout("tcp", strings.TrimPrefix(n.Endpoint, "http://"), time.Second); err == nil {
			conn.Close()
			t.Errorf("node %s still listens on %s", n.ID, n.Endpoint)
		}
	}
}
