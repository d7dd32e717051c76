// Package server wires Rotor together: configuration → data directory →
// keyring → store → domain service → HTTP, and runs it until its context
// ends.
//
// On first start Run creates the data directory (0700), the SQLite store, a
// 256-bit master key file (0600) and a root access key, whose pair it writes
// to <data-dir>/credentials (0600) in AWS shared-credentials format under
// profile "rotor". Later starts reuse all of it; nothing is regenerated. A
// master key that does not belong to the store is refused before anything
// is served. The master key can also come from ROTOR_MASTER_KEY or from
// <data-dir>/master.seal under a passphrase, in which case the server may
// start sealed (sealed.go).
//
// Every request is authorized by internal/iam (identity policies of the
// caller, the secret's resource policy), rate-limited per access key,
// counted by internal/metrics (GET /metrics) and recorded in the audit log
// <data-dir>/audit/audit.log before it is answered. The audit log's
// Ed25519 signing key is sealed in the store on first start, its public
// half written to audit/audit.pub, and each checkpoint anchored in the
// store (AuditAnchorMeta). The server's own work (rotation engine, purge)
// runs as iam.System.
//
// Label changes (every staging label a committed call moved) go from the
// domain service to an in-process events.Hub, which streams them to
// rotor.SubscribeLabelChanges subscribers (push invalidation for caches),
// and, like rotation events, to the webhook outbox when webhooks are
// configured (internal/webhook).
//
// Shutdown (ctx cancelled): stop the rotation engine, webhook deliveries
// and the other background work (releasing the lease on a shared store),
// stop accepting connections, end the open label-change streams, let
// in-flight requests finish (up to ShutdownTimeout), write a final audit
// checkpoint, then close the store.
package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rotor-secrets/rotor/internal/arn"
	"github.com/rotor-secrets/rotor/internal/audit"
	"github.com/rotor-secrets/rotor/internal/auth"
	"github.com/rotor-secrets/rotor/internal/auth/policy"
	"github.com/rotor-secrets/rotor/internal/awsapi"
	"github.com/rotor-secrets/rotor/internal/events"
	"github.com/rotor-secrets/rotor/internal/iam"
	"github.com/rotor-secrets/rotor/internal/keyring"
	"github.com/rotor-secrets/rotor/internal/keys"
	"github.com/rotor-secrets/rotor/internal/metrics"
	"github.com/rotor-secrets/rotor/internal/ratelimit"
	"github.com/rotor-secrets/rotor/internal/rotation"
	"github.com/rotor-secrets/rotor/internal/rotation/custom"
	redisrot "github.com/rotor-secrets/rotor/internal/rotation/redis"
	"github.com/rotor-secrets/rotor/internal/rotation/schedule"
	"github.com/rotor-secrets/rotor/internal/secrets"
	"github.com/rotor-secrets/rotor/internal/store"
	"github.com/rotor-secrets/rotor/internal/webhook"
)

// Config is the server's configuration (see cmd/rotor for flags and
// environment variables).
type Config struct {
	Listen    string // host:port; port 0 picks a free one
	DataDir   string
	Region    string
	AccountID string
	TLSCert   string // PEM files; both or neither
	TLSKey    string

	// RootAccessKeyID and RootSecretAccessKey set the root key explicitly;
	// otherwise one is generated on first start.
	RootAccessKeyID     string
	RootSecretAccessKey string

	// Store is "" for the embedded SQLite store in the data dir, or a
	// PostgreSQL URL (postgres://…) shared by several nodes (cluster.go).
	Store string
	// StoreMaxConns bounds the PostgreSQL pool (default 10).
	StoreMaxConns int32
	// NodeID names this node among those sharing a store; default: the
	// one in <data-dir>/node-id, created on first start.
	NodeID string
	// LeaseTTL is how long the rotation lease outlives its holder's last
	// renewal (default 15s; renewed every third of it).
	LeaseTTL time.Duration

	ShutdownTimeout time.Duration // default 30s
	PurgeInterval   time.Duration // how often expired deletions are purged; default 1h

	Rotation RotationConfig
	Keys     KeysConfig // the master key re-wrap job (keys.go)

	// RateLimit is each access key's sustained request rate per second and
	// RateBurst its burst (token bucket); RateLimit 0 disables the limit.
	RateLimit float64
	RateBurst int
	// Webhooks receive rotation and label events (EventBridge JSON).
	Webhooks []webhook.Target
	// WebhookMaxAttempts is how many deliveries of an event are tried
	// before it is parked (default 10).
	WebhookMaxAttempts int
	// WebhookRetryBase is the first retry delay of a failed delivery
	// (default 1s); it doubles up to 5 min.
	WebhookRetryBase time.Duration
	// NoMetrics turns GET /metrics off.
	NoMetrics bool
	// AuditSyncEvery, when positive, fsyncs the audit log at most this
	// often instead of before every answer (see audit.Options.SyncEvery).
	AuditSyncEvery time.Duration

	// MasterKeySource is where the root key comes from: KeySourceFile
	// (default), KeySourceEnv or KeySourcePassphrase (see sealed.go).
	MasterKeySource string
	// MasterKey is the root key for KeySourceEnv, in master.key's format
	// (cmd/rotor reads it from ROTOR_MASTER_KEY).
	MasterKey string
	// PassphraseFile, with KeySourcePassphrase, unseals at start; without
	// it the server starts sealed.
	PassphraseFile string

	// FunctionDir holds the executables exec rotation functions may run
	// (internal/rotation/custom); "" disables exec functions.
	FunctionDir string

	// endpoint is the API's URL once the listener is open (exec rotation
	// functions call it).
	endpoint *atomic.Pointer[string]

	// sealParams are the Argon2id parameters of a new master.seal; zero
	// means keyring.DefaultArgon2Params. Tests only.
	sealParams keyring.Argon2Params
}

// Defaults used by cmd/rotor.
const (
	DefaultListen    = "127.0.0.1:7300"
	DefaultDataDir   = "./rotor-data"
	DefaultRegion    = "us-east-1"
	DefaultAccountID = "000000000000"
	// CredentialsProfile is the profile of the generated credentials file.
	CredentialsProfile = "rotor"
)

var (
	regionPattern  = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
	accountPattern = regexp.MustCompile(`^[0-9]{12}$`)
)

// Validate reports every configuration error at once.
func (c *Config) Validate() error {
	var errs []error
	if c.Listen == "" {
		errs = append(errs, errors.New("listen: empty address"))
	} else if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("listen: %w", err))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("data-dir: empty path"))
	}
	if !regionPattern.MatchString(c.Region) {
		errs = append(errs, fmt.Errorf("region: %q is not a region name like us-east-1", c.Region))
	}
	if !accountPattern.MatchString(c.AccountID) {
		errs = append(errs, fmt.Errorf("account-id: %q is not 12 digits", c.AccountID))
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, errors.New("tls-cert and tls-key: give both or neither"))
	}
	if (c.RootAccessKeyID == "") != (c.RootSecretAccessKey == "") {
		errs = append(errs, errors.New("root access key: set both ROTOR_ROOT_ACCESS_KEY_ID and ROTOR_ROOT_SECRET_ACCESS_KEY or neither"))
	}
	if c.RootAccessKeyID != "" && (len(c.RootAccessKeyID) < 16 || len(c.RootAccessKeyID) > 128) {
		errs = append(errs, errors.New("root access key id: want 16-128 characters"))
	}
	if c.RootSecretAccessKey != "" && len(c.RootSecretAccessKey) < 16 {
		errs = append(errs, errors.New("root secret access key: want at least 16 characters"))
	}
	if c.RateLimit < 0 || c.RateBurst < 0 {
		errs = append(errs, errors.New("rate-limit and rate-burst: must not be negative"))
	}
	errs = append(errs, c.validateKeySource()...)
	errs = append(errs, validateStore(c)...)
	return errors.Join(errs...)
}

// Server is a running Rotor server.
type Server struct {
	cfg     Config
	log     *slog.Logger
	store   store.Store
	service *secrets.Service
	engine  *rotation.Engine
	keys    *keys.Service
	audit   *audit.Log
	hooks   *webhook.Dispatcher // nil: no webhooks
	rotator io.Closer           // the built-in rotators' master connections
	cluster *cluster            // the node's id and, on a shared store, the lease
	http    *http.Server
	ln      net.Listener

	handler      http.Handler // the API and health endpoints, once unsealed
	closeStreams func()       // ends the label-change streams
	gate         *gate        // sealed mode and unsealing (sealed.go)
}

// Open prepares a server: data directory, keys, store, listener. Serve it
// with Run; Addr tells where it listens. With Config.MasterKeySource
// passphrase and no PassphraseFile it opens only the listener: the server
// starts sealed and opens the rest when rotor.Unseal gives the passphrase
// (sealed.go).
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = 30 * time.Second
	}
	if cfg.PurgeInterval == 0 {
		cfg.PurgeInterval = time.Hour
	}
	if cfg.endpoint == nil {
		cfg.endpoint = new(atomic.Pointer[string])
	}
	if err := ensureDataDir(cfg.DataDir, log); err != nil {
		return nil, err
	}
	mk, err := rootKey(ctx, cfg, log)
	if errors.Is(err, errSealed) {
		// No passphrase yet: serve health and rotor.Unseal only.
		s := &Server{cfg: cfg, log: log, gate: newGate(cfg, log)}
		if err := s.listen(); err != nil {
			return nil, err
		}
		return s, nil
	}
	if err != nil {
		return nil, err
	}
	s, err := open(ctx, cfg, log, mk)
	if err != nil {
		return nil, err
	}
	s.gate = newGate(cfg, log)
	s.gate.opened(s)
	if err := s.listen(); err != nil {
		s.closeApp()
		return nil, err
	}
	return s, nil
}

// open is Open once the root key is known: keyring, store, services and the
// HTTP handler, not the listener.
func open(ctx context.Context, cfg Config, log *slog.Logger, mk keyring.MasterKey) (*Server, error) {
	kr, err := keyring.New(mk)
	if err != nil {
		return nil, err
	}
	node, err := nodeID(cfg, log)
	if err != nil {
		return nil, err
	}
	st, err := openStore(ctx, cfg, log)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	_, shared := st.(store.Shared)
	ok := false
	defer func() {
		if !ok {
			st.Close()
		}
	}()
	masterKeys, err := openKeys(ctx, cfg, publishingIfShared(st, keysTopic), kr, mk, log)
	if err != nil {
		if shared {
			err = fmt.Errorf("%w (every node of a shared store needs the same master key: copy master.key, or master.seal, from a node that serves it)", err)
		}
		return nil, err
	}
	if err := checkKey(ctx, st, kr); err != nil {
		if shared {
			err = fmt.Errorf("%w (every node of a shared store needs the same master key: copy master.key, or master.seal, from a node that serves it)", err)
		}
		return nil, err
	}
	clu, err := newCluster(ctx, cfg, st, node, log)
	if err != nil {
		return nil, err
	}
	keys := auth.NewStoreKeys(publishingIfShared(st, iamTopic), kr)
	iamVersion := topicVersion(st, iamTopic)
	if iamVersion != nil {
		keys.FollowVersion(iamVersion)
	}
	if err := ensureRootKey(ctx, cfg, keys, st, kr, log); err != nil {
		return nil, err
	}

	if shared {
		if err := registerAuditNode(ctx, st, node); err != nil {
			return nil, fmt.Errorf("register audit chain: %w", err)
		}
	}
	auditLog, err := openAudit(ctx, st, kr, cfg.DataDir, AuditAnchorKey(node, shared), cfg.AuditSyncEvery)
	if err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	defer func() {
		if !ok {
			auditLog.Close()
		}
	}()
	var hooks *webhook.Dispatcher
	if len(cfg.Webhooks) > 0 {
		hooks, err = webhook.New(webhook.Config{
			Store: st, Targets: cfg.Webhooks, MaxAttempts: cfg.WebhookMaxAttempts,
			BackoffBase: cfg.WebhookRetryBase, Logger: log,
		})
		if err != nil {
			return nil, fmt.Errorf("webhooks: %w", err)
		}
	}
	m := metrics.New(awsapi.OperationNames())
	m.SetStats(func(ctx context.Context) (store.SecretStats, error) {
		var stats store.SecretStats
		err := st.Read(ctx, func(tx store.Tx) (err error) {
			stats, err = tx.SecretStats(ctx, time.Now())
			return err
		})
		return stats, err
	})
	if hooks != nil {
		m.SetBacklog(hooks.Backlog)
	}
	m.SetLeader(clu.leading.Load)
	labels := events.NewHub(0)
	obs := &observers{log: log, audit: auditLog, metrics: m, hooks: hooks, labels: labels,
		account: cfg.AccountID, region: cfg.Region, newEvent: newEventID}
	access := iam.New(iam.Config{Store: publishingIfShared(st, iamTopic), Keys: keys, AccountID: cfg.AccountID, Region: cfg.Region, Logger: log,
		Version: iamVersion})

	functions := rotation.NewRegistry()
	planner := &rotation.SchedulePlanner{Options: schedule.Options{MinInterval: cfg.Rotation.MinInterval}}
	recorder := obs
	var engine *rotation.Engine
	svc := secrets.New(secrets.Config{
		Region:       cfg.Region,
		AccountID:    cfg.AccountID,
		Store:        publishingIfShared(st, secretsTopic),
		CacheVersion: cacheVersion(st),
		Keyring:      kr,
		KMSKeys:      kmsKeys{masterKeys},
		CheckPolicy:  checkPolicy,
		Authorize:    access.Authorize,
		Functions:    functions,
		Planner:      planner,
		Kick: func() {
			engine.Kick()
			kickOthers(st, log)
		},
		Recorder:      recorder,
		OnLabelChange: obs.LabelChanges,
		Logger:        log,
	})
	rotator := registerBuiltins(functions, rotationAPI{svc})
	redisrot.RouteClientLogs(log)
	sessions := auth.NewSessionKeys(keys)
	catalog := &custom.Catalog{Store: st, Keyring: kr, Dir: cfg.FunctionDir}
	functions.SetFallback(customRuntime(cfg, catalog, sessions, svc, log).Lookup)
	engine = rotation.NewEngine(rotation.Config{
		Store:        st,
		Functions:    functions,
		Domain:       svc,
		Planner:      planner,
		Recorder:     recorder,
		Logger:       log,
		MaxAttempts:  cfg.Rotation.MaxAttempts,
		BaseBackoff:  cfg.Rotation.RetryBase,
		MaxBackoff:   cfg.Rotation.RetryMax,
		PollInterval: cfg.Rotation.PollInterval,
		// A custom function's own timeout (up to 15 min) bounds its steps;
		// the built-ins bound each network call.
		StepTimeout: custom.MaxTimeout + time.Minute,
		CrashAfter:  rotation.Step(cfg.Rotation.CrashAfterStep),
	})
	watch(st, clu, access, masterKeys, labels, engine, log)
	// Closed when Shutdown begins: label-change streams never end on their
	// own, and Shutdown waits for every handler.
	streamsDone := make(chan struct{})
	api := awsapi.New(awsapi.Config{
		Service: svc,
		Auth: auth.NewVerifier(auth.VerifierConfig{
			Keys:    sessions,
			Region:  cfg.Region,
			Service: "secretsmanager",
		}),
		Logger:      log,
		Events:      labels,
		Done:        streamsDone,
		IAM:         access,
		Audit:       auditLog,
		AuditLog:    auditFile{filepath.Join(cfg.DataDir, AuditDir, AuditLogFile)},
		Metrics:     m,
		Limiter:     ratelimit.New(cfg.RateLimit, cfg.RateBurst, nil),
		Webhooks:    webhookAdmin(hooks),
		Keys:        keyAdmin{Service: masterKeys, cfg: cfg},
		Functions:   functionAdmin{Catalog: catalog, region: cfg.Region, account: cfg.AccountID},
		SharedStore: shared,
	})

	mux := http.NewServeMux()
	mux.Handle("/", api)
	if !cfg.NoMetrics {
		mux.Handle("GET /metrics", m.Handler())
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"status":"ok","node":%q,"leader":%t}`+"\n", clu.node, clu.leading.Load())
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "application/json")
		if err := st.Ping(ctx); err != nil {
			log.Warn("readiness check failed", "err", err)
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"status":"store unreachable"}` + "\n"))
			return
		}
		w.Write([]byte(`{"status":"ready"}` + "\n"))
	})

	ok = true
	return &Server{cfg: cfg, log: log, store: st, service: svc, engine: engine, keys: masterKeys, audit: auditLog, hooks: hooks, rotator: rotator, cluster: clu,
		handler: mux, closeStreams: sync.OnceFunc(func() { close(streamsDone) })}, nil
}

// listen opens the listener and the HTTP server in front of s.gate.
func (s *Server) listen() error {
	cfg, log := s.cfg, s.log
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	srv := &http.Server{
		Handler:           s.gate,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	srv.RegisterOnShutdown(func() {
		if app := s.gate.app.Load(); app != nil {
			app.closeStreams()
		}
	})
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			ln.Close()
			return fmt.Errorf("load TLS key pair: %w", err)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	s.http, s.ln = srv, ln
	scheme := "http"
	if cfg.TLSCert != "" {
		scheme = "https"
	}
	endpoint := scheme + "://" + ln.Addr().String()
	s.cfg.endpoint.Store(&endpoint)
	return nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Run serves until ctx ends, then shuts down gracefully and closes the store.
func (s *Server) Run(ctx context.Context) error {
	scheme := "http"
	if s.cfg.TLSCert != "" {
		scheme = "https"
	}
	sealed := s.gate.app.Load() == nil
	s.log.Info("rotor server listening", "addr", s.Addr().String(), "endpoint", scheme+"://"+s.Addr().String(),
		"region", s.cfg.Region, "account_id", s.cfg.AccountID, "data_dir", s.cfg.DataDir, "store", StoreDescription(s.cfg), "sealed", sealed)
	if sealed {
		s.warnSealed()
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- s.http.Serve(s.ln) }()
	app, err := s.gate.wait(ctx, s.http, serveErr)
	if app == nil {
		// Stopped while sealed: nothing but the listener to close.
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.log.Info("rotor server stopped")
		return err
	}
	return app.run(ctx, s.http, serveErr)
}

// run is Run once the server is unsealed: the background work, then, when
// ctx ends or srv fails, the graceful shutdown. s is the unsealed server
// (open's), srv the HTTP server in front of it.
func (s *Server) run(ctx context.Context, srv *http.Server, serveErr chan error) error {
	// The server's own work runs as the system, which needs no policy.
	bg, stopBG := context.WithCancel(iam.System(context.Background()))
	var wg sync.WaitGroup
	wg.Go(func() { s.cluster.run(bg, s.background) })
	var err error
	select {
	case err = <-serveErr:
	case <-ctx.Done():
		s.log.Info("shutting down", "timeout", s.cfg.ShutdownTimeout.String())
		// The background work stops first, so that a leader releases its
		// lease while the HTTP drain runs (it can take seconds: idle
		// connections that never carried a request count as active).
		stopBG()
		sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
		err = srv.Shutdown(sctx)
		cancel()
		<-serveErr
	}
	stopBG()
	wg.Wait()
	s.rotator.Close() // after the engine: no step is running
	if cerr := s.audit.Close(); cerr != nil {
		s.log.Error("close audit log", "err", cerr)
		if err == nil {
			err = cerr
		}
	}
	if cerr := s.store.Close(); cerr != nil && err == nil {
		err = cerr
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	s.log.Info("rotor server stopped")
	return err
}

// background is the work one node does for all: rotations, purging,
// the master key job and webhook deliveries. It returns when ctx ends.
func (s *Server) background(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { s.purgeLoop(ctx) })
	wg.Go(func() { s.engine.Run(ctx) })
	wg.Go(func() { s.keys.Run(ctx) })
	if s.hooks != nil {
		wg.Go(func() {
			if err := s.hooks.Run(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("webhook dispatcher stopped", "err", err)
			}
		})
	}
	wg.Wait()
}

func (s *Server) purgeLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.PurgeInterval)
	defer t.Stop()
	for {
		n, err := s.service.PurgeExpired(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.Error("purge deleted secrets", "err", err)
		} else if n > 0 {
			s.log.Info("purged deleted secrets", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func ensureDataDir(dir string, log *slog.Logger) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		log.Warn("data dir is accessible to other users; chmod 700 it", "path", dir, "mode", fi.Mode().Perm().String())
	}
	return nil
}

const keyCheckMeta = "keyring.check"

// checkKey proves the master key belongs to the store: a canary sealed at
// first start must open.
func checkKey(ctx context.Context, st store.Store, kr *keyring.Keyring) error {
	aad := []byte(keyCheckAAD)
	return st.Write(ctx, func(tx store.Tx) error {
		v, err := tx.Meta(ctx, keyCheckMeta)
		if errors.Is(err, store.ErrNotFound) {
			sealed, _, err := kr.Seal([]byte("rotor"), aad)
			if err != nil {
				return err
			}
			return tx.PutMeta(ctx, keyCheckMeta, string(sealed))
		}
		if err != nil {
			return err
		}
		if _, err := kr.Open([]byte(v), aad); err != nil {
			id, _ := keyring.KeyIDOf([]byte(v))
			return fmt.Errorf("the master key (id %s) does not belong to this store, which was sealed with key %s: restore the data dir's master.key", kr.CurrentKeyID(), id)
		}
		return nil
	})
}

const rootKeyMeta = "root.access_key_id"

// ensureRootKey makes the root access key exist: the one configured, the
// one stored, or a new one written to the credentials file.
func ensureRootKey(ctx context.Context, cfg Config, keys *auth.StoreKeys, st store.Store, kr *keyring.Keyring, log *slog.Logger) error {
	rootARN := arn.Root(cfg.AccountID)
	var current string
	err := st.Read(ctx, func(tx store.Tx) error {
		v, err := tx.Meta(ctx, rootKeyMeta)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		current = v
		return err
	})
	if err != nil {
		return err
	}
	credPath := filepath.Join(cfg.DataDir, "credentials")
	id, secret := cfg.RootAccessKeyID, cfg.RootSecretAccessKey
	switch {
	case id != "":
		// Configured explicitly: it replaces any other root key.
	case current != "":
		if _, err := os.Stat(credPath); err == nil {
			log.Info("root access key", "access_key_id", current, "credentials_file", credPath, "profile", CredentialsProfile)
			return nil
		}
		// The credentials file was removed: write it again from the store.
		sec, _, err := keys.SecretKey(ctx, current)
		if err != nil {
			return fmt.Errorf("read root access key: %w", err)
		}
		id, secret = current, sec
	default:
		id, secret, err = auth.GenerateKeyPair()
		if err != nil {
			return err
		}
	}
	if id != current {
		if current != "" {
			if err := keys.Put(ctx, current, "", rootARN, false); err != nil {
				return fmt.Errorf("deactivate old root key: %w", err)
			}
		}
		if err := keys.Put(ctx, id, secret, rootARN, true); err != nil {
			return fmt.Errorf("store root key: %w", err)
		}
		if err := st.Write(ctx, func(tx store.Tx) error { return tx.PutMeta(ctx, rootKeyMeta, id) }); err != nil {
			return err
		}
	}
	if cfg.RootAccessKeyID != "" {
		log.Info("root access key from the environment", "access_key_id", id)
		return nil
	}
	if err := writeCredentials(credPath, id, secret); err != nil {
		return err
	}
	log.Info("root access key", "access_key_id", id, "credentials_file", credPath, "profile", CredentialsProfile)
	return nil
}

func writeCredentials(path, id, secret string) error {
	body := fmt.Sprintf("[%s]\naws_access_key_id = %s\naws_secret_access_key = %s\n", CredentialsProfile, id, secret)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
		return fmt.Errorf("write credentials file: %w", err)
	}
	if err := os.Chmod(tmp, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return os.Rename(tmp, path)
}

func checkPolicy(doc string) (bool, error) {
	p, err := policy.ParseResourcePolicy(doc)
	if err != nil {
		return false, err
	}
	return p.IsPublic(), nil
}

// webhookAdmin is hooks as the API's administration backend; nil when
// there are no webhooks (a typed nil would look configured).
func webhookAdmin(hooks *webhook.Dispatcher) awsapi.WebhookAdmin {
	if hooks == nil {
		return nil
	}
	return hooks
}

// newEventID returns a random UUID v4 for an event.
func newEventID() string {
	var u [16]byte
	_, _ = rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}
