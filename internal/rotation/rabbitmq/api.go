package rabbitmq

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/rotor-secrets/rotor/internal/rotation/rotator"
)

// maxBody bounds the answers read: a user's permissions on every vhost of
// a large server fit easily.
const maxBody = 8 << 20

// preferMemo is how long sslmode=prefer remembers that a server's
// management listener speaks plain HTTP, before trying TLS again.
const preferMemo = 10 * time.Minute

// sslModes maps the accepted spellings to the canonical PostgreSQL-style
// names, as the other drivers do.
var sslModes = map[string]string{
	"disable": "disable", "disabled": "disable",
	"prefer": "prefer", "preferred": "prefer",
	"require": "require", "required": "require",
	"verify-ca": "verify-ca", "verify_ca": "verify-ca",
	"verify-full": "verify-full", "verify_identity": "verify-full", "verify-identity": "verify-full",
}

// endpoint is where and how one set of credentials reaches the management
// API.
type endpoint struct {
	host string
	port int
	mode string // canonical sslmode
}

func (e endpoint) hostPort() string { return net.JoinHostPort(e.host, strconv.Itoa(e.port)) }

// endpoint checks c and returns where it points.
func (r *Rotator) endpoint(c rotator.Credentials) (endpoint, error) {
	if c.Engine != "" && !slices.Contains(engines, c.Engine) {
		return endpoint{}, rotator.Errorf(rotator.KindInvalid, nil, "engine %q is not RabbitMQ", c.Engine)
	}
	if c.Host == "" || c.Username == "" || c.Password == "" {
		return endpoint{}, rotator.Errorf(rotator.KindInvalid, nil, "credentials for %q need a host, a username and a password", c.Username)
	}
	if strings.ContainsAny(c.Host, "/@?#%[] \t\r\n") {
		return endpoint{}, rotator.Errorf(rotator.KindInvalid, nil,
			"host %q is not a host name or IP address (the management API's scheme and port come from \"ssl\" and \"port\")", c.Host)
	}
	if strings.ContainsRune(c.Username, ':') {
		// Basic authentication splits user and password at the first colon.
		return endpoint{}, rotator.Errorf(rotator.KindInvalid, nil,
			"user name %q contains a colon, which HTTP basic authentication cannot carry to the management API", c.Username)
	}
	if c.Username == "." || c.Username == ".." {
		// The management API resolves them in paths, even escaped.
		return endpoint{}, rotator.Errorf(rotator.KindInvalid, nil, "user name %q cannot be addressed in the management API", c.Username)
	}
	p := port(c)
	if p <= 0 || p > 65535 {
		return endpoint{}, rotator.Errorf(rotator.KindInvalid, nil, "port %d is out of range", c.Port)
	}
	mode := c.SSLMode
	if mode == "" {
		mode = r.opts.DefaultSSLMode
	}
	canonical, ok := sslModes[strings.ToLower(mode)]
	if !ok {
		return endpoint{}, rotator.Errorf(rotator.KindInvalid, nil,
			"unsupported sslmode %q: use disable, prefer, require, verify-ca or verify-full", mode)
	}
	return endpoint{host: c.Host, port: p, mode: canonical}, nil
}

// clients are the HTTP clients of a Rotator, one per kind of connection;
// each keeps its idle connections (HTTP keep-alive) between requests.
type clients struct {
	plain, tlsNoVerify, tlsVerifyCA, tlsVerifyFull *http.Client
}

func (r *Rotator) newClients() clients {
	mk := func(mode string) *http.Client {
		t := &http.Transport{
			Proxy:               nil, // the management API is reached directly
			DialContext:         r.dialContext,
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     30 * time.Second,
			TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{}, // HTTP/1.1 only
		}
		if mode != "" {
			t.DialTLSContext = r.dialTLS(mode)
		}
		return &http.Client{
			Transport: t,
			// A redirect is not followed: the credentials stay where the
			// secret says.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return clients{plain: mk(""), tlsNoVerify: mk("require"), tlsVerifyCA: mk("verify-ca"), tlsVerifyFull: mk("verify-full")}
}

func (cl clients) all() []*http.Client {
	return []*http.Client{cl.plain, cl.tlsNoVerify, cl.tlsVerifyCA, cl.tlsVerifyFull}
}

func (cl clients) forMode(mode string) *http.Client {
	switch mode {
	case "disable":
		return cl.plain
	case "verify-ca":
		return cl.tlsVerifyCA
	case "verify-full":
		return cl.tlsVerifyFull
	}
	return cl.tlsNoVerify // prefer, require
}

// dialContext connects, bounded by the request timeout even where the
// transport dials without the request's context.
func (r *Rotator) dialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: r.opts.RequestTimeout}
	return d.DialContext(ctx, network, addr)
}

// dialTLS connects and runs the TLS handshake for mode, bounded by the
// request timeout. A handshake the server refused or failed is a
// *handshakeError; one cut short by a deadline is the context's error, as
// sslmode=prefer must not read a silent server as one without TLS.
func (r *Rotator) dialTLS(mode string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		ctx, cancel := context.WithTimeout(ctx, r.opts.RequestTimeout)
		defer cancel()
		raw, err := r.dialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		host, _, _ := net.SplitHostPort(addr)
		tc := tls.Client(raw, r.tlsConfig(mode, host))
		if err := tc.HandshakeContext(ctx); err != nil {
			raw.Close()
			var netErr net.Error
			if ctx.Err() != nil || errors.As(err, &netErr) && netErr.Timeout() {
				return nil, context.DeadlineExceeded
			}
			return nil, &handshakeError{err}
		}
		return tc, nil
	}
}

// tlsConfig is the TLS configuration of mode for host, as the mysql
// driver's: prefer and require encrypt without authenticating the server,
// verify-ca checks the chain against Options.RootCAs (the system's roots
// when nil), verify-full the chain and the host name.
func (r *Rotator) tlsConfig(mode, host string) *tls.Config {
	if cfg := rotator.TLSConfig(mode, host, r.opts.RootCAs); cfg != nil {
		return cfg
	}
	// Only HTTPS requests ask: encrypt at least.
	return rotator.TLSConfig("require", host, r.opts.RootCAs)
}

// plainKnown reports whether sslmode=prefer found hostPort speaking plain
// HTTP recently.
func (r *Rotator) plainKnown(hostPort string) bool {
	r.preferMu.Lock()
	defer r.preferMu.Unlock()
	at, ok := r.plainSince[hostPort]
	if ok && time.Since(at) > preferMemo {
		delete(r.plainSince, hostPort)
		return false
	}
	return ok
}

func (r *Rotator) rememberPlain(hostPort string) {
	r.preferMu.Lock()
	defer r.preferMu.Unlock()
	r.plainSince[hostPort] = time.Now()
}

// do sends one request to the management API as c: path is escaped (see
// escape), in (if not nil) is sent as JSON, and a 2xx answer is decoded
// into out (if not nil). Any other answer is an *APIError; the error is not
// scrubbed (callers wrap it with a scrubber). Each request is bounded by
// Options.RequestTimeout.
func (r *Rotator) do(ctx context.Context, c rotator.Credentials, method, path string, in, out any) error {
	ep, err := r.endpoint(c)
	if err != nil {
		return err
	}
	var body []byte
	if in != nil {
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	scheme, fallback := "https", false
	switch {
	case ep.mode == "disable":
		scheme = "http"
	case ep.mode == "prefer" && r.plainKnown(ep.hostPort()):
		scheme = "http"
	case ep.mode == "prefer":
		fallback = true
	}
	for {
		client := r.clients.forMode(ep.mode)
		if scheme == "http" {
			client = r.clients.plain
		}
		err := r.send(ctx, client, scheme+"://"+ep.hostPort()+path, c, method, body, out)
		var hs *handshakeError
		if fallback && errors.As(err, &hs) && ctx.Err() == nil {
			// sslmode=prefer: the listener does not speak TLS.
			r.rememberPlain(ep.hostPort())
			scheme, fallback = "http", false
			continue
		}
		return withHint(err, scheme)
	}
}

// withHint adds to err what a scheme mismatch looks like to an operator.
func withHint(err error, scheme string) error {
	if err == nil {
		return nil
	}
	var hs *handshakeError
	var rec tls.RecordHeaderError
	switch {
	case scheme == "http" && strings.Contains(err.Error(), "malformed HTTP response"):
		return fmt.Errorf("%w (the port seems to serve HTTPS: set \"ssl\": true or an sslmode in the secret)", err)
	case scheme == "https" && errors.As(err, &hs) && errors.As(err, &rec):
		return fmt.Errorf("%w (the port seems to serve plain HTTP: set \"ssl\": false or sslmode disable or prefer in the secret)", err)
	}
	return err
}

func (r *Rotator) send(ctx context.Context, client *http.Client, target string, c rotator.Credentials, method string, body []byte, out any) error {
	ctx, cancel := context.WithTimeout(ctx, r.opts.RequestTimeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return err
	}
	req.SetBasicAuth(c.Username, c.Password)
	if method == http.MethodGet {
		// Not on other methods: some resources (user-limits) answer 406.
		req.Header.Set("Accept", "application/json")
	}
	req.Header.Set("User-Agent", "rotor")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return newAPIError(resp.StatusCode, b)
	}
	if out != nil && len(bytes.TrimSpace(b)) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("the answer to %s %s is not the JSON expected: %v", method, req.URL.EscapedPath(), err)
		}
	}
	return nil
}

// escape makes a user, vhost or exchange name one path segment of the
// management API: "/" becomes %2F (the default vhost is %2F).
func escape(name string) string { return url.PathEscape(name) }

// userInfo is GET /api/users/{name}, which only administrators may read.
type userInfo struct {
	Name             string `json:"name"`
	PasswordHash     string `json:"password_hash"`
	HashingAlgorithm string `json:"hashing_algorithm"`
	Tags             tags   `json:"tags"`
	// Limits are the user's limits (max-connections, max-channels), nil
	// when the server does not report them with the user (older versions).
	Limits map[string]json.Number `json:"limits"`
}

// whoami is GET /api/whoami.
type whoami struct {
	Name string `json:"name"`
	Tags tags   `json:"tags"`
}

// tags are a user's tags: RabbitMQ 3.10 sends a list, older versions a
// comma-separated string; PUT takes the string.
type tags []string

func (t *tags) UnmarshalJSON(b []byte) error {
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("tags are neither a list nor a string")
		}
		list = strings.Split(s, ",")
	}
	out := tags{}
	for _, tag := range list {
		if tag = strings.TrimSpace(tag); tag != "" {
			out = append(out, tag)
		}
	}
	*t = out
	return nil
}

func (t tags) String() string { return strings.Join(t, ",") }

func (t tags) has(tag string) bool { return slices.Contains(t, tag) }

func (t tags) equal(u tags) bool {
	a, b := slices.Clone(t), slices.Clone(u)
	sort.Strings(a)
	sort.Strings(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

// permission is one vhost's permissions of a user.
type permission struct {
	Vhost     string `json:"vhost"`
	Configure string `json:"configure"`
	Write     string `json:"write"`
	Read      string `json:"read"`
}

// topicPermission is a user's topic permissions for one exchange of a vhost.
type topicPermission struct {
	Vhost    string `json:"vhost"`
	Exchange string `json:"exchange"`
	Write    string `json:"write"`
	Read     string `json:"read"`
}
