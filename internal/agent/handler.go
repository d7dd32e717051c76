package agent

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"

	"github.com/rotor-secrets/rotor/client"
)

const (
	pingPath  = "/ping"
	queryPath = "/secretsmanager/get"
)

// The error codes the agent itself answers with; the service's codes pass
// through unchanged.
const (
	codeInvalidParameter = "InvalidParameterException"
	codeInvalidRequest   = "InvalidRequestException"
	codeAccessDenied     = "AccessDeniedException"
	codeThrottling       = "ThrottlingException"
	codeUnknownOperation = "UnknownOperationException"
	codeInternalFailure  = "InternalFailure"
	codeTimeout          = "TimeoutError"
	codeConnection       = "ConnectionError"
)

// httpError is an answer other than a secret.
type httpError struct {
	status  int
	code    string
	message string
}

func (e *httpError) Error() string { return e.code + ": " + e.message }

// query is one request for a secret.
type query struct {
	secretID, versionID, versionStage string
	refreshNow                        bool
}

// ServeHTTP answers the AWS Secrets Manager Agent's HTTP API.
func (a *Agent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	n := a.inflight.Add(1)
	defer a.inflight.Add(-1)

	status, herr := a.serve(w, r, n)
	if herr != nil {
		writeError(w, herr)
		status = herr.status
	}
	// The path names a secret, never a value; the query holds no value
	// either, but it is not logged in case a client misuses it.
	if a.log.Enabled(r.Context(), slog.LevelDebug) {
		a.log.Debug("request", "method", r.Method, "path", r.URL.Path, "status", status,
			"duration_ms", float64(time.Since(start).Microseconds())/1000)
	}
}

// serve answers r and returns the status it wrote, or the error to write.
func (a *Agent) serve(w http.ResponseWriter, r *http.Request, inflight int64) (int, *httpError) {
	path := r.URL.Path
	ping := path == pingPath
	limit := int64(a.cfg.MaxConn)
	if ping {
		limit += extraPingConns
	}
	if inflight > limit {
		a.log.Warn("request refused", "reason", "max_conn", "max_conn", a.cfg.MaxConn)
		return 0, &httpError{http.StatusTooManyRequests, codeThrottling, "Connection limit exceeded"}
	}
	if !ping {
		if _, ok := r.Header["X-Forwarded-For"]; ok {
			a.log.Warn("request refused", "reason", "x_forwarded_for", "remote_addr", r.RemoteAddr)
			return 0, &httpError{http.StatusBadRequest, codeInvalidRequest, "Forwarded"}
		}
		if !a.tokenOK(r.Header) {
			a.log.Warn("request refused", "reason", "bad_token", "remote_addr", r.RemoteAddr)
			return 0, &httpError{http.StatusForbidden, codeAccessDenied, "Bad Token"}
		}
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		return 0, &httpError{http.StatusMethodNotAllowed, codeInvalidRequest, "Not allowed"}
	}

	var (
		q    query
		herr *httpError
	)
	switch {
	case ping:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("healthy"))
		return http.StatusOK, nil
	case path == queryPath:
		q, herr = parseQuery(r.URL.RawQuery, true)
	case strings.HasPrefix(path, a.cfg.PathPrefix):
		q, herr = parseQuery(r.URL.RawQuery, false)
		q.secretID = strings.TrimPrefix(path, a.cfg.PathPrefix)
		if q.secretID == "" && herr == nil {
			herr = &httpError{http.StatusBadRequest, codeInvalidParameter, "missing secret ID"}
		}
	default:
		return 0, &httpError{http.StatusNotFound, codeUnknownOperation, "Not found"}
	}
	if herr != nil {
		return 0, herr
	}

	s, err := a.fetch(r.Context(), q)
	if err != nil {
		if r.Context().Err() != nil {
			return 499, nil // the client went away; nobody reads an answer
		}
		herr := a.upstreamError(err)
		if herr.status >= 500 {
			a.log.Warn("read secret failed", "secret_id", q.secretID, "code", herr.code, "err", err)
		}
		return 0, herr
	}
	body, err := encodeSecret(s)
	if err != nil {
		a.log.Error("encode secret failed", "secret_id", q.secretID, "err", err)
		return 0, &httpError{http.StatusInternalServerError, codeInternalFailure, "internal failure"}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write(body)
	return http.StatusOK, nil
}

// tokenOK reports whether any of the SSRF headers holds the token. Both
// sides are hashed first, so the comparison takes the same time whatever
// the length of the guess.
func (a *Agent) tokenOK(h http.Header) bool {
	ok := 0
	for _, name := range a.cfg.SSRFHeaders {
		for _, v := range h.Values(name) {
			sum := sha256.Sum256([]byte(v))
			ok |= subtle.ConstantTimeCompare(sum[:], a.tokenSum[:])
		}
	}
	return ok == 1
}

// parseQuery reads the parameters of a request; secretId only in the query
// style (withID).
func parseQuery(raw string, withID bool) (query, *httpError) {
	var q query
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return q, &httpError{http.StatusBadRequest, codeInvalidParameter, "malformed query string"}
	}
	for k, vs := range vals {
		v := vs[len(vs)-1]
		switch {
		case k == "secretId" && withID:
			q.secretID = v
		case k == "versionId":
			q.versionID = v
		case k == "versionStage":
			q.versionStage = v
		case k == "refreshNow":
			switch strings.ToLower(v) {
			case "true", "1":
				q.refreshNow = true
			case "false", "0":
			default:
				return q, &httpError{http.StatusBadRequest, codeInvalidParameter, "invalid refreshNow value"}
			}
		default:
			return q, &httpError{http.StatusBadRequest, codeInvalidParameter, "unknown parameter: " + k}
		}
	}
	if withID && q.secretID == "" {
		return q, &httpError{http.StatusBadRequest, codeInvalidParameter, "missing parameter secretId"}
	}
	return q, nil
}

// fetch reads the secret q asks for: by stage through the cache, by version
// id (or with the cache off) from the service.
func (a *Agent) fetch(ctx context.Context, q query) (*client.Secret, error) {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	if q.versionID != "" || a.cfg.TTL == 0 {
		return a.direct(ctx, q)
	}
	stage := q.versionStage
	if stage == "" {
		stage = client.DefaultStage
	}
	if q.refreshNow {
		if stage == client.DefaultStage {
			return a.cache.RefreshNow(ctx, q.secretID)
		}
		a.cache.Invalidate(q.secretID)
	}
	return a.cache.GetStage(ctx, q.secretID, stage)
}

// direct reads q from the service, bypassing the cache.
func (a *Agent) direct(ctx context.Context, q query) (*client.Secret, error) {
	in := &secretsmanager.GetSecretValueInput{SecretId: aws.String(q.secretID)}
	if q.versionID != "" {
		in.VersionId = aws.String(q.versionID)
	}
	if q.versionStage != "" {
		in.VersionStage = aws.String(q.versionStage)
	}
	out, err := a.api.GetSecretValue(ctx, in)
	if err != nil {
		return nil, err
	}
	return &client.Secret{
		ARN:           aws.ToString(out.ARN),
		Name:          aws.ToString(out.Name),
		VersionID:     aws.ToString(out.VersionId),
		VersionStages: out.VersionStages,
		SecretString:  aws.ToString(out.SecretString),
		SecretBinary:  out.SecretBinary,
		CreatedDate:   aws.ToTime(out.CreatedDate),
	}, nil
}

// secretJSON is GetSecretValue's answer as the AWS agent writes it.
type secretJSON struct {
	ARN           string   `json:"ARN"`
	Name          string   `json:"Name"`
	VersionID     string   `json:"VersionId"`
	SecretString  *string  `json:"SecretString,omitempty"`
	SecretBinary  []byte   `json:"SecretBinary,omitempty"` // base64
	VersionStages []string `json:"VersionStages,omitempty"`
	CreatedDate   *string  `json:"CreatedDate"`
}

func encodeSecret(s *client.Secret) ([]byte, error) {
	out := secretJSON{ARN: s.ARN, Name: s.Name, VersionID: s.VersionID, VersionStages: s.VersionStages}
	if s.SecretBinary != nil {
		out.SecretBinary = s.SecretBinary
	} else {
		out.SecretString = &s.SecretString
	}
	if !s.CreatedDate.IsZero() {
		d := epochSeconds(s.CreatedDate)
		out.CreatedDate = &d
	}
	return json.Marshal(out)
}

// epochSeconds writes t as the AWS agent does: seconds since the epoch with
// up to millisecond precision, in a string ("1729509676.851").
func epochSeconds(t time.Time) string {
	ms := t.UnixMilli()
	s := strconv.FormatInt(ms/1000, 10)
	if frac := ms % 1000; frac != 0 {
		f := strconv.FormatInt(frac+1000, 10)[1:] // zero-padded to 3 digits
		s += "." + strings.TrimRight(f, "0")
	}
	return s
}

// upstreamError turns a failed read into the agent's answer: the service's
// code and status, 504 for a timeout, 502 when the service cannot be
// reached, 500 otherwise.
func (a *Agent) upstreamError(err error) *httpError {
	var (
		apiErr smithy.APIError
		status interface{ HTTPStatusCode() int }
		netErr net.Error
	)
	switch {
	case errors.As(err, &apiErr) && apiErr.ErrorCode() != "" && apiErr.ErrorCode() != "UnknownError":
		code := http.StatusBadRequest
		if apiErr.ErrorFault() == smithy.FaultServer {
			code = http.StatusInternalServerError
		}
		if errors.As(err, &status) && status.HTTPStatusCode() >= 400 {
			code = status.HTTPStatusCode()
		}
		return &httpError{code, apiErr.ErrorCode(), apiErr.ErrorMessage()}
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return &httpError{http.StatusGatewayTimeout, codeTimeout, "Timeout"}
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.As(err, &netErr):
		return &httpError{http.StatusBadGateway, codeConnection, "cannot reach Secrets Manager"}
	case errors.As(err, &status) && status.HTTPStatusCode() >= 500:
		return &httpError{http.StatusBadGateway, codeConnection, "unexpected response from Secrets Manager"}
	}
	return &httpError{http.StatusInternalServerError, codeInternalFailure, "internal failure"}
}

// writeError writes an AWS-shaped error body.
func writeError(w http.ResponseWriter, e *httpError) {
	body, _ := json.Marshal(struct {
		Type    string `json:"__type"`
		Message string `json:"message,omitempty"`
	}{e.code, e.message})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(e.status)
	_, _ = w.Write(body)
}
