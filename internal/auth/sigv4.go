package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	algorithm       = "AWS4-HMAC-SHA256"
	terminator      = "aws4_request"
	amzDateLayout   = "20060102T150405Z"
	scopeDateLayout = "20060102"

	// DefaultMaxSkew is how far a request's date may be from the server's
	// clock when VerifierConfig.MaxSkew is zero; AWS allows the same.
	DefaultMaxSkew = 15 * time.Minute

	// DefaultService is the SigV4 service name when VerifierConfig.Service
	// is empty.
	DefaultService = "secretsmanager"

	// maxCachedSigningKeys bounds the derived-key cache. Steady state needs
	// one entry per active access key per day (two around midnight UTC).
	maxCachedSigningKeys = 1024
)

// The messages AWS returns for these failures.
const (
	msgMissingToken = "Missing Authentication Token"
	msgUnrecognized = "The security token included in the request is invalid."
	msgMismatch     = "The request signature we calculated does not match the signature you provided. " +
		"Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
)

// ErrUnknownKey is returned by KeySource.SecretKey when the access key id is
// unknown or the key is inactive. Verify reports it to the client as
// CodeUnrecognizedClient.
var ErrUnknownKey = errors.New("auth: unknown or inactive access key")

// KeySource supplies the secret half of access keys.
type KeySource interface {
	// SecretKey returns the secret access key for accessKeyID and the
	// principal it authenticates. It returns ErrUnknownKey (possibly
	// wrapped) when the key does not exist or is inactive; any other error
	// is an internal failure.
	SecretKey(ctx context.Context, accessKeyID string) (secret string, p Principal, err error)
}

// Authorization is a parsed SigV4 Authorization header:
//
//	AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/secretsmanager/aws4_request, SignedHeaders=host;x-amz-date, Signature=hex
type Authorization struct {
	AccessKeyID string
	Date        string // YYYYMMDD, the credential scope's day
	Region      string
	Service     string
	Terminator  string // always "aws4_request"
	// SignedHeaders are the names the client signed, lowercased, sorted and
	// without duplicates, as the canonical request lists them.
	SignedHeaders []string
	Signature     string // as sent; hex in a well-formed request
}

// ParseAuthorization parses a SigV4 Authorization header. It checks shape
// only: every part present, the credential scope made of five parts with an
// eight-digit date and the "aws4_request" terminator, header names that are
// valid tokens. Whether the scope, headers and signature are acceptable is
// Verify's business.
//
// Errors are *Error values with CodeIncompleteSignature.
func ParseAuthorization(h string) (Authorization, error) {
	var a Authorization
	h = strings.Trim(h, " \t")
	alg, params, _ := strings.Cut(h, " ")
	if alg != algorithm {
		return a, incomplete("Unsupported AWS 'algorithm': " + quote(alg) + ". Rotor accepts '" + algorithm + "' only.")
	}

	var cred, signed, sig string
	var seenCred, seenSigned, seenSig bool
	for params != "" {
		var p string
		p, params, _ = strings.Cut(params, ",")
		p = strings.Trim(p, " \t")
		if p == "" {
			continue
		}
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			return a, incomplete("Invalid key=value pair (missing equal-sign) in Authorization header.")
		}
		var dst *string
		var seen *bool
		switch k {
		case "Credential":
			dst, seen = &cred, &seenCred
		case "SignedHeaders":
			dst, seen = &signed, &seenSigned
		case "Signature":
			dst, seen = &sig, &seenSig
		default:
			continue // AWS ignores parameters it does not know
		}
		if *seen {
			return a, incomplete("Authorization header has more than one '" + k + "' parameter.")
		}
		*dst, *seen = v, true
	}

	var missing []string
	for _, m := range [...]struct {
		name, value string
	}{{"Credential", cred}, {"Signature", sig}, {"SignedHeaders", signed}} {
		if m.value == "" {
			missing = append(missing, "Authorization header requires '"+m.name+"' parameter.")
		}
	}
	if missing != nil {
		return a, incomplete(strings.Join(missing, " "))
	}

	if err := parseCredential(&a, cred); err != nil {
		return Authorization{}, err
	}
	if !visibleASCII(sig) {
		return Authorization{}, incomplete("Authorization header has a malformed 'Signature' parameter.")
	}
	a.Signature = sig
	names, err := parseSignedHeaders(signed)
	if err != nil {
		return Authorization{}, err
	}
	a.SignedHeaders = names
	return a, nil
}

func parseCredential(a *Authorization, cred string) error {
	var parts [5]string
	rest := cred
	for i := range parts {
		var ok bool
		parts[i], rest, ok = strings.Cut(rest, "/")
		if ok != (i < len(parts)-1) {
			return incomplete("Credential must have exactly 5 slash-delimited elements, " +
				"e.g. AKID/YYYYMMDD/REGION/SERVICE/aws4_request, got " + quote(cred) + ".")
		}
		if !visibleASCII(parts[i]) {
			return incomplete("Credential has an empty or malformed element: " + quote(cred) + ".")
		}
	}
	if !isDate(parts[1]) {
		return incomplete("Credential date must be in the form YYYYMMDD, got " + quote(parts[1]) + ".")
	}
	if parts[4] != terminator {
		return incomplete("Credential should be scoped with a valid terminator: '" + terminator + "', not " + quote(parts[4]) + ".")
	}
	a.AccessKeyID, a.Date, a.Region, a.Service, a.Terminator = parts[0], parts[1], parts[2], parts[3], parts[4]
	return nil
}

func parseSignedHeaders(s string) ([]string, error) {
	names := strings.Split(s, ";")
	for i, n := range names {
		if !isToken(n) {
			return nil, incomplete("SignedHeaders has an empty or malformed header name: " + quote(n) + ".")
		}
		names[i] = strings.ToLower(n)
	}
	if !slices.IsSorted(names) {
		slices.Sort(names)
	}
	return slices.Compact(names), nil
}

// VerifierConfig configures a Verifier.
type VerifierConfig struct {
	Keys    KeySource        // required
	Region  string           // required: the one region Rotor serves
	Service string           // SigV4 service name; DefaultService when empty
	Now     func() time.Time // the clock; time.Now when nil
	MaxSkew time.Duration    // allowed clock difference; DefaultMaxSkew when zero
}

// Verifier verifies SigV4-signed requests. It is safe for concurrent use.
type Verifier struct {
	keys    KeySource
	region  string
	service string
	now     func() time.Time
	maxSkew time.Duration
	signing signingKeyCache
}

// NewVerifier returns a Verifier. It panics if cfg.Keys is nil or cfg.Region
// is empty: both are wiring mistakes, not runtime conditions.
func NewVerifier(cfg VerifierConfig) *Verifier {
	if cfg.Keys == nil {
		panic("auth: NewVerifier: nil KeySource")
	}
	if cfg.Region == "" {
		panic("auth: NewVerifier: empty Region")
	}
	v := &Verifier{
		keys:    cfg.Keys,
		region:  cfg.Region,
		service: cfg.Service,
		now:     cfg.Now,
		maxSkew: cfg.MaxSkew,
	}
	if v.service == "" {
		v.service = DefaultService
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.maxSkew <= 0 {
		v.maxSkew = DefaultMaxSkew
	}
	return v
}

// Verify authenticates r, whose body the caller has already read into body,
// and returns the principal that signed it.
//
// Failures the client caused are *Error values. Any other error comes from
// the KeySource (a store or keyring failure) and must be reported to the
// client as an internal error.
func (v *Verifier) Verify(ctx context.Context, r *http.Request, body []byte) (Principal, error) {
	authz := r.Header["Authorization"]
	if len(authz) == 0 || authz[0] == "" {
		return Principal{}, &Error{Code: CodeMissingToken, Msg: msgMissingToken}
	}
	if len(authz) > 1 {
		return Principal{}, incomplete("Authorization header must appear only once.")
	}
	a, err := ParseAuthorization(authz[0])
	if err != nil {
		return Principal{}, err
	}

	t, dateHeader, err := requestTime(r)
	if err != nil {
		return Principal{}, err
	}
	var stampBuf [len(amzDateLayout)]byte
	stamp := t.AppendFormat(stampBuf[:0], amzDateLayout)
	if string(stamp[:8]) != a.Date {
		return Principal{}, invalid("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: " +
			quote(a.Date) + " != '" + string(stamp[:8]) + "', from '" + string(stamp) + "'.")
	}
	if a.Region != v.region {
		return Principal{}, invalid("Credential should be scoped to a valid region, not " + quote(a.Region) +
			". This Rotor server serves region '" + v.region + "'.")
	}
	if a.Service != v.service {
		return Principal{}, invalid("Credential should be scoped to correct service: '" + v.service + "'.")
	}
	if !slices.Contains(a.SignedHeaders, "host") {
		return Principal{}, incomplete("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
	}
	if !slices.Contains(a.SignedHeaders, dateHeader) {
		return Principal{}, incomplete("'" + http.CanonicalHeaderKey(dateHeader) + "' must be a 'SignedHeader' in the AWS Authorization.")
	}
	if len(r.Header["X-Amz-Security-Token"]) > 0 && !slices.Contains(a.SignedHeaders, "x-amz-security-token") {
		return Principal{}, incomplete("'X-Amz-Security-Token' must be a 'SignedHeader' in the AWS Authorization.")
	}
	if err := v.checkSkew(t, stamp); err != nil {
		return Principal{}, err
	}

	secret, p, err := v.keys.SecretKey(ctx, a.AccessKeyID)
	if errors.Is(err, ErrUnknownKey) {
		return Principal{}, &Error{Code: CodeUnrecognizedClient, Msg: msgUnrecognized}
	}
	if err != nil {
		return Principal{}, fmt.Errorf("look up access key: %w", err)
	}

	var hashBuf [2 * sha256.Size]byte
	payloadHash, err := payloadHash(hashBuf[:0], r, body)
	if err != nil {
		return Principal{}, err
	}

	bp := scratchPool.Get().(*[]byte)
	defer putScratch(bp)
	buf, ok := appendCanonicalRequest((*bp)[:0], r, a.SignedHeaders, payloadHash)
	if !ok {
		return Principal{}, invalid(msgMismatch)
	}
	canonicalHash := sha256.Sum256(buf)

	// String to sign: algorithm, request time, credential scope, hash of the
	// canonical request, one per line.
	buf = append(buf[:0], algorithm+"\n"...)
	buf = append(buf, stamp...)
	buf = append(buf, '\n')
	buf = append(buf, a.Date...)
	buf = append(buf, '/')
	buf = append(buf, a.Region...)
	buf = append(buf, '/')
	buf = append(buf, a.Service...)
	buf = append(buf, "/"+terminator+"\n"...)
	buf = hex.AppendEncode(buf, canonicalHash[:])
	n := len(buf)
	buf = v.signing.get(secret, a.Date, a.Region, a.Service).sign(buf, buf[:n])
	buf = hex.AppendEncode(buf, buf[n:])
	buf = append(buf, a.Signature...)
	*bp = buf
	match := hmac.Equal(buf[n+sha256.Size:n+3*sha256.Size], buf[n+3*sha256.Size:])
	clear(buf[n:]) // the expected signature stays out of the pooled buffer
	if !match {
		return Principal{}, invalid(msgMismatch)
	}

	p.AccessKeyID = a.AccessKeyID
	return p, nil
}

// requestTime returns the request's date and the lowercase name of the
// header it came from.
func requestTime(r *http.Request) (time.Time, string, error) {
	if s := r.Header.Get("X-Amz-Date"); s != "" {
		t, err := time.Parse(amzDateLayout, s)
		if err != nil {
			return time.Time{}, "", incomplete("Date must be in ISO-8601 'basic format'. Got " + quote(s) +
				". See http://en.wikipedia.org/wiki/ISO_8601")
		}
		return t, "x-amz-date", nil
	}
	if s := r.Header.Get("Date"); s != "" {
		t, err := http.ParseTime(s)
		if err != nil {
			return time.Time{}, "", incomplete("Date header must be an HTTP date, got " + quote(s) + ".")
		}
		return t.UTC(), "date", nil
	}
	return time.Time{}, "", incomplete("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
}

func (v *Verifier) checkSkew(t time.Time, stamp []byte) error {
	now := v.now().UTC()
	if lo := now.Add(-v.maxSkew); t.Before(lo) {
		return invalid("Signature expired: " + string(stamp) + " is now earlier than " + lo.Format(amzDateLayout) +
			" (" + now.Format(amzDateLayout) + " - " + skewString(v.maxSkew) + ")")
	}
	if hi := now.Add(v.maxSkew); t.After(hi) {
		return invalid("Signature not yet current: " + string(stamp) + " is still later than " + hi.Format(amzDateLayout) +
			" (" + now.Format(amzDateLayout) + " + " + skewString(v.maxSkew) + ")")
	}
	return nil
}

func skewString(d time.Duration) string {
	if d%time.Minute == 0 {
		return strconv.FormatInt(int64(d/time.Minute), 10) + " min."
	}
	return d.String() + "."
}

// payloadHash appends to dst the hex SHA-256 of body, or the
// X-Amz-Content-Sha256 header when the client sent one that agrees with it.
// A header that does not agree (including UNSIGNED-PAYLOAD) is rejected:
// every Rotor request signs its body.
func payloadHash(dst []byte, r *http.Request, body []byte) ([]byte, error) {
	sum := sha256.Sum256(body)
	dst = hex.AppendEncode(dst, sum[:])
	h := r.Header["X-Amz-Content-Sha256"]
	if len(h) == 0 {
		return dst, nil
	}
	if len(h) > 1 || !equalHexFold(h[0], dst) {
		return nil, invalid("The provided 'x-amz-content-sha256' header does not match what was computed.")
	}
	// Sign the header as sent: that is what the client hashed.
	return append(dst[:0], h[0]...), nil
}

// equalHexFold reports whether s equals the lowercase hex in lower, ignoring
// the case of s.
func equalHexFold(s string, lower []byte) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'F' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// scratchPool holds buffers for the canonical request and the string to
// sign, so that verification does not allocate them per request.
var scratchPool = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

func putScratch(bp *[]byte) {
	if cap(*bp) > 64<<10 {
		return // an outsized request; let the collector have it
	}
	scratchPool.Put(bp)
}

// appendCanonicalRequest appends the SigV4 canonical request for r to buf.
// It reports false if r's query string cannot be decoded, in which case no
// signature can match.
func appendCanonicalRequest(buf []byte, r *http.Request, signed []string, payloadHash []byte) ([]byte, bool) {
	buf = append(buf, r.Method...)
	buf = append(buf, '\n')

	// Non-S3 services sign the path as sent, escaped once more.
	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	buf = appendEscaped(buf, path, true)
	buf = append(buf, '\n')

	buf, ok := appendCanonicalQuery(buf, r.URL.RawQuery)
	if !ok {
		return buf, false
	}
	buf = append(buf, '\n')

	for _, name := range signed {
		buf = append(buf, name...)
		buf = append(buf, ':')
		buf = appendHeaderValues(buf, r, name)
		buf = append(buf, '\n')
	}
	buf = append(buf, '\n')

	for i, name := range signed {
		if i > 0 {
			buf = append(buf, ';')
		}
		buf = append(buf, name...)
	}
	buf = append(buf, '\n')
	buf = append(buf, payloadHash...)
	return buf, true
}

// appendHeaderValues appends the canonical value of the header name
// (lowercase): its values trimmed, runs of spaces collapsed, joined by commas.
// net/http keeps Host, and sometimes Content-Length and Transfer-Encoding,
// outside r.Header.
func appendHeaderValues(buf []byte, r *http.Request, name string) []byte {
	var values []string
	switch name {
	case "host":
		return appendTrimmed(buf, r.Host)
	case "content-length":
		values = r.Header["Content-Length"]
		if len(values) == 0 && r.ContentLength >= 0 {
			return strconv.AppendInt(buf, r.ContentLength, 10)
		}
	case "transfer-encoding":
		values = r.Header["Transfer-Encoding"]
		if len(values) == 0 {
			values = r.TransferEncoding
		}
	default:
		values = r.Header[canonicalHeaderKey(name)]
	}
	for i, v := range values {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendTrimmed(buf, v)
	}
	return buf
}

// canonicalHeaderKey is http.CanonicalHeaderKey without its allocation for
// the headers AWS SDKs sign on every request.
func canonicalHeaderKey(lower string) string {
	switch lower {
	case "content-type":
		return "Content-Type"
	case "x-amz-date":
		return "X-Amz-Date"
	case "x-amz-target":
		return "X-Amz-Target"
	case "x-amz-security-token":
		return "X-Amz-Security-Token"
	case "x-amz-content-sha256":
		return "X-Amz-Content-Sha256"
	case "amz-sdk-invocation-id":
		return "Amz-Sdk-Invocation-Id"
	case "amz-sdk-request":
		return "Amz-Sdk-Request"
	case "x-amz-user-agent":
		return "X-Amz-User-Agent"
	case "accept-encoding":
		return "Accept-Encoding"
	}
	return http.CanonicalHeaderKey(lower)
}

// appendTrimmed appends v without leading and trailing spaces and tabs and
// with each run of inner spaces collapsed to one.
func appendTrimmed(buf []byte, v string) []byte {
	v = strings.Trim(v, " \t")
	for i := 0; i < len(v); i++ {
		if v[i] == ' ' && i > 0 && v[i-1] == ' ' {
			continue
		}
		buf = append(buf, v[i])
	}
	return buf
}

// appendCanonicalQuery appends raw's parameters, each name and value decoded
// and then URI-encoded per RFC 3986, sorted by encoded name and then encoded
// value as SigV4 specifies (sorting after encoding).
func appendCanonicalQuery(buf []byte, raw string) ([]byte, bool) {
	if raw == "" {
		return buf, true
	}
	type param struct{ k, v string }
	var params []param
	for raw != "" {
		var kv string
		kv, raw, _ = strings.Cut(raw, "&")
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		k, err1 := url.QueryUnescape(k)
		v, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			return buf, false
		}
		params = append(params, param{string(appendEscaped(nil, k, false)), string(appendEscaped(nil, v, false))})
	}
	slices.SortFunc(params, func(a, b param) int {
		if c := strings.Compare(a.k, b.k); c != 0 {
			return c
		}
		return strings.Compare(a.v, b.v)
	})
	for i, p := range params {
		if i > 0 {
			buf = append(buf, '&')
		}
		buf = append(buf, p.k...)
		buf = append(buf, '=')
		buf = append(buf, p.v...)
	}
	return buf, true
}

// appendEscaped appends s with every byte outside RFC 3986's unreserved set
// percent-encoded (uppercase hex); '/' is kept when keepSlash is set.
func appendEscaped(buf []byte, s string, keepSlash bool) []byte {
	const upperhex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isUnreserved(c) || (c == '/' && keepSlash) {
			buf = append(buf, c)
			continue
		}
		buf = append(buf, '%', upperhex[c>>4], upperhex[c&15])
	}
	return buf
}

func isUnreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// signingKey is a derived SigV4 signing key with a pool of HMACs keyed by it,
// so that signing a request allocates nothing.
type signingKey struct {
	macs sync.Pool // of hash.Hash
}

func newSigningKey(secret, date, region, service string) *signingKey {
	seed := []byte("AWS4" + secret)
	m := hmac.New(sha256.New, seed)
	clear(seed)
	var key [sha256.Size]byte
	for i, s := range [...]string{date, region, service, terminator} {
		if i > 0 {
			m = hmac.New(sha256.New, key[:])
		}
		m.Write([]byte(s))
		m.Sum(key[:0])
	}
	sk := &signingKey{}
	sk.macs.New = func() any { return hmac.New(sha256.New, key[:]) }
	return sk
}

// sign appends HMAC-SHA256(key, msg) to dst.
func (k *signingKey) sign(dst, msg []byte) []byte {
	m := k.macs.Get().(hash.Hash)
	m.Reset()
	m.Write(msg)
	dst = m.Sum(dst)
	k.macs.Put(m)
	return dst
}

// signingKeyCache holds derived signing keys: deriving one takes four HMACs,
// and a key serves every request of one access key for a day.
type signingKeyCache struct {
	mu sync.RWMutex
	m  map[signingScope]*signingKey
}

type signingScope struct{ secret, date, region, service string }

func (c *signingKeyCache) get(secret, date, region, service string) *signingKey {
	s := signingScope{secret, date, region, service}
	c.mu.RLock()
	k := c.m[s]
	c.mu.RUnlock()
	if k != nil {
		return k
	}
	k = newSigningKey(secret, date, region, service)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[signingScope]*signingKey)
	}
	if len(c.m) >= maxCachedSigningKeys {
		for old := range c.m { // map order is unspecified: evicts an arbitrary entry
			delete(c.m, old)
			break
		}
	}
	c.m[s] = k
	return k
}

func incomplete(msg string) *Error { return &Error{Code: CodeIncompleteSignature, Msg: msg} }
func invalid(msg string) *Error    { return &Error{Code: CodeInvalidSignature, Msg: msg} }

// quote returns s in single quotes for an error message, with bytes outside
// printable ASCII replaced and long input cut, so that client-supplied text
// cannot forge log lines or bloat responses.
func quote(s string) string {
	const max = 64
	var b strings.Builder
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		if i == max {
			b.WriteString("...")
			break
		}
		if c := s[i]; c >= 0x20 && c < 0x7f && c != '\'' {
			b.WriteByte(c)
		} else {
			b.WriteByte('?')
		}
	}
	b.WriteByte('\'')
	return b.String()
}

// visibleASCII reports whether s is non-empty printable ASCII without spaces.
func visibleASCII(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// isToken reports whether s is a valid HTTP header name (RFC 9110 token).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isUnreserved(c) || strings.IndexByte("!#$%&'*+^`|", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

func isDate(s string) bool {
	if len(s) != len(scopeDateLayout) {
		return false
	}
	_, err := time.Parse(scopeDateLayout, s)
	return err == nil
}
