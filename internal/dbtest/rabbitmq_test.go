package dbtest

import (
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRabbitMQ starts a dedicated node and checks everything the helpers
// promise: isolation, the admin, logins over AMQP and both management
// listeners, users, vhosts and permissions, Stop and Start, and Close.
func TestRabbitMQ(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	t0 := time.Now()
	r, err := StartRabbitMQServer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("rabbitmq %s node %s started in %v: amqp %d, management %d, https %d",
		r.Version, r.NodeName, time.Since(t0).Round(time.Millisecond), r.AMQPPort, r.MgmtPort, r.MgmtTLSPort)
	closed := false
	t.Cleanup(func() {
		if !closed {
			if t.Failed() {
				t.Logf("rabbitmq log:%s", logTail(r.LogPath(), 0))
			}
			r.Close()
		}
	})
	if !strings.HasPrefix(r.NodeName, "rotor-test-") || !strings.HasSuffix(r.NodeName, "@localhost") {
		t.Errorf("node name %q, want rotor-test-…@localhost", r.NodeName)
	}

	t.Run("its own node, listening on 127.0.0.1 only", func(t *testing.T) {
		var ov struct {
			Node string `json:"node"`
		}
		if err := r.API(ctx, http.MethodGet, "/api/overview", nil, &ov); err != nil {
			t.Fatal(err)
		}
		if ov.Node != r.NodeName {
			t.Errorf("node = %q, want %q", ov.Node, r.NodeName)
		}
		// The overview reports the management listeners as on ::, so ask
		// the kernel.
		for name, port := range map[string]int{"amqp": r.AMQPPort, "http": r.MgmtPort, "https": r.MgmtTLSPort, "distribution": r.distPort} {
			addrs := listeningOn(t, port)
			if len(addrs) != 1 || addrs[0] != "127.0.0.1" {
				t.Errorf("%s port %d: listening on %v, want [127.0.0.1]", name, port, addrs)
			}
		}
	})

	t.Run("the admin, and no guest", func(t *testing.T) {
		var who struct {
			Name string   `json:"name"`
			Tags []string `json:"tags"`
		}
		if err := r.API(ctx, http.MethodGet, "/api/whoami", nil, &who); err != nil {
			t.Fatal(err)
		}
		if who.Name != r.AdminUser || !slices.Contains(who.Tags, "administrator") {
			t.Errorf("whoami = %+v, want %s with tag administrator", who, r.AdminUser)
		}
		var users []struct {
			Name string `json:"name"`
		}
		if err := r.API(ctx, http.MethodGet, "/api/users", nil, &users); err != nil {
			t.Fatal(err)
		}
		if len(users) != 1 || users[0].Name != r.AdminUser {
			t.Errorf("users = %+v, want only %s", users, r.AdminUser)
		}
		if err := r.CanLogin(ctx, r.AdminUser, r.AdminPassword, "/"); err != nil {
			t.Errorf("admin AMQP login: %v", err)
		}
		for _, c := range [][2]string{{r.AdminUser, r.AdminPassword + "x"}, {"guest", "guest"}} {
			err := r.CanLogin(ctx, c[0], c[1], "/")
			var ae *AMQPError
			if !errors.As(err, &ae) || !ae.IsLoginRefused() || ae.Code != 403 {
				t.Errorf("AMQP login as %s with a wrong password: %v, want a refused login (403)", c[0], err)
			}
			var apiErr *APIError
			if err := r.APIAs(ctx, c[0], c[1], http.MethodGet, "/api/whoami", nil, nil); !errors.As(err, &apiErr) || apiErr.Status != 401 {
				t.Errorf("whoami as %s with a wrong password: %v, want HTTP 401", c[0], err)
			}
		}
	})

	t.Run("management API over HTTPS with the node's CA", func(t *testing.T) {
		var who struct {
			Name string `json:"name"`
		}
		if err := r.TLSAPI(ctx, http.MethodGet, "/api/whoami", nil, &who); err != nil {
			t.Fatal(err)
		}
		if who.Name != r.AdminUser {
			t.Errorf("whoami over https = %q", who.Name)
		}
		if len(r.CACertPEM) == 0 || r.RootCAs == nil {
			t.Error("no CA")
		}
	})

	t.Run("users, vhosts and permissions", func(t *testing.T) {
		const pw = oddPassword + "é日本"
		user := r.CreateUser(t, `O'dd "na/me%2F`, pw)
		if !strings.HasPrefix(user, `O'dd "na/me%2F_`) {
			t.Errorf("user %q does not start with its prefix", user)
		}
		// No permissions yet: the login works, the vhost is refused.
		err := r.CanLogin(ctx, user, pw, "/")
		var ae *AMQPError
		if !errors.As(err, &ae) || ae.IsLoginRefused() || ae.Code != 530 {
			t.Errorf("login without permissions: %v, want 530 NOT_ALLOWED after the login", err)
		}
		vhost := r.CreateVhost(t, "odd/vhost")
		if err := r.SetPermissions(ctx, vhost, user, "^q-", "^amq\\.topic$", "^q-"); err != nil {
			t.Fatal(err)
		}
		if err := r.SetTopicPermissions(ctx, vhost, user, "amq.topic", "^allowed\\.", ".*"); err != nil {
			t.Fatal(err)
		}
		c, err := r.DialAMQP(ctx, user, pw, vhost)
		if err != nil {
			t.Fatalf("login with permissions: %v", err)
		}
		defer c.Close()
		if err := c.DeclareQueue("q-1", true, false); err != nil {
			t.Errorf("declare q-1: %v", err)
		}
		if err := c.DeclareQueue("other", false, false); !errors.As(err, &ae) || ae.Code != 403 || !ae.Channel {
			t.Errorf("declare a queue without configure permission: %v, want channel closed with 403", err)
		}
		if err := c.Publish("amq.topic", "allowed.x", []byte("hi")); err != nil {
			t.Errorf("publish with an allowed routing key: %v", err)
		}
		if err := c.Publish("amq.topic", "denied.x", nil); !errors.As(err, &ae) || ae.Code != 403 {
			t.Errorf("publish with a denied routing key: %v, want 403", err)
		}
		if err := c.DeclareQueue("q-1", false, true); err != nil {
			t.Errorf("passive declare of q-1 on a new channel: %v", err)
		}
		if err := c.DeleteQueue("q-1"); err != nil {
			t.Errorf("delete q-1: %v", err)
		}
		if err := c.DeclareQueue("q-1", false, true); !errors.As(err, &ae) || ae.Code != 404 {
			t.Errorf("passive declare of a deleted queue: %v, want 404", err)
		}
		if err := c.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})

	t.Run("Stop and Start", func(t *testing.T) {
		user := r.CreateUser(t, "kept", "pw")
		if err := r.SetPermissions(ctx, "/", user, "", "", ""); err != nil {
			t.Fatal(err)
		}
		t1 := time.Now()
		r.Stop(t)
		stop := time.Since(t1)
		if err := r.CanLogin(ctx, user, "pw", "/"); err == nil {
			t.Fatal("login works after Stop")
		}
		t2 := time.Now()
		r.Start(t)
		t.Logf("clean stop %v, restart %v", stop.Round(time.Millisecond), time.Since(t2).Round(time.Millisecond))
		if err := r.CanLogin(ctx, user, "pw", "/"); err != nil {
			t.Errorf("login after Start: %v", err)
		}
	})

	// Close kills the node and removes its directory; epmd forgets it.
	pid := r.proc.cmd.Process.Pid
	t3 := time.Now()
	if err := r.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	closed = true
	t.Logf("Close took %v", time.Since(t3).Round(time.Millisecond))
	if _, err := os.Stat(r.dir); !os.IsNotExist(err) {
		t.Errorf("directory %s still exists after Close (%v)", r.dir, err)
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("node process %d still runs after Close", pid)
	}
	if out, err := exec.Command("epmd", "-names").CombinedOutput(); err == nil {
		short, _, _ := strings.Cut(r.NodeName, "@")
		deadline := time.Now().Add(5 * time.Second)
		for strings.Contains(string(out), "name "+short+" ") && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
			out, _ = exec.Command("epmd", "-names").CombinedOutput()
		}
		if strings.Contains(string(out), "name "+short+" ") {
			t.Errorf("epmd still lists %s after Close:\n%s", short, out)
		}
	}
}

// A start whose port another process took fails in a way the retry on
// another port recognises: a listener's port (the management listeners fail
// as the AMQP one does, and as slowly) and the distribution port.
func TestRabbitMQPortTaken(t *testing.T) {
	t.Parallel()
	for i, name := range []string{"amqp", "distribution"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r, err := prepareRabbitMQ(false)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { r.close() })
			if err := r.pickPorts(); err != nil {
				t.Fatal(err)
			}
			port := []*int{&r.AMQPPort, &r.distPort}[i]
			taken, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer taken.Close()
			*port = taken.Addr().(*net.TCPAddr).Port
			t0 := time.Now()
			inUse, err := r.start()
			t.Logf("failed start took %v", time.Since(t0).Round(time.Millisecond))
			if err == nil || !inUse {
				t.Errorf("start with the %s port taken: inUse %v, err %v; want a failure recognised as a taken port", name, inUse, err)
			}
		})
	}
}

func TestRabbitMQMissingBinaries(t *testing.T) {
	t.Parallel()
	_, err := findRabbitMQ([]string{"/nonexistent/rabbitmq-server"})
	if err == nil || !strings.Contains(err.Error(), "install the rabbitmq-server package") {
		t.Errorf("findRabbitMQ without binaries: %v, want an install hint", err)
	}
}

func TestSharedRabbitMQNeedsRabbitMQMain(t *testing.T) {
	t.Parallel()
	// This package's TestMain is Main, which does not stop a shared node.
	msg := fatalMessage(t, func(tb testing.TB) { SharedRabbitMQ(tb) })
	if !strings.Contains(msg, "dbtest.RabbitMQMain(m)") {
		t.Errorf("SharedRabbitMQ without RabbitMQMain: %q, want a hint to use RabbitMQMain", msg)
	}
}

func TestPathEscape(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"/":        "%2F",
		"a/b c":    "a%2Fb%20c",
		"%2F":      "%252F",
		"...":      "...",
		"x?y#z":    "x%3Fy%23z",
		"ü":        "%C3%BC",
		`O'dd "q"`: "O%27dd%20%22q%22",
	} {
		if got := PathEscape(in); got != want {
			t.Errorf("PathEscape(%q) = %q, want %q", in, got, want)
		}
	}
}

// listeningOn returns the local addresses of the TCP sockets listening on
// port, from /proc/net/tcp and tcp6.
func listeningOn(t *testing.T, port int) []string {
	t.Helper()
	var addrs []string
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fields := strings.Fields(line)
			if len(fields) < 4 || fields[3] != "0A" { // LISTEN
				continue
			}
			hexAddr, hexPort, _ := strings.Cut(fields[1], ":")
			if p, err := strconv.ParseUint(hexPort, 16, 16); err != nil || int(p) != port {
				continue
			}
			raw, err := hex.DecodeString(hexAddr)
			if err != nil {
				t.Fatal(err)
			}
			// The kernel prints each 32-bit word in host (little-endian) order.
			for i := 0; i+4 <= len(raw); i += 4 {
				raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
			}
			addrs = append(addrs, net.IP(raw).String())
		}
	}
	return addrs
}
