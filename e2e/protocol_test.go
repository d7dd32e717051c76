package e2e

// The wire protocol as a hand-written client meets it: raw HTTP, signed
// with aws-sdk-go-v2's SigV4 signer or not at all.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

const maxBody = 1 << 20 // the server's request body limit

// rawRequest describes a POST / for target with body; build signs it with
// key, when there is one, for signRegion (default: the server's region).
type rawRequest struct {
	target     string
	body       []byte
	key        *aws.Credentials
	signRegion string
}

func rootKey() *aws.Credentials {
	return &aws.Credentials{AccessKeyID: testAccessKeyID, SecretAccessKey: testSecretAccessKey}
}

func (rr rawRequest) build(t testing.TB, srv *server) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.endpoint()+"/", bytes.NewReader(rr.body))
	must(t, err)
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	if rr.target != "" {
		req.Header.Set("X-Amz-Target", rr.target)
	}
	if rr.key != nil {
		sign(t, req, rr.body, *rr.key, rr.signRegion)
	}
	return req
}

func sign(t testing.TB, req *http.Request, body []byte, key aws.Credentials, signRegion string) {
	t.Helper()
	if signRegion == "" {
		signRegion = region
	}
	sum := sha256.Sum256(body)
	must(t, v4.NewSigner().SignHTTP(t.Context(), key, req, hex.EncodeToString(sum[:]), "secretsmanager", signRegion, time.Now()))
}

// rawResponse is a response read in full.
type rawResponse struct {
	status int
	header http.Header
	body   []byte
}

// code is the AWS error code of the response: __type without a namespace.
func (r rawResponse) code() string {
	var e struct {
		Type string `json:"__type"`
	}
	_ = json.Unmarshal(r.body, &e)
	_, after, found := strings.Cut(e.Type, "#")
	if found {
		return after
	}
	return e.Type
}

var rawClient = &http.Client{Timeout: httpTimeout}

// writeHead writes req's request line and header block, with extra header
// lines, to conn, so that a test can then send the body as it likes.
func writeHead(t testing.TB, conn net.Conn, req *http.Request, extra ...string) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", req.Method, req.URL.RequestURI(), req.Host)
	for k, vs := range req.Header {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	for _, e := range extra {
		b.WriteString(e + "\r\n")
	}
	b.WriteString("\r\n")
	_, err := io.WriteString(conn, b.String())
	must(t, err)
}

func do(t testing.TB, req *http.Request) rawResponse {
	t.Helper()
	resp, err := rawClient.Do(req)
	must(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	must(t, err)
	return rawResponse{status: resp.StatusCode, header: resp.Header, body: b}
}

// wantError fails t unless r is an AWS error response with status and
// code, carrying a request id and a message.
func wantError(t testing.TB, r rawResponse, status int, code string) {
	t.Helper()
	if r.status != status || r.code() != code {
		t.Errorf("got %d %s, want %d %s (body %s)", r.status, r.code(), status, code, r.body)
	}
	var e map[string]any
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Errorf("error body is not JSON: %q", r.body)
	} else if e["message"] == nil && e["Message"] == nil {
		t.Errorf("error body has no message: %s", r.body)
	}
	if r.header.Get("x-amzn-RequestId") == "" {
		t.Errorf("no x-amzn-RequestId header in %d response", r.status)
	}
}

func TestProtocolErrors(t *testing.T) {
	t.Parallel()
	srv := sharedServer(t)
	const op = "secretsmanager.GetRandomPassword"
	body := []byte(`{"PasswordLength":12}`)
	wrongSecret := &aws.Credentials{AccessKeyID: testAccessKeyID, SecretAccessKey: "not-the-secret-access-key-at-all"}
	unknownKey := &aws.Credentials{AccessKeyID: "AKIAUNKNOWNUNKNOWN00", SecretAccessKey: testSecretAccessKey}

	t.Run("signed request works", func(t *testing.T) {
		r := do(t, rawRequest{target: op, body: body, key: rootKey()}.build(t, srv))
		var out struct{ RandomPassword string }
		if r.status != http.StatusOK || json.Unmarshal(r.body, &out) != nil || len(out.RandomPassword) != 12 {
			t.Fatalf("got %d %s, want 200 with a 12-character password", r.status, r.body)
		}
		if ct := r.header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
			t.Errorf("Content-Type = %q", ct)
		}
		if r.header.Get("x-amzn-RequestId") == "" {
			t.Error("no x-amzn-RequestId header")
		}
	})

	tests := []struct {
		desc   string
		req    func(t *testing.T) *http.Request
		status int
		code   string
	}{
		{"unsigned", func(t *testing.T) *http.Request {
			return rawRequest{target: op, body: body}.build(t, srv)
		}, 400, "MissingAuthenticationTokenException"},
		{"unknown access key", func(t *testing.T) *http.Request {
			return rawRequest{target: op, body: body, key: unknownKey}.build(t, srv)
		}, 400, "UnrecognizedClientException"},
		{"wrong secret key", func(t *testing.T) *http.Request {
			return rawRequest{target: op, body: body, key: wrongSecret}.build(t, srv)
		}, 400, "InvalidSignatureException"},
		{"signed for another region", func(t *testing.T) *http.Request {
			return rawRequest{target: op, body: body, key: rootKey(), signRegion: "eu-west-1"}.build(t, srv)
		}, 400, "InvalidSignatureException"},
		{"body changed after signing", func(t *testing.T) *http.Request {
			req := rawRequest{target: op, body: body, key: rootKey()}.build(t, srv)
			other := []byte(`{"PasswordLength":13}`)
			req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(other)), int64(len(other))
			return req
		}, 400, "InvalidSignatureException"},
		{"signed with another service name", func(t *testing.T) *http.Request {
			req := rawRequest{target: op, body: body}.build(t, srv)
			sum := sha256.Sum256(body)
			must(t, v4.NewSigner().SignHTTP(t.Context(), *rootKey(), req, hex.EncodeToString(sum[:]), "kms", region, time.Now()))
			return req
		}, 400, "InvalidSignatureException"},
		{"signed 20 minutes ago", func(t *testing.T) *http.Request {
			req := rawRequest{target: op, body: body}.build(t, srv)
			sum := sha256.Sum256(body)
			must(t, v4.NewSigner().SignHTTP(t.Context(), *rootKey(), req, hex.EncodeToString(sum[:]), "secretsmanager", region, time.Now().Add(-20*time.Minute)))
			return req
		}, 400, "InvalidSignatureException"},
		// AWS's JSON-protocol services (Secrets Manager among them) spell
		// this code IncompleteSignatureException; the Query-protocol ones
		// (STS, SES) say IncompleteSignature.
		{"Authorization without Signature", func(t *testing.T) *http.Request {
			req := rawRequest{target: op, body: body}.build(t, srv)
			req.Header.Set("X-Amz-Date", time.Now().UTC().Format("20060102T150405Z"))
			req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+testAccessKeyID+"/"+time.Now().UTC().Format("20060102")+"/us-east-1/secretsmanager/aws4_request, SignedHeaders=host;x-amz-date")
			return req
		}, 400, "IncompleteSignatureException"},
		{"Authorization not SigV4", func(t *testing.T) *http.Request {
			req := rawRequest{target: op, body: body}.build(t, srv)
			req.Header.Set("X-Amz-Date", time.Now().UTC().Format("20060102T150405Z"))
			req.Header.Set("Authorization", "AWS4-HMAC-SHA256 garbage")
			return req
		}, 400, "IncompleteSignatureException"},
		{"unknown operation", func(t *testing.T) *http.Request {
			return rawRequest{target: "secretsmanager.FrobnicateSecret", body: []byte(`{}`), key: rootKey()}.build(t, srv)
		}, 400, "UnknownOperationException"},
		{"another service's target", func(t *testing.T) *http.Request {
			return rawRequest{target: "TrentService.Decrypt", body: []byte(`{}`), key: rootKey()}.build(t, srv)
		}, 400, "UnknownOperationException"},
		{"malformed JSON", func(t *testing.T) *http.Request {
			return rawRequest{target: op, body: []byte(`{"PasswordLength":`), key: rootKey()}.build(t, srv)
		}, 400, "SerializationException"},
		{"member of the wrong type", func(t *testing.T) *http.Request {
			return rawRequest{target: op, body: []byte(`{"PasswordLength":"twelve"}`), key: rootKey()}.build(t, srv)
		}, 400, "SerializationException"},
		{"body is not an object", func(t *testing.T) *http.Request {
			return rawRequest{target: op, body: []byte(`[1,2]`), key: rootKey()}.build(t, srv)
		}, 400, "SerializationException"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			wantError(t, do(t, tc.req(t)), tc.status, tc.code)
		})
	}

	t.Run("GET / is refused with a request id", func(t *testing.T) {
		t.Parallel()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.endpoint()+"/", nil)
		must(t, err)
		r := do(t, req)
		if r.status < 400 || r.status >= 500 || r.header.Get("x-amzn-RequestId") == "" {
			t.Errorf("GET /: %d with request id %q; want a 4xx with one", r.status, r.header.Get("x-amzn-RequestId"))
		}
	})

	t.Run("request ids are unique", func(t *testing.T) {
		t.Parallel()
		seen := map[string]bool{}
		for range 20 {
			r := do(t, rawRequest{target: op, body: body, key: rootKey()}.build(t, srv))
			id := r.header.Get("x-amzn-RequestId")
			if id == "" || seen[id] {
				t.Fatalf("request id %q empty or repeated", id)
			}
			seen[id] = true
		}
	})
}

func TestHealthEndpointsNeedNoAuth(t *testing.T) {
	t.Parallel()
	srv := sharedServer(t)
	for _, path := range []string{"/healthz", "/readyz"} {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.endpoint()+path, nil)
		must(t, err)
		r := do(t, req)
		var body map[string]any
		if r.status != http.StatusOK || json.Unmarshal(r.body, &body) != nil {
			t.Errorf("GET %s: %d %q, want 200 with a JSON body", path, r.status, r.body)
		}
	}
}

// TestBodyLimit sends bodies over 1 MiB on raw connections, never
// finishing them: the server must answer 413 from what it has (the
// Content-Length, or the first 1 MiB of a chunked body) instead of waiting
// for the rest.
func TestBodyLimit(t *testing.T) {
	t.Parallel()
	srv := sharedServer(t)

	// head writes a signed request's header block; the signature covers a
	// body the test never sends in full, so the server must refuse on size
	// before it can check the signature.
	head := func(t *testing.T, conn net.Conn, extra string) {
		req := rawRequest{target: "secretsmanager.PutSecretValue", body: []byte(`{}`), key: rootKey()}.build(t, srv)
		writeHead(t, conn, req, extra)
	}
	readResponse := func(t *testing.T, conn net.Conn) rawResponse {
		t.Helper()
		must(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("no response to an oversized body without sending all of it: %v", err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return rawResponse{status: resp.StatusCode, header: resp.Header, body: b}
	}
	dial := func(t *testing.T) net.Conn {
		conn, err := (&net.Dialer{Timeout: 5 * time.Second}).DialContext(t.Context(), "tcp", srv.addr())
		must(t, err)
		t.Cleanup(func() { conn.Close() })
		return conn
	}

	t.Run("Content-Length over the limit", func(t *testing.T) {
		t.Parallel()
		conn := dial(t)
		head(t, conn, fmt.Sprintf("Content-Length: %d", 2*maxBody))
		if _, err := conn.Write(bytes.Repeat([]byte(" "), 4096)); err != nil {
			t.Fatal(err)
		}
		r := readResponse(t, conn)
		if r.status != http.StatusRequestEntityTooLarge || r.header.Get("x-amzn-RequestId") == "" {
			t.Errorf("got %d (request id %q) %s, want 413 with a request id", r.status, r.header.Get("x-amzn-RequestId"), r.body)
		}
	})

	t.Run("chunked body over the limit", func(t *testing.T) {
		t.Parallel()
		conn := dial(t)
		head(t, conn, "Transfer-Encoding: chunked")
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go func() {
			chunk := bytes.Repeat([]byte(" "), 64<<10)
			for sent := 0; sent < maxBody+len(chunk) && ctx.Err() == nil; sent += len(chunk) {
				if _, err := fmt.Fprintf(conn, "%x\r\n%s\r\n", len(chunk), chunk); err != nil {
					return
				}
			}
			// No terminating chunk: the body never ends.
		}()
		// The sender pauses after 1 MiB + 64 KiB, as a client waiting for
		// an early answer does; the server has all it needs to refuse.
		r := readResponse(t, conn)
		if r.status != http.StatusRequestEntityTooLarge {
			t.Errorf("got %d %s, want 413", r.status, r.body)
		}
	})

	t.Run("just under the limit is read", func(t *testing.T) {
		t.Parallel()
		// A body of 1 MiB minus a little is accepted as far as size goes
		// (the value inside is then too large for a secret).
		value := strings.Repeat("x", maxBody-512)
		body := []byte(`{"Name":"` + uniqueName(t) + `","SecretString":"` + value + `"}`)
		r := do(t, rawRequest{target: "secretsmanager.CreateSecret", body: body, key: rootKey()}.build(t, srv))
		wantError(t, r, http.StatusBadRequest, "ValidationException")
	})
}
