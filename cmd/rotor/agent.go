package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"

	"github.com/spf13/cobra"

	"github.com/rotor-secrets/rotor/internal/agent"
)

func newAgentCmd(e *env) *cobra.Command {
	var (
		configPath string
		logFormat  string
	)
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run a local caching endpoint compatible with the AWS Secrets Manager Agent",
		Long: `Run a local caching HTTP endpoint compatible with the AWS Secrets Manager Agent,
on 127.0.0.1:2773 by default, and render secrets into files.

Applications read secrets with
  curl -H "X-Aws-Parameters-Secrets-Token: $AWS_TOKEN" \
    'http://127.0.0.1:2773/secretsmanager/get?secretId=prod/app/db'
The token is read at start from AWS_TOKEN, AWS_SESSION_TOKEN or
AWS_CONTAINER_AUTHORIZATION_TOKEN (a value, or file://path).

--config names a TOML file with the AWS agent's keys (http_port, ttl_seconds,
cache_size, max_conn, ssrf_headers, ssrf_env_variables, path_prefix, region,
log_level) and Rotor's: endpoint, push, and [[file]] outputs. The endpoint and
credentials are otherwise found as the AWS CLI finds them
(AWS_ENDPOINT_URL_SECRETS_MANAGER, AWS_PROFILE, ...).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := agent.DefaultConfig()
			if configPath != "" {
				var err error
				if cfg, err = agent.LoadConfig(configPath); err != nil {
					return usageError(err)
				}
			}
			log, err := agentLogger(e.stderr, logFormat, cfg.LogLevel)
			if err != nil {
				return usageError(err)
			}
			token, err := agent.ResolveToken(cfg.SSRFEnvVariables, e.getenv)
			if err != nil {
				if errors.Is(err, agent.ErrNoToken) {
					return &hintError{msg: err.Error(), hint: "generate one, e.g. `export AWS_TOKEN=$(openssl rand -base64 32)`, and give it to the applications", err: err}
				}
				return err
			}
			ctx := cmd.Context()
			conn, err := openClient(ctx, e.getenv, connFlags{endpointURL: cfg.Endpoint, region: cfg.Region})
			if err != nil {
				return err
			}
			a, err := agent.New(cfg, agent.Options{API: conn.client, Token: token, Logger: log, CommandOutput: e.stderr})
			if err != nil {
				return err
			}
			defer a.Close()
			log.Info("rotor agent starting", "endpoint", conn.endpoint, "endpoint_from", conn.endpointFrom,
				"region", conn.region, "credentials_from", conn.credsFrom, "push", cfg.Push)
			if cfg.Push {
				stop, err := startAgentPush(ctx, a, conn, log)
				if err != nil {
					// The cache still refreshes every ttl_seconds.
					log.Warn("push invalidation unavailable; refreshing by TTL only", "err", err)
				} else {
					defer stop() // before a.Close: the subscription uses the cache
				}
			}
			ln, err := net.Listen("tcp", cfg.Addr())
			if err != nil {
				return fmt.Errorf("listen on %s: %w", cfg.Addr(), err)
			}
			return a.Run(ctx, ln)
		},
	}
	f := cmd.Flags()
	f.StringVar(&configPath, "config", "", "TOML configuration file")
	f.StringVar(&logFormat, "log-format", "json", "log format: json or text")
	return cmd
}

// agentLogger is newLogger with the config's level; a nil level (log_level
// = "none") discards everything.
func agentLogger(w io.Writer, format string, level *slog.Level) (*slog.Logger, error) {
	if level == nil {
		w = io.Discard
	}
	log, err := newLogger(w, format, "info")
	if err != nil || level == nil {
		return log, err
	}
	opts := &slog.HandlerOptions{Level: *level}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return slog.New(slog.NewJSONHandler(w, opts)), nil
}
