// Package agent is `rotor agent`: a local caching HTTP endpoint compatible
// with the AWS Secrets Manager Agent, and a renderer of secrets into files.
//
// An application asks the agent, on loopback, for a secret:
//
//	GET /secretsmanager/get?secretId=ID[&versionStage=S|&versionId=V][&refreshNow=true]
//	GET /v1/ID[?versionStage=S|versionId=V][&refreshNow=true]   (path_prefix)
//	GET /ping                                                    → "healthy"
//
// with the header X-Aws-Parameters-Secrets-Token (or another of
// ssrf_headers) holding the token the agent read at start from AWS_TOKEN,
// AWS_SESSION_TOKEN or AWS_CONTAINER_AUTHORIZATION_TOKEN (ssrf_env_variables;
// a value or file://path). The answer is GetSecretValue's JSON, with
// CreatedDate as a string of epoch seconds as the AWS agent writes it. As the
// AWS agent does, the agent refuses, in this order: more than max_conn
// requests at once (429), a request with X-Forwarded-For (400), a missing or
// wrong token (403, compared in constant time), a method other than GET
// (405). /ping needs no token. Errors are AWS-shaped JSON,
// {"__type":"Code","message":"…"}; the service's own errors keep its code and
// HTTP status, a timeout is 504 TimeoutError and an unreachable service 502
// ConnectionError.
//
// Reads by stage go through a client.Cache (ttl_seconds, cache_size);
// refreshNow=true forces a read from the service; reads by versionId, and
// all reads when ttl_seconds is 0, go to the service. The cache may also be
// invalidated by Rotor's push stream (see Agent.Cache and Agent.Notify).
//
// File outputs ([[file]] in the config) render a secret through a Go
// template into a file: written to a temporary file in the same directory
// with the configured mode, synced and renamed, so a reader never sees a
// partial file. A file is checked every second against the cache (a cache
// hit unless the TTL ran out or a push event invalidated it) and at once on
// Notify; it is rewritten only when its content changes, and its command
// runs once after each rewrite.
//
// A template sees the fields of the secret's JSON object (.username,
// .password, …) and .SecretString, .SecretBinary, .VersionId,
// .VersionStages, .Name, .ARN, .CreatedDate; a missing field is an error,
// not an empty string. Besides Go's built-ins it may call json (a JSON
// value), shellquote (a POSIX-shell single-quoted word), pgpass (escapes
// \ and : for a .pgpass field) and base64. For an RDS-shaped secret:
//
//	[[file]]   # a .pgpass line
//	secret_id = "prod/app/db"
//	path = "/run/app/pgpass"
//	template = "{{pgpass .host}}:{{.port}}:{{pgpass .dbname}}:{{pgpass .username}}:{{pgpass .password}}\n"
//
//	[[file]]   # an env file for a POSIX shell to source
//	secret_id = "prod/app/db"
//	path = "/run/app/db.env"
//	template = """
//	PGHOST={{shellquote .host}}
//	PGUSER={{shellquote .username}}
//	PGPASSWORD={{shellquote .password}}
//	"""
//	command = ["systemctl", "reload", "app.service"]
//	command_timeout_seconds = 30
//
//	[[file]]   # a JSON file; mode as a TOML octal integer or an octal string
//	secret_id = "prod/app/db"
//	path = "/run/app/db.json"
//	template = '{"user":{{json .username}},"password":{{json .password}},"version":{{json .VersionId}}}'
//	mode = 0o640
//
// Neither a secret's value nor the token is ever logged. An Agent is safe
// for concurrent use.
package agent

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rotor-secrets/rotor/client"
)

const (
	defaultFilePoll        = time.Second
	defaultUpstreamTimeout = 30 * time.Second
	shutdownTimeout        = 10 * time.Second
	// extraPingConns lets health checks through when max_conn is reached,
	// as the AWS agent does.
	extraPingConns = 2
)

// Options are what an Agent needs besides its Config.
type Options struct {
	// API reads from Secrets Manager; required.
	API client.API
	// Token is the SSRF token (see ResolveToken); required, not empty.
	Token string
	// Logger receives the agent's log; nil discards it.
	Logger *slog.Logger
	// CommandOutput receives the output of file commands (default
	// os.Stderr).
	CommandOutput io.Writer
	// FilePoll is how often file outputs are checked (default 1s).
	FilePoll time.Duration
	// UpstreamTimeout bounds one read from the service (default 30s).
	UpstreamTimeout time.Duration
}

// Agent serves secrets over HTTP and renders them into files. Create it with
// New, serve with Run, release it with Close.
type Agent struct {
	cfg      *Config
	api      client.API
	cache    *client.Cache
	log      *slog.Logger
	tokenSum [sha256.Size]byte
	cmdOut   io.Writer
	filePoll time.Duration
	timeout  time.Duration

	inflight atomic.Int64
	files    []*fileOutput
}

// New builds an agent. It does no I/O.
func New(cfg *Config, opts Options) (*Agent, error) {
	if cfg == nil {
		return nil, errors.New("agent: nil config")
	}
	if opts.API == nil {
		return nil, errors.New("agent: no Secrets Manager client")
	}
	if opts.Token == "" {
		return nil, errors.New("agent: empty SSRF token")
	}
	a := &Agent{
		cfg:      cfg,
		api:      opts.API,
		log:      opts.Logger,
		tokenSum: sha256.Sum256([]byte(opts.Token)),
		cmdOut:   opts.CommandOutput,
		filePoll: opts.FilePoll,
		timeout:  opts.UpstreamTimeout,
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.cmdOut == nil {
		a.cmdOut = os.Stderr
	}
	if a.filePoll <= 0 {
		a.filePoll = defaultFilePoll
	}
	if a.timeout <= 0 {
		a.timeout = defaultUpstreamTimeout
	}
	// With ttl_seconds = 0 HTTP reads bypass the cache, but file outputs
	// and push invalidation still need one.
	ttl := cfg.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}
	a.cache = client.New(opts.API, client.Config{TTL: ttl, MaxEntries: cfg.CacheSize, Logger: a.log})
	for _, f := range cfg.Files {
		a.files = append(a.files, &fileOutput{cfg: f, notify: make(chan struct{}, 1)})
	}
	return a, nil
}

// Cache is the agent's cache, for push invalidation to act on.
func (a *Agent) Cache() *client.Cache { return a.cache }

// Notify tells the agent that the secret known by ids (its ARN, its name,
// or the id a file output uses) may have changed: the file outputs of that
// secret are checked now instead of at their next poll. The caller
// invalidates the cache first.
func (a *Agent) Notify(ids ...string) {
	for _, f := range a.files {
		if slices.ContainsFunc(ids, func(id string) bool { return names(f.cfg.SecretID, id) }) {
			f.poke()
		}
	}
}

// Resync is Notify for every file output, after invalidating their secrets
// in the cache: for when changes may have been missed (a push stream that
// reconnected).
func (a *Agent) Resync() {
	for _, f := range a.files {
		a.cache.Invalidate(f.cfg.SecretID)
		f.poke()
	}
}

// names reports whether the id a file output uses names the secret known
// as other: the same string, or a partial ARN (without the "-" and six
// random characters) of other.
func names(id, other string) bool {
	if id == other {
		return true
	}
	return strings.HasPrefix(other, "arn:") && len(other) == len(id)+7 &&
		strings.HasPrefix(other, id) && other[len(id)] == '-'
}

// SecretIDs lists the secrets of the file outputs, each once.
func (a *Agent) SecretIDs() []string {
	var ids []string
	for _, f := range a.files {
		if !slices.Contains(ids, f.cfg.SecretID) {
			ids = append(ids, f.cfg.SecretID)
		}
	}
	return ids
}

// Run serves HTTP on ln and keeps the file outputs up to date until ctx is
// done, then shuts down: requests in flight get shutdownTimeout to finish.
// It returns nil after a clean shutdown.
func (a *Agent) Run(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           a,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      a.timeout + 10*time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !tcp.IP.IsLoopback() {
		a.log.Warn("rotor agent listening beyond loopback", "addr", tcp.String())
	}
	a.log.Info("rotor agent listening", "addr", ln.Addr().String(), "files", len(a.files))

	fctx, stopFiles := context.WithCancel(ctx)
	defer stopFiles()
	var wg sync.WaitGroup
	for _, f := range a.files {
		wg.Go(func() { a.runFile(fctx, f) })
	}

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	var err error
	select {
	case err = <-served:
		err = fmt.Errorf("agent: serve: %w", err)
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		if serr := srv.Shutdown(sctx); serr != nil {
			_ = srv.Close()
		}
		cancel()
		if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
			err = fmt.Errorf("agent: serve: %w", serr)
		}
	}
	stopFiles()
	wg.Wait()
	if err == nil {
		a.log.Info("rotor agent stopped")
	}
	return err
}

// Close stops the cache's background work.
func (a *Agent) Close() error { return a.cache.Close() }
