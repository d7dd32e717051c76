package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"
)

// The root access key the tests give the server through the environment,
// unless a test runs it without one.
const (
	testAccessKeyID     = "AKIAE2ETESTROOTKEY01"
	testSecretAccessKey = "e2eTestSecretAccessKey/NotARealOne+0123456789"
)

const (
	region    = "us-east-1"
	accountID = "000000000000"

	buildTimeout = 5 * time.Minute
	startTimeout = 30 * time.Second // from exec to /readyz answering 200
	stopTimeout  = 30 * time.Second // from SIGTERM to exit, then SIGKILL
	readyPoll    = 20 * time.Millisecond
	httpTimeout  = 30 * time.Second // any single request of a test
)

// rotorBin is the binary TestMain built.
var rotorBin string

func TestMain(m *testing.M) {
	code, err := runTests(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func runTests(m *testing.M) (int, error) {
	if bin := os.Getenv("ROTOR_E2E_BIN"); bin != "" {
		// A binary built elsewhere (a release build, say).
		abs, err := filepath.Abs(bin)
		if err != nil {
			return 0, err
		}
		rotorBin = abs
	} else {
		dir, err := os.MkdirTemp("", "rotor-e2e-bin-")
		if err != nil {
			return 0, err
		}
		defer os.RemoveAll(dir)
		rotorBin = filepath.Join(dir, "rotor")
		if err := buildRotor(rotorBin); err != nil {
			return 0, err
		}
	}
	code := m.Run()
	if code != 0 && shared.srv != nil {
		// Failures name request ids; the shared server's log has the
		// server's side of them.
		if f, err := os.CreateTemp("", "rotor-e2e-shared-*.log"); err == nil {
			_, _ = f.WriteString(shared.srv.logs.String())
			f.Close()
			fmt.Fprintln(os.Stderr, "e2e: the shared server's log is in", f.Name())
		}
	}
	if err := stopShared(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: shared server:", err)
		if code == 0 {
			code = 1
		}
	}
	return code, nil
}

// buildRotor builds ./cmd/rotor of the module this package belongs to.
func buildRotor(out string) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	args := []string{"build", "-o", out}
	if os.Getenv("ROTOR_E2E_RACE") != "" {
		args = append(args, "-race")
	}
	cmd := exec.CommandContext(ctx, "go", append(args, "./cmd/rotor")...)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/rotor in %s: %v\n%s", root, err, b)
	}
	return nil
}

// moduleRoot is the directory of go.mod: what `go env GOMOD` says, or the
// parent of this package's directory.
func moduleRoot() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if gomod := strings.TrimSpace(string(b)); err == nil && gomod != "" && gomod != os.DevNull {
		return filepath.Dir(gomod), nil
	}
	root, err := filepath.Abs("..")
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return "", fmt.Errorf("cannot find the module root (no go.mod in %s)", root)
	}
	return root, nil
}

// serverOptions configure startServer; see the option functions.
type serverOptions struct {
	noRootKey bool
	viaEnv    bool
	dataDir   string
	args      []string
	env       []string
}

type option func(*serverOptions)

// withoutRootKey runs the server without ROTOR_ROOT_ACCESS_KEY_ID and
// ROTOR_ROOT_SECRET_ACCESS_KEY, so it generates a key and writes the
// credentials file.
func withoutRootKey() option { return func(o *serverOptions) { o.noRootKey = true } }

// withDataDir uses dir instead of a new temporary directory.
func withDataDir(dir string) option { return func(o *serverOptions) { o.dataDir = dir } }

// withArgs appends command-line arguments after the listen and data-dir
// flags.
func withArgs(args ...string) option {
	return func(o *serverOptions) { o.args = append(o.args, args...) }
}

// withEnv adds KEY=VALUE pairs to the server's environment.
func withEnv(kv ...string) option { return func(o *serverOptions) { o.env = append(o.env, kv...) } }

// viaEnv passes the listen address and data dir as ROTOR_LISTEN and
// ROTOR_DATA_DIR instead of flags.
func viaEnv() option { return func(o *serverOptions) { o.viaEnv = true } }

// server is a rotor server process. Its data dir survives restarts; its
// address changes with each start (port 0).
type server struct {
	opts    serverOptions
	dataDir string
	logs    *logBuffer // stderr of every run, in order

	mu       sync.Mutex
	cur      *process // nil when stopped
	lastCode int      // exit status of the last process that exited
}

// process is one run of the server binary.
type process struct {
	cmd    *exec.Cmd
	addr   string        // host:port it listens on
	exited chan struct{} // closed once it has exited; code is set before
	code   int
}

// startServer starts a server for t and stops it when t ends, failing t if
// it does not exit cleanly.
func startServer(t testing.TB, opts ...option) *server {
	t.Helper()
	var o serverOptions
	for _, f := range opts {
		f(&o)
	}
	if o.dataDir == "" {
		o.dataDir = t.TempDir()
	}
	s := &server{opts: o, dataDir: o.dataDir, logs: newLogBuffer()}
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		code, err := s.stop()
		if err != nil {
			t.Error(err)
		} else if code != 0 {
			t.Errorf("rotor server exited with status %d; log:\n%s", code, s.logs)
		}
	})
	return s
}

// shared is one server for the tests whose state does not interfere (each
// uses its own secret names). It starts on first use and stops after all
// tests.
var shared struct {
	once sync.Once
	srv  *server
	err  error
	dir  string
}

func sharedServer(t testing.TB) *server {
	t.Helper()
	shared.once.Do(func() {
		shared.dir, shared.err = os.MkdirTemp("", "rotor-e2e-shared-")
		if shared.err != nil {
			return
		}
		s := &server{dataDir: shared.dir, opts: serverOptions{dataDir: shared.dir}, logs: newLogBuffer()}
		if shared.err = s.start(); shared.err == nil {
			shared.srv = s
		}
	})
	if shared.err != nil {
		t.Fatalf("shared server: %v", shared.err)
	}
	return shared.srv
}

func stopShared() error {
	if shared.dir != "" {
		defer os.RemoveAll(shared.dir)
	}
	if shared.srv == nil {
		return nil
	}
	code, err := shared.srv.stop()
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("exited with status %d; log:\n%s", code, shared.srv.logs)
	}
	return nil
}

// command is the server's command line and environment, without starting
// it.
func (s *server) command() *exec.Cmd {
	args := []string{"server"}
	env := cleanEnv("ROTOR_", "AWS_")
	if s.opts.viaEnv {
		env = append(env, "ROTOR_LISTEN=127.0.0.1:0", "ROTOR_DATA_DIR="+s.dataDir)
	} else {
		args = append(args, "--listen", "127.0.0.1:0", "--data-dir", s.dataDir)
	}
	args = append(args, s.opts.args...)
	if !s.opts.noRootKey {
		env = append(env, "ROTOR_ROOT_ACCESS_KEY_ID="+testAccessKeyID, "ROTOR_ROOT_SECRET_ACCESS_KEY="+testSecretAccessKey)
	}
	env = append(env, s.opts.env...)
	cmd := exec.Command(rotorBin, args...)
	cmd.Env = env
	return cmd
}

// cleanEnv is the test process's environment without variables that start
// with any of prefixes.
func cleanEnv(prefixes ...string) []string {
	var env []string
next:
	for _, kv := range os.Environ() {
		for _, p := range prefixes {
			if strings.HasPrefix(kv, p) {
				continue next
			}
		}
		env = append(env, kv)
	}
	return env
}

// start runs the server process and returns once /readyz answers 200.
func (s *server) start() error {
	s.mu.Lock()
	running := s.cur != nil
	s.mu.Unlock()
	if running {
		return errors.New("server already running")
	}
	p, err := s.launch()
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.cur = p
	s.mu.Unlock()
	return nil
}

func (s *server) launch() (*process, error) {
	cmd := s.command()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout = s.logs
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start rotor server: %w", err)
	}
	p := &process{cmd: cmd, exited: make(chan struct{})}
	addrc := make(chan string, 1)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		r := bufio.NewReaderSize(stderr, 64<<10)
		for {
			line, err := r.ReadString('\n')
			if line != "" {
				s.logs.Write([]byte(line))
				if a, ok := listeningAddr(line); ok {
					select {
					case addrc <- a:
					default:
					}
				}
			}
			if err != nil {
				return
			}
		}
	}()
	go func() {
		<-readDone // Wait closes the pipe: read it to the end first
		_ = cmd.Wait()
		p.code = cmd.ProcessState.ExitCode()
		s.mu.Lock()
		s.lastCode = p.code
		s.mu.Unlock()
		close(p.exited)
	}()

	kill := func(format string, args ...any) error {
		_ = cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf(format+"; log:\n%s", append(args, s.logs)...)
	}
	deadline := time.NewTimer(startTimeout)
	defer deadline.Stop()
	select {
	case p.addr = <-addrc:
	case <-p.exited:
		return nil, fmt.Errorf("rotor server exited with status %d before listening; log:\n%s", p.code, s.logs)
	case <-deadline.C:
		return nil, kill("rotor server did not log %q within %v", "rotor server listening", startTimeout)
	}
	hc := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(readyPoll)
	defer tick.Stop()
	for {
		resp, err := hc.Get("http://" + p.addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		select {
		case <-tick.C:
		case <-p.exited:
			return nil, fmt.Errorf("rotor server exited with status %d before it was ready; log:\n%s", p.code, s.logs)
		case <-deadline.C:
			return nil, kill("rotor server at %s not ready within %v (last: %v)", p.addr, startTimeout, err)
		}
	}
}

// listeningAddr extracts addr from the "rotor server listening" log line,
// in JSON or text format.
func listeningAddr(line string) (string, bool) {
	var e struct {
		Msg  string `json:"msg"`
		Addr string `json:"addr"`
	}
	if json.Unmarshal([]byte(line), &e) == nil {
		return e.Addr, e.Msg == "rotor server listening" && e.Addr != ""
	}
	if !strings.Contains(line, `msg="rotor server listening"`) {
		return "", false
	}
	m := textAddr.FindStringSubmatch(line)
	if m == nil {
		return "", false
	}
	return m[1], true
}

var textAddr = regexp.MustCompile(` addr=(\S+)`)

// stop sends SIGTERM, waits for the process to exit (killing it after
// stopTimeout) and returns its exit status. Stopping a stopped server
// returns the last status.
func (s *server) stop() (int, error) {
	s.mu.Lock()
	p := s.cur
	s.cur = nil
	code := s.lastCode
	s.mu.Unlock()
	if p == nil {
		return code, nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return p.code, nil
	case <-time.After(stopTimeout):
		_ = p.cmd.Process.Kill()
		<-p.exited
		return p.code, fmt.Errorf("rotor server did not exit within %v of SIGTERM and was killed; log:\n%s", stopTimeout, s.logs)
	}
}

// restart stops the server, which must exit 0, and starts it again on the
// same data dir.
func (s *server) restart(t testing.TB) {
	t.Helper()
	code, err := s.stop()
	if err != nil {
		t.Fatal(err)
	}
	if code != 0 {
		t.Fatalf("rotor server exited with status %d; log:\n%s", code, s.logs)
	}
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
}

// endpoint is the base URL of the current run.
func (s *server) endpoint() string { return "http://" + s.addr() }

// addr is the host:port of the current run.
func (s *server) addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil {
		return "127.0.0.1:1" // stopped: nothing listens there
	}
	return s.cur.addr
}

// pid is the process id of the current run.
func (s *server) pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur.cmd.Process.Pid
}

// exited is closed when the current run exits.
func (s *server) exited() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur.exited
}

// logBuffer collects a process's output; safe for concurrent use. Waiters
// are woken on every write.
type logBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{}
}

func newLogBuffer() *logBuffer { return &logBuffer{changed: make(chan struct{})} }

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	close(l.changed)
	l.changed = make(chan struct{})
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// entries parses the JSON log lines; other lines are skipped.
func (l *logBuffer) entries() []map[string]any {
	var out []map[string]any
	for line := range strings.SplitSeq(l.String(), "\n") {
		var e map[string]any
		if json.Unmarshal([]byte(line), &e) == nil {
			out = append(out, e)
		}
	}
	return out
}

// waitFor waits until the log contains s.
func (l *logBuffer) waitFor(ctx context.Context, s string) error {
	for {
		l.mu.Lock()
		found := bytes.Contains(l.b.Bytes(), []byte(s))
		changed := l.changed
		l.mu.Unlock()
		if found {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("log never contained %q: %w", s, ctx.Err())
		}
	}
}

// client returns an aws-sdk-go-v2 Secrets Manager client for srv with the
// test's root key. It never retries, so every server answer is seen.
func client(t testing.TB, srv *server) *secretsmanager.Client {
	t.Helper()
	return clientWithKey(srv, testAccessKeyID, testSecretAccessKey)
}

func clientWithKey(srv *server, id, secret string, optFns ...func(*secretsmanager.Options)) *secretsmanager.Client {
	cfg := aws.Config{
		Region:      region,
		Credentials: credentials.NewStaticCredentialsProvider(id, secret, ""),
		Retryer:     func() aws.Retryer { return aws.NopRetryer{} },
		HTTPClient:  &http.Client{Timeout: httpTimeout},
	}
	return secretsmanager.NewFromConfig(cfg, append([]func(*secretsmanager.Options){
		func(o *secretsmanager.Options) { o.BaseEndpoint = aws.String(srv.endpoint()) },
	}, optFns...)...)
}

// apiCode is the AWS error code of err ("" for nil).
func apiCode(err error) string {
	if err == nil {
		return ""
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return "(not an API error: " + err.Error() + ")"
}

// wantCode fails t unless err is an AWS error with code.
func wantCode(t testing.TB, err error, code string) {
	t.Helper()
	if got := apiCode(err); got != code {
		t.Errorf("error code = %q, want %q (error: %v)", got, code, err)
	}
}

// must fails t now if err is not nil.
func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

var nameSeq atomic.Int64

// uniqueName is a secret name no other test uses: e2e/<test name>/<n>.
// Names never end in "-" plus six characters, which AWS reads as an ARN
// suffix.
func uniqueName(t testing.TB) string {
	return fmt.Sprintf("%s/%d", namePrefix(t), nameSeq.Add(1))
}

// namePrefix is the part of uniqueName shared by all of t's names.
func namePrefix(t testing.TB) string {
	clean := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '/', r == '_', r == '.':
			return r
		}
		return '_'
	}, t.Name())
	return "e2e/" + clean
}
