package server

// Master key sources and sealed mode.
//
// The root key comes from <data-dir>/master.key (KeySourceFile, created on
// first start), from ROTOR_MASTER_KEY (KeySourceEnv, never written), or from
// <data-dir>/master.seal opened with a passphrase (KeySourcePassphrase).
//
// With a passphrase but no passphrase file, Open does not fail: the server
// listens SEALED, like Vault. It answers GET /healthz (200
// {"status":"sealed"}), GET /readyz (503 {"status":"sealed"}) and POST /
// with X-Amz-Target rotor.Unseal; everything else gets 503
// ServiceUnavailableException. rotor.Unseal is unauthenticated (no access
// key can be verified before the store opens), rate-limited per client IP
// and serialised: one Argon2id derivation at a time. A wrong passphrase
// answers 400 InvalidPassphraseException and changes nothing; the right one
// opens the store and services in-process and the gate switches to them.
// rotor.Unseal on an unsealed server answers {"Sealed":false} and checks
// nothing.
//
// First start in passphrase mode creates master.seal with a new root key;
// when master.key exists it is sealed instead, and removed once master.seal
// is durable.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rotor-secrets/rotor/internal/awsapi"
	"github.com/rotor-secrets/rotor/internal/keyring"
)

// Master key sources (Config.MasterKeySource).
const (
	KeySourceFile       = "file"
	KeySourceEnv        = "env"
	KeySourcePassphrase = "passphrase"
)

// Files of the data dir that hold the root key.
const (
	MasterKeyFile = "master.key"
	SealFile      = "master.seal"
	storeFile     = "rotor.db"
)

// UnsealTarget is the X-Amz-Target of the unseal operation; its body is
// {"Passphrase":"…"} and its answer {"Sealed":false}.
const UnsealTarget = "rotor.Unseal"

// unsealInterval is how often one client IP may try a passphrase.
const unsealInterval = 500 * time.Millisecond

// maxUnsealBody bounds an unseal request's body.
const maxUnsealBody = 8 << 10

// errSealed says the root key needs a passphrase nobody has given yet.
var errSealed = errors.New("sealed: no passphrase")

func (c *Config) validateKeySource() []error {
	var errs []error
	switch c.MasterKeySource {
	case "", KeySourceFile, KeySourceEnv, KeySourcePassphrase:
	default:
		errs = append(errs, fmt.Errorf("master-key-source: %q is not file, env or passphrase", c.MasterKeySource))
	}
	if c.MasterKeySource == KeySourceEnv && c.MasterKey == "" {
		errs = append(errs, errors.New("master-key-source env: set ROTOR_MASTER_KEY to the master key (base64, as in master.key)"))
	}
	if c.MasterKeySource != KeySourceEnv && c.MasterKey != "" {
		errs = append(errs, errors.New("ROTOR_MASTER_KEY is set but master-key-source is not env: set --master-key-source env, or unset it"))
	}
	if c.PassphraseFile != "" && c.MasterKeySource != KeySourcePassphrase {
		errs = append(errs, errors.New("passphrase-file: only with --master-key-source passphrase"))
	}
	return errs
}

// rootKey returns the root key from cfg's source, or errSealed when it is a
// passphrase that must come from rotor.Unseal.
func rootKey(ctx context.Context, cfg Config, log *slog.Logger) (keyring.MasterKey, error) {
	switch cfg.MasterKeySource {
	case KeySourceEnv:
		mk, err := keyring.EnvSource{Name: "ROTOR_MASTER_KEY", Value: cfg.MasterKey}.RootKey(ctx)
		if err == nil {
			log.Info("master key from the environment", "key_id", mk.ID)
		}
		return mk, err
	case KeySourcePassphrase:
		if cfg.PassphraseFile == "" {
			return keyring.MasterKey{}, errSealed
		}
		pass, err := readPassphraseFile(cfg.PassphraseFile, log)
		if err != nil {
			return keyring.MasterKey{}, err
		}
		defer clear(pass)
		return unsealKey(ctx, cfg, log, pass)
	}
	return fileRootKey(ctx, cfg, log)
}

func fileRootKey(ctx context.Context, cfg Config, log *slog.Logger) (keyring.MasterKey, error) {
	path := filepath.Join(cfg.DataDir, MasterKeyFile)
	hasStore := exists(filepath.Join(cfg.DataDir, storeFile))
	hasSeal := exists(filepath.Join(cfg.DataDir, SealFile))
	mk, err := keyring.FileSource{
		Path:     path,
		NoCreate: hasStore || hasSeal,
		Created: func(mk keyring.MasterKey) {
			log.Info("created master key", "path", path, "key_id", mk.ID)
		},
	}.RootKey(ctx)
	if errors.Is(err, keyring.ErrKeyFileMissing) {
		if hasSeal {
			return mk, fmt.Errorf("master.key is missing: the master key of %s is sealed with a passphrase in %s; start with --master-key-source passphrase", cfg.DataDir, SealFile)
		}
		return mk, fmt.Errorf("master.key is missing: %s holds a store sealed under a master key, and a new key would not open it; restore master.key from a backup of this data dir (or give the key with --master-key-source env)", cfg.DataDir)
	}
	if err != nil {
		return mk, err
	}
	return recoverRoot(ctx, cfg, log, keyring.FileSource{Path: path, NoCreate: true}, mk)
}

// unsealKey opens master.seal with pass. When there is none it seals
// master.key (migration) or, in a new data dir, a new root key.
func unsealKey(ctx context.Context, cfg Config, log *slog.Logger, pass []byte) (keyring.MasterKey, error) {
	sealPath := filepath.Join(cfg.DataDir, SealFile)
	keyPath := filepath.Join(cfg.DataDir, MasterKeyFile)
	src := keyring.PassphraseSource{Path: sealPath, Passphrase: pass, Params: cfg.sealParams}
	if !exists(sealPath) {
		if len(pass) < keyring.MinPassphraseLen {
			return keyring.MasterKey{}, &awsapi.InvalidPassphraseError{
				Msg: fmt.Sprintf("A new master.seal needs a passphrase of at least %d characters.", keyring.MinPassphraseLen)}
		}
		switch {
		case exists(keyPath):
			return sealKeyFile(ctx, cfg, log, pass)
		case exists(filepath.Join(cfg.DataDir, storeFile)):
			return keyring.MasterKey{}, fmt.Errorf("master.seal is missing: %s holds a store sealed under a master key, and a new key would not open it; restore master.seal from a backup of this data dir", cfg.DataDir)
		}
		src.Create = true
		src.Created = func(mk keyring.MasterKey) {
			log.Info("created master key sealed with the passphrase", "path", sealPath, "key_id", mk.ID)
		}
	}
	mk, err := src.RootKey(ctx)
	if errors.Is(err, keyring.ErrWrongPassphrase) {
		return mk, &awsapi.InvalidPassphraseError{Msg: "The passphrase does not open master.seal; the server stays sealed."}
	}
	if err != nil {
		return mk, err
	}
	if exists(keyPath) {
		log.Warn("master.key is present beside master.seal and is not used; remove it, since it opens the store without the passphrase", "path", keyPath)
	}
	return recoverRoot(ctx, cfg, log, keyring.PassphraseSource{Path: sealPath, Passphrase: pass}, mk)
}

// sealKeyFile moves an existing master.key into a new master.seal, and
// removes master.key only once master.seal is durable.
func sealKeyFile(ctx context.Context, cfg Config, log *slog.Logger, pass []byte) (keyring.MasterKey, error) {
	keyPath := filepath.Join(cfg.DataDir, MasterKeyFile)
	sealPath := filepath.Join(cfg.DataDir, SealFile)
	mk, err := keyring.FileSource{Path: keyPath, NoCreate: true}.RootKey(ctx)
	if err != nil {
		return mk, err
	}
	if err := keyring.WriteSealFile(sealPath, pass, mk, cfg.sealParams); err != nil {
		return keyring.MasterKey{}, err
	}
	// Prove the new file opens before the old one goes.
	got, err := keyring.PassphraseSource{Path: sealPath, Passphrase: pass}.RootKey(ctx)
	if err != nil || got.ID != mk.ID {
		return keyring.MasterKey{}, fmt.Errorf("master.seal written from master.key does not open (%v); master.key is kept", err)
	}
	if err := os.Remove(keyPath); err != nil {
		return keyring.MasterKey{}, fmt.Errorf("remove master.key after sealing it: %w", err)
	}
	log.Info("sealed master.key with the passphrase and removed it", "path", sealPath, "key_id", mk.ID)
	return mk, nil
}

// readPassphraseFile reads a passphrase file: its content without one
// trailing newline.
func readPassphraseFile(path string, log *slog.Logger) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("passphrase file: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Mode().Perm()&0o077 != 0 {
		log.Warn("passphrase file is accessible to other users; chmod 600 it", "path", path, "mode", fi.Mode().Perm().String())
	}
	b, err := io.ReadAll(io.LimitReader(f, keyring.MaxPassphraseLen+3))
	if err != nil {
		clear(b)
		return nil, fmt.Errorf("passphrase file: %w", err)
	}
	pass := trimNewline(b)
	if len(pass) == 0 {
		return nil, fmt.Errorf("passphrase file %s is empty", path)
	}
	if len(pass) > keyring.MaxPassphraseLen {
		clear(b)
		return nil, fmt.Errorf("passphrase file %s: longer than %d bytes", path, keyring.MaxPassphraseLen)
	}
	return pass, nil
}

func trimNewline(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
	}
	return b
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// gate is the HTTP handler in front of the server: while sealed it answers
// health checks and rotor.Unseal only; once unsealed it passes every
// request to the unsealed server's handler.
type gate struct {
	cfg Config
	log *slog.Logger

	app      atomic.Pointer[Server] // the unsealed server; nil while sealed
	unsealed chan struct{}          // closed once app is set

	mu     sync.Mutex // serialises unseal attempts; guards closed
	closed bool       // the server is stopping: no more unseals

	throttle throttle
}

func newGate(cfg Config, log *slog.Logger) *gate {
	return &gate{cfg: cfg, log: log, unsealed: make(chan struct{}),
		throttle: throttle{every: unsealInterval, last: make(map[string]time.Time)}}
}

// opened makes app the server behind the gate.
func (g *gate) opened(app *Server) {
	g.app.Store(app)
	close(g.unsealed)
}

// wait returns the unsealed server once there is one. If ctx ends or srv
// fails first, it shuts srv down and returns nil and srv's error.
func (g *gate) wait(ctx context.Context, srv *http.Server, serveErr chan error) (*Server, error) {
	var err error
	select {
	case <-g.unsealed:
		return g.app.Load(), nil
	case <-ctx.Done():
	case err = <-serveErr:
	}
	g.mu.Lock() // waits for an unseal in progress
	g.closed = true
	app := g.app.Load()
	g.mu.Unlock()
	if app != nil && err == nil {
		// Unsealed just now: run shuts it down, ctx being done.
		return app, nil
	}
	if err == nil {
		sctx, cancel := context.WithTimeout(context.Background(), g.cfg.ShutdownTimeout)
		err = srv.Shutdown(sctx)
		cancel()
		<-serveErr
	}
	if app != nil {
		app.closeApp()
	}
	return nil, err
}

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && r.URL.Path == "/" && r.Header.Get("X-Amz-Target") == UnsealTarget {
		g.serveUnseal(w, r)
		return
	}
	if app := g.app.Load(); app != nil {
		app.handler.ServeHTTP(w, r)
		return
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/healthz":
		writeJSON(w, http.StatusOK, `{"status":"sealed"}`)
	case r.Method == http.MethodGet && r.URL.Path == "/readyz":
		writeJSON(w, http.StatusServiceUnavailable, `{"status":"sealed"}`)
	default:
		awsapi.WriteError(w, awsapi.ErrSealed)
	}
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body+"\n")
}

const unsealedBody = `{"Sealed":false}`

func (g *gate) serveUnseal(w http.ResponseWriter, r *http.Request) {
	if g.app.Load() != nil {
		writeJSON(w, http.StatusOK, unsealedBody)
		return
	}
	ip := r.RemoteAddr
	if h, _, err := net.SplitHostPort(ip); err == nil {
		ip = h
	}
	if !g.throttle.allow(ip, time.Now()) {
		w.Header().Set("Retry-After", strconv.Itoa(int((unsealInterval+time.Second-1)/time.Second)))
		awsapi.WriteError(w, awsapi.ErrUnsealThrottled)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxUnsealBody+1))
	defer clear(body)
	var in struct{ Passphrase string }
	if err != nil || len(body) > maxUnsealBody || json.Unmarshal(body, &in) != nil {
		awsapi.WriteError(w, &awsapi.InvalidPassphraseError{Msg: `The body must be {"Passphrase":"…"}.`})
		return
	}
	// Strings cannot be cleared; the bytes can.
	pass := []byte(in.Passphrase)
	defer clear(pass)
	if len(pass) == 0 || len(pass) > keyring.MaxPassphraseLen {
		awsapi.WriteError(w, &awsapi.InvalidPassphraseError{Msg: "Passphrase is empty or too long."})
		return
	}
	// The unseal must finish even if the client leaves.
	err = g.unseal(context.WithoutCancel(r.Context()), pass)
	var pe *awsapi.InvalidPassphraseError
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, unsealedBody)
	case errors.As(err, &pe):
		g.log.Warn("unseal refused", "remote_addr", r.RemoteAddr, "reason", pe.Msg)
		awsapi.WriteError(w, err)
	default:
		g.log.Error("unseal failed", "remote_addr", r.RemoteAddr, "err", err)
		awsapi.WriteError(w, err)
	}
}

// unseal opens the root key with pass and the server with it.
func (g *gate) unseal(ctx context.Context, pass []byte) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.app.Load() != nil {
		return nil // another attempt won
	}
	if g.closed {
		return errors.New("the server is stopping")
	}
	mk, err := unsealKey(ctx, g.cfg, g.log, pass)
	if err != nil {
		return err
	}
	app, err := open(ctx, g.cfg, g.log, mk)
	if err != nil {
		return err
	}
	g.opened(app)
	g.log.Info("rotor unsealed", "key_id", mk.ID)
	return nil
}

// throttle allows one attempt per key (client IP) every interval.
type throttle struct {
	every time.Duration
	mu    sync.Mutex
	last  map[string]time.Time
}

func (t *throttle) allow(key string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if l, ok := t.last[key]; ok && now.Sub(l) < t.every {
		return false
	}
	if len(t.last) >= 4096 {
		for k, l := range t.last {
			if now.Sub(l) >= t.every {
				delete(t.last, k)
			}
		}
	}
	t.last[key] = now
	return true
}

// warnSealed logs that the server is sealed, and that the passphrase would
// travel in clear when it serves plain HTTP beyond the loopback interface.
func (s *Server) warnSealed() {
	s.log.Warn("rotor is sealed: it answers health checks and rotor.Unseal only until `rotor unseal` gives the passphrase")
	if s.cfg.TLSCert != "" {
		return
	}
	if a, ok := s.Addr().(*net.TCPAddr); ok && !a.IP.IsLoopback() {
		s.log.Warn("the unseal passphrase would travel in clear over plain HTTP on a non-loopback address; serve TLS (--tls-cert, --tls-key)",
			"addr", s.Addr().String())
	}
}

// closeApp releases what open acquired, for a server that will not run.
func (s *Server) closeApp() {
	s.rotator.Close()
	if err := s.audit.Close(); err != nil {
		s.log.Error("close audit log", "err", err)
	}
	if err := s.store.Close(); err != nil {
		s.log.Error("close store", "err", err)
	}
}
