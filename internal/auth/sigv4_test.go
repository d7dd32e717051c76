package auth

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/rotor-secrets/rotor/internal/keyring"
)

const (
	testRegion      = "us-east-1"
	testService     = "secretsmanager"
	testKeyID       = "AKRTTESTKEY0000000001"
	testSecret      = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
	testARN         = "arn:aws:iam::000000000000:user/alice"
	testInactiveID  = "AKRTTESTKEY0000000002"
	testRootKeyID   = "AKRTTESTKEY0000000003"
	testRootARN     = "arn:aws:iam::000000000000:root"
	testBody        = `{"SecretId":"prod/app/db"}`
	testContentType = "application/x-amz-json-1.1"
)

// testNow is the verifier's clock: noon, so that ±skew stays on one day.
var testNow = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

// result is what the test server reports about one verification.
type result struct {
	ARN, KeyID string
	Root       bool
	Code       Code   // 0 when verified
	Msg        string // *Error message
	Internal   string // any other error
}

func testKeyring(t testing.TB) *keyring.Keyring {
	t.Helper()
	mk, err := keyring.NewMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	kr, err := keyring.New(mk)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// testKeys returns StoreKeys over a fake store holding an active user key,
// an inactive key and an active root key, all with testSecret.
func testKeys(t testing.TB) *StoreKeys {
	t.Helper()
	keys := NewStoreKeys(newFakeStore(), testKeyring(t))
	for _, k := range []struct {
		id, arn string
		active  bool
	}{
		{testKeyID, testARN, true},
		{testInactiveID, testARN, false},
		{testRootKeyID, testRootARN, true},
	} {
		if err := keys.Put(context.Background(), k.id, testSecret, k.arn, k.active); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

// newTestServer serves Verify's verdict on every request as JSON.
func newTestServer(t *testing.T, v *Verifier) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var res result
		p, err := v.Verify(r.Context(), r, body)
		var ae *Error
		switch {
		case errors.As(err, &ae):
			res.Code, res.Msg = ae.Code, ae.Msg
		case err != nil:
			res.Internal = err.Error()
		default:
			res.ARN, res.KeyID, res.Root = p.ARN, p.AccessKeyID, p.Root
		}
		json.NewEncoder(w).Encode(res)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// request describes one request to sign with the AWS SDK's signer and send.
type request struct {
	method  string
	path    string // URL.Path; "/" when empty
	rawPath string // URL.RawPath
	query   string // URL.RawQuery before signing
	body    string
	header  map[string]string // set before signing
	creds   aws.Credentials   // testKeyID/testSecret when zero
	region  string            // testRegion when empty
	service string            // testService when empty
	signAt  time.Time         // testNow when zero
	hash    string            // payload hash given to the signer; the body's when empty
	tamper  func(t testing.TB, r *http.Request)
	noSign  bool // send without signing
}

func (q request) build(t testing.TB, base string) *http.Request {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path, u.RawPath, u.RawQuery = cmp(q.path, "/"), q.rawPath, q.query
	r, err := http.NewRequestWithContext(t.Context(), cmp(q.method, http.MethodPost), u.String(), strings.NewReader(q.body))
	if err != nil {
		t.Fatal(err)
	}
	if q.body == "" {
		r.Body, r.ContentLength = http.NoBody, 0
	}
	r.Header.Set("Content-Type", testContentType)
	r.Header.Set("X-Amz-Target", "secretsmanager.GetSecretValue")
	for k, v := range q.header {
		r.Header.Set(k, v)
	}
	if q.noSign {
		return r
	}
	creds := q.creds
	if creds.AccessKeyID == "" {
		creds = aws.Credentials{AccessKeyID: testKeyID, SecretAccessKey: testSecret}
	}
	hash := q.hash
	if hash == "" {
		hash = hexSHA256(q.body)
	}
	signAt := q.signAt
	if signAt.IsZero() {
		signAt = testNow
	}
	if err := v4.NewSigner().SignHTTP(t.Context(), creds, r, hash, cmp(q.service, testService), cmp(q.region, testRegion), signAt); err != nil {
		t.Fatal(err)
	}
	if q.tamper != nil {
		q.tamper(t, r)
	}
	return r
}

func send(t *testing.T, srv *httptest.Server, r *http.Request) result {
	t.Helper()
	resp, err := srv.Client().Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %s: %s", resp.Status, b)
	}
	var res result
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		t.Fatal(err)
	}
	return res
}

func cmp(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func hexSHA256(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// editAuth rewrites the Authorization header with f.
func editAuth(f func(string) string) func(testing.TB, *http.Request) {
	return func(t testing.TB, r *http.Request) {
		t.Helper()
		r.Header.Set("Authorization", f(r.Header.Get("Authorization")))
	}
}

// setSignedHeaders replaces the SignedHeaders parameter.
func setSignedHeaders(list string) func(testing.TB, *http.Request) {
	re := regexp.MustCompile(`SignedHeaders=[^,]*`)
	return editAuth(func(h string) string { return re.ReplaceAllString(h, "SignedHeaders="+list) })
}

func setHeader(k, v string) func(testing.TB, *http.Request) {
	return func(_ testing.TB, r *http.Request) { r.Header.Set(k, v) }
}

func setBody(body string) func(testing.TB, *http.Request) {
	return func(_ testing.TB, r *http.Request) {
		r.Body = io.NopCloser(strings.NewReader(body))
		r.ContentLength = int64(len(body))
	}
}

const (
	msgExpired     = "Signature expired: 20260101T114000Z is now earlier than 20260101T114500Z (20260101T120000Z - 15 min.)"
	msgNotYet      = "Signature not yet current: 20260101T122000Z is still later than 20260101T121500Z (20260101T120000Z + 15 min.)"
	msgHostSigned  = "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
	msgWrongRegion = "Credential should be scoped to a valid region, not 'eu-west-1'. This Rotor server serves region 'us-east-1'."
	msgWrongSvc    = "Credential should be scoped to correct service: 'secretsmanager'."
	msgContentHash = "The provided 'x-amz-content-sha256' header does not match what was computed."
	msgNoDate      = "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
)

func TestVerify(t *testing.T) {
	v := NewVerifier(VerifierConfig{Keys: testKeys(t), Region: testRegion, Now: func() time.Time { return testNow }})
	srv := newTestServer(t, v)

	tests := []struct {
		name     string
		req      request
		wantCode Code   // 0: verified as testARN
		wantMsg  string // exact, when set
		wantSub  string // substring, when set
	}{
		{name: "ok", req: request{body: testBody}},
		{name: "ok empty body", req: request{}},
		{name: "ok GET", req: request{method: http.MethodGet}},
		{name: "ok skew just inside past", req: request{body: testBody, signAt: testNow.Add(-14*time.Minute - 59*time.Second)}},
		{name: "ok skew just inside future", req: request{body: testBody, signAt: testNow.Add(14*time.Minute + 59*time.Second)}},
		{name: "ok unsigned header changed", req: request{body: testBody, tamper: setHeader("User-Agent", "other/1.0")}},
		{name: "ok spaces in signed header value", req: request{body: testBody, header: map[string]string{"X-Custom": "a   b  c"}}},
		{name: "ok content sha256 header", req: request{body: testBody, header: map[string]string{"X-Amz-Content-Sha256": hexSHA256(testBody)}}},
		{name: "ok session token signed", req: request{body: testBody, creds: aws.Credentials{AccessKeyID: testKeyID, SecretAccessKey: testSecret, SessionToken: "FwoGZXIvYXdzEBYaDH"}}},
		{name: "ok no spaces after commas", req: request{body: testBody, tamper: editAuth(func(h string) string { return strings.ReplaceAll(h, ", ", ",") })}},
		{
			name: "ok query and odd path",
			req: request{
				method: http.MethodGet,
				path:   "/odd path/ü/a+b/~x/;v=1/",
				query:  "b=2&a=1&a=0&c=x y&empty=&z=%2F%2D&plus=1%2B1&tilde=~",
			},
		},
		{name: "ok escaped slash in path", req: request{path: "/a/b/c", rawPath: "/a%2Fb/c", body: testBody}},
		{name: "ok dot segments in path", req: request{path: "/a/./b/../c", body: testBody}},

		{name: "missing authorization", req: request{body: testBody, noSign: true}, wantCode: CodeMissingToken, wantMsg: "Missing Authentication Token"},
		{name: "empty authorization", req: request{body: testBody, tamper: setHeader("Authorization", "")}, wantCode: CodeMissingToken},
		{
			name:     "two authorization headers",
			req:      request{body: testBody, tamper: func(_ testing.TB, r *http.Request) { r.Header.Add("Authorization", r.Header.Get("Authorization")) }},
			wantCode: CodeIncompleteSignature, wantMsg: "Authorization header must appear only once.",
		},
		{name: "other scheme", req: request{body: testBody, tamper: setHeader("Authorization", "Bearer abc")}, wantCode: CodeIncompleteSignature, wantSub: "'Bearer'"},
		{name: "sigv4a", req: request{body: testBody, tamper: editAuth(func(h string) string { return strings.Replace(h, "AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256", 1) })}, wantCode: CodeIncompleteSignature},
		{name: "algorithm only", req: request{body: testBody, tamper: setHeader("Authorization", "AWS4-HMAC-SHA256")}, wantCode: CodeIncompleteSignature, wantSub: "requires 'Credential' parameter"},
		{
			name:     "no signature",
			req:      request{body: testBody, tamper: editAuth(func(h string) string { return regexp.MustCompile(`, Signature=[0-9a-f]*`).ReplaceAllString(h, "") })},
			wantCode: CodeIncompleteSignature, wantMsg: "Authorization header requires 'Signature' parameter.",
		},
		{
			name:     "short credential",
			req:      request{body: testBody, tamper: editAuth(func(h string) string { return strings.Replace(h, "/secretsmanager/aws4_request", "/aws4_request", 1) })},
			wantCode: CodeIncompleteSignature, wantSub: "5 slash-delimited elements",
		},
		{
			name:     "bad terminator",
			req:      request{body: testBody, tamper: editAuth(func(h string) string { return strings.Replace(h, "/aws4_request", "/aws5_request", 1) })},
			wantCode: CodeIncompleteSignature, wantMsg: "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'.",
		},
		{name: "unknown key", req: request{body: testBody, creds: aws.Credentials{AccessKeyID: "AKRTNOSUCHKEY0000000", SecretAccessKey: testSecret}}, wantCode: CodeUnrecognizedClient, wantMsg: msgUnrecognized},
		{name: "inactive key", req: request{body: testBody, creds: aws.Credentials{AccessKeyID: testInactiveID, SecretAccessKey: testSecret}}, wantCode: CodeUnrecognizedClient, wantMsg: msgUnrecognized},
		{name: "wrong secret", req: request{body: testBody, creds: aws.Credentials{AccessKeyID: testKeyID, SecretAccessKey: "x" + testSecret[1:]}}, wantCode: CodeInvalidSignature, wantMsg: msgMismatch},
		{name: "tampered body", req: request{body: testBody, tamper: setBody(strings.Replace(testBody, "prod", "test", 1))}, wantCode: CodeInvalidSignature, wantMsg: msgMismatch},
		{name: "tampered signed header", req: request{body: testBody, tamper: setHeader("X-Amz-Target", "secretsmanager.DeleteSecret")}, wantCode: CodeInvalidSignature, wantMsg: msgMismatch},
		{name: "tampered method", req: request{body: testBody, tamper: func(_ testing.TB, r *http.Request) { r.Method = http.MethodPut }}, wantCode: CodeInvalidSignature, wantMsg: msgMismatch},
		{name: "tampered path", req: request{body: testBody, tamper: func(_ testing.TB, r *http.Request) { r.URL.Path = "/x" }}, wantCode: CodeInvalidSignature, wantMsg: msgMismatch},
		{name: "tampered query", req: request{method: http.MethodGet, query: "a=1", tamper: func(_ testing.TB, r *http.Request) { r.URL.RawQuery = "a=2" }}, wantCode: CodeInvalidSignature, wantMsg: msgMismatch},
		{name: "added query", req: request{body: testBody, tamper: func(_ testing.TB, r *http.Request) { r.URL.RawQuery = "a=2" }}, wantCode: CodeInvalidSignature, wantMsg: msgMismatch},
		{name: "undecodable query", req: request{method: http.MethodGet, tamper: func(_ testing.TB, r *http.Request) { r.URL.RawQuery = "a=%zz" }}, wantCode: CodeInvalidSignature, wantMsg: msgMismatch},
		{name: "tampered host", req: request{body: testBody, tamper: func(_ testing.TB, r *http.Request) { r.Host = "rotor.example:7300" }}, wantCode: CodeInvalidSignature, wantMsg: msgMismatch},
		{name: "short signature", req: request{body: testBody, tamper: editAuth(func(h string) string { return h[:len(h)-2] })}, wantCode: CodeInvalidSignature, wantMsg: msgMismatch},
		{name: "uppercase signature", req: request{body: testBody, tamper: editAuth(func(h string) string {
			i := strings.Index(h, "Signature=") + len("Signature=")
			return h[:i] + strings.ToUpper(h[i:])
		})}, wantCode: CodeInvalidSignature, wantMsg: msgMismatch},
		{name: "host not signed", req: request{body: testBody, tamper: setSignedHeaders("content-length;content-type;x-amz-date;x-amz-target")}, wantCode: CodeIncompleteSignature, wantMsg: msgHostSigned},
		{name: "x-amz-date not signed", req: request{body: testBody, tamper: setSignedHeaders("content-length;content-type;host;x-amz-target")}, wantCode: CodeIncompleteSignature, wantMsg: "'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization."},
		{name: "extra signed header", req: request{body: testBody, tamper: setSignedHeaders("accept-encoding;content-length;content-type;host;x-amz-date;x-amz-target")}, wantCode: CodeInvalidSignature, wantMsg: msgMismatch},
		{
			name:     "session token not signed",
			req:      request{body: testBody, tamper: setHeader("X-Amz-Security-Token", "FwoGZXIvYXdzEBYaDH")},
			wantCode: CodeIncompleteSignature, wantMsg: "'X-Amz-Security-Token' must be a 'SignedHeader' in the AWS Authorization.",
		},
		{name: "wrong region", req: request{body: testBody, region: "eu-west-1"}, wantCode: CodeInvalidSignature, wantMsg: msgWrongRegion},
		{name: "wrong service", req: request{body: testBody, service: "sts"}, wantCode: CodeInvalidSignature, wantMsg: msgWrongSvc},
		{name: "expired", req: request{body: testBody, signAt: testNow.Add(-20 * time.Minute)}, wantCode: CodeInvalidSignature, wantMsg: msgExpired},
		{name: "not yet current", req: request{body: testBody, signAt: testNow.Add(20 * time.Minute)}, wantCode: CodeInvalidSignature, wantMsg: msgNotYet},
		{name: "no date", req: request{body: testBody, tamper: func(_ testing.TB, r *http.Request) { r.Header.Del("X-Amz-Date") }}, wantCode: CodeIncompleteSignature, wantMsg: msgNoDate},
		{name: "bad date", req: request{body: testBody, tamper: setHeader("X-Amz-Date", "2026-01-01T12:00:00Z")}, wantCode: CodeIncompleteSignature, wantSub: "ISO-8601 'basic format'"},
		{
			name:     "date outside scope day",
			req:      request{body: testBody, tamper: setHeader("X-Amz-Date", "20260102T120000Z")},
			wantCode: CodeInvalidSignature, wantMsg: "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20260101' != '20260102', from '20260102T120000Z'.",
		},
		{name: "date moved within skew", req: request{body: testBody, tamper: setHeader("X-Amz-Date", "20260101T120100Z")}, wantCode: CodeInvalidSignature, wantMsg: msgMismatch},
		{name: "content sha256 mismatch", req: request{body: testBody, header: map[string]string{"X-Amz-Content-Sha256": hexSHA256("other")}}, wantCode: CodeInvalidSignature, wantMsg: msgContentHash},
		{name: "content sha256 unsigned payload", req: request{body: testBody, header: map[string]string{"X-Amz-Content-Sha256": "UNSIGNED-PAYLOAD"}, hash: "UNSIGNED-PAYLOAD"}, wantCode: CodeInvalidSignature, wantMsg: msgContentHash},
		{name: "signed with another payload hash", req: request{body: testBody, hash: hexSHA256("other")}, wantCode: CodeInvalidSignature, wantMsg: msgMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := send(t, srv, tt.req.build(t, srv.URL))
			if got.Internal != "" {
				t.Fatalf("internal error: %s", got.Internal)
			}
			if got.Code != tt.wantCode {
				t.Fatalf("code = %d (%q), want %d", got.Code, got.Msg, tt.wantCode)
			}
			if tt.wantCode == 0 {
				if got.ARN != testARN || got.KeyID != testKeyID || got.Root {
					t.Errorf("principal = %+v, want %s %s", got, testARN, testKeyID)
				}
				return
			}
			if tt.wantMsg != "" && got.Msg != tt.wantMsg {
				t.Errorf("message:\n got %q\nwant %q", got.Msg, tt.wantMsg)
			}
			if tt.wantSub != "" && !strings.Contains(got.Msg, tt.wantSub) {
				t.Errorf("message %q does not contain %q", got.Msg, tt.wantSub)
			}
			if strings.Contains(got.Msg, testSecret) || strings.ContainsAny(got.Msg, "\n\r") {
				t.Errorf("message reveals too much: %q", got.Msg)
			}
		})
	}
}

func TestVerifyRootPrincipal(t *testing.T) {
	v := NewVerifier(VerifierConfig{Keys: testKeys(t), Region: testRegion, Now: func() time.Time { return testNow }})
	srv := newTestServer(t, v)
	got := send(t, srv, request{body: testBody, creds: aws.Credentials{AccessKeyID: testRootKeyID, SecretAccessKey: testSecret}}.build(t, srv.URL))
	want := result{ARN: testRootARN, KeyID: testRootKeyID, Root: true}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

// TestVerifyMismatchRevealsNothing checks that a failed verification tells
// the client nothing about the signature it should have sent.
func TestVerifyMismatchRevealsNothing(t *testing.T) {
	v := NewVerifier(VerifierConfig{Keys: testKeys(t), Region: testRegion, Now: func() time.Time { return testNow }})
	srv := newTestServer(t, v)
	good := request{body: testBody}.build(t, srv.URL)
	wantSig := good.Header.Get("Authorization")[strings.Index(good.Header.Get("Authorization"), "Signature=")+len("Signature="):]

	bad := request{body: testBody, creds: aws.Credentials{AccessKeyID: testKeyID, SecretAccessKey: "wrong"}}.build(t, srv.URL)
	got := send(t, srv, bad)
	if got.Code != CodeInvalidSignature {
		t.Fatalf("code = %d, want %d", got.Code, CodeInvalidSignature)
	}
	for _, s := range []string{wantSig, testSecret, "wrong", "AWS4-HMAC-SHA256\n", "POST\n"} {
		if strings.Contains(got.Msg, s) {
			t.Errorf("message %q contains %q", got.Msg, s)
		}
	}
}

// refSign signs r the way the SigV4 specification spells it out, with the
// request time taken from the Date header. The AWS SDK always signs
// X-Amz-Date, so this is how the Date fallback is tested;
// TestRefSignAgreesWithSDK keeps refSign honest.
func refSign(r *http.Request, keyID, secret, region, service string, signed []string, body string, at time.Time) {
	stamp := at.UTC().Format(amzDateLayout)
	day := stamp[:8]
	var canon strings.Builder
	canon.WriteString(r.Method + "\n" + escapeRef(r.URL.EscapedPath(), true) + "\n")
	var q []string
	for k, vs := range r.URL.Query() {
		for _, v := range vs {
			q = append(q, escapeRef(k, false)+"="+escapeRef(v, false))
		}
	}
	sort.Strings(q)
	canon.WriteString(strings.Join(q, "&") + "\n")
	for _, h := range signed {
		v := r.Header.Get(h)
		switch h {
		case "host":
			v = r.URL.Host
		case "content-length":
			v = strconv.FormatInt(r.ContentLength, 10)
		}
		canon.WriteString(h + ":" + strings.Join(strings.Fields(v), " ") + "\n")
	}
	canon.WriteString("\n" + strings.Join(signed, ";") + "\n" + hexSHA256(body))

	scope := day + "/" + region + "/" + service + "/aws4_request"
	sts := "AWS4-HMAC-SHA256\n" + stamp + "\n" + scope + "\n" + hexSHA256(canon.String())
	mac := func(key []byte, s string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(s))
		return m.Sum(nil)
	}
	k := mac(mac(mac(mac([]byte("AWS4"+secret), day), region), service), "aws4_request")
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+keyID+"/"+scope+
		", SignedHeaders="+strings.Join(signed, ";")+", Signature="+hex.EncodeToString(mac(k, sts)))
}

func escapeRef(s string, path bool) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte("-._~", c) >= 0 || path && c == '/' {
			b.WriteByte(c)
		} else {
			b.WriteString("%" + strings.ToUpper(hex.EncodeToString([]byte{c})))
		}
	}
	return b.String()
}

func TestRefSignAgreesWithSDK(t *testing.T) {
	r := request{body: testBody, path: "/a b", query: "x=1&y=a b"}.build(t, "http://127.0.0.1:7300")
	sdk := r.Header.Get("Authorization")
	_, list, _ := strings.Cut(sdk, "SignedHeaders=")
	list, _, _ = strings.Cut(list, ",")
	signed := strings.Split(list, ";")
	refSign(r, testKeyID, testSecret, testRegion, testService, signed, testBody, testNow)
	if ref := r.Header.Get("Authorization"); ref != sdk {
		t.Fatalf("refSign disagrees with the SDK:\n sdk %s\n ref %s", sdk, ref)
	}
}

func TestVerifyDateHeader(t *testing.T) {
	v := NewVerifier(VerifierConfig{Keys: testKeys(t), Region: testRegion, Now: func() time.Time { return testNow }})
	srv := newTestServer(t, v)
	httpDate := testNow.Format(http.TimeFormat)

	tests := []struct {
		name     string
		date     string
		signed   []string
		signAt   time.Time
		wantCode Code
		wantSub  string
	}{
		{name: "ok", date: httpDate, signed: []string{"content-type", "date", "host"}},
		{name: "date not signed", date: httpDate, signed: []string{"content-type", "host"}, wantCode: CodeIncompleteSignature, wantSub: "'Date' must be a 'SignedHeader'"},
		{name: "expired", date: testNow.Add(-time.Hour).Format(http.TimeFormat), signed: []string{"date", "host"}, signAt: testNow.Add(-time.Hour), wantCode: CodeInvalidSignature, wantSub: "Signature expired"},
		{name: "date differs from signed time", date: testNow.Add(time.Minute).Format(http.TimeFormat), signed: []string{"date", "host"}, wantCode: CodeInvalidSignature, wantSub: "does not match the signature"},
		{name: "malformed", date: "yesterday", signed: []string{"date", "host"}, wantCode: CodeIncompleteSignature, wantSub: "HTTP date"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := request{body: testBody, noSign: true}.build(t, srv.URL)
			r.Header.Set("Date", tt.date)
			at := tt.signAt
			if at.IsZero() {
				at = testNow
			}
			refSign(r, testKeyID, testSecret, testRegion, testService, tt.signed, testBody, at)
			got := send(t, srv, r)
			if got.Code != tt.wantCode || !strings.Contains(got.Msg, tt.wantSub) {
				t.Errorf("got code %d %q, want %d containing %q", got.Code, got.Msg, tt.wantCode, tt.wantSub)
			}
		})
	}
}

// TestVerifySkewSetting checks a non-default MaxSkew and its message.
func TestVerifySkewSetting(t *testing.T) {
	v := NewVerifier(VerifierConfig{Keys: testKeys(t), Region: testRegion, Now: func() time.Time { return testNow }, MaxSkew: 90 * time.Second})
	srv := newTestServer(t, v)
	tests := []struct {
		name    string
		at      time.Time
		wantMsg string
	}{
		{name: "inside", at: testNow.Add(-90 * time.Second)},
		{name: "outside", at: testNow.Add(-91 * time.Second), wantMsg: "Signature expired: 20260101T115829Z is now earlier than 20260101T115830Z (20260101T120000Z - 1m30s.)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := send(t, srv, request{body: testBody, signAt: tt.at}.build(t, srv.URL))
			if got.Msg != tt.wantMsg {
				t.Errorf("message %q, want %q", got.Msg, tt.wantMsg)
			}
		})
	}
}

type keySourceFunc func(ctx context.Context, id string) (string, Principal, error)

func (f keySourceFunc) SecretKey(ctx context.Context, id string) (string, Principal, error) {
	return f(ctx, id)
}

func TestVerifyKeySourceFailure(t *testing.T) {
	boom := errors.New("store unavailable")
	v := NewVerifier(VerifierConfig{
		Keys:   keySourceFunc(func(context.Context, string) (string, Principal, error) { return "", Principal{}, boom }),
		Region: testRegion,
		Now:    func() time.Time { return testNow },
	})
	r := request{body: testBody}.build(t, "http://127.0.0.1:7300")
	_, err := v.Verify(t.Context(), r, []byte(testBody))
	var ae *Error
	if errors.As(err, &ae) || !errors.Is(err, boom) {
		t.Fatalf("err = %v, want an internal error wrapping %v", err, boom)
	}
}

func TestVerifyCachesSigningKeys(t *testing.T) {
	v := NewVerifier(VerifierConfig{Keys: testKeys(t), Region: testRegion, Now: func() time.Time { return testNow }})
	for i := range 3 {
		r := request{body: testBody}.build(t, "http://127.0.0.1:7300")
		if _, err := v.Verify(t.Context(), r, []byte(testBody)); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if n := len(v.signing.m); n != 1 {
		t.Errorf("%d cached signing keys, want 1", n)
	}
	for i := range maxCachedSigningKeys + 10 {
		v.signing.get(strings.Repeat("s", i%7+1), "20260101", testRegion, strings.Repeat("x", i+1))
	}
	if n := len(v.signing.m); n > maxCachedSigningKeys {
		t.Errorf("%d cached signing keys, want at most %d", n, maxCachedSigningKeys)
	}
}

func TestCanonicalQuery(t *testing.T) {
	tests := []struct {
		raw  string
		want string
		ok   bool
	}{
		{"", "", true},
		{"a=1", "a=1", true},
		{"b=2&a=1&a=0", "a=0&a=1&b=2", true},
		{"c=x%20y&c=x+z", "c=x%20y&c=x%20z", true},
		{"flag&empty=&&", "empty=&flag=", true},
		{"k=%7e%2f%2D", "k=~%2F-", true},
		{"ü=ß", "%C3%BC=%C3%9F", true},
		// Sorted after encoding: "a%2Fb" < "a-b" although "a-b" < "a/b".
		{"v=a-b&v=a/b", "v=a%2Fb&v=a-b", true},
		{"a=%zz", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			got, ok := appendCanonicalQuery(nil, tt.raw)
			if ok != tt.ok || (ok && string(got) != tt.want) {
				t.Errorf("got %q, %v; want %q, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestAppendTrimmed(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"a", "a"},
		{"  a  b   c ", "a b c"},
		{"\ta\t b", "a\t b"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := string(appendTrimmed(nil, tt.in)); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNewVerifierDefaults(t *testing.T) {
	v := NewVerifier(VerifierConfig{Keys: testKeys(t), Region: testRegion})
	if v.service != DefaultService || v.maxSkew != DefaultMaxSkew || v.now == nil {
		t.Errorf("defaults: service %q, skew %v, now set %v", v.service, v.maxSkew, v.now != nil)
	}
	for _, cfg := range []VerifierConfig{{Region: testRegion}, {Keys: testKeys(t)}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewVerifier(%+v) did not panic", cfg)
				}
			}()
			NewVerifier(cfg)
		}()
	}
}

var parseTests = []struct {
	name    string
	in      string
	want    Authorization
	wantErr string // substring of the *Error message; "" for success
}{
	{
		name: "sdk shape",
		in:   "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/secretsmanager/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc123",
		want: Authorization{"AKID", "20260101", "us-east-1", "secretsmanager", "aws4_request", []string{"host", "x-amz-date"}, "abc123"},
	},
	{
		name: "no spaces, other order, extra parameter",
		in:   "AWS4-HMAC-SHA256 Signature=abc,SignedHeaders=host,Credential=AKID/20260101/r/s/aws4_request,Extra=1",
		want: Authorization{"AKID", "20260101", "r", "s", "aws4_request", []string{"host"}, "abc"},
	},
	{
		name: "names normalised",
		in:   "  AWS4-HMAC-SHA256   Credential=AKID/20260101/r/s/aws4_request ,\tSignedHeaders=X-Amz-Date;Host;host, Signature=abc,  ",
		want: Authorization{"AKID", "20260101", "r", "s", "aws4_request", []string{"host", "x-amz-date"}, "abc"},
	},
	{name: "empty", in: "", wantErr: "Unsupported AWS 'algorithm': ''"},
	{name: "other algorithm", in: "AWS4-HMAC-SHA512 Credential=a", wantErr: "Unsupported AWS 'algorithm'"},
	{name: "lowercase algorithm", in: "aws4-hmac-sha256 Credential=AKID/20260101/r/s/aws4_request, SignedHeaders=host, Signature=abc", wantErr: "Unsupported"},
	{name: "basic auth", in: "Basic dXNlcjpwYXNz", wantErr: "'Basic'"},
	{name: "algorithm only", in: "AWS4-HMAC-SHA256", wantErr: "requires 'Credential' parameter. Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter."},
	{name: "missing equals", in: "AWS4-HMAC-SHA256 Credential", wantErr: "missing equal-sign"},
	{name: "missing signed headers", in: "AWS4-HMAC-SHA256 Credential=AKID/20260101/r/s/aws4_request, Signature=abc", wantErr: "requires 'SignedHeaders' parameter."},
	{name: "empty signature", in: "AWS4-HMAC-SHA256 Credential=AKID/20260101/r/s/aws4_request, SignedHeaders=host, Signature=", wantErr: "requires 'Signature' parameter."},
	{name: "duplicate", in: "AWS4-HMAC-SHA256 Credential=AKID/20260101/r/s/aws4_request, SignedHeaders=host, Signature=a, Signature=b", wantErr: "more than one 'Signature'"},
	{name: "four parts", in: "AWS4-HMAC-SHA256 Credential=AKID/20260101/r/aws4_request, SignedHeaders=host, Signature=a", wantErr: "5 slash-delimited"},
	{name: "six parts", in: "AWS4-HMAC-SHA256 Credential=AKID/20260101/r/s/x/aws4_request, SignedHeaders=host, Signature=a", wantErr: "5 slash-delimited"},
	{name: "empty key id", in: "AWS4-HMAC-SHA256 Credential=/20260101/r/s/aws4_request, SignedHeaders=host, Signature=a", wantErr: "malformed element"},
	{name: "bad date", in: "AWS4-HMAC-SHA256 Credential=AKID/2026011/r/s/aws4_request, SignedHeaders=host, Signature=a", wantErr: "YYYYMMDD"},
	{name: "impossible date", in: "AWS4-HMAC-SHA256 Credential=AKID/20261301/r/s/aws4_request, SignedHeaders=host, Signature=a", wantErr: "YYYYMMDD"},
	{name: "bad terminator", in: "AWS4-HMAC-SHA256 Credential=AKID/20260101/r/s/aws4, SignedHeaders=host, Signature=a", wantErr: "valid terminator"},
	{name: "empty header name", in: "AWS4-HMAC-SHA256 Credential=AKID/20260101/r/s/aws4_request, SignedHeaders=host;;x, Signature=a", wantErr: "malformed header name"},
	{name: "bad header name", in: "AWS4-HMAC-SHA256 Credential=AKID/20260101/r/s/aws4_request, SignedHeaders=host;a b, Signature=a", wantErr: "malformed header name"},
	{name: "space in signature", in: "AWS4-HMAC-SHA256 Credential=AKID/20260101/r/s/aws4_request, SignedHeaders=host, Signature=a b", wantErr: "malformed 'Signature'"},
	{name: "control bytes echoed safely", in: "AWS4-HMAC-SHA256 Credential=AK\nID/20260101/r/s/aws4_request, SignedHeaders=host, Signature=a", wantErr: "'AK?ID/"},
}

func TestParseAuthorization(t *testing.T) {
	for _, tt := range parseTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseAuthorization(tt.in)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("error %v", err)
				}
				if !equalAuthorization(got, tt.want) {
					t.Errorf("got %+v\nwant %+v", got, tt.want)
				}
				return
			}
			var ae *Error
			if !errors.As(err, &ae) || ae.Code != CodeIncompleteSignature {
				t.Fatalf("err = %#v, want *Error with CodeIncompleteSignature", err)
			}
			if !strings.Contains(ae.Msg, tt.wantErr) {
				t.Errorf("message %q does not contain %q", ae.Msg, tt.wantErr)
			}
		})
	}
}

func equalAuthorization(a, b Authorization) bool {
	return a.AccessKeyID == b.AccessKeyID && a.Date == b.Date && a.Region == b.Region && a.Service == b.Service &&
		a.Terminator == b.Terminator && slices.Equal(a.SignedHeaders, b.SignedHeaders) && a.Signature == b.Signature
}

func formatAuthorization(a Authorization) string {
	return "AWS4-HMAC-SHA256 Credential=" + a.AccessKeyID + "/" + a.Date + "/" + a.Region + "/" + a.Service + "/" + a.Terminator +
		", SignedHeaders=" + strings.Join(a.SignedHeaders, ";") + ", Signature=" + a.Signature
}

func FuzzParseAuthorization(f *testing.F) {
	for _, tt := range parseTests {
		f.Add(tt.in)
	}
	f.Add("AWS4-HMAC-SHA256 Credential=AKRTTESTKEY0000000001/20260101/us-east-1/secretsmanager/aws4_request, " +
		"SignedHeaders=content-length;content-type;host;x-amz-date;x-amz-target, " +
		"Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
	f.Fuzz(func(t *testing.T, h string) {
		a, err := ParseAuthorization(h)
		if err != nil {
			var ae *Error
			if !errors.As(err, &ae) || ae.Code != CodeIncompleteSignature || ae.Msg == "" {
				t.Fatalf("err = %#v, want *Error with CodeIncompleteSignature", err)
			}
			if strings.ContainsAny(ae.Msg, "\r\n\x00") {
				t.Fatalf("message has control characters: %q", ae.Msg)
			}
			return
		}
		for _, s := range []string{a.AccessKeyID, a.Region, a.Service} {
			if !visibleASCII(s) || strings.ContainsAny(s, "/,") {
				t.Fatalf("credential part %q of %+v", s, a)
			}
		}
		if !visibleASCII(a.Signature) || strings.Contains(a.Signature, ",") {
			t.Fatalf("signature %q", a.Signature)
		}
		if !isDate(a.Date) || a.Terminator != terminator {
			t.Fatalf("scope %+v", a)
		}
		if len(a.SignedHeaders) == 0 || !slices.IsSorted(a.SignedHeaders) || len(slices.Compact(slices.Clone(a.SignedHeaders))) != len(a.SignedHeaders) {
			t.Fatalf("signed headers %q", a.SignedHeaders)
		}
		for _, n := range a.SignedHeaders {
			if !isToken(n) || n != strings.ToLower(n) {
				t.Fatalf("signed header %q", n)
			}
		}
		// Formatting and parsing again gives the same value.
		b, err := ParseAuthorization(formatAuthorization(a))
		if err != nil || !equalAuthorization(a, b) {
			t.Fatalf("round trip of %+v: %+v, %v", a, b, err)
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	v := NewVerifier(VerifierConfig{Keys: testKeys(b), Region: testRegion, Now: func() time.Time { return testNow }})
	body := []byte(testBody)
	r := httptest.NewRequestWithContext(b.Context(), http.MethodPost, "http://127.0.0.1:7300/", bytes.NewReader(body))
	r.Header.Set("Content-Type", testContentType)
	r.Header.Set("Content-Length", strconv.Itoa(len(body)))
	r.Header.Set("X-Amz-Target", "secretsmanager.GetSecretValue")
	r.Header.Set("Amz-Sdk-Invocation-Id", "5b0c9a8e-1b4f-4a0e-9d57-2f1c3c1b2a77")
	r.Header.Set("Amz-Sdk-Request", "attempt=1; max=3")
	r.Header.Set("User-Agent", "aws-sdk-go-v2/1.41.0 os/linux lang/go#1.26 md/GOOS#linux md/GOARCH#amd64 api/secretsmanager#1.51.0")
	creds := aws.Credentials{AccessKeyID: testKeyID, SecretAccessKey: testSecret}
	if err := v4.NewSigner().SignHTTP(b.Context(), creds, r, hexSHA256(testBody), testService, testRegion, testNow); err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	if _, err := v.Verify(ctx, r, body); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, r, body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseAuthorization(b *testing.B) {
	h := "AWS4-HMAC-SHA256 Credential=AKRTTESTKEY0000000001/20260101/us-east-1/secretsmanager/aws4_request, " +
		"SignedHeaders=amz-sdk-invocation-id;amz-sdk-request;content-length;content-type;host;x-amz-date;x-amz-target, " +
		"Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseAuthorization(h); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzVerify feeds arbitrary request parts to Verify: it must not panic, and
// with a KeySource that cannot fail every error must be an *Error. The first
// seed is a request the SDK signed, so fuzzing starts from one that verifies.
func FuzzVerify(f *testing.F) {
	keys := testKeys(f)
	v := NewVerifier(VerifierConfig{Keys: keys, Region: testRegion, Now: func() time.Time { return testNow }})
	newRequest := func(authz, amzDate, date, path, rawQuery, extra, body string) *http.Request {
		r := &http.Request{
			Method: http.MethodGet,
			URL:    &url.URL{Path: path, RawQuery: rawQuery},
			Host:   "127.0.0.1:7300",
			Header: http.Header{
				"Authorization": {authz},
				"X-Amz-Date":    {amzDate},
				"Date":          {date},
				"Content-Type":  {testContentType},
				"X-Amz-Target":  {"secretsmanager.GetSecretValue"},
			},
			ContentLength: int64(len(body)),
		}
		if k, val, ok := strings.Cut(extra, ":"); ok {
			r.Header.Add(k, val)
		}
		return r
	}

	good := request{body: testBody, method: http.MethodGet, query: "a=1&b=x y"}.build(f, "http://127.0.0.1:7300")
	seed := []string{good.Header.Get("Authorization"), good.Header.Get("X-Amz-Date"), "", good.URL.EscapedPath(), good.URL.RawQuery, "X-Other: 1", testBody}
	if _, err := v.Verify(f.Context(), newRequest(seed[0], seed[1], seed[2], seed[3], seed[4], seed[5], seed[6]), []byte(testBody)); err != nil {
		f.Fatalf("the signed seed does not verify: %v", err)
	}
	f.Add(seed[0], seed[1], seed[2], seed[3], seed[4], seed[5], seed[6])
	f.Add("AWS4-HMAC-SHA256 Credential=AKRTTESTKEY0000000001/20260101/us-east-1/secretsmanager/aws4_request, "+
		"SignedHeaders=content-length;date;host;transfer-encoding;x-a, Signature=00",
		"", testNow.Format(http.TimeFormat), "/%zz/", "a=%zz&&=&%", "x-a: 1", "")

	f.Fuzz(func(t *testing.T, authz, amzDate, date, path, rawQuery, extra, body string) {
		_, err := v.Verify(t.Context(), newRequest(authz, amzDate, date, path, rawQuery, extra, body), []byte(body))
		var ae *Error
		if err != nil && !errors.As(err, &ae) {
			t.Fatalf("error %v is not an *Error", err)
		}
	})
}
