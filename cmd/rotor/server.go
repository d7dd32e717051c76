package main

import (
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/rotor-secrets/rotor/internal/server"
	"github.com/rotor-secrets/rotor/internal/webhook"
)

func newServerCmd(e *env) *cobra.Command {
	var (
		cfg       server.Config
		logFormat string
		logLevel  string
		hooks     []string
	)
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the Rotor server",
		Long: `Run the Rotor server: the AWS Secrets Manager API on --listen, data in --data-dir.

Every flag can also be set as an environment variable ROTOR_<FLAG>, e.g.
ROTOR_DATA_DIR=/var/lib/rotor. ROTOR_ROOT_ACCESS_KEY_ID and
ROTOR_ROOT_SECRET_ACCESS_KEY set the root access key explicitly.

Webhooks (--webhook NAME=URL, repeatable) receive rotation and label events
as EventBridge JSON, signed with HMAC-SHA256 under ROTOR_WEBHOOK_SECRET
(an environment variable only, so that it never shows in a process list).

The master key comes from <data-dir>/master.key (--master-key-source file,
created on first start), from ROTOR_MASTER_KEY (env: the key file's base64,
never written to disk), or from <data-dir>/master.seal opened with a
passphrase (passphrase: Argon2id). With a passphrase and no
--passphrase-file the server starts sealed: it answers /healthz, /readyz
(503) and rotor unseal only, until ` + "`rotor unseal`" + ` gives the passphrase.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnv(cmd.Flags(), e.getenv); err != nil {
				return usageError(err)
			}
			cfg.RootAccessKeyID = e.getenv("ROTOR_ROOT_ACCESS_KEY_ID")
			cfg.RootSecretAccessKey = e.getenv("ROTOR_ROOT_SECRET_ACCESS_KEY")
			cfg.MasterKey = e.getenv("ROTOR_MASTER_KEY")
			// Test hook for crash-resume tests: never set in production.
			cfg.Rotation.CrashAfterStep = e.getenv("ROTOR_TEST_CRASH_AFTER_STEP")
			// Test hooks that slow the master key re-wrap down: never set in
			// production.
			if n, err := strconv.Atoi(e.getenv("ROTOR_TEST_REWRAP_BATCH")); err == nil && n > 0 {
				cfg.Keys.RewrapBatch = n
			}
			if d, err := time.ParseDuration(e.getenv("ROTOR_TEST_REWRAP_DELAY")); err == nil && d > 0 {
				cfg.Keys.RewrapDelay = d
			}
			log, err := newLogger(e.stderr, logFormat, logLevel)
			if err != nil {
				return usageError(err)
			}
			targets, err := webhookTargets(hooks, e.getenv("ROTOR_WEBHOOK_SECRET"))
			if err != nil {
				return usageError(err)
			}
			cfg.Webhooks = targets
			srv, err := server.Open(cmd.Context(), cfg, log)
			if err != nil {
				return err
			}
			return srv.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Listen, "listen", server.DefaultListen, "address to serve the API on")
	f.StringVar(&cfg.DataDir, "data-dir", server.DefaultDataDir, "directory for the store, master key and credentials")
	f.StringVar(&cfg.Store, "store", "", "postgres://user:password@host:port/db to share one PostgreSQL store among several nodes (default: SQLite in the data dir)")
	f.Int32Var(&cfg.StoreMaxConns, "store-max-conns", 10, "connections to PostgreSQL at most, per node")
	f.StringVar(&cfg.FunctionDir, "function-dir", "", "directory of the executables exec rotation functions may run (rotor function register --exec); none: exec functions are off")
	f.StringVar(&cfg.NodeID, "node-id", "", "this node's name among those sharing a store (default: <data-dir>/node-id, created on first start)")
	f.DurationVar(&cfg.LeaseTTL, "lease-ttl", server.DefaultLeaseTTL, "how long the rotation leader's lease outlives its last renewal (renewed every third of it)")
	f.StringVar(&cfg.Region, "region", server.DefaultRegion, "region in ARNs and SigV4 scopes")
	f.StringVar(&cfg.AccountID, "account-id", server.DefaultAccountID, "account id in ARNs")
	f.StringVar(&cfg.TLSCert, "tls-cert", "", "PEM certificate file to serve HTTPS")
	f.StringVar(&cfg.TLSKey, "tls-key", "", "PEM private key file to serve HTTPS")
	f.StringVar(&logFormat, "log-format", "json", "log format: json or text")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.DurationVar(&cfg.Rotation.MinInterval, "rotation-min-interval", 4*time.Hour,
		"shortest rotation schedule accepted (AWS: 4h); lower it for demos and tests")
	f.IntVar(&cfg.Rotation.MaxAttempts, "rotation-max-attempts", 5, "attempts of one rotation before it waits for the next window")
	f.DurationVar(&cfg.Rotation.RetryBase, "rotation-retry-base", 15*time.Second, "first retry delay of a failed rotation (doubles, with jitter)")
	f.DurationVar(&cfg.Rotation.RetryMax, "rotation-retry-max", 10*time.Minute, "longest retry delay of a failed rotation")
	f.DurationVar(&cfg.Rotation.PollInterval, "rotation-poll-interval", time.Second, "how often the rotation queue is read")
	f.Float64Var(&cfg.RateLimit, "rate-limit", 10000, "requests per second allowed to each access key (0: no limit)")
	f.IntVar(&cfg.RateBurst, "rate-burst", 20000, "burst of requests allowed to each access key above --rate-limit")
	f.StringArrayVar(&hooks, "webhook", nil, "NAME=URL of a webhook that receives events (repeatable)")
	f.IntVar(&cfg.WebhookMaxAttempts, "webhook-max-attempts", 10, "deliveries of an event tried before it is parked")
	f.DurationVar(&cfg.WebhookRetryBase, "webhook-retry-base", time.Second, "first retry delay of a failed delivery (doubles up to 5m)")
	f.BoolVar(&cfg.NoMetrics, "no-metrics", false, "do not serve GET /metrics")
	f.StringVar(&cfg.MasterKeySource, "master-key-source", server.KeySourceFile,
		"where the master key comes from: file (<data-dir>/master.key), env (ROTOR_MASTER_KEY) or passphrase (<data-dir>/master.seal)")
	f.StringVar(&cfg.PassphraseFile, "passphrase-file", "",
		"with --master-key-source passphrase: unseal at start with the passphrase in `FILE` (otherwise start sealed; see rotor unseal)")
	f.DurationVar(&cfg.Keys.RotationInterval, "master-key-rotation-interval", 0,
		"rotate a master key (the default and every enabled named key) once its current version is this old, e.g. 2160h for 90 days (0: only by rotor key rotate)")
	f.DurationVar(&cfg.AuditSyncEvery, "audit-sync-interval", 0,
		"fsync the audit log at most this often instead of before every answer (0: every answer; records are always written before it)")
	return cmd
}

// webhookTargets parses --webhook NAME=URL values; every target signs with
// secret.
func webhookTargets(specs []string, secret string) ([]webhook.Target, error) {
	if len(specs) == 0 {
		return nil, nil
	}
	if len(secret) < 16 {
		return nil, fmt.Errorf("webhook: set ROTOR_WEBHOOK_SECRET to at least 16 characters to sign deliveries")
	}
	var out []webhook.Target
	for _, s := range specs {
		name, url, ok := strings.Cut(s, "=")
		if !ok || name == "" || url == "" {
			return nil, fmt.Errorf("webhook: %q is not NAME=URL", s)
		}
		out = append(out, webhook.Target{Name: name, URL: url, Secret: []byte(secret)})
	}
	return out, nil
}

// applyEnv sets every flag not given on the command line from ROTOR_<FLAG>
// (upper case, dashes as underscores).
func applyEnv(fs *pflag.FlagSet, getenv func(string) string) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed || err != nil {
			return
		}
		name := "ROTOR_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(name); v != "" {
			if serr := fs.Set(f.Name, v); serr != nil {
				err = fmt.Errorf("%s: %w", name, serr)
			}
		}
	})
	return err
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log-level: %q is not debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log-format: %q is not json or text", format)
}

func usageError(err error) error { return &exitError{code: 2, err: err} }
