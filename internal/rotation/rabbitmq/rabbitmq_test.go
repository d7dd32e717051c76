package rabbitmq_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rotor-secrets/rotor/internal/dbtest"
	"github.com/rotor-secrets/rotor/internal/rotation/rabbitmq"
	"github.com/rotor-secrets/rotor/internal/rotation/rotator"
	"github.com/rotor-secrets/rotor/internal/rotation/rotatortest"
)

func TestMain(m *testing.M) { dbtest.RabbitMQMain(m) }

// token and seq make names unique on the shared node, across tests and
// -count.
var (
	token = strings.ToLower(rand.Text()[:4])
	seq   atomic.Int64
)

func unique(prefix string) string { return fmt.Sprintf("%s%s%d", prefix, token, seq.Add(1)) }

// env is the shared node with a master of its own: an administrator that is
// not the node's admin.
type env struct {
	mq     *dbtest.RabbitMQ
	master rotator.Credentials
}

func newEnv(t testing.TB) *env {
	t.Helper()
	mq := dbtest.SharedRabbitMQ(t)
	e := &env{mq: mq}
	pw := rand.Text()
	name := mq.CreateUser(t, "master", pw, "administrator")
	e.master = e.creds(name, pw)
	return e
}

func (e *env) creds(user, pw string) rotator.Credentials {
	return rotator.Credentials{Engine: "rabbitmq", Host: e.mq.Host, Port: e.mq.MgmtPort, Username: user, Password: pw, SSLMode: "disable"}
}

// newUser creates user name with a fresh password, tags, and permissions on
// "/" for queues named login-…, so that it may log in over AMQP.
func (e *env) newUser(t testing.TB, name string, tags ...string) rotator.Credentials {
	t.Helper()
	pw := rand.Text()
	ctx := context.Background()
	if err := e.mq.PutUser(ctx, name, pw, tags...); err != nil {
		t.Fatal(err)
	}
	if err := e.mq.SetPermissions(ctx, "/", name, "^login-", "^login-", "^login-"); err != nil {
		t.Fatal(err)
	}
	return e.creds(name, pw)
}

// canLogin logs in over AMQP, as clients do, independently of the rotator.
func (e *env) canLogin(ctx context.Context, c rotator.Credentials) error {
	return e.mq.CanLogin(ctx, c.Username, c.Password, "/")
}

func (e *env) mustLogin(t testing.TB, c rotator.Credentials, what string) {
	t.Helper()
	if err := e.canLogin(t.Context(), c); err != nil {
		t.Fatalf("%s (%s) does not log in over AMQP: %v", what, c.Username, err)
	}
}

func (e *env) mustNotLogin(t testing.TB, c rotator.Credentials, what string) {
	t.Helper()
	err := e.canLogin(t.Context(), c)
	var ae *dbtest.AMQPError
	if !errors.As(err, &ae) || !ae.IsLoginRefused() {
		t.Fatalf("%s (%s): AMQP login = %v, want refused", what, c.Username, err)
	}
}

// grant gives user a fresh vhost with permissions for queues q-… and the
// amq.topic exchange, and topic permissions on amq.topic for routing keys
// allowed.…; the probe exercises all three.
func (e *env) grant(t testing.TB, user string) func(context.Context, rotator.Credentials) error {
	t.Helper()
	vhost := e.mq.CreateVhost(t, "grant")
	ctx := context.Background()
	if err := e.mq.SetPermissions(ctx, vhost, user, "^q-", `^amq\.topic$`, "^q-"); err != nil {
		t.Fatal(err)
	}
	if err := e.mq.SetTopicPermissions(ctx, vhost, user, "amq.topic", `^allowed\.`, ".*"); err != nil {
		t.Fatal(err)
	}
	return func(ctx context.Context, c rotator.Credentials) error { return probe(ctx, e.mq, vhost, c) }
}

// probe proves permissions on vhost like those grant gives: declare and
// delete a queue q-…, publish to amq.topic with an allowed routing key, and
// be refused with another one (a user without topic permissions may publish
// with any key).
func probe(ctx context.Context, mq *dbtest.RabbitMQ, vhost string, c rotator.Credentials) error {
	conn, err := mq.DialAMQP(ctx, c.Username, c.Password, vhost)
	if err != nil {
		return fmt.Errorf("open vhost %q: %w", vhost, err)
	}
	defer conn.Close()
	q := unique("q-probe")
	if err := conn.DeclareQueue(q, false, false); err != nil {
		return fmt.Errorf("declare queue %s: %w", q, err)
	}
	if err := conn.DeleteQueue(q); err != nil {
		return fmt.Errorf("delete queue %s: %w", q, err)
	}
	if err := conn.Publish("amq.topic", "allowed.x", []byte("x")); err != nil {
		return fmt.Errorf("publish with an allowed routing key: %w", err)
	}
	err = conn.Publish("amq.topic", "denied.x", []byte("x"))
	var ae *dbtest.AMQPError
	if !errors.As(err, &ae) || ae.Code != 403 {
		return fmt.Errorf("publish with a routing key outside the topic permissions: %v, want 403 (topic permissions missing?)", err)
	}
	return nil
}

// checkInterchangeable: a queue one user of the pair declares, the other
// may use and delete.
func (e *env) checkInterchangeable(t *testing.T, a, b rotator.Credentials) {
	t.Helper()
	ctx := t.Context()
	for _, order := range [][2]rotator.Credentials{{a, b}, {b, a}} {
		creator, user := order[0], order[1]
		q := unique("login-shared")
		c1, err := e.mq.DialAMQP(ctx, creator.Username, creator.Password, "/")
		if err != nil {
			t.Fatal(err)
		}
		if err := c1.DeclareQueue(q, true, false); err != nil {
			t.Fatalf("declare %s as %s: %v", q, creator.Username, err)
		}
		c1.Close()
		c2, err := e.mq.DialAMQP(ctx, user.Username, user.Password, "/")
		if err != nil {
			t.Fatal(err)
		}
		if err := c2.DeclareQueue(q, false, true); err != nil {
			t.Fatalf("passive declare of %s as %s: %v", q, user.Username, err)
		}
		if err := c2.DeleteQueue(q); err != nil {
			t.Fatalf("delete %s as %s: %v", q, user.Username, err)
		}
		c2.Close()
	}
}

func (e *env) harness(r *rabbitmq.Rotator, st rotator.Strategy, tags ...string) rotatortest.Harness {
	return rotatortest.Harness{
		Rotator:    r,
		Strategies: []rotator.Strategy{st},
		Master:     e.master,
		NewLogin:   func(t *testing.T, name string) rotator.Credentials { return e.newUser(t, name, tags...) },
		CanLogin:   e.canLogin,
		Grant: func(t *testing.T, user string) func(context.Context, rotator.Credentials) error {
			return e.grant(t, user)
		},
		CheckInterchangeable: e.checkInterchangeable,
		// JSON, basic authentication and AMQP's PLAIN carry every
		// character.
		PasswordExclude: "",
	}
}

// The suite's users for alternating rotation are application users: no
// tags at all.
func TestConformanceAlternating(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := rabbitmq.New(rabbitmq.Options{})
	t.Cleanup(func() { r.Close() })
	rotatortest.Run(t, e.harness(r, rotator.AlternatingUsers))
}

// Without a master, a user changes its own password only as an
// administrator, and the suite rotates users without a master: its users
// for single-user rotation are administrators. Non-administrators are
// covered by TestSingleUserNeedsAdministratorOrMaster.
func TestConformanceSingleUser(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := rabbitmq.New(rabbitmq.Options{})
	t.Cleanup(func() { r.Close() })
	rotatortest.Run(t, e.harness(r, rotator.SingleUser, "administrator"))
}

// rotate runs one alternating Set from cur and returns the pending
// credentials, checking that both log in.
func rotate(t *testing.T, r *rabbitmq.Rotator, e *env, cur rotator.Credentials, prev *rotator.Credentials, pw string) rotator.Credentials {
	t.Helper()
	alt, err := rotator.AlternateUser(cur.Username, rabbitmq.MaxUserLen)
	if err != nil {
		t.Fatal(err)
	}
	if pw == "" {
		pw = rand.Text()
	}
	pending := cur
	pending.Username, pending.Password = alt, pw
	m := e.master
	if err := r.Set(t.Context(), rotator.SetRequest{Strategy: rotator.AlternatingUsers, Pending: pending, Current: cur, Previous: prev, Master: &m}); err != nil {
		t.Fatalf("Set %s -> %s: %v", cur.Username, alt, err)
	}
	if err := r.Test(t.Context(), rotator.TestRequest{Credentials: pending}); err != nil {
		t.Fatalf("Test(%s): %v", pending.Username, err)
	}
	e.mustLogin(t, pending, "the pending user")
	e.mustLogin(t, cur, "the current user")
	return pending
}

// account is what the management API says about a user, normalised for
// comparison.
type account struct {
	Tags   []string
	Perms  []string
	Topics []string
	Limits map[string]int
}

func (e *env) account(t testing.TB, user string) account {
	t.Helper()
	ctx := context.Background()
	var u struct {
		Tags   []string       `json:"tags"`
		Limits map[string]int `json:"limits"`
	}
	if err := e.mq.API(ctx, http.MethodGet, "/api/users/"+dbtest.PathEscape(user), nil, &u); err != nil {
		t.Fatal(err)
	}
	var perms []struct{ Vhost, Configure, Write, Read string }
	if err := e.mq.API(ctx, http.MethodGet, "/api/users/"+dbtest.PathEscape(user)+"/permissions", nil, &perms); err != nil {
		t.Fatal(err)
	}
	var topics []struct{ Vhost, Exchange, Write, Read string }
	if err := e.mq.API(ctx, http.MethodGet, "/api/users/"+dbtest.PathEscape(user)+"/topic-permissions", nil, &topics); err != nil {
		t.Fatal(err)
	}
	a := account{Tags: u.Tags, Limits: u.Limits}
	for _, p := range perms {
		a.Perms = append(a.Perms, fmt.Sprintf("%s: %q %q %q", p.Vhost, p.Configure, p.Write, p.Read))
	}
	for _, p := range topics {
		a.Topics = append(a.Topics, fmt.Sprintf("%s/%s: %q %q", p.Vhost, p.Exchange, p.Write, p.Read))
	}
	for _, s := range [][]string{a.Tags, a.Perms, a.Topics} {
		sort.Strings(s)
	}
	if len(a.Limits) == 0 {
		a.Limits = nil
	}
	return a
}

func sameAccount(a, b account) bool {
	return slices.Equal(a.Tags, b.Tags) && slices.Equal(a.Perms, b.Perms) && slices.Equal(a.Topics, b.Topics) &&
		fmt.Sprint(a.Limits) == fmt.Sprint(b.Limits)
}

// NAME_clone gets NAME's tags, permissions on every vhost, topic
// permissions and limits; changes to NAME (grants, revocations, tags,
// limits) reach it at the next rotation, also while it is the user in use;
// what was granted to the clone alone is revoked.
func TestCloneMirrorsBase(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := rabbitmq.New(rabbitmq.Options{})
	ctx := context.Background()
	base := e.newUser(t, unique("mirror"), "monitoring", "custom-tag")
	v1, v2, v3 := e.mq.CreateVhost(t, "mirror/1"), e.mq.CreateVhost(t, "mirror 2"), e.mq.CreateVhost(t, "mirror%3")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(e.mq.SetPermissions(ctx, v1, base.Username, "^q-", `^amq\.topic$`, "^q-"))
	must(e.mq.SetPermissions(ctx, v2, base.Username, "", ".*", ".*"))
	must(e.mq.SetTopicPermissions(ctx, v1, base.Username, "amq.topic", `^allowed\.`, ".*"))
	must(e.mq.SetTopicPermissions(ctx, v1, base.Username, "events", "^e$", "^r$"))
	must(e.mq.SetTopicPermissions(ctx, v2, base.Username, "amq.topic", "^x", ""))
	must(e.mq.API(ctx, http.MethodPut, "/api/user-limits/"+dbtest.PathEscape(base.Username)+"/max-connections", map[string]int{"value": 7}, nil))

	clone := rotate(t, r, e, base, nil, "")
	if got, want := e.account(t, clone.Username), e.account(t, base.Username); !sameAccount(got, want) {
		t.Fatalf("after the first rotation NAME_clone is\n%+v\nwant NAME's\n%+v", got, want)
	}
	if err := probe(ctx, e.mq, v1, clone); err != nil {
		t.Errorf("NAME_clone on %s: %v", v1, err)
	}

	// Change NAME: new tags, a new vhost, a revoked vhost, changed and
	// revoked topic permissions, another limit. Grant the clone something
	// of its own.
	must(e.mq.PutUser(ctx, base.Username, base.Password, "management", "custom-tag"))
	must(e.mq.SetPermissions(ctx, v3, base.Username, "^q-", `^amq\.topic$`, "^q-"))
	must(e.mq.SetTopicPermissions(ctx, v3, base.Username, "amq.topic", `^allowed\.`, ".*"))
	must(e.mq.API(ctx, http.MethodDelete, "/api/permissions/"+dbtest.PathEscape(v2)+"/"+dbtest.PathEscape(base.Username), nil, nil))
	must(e.mq.API(ctx, http.MethodDelete, "/api/topic-permissions/"+dbtest.PathEscape(v1)+"/"+dbtest.PathEscape(base.Username)+"/events", nil, nil))
	must(e.mq.SetTopicPermissions(ctx, v2, base.Username, "amq.topic", "^y", "^z"))
	must(e.mq.API(ctx, http.MethodDelete, "/api/user-limits/"+dbtest.PathEscape(base.Username)+"/max-connections", nil, nil))
	must(e.mq.API(ctx, http.MethodPut, "/api/user-limits/"+dbtest.PathEscape(base.Username)+"/max-channels", map[string]int{"value": 20}, nil))
	own := e.mq.CreateVhost(t, "clone-only")
	must(e.mq.SetPermissions(ctx, own, clone.Username, ".*", ".*", ".*"))
	must(e.mq.SetTopicPermissions(ctx, own, clone.Username, "amq.topic", ".*", ".*"))

	// Back to NAME: the clone is the user in use and is re-synced.
	back := rotate(t, r, e, clone, &base, "")
	if back.Username != base.Username {
		t.Fatalf("second rotation went to %q", back.Username)
	}
	if got, want := e.account(t, clone.Username), e.account(t, base.Username); !sameAccount(got, want) {
		t.Fatalf("after the second rotation NAME_clone is\n%+v\nwant NAME's\n%+v", got, want)
	}
	e.mustLogin(t, clone, "NAME_clone, whose tags changed while in use")
	if err := probe(ctx, e.mq, v3, clone); err != nil {
		t.Errorf("NAME_clone on %s, granted to NAME after the clone existed: %v", v3, err)
	}
	if err := e.mq.CanLogin(ctx, clone.Username, clone.Password, own); err == nil {
		t.Errorf("NAME_clone still opens vhost %s, granted to it alone", own)
	}
}

// Set is idempotent for an alternate that already mirrors NAME: the second
// Set with the same request changes nothing on the server.
func TestRepeatedSetChangesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var buf syncBuffer
	r := rabbitmq.New(rabbitmq.Options{Logger: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	base := e.newUser(t, unique("repeat"), "monitoring")
	e.grant(t, base.Username)
	pending := base
	pending.Username, pending.Password = base.Username+"_clone", rand.Text()
	m := e.master
	req := rotator.SetRequest{Strategy: rotator.AlternatingUsers, Pending: pending, Current: base, Master: &m}
	if err := r.Set(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	before := buf.String()
	if !strings.Contains(before, "created user") || !strings.Contains(before, "changed password") {
		t.Errorf("the first Set logged\n%s\nwant a created user and a changed password", before)
	}
	if err := r.Set(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	if again := strings.TrimPrefix(buf.String(), before); again != "" {
		t.Errorf("a repeated Set changed something:\n%s", again)
	}
}

// Passwords with every kind of awkward character, and user names that need
// escaping in URLs, rotate both ways.
func TestOddNamesAndPasswords(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := rabbitmq.New(rabbitmq.Options{})
	passwords := []string{
		`a/b%2Fc:d"e'f\g`,
		"ünï cödé 日本語 🐇",
		"%%%:::///",
		`{"json":true}`,
		"  leading and trailing spaces  ",
	}
	for _, name := range []string{"a/b", "%2F", "sp ace", "ü-名前", "x?y#z&=+;", "..x", `O'dd "q"`} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			base := e.newUser(t, name+unique("-"))
			cur := base
			var prev *rotator.Credentials
			for _, pw := range passwords {
				next := rotate(t, r, e, cur, prev, pw)
				prev, cur = &cur, next
			}
			// Single user with the master, onto and off an odd password.
			for _, pw := range passwords[:2] {
				pending := cur
				pending.Password = pw + "!"
				m := e.master
				if err := r.Set(t.Context(), rotator.SetRequest{Strategy: rotator.SingleUser, Pending: pending, Current: cur, Master: &m}); err != nil {
					t.Fatalf("single-user Set: %v", err)
				}
				e.mustLogin(t, pending, "the pending password")
				e.mustNotLogin(t, cur, "the old password")
				if err := r.Test(t.Context(), rotator.TestRequest{Credentials: pending}); err != nil {
					t.Fatalf("Test: %v", err)
				}
				cur = pending
			}
		})
	}
}

// Names the management API cannot take: a colon (basic authentication)
// and the path segments "." and "..".
func TestUnaddressableUserNames(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := rabbitmq.New(rabbitmq.Options{})
	for _, name := range []string{"user:name", ".", ".."} {
		c := e.creds(name, "pw")
		if err := r.Test(t.Context(), rotator.TestRequest{Credentials: c}); rotator.KindOf(err) != rotator.KindInvalid {
			t.Errorf("Test as %q: %v, want KindInvalid", name, err)
		}
		pending := c
		pending.Password = "new"
		m := e.master
		for _, st := range []rotator.Strategy{rotator.SingleUser, rotator.AlternatingUsers} {
			if st == rotator.AlternatingUsers {
				pending.Username += rotator.CloneSuffix
			}
			if err := r.Set(t.Context(), rotator.SetRequest{Strategy: st, Pending: pending, Current: c, Master: &m}); rotator.KindOf(err) != rotator.KindInvalid {
				t.Errorf("Set %v as %q: %v, want KindInvalid", st, name, err)
			}
		}
	}
}

// A master with a wrong password fails with KindAuth, one that is not an
// administrator with KindPermission, one on another server with
// KindInvalid; nothing changes.
func TestMasterErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := rabbitmq.New(rabbitmq.Options{})
	ctx := context.Background()
	wrong := e.master
	wrong.Password = rand.Text()
	mgmtPW, plainPW := rand.Text(), rand.Text()
	mgmt := e.creds(e.mq.CreateUser(t, "mgmt-master", mgmtPW, "management", "policymaker", "monitoring"), mgmtPW)
	plain := e.creds(e.mq.CreateUser(t, "plain-master", plainPW), plainPW)
	elsewhere := e.master
	elsewhere.Port = e.mq.MgmtTLSPort
	for _, tc := range []struct {
		name   string
		master rotator.Credentials
		want   rotator.Kind
	}{
		{"wrong password", wrong, rotator.KindAuth},
		{"management tags but not administrator", mgmt, rotator.KindPermission},
		{"no tags", plain, rotator.KindPermission},
		{"another server", elsewhere, rotator.KindInvalid},
	} {
		for _, st := range []rotator.Strategy{rotator.AlternatingUsers, rotator.SingleUser} {
			t.Run(tc.name+"/"+st.String(), func(t *testing.T) {
				t.Parallel()
				// An administrator could change its own password: the
				// master is used all the same.
				cur := e.newUser(t, unique("me"), "administrator")
				pending := cur
				pending.Password = rand.Text()
				if st == rotator.AlternatingUsers {
					pending.Username += rotator.CloneSuffix
				}
				m := tc.master
				err := r.Set(ctx, rotator.SetRequest{Strategy: st, Pending: pending, Current: cur, Master: &m})
				if k := rotator.KindOf(err); k != tc.want {
					t.Fatalf("Set: %v (kind %v), want %v", err, k, tc.want)
				}
				e.mustNotLogin(t, pending, "the pending credentials")
				e.mustLogin(t, cur, "the current credentials")
			})
		}
	}
}

// Without a master, only an administrator changes its own password; a
// plain user fails with KindPermission and keeps its password, and
// rotates with a master.
func TestSingleUserNeedsAdministratorOrMaster(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := rabbitmq.New(rabbitmq.Options{})
	ctx := t.Context()
	for _, tags := range [][]string{nil, {"management"}} {
		cur := e.newUser(t, unique("plain"), tags...)
		pending := cur
		pending.Password = rand.Text()
		err := r.Set(ctx, rotator.SetRequest{Strategy: rotator.SingleUser, Pending: pending, Current: cur})
		if rotator.KindOf(err) != rotator.KindPermission || !strings.Contains(err.Error(), "masterarn") {
			t.Fatalf("Set of a user with tags %v without master: %v, want KindPermission naming masterarn", tags, err)
		}
		e.mustLogin(t, cur, "the unchanged password")
		m := e.master
		if err := r.Set(ctx, rotator.SetRequest{Strategy: rotator.SingleUser, Pending: pending, Current: cur, Master: &m}); err != nil {
			t.Fatalf("Set with master: %v", err)
		}
		e.mustLogin(t, pending, "the pending password")
		e.mustNotLogin(t, cur, "the old password")
	}
	// An administrator rotates itself, keeping its tags.
	admin := e.newUser(t, unique("admin"), "administrator", "custom")
	pending := admin
	pending.Password = rand.Text()
	if err := r.Set(ctx, rotator.SetRequest{Strategy: rotator.SingleUser, Pending: pending, Current: admin}); err != nil {
		t.Fatalf("Set of an administrator without master: %v", err)
	}
	e.mustLogin(t, pending, "the pending password")
	if got := e.account(t, admin.Username).Tags; !slices.Equal(got, []string{"administrator", "custom"}) {
		t.Errorf("tags after the rotation: %v", got)
	}
}

// hashFor computes a RabbitMQ password hash independently of the package.
func hashFor(alg, password string) string {
	var h hash.Hash
	switch alg {
	case "rabbit_password_hashing_sha256":
		h = sha256.New()
	case "rabbit_password_hashing_sha512":
		h = sha512.New()
	default:
		h = md5.New()
	}
	salt := make([]byte, 4)
	rand.Read(salt)
	h.Write(salt)
	h.Write([]byte(password))
	return base64.StdEncoding.EncodeToString(h.Sum(salt))
}

// With a master, Set proves the user's password against the stored hash,
// whatever its algorithm, and logs in nowhere; tags and the algorithm the
// server chose survive.
func TestMasterProvesByStoredHash(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := rabbitmq.New(rabbitmq.Options{})
	ctx := t.Context()
	for _, alg := range []string{"rabbit_password_hashing_sha256", "rabbit_password_hashing_sha512", "rabbit_password_hashing_md5"} {
		t.Run(alg, func(t *testing.T) {
			name := unique("hash")
			pw := "pässword/" + rand.Text()
			if err := e.mq.API(ctx, http.MethodPut, "/api/users/"+dbtest.PathEscape(name),
				map[string]string{"password_hash": hashFor(alg, pw), "hashing_algorithm": alg, "tags": "monitoring"}, nil); err != nil {
				t.Fatal(err)
			}
			if err := e.mq.SetPermissions(ctx, "/", name, "", "", ""); err != nil {
				t.Fatal(err)
			}
			cur := e.creds(name, pw)
			e.mustLogin(t, cur, "a user with a "+alg+" hash") // the server agrees with hashFor
			before := rabbitmq.Logins(r)
			pending := cur
			pending.Password = rand.Text()
			m := e.master
			req := rotator.SetRequest{Strategy: rotator.SingleUser, Pending: pending, Current: cur, Master: &m}
			if err := r.Set(ctx, req); err != nil {
				t.Fatal(err)
			}
			if err := r.Set(ctx, req); err != nil { // repeated: the pending hash matches
				t.Fatal(err)
			}
			if n := rabbitmq.Logins(r) - before; n != 0 {
				t.Errorf("Set logged in %d times, want 0", n)
			}
			e.mustLogin(t, pending, "the pending password")
			if got := e.account(t, name).Tags; !slices.Equal(got, []string{"monitoring"}) {
				t.Errorf("tags after the rotation: %v", got)
			}
			// Alternating: the current user is proven by its hash too.
			before = rabbitmq.Logins(r)
			rotate(t, r, e, pending, &cur, "")
			if n := rabbitmq.Logins(r) - before; n != 1 { // rotate's own Test
				t.Errorf("alternating Set and Test logged in %d times, want 1 (Test's)", n)
			}
		})
	}
}

// Test accepts a user without the management tag (RabbitMQ checks the
// password before the tag) and refuses a wrong password, an unknown user
// and a user without a password.
func TestTest(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := rabbitmq.New(rabbitmq.Options{})
	ctx := t.Context()
	for _, tags := range [][]string{nil, {"management"}, {"monitoring"}, {"administrator"}, {"custom"}} {
		c := e.newUser(t, unique("test"), tags...)
		if err := r.Test(ctx, rotator.TestRequest{Credentials: c}); err != nil {
			t.Errorf("Test of a user with tags %v: %v", tags, err)
		}
		bad := c
		bad.Password += "x"
		if err := r.Test(ctx, rotator.TestRequest{Credentials: bad}); rotator.KindOf(err) != rotator.KindAuth {
			t.Errorf("Test of a user with tags %v and a wrong password: %v, want KindAuth", tags, err)
		}
	}
	nopw := unique("nopw")
	if err := e.mq.API(ctx, http.MethodPut, "/api/users/"+dbtest.PathEscape(nopw), map[string]string{"password_hash": "", "tags": "administrator"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := r.Test(ctx, rotator.TestRequest{Credentials: e.creds(nopw, "anything")}); rotator.KindOf(err) != rotator.KindAuth {
		t.Errorf("Test of a user without a password: %v, want KindAuth", err)
	}
	for _, c := range []rotator.Credentials{
		{Host: "127.0.0.1", Username: "u"},
		{Host: "", Username: "u", Password: "p"},
		{Host: "http://127.0.0.1", Username: "u", Password: "p"},
		{Host: "127.0.0.1", Port: 70000, Username: "u", Password: "p"},
		{Engine: "postgres", Host: "127.0.0.1", Username: "u", Password: "p"},
		{Host: "127.0.0.1", Username: "u", Password: "p", SSLMode: "sometimes"},
	} {
		if err := r.Test(ctx, rotator.TestRequest{Credentials: c}); rotator.KindOf(err) != rotator.KindInvalid {
			t.Errorf("Test(%v): %v, want KindInvalid", c, err)
		}
	}
}

// The single-user window: from the moment Set changes the password, a
// client holding the old one cannot log in until it reads the new
// AWSCURRENT, which is at the earliest after testSecret and finishSecret.
// Measured, not asserted; alternating users for contrast.
func TestSingleUserWindow(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := rabbitmq.New(rabbitmq.Options{})
	for _, st := range []rotator.Strategy{rotator.SingleUser, rotator.AlternatingUsers} {
		cur := e.newUser(t, unique("window"))
		pending := cur
		pending.Password = rand.Text()
		if st == rotator.AlternatingUsers {
			pending.Username += rotator.CloneSuffix
		}
		m := e.master
		// A client logging in with the old credentials, over and over.
		type attempt struct {
			start, end time.Time
			ok         bool
		}
		var (
			mu       sync.Mutex
			attempts []attempt
		)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			defer close(done)
			for ctx.Err() == nil {
				start := time.Now()
				err := e.canLogin(ctx, cur)
				if ctx.Err() != nil {
					return
				}
				mu.Lock()
				attempts = append(attempts, attempt{start, time.Now(), err == nil})
				mu.Unlock()
				time.Sleep(time.Millisecond)
			}
		}()
		time.Sleep(50 * time.Millisecond)
		t0 := time.Now()
		if err := r.Set(t.Context(), rotator.SetRequest{Strategy: st, Pending: pending, Current: cur, Master: &m}); err != nil {
			t.Fatal(err)
		}
		setDone := time.Now()
		// testSecret; finishSecret follows, and only then may clients
		// read the new AWSCURRENT.
		if err := r.Test(t.Context(), rotator.TestRequest{Credentials: pending}); err != nil {
			t.Fatal(err)
		}
		testDone := time.Now()
		time.Sleep(50 * time.Millisecond)
		cancel()
		<-done
		mu.Lock()
		fails := 0
		var lastOK, firstFail attempt
		for _, a := range attempts {
			switch {
			case !a.ok && fails == 0:
				firstFail = a
				fails++
			case !a.ok:
				fails++
			case fails == 0:
				lastOK = a
			}
		}
		mu.Unlock()
		ms := func(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000) }
		changedBy := setDone
		if firstFail.end.Before(changedBy) {
			changedBy = firstFail.end
		}
		if st == rotator.SingleUser {
			if fails == 0 {
				t.Fatal("the old password kept working after a single-user Set")
			}
			// The password changes in Set's last request; clients may
			// switch once finishSecret has moved AWSCURRENT, after
			// testSecret.
			t.Logf("single-user window: Set took %s (the password changes in its last request; the first refused login "+
				"with the old password ended %s after Set began), testSecret's Test %s more: clients holding the old password "+
				"are refused for at least %s plus finishSecret plus the time they take to re-read the secret, "+
				"and at most %s plus those here (%d of %d polled logins failed)",
				ms(setDone.Sub(t0)), ms(firstFail.end.Sub(t0)), ms(testDone.Sub(setDone)),
				ms(testDone.Sub(changedBy)), ms(testDone.Sub(lastOK.start)), fails, len(attempts))
		} else {
			t.Logf("alternating-users: Set took %s, Test %s; %d of %d polled logins with the current credentials failed",
				ms(setDone.Sub(t0)), ms(testDone.Sub(setDone)), fails, len(attempts))
			if fails != 0 {
				t.Errorf("%d logins with the current credentials failed during an alternating rotation", fails)
			}
		}
	}
}

// TLS modes against the node's HTTPS listener and its plain HTTP one.
func TestSSLModes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	verifying := rabbitmq.New(rabbitmq.Options{RootCAs: e.mq.RootCAs, RequestTimeout: 5 * time.Second})
	system := rabbitmq.New(rabbitmq.Options{RequestTimeout: 5 * time.Second}) // the system's roots do not know the node's CA
	user := e.newUser(t, unique("tls"))
	for _, tc := range []struct {
		mode, host string
		tlsPort    bool
		r          *rabbitmq.Rotator
		want       rotator.Kind // 0: works
	}{
		{"disable", "127.0.0.1", false, system, 0},
		{"prefer", "127.0.0.1", false, system, 0},
		{"", "127.0.0.1", false, system, 0}, // the default: prefer
		{"prefer", "127.0.0.1", true, system, 0},
		{"require", "127.0.0.1", true, system, 0},
		{"REQUIRED", "127.0.0.1", true, system, 0},
		{"verify-ca", "127.0.0.1", true, verifying, 0},
		{"verify-full", "127.0.0.1", true, verifying, 0},
		{"verify_identity", "localhost", true, verifying, 0},
		{"require", "127.0.0.1", false, system, rotator.KindUnreachable},
		{"disable", "127.0.0.1", true, system, rotator.KindUnreachable},
		{"verify-ca", "127.0.0.1", true, system, rotator.KindUnreachable},
		{"verify-full", "127.0.0.1", true, system, rotator.KindUnreachable},
		{"bogus", "127.0.0.1", true, system, rotator.KindInvalid},
	} {
		c := user
		c.Host, c.SSLMode = tc.host, tc.mode
		if tc.tlsPort {
			c.Port = e.mq.MgmtTLSPort
		}
		err := tc.r.Test(ctx, rotator.TestRequest{Credentials: c})
		if tc.want == 0 && err != nil {
			t.Errorf("sslmode %q to %s:%d: %v", tc.mode, c.Host, c.Port, err)
		}
		if tc.want != 0 && rotator.KindOf(err) != tc.want {
			t.Errorf("sslmode %q to %s:%d: %v, want %v", tc.mode, c.Host, c.Port, err, tc.want)
		}
	}
	// A whole alternating rotation over verified TLS.
	c := user
	c.Port, c.SSLMode = e.mq.MgmtTLSPort, "verify-full"
	m := e.master
	m.Port, m.SSLMode = e.mq.MgmtTLSPort, "verify-full"
	pending := c
	pending.Username, pending.Password = c.Username+rotator.CloneSuffix, rand.Text()
	if err := verifying.Set(ctx, rotator.SetRequest{Strategy: rotator.AlternatingUsers, Pending: pending, Current: c, Master: &m}); err != nil {
		t.Fatalf("Set over verify-full: %v", err)
	}
	e.mustLogin(t, pending, "the pending user")
}

// A master secret without an sslmode reaches the server as the secret
// does, not with the default.
func TestMasterInheritsSSLMode(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := rabbitmq.New(rabbitmq.Options{DefaultSSLMode: "require"}) // fails on the plain port
	cur := e.newUser(t, unique("inherit"))                         // sslmode disable
	pending := cur
	pending.Username, pending.Password = cur.Username+rotator.CloneSuffix, rand.Text()
	m := e.master
	m.SSLMode = ""
	if err := r.Set(t.Context(), rotator.SetRequest{Strategy: rotator.AlternatingUsers, Pending: pending, Current: cur, Master: &m}); err != nil {
		t.Fatalf("Set with a master without sslmode: %v", err)
	}
	e.mustLogin(t, pending, "the pending user")
}

// prefer remembers a plain-HTTP listener: later calls do not try TLS first.
func TestPreferRemembersPlainHTTP(t *testing.T) {
	t.Parallel()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"name":"u","tags":[]}`))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Config.SetKeepAlivesEnabled(false)
	srv.Start()
	t.Cleanup(srv.Close)
	host, port := splitHostPort(t, srv.Listener.Addr().String())
	r := rabbitmq.New(rabbitmq.Options{})
	c := rotator.Credentials{Host: host, Port: port, Username: "u", Password: rand.Text()}
	for i := range 3 {
		if err := r.Test(t.Context(), rotator.TestRequest{Credentials: c}); err != nil {
			t.Fatalf("Test #%d: %v", i+1, err)
		}
	}
	// The first call: a TLS attempt and the plain request; then one each.
	if n := conns.Load(); n != 4 {
		t.Errorf("%d connections for 3 calls, want 4", n)
	}
}

func splitHostPort(t testing.TB, addr string) (string, int) {
	t.Helper()
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	var port int
	fmt.Sscan(p, &port)
	return host, port
}

// Unreachable servers, in ways the suite does not cover: an unknown host
// and a server that never answers within the request timeout.
func TestUnreachable(t *testing.T) {
	t.Parallel()
	r := rabbitmq.New(rabbitmq.Options{RequestTimeout: 300 * time.Millisecond})
	c := rotator.Credentials{Host: "no-such-host.invalid", Username: "u", Password: rand.Text(), SSLMode: "disable"}
	if err := r.Test(t.Context(), rotator.TestRequest{Credentials: c}); rotator.KindOf(err) != rotator.KindUnreachable {
		t.Errorf("unknown host: %v, want KindUnreachable", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var mu sync.Mutex
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
	c.Host, c.Port = splitHostPort(t, l.Addr().String())
	for _, mode := range []string{"disable", "prefer", "require"} {
		c.SSLMode = mode
		start := time.Now()
		err := r.Test(t.Context(), rotator.TestRequest{Credentials: c}) // a 30-second context: the request timeout ends it
		if rotator.KindOf(err) != rotator.KindUnreachable || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("silent server, sslmode %s: %v, want KindUnreachable from a deadline", mode, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("silent server, sslmode %s: took %v with a request timeout of 300ms", mode, d)
		}
	}
}

// Answers of the management API map to kinds; nothing a server echoes from
// the request reaches an error; redirects are not followed.
func TestAnswers(t *testing.T) {
	t.Parallel()
	const secret = `s3cr3t/"pw"\:%`
	var redirected atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body := new(bytes.Buffer)
		body.ReadFrom(req.Body)
		echo := req.Header.Get("Authorization") + " " + body.String()
		user, _, _ := req.BasicAuth()
		status := map[string]int{"s401": 401, "s401tag": 401, "s403": 403, "s404": 404, "s400": 400, "s500": 500, "s503": 503, "s302": 302, "html": 502}[user]
		if req.URL.Path == "/api/whoami-elsewhere" {
			redirected.Store(true)
		}
		if user == "s302" {
			w.Header().Set("Location", "http://"+req.Host+"/api/whoami-elsewhere")
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		switch user {
		case "s401tag":
			json.NewEncoder(w).Encode(map[string]string{"error": "not_authorised", "reason": "Not administrator user " + echo})
		case "html":
			fmt.Fprintf(w, "<html><body>Bad gateway %s</body></html>", echo)
		default:
			json.NewEncoder(w).Encode(map[string]string{"error": "x", "reason": echo})
		}
	}))
	t.Cleanup(srv.Close)
	host, port := splitHostPort(t, srv.Listener.Addr().String())
	r := rabbitmq.New(rabbitmq.Options{})
	for user, want := range map[string]rotator.Kind{
		"s401": rotator.KindAuth, "s401tag": rotator.KindPermission, "s403": rotator.KindPermission,
		"s404": rotator.KindTarget, "s400": rotator.KindTarget, "s500": rotator.KindTarget,
		"s503": rotator.KindUnreachable, "html": rotator.KindUnreachable, "s302": rotator.KindTarget,
	} {
		c := rotator.Credentials{Host: host, Port: port, Username: user, Password: secret, SSLMode: "disable"}
		err := r.Test(t.Context(), rotator.TestRequest{Credentials: c})
		if k := rotator.KindOf(err); k != want {
			t.Errorf("%s: %v (kind %v), want %v", user, err, k, want)
		}
		checkNoSecret(t, err, secret, base64.StdEncoding.EncodeToString([]byte(user+":"+secret)))
		// And Set, which sends the password in a body.
		pending := c
		pending.Password = secret + "-new"
		m := c
		m.Username = user
		err = r.Set(t.Context(), rotator.SetRequest{Strategy: rotator.AlternatingUsers, Pending: withUser(pending, user+"_clone"), Current: c, Master: &m})
		checkNoSecret(t, err, secret, pending.Password, base64.StdEncoding.EncodeToString([]byte(user+":"+secret)))
	}
	if redirected.Load() {
		t.Error("a redirect was followed")
	}
}

func withUser(c rotator.Credentials, user string) rotator.Credentials {
	c.Username = user
	return c
}

// errorTexts is every text of err: its forms and its Unwrap chain.
func errorTexts(err error) []string {
	if err == nil {
		return nil
	}
	texts := []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)}
	var re *rotator.Error
	if errors.As(err, &re) {
		texts = append(texts, re.Msg)
	}
	for e := errors.Unwrap(err); e != nil; e = errors.Unwrap(e) {
		texts = append(texts, e.Error(), fmt.Sprintf("%+v", e), fmt.Sprintf("%#v", e))
	}
	return texts
}

func checkNoSecret(t testing.TB, err error, secrets ...string) {
	t.Helper()
	for _, txt := range errorTexts(err) {
		for _, s := range secrets {
			if s != "" && strings.Contains(txt, s) {
				t.Errorf("an error of kind %v contains a secret", rotator.KindOf(err))
				return
			}
		}
	}
	if err != nil {
		var re *rotator.Error
		if !errors.As(err, &re) {
			t.Errorf("error is a %T, not a *rotator.Error", err)
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// No password, authorization token or stored hash appears in any error or
// in the debug log of rotations that succeed and fail in every way.
func TestNoSecretsInErrorsOrLogs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var buf syncBuffer
	r := rabbitmq.New(rabbitmq.Options{Logger: slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	ctx := t.Context()
	var secrets []string
	var errs []error
	remember := func(cs ...rotator.Credentials) {
		for _, c := range cs {
			secrets = append(secrets, c.Password, base64.StdEncoding.EncodeToString([]byte(c.Username+":"+c.Password)))
			if b, _ := json.Marshal(c.Password); len(b) > 2 {
				secrets = append(secrets, string(b[1:len(b)-1]))
			}
		}
	}
	odd := func() string { return `p/%:"'\` + rand.Text() + "ü" }
	m := e.master
	wrongMaster := m
	wrongMaster.Password = odd()
	remember(m, wrongMaster)

	base := e.newUser(t, unique("secret"), "monitoring")
	e.grant(t, base.Username)
	remember(base)
	cur := base
	for range 3 {
		pending := cur
		pending.Password = odd()
		alt, _ := rotator.AlternateUser(cur.Username, rabbitmq.MaxUserLen)
		pending.Username = alt
		remember(pending)
		errs = append(errs, r.Set(ctx, rotator.SetRequest{Strategy: rotator.AlternatingUsers, Pending: pending, Current: cur, Master: &m}))
		cur = pending
	}
	bad := cur
	bad.Password = odd()
	pending := cur
	pending.Password = odd()
	remember(bad, pending)
	plain := e.newUser(t, unique("plain"))
	remember(plain)
	errs = append(errs,
		r.Test(ctx, rotator.TestRequest{Credentials: bad}),
		r.Set(ctx, rotator.SetRequest{Strategy: rotator.SingleUser, Pending: pending, Current: bad, Master: &m}),
		r.Set(ctx, rotator.SetRequest{Strategy: rotator.SingleUser, Pending: pending, Current: bad}),
		r.Set(ctx, rotator.SetRequest{Strategy: rotator.SingleUser, Pending: pending, Current: cur, Master: &wrongMaster}),
		r.Set(ctx, rotator.SetRequest{Strategy: rotator.AlternatingUsers, Pending: withUser(pending, cur.Username+"_clone"), Current: cur, Master: &wrongMaster}),
		r.Set(ctx, rotator.SetRequest{Strategy: rotator.AlternatingUsers, Pending: withUser(pending, cur.Username+"_clone"), Current: bad, Master: &m}),
		r.Set(ctx, rotator.SetRequest{Strategy: rotator.SingleUser, Pending: withUser(pending, plain.Username), Current: plain}),
		r.Set(ctx, rotator.SetRequest{Strategy: rotator.SingleUser, Pending: pending, Current: cur, Master: &m}),
	)
	closed := bad
	closed.Port = 1
	errs = append(errs, r.Test(ctx, rotator.TestRequest{Credentials: closed}))
	// The stored hashes the master read.
	for _, u := range []string{base.Username, base.Username + "_clone"} {
		var info struct {
			Hash string `json:"password_hash"`
		}
		if err := e.mq.API(ctx, http.MethodGet, "/api/users/"+dbtest.PathEscape(u), nil, &info); err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, info.Hash)
	}
	failures := 0
	for _, err := range errs {
		if err != nil {
			failures++
		}
		checkNoSecret(t, err, secrets...)
	}
	if failures < 7 {
		t.Errorf("only %d of the calls failed; the test meant more to", failures)
	}
	log := buf.String()
	for _, s := range secrets {
		if s != "" && strings.Contains(log, s) {
			t.Error("the debug log contains a secret")
			break
		}
	}
	if !strings.Contains(log, "changed password") {
		t.Errorf("the debug log has no record of the changes:\n%s", log)
	}
}
