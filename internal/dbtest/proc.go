package dbtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Bounds of the polls. They are generous because a loaded CI machine is slow;
// they only decide how long a broken server takes to be reported.
const (
	readyBound = 90 * time.Second // from exec to accepting logins
	stopBound  = 30 * time.Second // from the shutdown signal to exit, before SIGKILL
	pollEvery  = 20 * time.Millisecond
	// portAttempts is how many free ports a first start tries before giving
	// up: another process may take a port between the probe and the bind.
	portAttempts = 5
)

// account is the system user a server runs as; nil means the current user.
type account = syscall.Credential

// serverAccount returns the credential to run a server as. Servers refuse to
// run as root (postgres) or need care to (mariadbd), so a root test binary
// runs them as the named system user, or nobody.
func serverAccount(name string) (*account, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, n := range []string{name, "nobody"} {
		u, err := user.Lookup(n)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		// No supplementary groups: the child must not keep root's.
		return &account{Uid: uint32(uid), Gid: uint32(gid)}, nil
	}
	return nil, fmt.Errorf("running as root and neither the %s nor the nobody system user exists to run the server as", name)
}

// makeBaseDir creates the server's private directory, owned by the account
// the server runs as. It is short (unix socket paths are limited to about
// 100 bytes) and under a directory every user can traverse.
func makeBaseDir(kind string, acct *account) (string, error) {
	parent := os.TempDir()
	if len(parent) > 40 || (acct != nil && !traversable(parent)) {
		parent = "/tmp"
	}
	dir, err := os.MkdirTemp(parent, "rotor-dbtest-"+kind+"-")
	if err != nil {
		return "", err
	}
	if err := chownAs(dir, acct); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

// traversable reports whether every directory from / to dir can be searched
// by other users.
func traversable(dir string) bool {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return false
	}
	for {
		fi, err := os.Stat(dir)
		if err != nil || fi.Mode().Perm()&0o001 == 0 {
			return false
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return true
		}
		dir = parent
	}
}

func chownAs(path string, acct *account) error {
	if acct == nil {
		return nil
	}
	return os.Chown(path, int(acct.Uid), int(acct.Gid))
}

// writeFileAs writes a file readable only by the account the server runs as.
func writeFileAs(path string, data []byte, acct *account) error {
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return err
	}
	return chownAs(path, acct)
}

// randomPassword returns a password that needs no quoting anywhere.
func randomPassword() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// pickPort chooses the port of a first start; tests replace it to force a
// collision.
var pickPort = FreePort

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// childEnv is the whole environment of the server processes: nothing from the
// test's environment (PGDATA, MYSQL_TCP_PORT, a root HOME) leaks into them.
func childEnv(home string) []string {
	return []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=" + home,
		"LANG=C",
		"LC_ALL=C",
		"TZ=UTC",
	}
}

// command prepares a child process that runs as acct, in its own process
// group, and is killed if the test binary dies.
func command(path string, args []string, dir string, acct *account, log *os.File) *exec.Cmd {
	cmd := exec.Command(path, args...)
	cmd.Dir = dir
	cmd.Env = childEnv(dir)
	cmd.Stdin = nil
	cmd.Stdout = log
	cmd.Stderr = log
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: acct,
		Setpgid:    true,
		Pdeathsig:  syscall.SIGKILL,
	}
	return cmd
}

// The parent-death signal is delivered when the OS thread that started the
// child exits, not the process (go.dev/issue/27505), and the Go runtime
// retires a thread when a goroutine locked to it exits. So every child is
// started from one goroutine locked to its thread for the life of the
// process: the signal then fires exactly when the test binary dies.
var (
	spawnOnce  sync.Once
	spawnCalls chan spawnCall
)

type spawnCall struct {
	cmd  *exec.Cmd
	done chan error
}

func spawn(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		spawnCalls = make(chan spawnCall)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread must outlive every child
			for c := range spawnCalls {
				c.done <- c.cmd.Start()
			}
		}()
	})
	c := spawnCall{cmd: cmd, done: make(chan error, 1)}
	spawnCalls <- c
	return <-c.done
}

// runTool runs a short-lived program (initdb, mariadb-install-db) to
// completion, its output appended to the log.
func runTool(path string, args []string, dir string, acct *account, logPath string) error {
	log, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer log.Close()
	fmt.Fprintf(log, "dbtest: running %s %s\n", path, strings.Join(args, " "))
	cmd := command(path, args, dir, acct, log)
	if err := spawn(cmd); err != nil {
		return fmt.Errorf("start %s: %v", filepath.Base(path), err)
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("%s failed: %v%s", filepath.Base(path), err, logTail(logPath, 0))
	}
	return nil
}

// process is a running server.
type process struct {
	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has exited
	waitErr error         // valid after done is closed
}

// startProcess starts a server with its output appended to logPath.
func startProcess(path string, args []string, dir string, acct *account, logPath string) (*process, error) {
	log, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	defer log.Close() // the child has its own copy
	fmt.Fprintf(log, "dbtest: running %s %s\n", path, strings.Join(args, " "))
	cmd := command(path, args, dir, acct, log)
	if err := spawn(cmd); err != nil {
		return nil, fmt.Errorf("start %s: %v", filepath.Base(path), err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends sig, waits up to stopBound for the process to exit, then kills
// its whole process group (a postmaster's backends too).
func (p *process) stop(sig syscall.Signal) error {
	if p.exited() {
		return nil
	}
	pid := p.cmd.Process.Pid
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return nil
	case <-time.After(stopBound):
	}
	syscall.Kill(-pid, syscall.SIGKILL)
	<-p.done
	return fmt.Errorf("did not exit within %v of %v; killed", stopBound, sig)
}

// waitReady polls probe until it succeeds, the process exits or readyBound
// passes. A probe's context ends when the process exits.
func waitReady(p *process, probe func(context.Context) error) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-p.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	deadline := time.Now().Add(readyBound)
	for {
		attempt, cancelAttempt := context.WithTimeout(ctx, 5*time.Second)
		err := probe(attempt)
		cancelAttempt()
		if err == nil && !p.exited() { // else the login reached another server on the port
			return nil
		}
		if p.exited() {
			return fmt.Errorf("server exited during startup (%v)", p.waitErr)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("server not accepting logins after %v: %v", readyBound, err)
		}
		select {
		case <-p.done:
		case <-time.After(pollEvery):
		}
	}
}

// logSize is the current length of a log, to read what a start adds to it.
func logSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// logSince returns what was appended to the log after offset.
func logSince(path string, offset int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return ""
	}
	b, _ := io.ReadAll(io.LimitReader(f, 1<<20))
	return string(b)
}

// logTail formats the last lines of the log written after offset, to end a
// failure message.
func logTail(path string, offset int64) string {
	const maxLines, maxBytes = 40, 8 << 10
	s := logSince(path, offset)
	if len(s) > maxBytes {
		s = s[len(s)-maxBytes:]
	}
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > maxLines {
		lines = lines[len(lines)-maxLines:]
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "\n--- tail of %s ---\n", path)
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	b.WriteString("---")
	return b.String()
}

// portInUse reports whether a start failed because its port was taken.
func portInUse(log string) bool {
	return strings.Contains(log, "Address already in use")
}

func fileExists(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir()
}

// ownByTest gives a dedicated server to test t: when t ends the server is
// stopped and its directory deleted (its log shown first if t failed).
// kind names it in messages; started says what was started, for the log.
func ownByTest(t testing.TB, kind, logPath string, close func() error, started string) {
	t.Helper()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("dbtest: %s log:%s", kind, logTail(logPath, 0))
		}
		if err := close(); err != nil {
			t.Errorf("dbtest: stop %s: %v", kind, err)
		}
	})
	t.Logf("dbtest: %s", started)
}

// lifecycle is what Stop and Start do for every kind of dedicated server.
type lifecycle struct {
	kind       string // for messages: "PostgreSQL"
	ctor       string // the constructor of a dedicated server: "StartPostgres"
	shared     bool
	mu         *sync.Mutex
	proc       **process
	logPath    string
	stopSignal syscall.Signal
	start      func() (inUse bool, err error)
	check      func(context.Context) error // refuses a wrong password
}

func (l lifecycle) stop(t testing.TB) {
	t.Helper()
	if l.shared {
		t.Fatalf("dbtest: Stop on a shared %s server; use %s for a server the test may stop", l.kind, l.ctor)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if *l.proc == nil || (*l.proc).exited() {
		t.Fatalf("dbtest: Stop on a %s server that is not running", l.kind)
	}
	if err := (*l.proc).stop(l.stopSignal); err != nil {
		t.Fatalf("dbtest: stop %s: %v%s", l.kind, err, logTail(l.logPath, 0))
	}
}

func (l lifecycle) restart(t testing.TB) {
	t.Helper()
	if l.shared {
		t.Fatalf("dbtest: Start on a shared %s server; use %s for a server the test may stop", l.kind, l.ctor)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if *l.proc != nil && !(*l.proc).exited() {
		t.Fatalf("dbtest: Start on a %s server that is running", l.kind)
	}
	if _, err := l.start(); err != nil {
		t.Fatal(err)
	}
	if err := l.check(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// startOnFreePort starts a new server on a free port, on another one when
// the port was taken meanwhile, and checks that it refuses a wrong password.
func startOnFreePort(ctx context.Context, kind string, port *int, start func() (inUse bool, err error), check func(context.Context) error) error {
	for attempt := 1; ; attempt++ {
		p, err := pickPort()
		if err != nil {
			return fmt.Errorf("dbtest: %s: %v", kind, err)
		}
		*port = p
		inUse, err := start()
		if err == nil {
			break
		}
		if !inUse || attempt == portAttempts {
			return err
		}
	}
	return check(ctx)
}

// close stops the server, if it runs, and deletes its directory.
func (l lifecycle) close(dir string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var err error
	if *l.proc != nil {
		err = (*l.proc).stop(l.stopSignal)
	}
	if rmErr := os.RemoveAll(dir); err == nil {
		err = rmErr
	}
	return err
}
