package main

// `rotor bench cluster`: several rotor servers on one PostgreSQL store.

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rotor-secrets/rotor/internal/bench"
	"github.com/rotor-secrets/rotor/internal/server"
)

func newBenchClusterCmd(e *env) *cobra.Command {
	o := bench.ClusterOptions{Nodes: 3, Secrets: 1000, Size: 200, Concurrency: 16, Rounds: 1000,
		LeaseTTL: bench.Duration(server.DefaultLeaseTTL)}
	var (
		asJSON             bool
		duration, leaseTTL = 10 * time.Second, server.DefaultLeaseTTL
	)
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Measure several rotor servers sharing one PostgreSQL store",
		Long: `Measure a multi-node deployment: N rotor servers sharing one PostgreSQL store,
started for the run as child processes of this binary (temporary data dirs, one
master key, one root access key) against a throwaway PostgreSQL server
(package postgresql; as root it runs as the postgres user), all removed
afterwards.

It reports:
  - GetSecretValue and PutSecretValue with --concurrency workers spread round
    robin over the nodes (one client per node), then the same load on one
    node (the others idle) on the same store: req/s, latency, errors, and the
    CPU the nodes and PostgreSQL spent per 1,000 requests;
  - read-your-writes: --rounds rounds of PutSecretValue on one node then
    GetSecretValue of the same secret on the next; a read that does not
    return the value just written is stale;
  - failover: the leader (the node holding the rotation lease, by GET
    /healthz) is killed with SIGKILL, and the time until another node leads
    is measured while GetSecretValue goes on against the surviving nodes; it
    lasts about --lease-ttl. With 3 nodes or more the new leader is then
    stopped with SIGTERM, which releases the lease, and the handover timed;
  - each node's startup time and RSS.

Every node runs on this machine: the figures say what the server costs, not
what more machines would add.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("find rotor's executable to start the nodes: %w", err)
			}
			o.Executable = exe
			o.Duration, o.LeaseTTL = bench.Duration(duration), bench.Duration(leaseTTL)
			p := newProgress(e.stderr)
			o.Progress = p.update
			res, err := bench.Cluster(cmd.Context(), o)
			p.clear()
			return printResult(e, res, err, asJSON, func(r *bench.ClusterResult) []string { return r.Warnings }, writeClusterText)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Nodes, "nodes", o.Nodes, "`N` rotor servers on the store (2 to 16; the SIGTERM handover needs 3)")
	f.IntVar(&o.Secrets, "secrets", o.Secrets, "`K` secrets read at random and written round robin (and K more for the one-node put pass)")
	f.IntVar(&o.Size, "size", o.Size, "`B` bytes of SecretString in each")
	f.IntVar(&o.Concurrency, "concurrency", o.Concurrency, "`C` concurrent workers, spread round robin over the nodes")
	f.DurationVar(&duration, "duration", duration, "`D`: how long each load pass lasts (after a warm-up of min(1s, D/10))")
	f.IntVar(&o.Rounds, "rounds", o.Rounds, "read-your-writes rounds (put on one node, get on the next)")
	f.DurationVar(&leaseTTL, "lease-ttl", leaseTTL, "every node's --lease-ttl; the failover after SIGKILL takes about that long")
	f.StringArrayVar(&o.ServerFlags, "server-flag", nil, "a `flag` for every node, e.g. --server-flag=--store-max-conns=20 (repeatable)")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

// writeClusterText prints a cluster result.
func writeClusterText(w io.Writer, r *bench.ClusterResult) error {
	var b strings.Builder
	o := r.Options
	fmt.Fprintf(&b, "rotor bench cluster: %d nodes on one PostgreSQL store, %s secrets of %d bytes, concurrency %d, %s per pass after a %s warm-up, lease TTL %s\n",
		o.Nodes, group(int64(o.Secrets)), o.Size, o.Concurrency, o.Duration, o.Warmup, o.LeaseTTL)
	fmt.Fprintf(&b, "postgres: %s (throwaway, on this machine", r.Postgres.Version)
	if s := r.PostgresSettings; s["fsync"] == "off" || s["synchronous_commit"] == "off" {
		fmt.Fprintf(&b, "; fsync %s, synchronous_commit %s: its commits are not durable, so writes cost less than on a production server", s["fsync"], s["synchronous_commit"])
	}
	b.WriteString(")\n")
	ids := make([]string, len(r.Nodes))
	for i, n := range r.Nodes {
		ids[i] = n.ID
	}
	fmt.Fprintf(&b, "nodes: child processes %s on this machine (%s)\n", strings.Join(ids, ", "), strings.Join(o.ServerFlags, " "))
	writeMachine(&b, r.Machine, r.Date)
	b.WriteString("\n")

	rows := [][]string{{"", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors", "nodes CPU s/1k req", "postgres CPU s/1k req", "client CPU s/1k req"}}
	passes := []struct {
		name string
		p    bench.ClusterPass
	}{
		{"GetSecretValue, " + nodesText(r.Get.Cluster.Nodes), r.Get.Cluster},
		{"GetSecretValue, " + nodesText(r.Get.Single.Nodes), r.Get.Single},
		{"PutSecretValue, " + nodesText(r.Put.Cluster.Nodes), r.Put.Cluster},
		{"PutSecretValue, " + nodesText(r.Put.Single.Nodes), r.Put.Single},
	}
	for _, x := range passes {
		l := x.p.Latency
		rows = append(rows, []string{x.name, group(int64(x.p.PerSecond)), msText(l.P50), msText(l.P90), msText(l.P99), msText(l.Max),
			group(x.p.Errors), fmt.Sprintf("%.3f", x.p.NodesCPUPer1000), cpuText(x.p.PostgresCPUPer1000, false), fmt.Sprintf("%.3f", x.p.ClientCPUPer1000)})
	}
	writeTable(&b, rows)
	b.WriteString("\n")
	fmt.Fprintf(&b, "%s serve %.2f× the GetSecretValue req/s of one node and %.2f× its PutSecretValue req/s\n", nodesText(o.Nodes), r.Get.Ratio, r.Put.Ratio)
	fmt.Fprintf(&b, "(1 node: the same load on %s alone, the others idle; every node, PostgreSQL and the client share this machine's %s)\n",
		r.Nodes[0].ID, cpusText(r.Machine.CPUs))

	y := r.ReadYourWrites
	fmt.Fprintf(&b, "read-your-writes: %s rounds of PutSecretValue on node i then GetSecretValue on node i+1: %s stale reads, %s failed rounds; round p50 %s ms, p99 %s ms, max %s ms\n",
		group(int64(y.Rounds)), group(y.Stale), group(y.Round.Errors), msText(y.Round.Latency.P50), msText(y.Round.Latency.P99), msText(y.Round.Latency.Max))
	if y.StaleExample != "" {
		fmt.Fprintf(&b, "  first stale read: %s\n", y.StaleExample)
	}
	for _, t := range []*bench.Takeover{r.Failover, r.Handover} {
		if t != nil {
			writeTakeover(&b, t)
		}
	}
	if r.Handover == nil && r.Failover != nil {
		b.WriteString("handover (SIGTERM of the new leader): skipped, it needs 3 nodes or more\n")
	}
	b.WriteString("\n")

	rows = [][]string{{"node", "ready in", "RSS", "RSS peak"}}
	for _, n := range r.Nodes {
		rows = append(rows, []string{n.ID, seconds(n.Startup), bytesText(n.RSS), bytesText(n.RSSPeak)})
	}
	writeTable(&b, rows)
	b.WriteString("(RSS after the load passes and read-your-writes)\n")
	fmt.Fprintf(&b, "setup: %s secrets created with CreateSecret at %s/s\n", group(r.Setup.Requests), group(int64(r.Setup.PerSecond)))
	for _, x := range passes {
		writeErrorCodes(&b, x.name, x.p.Stats)
	}
	writeErrorCodes(&b, "read-your-writes", y.Round)
	for _, t := range []*bench.Takeover{r.Failover, r.Handover} {
		if t != nil {
			writeErrorCodes(&b, "reads during the "+t.Signal+" takeover", t.Reads)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeTakeover prints a failover or a handover.
func writeTakeover(b *strings.Builder, t *bench.Takeover) {
	what := "failover"
	if t.Signal == "SIGTERM" {
		what = "handover"
	}
	fmt.Fprintf(b, "%s: %s of leader %s; %s led %s later (expected %s to %s; /healthz asked every %s)\n",
		what, t.Signal, t.From, t.To, seconds(t.Seconds), seconds(t.ExpectedMin), seconds(t.ExpectedMax),
		time.Duration(t.PollInterval*float64(time.Second)))
	switch {
	case t.LeaseExpiredAfter != nil:
		fmt.Fprintf(b, "  the lease %s had renewed last expired %s after the kill, so %s took it %s after its expiry\n",
			t.From, seconds(*t.LeaseExpiredAfter), t.To, seconds(t.Seconds-*t.LeaseExpiredAfter))
	case t.ExitedAfter != nil:
		fmt.Fprintf(b, "  %s exited %s after the signal\n", t.From, seconds(*t.ExitedAfter))
	}
	l := t.Reads.Latency
	fmt.Fprintf(b, "  GetSecretValue on %s meanwhile (%.1f s): %s requests, %s failed; p50 %s ms, p99 %s ms, max %s ms\n",
		strings.Join(t.ReadNodes, ", "), t.Reads.Elapsed, group(t.Reads.Requests), group(t.Reads.Errors), msText(l.P50), msText(l.P99), msText(l.Max))
}

func nodesText(n int) string {
	if n == 1 {
		return "1 node"
	}
	return fmt.Sprintf("%d nodes", n)
}

func cpusText(n int) string {
	if n == 1 {
		return "1 CPU"
	}
	return fmt.Sprintf("%d CPUs", n)
}
