package dbtest

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Redis is a Redis server (redis-server, 6 or later) started for tests. The
// exported fields are read-only.
//
// Its users come from an ACL file in its directory (aclfile), so ACL SAVE
// works and ACL changes saved with it survive Stop and Start: AdminUser with
// AdminPassword may run everything on every key and channel, and the default
// user is off, so every connection must authenticate (an unauthenticated
// command fails with NOAUTH). The file holds SHA-256 hashes, never a
// cleartext password, and no password is ever on a command line.
//
// A server from StartRedisTLS listens with TLS only (its plaintext port is
// disabled) and TLS is the client configuration that trusts it.
type Redis struct {
	Host          string // always 127.0.0.1
	Port          int    // free when the server was first started; kept across Stop and Start
	AdminUser     string // "admin"
	AdminPassword string // random
	Version       string // redis_version of INFO server, e.g. "7.0.15"
	// TLS is nil, or for a server from StartRedisTLS a client configuration
	// that trusts the server's certificate (issued by a CA made for this
	// server, for IP 127.0.0.1 and localhost). Clone it before changing it.
	TLS *tls.Config
	// CACertPEM is the PEM certificate of that CA (nil without TLS).
	CACertPEM []byte

	dir     string // private temporary directory: data, ACL file, log, certificates
	aclPath string
	server  string // redis-server
	acct    *account
	logPath string
	seq     atomic.Uint64

	mu   sync.Mutex
	proc *process // nil before the first start
}

// StartRedis starts a Redis server for the calling test alone. It is stopped
// and its directory deleted when the test ends. Redis starts in milliseconds,
// so there is no shared Redis server: each test that needs one starts its
// own.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	return startRedisTB(t, false)
}

// StartRedisTLS is StartRedis for a server that only speaks TLS; connect
// with r.TLS.
func StartRedisTLS(t testing.TB) *Redis {
	t.Helper()
	return startRedisTB(t, true)
}

func startRedisTB(t testing.TB, withTLS bool) *Redis {
	t.Helper()
	r, timing, err := openRedis(context.Background(), withTLS)
	if err != nil {
		t.Fatal(err)
	}
	ownByTest(t, "redis", r.logPath, r.close, fmt.Sprintf("redis %s on %s:%d (%s)", r.Version, r.Host, r.Port, timing))
	return r
}

// StartRedisServer starts a Redis server for a caller that is not a test
// (rotor bench): it returns the error instead of failing a test, and the
// caller must Close the server. ctx bounds the start.
func StartRedisServer(ctx context.Context) (*Redis, error) {
	r, _, err := openRedis(ctx, false)
	return r, err
}

// Close stops a server started by StartRedisServer and deletes its
// directory. Servers from StartRedis and StartRedisTLS are closed by their
// tests.
func (r *Redis) Close() error { return r.close() }

// openRedis writes the ACL file (and the certificates) in a fresh directory
// and starts the server. On error nothing is left behind.
func openRedis(ctx context.Context, withTLS bool) (_ *Redis, timing string, err error) {
	server, err := findRedis()
	if err != nil {
		return nil, "", err
	}
	if err := ctx.Err(); err != nil {
		return nil, "", fmt.Errorf("dbtest: redis: %w", err)
	}
	acct, err := serverAccount("redis")
	if err != nil {
		return nil, "", fmt.Errorf("dbtest: redis: %v", err)
	}
	dir, err := makeBaseDir("redis", acct)
	if err != nil {
		return nil, "", fmt.Errorf("dbtest: redis: %v", err)
	}
	r := &Redis{
		Host:          "127.0.0.1",
		AdminUser:     "admin",
		AdminPassword: randomPassword(),
		dir:           dir,
		aclPath:       filepath.Join(dir, "users.acl"),
		server:        server,
		acct:          acct,
		logPath:       filepath.Join(dir, "redis.log"),
	}
	defer func() {
		if err != nil {
			r.close()
		}
	}()
	acl := "user default off resetkeys resetchannels -@all\n" +
		"user " + r.AdminUser + " on #" + sha256Hex(r.AdminPassword) + " ~* &* +@all\n"
	if err := writeFileAs(r.aclPath, []byte(acl), acct); err != nil {
		return nil, "", fmt.Errorf("dbtest: redis: %v", err)
	}
	if withTLS {
		if err := r.writeCertificates(); err != nil {
			return nil, "", fmt.Errorf("dbtest: redis: certificates: %v", err)
		}
	}
	t0 := time.Now()
	ctx, cancel := context.WithTimeout(ctx, readyBound)
	defer cancel()
	if err := startOnFreePort(ctx, "redis", &r.Port, r.start, r.checkRefusesWrongPassword); err != nil {
		return nil, "", err
	}
	start := time.Since(t0)
	if r.Version, err = r.version(ctx); err != nil {
		return nil, "", fmt.Errorf("dbtest: redis: %v", err)
	}
	return r, fmt.Sprintf("start %v", start.Round(time.Millisecond)), nil
}

// findRedis returns the path of redis-server.
func findRedis() (string, error) {
	if path, err := exec.LookPath("redis-server"); err == nil {
		return path, nil
	}
	for _, dir := range []string{"/usr/bin", "/usr/sbin", "/usr/local/bin"} {
		if path := filepath.Join(dir, "redis-server"); fileExists(path) {
			return path, nil
		}
	}
	return "", errors.New("dbtest: redis-server not found in PATH or /usr/bin; " +
		"install the redis-server package (scripts/test-deps.sh does so when run as root)")
}

// sha256Hex is how Redis stores a password: the hex SHA-256 of its bytes.
func sha256Hex(password string) string {
	sum := sha256.Sum256([]byte(password))
	return hex.EncodeToString(sum[:])
}

// start starts the server on r.Port and waits until the admin can log in.
// inUse reports a failure because the port was taken. The caller holds r.mu
// or owns r exclusively.
func (r *Redis) start() (inUse bool, err error) {
	offset := logSize(r.logPath)
	args := []string{
		"--bind", "127.0.0.1",
		"--protected-mode", "yes",
		"--dir", r.dir,
		"--aclfile", r.aclPath,
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
		"--logfile", "", // stdout, which is the log
		"--maxclients", "1000",
	}
	if r.TLS != nil {
		args = append(args,
			"--port", "0",
			"--tls-port", strconv.Itoa(r.Port),
			"--tls-cert-file", filepath.Join(r.dir, "server.crt"),
			"--tls-key-file", filepath.Join(r.dir, "server.key"),
			"--tls-ca-cert-file", filepath.Join(r.dir, "ca.crt"),
			"--tls-auth-clients", "no")
	} else {
		args = append(args, "--port", strconv.Itoa(r.Port))
	}
	proc, err := startProcess(r.server, args, r.dir, r.acct, r.logPath)
	if err != nil {
		return false, fmt.Errorf("dbtest: redis: %v", err)
	}
	r.proc = proc
	err = waitReady(proc, func(ctx context.Context) error {
		return r.CanLogin(ctx, r.AdminUser, r.AdminPassword)
	})
	if err != nil {
		proc.stop(syscall.SIGKILL)
		log := logSince(r.logPath, offset)
		return portInUse(log), fmt.Errorf("dbtest: redis on port %d: %v%s", r.Port, err, logTail(r.logPath, offset))
	}
	return false, nil
}

// checkRefusesWrongPassword proves that the server checks passwords: a wrong
// admin password fails with WRONGPASS, and a connection that does not
// authenticate may run nothing (NOAUTH).
func (r *Redis) checkRefusesWrongPassword(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err := r.CanLogin(ctx, r.AdminUser, r.AdminPassword+"-wrong")
	switch {
	case err == nil:
		return fmt.Errorf("dbtest: refusing to run against a Redis server that accepts a wrong password%s", logTail(r.logPath, 0))
	case !goredis.HasErrorPrefix(err, "WRONGPASS"):
		return fmt.Errorf("dbtest: logging in to Redis with a wrong password failed with %v, want WRONGPASS%s", err, logTail(r.logPath, 0))
	}
	c := goredis.NewClient(r.options("", ""))
	defer c.Close()
	err = c.Ping(ctx).Err()
	switch {
	case err == nil:
		return fmt.Errorf("dbtest: refusing to run against a Redis server that answers without authentication%s", logTail(r.logPath, 0))
	case !goredis.HasErrorPrefix(err, "NOAUTH"):
		return fmt.Errorf("dbtest: an unauthenticated PING failed with %v, want NOAUTH%s", err, logTail(r.logPath, 0))
	}
	return nil
}

func (r *Redis) version(ctx context.Context) (string, error) {
	c := r.Client(r.AdminUser, r.AdminPassword)
	defer c.Close()
	info, err := c.Info(ctx, "server").Result()
	if err != nil {
		return "", err
	}
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "redis_version:"); ok {
			return v, nil
		}
	}
	return "", errors.New("INFO server has no redis_version")
}

// close stops the server and deletes its directory.
func (r *Redis) close() error { return r.lifecycle().close(r.dir) }

// Stop shuts the server down (SIGTERM; nothing is saved but what ACL SAVE
// wrote), so that logins fail until Start.
func (r *Redis) Stop(t testing.TB) {
	t.Helper()
	r.lifecycle().stop(t)
}

// Start starts a server stopped by Stop again, on the same port and with
// the same ACL file, and checks again that it refuses a wrong password.
func (r *Redis) Start(t testing.TB) {
	t.Helper()
	r.lifecycle().restart(t)
}

func (r *Redis) lifecycle() lifecycle {
	return lifecycle{kind: "Redis", ctor: "StartRedis", mu: &r.mu, proc: &r.proc,
		logPath: r.logPath, stopSignal: syscall.SIGTERM, start: r.start, check: r.checkRefusesWrongPassword}
}

// LogPath is the server's log.
func (r *Redis) LogPath() string { return r.logPath }

// ACLPath is the server's ACL file, which ACL SAVE writes.
func (r *Redis) ACLPath() string { return r.aclPath }

// Addr is host:port.
func (r *Redis) Addr() string { return net.JoinHostPort(r.Host, strconv.Itoa(r.Port)) }

// options are go-redis options for one connection as user (no
// authentication when user and password are ""): no retries, no client
// name or library identity, RESP2, and the server's TLS settings.
func (r *Redis) options(user, password string) *goredis.Options {
	return &goredis.Options{
		Addr:                  r.Addr(),
		Username:              user,
		Password:              password,
		Protocol:              2,
		DialTimeout:           10 * time.Second,
		DialerRetries:         1,
		ReadTimeout:           30 * time.Second,
		WriteTimeout:          30 * time.Second,
		ContextTimeoutEnabled: true,
		MaxRetries:            -1,
		PoolSize:              1,
		PipelinePoolSize:      -1,
		DisableIdentity:       true,
		TLSConfig:             r.TLS,
		MaintNotificationsConfig: &maintnotifications.Config{
			Mode: maintnotifications.ModeDisabled,
		},
	}
}

// Client returns a go-redis client (at most one connection, no retries)
// logged in as user on first use. The caller closes it.
func (r *Redis) Client(user, password string) *goredis.Client {
	return goredis.NewClient(r.options(user, password))
}

// CanLogin opens a connection as user, sends PING and closes it; it returns
// go-redis's error, nil when the login succeeds. A NOPERM answer to PING
// counts as a successful login: the user may lack +ping. A wrong password
// or a disabled user gives an error with the prefix WRONGPASS (see
// [IsRedisAuthFailure]); a stopped server a connection error.
func (r *Redis) CanLogin(ctx context.Context, user, password string) error {
	c := r.Client(user, password)
	defer c.Close()
	// go-redis bounds a read by the context's deadline but does not watch
	// its cancellation: closing the client ends a read in progress.
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	err := c.Ping(ctx).Err()
	if goredis.HasErrorPrefix(err, "NOPERM") {
		return nil
	}
	return err
}

// IsRedisAuthFailure reports whether err, from go-redis, says that the
// server refused a login (WRONGPASS: wrong password, unknown or disabled
// user) or a command before one (NOAUTH). A stopped server is not an
// authentication failure.
func IsRedisAuthFailure(err error) bool {
	return goredis.HasErrorPrefix(err, "WRONGPASS") || goredis.HasErrorPrefix(err, "NOAUTH")
}

// Do runs one command as the admin and returns its reply.
func (r *Redis) Do(ctx context.Context, args ...any) (any, error) {
	c := r.Client(r.AdminUser, r.AdminPassword)
	defer c.Close()
	return c.Do(ctx, args...).Result()
}

// CreateUser creates an ACL user that is on, has password (stored as its
// SHA-256, as ACL SETUSER #… does) and the given ACL rules (none: it may
// run no command, yet log in), and returns its name: prefix, an
// underscore and a number unique within the server. Rules are ACL SETUSER
// arguments such as "~app:*", "+get" or "+@read".
func (r *Redis) CreateUser(t testing.TB, prefix, password string, rules ...string) string {
	t.Helper()
	name, err := r.CreateUserContext(t.Context(), prefix, password, rules...)
	if err != nil {
		t.Fatal(err)
	}
	return name
}

// CreateUserContext is CreateUser for callers that are not tests: it
// returns the error instead of failing a test.
func (r *Redis) CreateUserContext(ctx context.Context, prefix, password string, rules ...string) (string, error) {
	if strings.ContainsAny(prefix, " \x00") {
		return "", fmt.Errorf("dbtest: Redis user names may not contain a space or NUL: %q", prefix)
	}
	name, err := nextName(prefix, &r.seq, 512)
	if err != nil {
		return "", err
	}
	args := []any{"ACL", "SETUSER", name, "reset", "on", "#" + sha256Hex(password)}
	for _, rule := range rules {
		args = append(args, rule)
	}
	if _, err := r.Do(ctx, args...); err != nil {
		return "", fmt.Errorf("dbtest: create redis user %q: %w", name, err)
	}
	return name, nil
}

// writeCertificates makes a CA and a server certificate for 127.0.0.1
// and localhost (ECDSA P-256, valid for a day), writes them to the server's
// directory and sets r.TLS and r.CACertPEM.
func (r *Redis) writeCertificates() error {
	caPEM, certPEM, keyPEM, err := testCertificates()
	if err != nil {
		return err
	}
	for name, data := range map[string][]byte{"ca.crt": caPEM, "server.crt": certPEM, "server.key": keyPEM} {
		if err := writeFileAs(filepath.Join(r.dir, name), data, r.acct); err != nil {
			return err
		}
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return errors.New("dbtest: redis: the test CA does not parse")
	}
	r.CACertPEM = caPEM
	r.TLS = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool, ServerName: "127.0.0.1"}
	return nil
}
