package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/jackc/pgx/v5"

	"github.com/rotor-secrets/rotor/internal/auth"
	"github.com/rotor-secrets/rotor/internal/dbtest"
	"github.com/rotor-secrets/rotor/internal/server"
)

// Bounds of the cluster mode.
const (
	maxClusterNodes = 16                     // of 10 store connections each: dbtest's PostgreSQL allows 200
	minLeaseTTL     = 300 * time.Millisecond // the server's own minimum
	// leaderPoll is how often every node's GET /healthz is asked whether it
	// leads while a takeover is timed.
	leaderPoll    = 10 * time.Millisecond
	healthTimeout = time.Second // one GET /healthz
	// The failover reader starts readerLead before the signal and stops
	// readerTail after the takeover.
	readerLead = 500 * time.Millisecond
	readerTail = 500 * time.Millisecond
	// rywVersions is how many versions read-your-writes adds to each of its
	// secrets: under the 100 unlabelled versions a day a secret allows.
	rywVersions = 50
)

// ClusterOptions configure cluster.
type ClusterOptions struct {
	Nodes       int      `json:"nodes"`       // N rotor servers on one PostgreSQL store
	Secrets     int      `json:"secrets"`     // K secrets read at random and written round robin
	Size        int      `json:"size_bytes"`  // B bytes of SecretString each
	Concurrency int      `json:"concurrency"` // C workers, spread round robin over the nodes
	Duration    Duration `json:"duration"`    // of each load pass
	Warmup      Duration `json:"warmup"`      // unmeasured load before each pass; 0: min(1s, D/10)
	Rounds      int      `json:"rounds"`      // read-your-writes rounds
	LeaseTTL    Duration `json:"lease_ttl"`   // every node's --lease-ttl
	// ServerFlags are every node's flags besides --listen, --data-dir,
	// --store and --node-id (the benchmark's, --lease-ttl, then the
	// caller's, which it records here).
	ServerFlags []string `json:"server_flags"`
	// Executable is rotor's binary, started as every node.
	Executable string         `json:"-"`
	Progress   func(Progress) `json:"-"`
}

// ClusterResult is the outcome of cluster.
type ClusterResult struct {
	Mode     string         `json:"mode"` // "cluster"
	Date     time.Time      `json:"date"`
	Machine  Machine        `json:"machine"`
	Options  ClusterOptions `json:"options"`
	Postgres Database       `json:"postgres"`
	// PostgresSettings are the server's settings that bear on the cost of
	// a commit (fsync, synchronous_commit, full_page_writes): the
	// throwaway server runs without durability.
	PostgresSettings map[string]string `json:"postgres_settings"`
	Nodes            []ClusterNode     `json:"nodes"`
	// Setup is the creation of the secrets, through CreateSecret on the
	// first node.
	Setup Stats `json:"setup"`
	// Get and Put are the load spread over every node, then the same load
	// on the first node alone (the others idle) on the same store.
	Get ClusterCompare `json:"get_secret_value"`
	Put ClusterCompare `json:"put_secret_value"`
	// ReadYourWrites is PutSecretValue on one node followed by
	// GetSecretValue of the same secret on the next.
	ReadYourWrites ReadYourWrites `json:"read_your_writes"`
	// Failover is the leader killed (SIGKILL); Handover, with 3 nodes or
	// more, the next leader stopped (SIGTERM). Nil when not reached.
	Failover *Takeover `json:"failover"`
	Handover *Takeover `json:"handover"`
	Warnings []string  `json:"warnings,omitempty"`
}

// ClusterNode is one node of a cluster run.
type ClusterNode struct {
	ID       string   `json:"id"`
	Endpoint string   `json:"endpoint"`
	Args     []string `json:"args"`      // the command line after the executable, the store's password hidden
	Startup  float64  `json:"startup_s"` // exec to the first 200 of /readyz
	// RSS is the resident set after the load passes and read-your-writes,
	// RSSPeak its peak (VmHWM) then.
	RSS     int64 `json:"rss_bytes"`
	RSSPeak int64 `json:"rss_peak_bytes"`
}

// ClusterCompare is a load over every node next to the same load on one.
type ClusterCompare struct {
	Cluster ClusterPass `json:"cluster"`
	Single  ClusterPass `json:"single"`
	// Ratio is Cluster's req/s over Single's.
	Ratio float64 `json:"ratio"`
}

// ClusterPass is one measured load on a cluster, with the CPU it cost.
type ClusterPass struct {
	Nodes int `json:"nodes"` // the nodes the load was spread over
	Stats
	// NodesCPU is the user+system CPU time of every running node during
	// the pass (those without load too), summed.
	NodesCPU        float64 `json:"nodes_cpu_s"`
	NodesCPUPer1000 float64 `json:"nodes_cpu_s_per_1000_req"`
	// PostgresCPU is that of the PostgreSQL server: the postmaster and
	// every process it started; nil when unknown.
	PostgresCPU        *float64 `json:"postgres_cpu_s"`
	PostgresCPUPer1000 *float64 `json:"postgres_cpu_s_per_1000_req"`
	// ServerCPUPer1000 is the nodes' and PostgreSQL's together (the nodes'
	// alone when PostgreSQL's is unknown).
	ServerCPUPer1000 float64 `json:"server_cpu_s_per_1000_req"`
	ClientCPU        float64 `json:"client_cpu_s"`
	ClientCPUPer1000 float64 `json:"client_cpu_s_per_1000_req"`
}

// ReadYourWrites is the outcome of rounds of PutSecretValue on node i mod N
// then GetSecretValue of the same secret on node i+1 mod N.
type ReadYourWrites struct {
	Rounds int `json:"rounds"`
	// Stale counts the reads that did not return the value and version
	// just written (expected: 0); StaleExample describes the first.
	Stale        int64  `json:"stale_reads"`
	StaleExample string `json:"stale_example,omitempty"`
	// Round is the latency of a round (put and get) and the failed rounds
	// by error code.
	Round Stats `json:"round"`
}

// Takeover is the lease of the rotation leader moving to another node after
// its holder was signalled.
type Takeover struct {
	Signal string `json:"signal"` // SIGKILL or SIGTERM
	From   string `json:"from"`   // the leader signalled
	To     string `json:"to"`     // the node that took over
	// Seconds is from the signal to the first answer of another node's
	// GET /healthz saying it leads, every node asked every PollInterval.
	Seconds      float64 `json:"takeover_s"`
	Polls        int     `json:"polls"`
	PollInterval float64 `json:"poll_interval_s"`
	// Expected bounds Seconds from the lease's TTL, renewal (TTL/3) and the
	// other nodes' retry interval (min(1s, TTL/10)), plus a poll.
	ExpectedMin float64 `json:"expected_min_s"`
	ExpectedMax float64 `json:"expected_max_s"`
	// LeaseExpiredAfter (SIGKILL) is when, after the kill, the lease the
	// killed node last renewed expired, by the database's rotor_leases;
	// nil when it could not be read.
	LeaseExpiredAfter *float64 `json:"lease_expired_after_s,omitempty"`
	// ExitedAfter (SIGTERM) is from the signal to the process's exit.
	ExitedAfter *float64 `json:"exited_after_s,omitempty"`
	// Reads is GetSecretValue by Concurrency workers to the surviving
	// nodes (ReadNodes), from shortly before the signal to shortly after
	// the takeover: failures here are requests the takeover cost.
	ReadNodes []string `json:"read_nodes"`
	Reads     Stats    `json:"reads"`
}

func (o *ClusterOptions) check() error {
	var errs []error
	if o.Nodes < 2 || o.Nodes > maxClusterNodes {
		errs = append(errs, fmt.Errorf("nodes: want 2 to %d", maxClusterNodes))
	}
	if o.Secrets < 1 {
		errs = append(errs, errors.New("secrets: want at least 1"))
	}
	if o.Size < 1 || o.Size > maxValueSize {
		errs = append(errs, fmt.Errorf("size: want 1 to %d bytes", maxValueSize))
	}
	if o.Concurrency < 1 {
		errs = append(errs, errors.New("concurrency: want at least 1"))
	}
	if o.Duration <= 0 || o.Warmup < 0 {
		errs = append(errs, errors.New("duration: want a positive duration (and a warm-up of 0 or more)"))
	}
	if o.Rounds < 1 {
		errs = append(errs, errors.New("rounds: want at least 1"))
	}
	if time.Duration(o.LeaseTTL) < minLeaseTTL {
		errs = append(errs, fmt.Errorf("lease-ttl: want at least %v", minLeaseTTL))
	}
	if o.Executable == "" {
		errs = append(errs, errNoExecutable)
	}
	return optionsError(errs)
}

// Cluster measures several rotor servers sharing one PostgreSQL store: a
// throwaway PostgreSQL server (internal/dbtest) and N child servers on
// temporary data directories, all removed afterwards. It measures
// GetSecretValue and PutSecretValue spread over the nodes and on one node,
// reads of a write on another node, and the takeover of the rotation lease
// after the leader is killed and after the next one is stopped.
func Cluster(ctx context.Context, o ClusterOptions) (_ *ClusterResult, err error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	if o.Warmup == 0 {
		o.Warmup = Duration(min(time.Second, time.Duration(o.Duration)/10))
	}
	nodeFlags := append([]string{"--lease-ttl", o.LeaseTTL.String()}, o.ServerFlags...)
	o.ServerFlags = append(slices.Clip(serverFlags), nodeFlags...)
	res := &ClusterResult{Mode: "cluster", Date: time.Now().UTC(), Machine: ThisMachine(), Options: o}

	report(o.Progress, "start postgres")
	pg, err := dbtest.StartPostgresServer(ctx)
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := pg.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	res.Postgres = Database{Engine: "postgres", Version: pg.Version}
	if err := pg.Exec(ctx, "CREATE DATABASE rotor"); err != nil {
		return nil, fmt.Errorf("create the store's database: %w", err)
	}
	dsn := pg.DSN(pg.SuperUser, pg.SuperPassword, "rotor")
	db, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("connect to postgres: %w", err)
	}
	defer db.Close(context.WithoutCancel(ctx))
	if res.PostgresSettings, err = pgSettings(ctx, db, "fsync", "synchronous_commit", "full_page_writes"); err != nil {
		return nil, err
	}
	postmaster, perr := postmasterPID(ctx, db)
	if perr != nil {
		res.Warnings = append(res.Warnings, "PostgreSQL's CPU is unknown: "+perr.Error())
	}

	dir, err := os.MkdirTemp("", "rotor-bench-cluster-")
	if err != nil {
		return nil, err
	}
	defer removeAll(dir, &err)
	id, secret, err := auth.GenerateKeyPair()
	if err != nil {
		return nil, err
	}
	cl := &clusterRun{o: o, postmaster: postmaster}
	defer cl.stop(&err)
	for i := range o.Nodes {
		nodeID := fmt.Sprintf("n%d", i+1)
		report(o.Progress, "start node "+nodeID)
		nodeDir := filepath.Join(dir, nodeID)
		if err := os.Mkdir(nodeDir, 0o700); err != nil {
			return nil, err
		}
		if i > 0 { // every node needs the first one's master key
			if err := copyFile(filepath.Join(cl.nodes[0].dir, masterKeyFile), filepath.Join(nodeDir, masterKeyFile)); err != nil {
				return nil, fmt.Errorf("copy the master key to node %s: %w", nodeID, err)
			}
		}
		args := append([]string{"--store", dsn, "--node-id", nodeID}, nodeFlags...)
		child, err := StartChildWithKey(ctx, o.Executable, nodeDir, id, secret, args...)
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", nodeID, err)
		}
		n := &clusterNode{id: nodeID, dir: nodeDir, child: child,
			client: NewClient(child.Endpoint, server.DefaultRegion, child.Credentials(), (o.Concurrency+o.Nodes-1)/o.Nodes)}
		cl.nodes = append(cl.nodes, n)
		res.Nodes = append(res.Nodes, ClusterNode{ID: nodeID, Endpoint: child.Endpoint, Args: redactArgs(child.Args), Startup: child.Startup.Seconds()})
	}
	ttl := time.Duration(o.LeaseTTL)
	report(o.Progress, "wait for a leader")
	first, err := waitLeader(ctx, healthClient(), cl.endpoints(cl.nodes), leaderPoll, 2*ttl+10*time.Second)
	if err != nil {
		return nil, fmt.Errorf("no node leads after startup: %w", err)
	}
	if len(first.Leaders) > 1 {
		res.Warnings = append(res.Warnings, fmt.Sprintf("after startup %d nodes said they led at once", len(first.Leaders)))
	}

	// One client for the single-node passes and the setup, with an idle
	// connection for every worker.
	n1 := cl.nodes[0]
	single := NewClient(n1.child.Endpoint, server.DefaultRegion, n1.child.Credentials(), o.Concurrency)
	prefix := "bench/cluster/" + runID()
	setA := make([]string, o.Secrets) // read by both get passes, written by the cluster's put pass
	setB := make([]string, o.Secrets) // written by the single node's put pass
	ryw := make([]string, (o.Rounds+rywVersions-1)/rywVersions)
	for i := range setA {
		setA[i], setB[i] = secretName(prefix+"/a", i), secretName(prefix+"/b", i)
	}
	for i := range ryw {
		ryw[i] = secretName(prefix+"/ryw", i)
	}
	if res.Setup, err = createSecrets(ctx, single, slices.Concat(setA, setB, ryw), o.Size, o.Concurrency, o.Progress); err != nil {
		return nil, err
	}

	// The day's first read of a secret records its LastAccessedDate, a
	// write, which empties every node's read cache: read each once, so that
	// the get passes measure reads, not those writes.
	firstReads, err := Run(ctx, Load{Concurrency: min(o.Concurrency, len(setA)), Count: int64(len(setA)), Phase: "first reads", Progress: o.Progress},
		func(ctx context.Context, _ int, seq int64) error {
			ctx, cancel := context.WithTimeout(ctx, requestTimeout)
			defer cancel()
			_, err := single.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(setA[seq])})
			return err
		})
	if err != nil {
		return nil, err
	}
	if firstReads.Errors > 0 {
		return nil, fmt.Errorf("first reads of %d secrets: %d failed (%s)", len(setA), firstReads.Errors, codes(firstReads.ErrorCodes))
	}

	spreadTag := fmt.Sprintf(" ×%d nodes", o.Nodes)
	perNode := func(mk func(c *secretsmanager.Client) Op) Op {
		ops := make([]Op, len(cl.nodes))
		for i, n := range cl.nodes {
			ops[i] = mk(n.client)
		}
		return spread(ops)
	}
	C := o.Concurrency
	if res.Get.Cluster, err = cl.pass(ctx, "get"+spreadTag, o.Nodes, perNode(func(c *secretsmanager.Client) Op { return getOp(c, setA, C) })); err != nil {
		return nil, err
	}
	if res.Get.Single, err = cl.pass(ctx, "get ×1 node", 1, getOp(single, setA, C)); err != nil {
		return nil, err
	}
	if res.Put.Cluster, err = cl.pass(ctx, "put"+spreadTag, o.Nodes, perNode(func(c *secretsmanager.Client) Op { return putOp(c, setA, o.Size, C) })); err != nil {
		return nil, err
	}
	if res.Put.Single, err = cl.pass(ctx, "put ×1 node", 1, putOp(single, setB, o.Size, C)); err != nil {
		return nil, err
	}
	for _, c := range []*ClusterCompare{&res.Get, &res.Put} {
		if c.Single.PerSecond > 0 {
			c.Ratio = c.Cluster.PerSecond / c.Single.PerSecond
		}
	}
	if n := res.Put.Cluster.ErrorCodes["LimitExceededException"] + res.Put.Single.ErrorCodes["LimitExceededException"]; n > 0 {
		res.Warnings = append(res.Warnings, fmt.Sprintf("%d puts were refused with LimitExceededException: a secret takes about 100 new versions a day; use more --secrets", n))
	}

	if res.ReadYourWrites, err = readYourWrites(ctx, cl.clients(cl.nodes), ryw, o.Rounds, o.Progress); err != nil {
		return nil, err
	}
	for i, n := range cl.nodes {
		if res.Nodes[i].RSS, res.Nodes[i].RSSPeak, err = n.child.RSS(); err != nil {
			return nil, fmt.Errorf("node %s: %w", n.id, err)
		}
	}

	leader := cl.nodes[first.Leaders[0]]
	if res.Failover, err = cl.takeover(ctx, db, leader, syscall.SIGKILL, setA); err != nil {
		return nil, err
	}
	if o.Nodes >= 3 {
		if res.Handover, err = cl.takeover(ctx, db, cl.node(res.Failover.To), syscall.SIGTERM, setA); err != nil {
			return nil, err
		}
	}
	for _, t := range []*Takeover{res.Failover, res.Handover} {
		switch {
		case t == nil || t.Seconds >= t.ExpectedMin && t.Seconds <= t.ExpectedMax:
		default:
			res.Warnings = append(res.Warnings, fmt.Sprintf("the takeover after %s took %.3f s, outside the %.3f–%.3f s the lease's timing allows (a loaded machine, or a server bug)",
				t.Signal, t.Seconds, t.ExpectedMin, t.ExpectedMax))
		}
	}
	if n := res.ReadYourWrites.Stale; n > 0 {
		res.Warnings = append(res.Warnings, fmt.Sprintf("%d reads on another node did not see the write just acknowledged (first: %s)", n, res.ReadYourWrites.StaleExample))
	}
	return res, nil
}

// clusterRun is the nodes of a cluster run.
type clusterRun struct {
	o          ClusterOptions
	nodes      []*clusterNode
	postmaster int // 0: unknown
}

type clusterNode struct {
	id     string
	dir    string
	child  *Child
	client *secretsmanager.Client // ceil(C/N) idle connections
	// gone is set when the benchmark killed or stopped the node; killed
	// when it was SIGKILL.
	gone, killed bool
}

// running is the nodes the benchmark has not stopped.
func (cl *clusterRun) running() []*clusterNode {
	var out []*clusterNode
	for _, n := range cl.nodes {
		if !n.gone {
			out = append(out, n)
		}
	}
	return out
}

func (cl *clusterRun) node(id string) *clusterNode {
	for _, n := range cl.nodes {
		if n.id == id {
			return n
		}
	}
	return nil
}

func (cl *clusterRun) endpoints(nodes []*clusterNode) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.child.Endpoint
	}
	return out
}

func (cl *clusterRun) clients(nodes []*clusterNode) []*secretsmanager.Client {
	out := make([]*secretsmanager.Client, len(nodes))
	for i, n := range nodes {
		out[i] = n.client
	}
	return out
}

// stop stops the nodes still running, one after the other, and makes the
// first failure the function's error when there was none. A node the
// benchmark killed is not a failure.
func (cl *clusterRun) stop(err *error) {
	for _, n := range cl.nodes {
		if n.killed {
			<-n.child.done
			continue
		}
		stopChild(n.child, err)
	}
}

// spread sends worker w's operations to ops[w mod len(ops)]: the workers
// round robin over the nodes, each node's through its own client.
func spread(ops []Op) Op {
	if len(ops) == 1 {
		return ops[0]
	}
	return func(ctx context.Context, worker int, seq int64) error {
		return ops[worker%len(ops)](ctx, worker, seq)
	}
}

// pass warms up, then measures op with the CPU of every running node and
// of PostgreSQL.
func (cl *clusterRun) pass(ctx context.Context, phase string, nodes int, op Op) (ClusterPass, error) {
	o := cl.o
	if o.Warmup > 0 {
		if _, err := Run(ctx, Load{Concurrency: o.Concurrency, Duration: time.Duration(o.Warmup), Phase: "warm-up, " + phase, Progress: o.Progress}, op); err != nil {
			return ClusterPass{}, err
		}
	}
	running := cl.running()
	nodes0, err := nodesCPU(running)
	if err != nil {
		return ClusterPass{}, err
	}
	pg0, pgErr := cl.postgresCPU()
	self0, err := ProcCPU(os.Getpid())
	if err != nil {
		return ClusterPass{}, fmt.Errorf("own CPU: %w", err)
	}
	st, err := Run(ctx, Load{Concurrency: o.Concurrency, Duration: time.Duration(o.Duration), Phase: phase, Progress: o.Progress}, op)
	if err != nil {
		return ClusterPass{}, err
	}
	self1, err := ProcCPU(os.Getpid())
	if err != nil {
		return ClusterPass{}, fmt.Errorf("own CPU: %w", err)
	}
	nodes1, err := nodesCPU(running)
	if err != nil {
		return ClusterPass{}, err
	}
	pg1, pgErr1 := cl.postgresCPU()
	p := ClusterPass{Nodes: nodes, Stats: st, NodesCPU: cpuSeconds(nodes1 - nodes0), ClientCPU: cpuSeconds(self1 - self0)}
	if pgErr == nil && pgErr1 == nil {
		cpu := cpuSeconds(pg1 - pg0)
		p.PostgresCPU = &cpu
	}
	if st.Requests > 0 {
		per := func(s float64) float64 { return s / float64(st.Requests) * 1000 }
		p.NodesCPUPer1000, p.ClientCPUPer1000 = per(p.NodesCPU), per(p.ClientCPU)
		p.ServerCPUPer1000 = p.NodesCPUPer1000
		if p.PostgresCPU != nil {
			pgPer := per(*p.PostgresCPU)
			p.PostgresCPUPer1000 = &pgPer
			p.ServerCPUPer1000 += pgPer
		}
	}
	return p, nil
}

// nodesCPU is the CPU time the nodes have used so far, summed.
func nodesCPU(nodes []*clusterNode) (time.Duration, error) {
	var total time.Duration
	for _, n := range nodes {
		cpu, err := n.child.CPU()
		if err != nil {
			return 0, fmt.Errorf("CPU of node %s: %w", n.id, err)
		}
		total += cpu
	}
	return total, nil
}

func (cl *clusterRun) postgresCPU() (time.Duration, error) {
	if cl.postmaster == 0 {
		return 0, errors.New("no postmaster")
	}
	return treeCPU(cl.postmaster)
}

// readYourWrites runs rounds one after another: round i writes a new value
// to names[i mod len(names)] on clients[i mod N] and reads it back on
// clients[(i+1) mod N], counting the reads that return anything else.
func readYourWrites(ctx context.Context, clients []*secretsmanager.Client, names []string, rounds int, progress func(Progress)) (ReadYourWrites, error) {
	var (
		mu    sync.Mutex
		res   = ReadYourWrites{Rounds: rounds}
		tag   = runID()
		nodes = len(clients)
	)
	st, err := Run(ctx, Load{Concurrency: 1, Count: int64(rounds), Phase: "read-your-writes", Progress: progress},
		func(ctx context.Context, _ int, seq int64) error {
			ctx, cancel := context.WithTimeout(ctx, requestTimeout)
			defer cancel()
			i := int(seq)
			name, val := names[i%len(names)], fmt.Sprintf("ryw-%s-%d", tag, i)
			put, err := clients[i%nodes].PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
				SecretId: aws.String(name), SecretString: aws.String(val)})
			if err != nil {
				return err
			}
			got, err := clients[(i+1)%nodes].GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)})
			if err != nil {
				return err
			}
			if aws.ToString(got.SecretString) != val || aws.ToString(got.VersionId) != aws.ToString(put.VersionId) {
				mu.Lock()
				defer mu.Unlock()
				if res.Stale == 0 {
					res.StaleExample = fmt.Sprintf("round %d: put version %s on node %d, node %d returned version %s",
						i, aws.ToString(put.VersionId), i%nodes+1, (i+1)%nodes+1, aws.ToString(got.VersionId))
				}
				res.Stale++
			}
			return nil
		})
	res.Round = st
	return res, err
}

// takeover signals from, the leader, and times the lease's move to another
// running node while Concurrency workers read names from the running nodes
// other than from.
func (cl *clusterRun) takeover(ctx context.Context, db *pgx.Conn, from *clusterNode, sig syscall.Signal, names []string) (_ *Takeover, err error) {
	var survivors []*clusterNode
	for _, n := range cl.running() {
		if n != from {
			survivors = append(survivors, n)
		}
	}
	ttl := time.Duration(cl.o.LeaseTTL)
	renew, retry := ttl/3, min(time.Second, ttl/10) // as internal/server sets them
	t := &Takeover{Signal: sigName(sig), From: from.id, PollInterval: leaderPoll.Seconds()}
	if sig == syscall.SIGKILL {
		// The lease outlives its last renewal by the TTL; renewed every
		// TTL/3, it has TTL−TTL/3 to TTL left at the kill.
		t.ExpectedMin, t.ExpectedMax = (ttl - renew).Seconds(), (ttl + retry + 2*leaderPoll).Seconds()
	} else {
		// Released at once; another node takes it at its next try.
		t.ExpectedMin, t.ExpectedMax = 0, (retry + 2*leaderPoll).Seconds()
	}
	ops := make([]Op, len(survivors))
	for i, n := range survivors {
		ops[i] = getOp(n.client, names, cl.o.Concurrency)
		t.ReadNodes = append(t.ReadNodes, n.id)
	}

	readCtx, stopReads := context.WithCancel(ctx)
	defer stopReads()
	type readResult struct {
		st  Stats
		err error
	}
	// The reads last until the takeover: the progress bar fills over the
	// longest one expected.
	progress := cl.o.Progress
	if progress != nil {
		planned := readerLead + readerTail + time.Duration(t.ExpectedMax*float64(time.Second))
		progress = func(p Progress) {
			p.Planned = planned
			cl.o.Progress(p)
		}
	}
	reads := make(chan readResult, 1)
	go func() {
		l := Load{Concurrency: cl.o.Concurrency, Duration: 24 * time.Hour, Phase: fmt.Sprintf("%s of leader %s", t.Signal, from.id), Progress: progress}
		st, err := Run(readCtx, l, spread(ops))
		reads <- readResult{st, err}
	}()
	collect := func() (Stats, error) {
		stopReads()
		r := <-reads
		if ctx.Err() != nil {
			return r.st, ctx.Err()
		}
		return r.st, nil
	}
	select {
	case <-ctx.Done():
		_, err := collect()
		return nil, err
	case <-time.After(readerLead):
	}

	exited := make(chan time.Duration, 1)
	t0 := time.Now()
	if err := syscall.Kill(from.child.Pid, sig); err != nil {
		collect()
		return nil, fmt.Errorf("signal node %s: %w", from.id, err)
	}
	from.gone, from.killed = true, sig == syscall.SIGKILL
	go func() {
		<-from.child.done
		exited <- time.Since(t0)
	}()
	if sig == syscall.SIGKILL {
		if left, err := leaseLeft(ctx, db, from.id); err == nil {
			after := (time.Since(t0) + left).Seconds()
			t.LeaseExpiredAfter = &after
		}
	}
	w, err := waitLeader(ctx, healthClient(), cl.endpoints(survivors), leaderPoll, 2*ttl+10*time.Second)
	if err != nil {
		collect()
		return nil, fmt.Errorf("after %s of leader %s: %w", t.Signal, from.id, err)
	}
	t.Seconds, t.Polls, t.To = w.At.Sub(t0).Seconds(), w.Polls, survivors[w.Leaders[0]].id
	select {
	case <-ctx.Done():
	case <-time.After(readerTail):
	}
	if t.Reads, err = collect(); err != nil {
		return nil, err
	}
	if sig == syscall.SIGTERM {
		if err := from.child.Stop(); err != nil { // waits for the exit
			return nil, fmt.Errorf("node %s after SIGTERM: %w", from.id, err)
		}
		d := (<-exited).Seconds()
		t.ExitedAfter = &d
	}
	return t, nil
}

func sigName(sig syscall.Signal) string {
	switch sig {
	case syscall.SIGKILL:
		return "SIGKILL"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return sig.String()
}

// leaseLeft is how long the rotation lease held by node has left, by the
// database's clock.
func leaseLeft(ctx context.Context, db *pgx.Conn, node string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var (
		holder string
		ms     int64
	)
	err := db.QueryRow(ctx, `SELECT holder, expires_ms - (extract(epoch FROM clock_timestamp()) * 1000)::bigint
		FROM rotor_leases WHERE name = $1`, server.RotationLease).Scan(&holder, &ms)
	if err != nil {
		return 0, err
	}
	if !strings.HasPrefix(holder, node+"/") {
		return 0, fmt.Errorf("the lease is held by %q, not node %s", holder, node)
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// healthClient asks GET /healthz, each request bounded by healthTimeout.
func healthClient() *http.Client {
	return &http.Client{Timeout: healthTimeout, Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 2}}
}

// health is the answer of GET /healthz.
type health struct {
	Status string `json:"status"`
	Node   string `json:"node"`
	Leader bool   `json:"leader"`
}

// leaderSeen is the poll round of waitLeader in which a node led.
type leaderSeen struct {
	Leaders []int     // indexes of the endpoints that said they led, in the order of their answers
	At      time.Time // when the first of them answered
	Polls   int       // rounds asked, this one included
}

// waitLeader asks every endpoint's GET /healthz at once, every poll, until
// at least one says it leads, and returns that round. Endpoints that do not
// answer are asked again in the next round; after timeout it fails with the
// last such error.
func waitLeader(ctx context.Context, hc *http.Client, endpoints []string, poll, timeout time.Duration) (leaderSeen, error) {
	type answer struct {
		i      int
		leader bool
		at     time.Time
		err    error
	}
	deadline := time.Now().Add(timeout)
	answers := make(chan answer, len(endpoints))
	var lastErr error
	for polls := 1; ; polls++ {
		round := time.Now()
		for i, ep := range endpoints {
			go func() {
				h, err := getHealth(ctx, hc, ep)
				answers <- answer{i, h.Leader, time.Now(), err}
			}()
		}
		var seen leaderSeen
		for range endpoints {
			a := <-answers
			switch {
			case a.err != nil:
				lastErr = a.err
			case a.leader:
				if len(seen.Leaders) == 0 || a.at.Before(seen.At) {
					seen.At = a.at
				}
				seen.Leaders = append(seen.Leaders, a.i)
			}
		}
		if len(seen.Leaders) > 0 {
			seen.Polls = polls
			return seen, nil
		}
		if ctx.Err() != nil {
			return leaderSeen{}, ctx.Err()
		}
		if time.Now().After(deadline) {
			if lastErr != nil {
				return leaderSeen{}, fmt.Errorf("no node led within %v (last error: %w)", timeout, lastErr)
			}
			return leaderSeen{}, fmt.Errorf("no node led within %v", timeout)
		}
		select {
		case <-ctx.Done():
			return leaderSeen{}, ctx.Err()
		case <-time.After(time.Until(round.Add(poll))):
		}
	}
}

// getHealth asks endpoint's GET /healthz.
func getHealth(ctx context.Context, hc *http.Client, endpoint string) (health, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/healthz", nil)
	if err != nil {
		return health{}, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return health{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return health{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return health{}, fmt.Errorf("GET %s/healthz: %s %s", endpoint, resp.Status, bytes.TrimSpace(b))
	}
	var h health
	if err := json.Unmarshal(b, &h); err != nil {
		return health{}, fmt.Errorf("GET %s/healthz: %v in %s", endpoint, err, bytes.TrimSpace(b))
	}
	if h.Status != "ok" {
		return health{}, fmt.Errorf("GET %s/healthz: status %q", endpoint, h.Status)
	}
	return h, nil
}

// redactArgs hides the password of a postgres:// URL among args.
func redactArgs(args []string) []string {
	out := slices.Clone(args)
	for i, a := range out {
		if strings.HasPrefix(a, "postgres://") || strings.HasPrefix(a, "postgresql://") {
			if u, err := url.Parse(a); err == nil {
				out[i] = u.Redacted()
			}
		}
	}
	return out
}

// copyFile copies a file, with mode 0600 (it is a key).
func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o600)
}

// pgSettings reads settings of the server db is connected to.
func pgSettings(ctx context.Context, db *pgx.Conn, names ...string) (map[string]string, error) {
	out := make(map[string]string, len(names))
	for _, name := range names {
		var v string
		if err := db.QueryRow(ctx, "SELECT current_setting($1)", name).Scan(&v); err != nil {
			return nil, fmt.Errorf("postgres setting %s: %w", name, err)
		}
		out[name] = v
	}
	return out, nil
}

// postmasterPID is the process id of the PostgreSQL server db is connected
// to: the parent of db's backend.
func postmasterPID(ctx context.Context, db *pgx.Conn) (int, error) {
	var backend int
	if err := db.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&backend); err != nil {
		return 0, err
	}
	st, err := readProcStat(backend)
	if err != nil {
		return 0, err
	}
	if st.ppid <= 1 {
		return 0, fmt.Errorf("backend %d has no postmaster parent", backend)
	}
	return st.ppid, nil
}

// procStat is what treeCPU reads of /proc/<pid>/stat.
type procStat struct {
	ppid     int
	cpu      time.Duration // utime + stime
	children time.Duration // cutime + cstime: of the children it waited for
}

func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	return parseProcStat(b)
}

// parseProcStat reads fields 4 (ppid) and 14 to 17 (utime, stime, cutime,
// cstime) of /proc/<pid>/stat, counted after the command name as
// parseStatCPU does.
func parseProcStat(stat []byte) (procStat, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return procStat{}, errors.New("bench: /proc stat: no command name")
	}
	f := strings.Fields(string(stat[i+1:]))
	const ppid, utime, cstime = 4 - 3, 14 - 3, 17 - 3
	if len(f) <= cstime {
		return procStat{}, fmt.Errorf("bench: /proc stat: %d fields after the command name, want more than %d", len(f), cstime)
	}
	var v [5]uint64
	for k, field := range []int{ppid, utime, utime + 1, utime + 2, cstime} {
		n, err := strconv.ParseUint(f[field], 10, 64)
		if err != nil {
			return procStat{}, fmt.Errorf("bench: /proc stat: %w", err)
		}
		v[k] = n
	}
	tick := func(n uint64) time.Duration { return time.Duration(n) * time.Second / clockTicks }
	if v[0] > math.MaxInt32 {
		return procStat{}, fmt.Errorf("bench: /proc stat: ppid %d", v[0])
	}
	return procStat{ppid: int(v[0]), cpu: tick(v[1] + v[2]), children: tick(v[3] + v[4])}, nil
}

// treeCPU is the CPU time used by process pid, by the children it has
// waited for, and by its live children: for a PostgreSQL postmaster, which
// starts every backend and worker itself, the whole server's.
func treeCPU(pid int) (time.Duration, error) {
	root, err := readProcStat(pid)
	if err != nil {
		return 0, err
	}
	total := root.cpu + root.children
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil || child == pid {
			continue
		}
		st, err := readProcStat(child)
		if err != nil || st.ppid != pid {
			continue // gone since, or not a child
		}
		total += st.cpu + st.children
	}
	return total, nil
}
