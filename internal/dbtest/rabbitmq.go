package dbtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// RabbitMQ is a throwaway RabbitMQ node started for tests, with the
// management plugin. The exported fields are read-only.
//
// The node runs from the machine's RabbitMQ (the Debian package
// rabbitmq-server; scripts/test-deps.sh installs it) under a node name of its
// own, rotor-test-<random>@localhost, with its database, logs, configuration
// and Erlang cookie in a fresh temporary directory, so it shares nothing with
// a RabbitMQ service on the machine but the epmd daemon on 4369 (which the
// first Erlang node of the machine starts and which outlives it). It listens
// on 127.0.0.1 only, on free ports: AMQP 0-9-1 (AMQPPort), the management
// API over HTTP (MgmtPort) and over HTTPS (MgmtTLSPort, with a certificate
// for 127.0.0.1 and localhost signed by a throwaway CA: RootCAs), and Erlang
// distribution (a fourth port, for no one).
//
// Its only user is AdminUser, an administrator with a random password and
// full permissions on the vhost "/", loaded from a definitions file at boot:
// the default guest user is never created. After every start the helper
// checks that the management API refuses the admin with a wrong password and
// refuses guest/guest, as the other servers of this package refuse a wrong
// password.
//
// The node is stopped with SIGTERM (Stop, which RabbitMQ handles as a clean
// shutdown) or SIGKILL (Close and test clean-up, where the data is discarded
// anyway: a clean shutdown takes seconds).
type RabbitMQ struct {
	Host          string // always 127.0.0.1
	AMQPPort      int    // AMQP 0-9-1, plain TCP
	MgmtPort      int    // management API, HTTP
	MgmtTLSPort   int    // management API, HTTPS; its CA is in RootCAs
	AdminUser     string // "rotor-admin", tag administrator
	AdminPassword string // random
	NodeName      string // rotor-test-<random>@localhost
	Version       string // rabbitmq_version of /api/overview, e.g. "3.10.8"
	// RootCAs holds the CA that signed the HTTPS listener's certificate
	// (valid for 127.0.0.1 and localhost); CACertPEM is the same in PEM.
	RootCAs   *x509.CertPool
	CACertPEM []byte

	distPort int
	dir      string
	script   string // rabbitmq-server
	acct     *account
	logPath  string
	shared   bool
	seq      atomic.Uint64
	client   *http.Client // plain HTTP, as admin
	tlsCl    *http.Client

	mu   sync.Mutex
	proc *process
}

// StartRabbitMQ starts a RabbitMQ node for the calling test alone. It is
// stopped and its directory deleted when the test ends. A start takes
// several seconds (about 7 on a small machine): tests that can share a node
// use [SharedRabbitMQ].
func StartRabbitMQ(t testing.TB) *RabbitMQ {
	t.Helper()
	r, timing, err := openRabbitMQ(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	ownByTest(t, "rabbitmq", r.logPath, r.close, fmt.Sprintf("rabbitmq %s on %s: amqp %d, management %d (https %d) (%s)", r.Version, r.Host, r.AMQPPort, r.MgmtPort, r.MgmtTLSPort, timing))
	return r
}

// StartRabbitMQServer starts a RabbitMQ node for a caller that is not a test
// (rotor bench): it returns the error instead of failing a test, and the
// caller must Close the node. ctx bounds the start.
func StartRabbitMQServer(ctx context.Context) (*RabbitMQ, error) {
	r, _, err := openRabbitMQ(ctx, false)
	return r, err
}

// Close stops a node started by StartRabbitMQServer and deletes its
// directory. Nodes from StartRabbitMQ and SharedRabbitMQ are closed by their
// tests.
func (r *RabbitMQ) Close() error { return r.close() }

var (
	rabbitMainRunning atomic.Bool
	sharedRabbitMQ    struct {
		sync.Mutex
		srv *RabbitMQ
		err error
	}
)

// RabbitMQMain is [Main] for a test package that uses [SharedRabbitMQ]: it
// also stops the shared RabbitMQ node when the tests end. Call it from the
// package's TestMain:
//
//	func TestMain(m *testing.M) { dbtest.RabbitMQMain(m) }
//
// (Main itself does not know RabbitMQ, whose files are separate.)
func RabbitMQMain(m *testing.M) {
	rabbitMainRunning.Store(true)
	defer stopSharedRabbitMQ()
	Main(m)
}

func stopSharedRabbitMQ() {
	sharedRabbitMQ.Lock()
	defer sharedRabbitMQ.Unlock()
	if sharedRabbitMQ.srv != nil {
		sharedRabbitMQ.srv.close()
		sharedRabbitMQ.srv = nil
	}
}

// SharedRabbitMQ returns the test binary's shared RabbitMQ node, starting it
// on first use; it needs [RabbitMQMain] as the package's TestMain. Tests must
// not stop it; they isolate themselves with users and vhosts of their own
// ([RabbitMQ.CreateUser], [RabbitMQ.CreateVhost]). If the node failed to
// start, every caller fails with the same error.
func SharedRabbitMQ(t testing.TB) *RabbitMQ {
	t.Helper()
	if !rabbitMainRunning.Load() {
		t.Fatal("dbtest: SharedRabbitMQ needs func TestMain(m *testing.M) { dbtest.RabbitMQMain(m) } in the test package, " +
			"which stops the shared node when the tests end")
	}
	sharedRabbitMQ.Lock()
	defer sharedRabbitMQ.Unlock()
	if sharedRabbitMQ.srv == nil && sharedRabbitMQ.err == nil {
		r, timing, err := openRabbitMQ(context.Background(), true)
		if err != nil {
			sharedRabbitMQ.err = err
		} else {
			sharedRabbitMQ.srv = r
			t.Logf("dbtest: shared rabbitmq %s on %s: amqp %d, management %d (https %d) (%s)",
				r.Version, r.Host, r.AMQPPort, r.MgmtPort, r.MgmtTLSPort, timing)
		}
	}
	if sharedRabbitMQ.err != nil {
		t.Fatal(sharedRabbitMQ.err)
	}
	return sharedRabbitMQ.srv
}

// rabbitmqHomes are where RabbitMQ's own start script is looked for. The
// Debian package's /usr/sbin/rabbitmq-server is a wrapper that switches to
// the rabbitmq user and the service's directories, so it is not used.
var rabbitmqHomes = []string{
	"/usr/lib/rabbitmq/bin/rabbitmq-server",
	"/usr/lib/rabbitmq/lib/rabbitmq_server-*/sbin/rabbitmq-server",
	"/usr/local/lib/rabbitmq/sbin/rabbitmq-server",
	"/opt/rabbitmq/sbin/rabbitmq-server",
}

const rabbitmqInstallHint = "install the rabbitmq-server package (scripts/test-deps.sh does so when run as root)"

// findRabbitMQ returns the path of RabbitMQ's rabbitmq-server script among
// candidates (glob patterns), checking that Erlang and the management plugin
// are there too.
func findRabbitMQ(candidates []string) (string, error) {
	script := ""
	for _, pattern := range candidates {
		matches, _ := filepath.Glob(pattern)
		sort.Sort(sort.Reverse(sort.StringSlice(matches))) // newest version first
		for _, m := range matches {
			if fileExists(m) {
				script = m
				break
			}
		}
		if script != "" {
			break
		}
	}
	if script == "" {
		return "", fmt.Errorf("dbtest: RabbitMQ's rabbitmq-server script not found (looked for %s); %s",
			strings.Join(candidates, ", "), rabbitmqInstallHint)
	}
	if _, err := exec.LookPath("erl"); err != nil && !fileExists("/usr/bin/erl") {
		return "", errors.New("dbtest: Erlang (erl) not found in PATH or /usr/bin; " + rabbitmqInstallHint)
	}
	real, err := filepath.EvalSymlinks(script)
	if err != nil {
		return "", fmt.Errorf("dbtest: rabbitmq: %v", err)
	}
	plugins, _ := filepath.Glob(filepath.Join(filepath.Dir(filepath.Dir(real)), "plugins", "rabbitmq_management-*"))
	if len(plugins) == 0 {
		return "", fmt.Errorf("dbtest: RabbitMQ's management plugin not found next to %s; %s", real, rabbitmqInstallHint)
	}
	return script, nil
}

// rabbitmqConf is the node's rabbitmq.conf. Everything is logged to the
// console, which is the node's log file here.
const rabbitmqConf = `# Written by rotor's dbtest.
listeners.tcp.1 = 127.0.0.1:%[1]d
management.tcp.ip = 127.0.0.1
management.tcp.port = %[2]d
management.ssl.ip = 127.0.0.1
management.ssl.port = %[3]d
management.ssl.cacertfile = %[4]s/ca.pem
management.ssl.certfile = %[4]s/cert.pem
management.ssl.keyfile = %[4]s/key.pem
management.rates_mode = none
load_definitions = %[4]s/definitions.json
disk_free_limit.absolute = 1MB
log.console = true
log.console.level = info
log.console.use_colors = off
log.file = false
`

// openRabbitMQ prepares a fresh directory and starts a node in it. On error
// nothing is left behind.
func openRabbitMQ(ctx context.Context, shared bool) (_ *RabbitMQ, timing string, err error) {
	t0 := time.Now()
	r, err := prepareRabbitMQ(shared)
	if err != nil {
		return nil, "", err
	}
	defer func() {
		if err != nil {
			r.close()
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, readyBound)
	defer cancel()
	for attempt := 1; ; attempt++ {
		if err := r.pickPorts(); err != nil {
			return nil, "", fmt.Errorf("dbtest: rabbitmq: %v", err)
		}
		inUse, err := r.start()
		if err == nil {
			break
		}
		if !inUse || attempt == portAttempts {
			return nil, "", err
		}
	}
	if err := r.checkRefusesWrongPassword(ctx); err != nil {
		return nil, "", err
	}
	var overview struct {
		Version string `json:"rabbitmq_version"`
	}
	if err := r.API(ctx, http.MethodGet, "/api/overview", nil, &overview); err != nil {
		return nil, "", fmt.Errorf("dbtest: rabbitmq: %v", err)
	}
	r.Version = overview.Version
	return r, fmt.Sprintf("start %v", time.Since(t0).Round(time.Millisecond)), nil
}

// prepareRabbitMQ finds the binaries and prepares a fresh directory with
// everything but the configuration file, which holds the ports.
func prepareRabbitMQ(shared bool) (*RabbitMQ, error) {
	script, err := findRabbitMQ(rabbitmqHomes)
	if err != nil {
		return nil, err
	}
	acct, err := serverAccount("rabbitmq")
	if err != nil {
		return nil, fmt.Errorf("dbtest: rabbitmq: %v", err)
	}
	dir, err := makeBaseDir("rabbitmq", acct)
	if err != nil {
		return nil, fmt.Errorf("dbtest: rabbitmq: %v", err)
	}
	if strings.ContainsAny(dir, " \t\"'#") {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("dbtest: rabbitmq: temporary directory %q has characters rabbitmq.conf cannot hold; set TMPDIR", dir)
	}
	suffix := make([]byte, 5)
	rand.Read(suffix)
	r := &RabbitMQ{
		Host:          "127.0.0.1",
		AdminUser:     "rotor-admin",
		AdminPassword: randomPassword(),
		NodeName:      "rotor-test-" + hex.EncodeToString(suffix) + "@localhost",
		dir:           dir,
		script:        script,
		acct:          acct,
		logPath:       filepath.Join(dir, "rabbitmq.log"),
		shared:        shared,
	}
	if err := r.writeFiles(); err != nil {
		r.close()
		return nil, fmt.Errorf("dbtest: rabbitmq: %v", err)
	}
	r.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 8}}
	r.tlsCl = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil,
		TLSClientConfig: &tls.Config{RootCAs: r.RootCAs, MinVersion: tls.VersionTLS12}}}
	return r, nil
}

// pickPorts chooses four distinct free ports.
func (r *RabbitMQ) pickPorts() error {
	seen := map[int]bool{}
	ports := make([]int, 4)
	for i := range ports {
		for {
			p, err := pickPort()
			if err != nil {
				return err
			}
			if !seen[p] {
				seen[p] = true
				ports[i] = p
				break
			}
		}
	}
	r.AMQPPort, r.MgmtPort, r.MgmtTLSPort, r.distPort = ports[0], ports[1], ports[2], ports[3]
	return nil
}

// writeFiles writes what does not depend on the ports: the definitions, the
// enabled plugins, the TLS files and an empty rabbitmq-env.conf (so that
// the machine's /etc/rabbitmq/rabbitmq-env.conf is not read).
func (r *RabbitMQ) writeFiles() error {
	salt := make([]byte, 4)
	rand.Read(salt)
	sum := sha256.Sum256(append(append([]byte(nil), salt...), r.AdminPassword...))
	defs := map[string]any{
		"vhosts": []any{map[string]any{"name": "/"}},
		"users": []any{map[string]any{
			"name":              r.AdminUser,
			"password_hash":     base64.StdEncoding.EncodeToString(append(salt, sum[:]...)),
			"hashing_algorithm": "rabbit_password_hashing_sha256",
			"tags":              []string{"administrator"},
		}},
		"permissions": []any{map[string]any{"user": r.AdminUser, "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}},
	}
	b, err := json.Marshal(defs)
	if err != nil {
		return err
	}
	caPEM, certPEM, keyPEM, err := testCertificates()
	if err != nil {
		return err
	}
	r.CACertPEM = caPEM
	r.RootCAs = x509.NewCertPool()
	r.RootCAs.AppendCertsFromPEM(caPEM)
	for name, data := range map[string][]byte{
		"definitions.json":  b,
		"enabled_plugins":   []byte("[rabbitmq_management].\n"),
		"rabbitmq-env.conf": nil,
		"ca.pem":            caPEM,
		"cert.pem":          certPEM,
		"key.pem":           keyPEM,
	} {
		if err := writeFileAs(filepath.Join(r.dir, name), data, r.acct); err != nil {
			return err
		}
	}
	return nil
}

// start starts the node on r's ports and waits until the admin can use the
// management API and log in over AMQP. inUse reports a failure because a
// port was taken. The caller holds r.mu or owns r exclusively.
func (r *RabbitMQ) start() (inUse bool, err error) {
	conf := fmt.Sprintf(rabbitmqConf, r.AMQPPort, r.MgmtPort, r.MgmtTLSPort, r.dir)
	if err := writeFileAs(filepath.Join(r.dir, "rabbitmq.conf"), []byte(conf), r.acct); err != nil {
		return false, fmt.Errorf("dbtest: rabbitmq: %v", err)
	}
	offset := logSize(r.logPath)
	proc, err := r.startNode()
	if err != nil {
		return false, fmt.Errorf("dbtest: rabbitmq: %v", err)
	}
	r.proc = proc
	err = waitReady(proc, func(ctx context.Context) error {
		if err := r.API(ctx, http.MethodGet, "/api/overview", nil, nil); err != nil {
			return err
		}
		return r.CanLogin(ctx, r.AdminUser, r.AdminPassword, "/")
	})
	if err != nil {
		r.kill()
		log := logSince(r.logPath, offset)
		return portInUse(log) || strings.Contains(log, "eaddrinuse") || strings.Contains(log, "dist_port_already_used"),
			fmt.Errorf("dbtest: rabbitmq node %s (amqp %d, management %d/%d, distribution %d): %v%s",
				r.NodeName, r.AMQPPort, r.MgmtPort, r.MgmtTLSPort, r.distPort, err, logTail(r.logPath, offset))
	}
	return false, nil
}

// startNode runs rabbitmq-server as startProcess does, with the environment
// that gives the node its own name, directories and ports.
// RABBITMQ_ALLOW_INPUT makes the script exec erl instead of running it as a
// child (and -noinput takes back the console input it would allow), so the
// process started here is the Erlang VM itself: the parent-death signal and
// SIGTERM reach it.
func (r *RabbitMQ) startNode() (*process, error) {
	log, err := os.OpenFile(r.logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	defer log.Close()
	args := []string{"-noinput"}
	fmt.Fprintf(log, "dbtest: running %s %s as node %s\n", r.script, strings.Join(args, " "), r.NodeName)
	cmd := command(r.script, args, r.dir, r.acct, log)
	cmd.Env = append(cmd.Env,
		"RABBITMQ_CONF_ENV_FILE="+filepath.Join(r.dir, "rabbitmq-env.conf"),
		"RABBITMQ_NODENAME="+r.NodeName,
		"RABBITMQ_MNESIA_BASE="+filepath.Join(r.dir, "mnesia"),
		"RABBITMQ_LOG_BASE="+filepath.Join(r.dir, "log"),
		"RABBITMQ_CONFIG_FILE="+filepath.Join(r.dir, "rabbitmq.conf"),
		"RABBITMQ_ADVANCED_CONFIG_FILE="+filepath.Join(r.dir, "advanced.config"),
		"RABBITMQ_ENABLED_PLUGINS_FILE="+filepath.Join(r.dir, "enabled_plugins"),
		"RABBITMQ_PID_FILE="+filepath.Join(r.dir, "rabbitmq.pid"),
		"RABBITMQ_DIST_PORT="+strconv.Itoa(r.distPort),
		"RABBITMQ_ALLOW_INPUT=1",
		"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}",
		"ERL_EPMD_ADDRESS=127.0.0.1",
	)
	if err := spawn(cmd); err != nil {
		return nil, fmt.Errorf("start %s: %v", filepath.Base(r.script), err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// kill ends the node and its helper processes (erl_child_setup,
// inet_gethost, the disk monitor's shell) at once.
func (r *RabbitMQ) kill() {
	if r.proc == nil || r.proc.exited() {
		return
	}
	syscall.Kill(-r.proc.cmd.Process.Pid, syscall.SIGKILL)
	<-r.proc.done
}

// checkRefusesWrongPassword proves that the node checks passwords and has
// no guest user.
func (r *RabbitMQ) checkRefusesWrongPassword(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, c := range [][2]string{{r.AdminUser, r.AdminPassword + "-wrong"}, {"guest", "guest"}} {
		status, _, err := r.request(ctx, r.client, r.MgmtURL(), http.MethodGet, "/api/whoami", c[0], c[1], nil)
		switch {
		case err != nil:
			return fmt.Errorf("dbtest: rabbitmq: GET /api/whoami as %s: %v%s", c[0], err, logTail(r.logPath, 0))
		case status != http.StatusUnauthorized:
			return fmt.Errorf("dbtest: refusing to run against a RabbitMQ node whose management API answers %d to %s with a wrong password, want 401%s",
				status, c[0], logTail(r.logPath, 0))
		}
	}
	return nil
}

// close kills the node, if it runs, and deletes its directory.
func (r *RabbitMQ) close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.kill()
	if r.client != nil {
		r.client.CloseIdleConnections()
		r.tlsCl.CloseIdleConnections()
	}
	return os.RemoveAll(r.dir)
}

// Stop shuts the node down cleanly (SIGTERM), so that logins fail until
// Start. It may only be used on a dedicated node.
func (r *RabbitMQ) Stop(t testing.TB) {
	t.Helper()
	// The management listener waits for open connections before it stops:
	// close the helpers' idle ones.
	r.client.CloseIdleConnections()
	r.tlsCl.CloseIdleConnections()
	r.lifecycle().stop(t)
}

// Start starts a node stopped by Stop again, with the same database and
// ports, and checks again that it refuses a wrong password.
func (r *RabbitMQ) Start(t testing.TB) {
	t.Helper()
	r.lifecycle().restart(t)
}

func (r *RabbitMQ) lifecycle() lifecycle {
	return lifecycle{kind: "RabbitMQ", ctor: "StartRabbitMQ", shared: r.shared, mu: &r.mu, proc: &r.proc,
		logPath: r.logPath, stopSignal: syscall.SIGTERM, start: r.start, check: r.checkRefusesWrongPassword}
}

// LogPath is the node's log (its console output).
func (r *RabbitMQ) LogPath() string { return r.logPath }

// MgmtURL is the base URL of the management API over HTTP.
func (r *RabbitMQ) MgmtURL() string {
	return "http://" + net.JoinHostPort(r.Host, strconv.Itoa(r.MgmtPort))
}

// MgmtTLSURL is the base URL of the management API over HTTPS.
func (r *RabbitMQ) MgmtTLSURL() string {
	return "https://" + net.JoinHostPort(r.Host, strconv.Itoa(r.MgmtTLSPort))
}

// APIError is a management API answer other than 2xx.
type APIError struct {
	Method, Path string
	Status       int
	Body         string // the start of the body, such as {"error":"not_authorized","reason":"Login failed"}
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s %s: HTTP %d: %s", e.Method, e.Path, e.Status, e.Body)
}

// API calls the management API over HTTP as the admin: path is escaped by
// the caller (see [PathEscape]), in (if not nil) is sent as JSON and a 2xx
// answer is decoded into out (if not nil). Other answers are *APIError.
func (r *RabbitMQ) API(ctx context.Context, method, path string, in, out any) error {
	return r.APIAs(ctx, r.AdminUser, r.AdminPassword, method, path, in, out)
}

// APIAs is API with other credentials.
func (r *RabbitMQ) APIAs(ctx context.Context, user, password, method, path string, in, out any) error {
	status, body, err := r.request(ctx, r.client, r.MgmtURL(), method, path, user, password, in)
	if err != nil {
		return err
	}
	if status/100 != 2 {
		if len(body) > 300 {
			body = body[:300]
		}
		return &APIError{Method: method, Path: path, Status: status, Body: string(bytes.TrimSpace(body))}
	}
	if out != nil && len(body) > 0 {
		return json.Unmarshal(body, out)
	}
	return nil
}

// TLSAPI is API over HTTPS, verifying the node's certificate.
func (r *RabbitMQ) TLSAPI(ctx context.Context, method, path string, in, out any) error {
	status, body, err := r.request(ctx, r.tlsCl, r.MgmtTLSURL(), method, path, r.AdminUser, r.AdminPassword, in)
	if err != nil {
		return err
	}
	if status/100 != 2 {
		return &APIError{Method: method, Path: path, Status: status, Body: string(bytes.TrimSpace(body))}
	}
	if out != nil && len(body) > 0 {
		return json.Unmarshal(body, out)
	}
	return nil
}

func (r *RabbitMQ) request(ctx context.Context, client *http.Client, base, method, path, user, password string, in any) (int, []byte, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, body)
	if err != nil {
		return 0, nil, err
	}
	req.SetBasicAuth(user, password)
	if method == http.MethodGet {
		// Not on other methods: some resources (user-limits) answer 406.
		req.Header.Set("Accept", "application/json")
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return resp.StatusCode, b, err
}

// PathEscape escapes a user, vhost or exchange name as one path segment of
// the management API: "/" becomes %2F. (The names "." and ".." cannot be
// addressed: the management API resolves them even escaped.)
func PathEscape(name string) string { return url.PathEscape(name) }

// PutUser creates or replaces the user name with password and tags, as
// PUT /api/users/{name} does.
func (r *RabbitMQ) PutUser(ctx context.Context, name, password string, tags ...string) error {
	return r.API(ctx, http.MethodPut, "/api/users/"+PathEscape(name),
		map[string]any{"password": password, "tags": strings.Join(tags, ",")}, nil)
}

// CreateUser creates a user with password, tags and no permissions and
// returns its name: prefix, an underscore and a number unique within the
// node.
func (r *RabbitMQ) CreateUser(t testing.TB, prefix, password string, tags ...string) string {
	t.Helper()
	name, err := r.CreateUserContext(t.Context(), prefix, password, tags...)
	if err != nil {
		t.Fatal(err)
	}
	return name
}

// CreateUserContext is CreateUser for callers that are not tests.
func (r *RabbitMQ) CreateUserContext(ctx context.Context, prefix, password string, tags ...string) (string, error) {
	name, err := nextName(prefix, &r.seq, 255)
	if err != nil {
		return "", err
	}
	if err := r.PutUser(ctx, name, password, tags...); err != nil {
		return "", fmt.Errorf("dbtest: create rabbitmq user %q: %w", name, err)
	}
	return name, nil
}

// CreateVhost creates a vhost and returns its name: prefix, an underscore
// and a number unique within the node. The admin gets full permissions on
// it.
func (r *RabbitMQ) CreateVhost(t testing.TB, prefix string) string {
	t.Helper()
	name := uniqueName(t, prefix, &r.seq, 255)
	ctx := t.Context()
	if err := r.API(ctx, http.MethodPut, "/api/vhosts/"+PathEscape(name), map[string]any{}, nil); err != nil {
		t.Fatalf("dbtest: create rabbitmq vhost %q: %v", name, err)
	}
	if err := r.SetPermissions(ctx, name, r.AdminUser, ".*", ".*", ".*"); err != nil {
		t.Fatal(err)
	}
	return name
}

// SetPermissions sets user's permissions on vhost (regular expressions for
// configure, write and read), as PUT /api/permissions/{vhost}/{user} does.
func (r *RabbitMQ) SetPermissions(ctx context.Context, vhost, user, configure, write, read string) error {
	err := r.API(ctx, http.MethodPut, "/api/permissions/"+PathEscape(vhost)+"/"+PathEscape(user),
		map[string]string{"configure": configure, "write": write, "read": read}, nil)
	if err != nil {
		return fmt.Errorf("dbtest: set permissions of %q on vhost %q: %w", user, vhost, err)
	}
	return nil
}

// SetTopicPermissions sets user's topic permissions for exchange on vhost,
// as PUT /api/topic-permissions/{vhost}/{user} does.
func (r *RabbitMQ) SetTopicPermissions(ctx context.Context, vhost, user, exchange, write, read string) error {
	err := r.API(ctx, http.MethodPut, "/api/topic-permissions/"+PathEscape(vhost)+"/"+PathEscape(user),
		map[string]string{"exchange": exchange, "write": write, "read": read}, nil)
	if err != nil {
		return fmt.Errorf("dbtest: set topic permissions of %q on vhost %q: %w", user, vhost, err)
	}
	return nil
}

// CanLogin opens and closes an AMQP 0-9-1 connection to vhost as user (SASL
// PLAIN) and returns the error, nil when the login and the vhost's opening
// succeed. A refused login is an *AMQPError for which IsLoginRefused is
// true; a user without permissions on vhost gets code 530.
func (r *RabbitMQ) CanLogin(ctx context.Context, user, password, vhost string) error {
	c, err := r.DialAMQP(ctx, user, password, vhost)
	if err != nil {
		return err
	}
	return c.Close()
}

// AMQPError is a connection.close or channel.close from the node.
type AMQPError struct {
	Code    int    // 403 ACCESS_REFUSED, 404 NOT_FOUND, 530 NOT_ALLOWED, …
	Text    string // such as "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN"
	Channel bool   // a channel.close (the connection stays usable)
	Login   bool   // the connection was refused at login
}

func (e *AMQPError) Error() string {
	what := "connection"
	if e.Channel {
		what = "channel"
	}
	return fmt.Sprintf("amqp %s closed by the server: %d %s", what, e.Code, e.Text)
}

// IsLoginRefused reports whether err is a refused AMQP login.
func (e *AMQPError) IsLoginRefused() bool { return e.Login }

// AMQPConn is a minimal AMQP 0-9-1 client connection, enough for tests to
// prove logins and permissions: one channel at a time, synchronous methods,
// no heartbeats. It is not safe for concurrent use.
type AMQPConn struct {
	conn     net.Conn
	frameMax uint32
	channel  uint16 // the open channel, 0 if none
	nextChan uint16
	confirm  bool // the open channel is in confirm mode
	sent     uint64
	closed   bool
	stop     func() bool
}

// DialAMQP logs in to vhost over AMQP 0-9-1 as user, with SASL PLAIN. ctx
// bounds every later call too.
func (r *RabbitMQ) DialAMQP(ctx context.Context, user, password, vhost string) (*AMQPConn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", net.JoinHostPort(r.Host, strconv.Itoa(r.AMQPPort)))
	if err != nil {
		return nil, err
	}
	c := &AMQPConn{conn: nc, frameMax: 131072, nextChan: 1}
	// The context's end interrupts any read or write.
	c.stop = context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	if err := c.login(user, password, vhost); err != nil {
		c.stop()
		nc.Close()
		return nil, err
	}
	return c, nil
}

const (
	amqpFrameMethod    = 1
	amqpFrameHeader    = 2
	amqpFrameBody      = 3
	amqpFrameHeartbeat = 8
	amqpFrameEnd       = 0xCE
)

func (c *AMQPConn) login(user, password, vhost string) error {
	if _, err := c.conn.Write([]byte("AMQP\x00\x00\x09\x01")); err != nil {
		return err
	}
	if _, err := c.expect(0, 10, 10); err != nil { // connection.start
		return err
	}
	var w amqpWriter
	w.table(map[string]any{
		"product":      "rotor dbtest",
		"capabilities": map[string]any{"authentication_failure_close": true},
	})
	w.shortstr("PLAIN")
	w.longstr("\x00" + user + "\x00" + password)
	w.shortstr("en_US")
	if err := c.send(0, 10, 11, w.Bytes()); err != nil { // connection.start-ok
		return err
	}
	args, err := c.expect(0, 10, 30) // connection.tune
	if err != nil {
		var ae *AMQPError
		if errors.As(err, &ae) {
			ae.Login = true
		} else if errors.Is(err, io.EOF) {
			// Servers without authentication_failure_close hang up.
			return &AMQPError{Code: 403, Text: "connection closed at login", Login: true}
		}
		return err
	}
	rd := amqpReader{b: args}
	channelMax := rd.short()
	frameMax := rd.long()
	if channelMax == 0 {
		channelMax = 2047
	}
	if frameMax != 0 && frameMax < c.frameMax {
		c.frameMax = frameMax
	}
	w.Reset()
	w.short(channelMax)
	w.long(c.frameMax)
	w.short(0)                                           // no heartbeats
	if err := c.send(0, 10, 31, w.Bytes()); err != nil { // connection.tune-ok
		return err
	}
	w.Reset()
	w.shortstr(vhost)
	w.shortstr("")
	w.octet(0)
	if err := c.send(0, 10, 40, w.Bytes()); err != nil { // connection.open
		return err
	}
	_, err = c.expect(0, 10, 41) // connection.open-ok
	return err
}

// openChannel opens a channel if none is open.
func (c *AMQPConn) openChannel() error {
	if c.channel != 0 {
		return nil
	}
	ch := c.nextChan
	c.nextChan++
	var w amqpWriter
	w.shortstr("")
	if err := c.send(ch, 20, 10, w.Bytes()); err != nil {
		return err
	}
	if _, err := c.expect(ch, 20, 11); err != nil {
		return err
	}
	c.channel, c.confirm, c.sent = ch, false, 0
	return nil
}

// DeclareQueue declares a queue (queue.declare): passive only checks that
// it exists. A refusal closes the channel and returns an *AMQPError; the
// next call opens a new one.
func (c *AMQPConn) DeclareQueue(name string, durable, passive bool) error {
	if err := c.openChannel(); err != nil {
		return err
	}
	var w amqpWriter
	w.short(0)
	w.shortstr(name)
	var bits byte
	if passive {
		bits |= 1
	}
	if durable {
		bits |= 2
	}
	w.octet(bits)
	w.table(nil)
	if err := c.send(c.channel, 50, 10, w.Bytes()); err != nil {
		return err
	}
	_, err := c.expect(c.channel, 50, 11)
	return err
}

// DeleteQueue deletes a queue (queue.delete).
func (c *AMQPConn) DeleteQueue(name string) error {
	if err := c.openChannel(); err != nil {
		return err
	}
	var w amqpWriter
	w.short(0)
	w.shortstr(name)
	w.octet(0)
	if err := c.send(c.channel, 50, 40, w.Bytes()); err != nil {
		return err
	}
	_, err := c.expect(c.channel, 50, 41)
	return err
}

// Publish publishes body to exchange with routingKey in confirm mode and
// waits for the node's confirmation. A refusal (such as a topic permission
// that does not allow the routing key: 403) closes the channel and returns
// an *AMQPError.
func (c *AMQPConn) Publish(exchange, routingKey string, body []byte) error {
	if err := c.openChannel(); err != nil {
		return err
	}
	if !c.confirm {
		if err := c.send(c.channel, 85, 10, []byte{0}); err != nil { // confirm.select
			return err
		}
		if _, err := c.expect(c.channel, 85, 11); err != nil {
			return err
		}
		c.confirm = true
	}
	var w amqpWriter
	w.short(0)
	w.shortstr(exchange)
	w.shortstr(routingKey)
	w.octet(0)
	if err := c.send(c.channel, 60, 40, w.Bytes()); err != nil { // basic.publish
		return err
	}
	w.Reset()
	w.short(60)
	w.short(0)
	w.longlong(uint64(len(body)))
	w.short(0) // no properties
	if err := c.writeFrame(amqpFrameHeader, c.channel, w.Bytes()); err != nil {
		return err
	}
	for len(body) > 0 {
		n := min(len(body), int(c.frameMax)-8)
		if err := c.writeFrame(amqpFrameBody, c.channel, body[:n]); err != nil {
			return err
		}
		body = body[n:]
	}
	c.sent++
	for {
		class, method, _, err := c.next(c.channel)
		if err != nil {
			return err
		}
		switch {
		case class == 60 && method == 80: // basic.ack
			return nil
		case class == 60 && method == 120: // basic.nack
			return fmt.Errorf("amqp: publish to %q with key %q was nacked", exchange, routingKey)
		case class == 60 && method == 50: // basic.return: unroutable, ack follows
		default:
			return fmt.Errorf("amqp: unexpected method %d.%d after basic.publish", class, method)
		}
	}
}

// Close closes the connection cleanly (connection.close).
func (c *AMQPConn) Close() error {
	defer c.stop()
	if c.closed {
		return nil
	}
	c.closed = true
	defer c.conn.Close()
	var w amqpWriter
	w.short(200)
	w.shortstr("bye")
	w.short(0)
	w.short(0)
	if err := c.send(0, 10, 50, w.Bytes()); err != nil {
		return err
	}
	for {
		class, method, _, err := c.next(0)
		if err != nil {
			return err
		}
		if class == 10 && method == 51 {
			return nil
		}
	}
}

// expect reads until the method class.method arrives on channel ch and
// returns its arguments.
func (c *AMQPConn) expect(ch uint16, class, method uint16) ([]byte, error) {
	gotClass, gotMethod, args, err := c.next(ch)
	if err != nil {
		return nil, err
	}
	if gotClass != class || gotMethod != method {
		return nil, fmt.Errorf("amqp: got method %d.%d, want %d.%d", gotClass, gotMethod, class, method)
	}
	return args, nil
}

// next returns the next method frame on channel ch (or 0), answering and
// returning a close of the connection or of ch as *AMQPError.
func (c *AMQPConn) next(ch uint16) (class, method uint16, args []byte, err error) {
	for {
		typ, fch, payload, err := c.readFrame()
		if err != nil {
			return 0, 0, nil, err
		}
		if typ != amqpFrameMethod || len(payload) < 4 {
			continue // heartbeats, content of basic.return
		}
		class = binary.BigEndian.Uint16(payload)
		method = binary.BigEndian.Uint16(payload[2:])
		args = payload[4:]
		switch {
		case fch == 0 && class == 10 && method == 50: // connection.close
			c.send(0, 10, 51, nil)
			c.closed = true
			c.conn.Close()
			return 0, 0, nil, closeError(args, false)
		case fch != 0 && class == 20 && method == 40: // channel.close
			c.send(fch, 20, 41, nil)
			if fch == c.channel {
				c.channel = 0
			}
			if fch == ch {
				return 0, 0, nil, closeError(args, true)
			}
			continue
		case fch != ch:
			continue
		}
		return class, method, args, nil
	}
}

func closeError(args []byte, channel bool) error {
	rd := amqpReader{b: args}
	code := rd.short()
	text := rd.shortstr()
	return &AMQPError{Code: int(code), Text: text, Channel: channel}
}

func (c *AMQPConn) send(ch, class, method uint16, args []byte) error {
	payload := make([]byte, 4, 4+len(args))
	binary.BigEndian.PutUint16(payload, class)
	binary.BigEndian.PutUint16(payload[2:], method)
	return c.writeFrame(amqpFrameMethod, ch, append(payload, args...))
}

func (c *AMQPConn) writeFrame(typ byte, ch uint16, payload []byte) error {
	frame := make([]byte, 7, 8+len(payload))
	frame[0] = typ
	binary.BigEndian.PutUint16(frame[1:], ch)
	binary.BigEndian.PutUint32(frame[3:], uint32(len(payload)))
	frame = append(append(frame, payload...), amqpFrameEnd)
	_, err := c.conn.Write(frame)
	return err
}

func (c *AMQPConn) readFrame() (typ byte, ch uint16, payload []byte, err error) {
	var hdr [7]byte
	if _, err := io.ReadFull(c.conn, hdr[:]); err != nil {
		return 0, 0, nil, err
	}
	if string(hdr[:4]) == "AMQP" {
		return 0, 0, nil, errors.New("amqp: the server does not speak AMQP 0-9-1")
	}
	size := binary.BigEndian.Uint32(hdr[3:])
	if size > 1<<24 {
		return 0, 0, nil, fmt.Errorf("amqp: frame of %d bytes", size)
	}
	buf := make([]byte, size+1)
	if _, err := io.ReadFull(c.conn, buf); err != nil {
		return 0, 0, nil, err
	}
	if buf[size] != amqpFrameEnd {
		return 0, 0, nil, errors.New("amqp: bad frame end")
	}
	if hdr[0] == amqpFrameHeartbeat {
		return hdr[0], 0, nil, nil
	}
	return hdr[0], binary.BigEndian.Uint16(hdr[1:]), buf[:size], nil
}

type amqpWriter struct{ bytes.Buffer }

func (w *amqpWriter) octet(v byte)      { w.WriteByte(v) }
func (w *amqpWriter) short(v uint16)    { w.Write(binary.BigEndian.AppendUint16(nil, v)) }
func (w *amqpWriter) long(v uint32)     { w.Write(binary.BigEndian.AppendUint32(nil, v)) }
func (w *amqpWriter) longlong(v uint64) { w.Write(binary.BigEndian.AppendUint64(nil, v)) }
func (w *amqpWriter) shortstr(s string) {
	if len(s) > 255 {
		s = s[:255]
	}
	w.octet(byte(len(s)))
	w.WriteString(s)
}
func (w *amqpWriter) longstr(s string) { w.long(uint32(len(s))); w.WriteString(s) }

// table writes a field table of strings, booleans and nested tables.
func (w *amqpWriter) table(m map[string]any) {
	var t amqpWriter
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.shortstr(k)
		switch v := m[k].(type) {
		case string:
			t.octet('S')
			t.longstr(v)
		case bool:
			t.octet('t')
			if v {
				t.octet(1)
			} else {
				t.octet(0)
			}
		case map[string]any:
			t.octet('F')
			t.table(v)
		}
	}
	w.long(uint32(t.Len()))
	w.Write(t.Bytes())
}

type amqpReader struct{ b []byte }

func (r *amqpReader) short() uint16 {
	if len(r.b) < 2 {
		r.b = nil
		return 0
	}
	v := binary.BigEndian.Uint16(r.b)
	r.b = r.b[2:]
	return v
}

func (r *amqpReader) long() uint32 {
	if len(r.b) < 4 {
		r.b = nil
		return 0
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

func (r *amqpReader) shortstr() string {
	if len(r.b) < 1 || len(r.b) < 1+int(r.b[0]) {
		r.b = nil
		return ""
	}
	n := int(r.b[0])
	s := string(r.b[1 : 1+n])
	r.b = r.b[1+n:]
	return s
}
