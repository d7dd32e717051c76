// Package awsapi serves the AWS Secrets Manager API over the AWS JSON 1.1
// protocol: POST / with an X-Amz-Target header naming the operation
// ("secretsmanager.GetSecretValue") and a JSON body whose members are named
// as in AWS's service model. It is the only place where domain errors become
// AWS error codes.
//
// Callers build one Handler with New and mount it; it is an http.Handler and
// safe for concurrent use. Per request it
//
//   - assigns a random request id (UUID v4), sent as x-amzn-RequestId on
//     every response, errors included, and available to the service through
//     RequestIDFrom;
//   - refuses anything but POST, an unknown target, and a body larger than
//     Config.MaxBodyBytes (judged by Content-Length before reading, and while
//     reading, so chunked bodies are bounded too);
//   - authenticates the request with Config.Auth, exposing the caller to the
//     service through PrincipalFrom;
//   - decodes the body into the operation's wire shape, converts it to the
//     secrets package's input, calls the service and encodes its result.
//
// Errors are answered as AWS does: HTTP 4xx/5xx with a body
// {"__type":"<Code>","Message":"…"} and the header X-Amzn-ErrorType. The
// mapping from domain, authentication and protocol errors to (status, code,
// message) lives in one function, wireErrorOf. Internal errors reach the
// client as a generic message carrying the request id; their detail goes to
// the log only. A panic in the service becomes such an internal error.
//
// One operation streams instead of answering once:
// rotor.SubscribeLabelChanges (stream.go) answers text/event-stream and
// keeps the connection until the client leaves or Config.Done is closed.
//
// Every request produces one structured log line (request_id, principal,
// access_key_id, operation, status, error_code, duration_ms, remote_addr).
// Request and response bodies, the Authorization header and secret values
// are never logged, and error messages never echo values from the body.
package awsapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/rotor-secrets/rotor/internal/audit"
	"github.com/rotor-secrets/rotor/internal/auth"
	"github.com/rotor-secrets/rotor/internal/events"
	"github.com/rotor-secrets/rotor/internal/iam"
	"github.com/rotor-secrets/rotor/internal/secrets"
	"github.com/rotor-secrets/rotor/internal/store"
)

// DefaultMaxBodyBytes is the request body limit when Config.MaxBodyBytes is
// zero: comfortably above the largest legal request (a 65,536-byte secret
// value, base64-encoded, plus its metadata).
const DefaultMaxBodyBytes = 1 << 20

// Authenticator verifies a request's signature. body is the complete request
// body, already read. A failure is an *auth.Error, whose Code selects the AWS
// error code; any other error is treated as an internal error.
type Authenticator interface {
	Verify(ctx context.Context, r *http.Request, body []byte) (auth.Principal, error)
}

// Auditor records one audit record durably; an error fails the request
// (fail-closed). *audit.Log implements it.
type Auditor interface {
	Append(ctx context.Context, r audit.Record) (audit.Record, error)
}

// Observer receives per-request metrics. *metrics.Metrics implements it.
type Observer interface {
	ObserveRequest(operation, errorCode string, d time.Duration)
	AuditWriteFailure()
	RateLimited()
}

// Limiter rate-limits requests per access key. *ratelimit.Limiter
// implements it.
type Limiter interface {
	Allow(key string) (ok bool, retryAfter time.Duration)
}

// Config wires a Handler. Service and Auth are required.
type Config struct {
	Service      *secrets.Service
	Auth         Authenticator
	Logger       *slog.Logger // nil discards
	MaxBodyBytes int64        // 0 means DefaultMaxBodyBytes

	// IAM authorizes every request and serves the rotor.* administration
	// of users, access keys and policies. Nil: every authenticated caller
	// may do everything and those operations are not served.
	IAM *iam.Service
	// Audit records every request before its response is sent. Nil: none.
	Audit Auditor
	// Metrics observes every request. Nil: none.
	Metrics Observer
	// Limiter throttles requests per access key (ThrottlingException).
	// Nil: no limit.
	Limiter Limiter
	// AuditLog serves rotor.LookupEvents. Nil: not served.
	AuditLog AuditSearcher
	// Webhooks serves rotor.ListParkedEvents and rotor.RedriveEvent. Nil:
	// not served.
	Webhooks WebhookAdmin
	// Keys serves rotor.RotateMasterKey and rotor.GetMasterKeyStatus. Nil:
	// not served.
	Keys KeyAdmin
	// Functions serves rotor.RegisterFunction, rotor.ListFunctions and
	// rotor.DeleteFunction. Nil: not served.
	Functions FunctionAdmin
	// SharedStore says the store's cache versions are read from a database
	// several nodes share: each request then reads them once
	// (store.WithVersionMemo) for all its cache checks.
	SharedStore bool

	// Events is the hub rotor.SubscribeLabelChanges streams from. Nil: the
	// operation is not served (UnknownOperationException).
	Events *events.Hub
	// Done ends every open stream when it is closed. Set it to a channel
	// closed at server shutdown: http.Server.Shutdown waits for handlers to
	// return, and a stream does not return on its own.
	Done <-chan struct{}
	// Heartbeat is the interval of a stream's keep-alive comments (default
	// DefaultHeartbeat).
	Heartbeat time.Duration
}

// Handler serves the Secrets Manager API. Create it with New.
type Handler struct {
	svc     backend
	auth    Authenticator
	log     *slog.Logger
	maxBody int64
	newID   func() string // tests make request ids deterministic

	events    *events.Hub
	done      <-chan struct{}
	heartbeat time.Duration

	iam       *iam.Service
	audit     Auditor
	metrics   Observer
	limiter   Limiter
	auditLog  AuditSearcher
	webhooks  WebhookAdmin
	keys      KeyAdmin
	functions FunctionAdmin
	memo      bool // store.WithVersionMemo per request (Config.SharedStore)
}

// New returns a Handler. It panics if cfg.Service or cfg.Auth is nil: a
// handler without a verifier would serve every caller, so there is no
// anonymous default.
func New(cfg Config) *Handler {
	if cfg.Service == nil {
		panic("awsapi: Config.Service is nil")
	}
	if cfg.Auth == nil {
		panic("awsapi: Config.Auth is nil")
	}
	h := newHandler(cfg.Service, cfg.Auth, cfg.Logger, cfg.MaxBodyBytes)
	h.events, h.done = cfg.Events, cfg.Done
	h.iam, h.audit, h.metrics, h.limiter = cfg.IAM, cfg.Audit, cfg.Metrics, cfg.Limiter
	h.auditLog, h.webhooks, h.keys, h.functions = cfg.AuditLog, cfg.Webhooks, cfg.Keys, cfg.Functions
	h.memo = cfg.SharedStore
	if cfg.Heartbeat > 0 {
		h.heartbeat = cfg.Heartbeat
	}
	return h
}

func newHandler(svc backend, a Authenticator, log *slog.Logger, maxBody int64) *Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if maxBody <= 0 {
		maxBody = DefaultMaxBodyBytes
	}
	return &Handler{svc: svc, auth: a, log: log, maxBody: maxBody, newID: newRequestID, heartbeat: DefaultHeartbeat}
}

type ctxKey struct{}

// requestInfo is what the handler attaches to the context of a service call.
type requestInfo struct {
	id        string
	principal auth.Principal
	authed    bool
}

// PrincipalFrom returns the authenticated caller of the request that ctx
// belongs to. The handler attaches it to the context the service is called
// with; ok is false for any other context.
func PrincipalFrom(ctx context.Context) (auth.Principal, bool) {
	ri, ok := ctx.Value(ctxKey{}).(*requestInfo)
	if !ok || !ri.authed {
		return auth.Principal{}, false
	}
	return ri.principal, true
}

// RequestIDFrom returns the id the handler assigned to the request that ctx
// belongs to: the value of its x-amzn-RequestId response header.
func RequestIDFrom(ctx context.Context) (string, bool) {
	ri, ok := ctx.Value(ctxKey{}).(*requestInfo)
	if !ok {
		return "", false
	}
	return ri.id, true
}

const (
	contentType      = "application/x-amz-json-1.1"
	headerRequestID  = "X-Amzn-Requestid" // canonical form of AWS's x-amzn-RequestId
	headerErrorType  = "X-Amzn-Errortype"
	headerTarget     = "X-Amz-Target"
	maxLoggedTarget  = 128
	initialBodyAlloc = 512
)

// exchange is one request's state, shared by ServeHTTP and finish.
type exchange struct {
	info     requestInfo
	caller   *iam.Caller // set once the request is authenticated
	start    time.Time
	op       *operation
	stream   *streamOp // set instead of op for a streaming operation
	streamed bool      // the stream wrote the response itself
	audited  bool      // the audit records are written
	target   string
	resp     []byte // success body; cleared after writing (it may hold a secret)
	err      error
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	x := &exchange{info: requestInfo{id: h.newID()}, start: time.Now()}
	w.Header().Set(headerRequestID, x.info.id)
	defer h.finish(w, r, x)
	x.resp, x.err = h.serve(w, r, x)
	if re, ok := x.err.(*requestError); ok && re.kind == reqTooLarge {
		// Close the connection after the 413: otherwise the server would try
		// to drain the rest of the body before answering, and a client that
		// waits for the answer would never get it.
		w.Header().Set("Connection", "close")
	}
}

// serve runs the request up to an encoded success body or an error.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, x *exchange) ([]byte, error) {
	if r.Method != http.MethodPost {
		return nil, &requestError{kind: reqMethod, msg: "only POST is supported; send AWS JSON 1.1 requests as POST /"}
	}
	x.target = r.Header.Get(headerTarget)
	op, ok := h.operation(x.target)
	if !ok {
		x.stream, ok = h.streamOp(x.target)
	}
	if !ok {
		if x.target == "" {
			return nil, &requestError{kind: reqUnknownOperation, msg: "missing X-Amz-Target header"}
		}
		return nil, &requestError{kind: reqUnknownOperation, msg: "unrecognized operation in X-Amz-Target header"}
	}
	x.op = op
	// Content-Type is not checked: AWS SDKs send application/x-amz-json-1.1,
	// hand-written clients often send application/json or nothing, and a
	// body that is not JSON fails to decode anyway.
	body, err := h.readBody(r)
	if err != nil {
		return nil, err
	}
	// The body may hold a secret value; decoding copies what it keeps.
	defer clear(body)

	// One request reads a shared store's cache versions once (a label
	// stream lives long, and must see later changes).
	rctx := r.Context()
	if h.memo && x.stream == nil {
		rctx = store.WithVersionMemo(rctx)
	}
	p, err := h.auth.Verify(rctx, r, body)
	if err != nil {
		return nil, err
	}
	x.info.principal, x.info.authed = p, true
	if h.limiter != nil {
		if ok, _ := h.limiter.Allow(p.AccessKeyID); !ok {
			if h.metrics != nil {
				h.metrics.RateLimited()
			}
			return nil, errThrottled
		}
	}
	x.caller = &iam.Caller{
		Principal: p, Operation: x.action(), RequestID: x.info.id,
		SourceIP: sourceIP(r.RemoteAddr), UserAgent: r.UserAgent(), Secure: r.TLS != nil, Time: x.start,
	}
	ctx := iam.WithCaller(context.WithValue(rctx, ctxKey{}, &x.info), x.caller)
	if h.iam != nil {
		if err := h.iam.Prepare(ctx, x.caller); err != nil {
			return nil, err
		}
	}

	var decode func([]byte) (any, error)
	if x.stream != nil {
		decode = x.stream.decode
	} else {
		decode = op.decode
	}
	in, err := decode(body)
	if err != nil {
		return nil, err
	}
	if hc, ok := h.audit.(interface{ Healthy() bool }); ok && !hc.Healthy() {
		// The record of this request could not be written: refuse it
		// before it acts, not only its answer.
		return nil, errAuditFailed
	}
	if x.stream != nil {
		return nil, h.serveStream(ctx, w, r, x, in)
	}
	out, err := op.call(ctx, h, in)
	if err != nil {
		return nil, err
	}
	return encodeBody(out)
}

// readBody reads the whole body, refusing one over the limit before reading
// it when Content-Length says so and while reading it otherwise.
func (h *Handler) readBody(r *http.Request) ([]byte, error) {
	if r.ContentLength > h.maxBody {
		return nil, h.tooLarge()
	}
	if r.Body == nil || r.ContentLength == 0 {
		return nil, nil
	}
	size := int64(initialBodyAlloc)
	if r.ContentLength > 0 {
		size = r.ContentLength + 1 // +1: the read that sees EOF needs no growth
	}
	b, err := readAll(io.LimitReader(r.Body, h.maxBody+1), make([]byte, 0, size))
	if int64(len(b)) > h.maxBody {
		clear(b)
		return nil, h.tooLarge()
	}
	if err != nil {
		clear(b)
		if _, ok := err.(*http.MaxBytesError); ok {
			return nil, h.tooLarge()
		}
		return nil, &requestError{kind: reqUnreadable, msg: "could not read the request body", cause: err}
	}
	return b, nil
}

func (h *Handler) tooLarge() error {
	return &requestError{kind: reqTooLarge,
		msg: "request body exceeds the maximum size of " + strconv.FormatInt(h.maxBody, 10) + " bytes"}
}

// readAll is io.ReadAll into a caller-sized buffer.
func readAll(r io.Reader, b []byte) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// finish recovers a panic, writes the response and logs the request.
func (h *Handler) finish(w http.ResponseWriter, r *http.Request, x *exchange) {
	if v := recover(); v != nil {
		if v == http.ErrAbortHandler {
			panic(v)
		}
		clear(x.resp)
		x.resp = nil
		x.err = fmt.Errorf("panic: %v", v)
		h.log.LogAttrs(r.Context(), slog.LevelError, "handler panic",
			slog.String("request_id", x.info.id),
			slog.String("operation", x.opName()),
			slog.Any("panic", v),
			slog.String("stack", string(debug.Stack())))
	}
	if x.streamed {
		// The status and part of the body are on the wire already: a
		// failure (a panic) can only end the stream, and is logged. The
		// stream was audited when it opened.
		code := ""
		if x.err != nil {
			code = codeInternal
		}
		h.logRequest(r, x, http.StatusOK, code)
		return
	}

	if err := h.record(r, x); err != nil {
		// Fail closed: a request that cannot be audited is not answered.
		clear(x.resp)
		x.resp = nil
		x.err = err
	}
	status, code := http.StatusOK, ""
	body := x.resp
	hdr := w.Header()
	if x.err != nil {
		we := wireErrorOf(x.err, x.info.id)
		status, code = we.Status, we.Code
		body = we.body()
		hdr.Set(headerErrorType, we.Code)
		if status == http.StatusMethodNotAllowed {
			hdr.Set("Allow", http.MethodPost)
		}
	}
	hdr.Set("Content-Type", contentType)
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
	clear(x.resp)

	h.logRequest(r, x, status, code)
	if h.metrics != nil {
		h.metrics.ObserveRequest(x.opName(), code, time.Since(x.start))
	}
}

func (x *exchange) opName() string {
	switch {
	case x.op != nil:
		return x.op.name
	case x.stream != nil:
		return x.stream.name
	}
	return ""
}

// logRequest writes the request's one log line: Info below 500, Error at 500
// and above, where it carries the internal detail the client did not see.
func (h *Handler) logRequest(r *http.Request, x *exchange, status int, code string) {
	level := slog.LevelInfo
	if status >= http.StatusInternalServerError {
		level = slog.LevelError
	}
	attrs := make([]slog.Attr, 0, 11)
	attrs = append(attrs,
		slog.String("request_id", x.info.id),
		slog.String("principal", x.info.principal.ARN),
		slog.String("access_key_id", x.info.principal.AccessKeyID),
		slog.String("operation", x.opName()),
		slog.Int("status", status),
		slog.String("error_code", code),
		slog.Float64("duration_ms", float64(time.Since(x.start).Microseconds())/1000),
		slog.String("remote_addr", r.RemoteAddr),
	)
	if x.op == nil && x.stream == nil && x.target != "" {
		t := x.target
		if len(t) > maxLoggedTarget {
			t = t[:maxLoggedTarget]
		}
		attrs = append(attrs, slog.String("target", t))
	}
	if x.err != nil {
		// Error messages are client-safe by contract (secrets.Error.Msg,
		// auth.Error.Msg, our own); the cause of an internal error is
		// detail for operators and holds no values either.
		attrs = append(attrs, slog.String("error", x.err.Error()))
	}
	h.log.LogAttrs(r.Context(), level, "request", attrs...)
}

// newRequestID returns a random UUID version 4.
func newRequestID() string {
	var u [16]byte
	_, _ = rand.Read(u[:]) // never fails: crypto/rand crashes the program instead
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], u[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], u[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], u[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], u[8:10])
	s[23] = '-'
	hex.Encode(s[24:36], u[10:16])
	return string(s[:])
}
