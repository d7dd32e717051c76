package redis_test

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/rotor-secrets/rotor/internal/dbtest"
	"github.com/rotor-secrets/rotor/internal/rotation/redis"
	"github.com/rotor-secrets/rotor/internal/rotation/rotator"
	"github.com/rotor-secrets/rotor/internal/rotation/rotatortest"
)

// password returns a fresh password with characters that break naive
// quoting, a space among them.
func password() string { return "Pw1 " + rand.Text() + ` x'"\%;#>` }

func creds(r *dbtest.Redis, user, pw string) rotator.Credentials {
	return rotator.Credentials{Engine: "redis", Host: r.Host, Port: r.Port, Username: user, Password: pw}
}

func master(r *dbtest.Redis) rotator.Credentials { return creds(r, r.AdminUser, r.AdminPassword) }

func ptr[T any](v T) *T { return &v }

// setUser runs ACL SETUSER name rules… as the admin.
func setUser(t testing.TB, r *dbtest.Redis, name string, rules ...string) {
	t.Helper()
	args := []any{"ACL", "SETUSER", name}
	for _, rule := range rules {
		args = append(args, rule)
	}
	if _, err := r.Do(t.Context(), args...); err != nil {
		t.Fatalf("ACL SETUSER %s: %v", name, err)
	}
}

// user is ACL GETUSER as a map of field to value.
func user(t testing.TB, r *dbtest.Redis, name string) map[string]any {
	t.Helper()
	reply, err := r.Do(t.Context(), "ACL", "GETUSER", name)
	if err != nil {
		t.Fatalf("ACL GETUSER %s: %v", name, err)
	}
	list := reply.([]any)
	m := map[string]any{}
	for i := 0; i+1 < len(list); i += 2 {
		m[list[i].(string)] = list[i+1]
	}
	return m
}

// passwords are the user's password hashes, sorted.
func passwords(t testing.TB, r *dbtest.Redis, name string) []string {
	t.Helper()
	var out []string
	for _, p := range user(t, r, name)["passwords"].([]any) {
		out = append(out, p.(string))
	}
	slices.Sort(out)
	return out
}

func hashes(pws ...string) []string {
	var out []string
	for _, pw := range pws {
		out = append(out, redis.PasswordHash(pw))
	}
	slices.Sort(out)
	return out
}

func canLogin(t testing.TB, r *dbtest.Redis, c rotator.Credentials) error {
	t.Helper()
	return r.CanLogin(t.Context(), c.Username, c.Password)
}

func mustLogin(t testing.TB, r *dbtest.Redis, c rotator.Credentials, what string) {
	t.Helper()
	if err := canLogin(t, r, c); err != nil {
		t.Fatalf("%s does not log in: %v", what, err)
	}
}

func mustNotLogin(t testing.TB, r *dbtest.Redis, c rotator.Credentials, what string) {
	t.Helper()
	if err := canLogin(t, r, c); !dbtest.IsRedisAuthFailure(err) {
		t.Fatalf("%s: login error %v, want WRONGPASS", what, err)
	}
}

// appRules are an application's rules: some keys, a channel, a few
// commands, and no ACL command at all.
var appRules = []string{"~app:*", "&news", "+get", "+set", "+ping", "-@dangerous"}

// selfRules let a user change its own passwords without a master.
var selfRules = []string{"+ping", "+acl|setuser", "+acl|save", "~self:*"}

// newUser creates a user that is on, with password pw and rules.
func newUser(t testing.TB, r *dbtest.Redis, prefix, pw string, rules ...string) rotator.Credentials {
	t.Helper()
	return creds(r, r.CreateUser(t, prefix, pw, rules...), pw)
}

func harness(r *dbtest.Redis, rot *redis.Rotator, sslMode string) rotatortest.Harness {
	m := master(r)
	m.SSLMode = sslMode
	return rotatortest.Harness{
		Rotator:       rot,
		Strategies:    []rotator.Strategy{rotator.SingleUser},
		DualPasswords: true,
		Master:        m,
		NewLogin: func(t *testing.T, name string) rotator.Credentials {
			pw := password()
			// The suite rotates without Master too: its users may change
			// their own passwords.
			setUser(t, r, name, append([]string{"reset", "on", ">" + pw}, selfRules...)...)
			c := creds(r, name, pw)
			c.SSLMode = sslMode
			return c
		},
		CanLogin: func(ctx context.Context, c rotator.Credentials) error {
			return r.CanLogin(ctx, c.Username, c.Password)
		},
		PasswordExclude: "",  // Redis passwords are binary-safe
		NameExclude:     " ", // ACL SETUSER refuses spaces in names
	}
}

func TestConformance(t *testing.T) {
	t.Parallel()
	r := dbtest.StartRedis(t)
	rot := redis.New(redis.Options{})
	t.Cleanup(func() { rot.Close() })
	rotatortest.Run(t, harness(r, rot, ""))
}

func TestConformanceTLS(t *testing.T) {
	t.Parallel()
	r := dbtest.StartRedisTLS(t)
	rot := redis.New(redis.Options{RootCAs: r.TLS.RootCAs})
	t.Cleanup(func() { rot.Close() })
	rotatortest.Run(t, harness(r, rot, "verify-full"))
}

// rotate runs Set and Finish as the steps do and checks that both passwords
// log in in between.
func rotate(t *testing.T, r *dbtest.Redis, rot *redis.Rotator, cur rotator.Credentials, m *rotator.Credentials) rotator.Credentials {
	t.Helper()
	pending := cur
	pending.Password = password()
	if err := rot.Set(t.Context(), rotator.SetRequest{Strategy: rotator.SingleUser, Pending: pending, Current: cur, Master: m}); err != nil {
		t.Fatalf("Set: %v", err)
	}
	mustLogin(t, r, pending, "the pending password")
	mustLogin(t, r, cur, "the current password")
	if err := rot.Finish(t.Context(), rotator.FinishRequest{Strategy: rotator.SingleUser, Current: pending, Previous: &cur, Master: m}); err != nil {
		t.Fatalf("Finish: %v", err)
	}
	mustLogin(t, r, pending, "the new password")
	mustLogin(t, r, cur, "the previous password (kept until the next rotation's Set)")
	return pending
}

func TestKeepsOtherRules(t *testing.T) {
	t.Parallel()
	r := dbtest.StartRedis(t)
	rot := redis.New(redis.Options{})
	defer rot.Close()
	selector := "(~other:* +get)"
	for _, tc := range []struct {
		name   string
		rules  []string
		master bool
	}{
		{"as master", append(slices.Clone(appRules), selector), true},
		{"as the user", append(append(slices.Clone(appRules), selfRules...), selector), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cur := newUser(t, r, "keep", password(), tc.rules...)
			before := user(t, r, cur.Username)
			var m *rotator.Credentials
			if tc.master {
				m = ptr(master(r))
			}
			cur = rotate(t, r, rot, cur, m)
			prev := cur
			cur = rotate(t, r, rot, cur, m)
			after := user(t, r, cur.Username)
			for _, field := range []string{"flags", "commands", "keys", "channels", "selectors"} {
				if b, a := fmt.Sprint(before[field]), fmt.Sprint(after[field]); a != b {
					t.Errorf("%s changed: %s, was %s", field, a, b)
				}
			}
			if got, want := passwords(t, r, cur.Username), hashes(cur.Password, prev.Password); !slices.Equal(got, want) {
				t.Errorf("passwords = %v, want the current and the previous one %v", got, want)
			}
			// And the rules still work.
			c := r.Client(cur.Username, cur.Password)
			defer c.Close()
			ctx := t.Context()
			if err := c.Set(ctx, "app:k", "v", 0).Err(); err != nil {
				t.Errorf("SET app:k: %v", err)
			}
			if err := c.Get(ctx, "other:k").Err(); err != nil && !errors.Is(err, goredis.Nil) {
				t.Errorf("GET other:k (selector): %v", err)
			}
			if err := c.Set(ctx, "other:k", "v", 0).Err(); !goredis.HasErrorPrefix(err, "NOPERM") {
				t.Errorf("SET other:k: %v, want NOPERM", err)
			}
			if err := c.Publish(ctx, "news", "x").Err(); !goredis.HasErrorPrefix(err, "NOPERM") {
				t.Errorf("PUBLISH news (not granted): %v, want NOPERM", err)
			}
		})
	}
}

func TestFinishLeavesCurrentAndPrevious(t *testing.T) {
	t.Parallel()
	r := dbtest.StartRedis(t)
	rot := redis.New(redis.Options{})
	defer rot.Close()
	m := master(r)
	cur := newUser(t, r, "one", password(), appRules...)
	// Passwords added by hand, and one of a rotation abandoned after Set.
	setUser(t, r, cur.Username, ">by-hand-1", ">by-hand-2")
	abandoned := cur
	abandoned.Password = password()
	if err := rot.Set(t.Context(), rotator.SetRequest{Strategy: rotator.SingleUser, Pending: abandoned, Current: cur, Master: &m}); err != nil {
		t.Fatal(err)
	}
	if got, want := passwords(t, r, cur.Username), hashes(cur.Password, abandoned.Password); !slices.Equal(got, want) {
		t.Errorf("after Set: passwords = %v, want the current and the pending one %v", got, want)
	}
	pending := cur
	pending.Password = password()
	if err := rot.Set(t.Context(), rotator.SetRequest{Strategy: rotator.SingleUser, Pending: pending, Current: cur, Master: &m}); err != nil {
		t.Fatal(err)
	}
	if got, want := passwords(t, r, cur.Username), hashes(cur.Password, pending.Password); !slices.Equal(got, want) {
		t.Errorf("after the next Set: passwords = %v, want %v", got, want)
	}
	for range 2 {
		if err := rot.Finish(t.Context(), rotator.FinishRequest{Strategy: rotator.SingleUser, Current: pending, Previous: &cur, Master: &m}); err != nil {
			t.Fatal(err)
		}
		if got, want := passwords(t, r, cur.Username), hashes(pending.Password, cur.Password); !slices.Equal(got, want) {
			t.Errorf("after Finish: passwords = %v, want exactly the current and the previous one %v", got, want)
		}
	}
	for _, pw := range []string{"by-hand-1", "by-hand-2", abandoned.Password} {
		mustNotLogin(t, r, creds(r, cur.Username, pw), "a password Set or Finish removed")
	}
	mustLogin(t, r, cur, "the previous password")
}

func TestNopassUser(t *testing.T) {
	t.Parallel()
	r := dbtest.StartRedis(t)
	rot := redis.New(redis.Options{})
	defer rot.Close()
	// A nopass user takes any password; the secret's becomes a real one.
	cur := newUser(t, r, "np", password(), appRules...)
	setUser(t, r, cur.Username, "nopass")
	rotate(t, r, rot, cur, ptr(master(r)))
	if flags := fmt.Sprint(user(t, r, cur.Username)["flags"]); strings.Contains(flags, "nopass") {
		t.Errorf("flags = %s: still nopass", flags)
	}
	mustNotLogin(t, r, creds(r, cur.Username, "anything"), "any password")
}

func TestOddPasswords(t *testing.T) {
	t.Parallel()
	r := dbtest.StartRedis(t)
	rot := redis.New(redis.Options{})
	defer rot.Close()
	odd := []string{
		"with space", `quotes ' " and \ backslash`, "#" + redis.PasswordHash("x"), // looks like a hash rule
		">added", "<removed", "!" + redis.PasswordHash("y"), "resetpass", "nopass", "on", "%R ~* &* +@all",
		"pässwörd ☃", "nul\x00byte", "tab\tnewline\r\n", strings.Repeat("long", 256),
	}
	for _, viaMaster := range []bool{true, false} {
		t.Run(fmt.Sprintf("master=%v", viaMaster), func(t *testing.T) {
			cur := newUser(t, r, "odd", password(), append(slices.Clone(appRules), selfRules...)...)
			var m *rotator.Credentials
			if viaMaster {
				m = ptr(master(r))
			}
			for _, pw := range odd {
				pending := cur
				pending.Password = pw
				if err := rot.Set(t.Context(), rotator.SetRequest{Strategy: rotator.SingleUser, Pending: pending, Current: cur, Master: m}); err != nil {
					t.Fatalf("Set %q: %v", pw, err)
				}
				if err := rot.Test(t.Context(), rotator.TestRequest{Credentials: pending}); err != nil {
					t.Fatalf("Test %q: %v", pw, err)
				}
				if err := rot.Finish(t.Context(), rotator.FinishRequest{Strategy: rotator.SingleUser, Current: pending, Previous: &cur, Master: m}); err != nil {
					t.Fatalf("Finish %q: %v", pw, err)
				}
				mustLogin(t, r, cur, "the previous password")
				if got, want := passwords(t, r, cur.Username), hashes(pw, cur.Password); !slices.Equal(got, want) {
					t.Fatalf("passwords after rotating to %q = %v, want %v", pw, got, want)
				}
				cur = pending
			}
		})
	}
}

// errorTexts are every text an error shows.
func errorTexts(err error) []string {
	texts := []string{err.Error(), fmt.Sprintf("%v", err), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)}
	var re *rotator.Error
	if errors.As(err, &re) {
		texts = append(texts, re.Msg)
	}
	for e := errors.Unwrap(err); e != nil; e = errors.Unwrap(e) {
		texts = append(texts, e.Error(), fmt.Sprintf("%+v", e), fmt.Sprintf("%#v", e))
	}
	return texts
}

// TestErrors provokes each failure the driver maps and checks its kind, its
// message and that no password, nor the hash of one, is in any error text.
func TestErrors(t *testing.T) {
	t.Parallel()
	r := dbtest.StartRedis(t)
	rot := redis.New(redis.Options{DialTimeout: 2 * time.Second})
	defer rot.Close()
	ctx := t.Context()

	m := master(r)
	badMaster := m
	badMaster.Password = password()
	app := newUser(t, r, "err", password(), appRules...)
	self := newUser(t, r, "errself", password(), "+ping", "+acl|setuser", "~self:*") // no +acl|save
	off := newUser(t, r, "erroff", password(), appRules...)
	setUser(t, r, off.Username, "off")
	noACLMaster := newUser(t, r, "errmaster", password(), "+@all", "-@admin", "-acl")
	missing := creds(r, "missing_user", password())
	stopped := dbtest.StartRedis(t)
	stopped.Stop(t)
	gone := creds(stopped, "x", password())
	goneMaster := master(stopped)
	elsewhere := m
	elsewhere.Port = r.Port + 1
	pending := func(c rotator.Credentials) rotator.Credentials {
		c.Password = password()
		return c
	}
	set := func(c rotator.Credentials, m *rotator.Credentials) error {
		return rot.Set(ctx, rotator.SetRequest{Strategy: rotator.SingleUser, Pending: pending(c), Current: c, Master: m})
	}
	finish := func(c rotator.Credentials, m *rotator.Credentials) error {
		return rot.Finish(ctx, rotator.FinishRequest{Strategy: rotator.SingleUser, Current: c, Master: m})
	}
	var secrets []string
	for _, c := range []rotator.Credentials{m, badMaster, app, self, off, noACLMaster, missing, gone, goneMaster} {
		secrets = append(secrets, c.Password, redis.PasswordHash(c.Password))
	}

	for _, tc := range []struct {
		name string
		err  error
		kind rotator.Kind
		msg  string // a part of the message
	}{
		{"a wrong master password", set(app, &badMaster), rotator.KindAuth, "log in as \"admin\""},
		{"a wrong master password in Finish", finish(app, &badMaster), rotator.KindAuth, "log in as \"admin\""},
		{"a user without ACL SETUSER and no master", set(app, nil), rotator.KindPermission, "masterarn"},
		{"a user without ACL SETUSER and no master, Finish", finish(app, nil), rotator.KindPermission, "masterarn"},
		{"a user without ACL SAVE", set(self, nil), rotator.KindPermission, "ACL SAVE"},
		{"a master without ACL commands", set(app, &noACLMaster), rotator.KindPermission, "+acl|setuser"},
		{"a disabled user", set(off, &m), rotator.KindAuth, "is off"},
		{"a disabled user logging in", rot.Test(ctx, rotator.TestRequest{Credentials: off}), rotator.KindAuth, "log in"},
		{"a missing user", set(missing, &m), rotator.KindInvalid, "does not exist"},
		{"a missing user, Finish", finish(missing, &m), rotator.KindInvalid, "does not exist"},
		{"a stopped server", set(gone, &goneMaster), rotator.KindUnreachable, "log in"},
		{"a stopped server, Test", rot.Test(ctx, rotator.TestRequest{Credentials: gone}), rotator.KindUnreachable, "log in"},
		{"alternating users", rot.Set(ctx, rotator.SetRequest{Strategy: rotator.AlternatingUsers, Pending: pending(app), Current: app, Master: &m}),
			rotator.KindInvalid, "single-user only"},
		{"sslmode prefer", rot.Test(ctx, rotator.TestRequest{Credentials: func() rotator.Credentials { c := app; c.SSLMode = "prefer"; return c }()}),
			rotator.KindInvalid, "no negotiation"},
		{"a user name with a space", rot.Test(ctx, rotator.TestRequest{Credentials: creds(r, "a b", "x")}), rotator.KindInvalid, "space"},
		{"another engine", rot.Test(ctx, rotator.TestRequest{Credentials: func() rotator.Credentials { c := app; c.Engine = "postgres"; return c }()}),
			rotator.KindInvalid, "engine"},
		{"a master on another server", set(app, &elsewhere), rotator.KindInvalid, "same server"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.err == nil {
				t.Fatalf("err = nil, want kind %v", tc.kind)
			}
			var re *rotator.Error
			if !errors.As(tc.err, &re) {
				t.Fatalf("err is a %T, not a *rotator.Error", tc.err)
			}
			for _, text := range errorTexts(tc.err) {
				for _, s := range secrets {
					if strings.Contains(text, s) {
						t.Fatalf("an error of kind %v contains a password or its hash", re.Kind)
					}
				}
			}
			if re.Kind != tc.kind || !strings.Contains(re.Msg, tc.msg) {
				t.Errorf("err = %v (kind %v), want kind %v and a message with %q", tc.err, re.Kind, tc.kind, tc.msg)
			}
		})
	}
	// Nothing was changed by the failures.
	mustLogin(t, r, app, "the app user")
	if got, want := passwords(t, r, app.Username), hashes(app.Password); !slices.Equal(got, want) {
		t.Errorf("app passwords = %v, want %v", got, want)
	}
}

func TestPermissionHint(t *testing.T) {
	t.Parallel()
	r := dbtest.StartRedis(t)
	rot := redis.New(redis.Options{})
	defer rot.Close()
	// An application's user may not change its passwords, but the master
	// may: the rotation works once the secret names one.
	app := newUser(t, r, "perm", password(), appRules...)
	pending := app
	pending.Password = password()
	err := rot.Set(t.Context(), rotator.SetRequest{Strategy: rotator.SingleUser, Pending: pending, Current: app})
	if rotator.KindOf(err) != rotator.KindPermission {
		t.Fatalf("Set without master: %v, want KindPermission", err)
	}
	mustNotLogin(t, r, pending, "the pending password after a refused Set")
	rotate(t, r, rot, app, ptr(master(r)))
}

func TestOpenConnectionsSurvive(t *testing.T) {
	t.Parallel()
	r := dbtest.StartRedis(t)
	rot := redis.New(redis.Options{})
	defer rot.Close()
	cur := newUser(t, r, "open", password(), appRules...)
	c := r.Client(cur.Username, cur.Password)
	defer c.Close()
	ctx := t.Context()
	if err := c.Set(ctx, "app:a", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	rotate(t, r, rot, cur, ptr(master(r)))
	// The connection authenticated with the removed password still works.
	if err := c.Get(ctx, "app:a").Err(); err != nil {
		t.Errorf("a connection opened with the old password broke: %v", err)
	}
}

func TestACLSavedAcrossRestart(t *testing.T) {
	t.Parallel()
	r := dbtest.StartRedis(t)
	rot := redis.New(redis.Options{})
	defer rot.Close()
	app := newUser(t, r, "saved", password(), appRules...)
	if _, err := r.Do(t.Context(), "ACL", "SAVE"); err != nil {
		t.Fatal(err)
	}
	next := rotate(t, r, rot, app, ptr(master(r)))
	r.Stop(t)
	r.Start(t)
	mustLogin(t, r, next, "the rotated password after a restart")
	mustLogin(t, r, app, "the previous password after a restart")

	// Without ACL SAVE, a restart reverts the rotation.
	skip := redis.New(redis.Options{SkipACLSave: true})
	defer skip.Close()
	third := rotate(t, r, skip, next, ptr(master(r)))
	r.Stop(t)
	r.Start(t)
	mustNotLogin(t, r, third, "a password never saved, after a restart")
	mustLogin(t, r, next, "the saved password after a restart")
}

func TestTLSModes(t *testing.T) {
	t.Parallel()
	r := dbtest.StartRedisTLS(t)
	ctx := t.Context()
	trusting := redis.New(redis.Options{RootCAs: r.TLS.RootCAs})
	defer trusting.Close()
	system := redis.New(redis.Options{})
	defer system.Close()
	other := x509.NewCertPool()
	wrongCA := redis.New(redis.Options{RootCAs: other})
	defer wrongCA.Close()
	admin := master(r)
	for _, tc := range []struct {
		name string
		rot  *redis.Rotator
		mode string
		host string
		want rotator.Kind // 0: success
	}{
		{"require", system, "require", "", 0},
		{"verify-ca", trusting, "verify-ca", "", 0},
		{"verify-ca against another CA", wrongCA, "verify-ca", "", rotator.KindUnreachable},
		{"verify-full", trusting, "verify-full", "", 0},
		{"verify-full by name", trusting, "verify_identity", "localhost", 0},
		{"verify-full without the CA", system, "verify-full", "", rotator.KindUnreachable},
		{"disable against a TLS port", trusting, "disable", "", rotator.KindUnreachable},
		{"prefer", trusting, "prefer", "", rotator.KindInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := admin
			c.SSLMode = tc.mode
			if tc.host != "" {
				c.Host = tc.host
			}
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			start := time.Now()
			err := tc.rot.Test(ctx, rotator.TestRequest{Credentials: c})
			if tc.want == 0 && err != nil {
				t.Fatalf("Test: %v", err)
			}
			if tc.want != 0 && rotator.KindOf(err) != tc.want {
				t.Fatalf("Test: %v, want kind %v", err, tc.want)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("Test took %v", d)
			}
		})
	}
	// The default is plaintext: a TLS port does not answer it.
	if err := trusting.Test(ctx, rotator.TestRequest{Credentials: admin}); rotator.KindOf(err) != rotator.KindUnreachable {
		t.Errorf("Test without sslmode against a TLS port: %v, want KindUnreachable", err)
	}
	// A Rotator whose default is TLS needs no sslmode in the secret.
	tlsDefault := redis.New(redis.Options{RootCAs: r.TLS.RootCAs, DefaultSSLMode: "verify-full"})
	defer tlsDefault.Close()
	rotate(t, r, tlsDefault, newUser(t, r, "tls", password(), appRules...), &admin)
}

func TestMasterConnectionsReused(t *testing.T) {
	t.Parallel()
	r := dbtest.StartRedis(t)
	rot := redis.New(redis.Options{})
	defer rot.Close()
	m := master(r)
	cur := newUser(t, r, "pool", password(), appRules...)
	cur = rotate(t, r, rot, cur, &m)
	before := redis.Logins(rot)
	for range 3 {
		cur = rotate(t, r, rot, cur, &m)
	}
	if got := redis.Logins(rot) - before; got != 0 {
		t.Errorf("three rotations with a pooled master logged in %d times, want 0", got)
	}
	if s := redis.PoolStats(rot); s.Reuses < 6 {
		t.Errorf("pool stats = %+v, want at least 6 reuses", s)
	}

	// The master's own secret (no masterarn): the admin rotates itself, its
	// pooled connections are dropped, and the new password serves as
	// master.
	newMaster := rotate(t, r, rot, m, nil)
	mustLogin(t, r, m, "the previous master password (kept until the next rotation)")
	if s := redis.PoolStats(rot); s.Idle != 0 {
		t.Errorf("%d master connections still pooled after the master's password changed", s.Idle)
	}
	rotate(t, r, rot, cur, &newMaster)
}

func TestCancelEndsACall(t *testing.T) {
	t.Parallel()
	// A server that accepts connections and never answers.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	rot := redis.New(redis.Options{})
	defer rot.Close()
	port := l.Addr().(*net.TCPAddr).Port
	c := rotator.Credentials{Host: "127.0.0.1", Port: port, Username: "u", Password: password()}
	// No deadline: only a cancellation ends the call.
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	err = rot.Set(ctx, rotator.SetRequest{Strategy: rotator.SingleUser, Pending: c, Current: c, Master: &c})
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("a cancelled Set returned after %v", d)
	}
	if rotator.KindOf(err) != rotator.KindUnreachable {
		t.Errorf("err = %v, want KindUnreachable", err)
	}
}
