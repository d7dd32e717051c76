package main

// `rotor bench`: the measurements of internal/bench as commands, with a
// table for people, --json for records, and a progress bar on stderr when
// stderr is a terminal.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/rotor-secrets/rotor/internal/bench"
)

func newBenchCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure Rotor on this machine",
		Long: `Measure Rotor on this machine.

  rotor bench get       GetSecretValue: req/s, latency, server CPU per 1,000 requests
  rotor bench put       PutSecretValue (durable writes), the same figures
  rotor bench ceiling   the same client against a trivial in-process server:
                        the loopback limit, which get and put are a percentage of
  rotor bench rotate    rotation latency per built-in function, and the wall time
                        of N rotations, against throwaway PostgreSQL and MariaDB
  rotor bench scale     what N secrets cost: store size, RSS, startup time,
                        GetSecretValue and ListSecrets latency, next to a baseline
  rotor bench cluster   N servers on one throwaway PostgreSQL store: get and put
                        spread over the nodes and on one, read-your-writes across
                        nodes, the leader's failover (SIGKILL) and handover (SIGTERM)

get, put and scale start a rotor server as a child process of this binary on a
temporary data directory (audit on, rate limit off, removed afterwards), and
cluster N of them on a throwaway PostgreSQL store; get and put measure an
existing server instead with --endpoint, with credentials found as the AWS CLI
finds them. Results print as a table, or as one JSON object with --json (with
the machine, the date and the options).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newBenchAPICmd(e, "get"), newBenchAPICmd(e, "put"), newBenchCeilingCmd(e),
		newBenchRotateCmd(e), newBenchScaleCmd(e), newBenchClusterCmd(e))
	return cmd
}

func newBenchAPICmd(e *env, mode string) *cobra.Command {
	o := bench.APIOptions{Secrets: 100, Size: 200, Concurrency: 16, Duration: bench.Duration(10 * time.Second)}
	short := "Measure GetSecretValue of random secrets"
	if mode == "put" {
		o.Secrets = 1000
		short = "Measure PutSecretValue (durable writes), round robin over the secrets"
	}
	var (
		asJSON      bool
		duration    = time.Duration(o.Duration)
		conn        connFlags
		serverFlags []string
	)
	cmd := &cobra.Command{
		Use:   mode,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			o.Duration = bench.Duration(duration)
			if conn.endpointURL != "" {
				c, err := openClient(ctx, e.getenv, conn)
				if err != nil {
					return err
				}
				if err := checkCredentials(ctx, c); err != nil {
					return err
				}
				o.Target = bench.Target{Endpoint: conn.endpointURL, Region: c.region, Credentials: c.creds}
			} else {
				exe, err := os.Executable()
				if err != nil {
					return fmt.Errorf("find rotor's executable to start a server: %w", err)
				}
				o.Target = bench.Target{Executable: exe, ServerFlags: serverFlags}
			}
			p := newProgress(e.stderr)
			o.Progress = p.update
			run := bench.Get
			if mode == "put" {
				run = bench.Put
			}
			res, err := run(ctx, o)
			p.clear()
			return printResult(e, res, err, asJSON, func(r *bench.APIResult) []string { return r.Warnings }, writeAPIText)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Secrets, "secrets", o.Secrets, "`K` secrets, created before the run")
	f.IntVar(&o.Size, "size", o.Size, "`B` bytes of SecretString in each")
	f.IntVar(&o.Concurrency, "concurrency", o.Concurrency, "`C` concurrent workers sharing one client")
	f.DurationVar(&duration, "duration", duration, "`D`: how long the measured run lasts")
	f.Int64Var(&o.Requests, "requests", 0, "stop after `N` requests instead of --duration")
	f.BoolVar(&o.NoCeiling, "no-ceiling", false, "skip the ceiling pass (the same load against a trivial in-process server)")
	f.StringVar(&conn.endpointURL, "endpoint", "", "measure the server at this `URL` instead of starting one")
	f.StringVar(&conn.region, "region", "", "region of --endpoint's signatures (default: AWS_REGION, the profile's, or us-east-1)")
	f.StringVar(&conn.profile, "profile", "", "profile whose credentials sign --endpoint's requests")
	f.StringArrayVar(&serverFlags, "server-flag", nil, "a `flag` for the server the benchmark starts, e.g. --server-flag=--audit-sync-interval=10ms (repeatable)")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

// checkCredentials fetches the credentials of an --endpoint run once, so that
// missing ones read as such rather than as every request failing.
func checkCredentials(ctx context.Context, c *clientConn) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := c.creds.Retrieve(ctx); err != nil {
		return c.explain(&credentialsError{err: err})
	}
	return nil
}

func newBenchCeilingCmd(e *env) *cobra.Command {
	o := bench.CeilingOptions{Op: "get", Size: 200, Concurrency: 16}
	var (
		asJSON   bool
		duration = 10 * time.Second
	)
	cmd := &cobra.Command{
		Use:   "ceiling",
		Short: "Measure the loopback limit: the bench client against a trivial in-process server",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Duration = bench.Duration(duration)
			p := newProgress(e.stderr)
			o.Progress = p.update
			res, err := bench.RunCeiling(cmd.Context(), o)
			p.clear()
			return printResult(e, res, err, asJSON, nil, writeCeilingText)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Op, "op", o.Op, "operation whose request and response shape to use: get or put")
	f.IntVar(&o.Size, "size", o.Size, "`B` bytes of SecretString in the response (get) or request (put)")
	f.IntVar(&o.Concurrency, "concurrency", o.Concurrency, "`C` concurrent workers sharing one client")
	f.DurationVar(&duration, "duration", duration, "`D`: how long the measured run lasts")
	f.Int64Var(&o.Requests, "requests", 0, "stop after `N` requests instead of --duration")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

func newBenchRotateCmd(e *env) *cobra.Command {
	o := bench.RotateOptions{Engines: []string{"postgres", "mariadb"}, Rotations: 40, Secrets: 200, Concurrency: 8}
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "rotate",
		Short: "Measure rotations against throwaway PostgreSQL and MariaDB servers",
		Long: `Measure complete rotations (RotateSecret until AWSCURRENT moved: createSecret,
setSecret, testSecret with a fresh login, finishSecret) through a server in this
process, against PostgreSQL (scram-sha-256) and MariaDB servers started for the
run from the machine's binaries (packages postgresql and mariadb-server; as root
they run as the postgres and mysql users) and deleted afterwards.

It reports the latency of --rotations rotations per built-in function, one after
another on one secret, and the wall time of rotating --secrets secrets per engine
(alternating users) with --concurrency rotations requested at a time. The
server's rotation engine runs at most 8 at once.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p := newProgress(e.stderr)
			o.Progress = p.update
			res, err := bench.Rotate(cmd.Context(), o)
			p.clear()
			return printResult(e, res, err, asJSON, nil, writeRotateText)
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&o.Engines, "engines", o.Engines, "targets to start and rotate: postgres, mariadb, redis, rabbitmq (a RabbitMQ node takes seconds to start)")
	f.IntVar(&o.Rotations, "rotations", o.Rotations, "rotations timed per built-in function")
	f.IntVar(&o.Secrets, "secrets", o.Secrets, "`N` secrets rotated per engine for the wall time (0: skip)")
	f.IntVar(&o.Concurrency, "concurrency", o.Concurrency, "rotations requested at a time for the wall time")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

func newBenchScaleCmd(e *env) *cobra.Command {
	o := bench.ScaleOptions{Secrets: 100_000, Baseline: 1000, Size: 200, Concurrency: 16, Pages: 200, PageSize: 100}
	var (
		asJSON           bool
		million          bool
		duration, warmup = 10 * time.Second, 2 * time.Second
	)
	cmd := &cobra.Command{
		Use:   "scale",
		Short: "Measure what N secrets cost: store size, RSS, startup, read and list latency",
		Long: `Measure what the number of secrets costs. For the baseline and then for N
secrets: fill a new data directory (through the domain service, straight into
the store, many CreateSecret per commit), start a rotor server on it as a child
process, and report the store's size, the time from exec to GET /readyz 200,
the server's RSS after a warm-up and at its peak, GetSecretValue of random
secrets (--concurrency, --duration) and ListSecrets pages of 100 read one after
another with NextToken (--pages).

A million secrets (--million) need about 1.5 GB of disk in the temporary
directory ($TMPDIR) and take minutes to load.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if million {
				if cmd.Flags().Changed("secrets") {
					return usageError(errors.New("give --secrets or --million, not both"))
				}
				o.Secrets = 1_000_000
			}
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("find rotor's executable to start a server: %w", err)
			}
			o.Executable = exe
			o.Duration, o.Warmup = bench.Duration(duration), bench.Duration(warmup)
			p := newProgress(e.stderr)
			o.Progress = p.update
			res, err := bench.Scale(cmd.Context(), o)
			p.clear()
			return printResult(e, res, err, asJSON, nil, writeScaleText)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Secrets, "secrets", o.Secrets, "`N` secrets in the measured store")
	f.BoolVar(&million, "million", false, "measure a store of 1,000,000 secrets")
	f.IntVar(&o.Baseline, "baseline", o.Baseline, "secrets in the store compared with (0: none)")
	f.IntVar(&o.Size, "size", o.Size, "`B` bytes of SecretString in each secret")
	f.IntVar(&o.Concurrency, "concurrency", o.Concurrency, "GetSecretValue workers")
	f.DurationVar(&duration, "duration", duration, "how long GetSecretValue is measured")
	f.DurationVar(&warmup, "warmup", warmup, "GetSecretValue load before the RSS is read")
	f.IntVar(&o.Pages, "pages", o.Pages, "ListSecrets pages read")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

// benchError marks an options error as a usage error (exit status 2) and
// says so when the run was interrupted.
// printResult prints a mode's result, or its error: the warnings (if any)
// to stderr, then the result as JSON or text.
func printResult[R any](e *env, res *R, err error, asJSON bool, warnings func(*R) []string, text func(io.Writer, *R) error) error {
	if err != nil {
		return benchError(err)
	}
	if warnings != nil {
		for _, w := range warnings(res) {
			fmt.Fprintf(e.stderr, "rotor: warning: %s\n", w)
		}
	}
	if asJSON {
		return writeJSON(e.stdout, res)
	}
	return text(e.stdout, res)
}

func benchError(err error) error {
	var oe *bench.OptionsError
	switch {
	case errors.As(err, &oe):
		return usageError(err)
	case errors.Is(err, context.Canceled):
		return &hintError{msg: "interrupted; what the benchmark started was stopped and removed", err: err}
	}
	return err
}
