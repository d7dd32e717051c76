package dbtest

import (
	"context"
	"crypto/tls"
	"net"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	goredis "github.com/redis/go-redis/v9"
)

// aclUser is the part of ACL GETUSER these tests read.
func aclUser(t *testing.T, r *Redis, name string) (flags, passwords []string) {
	t.Helper()
	reply, err := r.Do(t.Context(), "ACL", "GETUSER", name)
	if err != nil {
		t.Fatalf("ACL GETUSER %s: %v", name, err)
	}
	fields, ok := reply.([]any)
	if !ok {
		t.Fatalf("ACL GETUSER %s = %#v", name, reply)
	}
	strs := func(v any) []string {
		var out []string
		list, _ := v.([]any)
		for _, x := range list {
			s, _ := x.(string)
			out = append(out, s)
		}
		return out
	}
	for i := 0; i+1 < len(fields); i += 2 {
		switch fields[i] {
		case "flags":
			flags = strs(fields[i+1])
		case "passwords":
			passwords = strs(fields[i+1])
		}
	}
	return flags, passwords
}

func TestRedis(t *testing.T) {
	t.Parallel()
	r := StartRedis(t)
	ctx := t.Context()
	if r.Version == "" {
		t.Error("Version is empty")
	}
	if err := r.CanLogin(ctx, r.AdminUser, r.AdminPassword); err != nil {
		t.Fatalf("admin login: %v", err)
	}
	for _, tc := range []struct{ name, user, password, want string }{
		{"wrong password", r.AdminUser, "wrong", "WRONGPASS"},
		{"empty password", r.AdminUser, "", "NOAUTH"}, // go-redis does not authenticate without a password
		{"unknown user", "nobody_here", r.AdminPassword, "WRONGPASS"},
		{"the default user", "default", "anything", "WRONGPASS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := r.CanLogin(ctx, tc.user, tc.password)
			if !goredis.HasErrorPrefix(err, tc.want) || !IsRedisAuthFailure(err) {
				t.Errorf("login error = %v, want %s", err, tc.want)
			}
		})
	}

	t.Run("no command without authentication", func(t *testing.T) {
		c := goredis.NewClient(r.options("", ""))
		defer c.Close()
		err := c.Ping(ctx).Err()
		if !goredis.HasErrorPrefix(err, "NOAUTH") || !IsRedisAuthFailure(err) {
			t.Errorf("unauthenticated PING: %v, want NOAUTH", err)
		}
	})

	t.Run("the default user is off", func(t *testing.T) {
		flags, _ := aclUser(t, r, "default")
		if !slices.Contains(flags, "off") || slices.Contains(flags, "nopass") {
			t.Errorf("default user flags = %v, want off without nopass", flags)
		}
	})

	t.Run("nothing is persisted but the ACL file", func(t *testing.T) {
		for param, want := range map[string]string{"save": "", "appendonly": "no", "bind": "127.0.0.1"} {
			reply, err := r.Do(ctx, "CONFIG", "GET", param)
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := reply.([]any); len(got) != 2 || got[1] != want {
				t.Errorf("CONFIG GET %s = %v, want %q", param, reply, want)
			}
		}
	})

	t.Run("the ACL file holds no cleartext password", func(t *testing.T) {
		b, err := os.ReadFile(r.ACLPath())
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), r.AdminPassword) || !strings.Contains(string(b), sha256Hex(r.AdminPassword)) {
			t.Errorf("ACL file:\n%s", b)
		}
	})

	t.Run("CreateUser", func(t *testing.T) {
		pw := oddPassword + " and a space"
		name := r.CreateUser(t, "app", pw, "~app:*", "+get", "+set")
		if err := r.CanLogin(ctx, name, pw); err != nil {
			t.Fatalf("new user: %v", err)
		}
		c := r.Client(name, pw)
		defer c.Close()
		if err := c.Set(ctx, "app:x", "1", 0).Err(); err != nil {
			t.Errorf("SET app:x: %v", err)
		}
		if err := c.Set(ctx, "other", "1", 0).Err(); !goredis.HasErrorPrefix(err, "NOPERM") {
			t.Errorf("SET other: %v, want NOPERM", err)
		}
		other := r.CreateUser(t, "app", pw)
		if other == name {
			t.Errorf("two users named %q", name)
		}
		// A user with no command at all still logs in.
		if err := r.CanLogin(ctx, other, pw); err != nil {
			t.Errorf("user without commands: %v", err)
		}
		if _, err := r.CreateUserContext(ctx, "a b", pw); err == nil {
			t.Error("CreateUser accepted a name with a space")
		}
	})
}

func TestRedisStopStart(t *testing.T) {
	t.Parallel()
	r := StartRedis(t)
	ctx := t.Context()
	saved := r.CreateUser(t, "saved", "pw-saved")
	if _, err := r.Do(ctx, "ACL", "SAVE"); err != nil {
		t.Fatalf("ACL SAVE: %v", err)
	}
	unsaved := r.CreateUser(t, "unsaved", "pw-unsaved")

	r.Stop(t)
	err := r.CanLogin(ctx, r.AdminUser, r.AdminPassword)
	if err == nil || IsRedisAuthFailure(err) {
		t.Fatalf("login to a stopped server: %v, want a connection error", err)
	}
	r.Start(t)
	if err := r.CanLogin(ctx, saved, "pw-saved"); err != nil {
		t.Errorf("a user saved with ACL SAVE is gone after a restart: %v", err)
	}
	if err := r.CanLogin(ctx, unsaved, "pw-unsaved"); !IsRedisAuthFailure(err) {
		t.Errorf("a user never saved survived a restart: %v", err)
	}
}

func TestRedisTLS(t *testing.T) {
	t.Parallel()
	r := StartRedisTLS(t)
	ctx := t.Context()
	if r.TLS == nil || len(r.CACertPEM) == 0 {
		t.Fatal("no TLS configuration")
	}
	if err := r.CanLogin(ctx, r.AdminUser, r.AdminPassword); err != nil {
		t.Fatalf("TLS login: %v", err)
	}
	if err := r.CanLogin(ctx, r.AdminUser, "wrong"); !IsRedisAuthFailure(err) {
		t.Errorf("wrong password over TLS: %v", err)
	}

	plain := r.options(r.AdminUser, r.AdminPassword)
	plain.TLSConfig = nil
	c := goredis.NewClient(plain)
	defer c.Close()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Error("plaintext login to a TLS-only server succeeded")
	}

	untrusted := r.options(r.AdminUser, r.AdminPassword)
	untrusted.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: "127.0.0.1"}
	u := goredis.NewClient(untrusted)
	defer u.Close()
	if err := u.Ping(ctx).Err(); err == nil {
		t.Error("a client that does not trust the test CA logged in")
	}
}

func TestRedisServerContext(t *testing.T) {
	t.Parallel()
	r, err := StartRedisServer(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	dir := r.dir
	if err := r.CanLogin(t.Context(), r.AdminUser, r.AdminPassword); err != nil {
		t.Errorf("login: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("directory %s still exists after Close: %v", dir, err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if r, err := StartRedisServer(ctx); err == nil {
		r.Close()
		t.Error("StartRedisServer with a cancelled context succeeded")
	}
}

// TestRedisPortCollision gives the server a taken port first and checks that
// it moves to another. Not parallel: it replaces pickPort.
func TestRedisPortCollision(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	takenPort := taken.Addr().(*net.TCPAddr).Port
	var picks atomic.Int32
	pickPort = func() (int, error) {
		if picks.Add(1) == 1 {
			return takenPort, nil
		}
		return FreePort()
	}
	defer func() { pickPort = FreePort }()

	r := StartRedis(t)
	if got := picks.Load(); got != 2 || r.Port == takenPort {
		t.Errorf("redis picked %d ports and runs on %d (taken: %d), want 2 picks and another port", got, r.Port, takenPort)
	}
}
