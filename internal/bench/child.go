package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/rotor-secrets/rotor/internal/auth"
	"github.com/rotor-secrets/rotor/internal/dbtest"
)

// Bounds of the child server's life.
const (
	readyTimeout = 5 * time.Minute // a million secrets may take a while to open
	readyPoll    = 2 * time.Millisecond
	stopTimeout  = 30 * time.Second
	startTries   = 3 // the port picked may be taken before the server binds it
)

// serverFlags are the flags every child server gets besides --listen and
// --data-dir. The rate limit is off because it is a policy, not a cost: at
// its default (1,000 req/s per key) it would measure itself. Logging is at
// warn, so the per-request log line (Info) is not written; audit is on, as
// it always is.
var serverFlags = []string{"--log-level", "warn", "--rate-limit", "0"}

// Child is a rotor server running as a child process, on a data directory
// the caller owns.
type Child struct {
	Endpoint string        // http://127.0.0.1:PORT
	Pid      int           //
	Startup  time.Duration // from exec to the first 200 of GET /readyz
	Args     []string      // the server's command line after the executable

	cmd    *exec.Cmd
	done   chan struct{} // closed when the process has exited
	err    error         // Wait's result, after done
	stderr *tailBuffer
	creds  aws.Credentials
}

// StartChild starts `exe server` on dataDir, listening on a free loopback
// port, with a newly generated root access key and the extra flags, and
// waits until it is ready.
// exe is rotor's binary (os.Executable()). The child is in its own process
// group, so a Ctrl-C at the terminal reaches the benchmark, which stops it
// in order; it is killed if the benchmark dies (parent-death signal, which
// Linux sends when the thread that started the child exits: the Go runtime
// keeps its threads for the life of the process unless a goroutine locked
// to one exits, and the benchmark locks none).
func StartChild(ctx context.Context, exe, dataDir string, extra ...string) (*Child, error) {
	id, secret, err := auth.GenerateKeyPair()
	if err != nil {
		return nil, err
	}
	return StartChildWithKey(ctx, exe, dataDir, id, secret, extra...)
}

// StartChildWithKey is StartChild with the given root access key instead of
// a generated one: nodes sharing a store must all be started with the same
// key, since a node started with another one deactivates the previous key
// in the store.
func StartChildWithKey(ctx context.Context, exe, dataDir, id, secret string, extra ...string) (*Child, error) {
	var lastErr error
	for range startTries {
		c, inUse, err := startChild(ctx, exe, dataDir, id, secret, extra)
		if err == nil {
			return c, nil
		}
		if !inUse {
			return nil, err
		}
		lastErr = err
	}
	return nil, lastErr
}

func startChild(ctx context.Context, exe, dataDir, id, secret string, extra []string) (_ *Child, inUse bool, err error) {
	port, err := dbtest.FreePort()
	if err != nil {
		return nil, false, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	args := append(append([]string{"server", "--listen", addr, "--data-dir", dataDir}, serverFlags...), extra...)
	cmd := exec.Command(exe, args...)
	cmd.Env = append(childEnviron(os.Environ()),
		"ROTOR_ROOT_ACCESS_KEY_ID="+id, "ROTOR_ROOT_SECRET_ACCESS_KEY="+secret)
	c := &Child{
		Endpoint: "http://" + addr,
		Args:     args,
		cmd:      cmd,
		done:     make(chan struct{}),
		stderr:   &tailBuffer{max: 16 << 10},
		creds:    aws.Credentials{AccessKeyID: id, SecretAccessKey: secret, Source: "rotor bench"},
	}
	cmd.Stdout = c.stderr
	cmd.Stderr = c.stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, false, fmt.Errorf("start server %s: %w", exe, err)
	}
	c.Pid = cmd.Process.Pid
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	if err := c.waitReady(ctx); err != nil {
		c.Stop()
		tail := c.stderr.String()
		return nil, strings.Contains(tail, "address already in use"), fmt.Errorf("%w%s", err, c.logTail())
	}
	c.Startup = time.Since(t0)
	return c, false, nil
}

// waitReady polls GET /readyz until it answers 200.
func (c *Child) waitReady(ctx context.Context) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(readyTimeout)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.Endpoint+"/readyz", nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && !c.exited() { // else another process has the port
				return nil
			}
		}
		select {
		case <-c.done:
			return fmt.Errorf("rotor server exited during startup (%v)", c.err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(readyPoll):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("rotor server not ready after %v", readyTimeout)
		}
	}
}

func (c *Child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// Credentials are the child's root access key.
func (c *Child) Credentials() aws.CredentialsProvider {
	return credentials.StaticCredentialsProvider{Value: c.creds}
}

// CPU is the CPU time the child has used so far.
func (c *Child) CPU() (time.Duration, error) { return ProcCPU(c.Pid) }

// RSS is the child's resident set size and its peak, in bytes.
func (c *Child) RSS() (rss, peak int64, err error) { return ProcRSS(c.Pid) }

// Stop shuts the server down (SIGTERM, the graceful shutdown), kills it if
// it has not exited within stopTimeout, and waits for it. It returns an
// error when the server did not exit cleanly.
func (c *Child) Stop() error {
	if c.exited() {
		return c.exitErr()
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
		return c.exitErr()
	case <-time.After(stopTimeout):
	}
	syscall.Kill(-c.Pid, syscall.SIGKILL)
	<-c.done
	return fmt.Errorf("rotor server did not stop within %v of SIGTERM; killed%s", stopTimeout, c.logTail())
}

func (c *Child) exitErr() error {
	if c.err != nil {
		return fmt.Errorf("rotor server: %v%s", c.err, c.logTail())
	}
	return nil
}

// logTail is the end of the child's output, to end an error message.
func (c *Child) logTail() string {
	s := strings.TrimSpace(c.stderr.String())
	if s == "" {
		return ""
	}
	return "\n--- server output ---\n" + s + "\n---"
}

// childEnviron is the benchmark's environment without ROTOR_* variables,
// which the server would read as flags (ROTOR_TLS_CERT, ROTOR_RATE_LIMIT…).
func childEnviron(environ []string) []string {
	out := make([]string, 0, len(environ))
	for _, kv := range environ {
		if !strings.HasPrefix(kv, "ROTOR_") {
			out = append(out, kv)
		}
	}
	return out
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

var errNoExecutable = errors.New("bench: starting a server needs rotor's executable (or an endpoint)")
