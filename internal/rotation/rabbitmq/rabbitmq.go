// Package rabbitmq rotates the passwords of RabbitMQ users through the
// management HTTP API (the rabbitmq_management plugin): it is the
// rotator.Rotator behind rotor-rabbitmq-alternating-users and
// rotor-rabbitmq-single-user. It needs nothing but net/http. Callers build
// one Rotator with New, share it (it is safe for concurrent use) and Close
// it at shutdown.
//
// # The secret
//
//	{"engine": "rabbitmq", "host": "mq.internal", "port": 15672,
//	 "username": "app", "password": "…", "masterarn": "arn:…:secret:mq-admin"}
//
// The fields:
//
//   - port is the management API's port (15672 by default, which Rotor
//     assumes when port is absent; 15671 is the usual HTTPS port), not
//     AMQP's 5672: rotation and Test speak only to the management API.
//   - "ssl": true selects HTTPS without certificate verification and
//     false plain HTTP, as for the database engines ("ssl" maps to sslmode
//     require and disable). "sslmode" says more: disable, prefer, require,
//     verify-ca or verify-full (MySQL's spellings too). Without either,
//     Options.DefaultSSLMode applies, itself "prefer": HTTPS when the
//     listener speaks TLS, else plain HTTP (remembered for ten minutes per
//     host and port). verify-ca and verify-full check the certificate
//     against Options.RootCAs (the system's roots when nil); verify-full
//     also checks the host name.
//   - masterarn names the secret of an administrator (a user with the
//     administrator tag): {"username": "…", "password": "…"}, with host and
//     port only if they differ — which they must not: the master must name
//     the same host and port as the secret, as written. A master without
//     "ssl" or "sslmode" uses the secret's.
//   - There is no vhost field: RabbitMQ users, their passwords and tags are
//     server-wide. dbname, if present, is ignored.
//
// # Test
//
// Test logs in to the management API: GET /api/whoami with HTTP basic
// authentication. An application user usually has no management tag, and
// RabbitMQ then answers 401 "Not management user" — but only after it has
// checked the password (a wrong one gets "Login failed"), so Test counts
// that answer as a successful login. The AMQP port is not in the secret, so
// Test opens no AMQP connection.
//
// # Alternating users (rotor-rabbitmq-alternating-users)
//
// The pair is NAME and NAME_clone, and the master is required. Set checks
// that the pending user is the alternate of the current one and that the
// master names the same server, reads both users as the master (which
// fails with KindAuth for a wrong master password and with KindPermission
// for a master that is not an administrator), and proves that the secret
// knows the current user's password — against the stored hash the master
// just read, else by a login — before the master acts for it (KindAuth
// otherwise). Then, as the master, it makes NAME_clone a mirror of NAME,
// whichever of the two is current:
//
//   - creates NAME_clone if it does not exist, without a password (the
//     password comes last);
//   - gives it NAME's tags (management, monitoring, administrator, …);
//   - gives it NAME's permissions (configure, write, read) on every vhost
//     where NAME has some, and deletes its permissions on vhosts where NAME
//     has none;
//   - gives it NAME's topic permissions, per vhost and exchange, and
//     deletes those NAME does not have;
//   - gives it NAME's user limits (max-connections, max-channels), where
//     the server reports them with the user (3.10 does);
//   - sets the pending user's password, last, so that "the pending password
//     logs in" means every earlier step is done — unless the pending user's
//     stored hash already matches it (a repeated step).
//
// So NAME is the source of truth: grant to NAME, and NAME_clone follows at
// the next rotation (which re-syncs everything, also when NAME_clone is the
// user in use); a permission granted to NAME_clone alone is revoked. Only
// when NAME does not exist (a secret whose first user is named like a
// clone) does the current user serve as the source. Changing the tags of
// the clone in use resends its stored hash (PUT /api/users without a
// password would clear it), so its password keeps working. Queues and
// exchanges have no owner in RabbitMQ, so whatever one user of the pair
// declares, the other may use with the same permissions; exclusive queues
// belong to a connection, as always. RabbitMQ has no limit on user names;
// Rotor allows NAME_clone up to MaxUserLen bytes.
//
// # Single user (rotor-rabbitmq-single-user)
//
// RabbitMQ keeps one password per user, so from setSecret until clients
// read the new AWSCURRENT (after finishSecret), the old password no longer
// logs in: new connections with it are refused, while open AMQP
// connections stay open (RabbitMQ does not close them on a password
// change). The window lasts at least testSecret and finishSecret, plus the
// time clients take to re-read the secret; the package's tests measure it.
// Use alternating users where that matters.
//
// Only administrators may change passwords through the management API —
// their own included; there is no self-service endpoint. So:
//
//   - with masterarn, the master (an administrator) changes the password.
//     It first proves a password of the secret: if the user's stored hash
//     matches the current or previous password, the master sets the pending
//     one; if it matches the pending one, nothing is left to do (a repeated
//     step, or a crash after the change). Otherwise Set logs in as the user
//     with the current, the pending and the previous password in turn. The
//     master is never used for a user whose current or previous password is
//     not proven (KindAuth): whoever writes a secret must know the user's
//     password. A master that does not work (wrong password: KindAuth; not
//     an administrator: KindPermission; another server: KindInvalid) fails
//     the step rather than being skipped, so a broken master secret is
//     noticed;
//   - without masterarn, the user changes its own password, which it may
//     only do when it has the administrator tag (such as the admin user's
//     own secret); any other user fails with KindPermission and a hint to
//     set masterarn.
//
// # Passwords and names
//
// A password may be any non-empty string; it is sent as the JSON field
// "password" of PUT /api/users/{name}, so the server hashes it with its
// configured algorithm and applies its password policy (credential
// validator), and in the Authorization header of logins. Both travel in
// clear over plain HTTP: outside a trusted network use HTTPS. User names
// may hold any character but the colon, which HTTP basic authentication
// cannot carry, and may not be "." or "..", which the management API
// resolves in paths even when escaped (KindInvalid); they, vhost and
// exchange names are percent-escaped as path segments (the vhost "/" is
// %2F). The management API must be at the root of its port (no
// management.path_prefix).
//
// # Requests and errors
//
// Every request is bounded by Options.RequestTimeout (connection, TLS
// handshake and answer) and every call by Options.Timeout, within the
// caller's context. Connections are kept alive between requests and
// calls; Close closes the idle ones. No proxy is used and no redirect is
// followed. Every error is a *rotator.Error whose cause is an *APIError
// (status, "error" and "reason" of the answer) or a client-side error, with
// every password, authorization token and stored hash of the call removed:
// 401 "Login failed" (and other 401s) is KindAuth, 401 "Not … user" (a
// missing tag) and 403 KindPermission, 429, 502, 503, 504, network
// failures, TLS failures and timeouts KindUnreachable, anything else
// KindTarget.
package rabbitmq

import (
	"context"
	"crypto/x509"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rotor-secrets/rotor/internal/rotation/rotator"
)

const (
	// DefaultPort is the management API's default port.
	DefaultPort = 15672
	// MaxUserLen bounds user names, NAME_clone included. RabbitMQ has no
	// limit of its own; this one keeps names sane.
	MaxUserLen = 255
)

// engines are the values of the secret's "engine" field this package
// rotates ("" is accepted too).
var engines = []string{"rabbitmq"}

// Engines returns the values of the secret's "engine" field this package
// rotates: rabbitmq. An empty engine is accepted too.
func Engines() []string { return append([]string(nil), engines...) }

// Options configure a Rotator. The zero value is usable.
type Options struct {
	// Timeout bounds a whole Set or Test call; 0 means 60 seconds.
	Timeout time.Duration
	// RequestTimeout bounds each request: connecting, the TLS handshake,
	// sending and reading the answer; 0 means 10 seconds.
	RequestTimeout time.Duration
	// DefaultSSLMode applies to credentials without an SSLMode (a secret
	// with neither "ssl" nor "sslmode"); "" means prefer.
	DefaultSSLMode string
	// RootCAs verify the server's certificate for verify-ca and
	// verify-full; nil means the system's roots.
	RootCAs *x509.CertPool
	// Logger receives debug records of the changes Set makes (never a
	// password); nil discards them.
	Logger *slog.Logger
}

// Rotator rotates RabbitMQ passwords. Create it with New.
type Rotator struct {
	opts    Options
	log     *slog.Logger
	clients clients

	preferMu   sync.Mutex
	plainSince map[string]time.Time // host:port → when prefer found plain HTTP

	logins atomic.Int64 // logins attempted (GET /api/whoami), for tests
}

var _ rotator.Rotator = (*Rotator)(nil)

// New returns a Rotator. It does no I/O; an invalid DefaultSSLMode is
// reported by each call as KindInvalid.
func New(opts Options) *Rotator {
	if opts.Timeout <= 0 {
		opts.Timeout = 60 * time.Second
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = 10 * time.Second
	}
	if opts.DefaultSSLMode == "" {
		opts.DefaultSSLMode = "prefer"
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Rotator{opts: opts, log: log, plainSince: map[string]time.Time{}}
	r.clients = r.newClients()
	return r
}

// Close closes the idle connections. A Rotator still works after Close.
func (r *Rotator) Close() error {
	for _, c := range r.clients.all() {
		c.CloseIdleConnections()
	}
	return nil
}

// Test logs in to the management API with req.Credentials; see the package
// comment.
func (r *Rotator) Test(ctx context.Context, req rotator.TestRequest) error {
	ctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	defer cancel()
	c := req.Credentials
	_, err := r.login(ctx, c, newScrubber(&c))
	return err
}

// login logs in as c: GET /api/whoami. A user without the management tag
// proves its password too (see the package comment); its tags are then
// unknown (nil).
func (r *Rotator) login(ctx context.Context, c rotator.Credentials, sc *scrubber) (*whoami, error) {
	if _, err := r.endpoint(c); err != nil {
		return nil, err
	}
	r.logins.Add(1)
	var who whoami
	err := r.do(ctx, c, http.MethodGet, "/api/whoami", nil, &who)
	if notManagementUser(err) {
		return &whoami{Name: c.Username}, nil
	}
	if err != nil {
		return nil, sc.fail(err, "log in to the management API as %q at %s", c.Username, where(c))
	}
	return &who, nil
}

// Set makes the server accept req.Pending; see the package comment.
func (r *Rotator) Set(ctx context.Context, req rotator.SetRequest) error {
	ctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	defer cancel()
	sc := newScrubber(&req.Pending, &req.Current, req.Previous, req.Master)
	if req.Pending.Password == "" {
		return rotator.Errorf(rotator.KindInvalid, nil, "the pending password is empty")
	}
	if _, err := r.endpoint(req.Pending); err != nil {
		return err
	}
	if req.Master != nil && req.Master.SSLMode == "" {
		// A master secret of only a username and a password reaches the
		// server as the secret does, not less safely.
		m := *req.Master
		m.SSLMode = req.Current.SSLMode
		req.Master = &m
	}
	switch req.Strategy {
	case rotator.SingleUser:
		return r.setSingle(ctx, req, sc)
	case rotator.AlternatingUsers:
		return r.setAlternating(ctx, req, sc)
	}
	return rotator.Errorf(rotator.KindInvalid, nil, "unsupported rotation strategy %v", req.Strategy)
}

func (r *Rotator) setSingle(ctx context.Context, req rotator.SetRequest, sc *scrubber) error {
	p := req.Pending
	if p.Username != req.Current.Username || !sameServer(p, req.Current) {
		return rotator.Errorf(rotator.KindInvalid, nil,
			"single-user rotation: the pending credentials (%q at %s) must name the current user and server (%q at %s)",
			p.Username, where(p), req.Current.Username, where(req.Current))
	}
	// A Previous of another user (the secret was alternating before) is of
	// no use here.
	var prev *rotator.Credentials
	if pr := req.Previous; pr != nil && pr.Username == p.Username && sameServer(*pr, p) {
		prev = pr
	}
	// Current first: on a first attempt it is the password that works.
	// Pending works after a crash that followed the change; Previous when
	// Current was never the user's.
	candidates := []*rotator.Credentials{&req.Current, &p, prev}

	var master *rotator.Credentials
	var info *userInfo
	if req.Master != nil {
		m := *req.Master
		if !sameServer(m, p) {
			return masterElsewhere(m, p)
		}
		master = &m
		var err error
		if info, err = r.getUser(ctx, m, "the master", p.Username, sc); err != nil {
			return err
		}
		if info == nil {
			return rotator.Errorf(rotator.KindInvalid, nil, "user %q does not exist at %s", p.Username, where(p))
		}
		sc.add(info.PasswordHash)
		for i, c := range candidates {
			if c == nil {
				continue
			}
			if match, _ := passwordMatches(info, c.Password); match {
				if i == 1 {
					return nil // already done
				}
				return r.putPassword(ctx, m, p.Username, p.Password, info.Tags, sc)
			}
		}
		// Unproven is not disproven (another authentication backend may
		// know the user): log in.
	}
	var authErr error
	for i, c := range candidates {
		if c == nil {
			continue
		}
		who, err := r.login(ctx, *c, sc)
		if rotator.KindOf(err) == rotator.KindAuth {
			authErr = err
			continue
		}
		if err != nil {
			return err
		}
		if i == 1 {
			return nil // already done
		}
		if master != nil {
			return r.putPassword(ctx, *master, p.Username, p.Password, info.Tags, sc)
		}
		if !who.Tags.has("administrator") {
			return rotator.Errorf(rotator.KindPermission, nil,
				"user %q may not change its own password: RabbitMQ lets only administrators change passwords; "+
					"set \"masterarn\" in the secret to the ARN of an administrator's secret", p.Username)
		}
		self, err := r.getUser(ctx, *c, "the user", p.Username, sc)
		if err != nil {
			return err
		}
		if self == nil {
			return rotator.Errorf(rotator.KindTarget, nil, "user %q logged in but cannot read itself at %s", p.Username, where(p))
		}
		return r.putPassword(ctx, *c, p.Username, p.Password, self.Tags, sc)
	}
	var cause error
	var re *rotator.Error
	if errors.As(authErr, &re) {
		cause = re.Err
	}
	return rotator.Errorf(rotator.KindAuth, cause,
		"none of the pending, current and previous passwords of %q logs in at %s", p.Username, where(p))
}

func (r *Rotator) setAlternating(ctx context.Context, req rotator.SetRequest, sc *scrubber) error {
	p, cur := req.Pending, req.Current
	if req.Master == nil {
		return rotator.Errorf(rotator.KindInvalid, nil,
			"alternating-users rotation needs master credentials (the secret's masterarn): an administrator's")
	}
	m := *req.Master
	alt, err := rotator.AlternateUser(cur.Username, MaxUserLen)
	if err != nil {
		return err
	}
	if p.Username != alt || !sameServer(p, cur) {
		return rotator.Errorf(rotator.KindInvalid, nil,
			"alternating-users rotation: the pending credentials (%q at %s) must name %q at %s, the alternate of the current user",
			p.Username, where(p), alt, where(cur))
	}
	if !sameServer(m, cur) {
		return masterElsewhere(m, cur)
	}
	if _, err := r.endpoint(cur); err != nil {
		return err
	}
	base, clone := cur.Username, p.Username
	if p.Username != cur.Username+rotator.CloneSuffix {
		base, clone = p.Username, cur.Username
	}

	baseInfo, err := r.getUser(ctx, m, "the master", base, sc)
	if err != nil {
		return err
	}
	cloneInfo, err := r.getUser(ctx, m, "the master", clone, sc)
	if err != nil {
		return err
	}
	for _, u := range []*userInfo{baseInfo, cloneInfo} {
		if u != nil {
			sc.add(u.PasswordHash)
		}
	}
	curInfo, pendingInfo := baseInfo, cloneInfo
	if cur.Username == clone {
		curInfo, pendingInfo = cloneInfo, baseInfo
	}
	if err := r.proveCurrent(ctx, cur, curInfo, sc); err != nil {
		return err
	}

	// NAME is the source of truth; the current user only when NAME does
	// not exist (it then is the pending user).
	src, srcInfo, dst, dstInfo := base, baseInfo, clone, cloneInfo
	if baseInfo == nil {
		src, srcInfo, dst, dstInfo = clone, cloneInfo, base, nil
	}
	pendingDone, _ := passwordMatches(pendingInfo, p.Password)
	if err := r.mirror(ctx, m, src, srcInfo, dst, dstInfo, dst == p.Username && !pendingDone, sc); err != nil {
		return err
	}
	if pendingDone {
		return nil
	}
	return r.putPassword(ctx, m, p.Username, p.Password, srcInfo.Tags, sc)
}

// proveCurrent makes sure that whoever wrote the secret knows the current
// password before the master acts for them: by the stored hash the master
// read, else by logging in.
func (r *Rotator) proveCurrent(ctx context.Context, cur rotator.Credentials, info *userInfo, sc *scrubber) error {
	refused := func(cause error) error {
		return rotator.Errorf(rotator.KindAuth, cause,
			"the current credentials of %q do not log in at %s, so the master will not act for them", cur.Username, where(cur))
	}
	if info == nil {
		return refused(errors.New("no such user"))
	}
	if match, _ := passwordMatches(info, cur.Password); match {
		return nil
	}
	if _, err := r.login(ctx, cur, sc); err != nil {
		if rotator.KindOf(err) == rotator.KindAuth {
			var re *rotator.Error
			errors.As(err, &re)
			return refused(re.Err)
		}
		return err
	}
	return nil
}

// mirror makes dst a copy of src as the master: tags, permissions, topic
// permissions and limits. dstInfo is nil when dst does not exist; it is then
// created without a password. When tagsLater is set, dst's password (and
// with it its tags) is set afterwards, so its tags are left to that.
func (r *Rotator) mirror(ctx context.Context, m rotator.Credentials, src string, srcInfo *userInfo, dst string, dstInfo *userInfo, tagsLater bool, sc *scrubber) error {
	log := r.log.With("server", where(m), "user", dst, "source", src)
	switch {
	case dstInfo == nil:
		// No password yet: it is set last.
		if err := r.do(ctx, m, http.MethodPut, "/api/users/"+escape(dst),
			map[string]string{"password_hash": "", "tags": srcInfo.Tags.String()}, nil); err != nil {
			return sc.fail(err, "create user %q as master %q", dst, m.Username)
		}
		log.DebugContext(ctx, "rabbitmq: created user", "tags", srcInfo.Tags.String())
		dstInfo = &userInfo{Name: dst, Tags: srcInfo.Tags}
	case !tagsLater && !dstInfo.Tags.equal(srcInfo.Tags):
		// PUT without a password would clear it: send the stored hash.
		body := map[string]string{"password_hash": dstInfo.PasswordHash, "tags": srcInfo.Tags.String()}
		if dstInfo.HashingAlgorithm != "" {
			body["hashing_algorithm"] = dstInfo.HashingAlgorithm
		}
		if err := r.do(ctx, m, http.MethodPut, "/api/users/"+escape(dst), body, nil); err != nil {
			return sc.fail(err, "set the tags of user %q as master %q", dst, m.Username)
		}
		log.DebugContext(ctx, "rabbitmq: set tags", "tags", srcInfo.Tags.String())
	}
	if err := r.mirrorPermissions(ctx, m, src, dst, log, sc); err != nil {
		return err
	}
	if err := r.mirrorTopicPermissions(ctx, m, src, dst, log, sc); err != nil {
		return err
	}
	return r.mirrorLimits(ctx, m, srcInfo, dstInfo, log, sc)
}

func (r *Rotator) mirrorPermissions(ctx context.Context, m rotator.Credentials, src, dst string, log *slog.Logger, sc *scrubber) error {
	var want, have []permission
	if err := r.do(ctx, m, http.MethodGet, "/api/users/"+escape(src)+"/permissions", nil, &want); err != nil {
		return sc.fail(err, "read the permissions of %q as master %q", src, m.Username)
	}
	if err := r.do(ctx, m, http.MethodGet, "/api/users/"+escape(dst)+"/permissions", nil, &have); err != nil {
		return sc.fail(err, "read the permissions of %q as master %q", dst, m.Username)
	}
	haveBy := map[string]permission{}
	for _, p := range have {
		haveBy[p.Vhost] = p
	}
	wanted := map[string]bool{}
	// Grants first, revocations after: the user in use never lacks what
	// both have.
	for _, p := range want {
		wanted[p.Vhost] = true
		if h, ok := haveBy[p.Vhost]; ok && h == p {
			continue
		}
		body := map[string]string{"configure": p.Configure, "write": p.Write, "read": p.Read}
		if err := r.do(ctx, m, http.MethodPut, "/api/permissions/"+escape(p.Vhost)+"/"+escape(dst), body, nil); err != nil {
			return sc.fail(err, "copy the permissions of %q on vhost %q to %q as master %q", src, p.Vhost, dst, m.Username)
		}
		log.DebugContext(ctx, "rabbitmq: set permissions", "vhost", p.Vhost)
	}
	for _, h := range have {
		if wanted[h.Vhost] {
			continue
		}
		err := r.do(ctx, m, http.MethodDelete, "/api/permissions/"+escape(h.Vhost)+"/"+escape(dst), nil, nil)
		if err != nil && !isNotFound(err) {
			return sc.fail(err, "revoke the permissions of %q on vhost %q, which %q does not have, as master %q", dst, h.Vhost, src, m.Username)
		}
		log.DebugContext(ctx, "rabbitmq: revoked permissions", "vhost", h.Vhost)
	}
	return nil
}

func (r *Rotator) mirrorTopicPermissions(ctx context.Context, m rotator.Credentials, src, dst string, log *slog.Logger, sc *scrubber) error {
	var want, have []topicPermission
	if err := r.do(ctx, m, http.MethodGet, "/api/users/"+escape(src)+"/topic-permissions", nil, &want); err != nil {
		return sc.fail(err, "read the topic permissions of %q as master %q", src, m.Username)
	}
	if err := r.do(ctx, m, http.MethodGet, "/api/users/"+escape(dst)+"/topic-permissions", nil, &have); err != nil {
		return sc.fail(err, "read the topic permissions of %q as master %q", dst, m.Username)
	}
	key := func(t topicPermission) string { return t.Vhost + "\x00" + t.Exchange }
	haveBy := map[string]topicPermission{}
	for _, t := range have {
		haveBy[key(t)] = t
	}
	wantBy := map[string]topicPermission{}
	for _, t := range want {
		wantBy[key(t)] = t
	}
	put := func(t topicPermission) error {
		body := map[string]string{"exchange": t.Exchange, "write": t.Write, "read": t.Read}
		if err := r.do(ctx, m, http.MethodPut, "/api/topic-permissions/"+escape(t.Vhost)+"/"+escape(dst), body, nil); err != nil {
			return sc.fail(err, "copy the topic permissions of %q for exchange %q on vhost %q to %q as master %q",
				src, t.Exchange, t.Vhost, dst, m.Username)
		}
		log.DebugContext(ctx, "rabbitmq: set topic permissions", "vhost", t.Vhost, "exchange", t.Exchange)
		return nil
	}
	for _, t := range want {
		if h, ok := haveBy[key(t)]; ok && h == t {
			continue
		}
		if err := put(t); err != nil {
			return err
		}
	}
	for _, h := range have {
		if _, ok := wantBy[key(h)]; ok {
			continue
		}
		path := "/api/topic-permissions/" + escape(h.Vhost) + "/" + escape(dst)
		if h.Exchange != "" {
			path += "/" + escape(h.Exchange)
		}
		// Without an exchange the path names all of dst's topic
		// permissions on the vhost: those wanted are put back below.
		err := r.do(ctx, m, http.MethodDelete, path, nil, nil)
		if err != nil && !isNotFound(err) {
			return sc.fail(err, "revoke the topic permissions of %q for exchange %q on vhost %q, which %q does not have, as master %q",
				dst, h.Exchange, h.Vhost, src, m.Username)
		}
		log.DebugContext(ctx, "rabbitmq: revoked topic permissions", "vhost", h.Vhost, "exchange", h.Exchange)
		if h.Exchange == "" {
			for _, t := range want {
				if t.Vhost == h.Vhost {
					if err := put(t); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

func (r *Rotator) mirrorLimits(ctx context.Context, m rotator.Credentials, srcInfo, dstInfo *userInfo, log *slog.Logger, sc *scrubber) error {
	if srcInfo.Limits == nil {
		return nil // the server does not report limits
	}
	dst := dstInfo.Name
	for name, v := range srcInfo.Limits {
		if dstInfo.Limits != nil && dstInfo.Limits[name] == v {
			continue
		}
		if err := r.do(ctx, m, http.MethodPut, "/api/user-limits/"+escape(dst)+"/"+escape(name), map[string]any{"value": v}, nil); err != nil {
			return sc.fail(err, "copy the %s limit of %q to %q as master %q", name, srcInfo.Name, dst, m.Username)
		}
		log.DebugContext(ctx, "rabbitmq: set limit", "limit", name, "value", v.String())
	}
	for name := range dstInfo.Limits {
		if _, ok := srcInfo.Limits[name]; ok {
			continue
		}
		err := r.do(ctx, m, http.MethodDelete, "/api/user-limits/"+escape(dst)+"/"+escape(name), nil, nil)
		if err != nil && !isNotFound(err) {
			return sc.fail(err, "remove the %s limit of %q, which %q does not have, as master %q", name, dst, srcInfo.Name, m.Username)
		}
		log.DebugContext(ctx, "rabbitmq: removed limit", "limit", name)
	}
	return nil
}

// getUser reads user as actor (an administrator; role says who it is in
// messages); nil, nil when the user does not exist.
func (r *Rotator) getUser(ctx context.Context, actor rotator.Credentials, role, user string, sc *scrubber) (*userInfo, error) {
	var info userInfo
	err := r.do(ctx, actor, http.MethodGet, "/api/users/"+escape(user), nil, &info)
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, sc.fail(err, "read user %q as %s %q at %s", user, role, actor.Username, where(actor))
	}
	if info.Name == "" {
		info.Name = user
	}
	return &info, nil
}

// putPassword sets user's password as actor, keeping tags (PUT
// /api/users/{name} replaces them).
func (r *Rotator) putPassword(ctx context.Context, actor rotator.Credentials, user, password string, tags tags, sc *scrubber) error {
	body := map[string]string{"password": password, "tags": tags.String()}
	if err := r.do(ctx, actor, http.MethodPut, "/api/users/"+escape(user), body, nil); err != nil {
		return sc.fail(err, "change the password of %q as %q at %s", user, actor.Username, where(actor))
	}
	r.log.DebugContext(ctx, "rabbitmq: changed password", "server", where(actor), "user", user, "as", actor.Username)
	return nil
}

func masterElsewhere(master, c rotator.Credentials) error {
	return rotator.MasterElsewhere(master, c, where)
}

// where is host:port, for messages.
func where(c rotator.Credentials) string {
	h := c.Host
	if strings.Contains(h, ":") {
		h = "[" + h + "]"
	}
	return h + ":" + strconv.Itoa(port(c))
}

// port is c's port, or the management API's default.
func port(c rotator.Credentials) int {
	if c.Port == 0 {
		return DefaultPort
	}
	return c.Port
}

func sameServer(a, b rotator.Credentials) bool { return rotator.SameServer(a, b, DefaultPort) }
